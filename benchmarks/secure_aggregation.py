"""Secure aggregation cost: fedledger's masking against plaintext FedAvg and Flower's SecAgg+, same inputs.

For each (members, parameters, dropout rate), every system aggregates the same
float updates (N(0, 0.01) per coordinate, one tensor) with the same example
counts, the same neighbour graph, the same threshold and the same dropped
members (they drop after sharing keys, before sending their masked input: the
case that needs recovery).

* **plain**: fixed-point encode + update blob per member; the aggregator decodes
  the blobs and runs :func:`fedavg` (the baseline fedledger uses without masking).
* **fedledger**: :mod:`fedledger.privacy.secagg`, every message through its bytes
  (as through the store); member time includes the fixed-point encoding.
* **flower**: Flower's own SecAgg+ client steps (``_setup``, ``_share_keys``,
  ``_collect_masked_vectors``, ``_unmask`` of ``flwr.client.mod.secure_aggregation``)
  called in process, and the server's compute of ``SecAggPlusWorkflow`` (forward
  ciphertexts, sum masked vectors, reconstruct with ``combine_shares``, remove
  masks with ``pseudo_rand_gen``) replayed with Flower's functions, without its
  gRPC messaging. Flower's defaults: clipping range 8, quantization 2^22,
  modulus 2^32.

Times are CPU seconds. Member time is the mean over members of all their protocol steps; aggregator
time is everything the aggregator does (for fedledger, parsing the masked-input
blobs too). Bytes are what one member uploads in a round (keys, encrypted shares,
masked update, revealed shares), as a ratio to the plaintext fixed-point update
blob. The threshold is ``threshold_for(group, 0.2)`` on the complete graph (20 %
dropouts is exactly at it) and a strict majority of the group on the SecAgg+
graph (``--neighbours``), where dropouts are not spread evenly over groups.

``--he`` adds the CKKS option (TenSEAL) at 10 members x 100k parameters:
member = encrypt, aggregator = homomorphic sum, plus the key holder's decryption.

    nice python benchmarks/secure_aggregation.py                      # full grid (several minutes)
    python benchmarks/secure_aggregation.py --members 10 --params 100000 --he
    python benchmarks/secure_aggregation.py --no-flower --json

Flower is optional (``pip install flwr``, the ``bench`` extra); without it that column says why.

``--masked-checks`` adds, per case without dropouts, the secure round with validity checks on the
shared updates (MPyC committee of three, the ``mpc`` extra; see ``masked_checks_bench.py``) and a table
of its cost over fedledger's plain secure round:

    nice python benchmarks/secure_aggregation.py --members 5,10 --params 1000,4000 --dropouts 0 --no-flower \
        --masked-checks
"""

# ruff: noqa: E402 - thread settings must be in the environment before numpy loads.
from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse
import json
import logging
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, TypeVar

import numpy as np

from fedledger.learning.aggregation import fedavg
from fedledger.learning.aggregation.fedavg import weighted_sum
from fedledger.learning.fixedpoint import FixedPoint
from fedledger.learning.update import encode_update
from fedledger.privacy.secagg import (
    KeyAdvert,
    MaskedInput,
    MemberIdentity,
    RoundConfig,
    SecAggAggregator,
    SecAggMember,
    ShareBundle,
    ShareReveal,
    UnmaskRequest,
    threshold_for,
)
from fedledger.store.tensors import decode_tensors

T = TypeVar("T")
MASKED = "secagg + masked checks"
CODEC = FixedPoint(16)
FRAC_BITS = 16


@dataclass
class Case:
    members: int
    params: int
    dropout: float
    neighbours: int | None
    threshold: int
    seed: int = 0

    @property
    def names(self) -> list[str]:
        return [f"member{i:03d}" for i in range(self.members)]

    def inputs(self) -> tuple[dict[str, np.ndarray], dict[str, int], set[str]]:
        rng = np.random.default_rng(self.seed)
        names = self.names
        updates = {m: rng.normal(0.0, 0.01, size=self.params).astype(np.float32) for m in names}
        counts = {m: int(rng.integers(50, 500)) for m in names}
        dropped = set(rng.choice(names, size=int(self.dropout * self.members), replace=False).tolist())
        return updates, counts, dropped


