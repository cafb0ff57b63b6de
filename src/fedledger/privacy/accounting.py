"""Privacy accounting: how much of its epsilon budget a member has spent, computed with dp-accounting.

Every DP mechanism fedledger runs is a composition of the Poisson-subsampled
Gaussian mechanism, described here by :class:`SampledGaussian` (noise
multiplier ``sigma``, sampling rate ``q``, number of ``steps``):

- sample-level DP-SGD inside a member's local training (Abadi, Chu, Goodfellow,
  McMahan, Mironov, Talwar, Zhang, "Deep Learning with Differential Privacy",
  CCS 2016): ``q`` = expected batch / local examples, one step per batch;
- client-level DP-FedAvg (McMahan, Ramage, Talwar, Zhang, "Learning
  Differentially Private Recurrent Language Models", ICLR 2018): ``q`` =
  members per round / members, one step per round.

Epsilon at the task's delta comes from Google's ``dp_accounting`` library, never
from home-made formulas: the Rényi DP accountant (Mironov, "Rényi Differential
Privacy", CSF 2017; subsampled Gaussian by Mironov, Talwar, Zhang 2019; RDP to
(epsilon, delta) with the tighter conversion of Canonne, Kamath, Steinke 2020) by
default, or the privacy-loss-distribution accountant (Meiser, Mohammadi 2018;
Koskela, Jälkö, Honkela 2020), which is tighter still and slower.

The DP-SGD numbers published with Opacus (epsilon 2.91 at sigma 1.1, q 0.004, 60
epochs) use the older conversion ``min_a rdp(a) + log(1/delta) / (a - 1)``; the
same RDP curve from dp_accounting gives 2.50 with its tighter conversion. Both are
valid upper bounds; the tests pin both.

On chain a member declares its cumulative epsilon as an integer number of
micro-epsilons rounded UP (:func:`epsilon_to_micro`) and the task's budget is
rounded DOWN (:func:`budget_to_micro`), so rounding can only make the check
stricter. :meth:`PrivacyAccount.can_train` applies that same integer comparison
to the epsilon the member would have AFTER its next round, so an honest node
refuses to train exactly when the contract would refuse its commitment.
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import dp_accounting
from dp_accounting import pld, rdp

from fedledger.exceptions import BadInput, ConfigError, PrivacyBudgetExceeded
from fedledger.privacy._quiet import quiet_rdp_orders as _quiet_rdp_orders
from fedledger.store.safejson import loads_shallow

__all__ = [
    "ACCOUNTANTS",
    "LEDGER_FORMAT",
    "MICRO",
    "SPENDS_FORMAT",
    "Accountant",
    "MemberSpend",
    "PrivacyAccount",
    "PrivacyBudgetExceeded",
    "PrivacyLedger",
    "PrivacyReport",
    "SampledGaussian",
    "SpendRecord",
    "budget_to_micro",
    "build_privacy_report",
    "calibrate_noise_multiplier",
    "compute_epsilon",
    "dp_fedavg_mechanism",
    "dp_sgd_mechanism",
    "epsilon_to_micro",
    "micro_to_epsilon",
    "read_spends",
    "within_budget",
    "write_spends",
]

Accountant = Literal["rdp", "pld"]
ACCOUNTANTS: tuple[Accountant, ...] = ("rdp", "pld")
MICRO = 10**6
"""Declared epsilons are integers in units of 1e-6 epsilon."""
LEDGER_FORMAT = "fedledger-privacy-ledger/1"
SPENDS_FORMAT = "fedledger-privacy-spends/1"
_UINT256_MAX = 2**256 - 1


# -- mechanisms --------------------------------------------------------------------------------


MAX_NOISE_MULTIPLIER = 1e6
"""The largest noise multiplier an accountant takes: the privacy loss of one step is already zero in double
precision, and dp-accounting's arithmetic overflows or stalls on larger ones."""


