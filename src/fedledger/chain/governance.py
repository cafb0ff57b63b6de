"""What a consortium vote may change on a running task, read from the task, and the calls a proposal carries.

A task declares at creation which settings are mutable and within what bounds (``TaskParams.param_bounds``). An
admin proposes a call (:meth:`fedledger.chain.consortium.ConsortiumClient.propose_call`) built here; the task vets it
at once (so a value outside the bounds is refused when proposed, with the task's reason), and the consortium executes
it when the approvals reach the threshold. A staged value takes effect when the next round opens.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from eth_abi.abi import decode as abi_decode
from eth_utils import to_bytes
from web3.types import BlockIdentifier

from fedledger.chain.task_records import GOVERNED_PARAMS, governed_param_id, uint_arg

if TYPE_CHECKING:
    from fedledger.chain.connection import Chain
    from fedledger.chain.task import TrainingTaskClient

__all__ = [
    "GovernanceState",
    "describe_call",
    "describe_release",
    "governance_state",
    "param_bounds_of",
    "param_name",
    "set_param_call",
    "set_paused_call",
]

_PARAM_NAMES = {v: k for k, v in GOVERNED_PARAMS.items()}


@dataclass(frozen=True)
class GovernanceState:
    """A task's governed settings now: whether it is paused, what may change within which bounds, the values in
    force and the values staged for the next round."""

    paused: bool
    bounds: dict[str, tuple[int, int]] = field(default_factory=dict)
    in_force: dict[str, int] = field(default_factory=dict)
    staged: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "paused": self.paused,
            "mutable": {name: {"low": low, "high": high} for name, (low, high) in self.bounds.items()},
            "in_force": self.in_force,
            "staged": self.staged,
        }


def param_name(param_id: int) -> str:
    """The setting's name for a contract id (``param <id>`` for an id this client does not know)."""
    return _PARAM_NAMES.get(param_id, f"param {param_id}")


def param_bounds_of(task: TrainingTaskClient, *, block: BlockIdentifier = "latest") -> tuple[tuple[str, int, int], ...]:
    """The mutable settings the task declared, as ``(name, low, high)`` in id order."""
    f, call = task.contract.functions, task.chain.call
    bounds = []
    for name, param_id in GOVERNED_PARAMS.items():
        high = int(call(f.param_high(param_id), block=block))
        if high:
            bounds.append((name, int(call(f.param_low(param_id), block=block)), high))
    return tuple(bounds)


def governance_state(task: TrainingTaskClient, *, block: BlockIdentifier = "latest") -> GovernanceState:
    """The task's governed settings at ``block``."""
    f, call = task.contract.functions, task.chain.call
    staged = {}
    for name, param_id in GOVERNED_PARAMS.items():
        raw = int(call(f.staged(param_id), block=block))
        if raw:
            staged[name] = raw - 1  # the contract stores value + 1, so that 0 means nothing staged
    return GovernanceState(
        paused=bool(call(f.paused(), block=block)),
        bounds={name: (low, high) for name, low, high in param_bounds_of(task, block=block)},
        in_force={name: int(call(getattr(f, name)(), block=block)) for name in GOVERNED_PARAMS},
        staged=staged,
    )


def set_param_call(task: TrainingTaskClient, name: str, value: int) -> bytes:
    """Calldata staging ``name = value`` on the task (what a proposal carries)."""
    encoded = task.contract.encode_abi("set_param", args=[governed_param_id(name), uint_arg(value, name)])
    return to_bytes(hexstr=encoded)


def set_paused_call(task: TrainingTaskClient, paused: bool) -> bytes:
    """Calldata pausing (``True``) or resuming (``False``) the task."""
    return to_bytes(hexstr=task.contract.encode_abi("set_paused", args=[bool(paused)]))


def describe_call(chain: Chain, target: str, payload: bytes) -> str:
    """A call proposal in words (``pause``, ``resume``, ``set commit_duration = 120``), read with the task ABI;
    the raw selector for a call the task ABI does not have."""
    try:
        fn, args = chain.contract("TrainingTask", target).decode_function_input(payload)
    except ValueError:
        return f"call {payload[:4].hex()} on {target}"
    if fn.fn_name == "set_paused":
        return "pause" if args["paused"] else "resume"
    if fn.fn_name == "set_param":
        return f"set {param_name(args['param'])} = {args['new_value']}"
    return f"call {fn.fn_name} on {target}"  # pragma: no cover - the task vets every governed call


def describe_release(payload: bytes) -> tuple[int, str]:
    """A release proposal's round and model hash."""
    round_id, model_hash = abi_decode(["uint256", "bytes32"], payload)
    return int(round_id), "0x" + bytes(model_hash).hex()