@dataclass
class Row:
    system: str
    members: int
    params: int
    dropout: float
    graph: str
    member_s: float | None
    aggregator_s: float | None
    member_bytes: int | None
    bytes_ratio: float | None
    max_abs_error: float | None
    note: str = ""


class Clock:
    """Accumulates CPU time (``process_time``) per party: all protocol code here is CPU-bound and single-party at
    a time, and CPU time stays comparable when other work shares the machine (wall time would not)."""

    def __init__(self) -> None:
        self.totals: dict[str, float] = {}

    def run(self, party: str, fn: Callable[[], T]) -> T:
        start = time.process_time()
        out = fn()
        self.totals[party] = self.totals.get(party, 0.0) + time.process_time() - start
        return out


def _plain(case: Case, updates: dict[str, np.ndarray], counts: dict[str, int], dropped: set[str]) -> tuple[Row, int]:
    clock, blobs = Clock(), {}
    for m in case.names:
        blobs[m] = clock.run(
            m,
            lambda m=m: encode_update(
                {"w": CODEC.encode(updates[m])}, {"frac_bits": "16", "num_examples": str(counts[m])}
            ),
        )
    survivors = [m for m in case.names if m not in dropped]

    def aggregate() -> dict[str, np.ndarray]:
        decoded = [decode_tensors(blobs[m])[0] for m in survivors]
        return fedavg(decoded, [counts[m] for m in survivors])

    avg = clock.run("aggregator", aggregate)
    plain_bytes = len(blobs[case.names[0]])
    want = sum(counts[m] * updates[m].astype(np.float64) for m in survivors) / sum(counts[m] for m in survivors)
    err = float(np.max(np.abs(CODEC.decode(avg["w"]) - want)))
    member_s = float(np.mean([clock.totals[m] for m in case.names]))
    row = Row(
        "plain fedavg",
        case.members,
        case.params,
        case.dropout,
        _graph(case),
        member_s,
        clock.totals["aggregator"],
        plain_bytes,
        1.0,
        err,
    )
    return row, plain_bytes


def _graph(case: Case) -> str:
    return "complete" if case.neighbours is None else f"k={case.neighbours}"


def _fedledger(
    case: Case, updates: dict[str, np.ndarray], counts: dict[str, int], dropped: set[str], plain_bytes: int
) -> Row:
    names = case.names
    identities = {m: MemberIdentity.generate(m) for m in names}  # long-term keys: not part of a round
    registry = {m: identities[m].public_bytes for m in names}
    config = RoundConfig(
        task="bench",
        round_id=1,
        members=tuple(names),
        threshold=case.threshold,
        neighbours=case.neighbours,
        graph_seed=b"bench",
    )
    clock, sent = Clock(), dict.fromkeys(names, 0)
    members = {m: clock.run(m, lambda m=m: SecAggMember(identities[m], config, registry)) for m in names}
    agg = clock.run("aggregator", lambda: SecAggAggregator(config))
    for m in names:
        data = clock.run(m, lambda m=m: members[m].advertise().to_bytes())
        sent[m] += len(data)
        clock.run("aggregator", lambda data=data: agg.add_advert(KeyAdvert.from_bytes(data)))
    adverts = agg.adverts
    for m in names:
        data = clock.run(m, lambda m=m: members[m].share_keys(adverts).to_bytes())
        sent[m] += len(data)
        clock.run("aggregator", lambda data=data: agg.add_bundle(ShareBundle.from_bytes(data)))
    bundles = agg.bundles
    for m in names:
        if m in dropped:
            continue

        def mask(m: str = m) -> bytes:
            fixed = {"w": CODEC.encode(updates[m])}
            return members[m].mask(bundles, fixed, num_examples=counts[m], frac_bits=FRAC_BITS).to_bytes()

        data = clock.run(m, mask)
        sent[m] += len(data)
        clock.run("aggregator", lambda data=data: agg.add_masked_input(MaskedInput.from_bytes(data)))
    request = UnmaskRequest.from_bytes(clock.run("aggregator", lambda: agg.unmask_request().to_bytes()))
    for m in request.survivors:
        data = clock.run(m, lambda m=m: members[m].reveal(request).to_bytes())
        sent[m] += len(data)
        clock.run("aggregator", lambda data=data: agg.add_reveal(ShareReveal.from_bytes(data)))
    result = clock.run("aggregator", agg.finish)
    survivors = list(request.survivors)
    exact = weighted_sum([{"w": CODEC.encode(updates[m])} for m in survivors], [counts[m] for m in survivors])
    if not np.array_equal(exact["w"], result.weighted_sum["w"]):
        raise SystemExit("fedledger secure aggregate differs from the plaintext weighted sum")
    err = float(np.max(np.abs(CODEC.decode(result.average()["w"]) - _weighted_mean(updates, counts, survivors))))
    return _row("fedledger secagg", case, clock, sent, survivors, plain_bytes, err)