@dataclass(frozen=True)
class SampledGaussian:
    """``steps`` compositions of the Gaussian mechanism on a Poisson sample of rate ``sample_rate``.

    ``noise_multiplier`` is the noise standard deviation divided by the L2
    sensitivity (the clip bound). ``noise_multiplier == 0`` means no noise
    (epsilon is infinite); ``sample_rate == 1`` means no subsampling.
    """

    noise_multiplier: float
    sample_rate: float
    steps: int

    def __post_init__(self) -> None:
        if not (math.isfinite(self.noise_multiplier) and 0 <= self.noise_multiplier <= MAX_NOISE_MULTIPLIER):
            raise BadInput(
                f"noise_multiplier must be within 0..{MAX_NOISE_MULTIPLIER:g}, got {self.noise_multiplier!r}"
            )
        if not (math.isfinite(self.sample_rate) and 0 < self.sample_rate <= 1):
            raise BadInput(f"sample_rate must be in (0, 1], got {self.sample_rate!r}")
        if isinstance(self.steps, bool) or not isinstance(self.steps, int) or self.steps < 1:
            raise BadInput(f"steps must be a positive integer, got {self.steps!r}")

    def dp_event(self) -> dp_accounting.DpEvent:
        """The dp_accounting event: Poisson-sampled Gaussian, self-composed ``steps`` times."""
        if self.noise_multiplier == 0:
            return dp_accounting.NonPrivateDpEvent()  # without noise, sampling does not help: epsilon is infinite
        gaussian = dp_accounting.GaussianDpEvent(self.noise_multiplier)
        once = gaussian if self.sample_rate == 1 else dp_accounting.PoissonSampledDpEvent(self.sample_rate, gaussian)
        return dp_accounting.SelfComposedDpEvent(once, self.steps)

    def to_json(self) -> dict[str, Any]:
        return {"noise_multiplier": self.noise_multiplier, "sample_rate": self.sample_rate, "steps": self.steps}

    @classmethod
    def from_json(cls, obj: Any) -> SampledGaussian:
        if not isinstance(obj, Mapping):
            raise BadInput(f"a mechanism must be a JSON object, got {type(obj).__name__}")
        try:
            return cls(
                _as_float(obj["noise_multiplier"], "noise_multiplier"),
                _as_float(obj["sample_rate"], "sample_rate"),
                _as_int(obj["steps"], "steps"),
            )
        except KeyError as exc:
            raise BadInput(f"mechanism is missing {exc.args[0]!r}") from None


def dp_sgd_mechanism(*, noise_multiplier: float, num_examples: int, batch_size: int, epochs: int) -> SampledGaussian:
    """What ``epochs`` of Opacus DP-SGD over ``num_examples`` local examples compose to.

    Opacus' Poisson data loader keeps the original loader's length,
    ``ceil(num_examples / batch_size)`` steps per epoch, each including every
    example with probability ``1 / steps_per_epoch`` (see ``train_dp_sgd``).
    """
    if num_examples < 1 or batch_size < 1 or epochs < 1:
        raise BadInput(
            f"num_examples, batch_size and epochs must be positive, got {num_examples}, {batch_size}, {epochs}"
        )
    steps_per_epoch = math.ceil(num_examples / batch_size)
    return SampledGaussian(float(noise_multiplier), 1.0 / steps_per_epoch, epochs * steps_per_epoch)


def dp_fedavg_mechanism(
    *, noise_multiplier: float, members_per_round: int, total_members: int, rounds: int = 1
) -> SampledGaussian:
    """Client-level DP-FedAvg: ``rounds`` rounds, each summing a Poisson sample of the members.

    With every member training every round (fedledger's default) the rate is 1
    and each round is one plain Gaussian mechanism on the clipped sum.
    """
    if not 1 <= members_per_round <= total_members:
        raise BadInput(f"members_per_round must be in [1, {total_members}], got {members_per_round}")
    return SampledGaussian(float(noise_multiplier), members_per_round / total_members, rounds)


def _accountant(kind: Accountant) -> dp_accounting.PrivacyAccountant:
    if kind == "rdp":
        return rdp.RdpAccountant()
    if kind == "pld":
        return pld.PLDAccountant()
    raise ConfigError(f"unknown privacy accountant {kind!r}; expected one of {', '.join(ACCOUNTANTS)}")


def _check_delta(delta: float) -> None:
    if not (math.isfinite(delta) and 0 < delta < 1):
        raise BadInput(f"delta must be in (0, 1), got {delta!r}")


