"""The direction check against the committee's own private references: a 3-member MPyC committee as OS processes,
one of whose members brings an adversarial reference; the MPC's bits equal the rule computed in clear."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("mpyc")


from fedledger.exceptions import BadInput, ConfigError  # noqa: E402
from fedledger.privacy.masked_checks import CheckParams, quantize_reference, to_fixed  # noqa: E402
from fedledger.privacy.masked_party import _reference, write_job  # noqa: E402
from fedledger.privacy.masked_reference import (  # noqa: E402
    PROJECTED_REFERENCE_NORM,
    committee_decision,
    project_reference,
)
from helpers.masked import run_committee, sealed_bundles  # noqa: E402

D = 400
PARAMS = CheckParams(length=D, norm_bound=1.0, min_cosine=0.2, reference="committee")
CONTEXT = bytes(range(32, 64))
SEED = bytes(32)


def _direction_and_updates() -> tuple[np.ndarray[Any, Any], dict[str, np.ndarray[Any, Any]]]:
    rng = np.random.default_rng(11)
    direction = rng.normal(size=D)
    direction /= np.linalg.norm(direction)

    def honest(norm: float) -> np.ndarray[Any, Any]:
        noise = rng.normal(size=D)
        return direction * norm + noise / np.linalg.norm(noise) * 0.3 * norm

    return direction, {
        "honest-a": honest(0.6),
        "honest-b": honest(0.9),
        "flipped": -honest(0.6),  # within the norm bound, against the honest references
        "boosted": honest(0.6) * 5.0,  # the honest direction, norm 3.1 > 1
    }


def _references(direction: np.ndarray[Any, Any], adversarial: int) -> list[np.ndarray[Any, Any]]:
    """Each committee member's own reference: the honest direction plus its own data's noise; the first
    ``adversarial`` members bring the attacker's (flipped) direction instead."""
    rng = np.random.default_rng(5)
    references = []
    for index in range(PARAMS.committee):
        own = direction + rng.normal(size=D) * 0.03
        references.append(-own if index < adversarial else own)
    return references


@pytest.fixture(scope="module")
def checked(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    direction, updates = _direction_and_updates()
    keys, _, bundles = sealed_bundles(PARAMS, updates, {m: 10 + i for i, m in enumerate(updates)}, CONTEXT)
    references = _references(direction, adversarial=1)
    folder = tmp_path_factory.mktemp("committee-reference")
    results = run_committee(folder, PARAMS, CONTEXT, keys, bundles, own_references=dict(enumerate(references)))
    return {"results": results, "updates": updates, "references": references}


def test_the_majority_of_the_committee_references_decides(checked: dict[str, Any]) -> None:
    results = checked["results"]
    assert [r["status"] for r in results] == ["ok"] * PARAMS.committee, results
    outcomes = [(r["outcome"]["passed"], r["outcome"]["rejected"]) for r in results]
    assert outcomes[1:] == outcomes[:1] * (PARAMS.committee - 1)
    outcome = results[0]["outcome"]
    # One committee member's reference points the attacker's way: it votes for the flipped update and against
    # the honest ones, and the two honest members' votes still decide both ways.
    assert outcome["passed"] == ["honest-a", "honest-b"]
    assert outcome["rejected"] == {
        "boosted": "failed the norm or direction check",
        "flipped": "failed the norm or direction check",
    }
    assert set(outcome) >= {"weighted_sum", "transcript"}
    assert "votes" not in str(outcome["transcript"])  # only the pass bit per update is revealed


def test_the_mpc_equals_the_rule_in_clear(checked: dict[str, Any]) -> None:
    outcome = checked["results"][0]["outcome"]
    seed = bytes.fromhex(outcome["transcript"]["seed"])
    references = [quantize_reference(r, PARAMS) for r in checked["references"]]
    for member, update in checked["updates"].items():
        decision = committee_decision(to_fixed(update, PARAMS), PARAMS, references, seed)
        assert decision == (member in outcome["passed"]), member


def test_the_rule_follows_the_majority_of_references() -> None:
    direction, updates = _direction_and_updates()
    fixed = {m: to_fixed(u, PARAMS) for m, u in updates.items()}
    for adversarial, accepted in [(0, {"honest-a", "honest-b"}), (1, {"honest-a", "honest-b"}), (2, {"flipped"})]:
        references = [quantize_reference(r, PARAMS) for r in _references(direction, adversarial)]
        passed = {m for m, x in fixed.items() if committee_decision(x, PARAMS, references, SEED)}
        assert passed == accepted, adversarial
    # Without a minimum cosine only the norm counts; a member without a reference direction does not object.
    no_direction = CheckParams(length=D, norm_bound=1.0, reference="committee")
    assert committee_decision(fixed["flipped"], no_direction, [None] * 3, SEED)
    assert committee_decision(fixed["flipped"], PARAMS, [None, None, None], SEED)
    assert not committee_decision(fixed["boosted"], PARAMS, [None, None, None], SEED)


def test_a_projected_reference_is_rescaled_and_bounded() -> None:
    direction, _ = _direction_and_updates()
    reference = quantize_reference(direction * 1e-3, PARAMS)
    projected = project_reference(reference, SEED, PARAMS)
    assert len(projected) == PARAMS.projections
    assert abs(np.linalg.norm(projected) - PROJECTED_REFERENCE_NORM) <= PARAMS.projections**0.5
    assert project_reference(None, SEED, PARAMS) == [0] * PARAMS.projections
    with pytest.raises(BadInput, match="reference has 3 values"):
        project_reference(np.array([1, 2, 3], dtype=object), SEED, PARAMS)
    with pytest.raises(BadInput, match="3 references for a committee of 5"):
        committee_decision(
            to_fixed(direction, PARAMS), CheckParams(length=D, norm_bound=1.0, committee=5), [None] * 3, SEED
        )
    with pytest.raises(ConfigError, match="reference must be"):
        CheckParams(length=D, norm_bound=1.0, reference="global")
    assert "reference" not in CheckParams(length=D, norm_bound=1.0).to_dict()  # public-reference bundles as before
    assert CheckParams.from_dict(PARAMS.to_dict()) == PARAMS


def test_a_committee_member_without_its_reference_cannot_run(tmp_path: Path) -> None:
    job = write_job(tmp_path, PARAMS, context=CONTEXT, bundles={}, reference=None, keys=[], timeout=5.0)
    with pytest.raises(ConfigError, match="committee member 1 has no reference of its own"):
        _reference(json.loads(job.read_text()), PARAMS, 1)