def _weighted_mean(updates: dict[str, np.ndarray], counts: dict[str, int], survivors: list[str]) -> np.ndarray:
    """The float64 example-weighted mean of the survivors' updates: what both protocols must reproduce."""
    total = sum(counts[m] for m in survivors)
    return sum(counts[m] * updates[m].astype(np.float64) for m in survivors) / total  # type: ignore[return-value]


def _row(
    system: str, case: Case, clock: Any, sent: dict[str, int], survivors: list[str], plain_bytes: int, err: float
) -> Row:
    """One table row: mean member CPU time and bytes over the survivors, the aggregator's time, the error."""
    member_bytes = int(np.mean([sent[m] for m in survivors]))
    return Row(
        system,
        case.members,
        case.params,
        case.dropout,
        _graph(case),
        float(np.mean([clock.totals[m] for m in survivors])),
        clock.totals["aggregator"],
        member_bytes,
        member_bytes / plain_bytes,
        err,
    )


def _flower_modules() -> tuple[Any, Any] | str:
    try:
        logging.getLogger("flwr").setLevel(logging.ERROR)
        import importlib

        import flwr
        from flwr.common.secure_aggregation import secaggplus_constants as constants

        # The package re-exports a function named like the module; import the module itself.
        client = importlib.import_module("flwr.client.mod.secure_aggregation.secaggplus_mod")

        return client, (constants, flwr.__version__)
    except ImportError as exc:
        return f"flwr not installed ({exc.name}); pip install flwr"