def compute_epsilon(mechanisms: Iterable[SampledGaussian], *, delta: float, accountant: Accountant = "rdp") -> float:
    """Epsilon at ``delta`` of all ``mechanisms`` composed (0 for none, ``inf`` if any adds no noise)."""
    _check_delta(delta)
    acc = _accountant(accountant)
    with _quiet_rdp_orders():
        for mechanism in mechanisms:
            acc.compose(mechanism.dp_event())
        return float(acc.get_epsilon(delta))


def calibrate_noise_multiplier(
    *, target_epsilon: float, delta: float, sample_rate: float, steps: int, accountant: Accountant = "rdp"
) -> float:
    """The smallest noise multiplier whose ``steps`` sampled-Gaussian steps stay within ``target_epsilon``.

    Uses dp_accounting's own calibration (Brent's method over fresh accountants);
    the result satisfies the target, within ``1e-4`` of the optimum.
    """
    _check_delta(delta)
    if not (math.isfinite(target_epsilon) and target_epsilon > 0):
        raise BadInput(f"target_epsilon must be positive and finite, got {target_epsilon!r}")
    SampledGaussian(1.0, sample_rate, steps)  # validates the rate and steps

    def event(sigma: float) -> dp_accounting.DpEvent:
        return SampledGaussian(sigma, sample_rate, steps).dp_event()

    with _quiet_rdp_orders():
        sigma = dp_accounting.calibrate_dp_mechanism(
            lambda: _accountant(accountant),
            event,
            target_epsilon,
            delta,
            dp_accounting.LowerEndpointAndGuess(1e-3, 1.0),
            tol=1e-4,
        )
    return float(sigma)


# -- declared spends (the chain encoding) -------------------------------------------------------


def epsilon_to_micro(epsilon: float) -> int:
    """A spend as micro-epsilons, rounded UP (a declaration never understates the spend).

    Rounding starts from the float's shortest decimal form (``repr``), which
    differs from its binary value by far less than a micro-epsilon.
    """
    if not (math.isfinite(epsilon) and epsilon >= 0):
        raise BadInput(f"a declared epsilon must be finite and >= 0, got {epsilon!r}")
    micro = math.ceil(_decimal(epsilon) * MICRO)
    if micro > _UINT256_MAX:
        raise BadInput(f"epsilon {epsilon!r} does not fit in a uint256 of micro-epsilons")
    return micro


def budget_to_micro(budget_epsilon: float) -> int:
    """A budget as micro-epsilons, rounded DOWN (rounding never loosens the budget)."""
    if not (math.isfinite(budget_epsilon) and budget_epsilon > 0):
        raise BadInput(f"a privacy budget must be positive and finite, got {budget_epsilon!r}")
    micro = math.floor(_decimal(budget_epsilon) * MICRO)
    if micro > _UINT256_MAX:
        raise BadInput(f"budget {budget_epsilon!r} does not fit in a uint256 of micro-epsilons")
    return micro


def micro_to_epsilon(micro: int) -> float:
    """A declared micro-epsilon integer back to epsilon."""
    if isinstance(micro, bool) or not isinstance(micro, int) or not 0 <= micro <= _UINT256_MAX:
        raise BadInput(f"micro-epsilon must be an integer in [0, 2^256), got {micro!r}")
    return micro / MICRO


def within_budget(epsilon: float, budget_epsilon: float) -> bool:
    """The contract's rule: declared (rounded up) <= budget (rounded down); ``inf`` never fits."""
    if math.isinf(epsilon):
        return False
    return epsilon_to_micro(epsilon) <= budget_to_micro(budget_epsilon)


# -- per-member accounts and the ledger ---------------------------------------------------------


