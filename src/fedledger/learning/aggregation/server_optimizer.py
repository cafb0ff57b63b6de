"""Server-side adaptive optimizers: FedAdam, FedYogi and FedAdagrad.

Reddi, Charles, Zaheer, Garrett, Rush, Konečný, Kumar, McMahan, "Adaptive Federated
Optimization", ICLR 2021 (arXiv:2003.00295), Algorithm 2. The round's aggregate
``Δ_t`` (whatever rule produced it: FedAvg, a robust rule, or the unmasked sum of a
secure round) is a pseudo-gradient; the server keeps a first moment ``m`` and a
second moment ``v`` per coordinate and takes an adaptive step::

    m_t     = β1 m_{t-1} + (1 - β1) Δ_t
    v_t     = v_{t-1} + Δ_t²                                  (FedAdagrad)
    v_t     = v_{t-1} - (1 - β2) Δ_t² sign(v_{t-1} - Δ_t²)    (FedYogi)
    v_t     = β2 v_{t-1} + (1 - β2) Δ_t²                      (FedAdam)
    x_{t+1} = x_t + η m_t / (sqrt(v_t) + τ)

with ``m_{-1} = v_{-1} = 0`` (as Flower's strategies start) and no bias correction (as
in the paper's Algorithm 2).

Defaults (:data:`OPTIMIZER_DEFAULTS`) are Flower 1.x's (``flwr.server.strategy``):
FedAdam η=0.1, β1=0.9, β2=0.99, τ=1e-9; FedYogi η=0.01, β1=0.9, β2=0.99, τ=1e-3;
FedAdagrad η=0.1, β1=0 (FedOpt's default: no momentum), τ=1e-9. β1=0.9 and β2=0.99
are also the paper's values; η and τ are what the paper tunes per task (its grids
span 10^-3..1 for η and 10^-5..10^-1 for τ), so a task should set them.

Determinism. Every aggregator and every auditor must compute the same bits on any
machine. The formulas are evaluated in float64 using only elementwise operations
that IEEE-754 defines as correctly rounded (``+``, ``-``, ``*``, ``/``, ``sqrt``,
and ``sign``, which is exact), one numpy ufunc per operation, in the fixed order
written in :func:`server_step`: no reduction (whose summation order could vary),
no BLAS, no fused multiply-add (numpy never fuses two ufuncs), no transcendental
function (``pow`` with a real exponent, ``exp``, ``log``) whose libm result may
differ by an ulp between platforms; the hyper-parameters' complements ``1 - β`` are
single Python float (IEEE double) subtractions. The one thing a process could change
is the CPU's flush-to-zero / denormals-are-zero mode (some libraries built with
fast-math set it), which only matters for subnormal values: every ``m`` and ``v``
below the smallest normal float64 is therefore set to exactly zero, so results never
depend on it (the pseudo-gradient itself is a multiple of ``2^-frac_bits`` with
``frac_bits <= 52``, never subnormal, nor is its square). The step is then
quantized exactly like any rule's aggregate: fixed-point encoded (one ``rint``) and
applied by :func:`~fedledger.learning.aggregation.apply_update`, so the model blob
is bit-identical everywhere.

State. ``m`` and ``v`` live in the finalized model blob itself, as float64 tensors
beside the float32 params (:func:`~fedledger.learning.model_blob.encode_model`'s
``optimizer_state``), so the model hash that the chain finalizes commits to the state
too, the next round reads it from the global model it starts from, and the audit's
recomputation of a model blob checks the state with it. :meth:`OptimizerState.to_tensors`
names them ``m/<param>`` and ``v/<param>``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from fedledger.exceptions import AggregationError
from fedledger.learning.aggregation._apply import apply_update
from fedledger.learning.fixedpoint import FixedPoint
from fedledger.learning.params import Params

__all__ = [
    "OPTIMIZER_DEFAULTS",
    "SERVER_OPTIMIZERS",
    "OptimizerState",
    "apply_server_optimizer",
    "resolve_optimizer_params",
    "server_step",
]

OPTIMIZER_DEFAULTS: dict[str, dict[str, float]] = {
    "fedadam": {"server_lr": 0.1, "beta1": 0.9, "beta2": 0.99, "tau": 1e-9},
    "fedyogi": {"server_lr": 0.01, "beta1": 0.9, "beta2": 0.99, "tau": 1e-3},
    # Adagrad has no second-moment decay: v only accumulates.
    "fedadagrad": {"server_lr": 0.1, "beta1": 0.0, "tau": 1e-9},
}
"""Each optimizer's hyper-parameters and their defaults (Flower 1.x's; see the module docstring)."""

SERVER_OPTIMIZERS: tuple[str, ...] = tuple(OPTIMIZER_DEFAULTS)

Array = npt.NDArray[Any]

_TINY = np.finfo(np.float64).tiny  # the smallest normal float64


def resolve_optimizer_params(name: str, given: Mapping[str, object] | None) -> dict[str, float]:
    """``name``'s defaults overridden by ``given``, checked, as floats.

    Raises :class:`AggregationError` naming the optimizer and the parameter: an unknown
    optimizer or parameter, a non-number, ``server_lr`` or ``tau`` not a finite positive
    number, ``beta1`` / ``beta2`` not in ``[0, 1)``.
    """
    if name not in OPTIMIZER_DEFAULTS:
        raise AggregationError(f"unknown server optimizer {name!r}; known: {', '.join(SERVER_OPTIMIZERS)}")
    params = dict(OPTIMIZER_DEFAULTS[name])
    for key, value in (given or {}).items():
        if key not in params:
            raise AggregationError(
                f"server optimizer {name!r} has no parameter {key!r} (parameters: {', '.join(sorted(params))})"
            )
        if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
            raise AggregationError(f"server optimizer {name!r}: {key} must be a number, got {value!r}")
        number = float(value)
        if not math.isfinite(number):
            raise AggregationError(f"server optimizer {name!r}: {key} must be finite, got {value!r}")
        if key in ("server_lr", "tau") and not number > 0:
            raise AggregationError(f"server optimizer {name!r}: {key} must be positive, got {value!r}")
        if key in ("beta1", "beta2") and not 0 <= number < 1:
            raise AggregationError(f"server optimizer {name!r}: {key} must be in [0, 1), got {value!r}")
        params[key] = number
    return params


@dataclass(frozen=True)
class OptimizerState:
    """The server optimizer's moments, one float64 array per model tensor: ``m`` (first), ``v`` (second)."""

    m: dict[str, Array]
    v: dict[str, Array]

    @classmethod
    def zeros(cls, params: Mapping[str, Array]) -> OptimizerState:
        """``m_{-1} = v_{-1} = 0`` for a model shaped like ``params``."""
        return cls(
            m={n: np.zeros(np.shape(a), dtype=np.float64) for n, a in params.items()},
            v={n: np.zeros(np.shape(a), dtype=np.float64) for n, a in params.items()},
        )

    def to_tensors(self) -> dict[str, Array]:
        """Flat named tensors (``m/<param>``, ``v/<param>``), as a model blob stores them."""
        out = {f"m/{n}": a for n, a in self.m.items()}
        out.update({f"v/{n}": a for n, a in self.v.items()})
        return out

    @classmethod
    def from_tensors(cls, tensors: Mapping[str, Array], params: Mapping[str, Array]) -> OptimizerState:
        """The state stored beside ``params`` (:meth:`to_tensors`), checked: one float64 ``m`` and ``v`` per
        param, same shape, finite, ``v >= 0`` (else :class:`AggregationError`)."""
        expected = {f"{k}/{n}" for n in params for k in ("m", "v")}
        if set(tensors) != expected:
            raise AggregationError(
                f"optimizer state has tensors {sorted(tensors)}, expected {sorted(expected)} for the model's params"
            )
        for key in sorted(tensors):
            arr = np.asarray(tensors[key])
            name = key.split("/", 1)[1]
            if arr.dtype != np.float64 or arr.shape != np.shape(params[name]):
                raise AggregationError(
                    f"optimizer state {key!r}: {arr.dtype} {arr.shape}, expected float64 {np.shape(params[name])}"
                )
            if not np.all(np.isfinite(arr)) or (key.startswith("v/") and bool(np.any(arr < 0))):
                raise AggregationError(f"optimizer state {key!r} is not finite, or negative in v")
        return cls(
            m={n: np.asarray(tensors[f"m/{n}"]) for n in params},
            v={n: np.asarray(tensors[f"v/{n}"]) for n in params},
        )