def _flower(
    case: Case,
    updates: dict[str, np.ndarray],
    counts: dict[str, int],
    dropped: set[str],
    plain_bytes: int,
    modules: tuple[Any, Any],
) -> Row:
    from flwr.common import bytes_to_ndarray, ndarrays_to_parameters
    from flwr.common.secure_aggregation.crypto.shamir import combine_shares
    from flwr.common.secure_aggregation.crypto.symmetric_encryption import generate_shared_key
    from flwr.common.secure_aggregation.ndarrays_arithmetic import (
        factor_extract,
        get_parameters_shape,
        parameters_addition,
        parameters_mod,
        parameters_subtraction,
    )
    from flwr.common.secure_aggregation.quantization import dequantize
    from flwr.common.secure_aggregation.secaggplus_utils import pseudo_rand_gen
    from flwr.supercore.primitives.asymmetric import bytes_to_private_key, bytes_to_public_key

    client, (constants, _) = modules
    key = constants.Key
    names = case.names
    nid = {m: i + 1 for i, m in enumerate(names)}
    # The same graph as fedledger's, in Flower's form: node -> its neighbours including itself.
    config = RoundConfig(
        task="bench",
        round_id=1,
        members=tuple(names),
        threshold=case.threshold,
        neighbours=case.neighbours,
        graph_seed=b"bench",
    )
    neighbours = {nid[m]: {nid[p] for p in config.group_of(m)} for m in names}
    group, t = config.group_size, case.threshold
    clip, q_range, mod_range, max_weight = 8.0, 2**22, 2**32, 1000.0
    clock, sent = Clock(), dict.fromkeys(names, 0)
    states = {m: client.SecAggPlusState(nid=nid[m]) for m in names}
    setup = {
        key.SAMPLE_NUMBER: len(names),
        key.SHARE_NUMBER: group,
        key.THRESHOLD: t,
        key.CLIPPING_RANGE: clip,
        key.TARGET_RANGE: q_range,
        key.MOD_RANGE: mod_range,
        key.MAX_WEIGHT: max_weight,
    }
    public_keys = {}
    for m in names:
        out = clock.run(m, lambda m=m: client._setup(states[m], dict(setup)))
        public_keys[nid[m]] = (out[key.PUBLIC_KEY_1], out[key.PUBLIC_KEY_2])
        sent[m] += len(out[key.PUBLIC_KEY_1]) + len(out[key.PUBLIC_KEY_2])
    forward: dict[int, list[tuple[int, bytes]]] = {nid[m]: [] for m in names}
    for m in names:
        cfg = {str(n): public_keys[n] for n in neighbours[nid[m]]}
        out = clock.run(m, lambda m=m, cfg=cfg: client._share_keys(states[m], cfg))
        sent[m] += sum(len(c) for c in out[key.CIPHERTEXT_LIST])

        def route(out: dict[str, Any] = out, src: int = nid[m]) -> None:
            for dst, ct in zip(out[key.DESTINATION_LIST], out[key.CIPHERTEXT_LIST], strict=True):
                forward[dst].append((src, ct))

        clock.run("aggregator", route)
    masked_sum: list[np.ndarray] | None = None
    active = {nid[m] for m in names if m not in dropped}
    for m in names:
        if m in dropped:
            continue
        fwd = forward[nid[m]]
        cfg = {key.CIPHERTEXT_LIST: [c for _, c in fwd], key.SOURCE_LIST: [s for s, _ in fwd]}
        params = ndarrays_to_parameters([updates[m]])
        out = clock.run(
            m, lambda m=m, cfg=cfg, params=params: client._collect_masked_vectors(states[m], cfg, counts[m], params)
        )
        sent[m] += sum(len(b) for b in out[key.MASKED_PARAMETERS])

        def collect(out: dict[str, Any] = out) -> None:
            nonlocal masked_sum
            vec = [bytes_to_ndarray(b) for b in out[key.MASKED_PARAMETERS]]
            masked_sum = vec if masked_sum is None else parameters_addition(masked_sum, vec)

        clock.run("aggregator", collect)
    assert masked_sum is not None
    masked_sum = clock.run("aggregator", lambda: parameters_mod(masked_sum, mod_range))
    dead = {nid[m] for m in dropped}
    collected: dict[int, list[bytes]] = {nid[m]: [] for m in names}
    for m in names:
        if m in dropped:
            continue
        nbrs = neighbours[nid[m]]
        cfg = {key.ACTIVE_NODE_ID_LIST: sorted(nbrs & active), key.DEAD_NODE_ID_LIST: sorted(nbrs & dead)}
        out = clock.run(m, lambda m=m, cfg=cfg: client._unmask(states[m], cfg))
        sent[m] += sum(len(s) for s in out[key.SHARE_LIST])

        def gather(out: dict[str, Any] = out) -> None:
            for owner, share in zip(out[key.NODE_ID_LIST], out[key.SHARE_LIST], strict=True):
                collected[owner].append(share)

        clock.run("aggregator", gather)

    def unmask() -> list[np.ndarray]:
        # SecAggPlusWorkflow.unmask_stage, without its messaging.
        vec = masked_sum
        for owner, shares in collected.items():
            if len(shares) < t:
                if owner in active:
                    raise SystemExit(f"flower: not enough shares for node {owner}")
                continue  # dropped before sharing (not in this benchmark)
            secret = combine_shares(shares)
            if owner in active:
                vec = parameters_subtraction(vec, pseudo_rand_gen(secret, mod_range, get_parameters_shape(vec)))
            else:
                for other in sorted(neighbours[owner] - {owner}):
                    shared = generate_shared_key(
                        bytes_to_private_key(secret), bytes_to_public_key(public_keys[other][0])
                    )
                    mask = pseudo_rand_gen(shared, mod_range, get_parameters_shape(vec))
                    vec = parameters_addition(vec, mask) if owner > other else parameters_subtraction(vec, mask)
        vec = parameters_mod(vec, mod_range)
        q_total_ratio, vec = factor_extract(vec)
        out = dequantize(vec, clip, q_range)
        offset = -(len(active) - 1) * clip
        for v in out:
            v += offset
            v *= q_range / q_total_ratio
        return out

    aggregated = clock.run("aggregator", unmask)
    survivors = [m for m in names if m not in dropped]
    # Flower's SecAgg+ outputs sum(n_k x_k) / max_weight scaled back by the quantized total ratio: a weighted mean.
    err = float(np.max(np.abs(aggregated[0] - _weighted_mean(updates, counts, survivors))))
    return _row("flower secagg+", case, clock, sent, survivors, plain_bytes, err)