@dataclass(frozen=True)
class SpendRecord:
    """A member's cumulative epsilon after a round: what it declares on chain with its update."""

    member: str
    round_id: int
    epsilon: float

    @property
    def micro_epsilon(self) -> int:
        return epsilon_to_micro(self.epsilon)

    def to_json(self) -> dict[str, Any]:
        return {"member": self.member, "round": self.round_id, "epsilon": self.epsilon}

    @classmethod
    def from_json(cls, obj: Any) -> SpendRecord:
        """From ``{"member", "round", "epsilon" | "micro_epsilon"}`` (chain events carry micro-epsilons)."""
        if not isinstance(obj, Mapping):
            raise BadInput(f"a spend record must be a JSON object, got {type(obj).__name__}")
        member = obj.get("member")
        if not isinstance(member, str) or not member.strip():
            raise BadInput(f"spend record has no member name: {obj!r}")
        if "round" not in obj:
            raise BadInput(f"spend record of {member} has no round")
        round_id = _as_int(obj["round"], "round")
        if "micro_epsilon" in obj:
            epsilon = micro_to_epsilon(_as_int(obj["micro_epsilon"], "micro_epsilon"))
        elif "epsilon" in obj:
            epsilon = _as_float(obj["epsilon"], "epsilon")
        else:
            raise BadInput(f"spend record of {member} round {round_id} has neither epsilon nor micro_epsilon")
        return cls(member.strip(), round_id, epsilon)


@dataclass
class PrivacyAccount:
    """One member's spend: the mechanism of every round it trained in, composed by dp_accounting."""

    member: str
    delta: float
    accountant: Accountant = "rdp"
    rounds: list[tuple[int, SampledGaussian]] = field(default_factory=list)
    _cumulative: list[float] = field(default_factory=list, init=False, repr=False)
    # Composition is incremental: the accountant holds every recorded round, and the last look-ahead
    # (mechanism, accountant after it) is kept so recording the round just checked costs nothing more.
    _composed: dp_accounting.PrivacyAccountant = field(init=False, repr=False, compare=False)
    _lookahead: tuple[SampledGaussian, dp_accounting.PrivacyAccountant] | None = field(
        default=None, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        _check_delta(self.delta)
        self._composed = _accountant(self.accountant)
        replay, self.rounds, self._cumulative = self.rounds, [], []
        for round_id, mechanism in replay:
            self.record(round_id, mechanism)

    @property
    def epsilon(self) -> float:
        """Cumulative epsilon at ``delta`` over every round recorded (0 before any)."""
        return self._cumulative[-1] if self._cumulative else 0.0

    def _after(self, next_round: SampledGaussian) -> dp_accounting.PrivacyAccountant:
        if self._lookahead is None or self._lookahead[0] != next_round:
            self._lookahead = (next_round, copy.deepcopy(self._composed).compose(next_round.dp_event()))
        return self._lookahead[1]

    def epsilon_after(self, next_round: SampledGaussian) -> float:
        """The cumulative epsilon this member would have after one more round of ``next_round``."""
        return float(self._after(next_round).get_epsilon(self.delta))

    def can_train(self, budget_epsilon: float, next_round: SampledGaussian) -> bool:
        """Look-ahead: True only if the spend AFTER the next round still fits the budget."""
        return within_budget(self.epsilon_after(next_round), budget_epsilon)

    def require_budget(self, budget_epsilon: float, next_round: SampledGaussian) -> float:
        """The epsilon after the next round, or ``PrivacyBudgetExceeded`` if it would not fit."""
        after = self.epsilon_after(next_round)
        if not within_budget(after, budget_epsilon):
            raise PrivacyBudgetExceeded(self.member, epsilon_after=after, budget_epsilon=budget_epsilon)
        return after

    def record(self, round_id: int, mechanism: SampledGaussian) -> float:
        """Add a round this member trained in; returns its new cumulative epsilon. Rounds only move forward."""
        round_id = _as_int(round_id, "round")
        if round_id < 1:
            raise BadInput(f"round ids start at 1, got {round_id}")
        if self.rounds and round_id <= self.rounds[-1][0]:
            raise BadInput(f"{self.member}: round {round_id} recorded after round {self.rounds[-1][0]}")
        composed = self._after(mechanism)
        after = float(composed.get_epsilon(self.delta))
        self._composed, self._lookahead = composed, None
        self.rounds.append((round_id, mechanism))
        self._cumulative.append(after)
        return after

    def history(self) -> list[SpendRecord]:
        """The cumulative epsilon after each recorded round."""
        return [SpendRecord(self.member, r, eps) for (r, _), eps in zip(self.rounds, self._cumulative, strict=True)]


@dataclass
class PrivacyLedger:
    """Every member's :class:`PrivacyAccount` under one task's delta and accountant; saved as JSON.

    A member node keeps its own account; a simulation or an auditor keeps all of
    them. Only mechanism parameters are stored: epsilons are recomputed on load,
    so a file cannot claim a smaller spend than its mechanisms give.
    """

    delta: float
    accountant: Accountant = "rdp"
    accounts: dict[str, PrivacyAccount] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_delta(self.delta)
        _accountant(self.accountant)

    def account(self, member: str) -> PrivacyAccount:
        if member not in self.accounts:
            self.accounts[member] = PrivacyAccount(member, self.delta, self.accountant)
        return self.accounts[member]

    def record(self, member: str, round_id: int, mechanism: SampledGaussian) -> float:
        return self.account(member).record(round_id, mechanism)

    def can_train(self, member: str, budget_epsilon: float, next_round: SampledGaussian) -> bool:
        return self.account(member).can_train(budget_epsilon, next_round)

    def spend_records(self) -> list[SpendRecord]:
        return [rec for name in sorted(self.accounts) for rec in self.accounts[name].history()]

    def to_json(self) -> dict[str, Any]:
        return {
            "format": LEDGER_FORMAT,
            "delta": self.delta,
            "accountant": self.accountant,
            "members": {
                name: [{"round": r, **m.to_json()} for r, m in self.accounts[name].rounds]
                for name in sorted(self.accounts)
            },
        }

    @classmethod
    def from_json(cls, obj: Any) -> PrivacyLedger:
        if not isinstance(obj, Mapping) or obj.get("format") != LEDGER_FORMAT:
            raise BadInput(f"not a privacy ledger in format {LEDGER_FORMAT}")
        members = obj.get("members", {})
        if not isinstance(members, Mapping):
            raise BadInput("privacy ledger: 'members' must be an object")
        accountant = obj.get("accountant", "rdp")
        if accountant not in ACCOUNTANTS:
            raise BadInput(f"privacy ledger: unknown accountant {accountant!r}")
        ledger = cls(_as_float(obj.get("delta"), "delta"), accountant)
        for name, rounds in members.items():
            if not isinstance(rounds, list):
                raise BadInput(f"privacy ledger: rounds of {name} must be a list")
            for entry in rounds:
                if not isinstance(entry, Mapping) or "round" not in entry:
                    raise BadInput(f"privacy ledger: an entry of {name} has no round")
                ledger.record(str(name), _as_int(entry["round"], "round"), SampledGaussian.from_json(entry))
        return ledger

    def save(self, path: str | Path) -> Path:
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(self.to_json(), indent=2, sort_keys=True) + "\n")
        return target

    @classmethod
    def load(cls, path: str | Path) -> PrivacyLedger:
        return cls.from_json(_read_json(Path(path)))


