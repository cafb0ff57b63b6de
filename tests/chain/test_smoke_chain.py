from conftest import Ledger, h
from fedledger.chain import Phase
from fedledger.exceptions import NotAuthorized


def test_full_round(ledger: Ledger) -> None:
    task = ledger.task
    r = ledger.member_task(0).open_round()
    for i in range(4):
        ledger.member_task(i).commit_update(r, h(f"u{i}"), 10 + i)
    assert ledger.member_task(0).close_commits(r) is Phase.VALIDATE
    for i in range(4):
        ledger.member_task(i).submit_scores(r, [None if j == i else 9000 for j in range(4)])
    assert ledger.member_task(0).close_validation(r) is Phase.AGGREGATE
    mask = task.round(r).accepted_mask
    assert not ledger.member_task(0).propose_aggregate(r, h("m1"), mask)
    assert ledger.member_task(1).propose_aggregate(r, h("m1"), mask)
    assert task.model_history() == {1: h("m1")}


def test_outsider_cannot_commit(ledger: Ledger) -> None:
    r = ledger.member_task(0).open_round()
    import pytest

    with pytest.raises(NotAuthorized, match="task: caller is not a trainer"):
        ledger.task.as_(ledger.outsider).commit_update(r, h("x"), 1)