def _he(case: Case, updates: dict[str, np.ndarray], counts: dict[str, int], plain_bytes: int) -> list[Row]:
    try:
        from fedledger.privacy.he import CKKSKeyHolder, EncryptedUpdate, encrypt_update, sum_encrypted
    except ImportError as exc:  # pragma: no cover
        return [Row("ckks (tenseal)", case.members, case.params, 0.0, "-", None, None, None, None, None, str(exc))]
    clock = Clock()
    holder = clock.run("holder", CKKSKeyHolder)
    public = clock.run("holder", lambda: holder.public_context)
    blobs = {
        m: clock.run(m, lambda m=m: encrypt_update(public, {"w": updates[m]}, num_examples=counts[m]).to_bytes())
        for m in case.names
    }
    total = clock.run(
        "aggregator", lambda: sum_encrypted(public, [EncryptedUpdate.from_bytes(b) for b in blobs.values()])
    )
    avg = clock.run("holder", lambda: holder.decrypt_average(total))
    want = sum(counts[m] * updates[m].astype(np.float64) for m in case.names) / sum(counts.values())
    err = float(np.max(np.abs(avg["w"] - want)))
    member_bytes = int(np.mean([len(b) for b in blobs.values()]))
    return [
        Row(
            "ckks (tenseal)",
            case.members,
            case.params,
            0.0,
            "-",
            float(np.mean([clock.totals[m] for m in case.names])),
            clock.totals["aggregator"],
            member_bytes,
            member_bytes / plain_bytes,
            err,
            f"key holder: {clock.totals['holder']:.2f} s (keygen + decrypt); public context {len(public):,} B",
        )
    ]


def _masked(case: Case, updates: dict[str, np.ndarray], counts: dict[str, int], plain_bytes: int) -> Row:
    """The secure round with masked validity checks (committee of three MPyC processes)."""
    try:
        from masked_checks_bench import masked_round
    except ImportError as exc:  # pragma: no cover - mpyc (the mpc extra) missing
        return Row(MASKED, case.members, case.params, 0.0, "-", None, None, None, None, None, str(exc))
    cost = masked_round(case.names, updates, counts, case.params)
    note = (
        f"committee: {cost['committee_bytes']:,} B sent per member of 3, {cost['wall_s']:.0f} s wall; "
        f"{cost['passed']}/{case.members} passed; k={cost['projections']} projections, "
        f"{cost['field_bits']}-bit field; bundle: 1 seed + 2 share vectors of {cost['wire_bytes']} B/element"
    )
    return Row(
        MASKED,
        case.members,
        case.params,
        0.0,
        "committee of 3",
        cost["member_s"],
        cost["committee_s"],
        cost["member_bytes"],
        cost["member_bytes"] / plain_bytes,
        cost["max_abs_error"],
        note,
    )


def _masked_ratios(rows: list[Row]) -> str:
    """The masked-check round's cost over fedledger's secure round without checks, per case."""
    out = [
        "| members | params | member time checks/secagg | committee time / secagg aggregator time "
        "| bytes/member checks/secagg |",
        "|---:|---:|---:|---:|---:|",
    ]
    plain = {(r.members, r.params): r for r in rows if r.system == "fedledger secagg" and r.dropout == 0}
    for r in rows:
        base = plain.get((r.members, r.params))
        if r.system != MASKED or base is None or not r.member_s or not base.member_s or not base.aggregator_s:
            continue
        out.append(
            f"| {r.members} | {r.params:,} | {r.member_s / base.member_s:.1f} | "
            f"{(r.aggregator_s or 0) / base.aggregator_s:.1f} | "
            f"{(r.member_bytes or 0) / (base.member_bytes or 1):.1f} |"
        )
    return "\n".join(out)


def _table(rows: list[Row]) -> str:
    head = "| system | members | params | dropout | graph | member s | aggregator s | bytes/member | x plain "
    lines = [head + "| max abs err | note |", "|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---|"]

    def f(v: float | None, spec: str) -> str:
        return "-" if v is None else format(v, spec)

    for r in rows:
        lines.append(
            f"| {r.system} | {r.members} | {r.params:,} | {r.dropout:.0%} | {r.graph} | {f(r.member_s, '.3f')} | "
            f"{f(r.aggregator_s, '.3f')} | {f(r.member_bytes, ',.0f')} | {f(r.bytes_ratio, '.3f')} | "
            f"{f(r.max_abs_error, '.1e')} | {r.note} |"
        )
    return "\n".join(lines)