# -- the report ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class MemberSpend:
    member: str
    rounds: tuple[int, ...]
    epsilon: float
    """Latest cumulative declared epsilon."""
    remaining: float | None
    """Budget left (never negative), if a budget is known."""
    over_budget: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "member": self.member,
            "rounds": list(self.rounds),
            "epsilon": self.epsilon,
            "micro_epsilon": epsilon_to_micro(self.epsilon),
            "remaining": self.remaining,
            "over_budget": self.over_budget,
        }


@dataclass(frozen=True)
class PrivacyReport:
    """Spend per member and for the task (the largest member spend: the guarantee every member gets)."""

    members: tuple[MemberSpend, ...]
    budget_epsilon: float | None
    delta: float | None

    @property
    def task_epsilon(self) -> float:
        return max((m.epsilon for m in self.members), default=0.0)

    def to_json(self) -> dict[str, Any]:
        return {
            "delta": self.delta,
            "budget_epsilon": self.budget_epsilon,
            "task_epsilon": self.task_epsilon,
            "members": [m.to_json() for m in self.members],
        }


def build_privacy_report(
    records: Iterable[SpendRecord], *, budget_epsilon: float | None = None, delta: float | None = None
) -> PrivacyReport:
    """Summarize declared spends (from chain events or a file); ``BadInput`` on inconsistent records.

    Declarations are cumulative, so a member's epsilon may never go down from one
    round to the next, and a member declares once per round.
    """
    if budget_epsilon is not None:
        budget_to_micro(budget_epsilon)  # validates it
    if delta is not None:
        _check_delta(delta)
    by_member: dict[str, dict[int, float]] = {}
    for rec in records:
        if rec.round_id < 1:
            raise BadInput(f"{rec.member}: round ids start at 1, got {rec.round_id}")
        epsilon_to_micro(rec.epsilon)  # finite and >= 0
        rounds = by_member.setdefault(rec.member, {})
        if rec.round_id in rounds:
            raise BadInput(f"{rec.member} declared twice in round {rec.round_id}")
        rounds[rec.round_id] = rec.epsilon
    spends = []
    for member in sorted(by_member):
        rounds = by_member[member]
        ordered = sorted(rounds)
        for prev, cur in zip(ordered, ordered[1:], strict=False):
            if rounds[cur] < rounds[prev]:
                raise BadInput(
                    f"{member}: cumulative epsilon went down from {rounds[prev]} (round {prev}) "
                    f"to {rounds[cur]} (round {cur})"
                )
        eps = rounds[ordered[-1]]
        remaining = None if budget_epsilon is None else max(0.0, budget_epsilon - eps)
        over = budget_epsilon is not None and not within_budget(eps, budget_epsilon)
        spends.append(MemberSpend(member, tuple(ordered), eps, remaining, over))
    return PrivacyReport(tuple(spends), budget_epsilon, delta)