def _flush(x: Array) -> Array:
    """Subnormals to exactly zero: results independent of the CPU's flush-to-zero mode."""
    return np.where(np.abs(x) < _TINY, np.float64(0.0), x)


def server_step(
    name: str,
    delta: Mapping[str, Array],
    state: OptimizerState,
    *,
    server_lr: float,
    beta1: float,
    tau: float,
    beta2: float = 0.0,
) -> tuple[dict[str, Array], OptimizerState]:
    """One server step of ``name`` (Reddi et al., Algorithm 2): ``(η m_t / (sqrt(v_t) + τ), (m_t, v_t))``.

    ``delta``: the round's pseudo-gradient ``Δ_t`` as float64 arrays; ``state``: ``(m_{t-1}, v_{t-1})``.
    The step is what the caller adds to ``x_t`` to get ``x_{t+1}``. Every operation is one elementwise
    float64 ufunc in the order written here (see the module docstring: bit-identical on every machine).
    ``beta2`` is ignored by FedAdagrad.
    """
    if name not in OPTIMIZER_DEFAULTS:
        raise AggregationError(f"unknown server optimizer {name!r}; known: {', '.join(SERVER_OPTIMIZERS)}")
    if sorted(delta) != sorted(state.m) or sorted(delta) != sorted(state.v):
        raise AggregationError(f"pseudo-gradient tensors {sorted(delta)} differ from the state's {sorted(state.m)}")
    b1 = np.float64(beta1)
    one_minus_b1 = np.float64(1.0 - beta1)
    b2 = np.float64(beta2)
    one_minus_b2 = np.float64(1.0 - beta2)
    lr = np.float64(server_lr)
    t = np.float64(tau)
    steps: dict[str, Array] = {}
    m_new: dict[str, Array] = {}
    v_new: dict[str, Array] = {}
    for n in sorted(delta):
        d = np.asarray(delta[n], dtype=np.float64)
        m_prev = np.asarray(state.m[n], dtype=np.float64)
        v_prev = np.asarray(state.v[n], dtype=np.float64)
        if d.shape != m_prev.shape or d.shape != v_prev.shape:
            raise AggregationError(f"tensor {n!r}: pseudo-gradient shape {d.shape} != state shape {m_prev.shape}")
        m = _flush(np.add(np.multiply(m_prev, b1), np.multiply(d, one_minus_b1)))
        d2 = np.multiply(d, d)
        if name == "fedadagrad":
            v = np.add(v_prev, d2)
        elif name == "fedyogi":
            v = np.subtract(v_prev, np.multiply(np.multiply(d2, one_minus_b2), np.sign(np.subtract(v_prev, d2))))
        else:  # fedadam
            v = np.add(np.multiply(v_prev, b2), np.multiply(d2, one_minus_b2))
        v = _flush(v)
        steps[n] = np.divide(np.multiply(m, lr), np.add(np.sqrt(v), t))
        m_new[n] = m
        v_new[n] = v
    return steps, OptimizerState(m=m_new, v=v_new)