def _ratios(rows: list[Row]) -> str:
    """fedledger time over Flower time per case (below 1: fedledger is faster)."""
    out = [
        "| members | params | dropout | graph | member time fedledger/flower | aggregator time fedledger/flower |",
        "|---:|---:|---:|---|---:|---:|",
    ]
    ours = {(r.members, r.params, r.dropout, r.graph): r for r in rows if r.system == "fedledger secagg"}
    for r in rows:
        mine = ours.get((r.members, r.params, r.dropout, r.graph))
        if r.system != "flower secagg+" or mine is None or not r.member_s or not r.aggregator_s:
            continue
        out.append(
            f"| {r.members} | {r.params:,} | {r.dropout:.0%} | {r.graph} | {mine.member_s / r.member_s:.2f} | "
            f"{(mine.aggregator_s or 0) / r.aggregator_s:.2f} |"
        )
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--members", default="10,50,100", help="comma-separated member counts")
    parser.add_argument("--params", default="100000,1000000", help="comma-separated parameter counts")
    parser.add_argument("--dropouts", default="0,0.2", help="comma-separated dropout fractions")
    parser.add_argument(
        "--neighbours",
        default="100:20",
        help="SecAgg+ degree per member count, e.g. '100:20,50:16' (others: complete graph)",
    )
    parser.add_argument("--no-flower", action="store_true", help="skip Flower's SecAgg+")
    parser.add_argument("--he", action="store_true", help="add CKKS (TenSEAL) at the smallest case")
    parser.add_argument("--json", action="store_true", help="print JSON rows instead of markdown")
    parser.add_argument(
        "--masked-checks", action="store_true", help="add the secure round with masked validity checks (mpc extra)"
    )
    args = parser.parse_args(argv)
    degree = {int(a): int(b) for a, b in (p.split(":") for p in args.neighbours.split(",") if p)}
    flower = "--no-flower" if args.no_flower else _flower_modules()
    rows: list[Row] = []
    started = time.perf_counter()
    for n in (int(x) for x in args.members.split(",")):
        k = degree.get(n)
        group = n if k is None or k >= n - 1 else k + 1
        threshold = threshold_for(group, 0.2) if k is None else group // 2 + 1
        for d in (int(x) for x in args.params.split(",")):
            for drop in (float(x) for x in args.dropouts.split(",")):
                case = Case(n, d, drop, k, threshold)
                updates, counts, dropped = case.inputs()
                plain_row, plain_bytes = _plain(case, updates, counts, dropped)
                rows.append(plain_row)
                rows.append(_fedledger(case, updates, counts, dropped, plain_bytes))
                if isinstance(flower, tuple):
                    rows.append(_flower(case, updates, counts, dropped, plain_bytes, flower))
                else:
                    rows.append(Row("flower secagg+", n, d, drop, _graph(case), None, None, None, None, None, flower))
                if args.masked_checks and not dropped:
                    rows.append(_masked(case, updates, counts, plain_bytes))
                print(
                    f"# done {n} members x {d:,} params, {drop:.0%} dropout ({time.perf_counter() - started:.0f} s)",
                    file=sys.stderr,
                    flush=True,
                )
    if args.he:
        n, d = min(int(x) for x in args.members.split(",")), min(int(x) for x in args.params.split(","))
        case = Case(n, d, 0.0, None, threshold_for(n, 0.2))
        updates, counts, _ = case.inputs()
        _, plain_bytes = _plain(case, updates, counts, set())
        rows.extend(_he(case, updates, counts, plain_bytes))
    env = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "flower": flower[1][1] if isinstance(flower, tuple) else None,
        "seconds": round(time.perf_counter() - started),
    }
    if args.json:
        print(json.dumps({"env": env, "rows": [asdict(r) for r in rows]}, indent=2))
    else:
        print(_table(rows))
        print()
        print(_ratios(rows))
        print()
        if args.masked_checks:
            print(_masked_ratios(rows))
            print()
        print(f"python {env['python']}, {env['cpus']} cpus, flwr {env['flower']}, {env['seconds']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