def read_spends(path: str | Path) -> tuple[list[SpendRecord], float | None, float | None]:
    """Records, budget and delta from a spends file or a saved :class:`PrivacyLedger`.

    Spends file: ``{"format": "fedledger-privacy-spends/1", "delta": 1e-5,
    "budget_epsilon": 8.0, "records": [{"member": "0xab..", "round": 1,
    "epsilon": 0.41}, ...]}`` (``micro_epsilon`` integers instead of ``epsilon``
    are accepted, as chain events carry them; delta and budget are optional).
    """
    body = _read_json(Path(path))
    if isinstance(body, Mapping) and body.get("format") == LEDGER_FORMAT:
        ledger = PrivacyLedger.from_json(body)
        return ledger.spend_records(), None, ledger.delta
    if not isinstance(body, Mapping) or body.get("format") != SPENDS_FORMAT:
        raise BadInput(f"{path}: not a spends file ({SPENDS_FORMAT}) or privacy ledger ({LEDGER_FORMAT})")
    raw = body.get("records")
    if not isinstance(raw, list):
        raise BadInput(f"{path}: 'records' must be a list")
    budget = None if body.get("budget_epsilon") is None else _as_float(body["budget_epsilon"], "budget_epsilon")
    delta = None if body.get("delta") is None else _as_float(body["delta"], "delta")
    return [SpendRecord.from_json(r) for r in raw], budget, delta


def write_spends(
    path: str | Path,
    records: Sequence[SpendRecord],
    *,
    budget_epsilon: float | None = None,
    delta: float | None = None,
) -> Path:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    body = {
        "format": SPENDS_FORMAT,
        "budget_epsilon": budget_epsilon,
        "delta": delta,
        "records": [r.to_json() for r in records],
    }
    target.write_text(json.dumps(body, indent=2, sort_keys=True) + "\n")
    return target


# -- helpers -------------------------------------------------------------------------------------


def _decimal(value: float) -> Decimal:
    # The shortest decimal that reads back as this float, so 0.1 is 100000 micro-epsilons, not 100001.
    return Decimal(repr(float(value)))


def _read_json(path: Path) -> Any:
    try:
        return loads_shallow(path.read_text(), what=str(path))
    except FileNotFoundError:
        raise BadInput(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise BadInput(f"{path}: not readable JSON: {exc}") from exc


def _as_int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadInput(f"{what} must be an integer, got {value!r}")
    return value


def _as_float(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadInput(f"{what} must be a number, got {value!r}")
    result = float(value)
    if not math.isfinite(result):
        raise BadInput(f"{what} must be finite, got {value!r}")
    return result