def apply_server_optimizer(
    name: str,
    global_params: Mapping[str, Array],
    delta_fixed: Mapping[str, Array],
    state: OptimizerState | None,
    params: Mapping[str, float],
    *,
    frac_bits: int,
) -> tuple[Params, OptimizerState]:
    """``x_{t+1}`` (float32) and ``(m_t, v_t)`` from ``x_t``, a rule's fixed-point aggregate ``Δ_t`` and the
    previous state (None: zeros, the first round). The step is fixed-point encoded and applied with
    :func:`apply_update`, as any rule's aggregate is, so the new params are bit-identical everywhere."""
    codec = FixedPoint(frac_bits)
    missing = sorted(set(global_params) ^ set(delta_fixed))
    if missing:
        raise AggregationError(f"aggregate and global params differ in tensor names: {missing}")
    for n in sorted(delta_fixed):
        if np.asarray(delta_fixed[n]).dtype != np.uint64:
            raise AggregationError(f"tensor {n!r}: aggregate dtype {np.asarray(delta_fixed[n]).dtype}, expected uint64")
    delta = {n: codec.decode(delta_fixed[n]) for n in sorted(delta_fixed)}
    previous = state if state is not None else OptimizerState.zeros(global_params)
    steps, new_state = server_step(
        name,
        delta,
        previous,
        server_lr=float(params["server_lr"]),
        beta1=float(params["beta1"]),
        tau=float(params["tau"]),
        beta2=float(params.get("beta2", 0.0)),
    )
    try:
        step_fixed = {n: codec.encode(s) for n, s in steps.items()}
    except ValueError as exc:
        raise AggregationError(f"server optimizer {name!r}: step does not fit fixed point: {exc}") from exc
    return apply_update(global_params, step_fixed, frac_bits=frac_bits), new_state
