"""The governance replay of an audit: every vote that changed a task or released its model, re-derived from events.

From the trusted consortium's events and the task's own, it checks that:
- each executed call or release followed approvals, by members that were active admins when they approved, that
  reached the approval threshold in force at that moment (replayed from ``ThresholdChanged``);
- each pause, resumption and staged setting of the task came from such a call, in the same transaction;
- each setting put in force when a round opened is the last value staged for it, replacing the value it held
  (starting from the committed config's), and lies within the bounds the config declared;
- no round opened while the task was paused;
- each released model is the model the task finalized in the round the release names;
- the bounds the task contract holds are the ones its committed config declares.

It trusts nothing but the chain's events and the committed config.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence

from eth_utils import function_signature_to_4byte_selector

from fedledger.chain.consortium import ProposalKind, Role
from fedledger.chain.events import (
    LedgerEvent,
    ProposalApproved,
    ProposalCreated,
    RoundFinalized,
    RoundOpened,
    ThresholdChanged,
)
from fedledger.chain.governance import param_name
from fedledger.chain.governance_events import CallExecuted, ModelReleased, ParamChanged, ParamStaged, TaskPaused
from fedledger.federation.config import TaskConfig

__all__ = ["audit_governance"]

HadRole = Callable[[str, Role, tuple[int, int]], bool]
Fail = Callable[..., None]
_GOVERNED_SELECTORS = {"TaskPaused": "set_paused(bool)", "ParamStaged": "set_param(uint8,uint256)"}


def audit_governance(
    consortium_events: Sequence[LedgerEvent],
    task_address: str,
    task_events: Sequence[LedgerEvent],
    config: TaskConfig,
    declared_bounds: Sequence[tuple[str, int, int]],
    had_role: HadRole,
    fail: Fail,
) -> int:
    """Check the task's governance history (see the module docstring); returns how many votes it re-derived."""
    configured = tuple((name, low, high) for name, (low, high) in config.timing.mutable.items())
    if tuple(sorted(declared_bounds)) != tuple(sorted(configured)):
        fail(f"task contract declares mutable settings {list(declared_bounds)}, its config declares {list(configured)}")
    executed = _executed_votes(consortium_events, had_role, fail)
    calls = {e.tx_hash: e for e in consortium_events if isinstance(e, CallExecuted) and e.target == task_address}
    _replay_task(task_events, calls, config, fail)
    finalized = {e.round_id: e.model_hash for e in task_events if isinstance(e, RoundFinalized)}
    for e in consortium_events:
        if isinstance(e, ModelReleased) and e.task == task_address and finalized.get(e.round_id) != e.model_hash:
            fail(f"proposal {e.proposal_id} released {e.model_hash}, which is not the model round {e.round_id} "
                 f"finalized ({finalized.get(e.round_id)})", round_id=e.round_id, h=e.model_hash)  # fmt: skip
    return sum(
        1 for e in consortium_events if isinstance(e, CallExecuted | ModelReleased) and e.proposal_id in executed
    )


def _executed_votes(events: Sequence[LedgerEvent], had_role: HadRole, fail: Fail) -> set[int]:
    """The proposals executed as calls or releases whose approvals met the threshold in force when they executed."""
    threshold, kinds = 1, dict[int, int]()
    approvers: dict[int, list[tuple[str, tuple[int, int]]]] = defaultdict(list)
    checked: set[int] = set()
    for e in events:
        if isinstance(e, ThresholdChanged):
            threshold = e.new_threshold
        elif isinstance(e, ProposalCreated):
            kinds[e.proposal_id] = e.kind
        elif isinstance(e, ProposalApproved):
            approvers[e.proposal_id].append((e.admin, (e.block_number, e.log_index)))
        elif isinstance(e, CallExecuted | ModelReleased):
            at = (e.block_number, e.log_index)
            # An approval counts when its admin was one when approving and still is: a revoked admin's vote lapses.
            valid = {
                a
                for a, when in approvers[e.proposal_id]
                if had_role(a, Role.ADMIN, when) and had_role(a, Role.ADMIN, at)
            }
            expected = ProposalKind.CALL if isinstance(e, CallExecuted) else ProposalKind.RELEASE
            if kinds.get(e.proposal_id) != expected:
                fail(f"proposal {e.proposal_id} executed as a {expected.name.lower()}, it was proposed as "
                     f"kind {kinds.get(e.proposal_id)}")  # fmt: skip
            elif len(valid) < threshold:
                fail(f"proposal {e.proposal_id} executed with {len(valid)} admin approvals, the threshold was "
                     f"{threshold}")  # fmt: skip
            else:
                checked.add(e.proposal_id)
    return checked


def _replay_task(events: Sequence[LedgerEvent], calls: dict[str, CallExecuted], config: TaskConfig, fail: Fail) -> None:
    paused = False
    in_force: dict[int, int] = {}
    staged: dict[int, int] = {}
    bounds = config.timing.mutable
    for e in events:
        if isinstance(e, TaskPaused | ParamStaged):
            call = calls.get(e.tx_hash)
            if call is None:
                fail(f"{type(e).__name__} at block {e.block_number} came from no executed consortium vote")
            elif not _selector_matches(call, _GOVERNED_SELECTORS[type(e).__name__]):
                fail(f"{type(e).__name__} at block {e.block_number} came from a vote on another function")
        if isinstance(e, TaskPaused):
            if e.paused == paused:
                fail(f"task {'paused' if paused else 'resumed'} twice, at block {e.block_number}")
            paused = e.paused
        elif isinstance(e, ParamStaged):
            staged[e.param] = e.value
            low, high = bounds.get(param_name(e.param), (0, -1))
            if not low <= e.value <= high:
                fail(f"{param_name(e.param)} staged at {e.value}, outside the declared bounds [{low}, {high}]")
        elif isinstance(e, ParamChanged):
            _check_change(e, staged, in_force, config, fail)
        elif isinstance(e, RoundOpened) and paused:
            fail(f"round {e.round_id} opened while the task was paused", round_id=e.round_id)


def _check_change(
    e: ParamChanged, staged: dict[int, int], in_force: dict[int, int], config: TaskConfig, fail: Fail
) -> None:
    name = param_name(e.param)
    previous = in_force.get(e.param, getattr(config, name, None))
    if staged.pop(e.param, None) != e.new_value:
        fail(f"{name} put in force at {e.new_value} in round {e.round_id}, not the value staged", round_id=e.round_id)
    if previous != e.old_value:
        fail(f"{name} changed from {e.old_value} in round {e.round_id}, it held {previous}", round_id=e.round_id)
    in_force[e.param] = e.new_value


def _selector_matches(call: CallExecuted, signature: str) -> bool:
    return call.selector == "0x" + function_signature_to_4byte_selector(signature).hex()
