"""All aggregation rules behind one entry point, for aggregators, audits and benchmarks.

:data:`AGGREGATION_RULES` maps a rule name to its :class:`RuleSpec` (function,
default parameters, citation, which side inputs it takes); :func:`aggregate`
validates the input once, runs the rule and returns a :class:`RuleResult`: the
uint64 fixed-point delta (apply it with :func:`apply_update`) plus which updates
were used and with what weight, for reports and audits.

Every rule is deterministic across machines: selections, sorts, distances and
inner products are exact integer computations on the int64 view of the
fixed-point values, weights are exact fractions (or rounded down onto a fixed
power-of-two grid), ties go to the lowest index, and results are rounded toward
zero. Parameters given in model units (``tau``, ``max_norm``) are scaled by
``2**frac_bits``; the float given is used at its exact binary value.

``aggregate(..., clip_to_median_norm=True)`` first clips every update to the
batch's median norm (FLAME's adaptive clipping, :mod:`.median_norm`), whatever
the rule: a task's ``TaskConfig.clip_to_median_norm``; ``lift_to_median_norm=True`` scales shorter
updates up to that norm (a task's ``TaskConfig.lift_to_median_norm``). ``example_cap=C`` reads every
example count as at most ``C`` (:mod:`.example_cap`): a task's ``TaskConfig.cap_examples_to_median``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from fractions import Fraction
from types import MappingProxyType

import numpy as np
import numpy.typing as npt

from fedledger.exceptions import AggregationError
from fedledger.learning.aggregation import median_norm
from fedledger.learning.aggregation._batch import RuleInputs, RuleOutcome, Tensors, UpdateBatch, stack_updates
from fedledger.learning.aggregation._exact import IntArray
from fedledger.learning.aggregation._params import resolve_params
from fedledger.learning.aggregation.bulyan import bulyan_rule
from fedledger.learning.aggregation.centered_clipping import centered_clipping_rule
from fedledger.learning.aggregation.example_cap import cap_example_counts
from fedledger.learning.aggregation.fedavg import fedavg
from fedledger.learning.aggregation.fltrust import fltrust_rule
from fedledger.learning.aggregation.fltrust_median import fltrust_median_rule
from fedledger.learning.aggregation.foolsgold import foolsgold_rule
from fedledger.learning.aggregation.krum import krum_rule, multi_krum_rule
from fedledger.learning.aggregation.median import median_rule
from fedledger.learning.aggregation.norm_bounding import norm_bounding_rule
from fedledger.learning.aggregation.trimmed_mean import trimmed_mean_rule

__all__ = ["AGGREGATION_RULES", "RuleResult", "RuleSpec", "aggregate"]

RuleFunction = Callable[[RuleInputs, Mapping[str, object]], RuleOutcome]


@dataclass(frozen=True)
class RuleSpec:
    """One aggregation rule: how to call it and where it comes from."""

    name: str
    function: RuleFunction
    defaults: Mapping[str, object]
    citation: str
    needs_reference: bool = False
    """The rule needs ``reference=`` (a trusted update, e.g. FLTrust's server update)."""
    accepts_center: bool = False
    """The rule takes ``center=`` (e.g. the previous aggregate for centered clipping)."""
    accepts_history: bool = False
    """The rule takes ``history=`` (per-update accumulated updates, FoolsGold)."""
    summary: str = ""


@dataclass(frozen=True)
class RuleResult:
    """An aggregate and how it was formed."""

    rule: str
    delta: dict[str, npt.NDArray[np.uint64]]
    """The aggregated update, uint64 fixed point with the input's ``frac_bits``."""
    selected: tuple[int, ...]
    """Indices of the updates that contributed (all of them for coordinate-wise rules)."""
    weights: tuple[Fraction, ...] | None
    """Per-update weight of a weighted-mean rule (sums to 1, or all 0); ``None`` for coordinate-wise rules."""
    params: Mapping[str, object]
    """The parameters used, defaults filled in."""
    details: Mapping[str, object] = field(default_factory=dict)
    """Rule diagnostics for reports: Krum scores, trust scores, clip factors..."""


def _fedavg_rule(inputs: RuleInputs, params: Mapping[str, object]) -> RuleOutcome:
    averaged = fedavg(inputs.batch.updates, inputs.batch.num_examples)
    total = sum(inputs.batch.num_examples)
    weights = tuple(Fraction(count, total) for count in inputs.batch.num_examples)
    row = inputs.batch.flatten(averaged, "fedavg result")
    return RuleOutcome(row, tuple(range(inputs.batch.size)), weights)


def _spec(name: str, function: RuleFunction, defaults: Mapping[str, object], citation: str, **kw: object) -> RuleSpec:
    return RuleSpec(name, function, MappingProxyType(dict(defaults)), citation, **kw)  # type: ignore[arg-type]


AGGREGATION_RULES: Mapping[str, RuleSpec] = MappingProxyType(
    {
        spec.name: spec
        for spec in (
            _spec(
                "fedavg",
                _fedavg_rule,
                {},
                "McMahan, Moore, Ramage, Hampson, Aguera y Arcas, Communication-Efficient Learning of Deep Networks "
                "from Decentralized Data, AISTATS 2017",
                summary="example-weighted mean (not robust; the baseline)",
            ),
            _spec(
                "median",
                median_rule,
                {},
                "Yin, Chen, Ramchandran, Bartlett, Byzantine-Robust Distributed Learning, ICML 2018",
                summary="coordinate-wise median",
            ),
            _spec(
                "trimmed-mean",
                trimmed_mean_rule,
                {"beta": 0.1, "trim": None},
                "Yin, Chen, Ramchandran, Bartlett, Byzantine-Robust Distributed Learning, ICML 2018",
                summary="coordinate-wise mean after dropping trim (default floor(beta*n)) values from each side",
            ),
            _spec(
                "krum",
                krum_rule,
                {"f": None, "fallback": "median"},
                "Blanchard, El Mhamdi, Guerraoui, Stainer, Machine Learning with Adversaries, NeurIPS 2017",
                summary="the update closest to its n-f-2 neighbours (f default: largest with n > 2f+2); "
                "coordinate-wise median when n <= 2f+2 (fallback)",
            ),
            _spec(
                "multi-krum",
                multi_krum_rule,
                {"f": None, "m": None, "weighting": "uniform", "fallback": "median"},
                "Blanchard, El Mhamdi, Guerraoui, Stainer, Machine Learning with Adversaries, NeurIPS 2017",
                summary="mean of the m best Krum scores (m default n-f; weighting 'uniform' or 'examples')",
            ),
            _spec(
                "bulyan",
                bulyan_rule,
                {"f": None, "fallback": "median"},
                "El Mhamdi, Guerraoui, Rouault, The Hidden Vulnerability of Distributed Learning in Byzantium, "
                "ICML 2018",
                summary="iterated Krum selects n-2f, then per coordinate the mean of the n-4f closest to the median",
            ),
            _spec(
                "fltrust",
                fltrust_rule,
                {},
                "Cao, Fang, Liu, Gong, FLTrust: Byzantine-robust Federated Learning via Trust Bootstrapping, NDSS 2021",
                needs_reference=True,
                summary="ReLU-cosine trust against a reference update, updates rescaled to its norm",
            ),
            _spec(
                "fltrust-median",
                fltrust_median_rule,
                {},
                "Cao, Fang, Liu, Gong, FLTrust: Byzantine-robust Federated Learning via Trust Bootstrapping, NDSS "
                "2021; reference: coordinate-wise median (Yin et al., ICML 2018); clip to the median norm "
                "(Nguyen et al., FLAME, USENIX Security 2022)",
                summary="FLTrust with the coordinate-wise median of the updates as reference (no trusted party), "
                "updates clipped to the median norm",
            ),
            _spec(
                "centered-clipping",
                centered_clipping_rule,
                {"tau": 1.0, "iterations": 1},
                "Karimireddy, He, Jaggi, Learning from History for Byzantine Robust Optimization, ICML 2021",
                accepts_center=True,
                summary="clip each update to radius tau around the center (previous aggregate or zero)",
            ),
            _spec(
                "norm-bounding",
                norm_bounding_rule,
                {"max_norm": 1.0},
                "Sun, Kairouz, Suresh, McMahan, Can You Really Backdoor Federated Learning?, 2019",
                summary="clip each update to L2 norm max_norm, then example-weighted mean",
            ),
            _spec(
                "foolsgold",
                foolsgold_rule,
                {"confidence": 1.0},
                "Fung, Yoon, Beschastnikh, The Limitations of Federated Learning in Sybil Settings, RAID 2020",
                accepts_history=True,
                summary="down-weights updates whose (historical) directions are too similar (sybils)",
            ),
        )
    }
)


def _side_input(batch: UpdateBatch, tensors: Tensors | None, what: str) -> IntArray | None:
    return None if tensors is None else batch.flatten(tensors, what)


def aggregate(
    rule: str,
    updates: Sequence[Tensors],
    num_examples: Sequence[int],
    *,
    frac_bits: int,
    reference: Tensors | None = None,
    center: Tensors | None = None,
    history: Sequence[Tensors] | None = None,
    params: Mapping[str, object] | None = None,
    clip_to_median_norm: bool = False,
    lift_to_median_norm: bool = False,
    example_cap: int | None = None,
) -> RuleResult:
    """Aggregate fixed-point updates with the named rule.

    ``updates`` are uint64 fixed-point deltas with ``frac_bits`` fractional bits,
    all with the same tensor names and shapes; ``num_examples`` their example
    counts. ``reference``, ``center`` and ``history`` (one entry per update) are
    update-shaped side inputs for the rules that take them. ``clip_to_median_norm``:
    first scale every update longer than the updates' median norm down to it
    (FLAME's adaptive clipping, :mod:`.median_norm`), then apply the rule to the
    clipped updates. ``lift_to_median_norm``: likewise scale every non-zero update shorter than that median norm
    up to it (one median for both; with both on, every non-zero update has the median norm). ``example_cap``:
    read every example count as at most this (the round's median declared count, :mod:`.example_cap`), so no
    member outweighs the median member whatever it declares.
    Raises :class:`AggregationError` naming what is wrong with the input.
    """
    spec = AGGREGATION_RULES.get(rule)
    if spec is None:
        raise AggregationError(f"unknown aggregation rule {rule!r} (known: {', '.join(sorted(AGGREGATION_RULES))})")
    resolved = resolve_params(rule, spec.defaults, params)
    if reference is not None and not spec.needs_reference:
        raise AggregationError(f"rule {rule!r} does not take a reference update")
    if reference is None and spec.needs_reference:
        raise AggregationError(f"rule {rule!r} needs a reference update (reference=...)")
    if center is not None and not spec.accepts_center:
        raise AggregationError(f"rule {rule!r} does not take a center")
    if history is not None and not spec.accepts_history:
        raise AggregationError(f"rule {rule!r} does not take an update history")
    batch = stack_updates(updates, num_examples, frac_bits=frac_bits)
    clip_details: dict[str, object] = {}
    if example_cap is not None:
        if isinstance(example_cap, bool) or not isinstance(example_cap, int) or example_cap < 1:
            raise AggregationError(f"example_cap must be a positive integer, got {example_cap!r}")
        batch = replace(batch, num_examples=tuple(cap_example_counts(batch.num_examples, example_cap)))
        clip_details["example_cap"] = example_cap
    if clip_to_median_norm or lift_to_median_norm:
        scaled = median_norm.scale_to_median_norm(batch.matrix, clip=clip_to_median_norm, lift=lift_to_median_norm)
        batch = batch.with_rows(scaled.matrix)
        clip_details = {
            "median_sq_norm_before_rule": scaled.median_sq_norm,
            "median_norm_clip_factors": [float(f) for f in scaled.factors],
        }
    history_rows = None
    if history is not None:
        if len(history) != batch.size:
            raise AggregationError(f"{batch.size} updates but {len(history)} history entries")
        history_rows = np.stack([batch.flatten(h, f"history[{k}]") for k, h in enumerate(history)])
    inputs = RuleInputs(
        batch,
        reference=_side_input(batch, reference, "reference"),
        center=_side_input(batch, center, "center"),
        history=history_rows,
    )
    outcome = spec.function(inputs, resolved)
    return RuleResult(
        rule,
        batch.unflatten(outcome.row),
        outcome.selected,
        outcome.weights,
        MappingProxyType(resolved),
        MappingProxyType({**clip_details, **outcome.details}),
    )
