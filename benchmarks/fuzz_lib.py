"""Fuzz targets and the seeded byte mutator behind ``benchmarks/fuzz.py`` and ``tests/benchmarks/test_fuzz.py``.

Each :class:`Target` is one reader of untrusted bytes: a blob another member posts (update, model, task
config, metrics report, secure-aggregation message), a round's check and aggregation, a CSV table, or a
file a CLI command reads (task TOML/JSON, recipe, policy, goal, spends, workspace config, keystore,
labels, vault and registration files). ``run`` feeds it one input; the reader passes if it returns or
raises one of the errors it documents (``expected``). Anything else is a crash: a stray ``KeyError`` or
``ValueError``, a ``RecursionError``, a ``MemoryError``; and, in :func:`run_cases`' child process, a hang
past the per-case bound or the process dying.

Inputs are a pure function of ``(target, seed, case)``: :func:`make_input` starts from the target's
valid seed inputs (built here in code, from the example recipe and a real heart-disease excerpt where
there is one) and stacks up to eight byte-level mutations: bit flips, interesting bytes and numbers,
inserted tokens of the format, deletions, repeats, splices of two seeds, truncation and, rarely,
nesting 100,000 levels deep, which is what once killed a validator.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import random
import re
import resource
import select
import struct
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "heart-disease"
HEART = Path(os.environ.get("FEDLEDGER_DATA", "/work/shared/data")) / "heart-disease" / "processed.cleveland.data"
# A stand-in when the data set is absent (CI): rows in the same layout, "?" for missing values as in the file.
HEART_FALLBACK = (
    "63.0,1.0,1.0,145.0,233.0,1.0,2.0,150.0,0.0,2.3,3.0,0.0,6.0,0\n"
    "67.0,1.0,4.0,160.0,286.0,0.0,2.0,108.0,1.0,1.5,2.0,3.0,3.0,2\n"
    "67.0,1.0,4.0,120.0,229.0,0.0,2.0,129.0,1.0,2.6,2.0,2.0,7.0,1\n"
    "37.0,1.0,3.0,130.0,250.0,0.0,0.0,187.0,0.0,3.5,3.0,0.0,3.0,0\n"
    "41.0,0.0,2.0,130.0,204.0,0.0,2.0,172.0,0.0,1.4,1.0,0.0,3.0,0\n"
    "56.0,1.0,2.0,120.0,236.0,0.0,0.0,178.0,0.0,0.8,1.0,0.0,3.0,0\n"
    "62.0,0.0,4.0,140.0,268.0,0.0,2.0,160.0,0.0,3.6,3.0,2.0,3.0,3\n"
    "57.0,0.0,4.0,120.0,354.0,0.0,0.0,163.0,1.0,0.6,1.0,0.0,3.0,0\n"
    "63.0,1.0,4.0,130.0,254.0,0.0,2.0,147.0,0.0,1.4,2.0,1.0,?,2\n"
    "53.0,1.0,4.0,140.0,203.0,1.0,2.0,155.0,1.0,3.1,3.0,0.0,7.0,1\n"
)
MAX_INPUT_BYTES = 256 * 1024  # mutated inputs are cut to this (the nesting mutation excepted)
DEEP = 100_000
ADDRESS = "0x" + "11" * 20


@dataclass(frozen=True)
class Target:
    """One reader under fuzzing: ``run(data, work)`` feeds it ``data`` (``work``: a scratch folder)."""

    name: str
    group: str  # blob | round | csv | config | cli-file
    seeds: Callable[[], list[bytes]]
    run: Callable[[bytes, Path], object]
    expected: tuple[type[BaseException], ...]
    tokens: tuple[bytes, ...] = ()
    mutate: Callable[[random.Random, bytes, list[bytes], tuple[bytes, ...]], bytes] | None = None


# -- the mutator ---------------------------------------------------------------------------------------

INTERESTING_BYTES = (0, 1, 0x7F, 0x80, 0xFF, 0xFE, 0xC0, 0xED, 0x0A, 0x0D, 0x22, 0x27, 0x5B, 0x7B, 0x5C, 0x2C)
INTERESTING_NUMBERS = (
    b"0",
    b"-0",
    b"-1",
    b"1e308",
    b"1e309",
    b"-1e400",
    b"2.5",
    b"NaN",
    b"nan",
    b"inf",
    b"-inf",
    b"Infinity",
    b"4294967296",
    b"18446744073709551616",
    b"9223372036854775807",
    b"9" * 40,
    b"0x10",
    b"1_000",
    b"",
)
JSON_TOKENS = (b"[", b"]", b"{", b"}", b'"', b"\\", b"\\u0000", b"\\ud800", b":", b",", b"null", b"true", b"[]", b"{}")
TOML_TOKENS = (
    b"[",
    b"]",
    b"[[",
    b"]]",
    b"{",
    b"}",
    b"=",
    b".",
    b'"',
    b"'",
    b'"""',
    b"'''",
    b"\n",
    b"#",
    b"true",
    b"1979-05-27T07:32:00Z",
    b"[a]\n",
    b"x = 1\n",
)
CSV_TOKENS = (b",", b";", b"\t", b"|", b'"', b'""', b"\r\n", b"\r", b"\n", b"\xef\xbb\xbf", b"\xff\xfe", b"\x00", b"?")


def _number_span(rng: random.Random, data: bytes) -> tuple[int, int] | None:
    spans = [m.span() for m in re.finditer(rb"-?\d+(?:\.\d+)?(?:e-?\d+)?", data[:65536])]
    return rng.choice(spans) if spans else None


def mutate_bytes(rng: random.Random, data: bytes, corpus: list[bytes], tokens: tuple[bytes, ...]) -> bytes:
    """One to eight stacked byte-level mutations of ``data`` (``corpus``: other seeds to splice with)."""
    buf = bytearray(data)
    for _ in range(min(8, 1 + int(rng.expovariate(0.5)))):
        op = rng.random()
        n = len(buf)
        pos = rng.randrange(n + 1)
        if op < 0.14 and n:  # flip a bit
            i = rng.randrange(n)
            buf[i] ^= 1 << rng.randrange(8)
        elif op < 0.26 and n:  # an interesting byte
            buf[rng.randrange(n)] = rng.choice(INTERESTING_BYTES)
        elif op < 0.38:  # a token of the format
            buf[pos:pos] = rng.choice(tokens or JSON_TOKENS)
        elif op < 0.48:  # replace a number with an interesting one
            span = _number_span(rng, bytes(buf))
            if span:
                buf[span[0] : span[1]] = rng.choice(INTERESTING_NUMBERS)
        elif op < 0.58:  # insert random bytes
            buf[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
        elif op < 0.70 and n:  # delete a range
            end = min(n, pos + rng.choice((1, 1, 2, 4, 16, 256)))
            del buf[pos:end]
        elif op < 0.78 and n:  # repeat a chunk
            start = rng.randrange(n)
            chunk = buf[start : start + rng.choice((1, 2, 8, 64))]
            buf[start:start] = chunk * rng.choice((2, 10, 100, 1000))
        elif op < 0.86 and corpus:  # splice: this input's head, another seed's tail
            other = rng.choice(corpus)
            buf = buf[:pos] + other[rng.randrange(len(other) + 1) :]
        elif op < 0.93 and n:  # truncate
            del buf[rng.randrange(n) :]
        elif op < 0.98 and n:  # swap two bytes
            i, j = rng.randrange(n), rng.randrange(n)
            buf[i], buf[j] = buf[j], buf[i]
        else:  # nest: shallow, deep, or deep enough to overflow the C stack in a recursive parser
            depth = rng.choice((33, 1000, DEEP))
            buf[pos:pos] = rng.choice((b"[", b"{", b'{"a":', b"a=[", b"{a=")) * depth
            return bytes(buf)  # already as large as it may get
    return bytes(buf[:MAX_INPUT_BYTES])


def mutate_safetensors(rng: random.Random, data: bytes, corpus: list[bytes], tokens: tuple[bytes, ...]) -> bytes:
    """Half the time mutate only the JSON header and write its new length, so the schema is reached."""
    if len(data) >= 8 and rng.random() < 0.5:
        (n,) = struct.unpack("<Q", data[:8])
        if 8 + n <= len(data):
            header = mutate_bytes(rng, data[8 : 8 + n], [], JSON_TOKENS)
            body = data[8 + n :]
            if rng.random() < 0.3 and body:
                body = mutate_bytes(rng, body, [], ())
            return struct.pack("<Q", len(header)) + header + body
    return mutate_bytes(rng, data, corpus, tokens)


def make_input(target: Target, seed: int, case: int) -> bytes:
    """The input of case ``case``: a pure function of (target, seed, case), so any case can be replayed."""
    rng = random.Random(f"{seed}/{target.name}/{case}")
    corpus = seeds_of(target)
    data = rng.choice(corpus)
    if rng.random() < 0.02:
        return data  # the seeds themselves must pass
    return (target.mutate or mutate_bytes)(rng, data, corpus, target.tokens)


_SEEDS: dict[str, list[bytes]] = {}


def seeds_of(target: Target) -> list[bytes]:
    if target.name not in _SEEDS:
        _SEEDS[target.name] = target.seeds()
    return _SEEDS[target.name]


# -- shared fixtures -------------------------------------------------------------------------------------


def _heart_text() -> str:
    if HEART.exists():
        lines = HEART.read_text().splitlines()
        return "\n".join(lines[:40]) + "\n"  # the first 40 patients: enough for every category to appear
    return HEART_FALLBACK


def _recipe_text(statistics: str = "local") -> str:
    text = (EXAMPLE / "recipe.toml").read_text()
    return text.replace('statistics = "consortium"', f'statistics = "{statistics}"')


@functools.cache
def _task_config() -> Any:
    from fedledger.federation.config import TaskConfig

    return TaskConfig(
        model={"kind": "sklearn-sgd", "n_features": 3, "n_classes": 2}, clip_norm=5.0, max_update_bytes=1 << 20
    )


SPEC = {"w": (3,), "b": (1,)}


def honest_update(values: tuple[float, ...] = (0.1, 0.2, 0.3, 0.5), num_examples: int = 10) -> bytes:
    from fedledger.learning import FixedPoint, encode_update

    codec = FixedPoint(24)
    tensors = {"w": codec.encode(np.array(values[:3])), "b": codec.encode(np.array(values[3:]))}
    meta = {"num_examples": str(num_examples), "frac_bits": "24", "transforms": "fixedpoint"}
    return encode_update(tensors, meta)


def _put_raw(store: Any, blob: bytes) -> str:
    """Store ``blob`` as a hostile member would: past ``put``'s own checks. Returns its 0x hash."""
    digest = hashlib.sha256(blob).hexdigest()
    path = store.path_of(digest)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(blob)
    return "0x" + digest


def _update_info(index: int, update_hash: str, num_examples: int = 10) -> Any:
    from fedledger.chain.task import UpdateInfo

    return UpdateInfo(1, index, ADDRESS, update_hash, num_examples, 1)


def _write(work: Path, name: str, data: bytes) -> Path:
    path = work / name
    path.write_bytes(data)
    return path


# -- blob targets ------------------------------------------------------------------------------------------


def _tensor_seeds() -> list[bytes]:
    from fedledger.learning import encode_model
    from fedledger.store import encode_tensors

    return [
        encode_tensors({"a": np.arange(3, dtype=np.float32), "b": np.ones((2, 2), np.int64)}, {"k": "v"}),
        encode_tensors({"e": np.zeros((0, 5), np.float32), "g": np.ones(2, bool), "u": np.arange(4, dtype=np.uint8)}),
        honest_update(),
        encode_model({"w": np.zeros(3, np.float32), "b": np.zeros(1, np.float32)}, {"kind": "sklearn-sgd"}),
    ]


def _model_seeds() -> list[bytes]:
    from fedledger.learning import encode_model

    return [
        encode_model({"w": np.zeros(3, np.float32), "b": np.zeros(1, np.float32)}, {"kind": "sklearn-sgd"}),
        encode_model({"w": np.ones(3, np.float32), "b": np.ones(1, np.float32)}, {"kind": "x", "n": [1, {"a": 2}]}),
    ]


def _update_seeds() -> list[bytes]:
    return [honest_update(), honest_update((-1.0, 0.5, 0.0, 2.0), 10), honest_update((0.0,) * 4)]


def _decode_tensors(data: bytes, work: Path) -> object:
    from fedledger.store import decode_tensors, read_metadata

    read_metadata(data)
    return decode_tensors(data)


def _decode_model(data: bytes, work: Path) -> object:
    from fedledger.learning import decode_model

    return decode_model(data, expected_spec=SPEC)


def _check_update(data: bytes, work: Path) -> object:
    from fedledger.federation.rules import check_update
    from fedledger.store import BlobStore

    store = BlobStore(work / "store")
    update_hash = _put_raw(store, data)
    try:
        return check_update(store, _task_config(), SPEC, _update_info(0, update_hash))
    finally:
        store.path_of(update_hash[2:]).unlink(missing_ok=True)


def _aggregate_round(data: bytes, work: Path) -> object:
    """Two honest updates and the fuzzed one, all accepted: the round must aggregate, leaving out a bad blob."""
    from fedledger.federation.rules import aggregate_round
    from fedledger.store import BlobStore

    store = BlobStore(work / "store")
    blobs = [honest_update(), honest_update((-0.2, 0.0, 0.4, -0.1), 30), data]
    hashes = [_put_raw(store, b) for b in blobs]
    updates = [_update_info(i, h, n) for i, (h, n) in enumerate(zip(hashes, (10, 30, 10), strict=True))]
    params = {"w": np.zeros(3, np.float32), "b": np.zeros(1, np.float32)}
    try:
        result = aggregate_round(store, _task_config(), params, {"kind": "sklearn-sgd"}, updates, [0, 1, 2], round_id=1)
    finally:
        store.path_of(hashes[2][2:]).unlink(missing_ok=True)
    if result.included[:2] != [0, 1] or not all(np.isfinite(v).all() for v in result.params.values()):
        raise AssertionError(f"honest updates left out or a non-finite model: {result.included} {result.excluded}")
    return result


def _task_config_seeds() -> list[bytes]:
    from fedledger.federation.config_file import load_task_config

    return [_task_config().to_bytes(), load_task_config(EXAMPLE / "task.toml").to_bytes()]


def _task_config_blob(data: bytes, work: Path) -> object:
    from fedledger.federation.config import TaskConfig

    return TaskConfig.from_bytes(data)


def _metrics_seeds() -> list[bytes]:
    from fedledger.federation.evaluation import MetricsReport
    from fedledger.learning import build_model
    from fedledger.learning.metrics import evaluate_model

    rng = np.random.default_rng(7)
    X = rng.normal(size=(60, 4))
    y = (X[:, 0] > 0).astype(np.int64)
    model = build_model({"kind": "sklearn-logreg", "n_features": 4, "n_classes": 2})
    model.set_params({"coef": np.array([[0.9, -0.4, 0.2, 0.1]], np.float32), "intercept": np.array([0.1], np.float32)})
    report = MetricsReport(ADDRESS, 3, "0x" + "ab" * 32, ADDRESS, evaluate_model(model, X, y))
    return [report.to_bytes()]


def _metrics_report(data: bytes, work: Path) -> object:
    from fedledger.federation.evaluation import MetricsReport

    return MetricsReport.from_bytes(data)


def _secagg_seeds() -> list[bytes]:
    from fedledger.privacy.secagg import KeyAdvert, MaskedInput, ShareBundle, UnmaskRequest

    ctx = bytes(range(32))
    return [
        KeyAdvert("alice", ctx, b"\1" * 32, b"\2" * 32, b"\3" * 32, (("bob", b"\4" * 32),)).to_bytes(),
        ShareBundle("alice", ctx, (("bob", b"\5" * 60), ("carol", b"\6" * 60))).to_bytes(),
        MaskedInput("alice", ctx, 10, 24, {"w": np.arange(3, dtype=np.uint64)}).to_bytes(),
        UnmaskRequest(ctx, ("alice", "bob"), ("carol",)).to_bytes(),
    ]


def _secagg_messages(data: bytes, work: Path) -> object:
    """Every secure-aggregation decoder on the same bytes: each must name what is wrong."""
    from fedledger.exceptions import FedLedgerError
    from fedledger.privacy.secagg import KeyAdvert, MaskedInput, RoundConfig, ShareBundle, ShareReveal, UnmaskRequest

    out = []
    for cls in (KeyAdvert, ShareBundle, MaskedInput, UnmaskRequest, ShareReveal, RoundConfig):
        with contextlib.suppress(FedLedgerError):
            out.append(cls.from_bytes(data))
    return out


# -- CSV targets -----------------------------------------------------------------------------------------


def _csv_seeds() -> list[bytes]:
    heart = _heart_text()
    header = "age,sex,cp,trestbps,chol,fbs,restecg,thalach,exang,oldpeak,slope,ca,thal,num\n"
    return [
        heart.encode(),
        (header + heart).encode(),
        (header + heart).replace(",", ";").encode("cp1252"),
        ("\ufeff" + header + "".join(heart.splitlines(keepends=True)[:5])).encode("utf-8"),
        (header + "".join(heart.splitlines(keepends=True)[:4])).encode("utf-16"),
        b'name,note\n"Jos\xe9","a, ""quoted""\nline"\nAnn,plain\n',
    ]


def _csv_records(data: bytes, work: Path) -> object:
    from fedledger.data.tabular import check_widths, decode_bytes, parse_number, read_records

    text, _ = decode_bytes(data)
    for header in (False, True):
        records = read_records(text, ",", header=header, name="table.csv")
        names = records.header or [f"c{i}" for i in range(len(records.rows[0]) if records.rows else 0)]
        check_widths(records, names, name="table.csv")
        for row in records.rows:
            for cell in row:
                parse_number(cell)
    return records


def _read_table(data: bytes, work: Path) -> object:
    from fedledger.data.tabular import iter_batches, read_table, table_columns

    path = _write(work, "table.csv", data)
    table_columns(path)
    for _ in iter_batches(path, batch_rows=7, as_text=True):
        pass
    return read_table(path)


@functools.cache
def _heart_recipe() -> Any:
    from fedledger.data.prepare import Recipe

    path = Path(os.environ.get("TMPDIR", "/tmp")) / f"fuzz-recipe-{os.getpid()}.toml"
    path.write_text(_recipe_text())
    try:
        return Recipe.load(path)
    finally:
        path.unlink()


def _prepare(data: bytes, work: Path) -> object:
    """A hospital's raw file through the heart-disease recipe, as ``fedledger node`` reads it."""
    from fedledger.data.prepare import prepare

    return prepare(_heart_recipe(), _write(work, "hospital.data", data))


def _cleanse(data: bytes, work: Path) -> object:
    from fedledger.data.cleanse import CleanseRules, cleanse

    rules = CleanseRules.from_dict({"duplicates": "drop"}, names=[f"c{i}" for i in range(14)])
    return cleanse(_write(work, "raw.csv", data), rules=rules, header=False)


def _vault_table(data: bytes, work: Path) -> object:
    from fedledger.cli.data.vault import _read_table as read_vault_table

    return read_vault_table(_write(work, "people.csv", data))


# -- config and CLI file targets ---------------------------------------------------------------------------


def _task_toml_seeds() -> list[bytes]:
    recipe = _recipe_text("consortium")
    task = (EXAMPLE / "task.toml").read_text()
    inline = task.replace('preparation = "recipe.toml"\n', "") + "\n[preparation]\n" + _as_subtable(recipe)
    return [task.encode(), inline.encode(), (EXAMPLE.parent / "iot-intrusion" / "task.toml").read_bytes()]


def _as_subtable(recipe: str) -> str:
    """The recipe's keys under ``[preparation]`` (its own tables renamed ``[preparation.x]``)."""
    return re.sub(r"^\[([a-z_.]+)\]", r"[preparation.\1]", recipe, flags=re.M)


def _load_task_toml(data: bytes, work: Path) -> object:
    from fedledger.federation.config_file import load_task_config

    (work / "recipe.toml").write_text(_recipe_text("consortium"))
    return load_task_config(_write(work, "task.toml", data))


def _task_json_seeds() -> list[bytes]:
    from fedledger.federation.config_file import load_task_config

    configs = [json.loads(c.to_bytes()) for c in (load_task_config(EXAMPLE / "task.toml"), _task_config())]
    for config in configs:
        config.pop("format", None)  # the committed blob's tag, not a field of a task file
    return [json.dumps(config, indent=1).encode() for config in configs]


def _load_task_json(data: bytes, work: Path) -> object:
    from fedledger.federation.config_file import load_task_config

    return load_task_config(_write(work, "task.json", data))


def _recipe_seeds() -> list[bytes]:
    return [_recipe_text("consortium").encode(), _recipe_text("local").encode(), b"[cleanse]\nduplicates = 'drop'\n"]


def _load_recipe(data: bytes, work: Path) -> object:
    """``fedledger data prepare --recipe`` / ``data cleanse --recipe`` and ``data register --recipe``."""
    from fedledger.cli.data.lifecycle import _recipe_or_rules
    from fedledger.data.prepare import Recipe

    path = _write(work, "recipe.toml", data)
    _recipe_or_rules(path)
    return Recipe.load(path)


def _recipe_json_seeds() -> list[bytes]:
    return [json.dumps(_heart_recipe().to_dict()).encode()]


def _load_recipe_json(data: bytes, work: Path) -> object:
    from fedledger.cli.data.lifecycle import _load_recipe as load_recipe
    from fedledger.data.prepare import Recipe

    path = _write(work, "recipe.json", data)
    load_recipe(path)
    return Recipe.load(path)


def _stats_seeds() -> list[bytes]:
    recipe = _consortium_recipe()
    table = Path(os.environ.get("TMPDIR", "/tmp")) / f"fuzz-stats-{os.getpid()}.data"
    table.write_text(_heart_text())
    try:
        summed = recipe.local_stats(table)
    finally:
        table.unlink()
    stats = recipe.with_stats(summed).to_dict()["stats"]
    return [
        json.dumps({"recipe": recipe.hash(), "stats": stats}).encode(),
        json.dumps({"recipe": recipe.hash(), "sum": [float(x) for x in np.asarray(summed)]}).encode(),
    ]


def _stats_document(data: bytes, work: Path) -> object:
    """``fedledger data prepare --stats FILE``: the statistics the consortium agreed."""
    from fedledger.cli.data.lifecycle import _with_stats

    table = work / "hospital.data"
    if not table.exists():
        table.write_text(_heart_text())
    return _with_stats(_consortium_recipe(), str(_write(work, "stats.json", data)), table, None)


@functools.cache
def _consortium_recipe() -> Any:
    import tomllib

    from fedledger.data.prepare import Recipe

    return Recipe.from_dict(tomllib.loads(_recipe_text("consortium")))


POLICY = b"""k = 3
l = 2
t = 0.4
identifier_action = "pseudonymize"

[columns.card]
action = "tokenize"

[columns.zip]
hierarchy = "prefix"
class = "quasi_identifier"
"""


def _policy(data: bytes, work: Path) -> object:
    from fedledger.data.policy import ProtectionPolicy

    return ProtectionPolicy.from_toml(_write(work, "policy.toml", data))


def _goal_seeds() -> list[bytes]:
    from fedledger.data.goal import GOAL_FORMAT

    goal = {
        "format": GOAL_FORMAT,
        "data": "hospital.csv",
        "purpose": "model-training:heart-disease",
        "lawful_basis": "public_task",
        "retention": "5y",
        "columns": ["age", "chol", "num"],
        "description": "cardiology",
        "declared_at": "2024-01-01T00:00:00Z",
    }
    return [json.dumps(goal, indent=2).encode()]


def _goal(data: bytes, work: Path) -> object:
    from fedledger.data.goal import Goal

    return Goal.load(_write(work, "table.goal.json", data))


def _spends_seeds() -> list[bytes]:
    from fedledger.privacy.accounting import LEDGER_FORMAT, SPENDS_FORMAT

    spends = {
        "format": SPENDS_FORMAT,
        "delta": 1e-5,
        "budget_epsilon": 8.0,
        "records": [
            {"member": "0xab", "round": 1, "epsilon": 0.41},
            {"member": "0xab", "round": 2, "micro_epsilon": 820000},
        ],
    }
    ledger = {
        "format": LEDGER_FORMAT,
        "delta": 1e-5,
        "accountant": "rdp",
        "members": {"0xab": [{"round": 1, "noise_multiplier": 1.1, "sample_rate": 0.01, "steps": 100}]},
    }
    return [json.dumps(spends).encode(), json.dumps(ledger).encode()]


def _spends(data: bytes, work: Path) -> object:
    """``fedledger privacy report --from FILE``: a spends file or a saved privacy ledger."""
    from fedledger.privacy.accounting import read_spends

    return read_spends(_write(work, "spends.json", data))


def _workspace_seeds() -> list[bytes]:
    from fedledger.workspace import WorkspaceConfig

    config = WorkspaceConfig(consortium=ADDRESS, tasks={"heart": ADDRESS}, data_registry=ADDRESS)
    return [json.dumps(config.to_json(), indent=2).encode()]


def _workspace(data: bytes, work: Path) -> object:
    """``config.json``, which every workspace command reads first."""
    from fedledger.workspace import Workspace

    _write(work, "config.json", data)
    return Workspace.load(work)


@functools.cache
def _keystore_seed() -> bytes:
    from eth_account import Account

    # The smallest scrypt work factor keeps each case fast; the format is the one `fedledger key new` writes.
    keyfile = Account.encrypt("0x" + "42" * 32, "pw", kdf="scrypt", iterations=2)
    return json.dumps(keyfile).encode()


def _keystore(data: bytes, work: Path) -> object:
    """A key file under ``keys/``: ``key list`` reads it, every signing command decrypts it."""
    from fedledger.identity.keystore import Keystore

    store = Keystore(work / "keys", scrypt_n=2)
    store.directory.mkdir(exist_ok=True)
    store.path("admin").write_bytes(data)
    store.address("admin")
    return store.load("admin", password="pw")


def _labels_seeds() -> list[bytes]:
    from fedledger.data.classify.features import FEATURE_NAMES

    line = {"file": "/data/t.csv", "column": "ssn", "label": "identifier", "features": [0.5] * len(FEATURE_NAMES)}
    return [(json.dumps(line) + "\n" + json.dumps({**line, "column": "age", "label": "other"}) + "\n").encode()]


def _labels(data: bytes, work: Path) -> object:
    """``--labels FILE`` of ``data scan``, ``data protect`` and ``data insights``."""
    from fedledger.data.classify.labels import LabelStore

    store = LabelStore(_write(work, "labels.jsonl", data))
    store.entries()
    return store.training_pairs()


def _registrations_seeds() -> list[bytes]:
    entry = {
        "registry": ADDRESS,
        "dataset_id": 1,
        "commitment": "0x" + "cd" * 32,
        "schema_hash": "0x" + "01" * 32,
        "classification_hash": "0x" + "02" * 32,
        "policy_hash": "0x" + "03" * 32,
        "rows": 303,
        "purposes": ["model-training:heart-disease"],
        "salt": "00" * 16,
        "subjects": ["ab" * 16],
        "goal_hash": "",
        "recipe_hash": "",
    }
    return [json.dumps({f"{ADDRESS.lower()}:1": entry}, indent=1).encode()]


def _registrations(data: bytes, work: Path) -> object:
    """The owner's registrations manifest, read by ``data datasets``, ``data erase`` and ``node``."""
    from fedledger.data.registration import Registrations

    registrations = Registrations(_write(work, "registrations.json", data))
    registrations.get(ADDRESS, 1)
    return registrations.containing(ADDRESS, "ab" * 16)


SUBJECT = "subject-1"


@functools.cache
def _vault_files() -> tuple[bytes, bytes, bytes]:
    """A real vault's wrapped data key, values file and erasure receipt (made in a scratch folder)."""
    import shutil
    import tempfile

    from fedledger.data.vault import Vault

    root = Path(tempfile.mkdtemp(prefix="fuzz-vault-"))
    try:
        vault = Vault(root, b"k" * 32)
        ref = vault.subject_ref(SUBJECT)
        vault.put(SUBJECT, "name", 0, "Ann")
        vault.put(SUBJECT, "age", 0, 41)
        key = (vault._keys / f"{ref}.key").read_bytes()
        values = (vault._values / f"{ref}.json").read_bytes()
        receipt = json.dumps(vault.erase(SUBJECT).to_json(), sort_keys=True).encode()
        return key, values, receipt
    finally:
        shutil.rmtree(root, ignore_errors=True)


SPLIT = b"\n--\n"


def _vault_seeds() -> list[bytes]:
    key, values, receipt = _vault_files()
    return [key + SPLIT + values + SPLIT + receipt]


def _vault(data: bytes, work: Path) -> object:
    """The vault's own files (``data vault get``, ``data erase``): a subject's wrapped data key, its sealed
    values and an erasure receipt, given as one input split at a marker."""
    import shutil

    from fedledger.data.vault import Vault

    key, _, rest = data.partition(SPLIT)
    values, _, receipt = rest.partition(SPLIT)
    root = work / "vault"
    shutil.rmtree(root, ignore_errors=True)
    vault = Vault(root, b"k" * 32)
    ref = vault.subject_ref(SUBJECT)
    (vault._keys / f"{ref}.key").write_bytes(key)
    (vault._values / f"{ref}.json").write_bytes(values)
    out = [vault.get(SUBJECT, "name", 0), vault.get(SUBJECT, "age", 0), vault.erase(SUBJECT)]
    (vault._erased / f"{ref}.json").write_bytes(receipt)
    out.append(Vault(root, b"k" * 32).receipt(SUBJECT))
    return out


def _document(data: bytes, work: Path) -> object:
    """``data register --classification FILE --policy FILE``: JSON when it parses, else committed as bytes."""
    from fedledger.cli.data.vault import _read_document

    return _read_document(_write(work, "classification.json", data))


# -- the registry ------------------------------------------------------------------------------------------


def _errors(*names: str) -> tuple[type[BaseException], ...]:
    import fedledger.exceptions as exc

    return tuple(getattr(exc, n) for n in names)


def targets() -> dict[str, Target]:
    """Every target by name (imports fedledger: call it in the process that runs the cases)."""
    tensor_tokens = JSON_TOKENS + (b'"dtype"', b'"F32"', b'"BOOL"', b'"shape"', b'"data_offsets"', b'"__metadata__"')
    rejected = _errors("UpdateRejected")
    ts = [
        Target("decode_tensors", "blob", _tensor_seeds, _decode_tensors, rejected, tensor_tokens, mutate_safetensors),
        Target("decode_model", "blob", _model_seeds, _decode_model, rejected, tensor_tokens, mutate_safetensors),
        Target("task_config_blob", "blob", _task_config_seeds, _task_config_blob, _errors("ConfigError")),
        Target("metrics_report", "blob", _metrics_seeds, _metrics_report, _errors("BadInput")),
        Target("secagg_messages", "blob", _secagg_seeds, _secagg_messages, ()),
        Target("check_update", "round", _update_seeds, _check_update, rejected, tensor_tokens, mutate_safetensors),
        Target(
            "aggregate_round",
            "round",
            lambda: [honest_update(), honest_update((1e3, -1e3, 0, 0), 10**6)],
            _aggregate_round,
            (),
            tensor_tokens,
            mutate_safetensors,
        ),
        Target("csv_records", "csv", _csv_seeds, _csv_records, _errors("BadInput"), CSV_TOKENS),
        Target("read_table", "csv", _csv_seeds, _read_table, _errors("BadInput"), CSV_TOKENS),
        Target("prepare", "csv", _csv_seeds, _prepare, _errors("BadInput", "ConfigError"), CSV_TOKENS),
        Target("cleanse", "csv", _csv_seeds, _cleanse, _errors("BadInput", "ConfigError"), CSV_TOKENS),
        Target("vault_table", "csv", _csv_seeds, _vault_table, _errors("BadInput"), CSV_TOKENS),
        Target("task_toml", "config", _task_toml_seeds, _load_task_toml, _errors("ConfigError"), TOML_TOKENS),
        Target("task_json", "config", _task_json_seeds, _load_task_json, _errors("ConfigError")),
        Target("recipe_toml", "config", _recipe_seeds, _load_recipe, _errors("ConfigError"), TOML_TOKENS),
        Target("recipe_json", "config", _recipe_json_seeds, _load_recipe_json, _errors("ConfigError")),
        Target("stats_document", "cli-file", _stats_seeds, _stats_document, _errors("ConfigError", "BadInput")),
        Target("policy_toml", "cli-file", lambda: [POLICY], _policy, _errors("ConfigError"), TOML_TOKENS),
        Target("goal_json", "cli-file", _goal_seeds, _goal, _errors("ConfigError")),
        Target("privacy_spends", "cli-file", _spends_seeds, _spends, _errors("BadInput")),
        Target("workspace_config", "cli-file", _workspace_seeds, _workspace, _errors("ConfigError")),
        Target("keystore", "cli-file", lambda: [_keystore_seed()], _keystore, _errors("KeystoreError")),
        Target("labels_jsonl", "cli-file", _labels_seeds, _labels, _errors("ConfigError")),
        Target("registrations", "cli-file", _registrations_seeds, _registrations, _errors("ConfigError")),
        Target(
            "vault_files",
            "cli-file",
            _vault_seeds,
            _vault,
            _errors("IntegrityError", "BadInput", "UnknownSubject", "ErasedSubject"),
        ),
        Target("register_document", "cli-file", lambda: [b'{"ssn": "identifier"}'], _document, _errors("BadInput")),
    ]
    return {t.name: t for t in ts}


# -- running cases ---------------------------------------------------------------------------------------


@dataclass
class Outcome:
    """How one case ended: ``ok`` (accepted), ``named`` (its documented error) or ``crash``."""

    case: int
    status: str
    seconds: float
    peak_bytes: int
    error: str = ""


def run_one(target: Target, data: bytes, work: Path) -> tuple[str, str]:
    """(status, error) of one input, in this process."""
    try:
        target.run(data, work)
    except target.expected as exc:
        return "named", f"{type(exc).__name__}: {str(exc)[:300]}"
    except BaseException as exc:  # noqa: BLE001 - anything else is the finding
        if isinstance(exc, KeyboardInterrupt):
            raise
        return "crash", f"{type(exc).__name__}: {str(exc)[:300]}"
    return "ok", ""


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return 0


def _reset_peak_rss() -> int:
    """Reset this process's peak RSS (Linux ``clear_refs``) and return its RSS now. Page-level, so memory that
    numpy, pyarrow or a C parser takes counts too; and cheap, where tracemalloc slows deep recursion a hundredfold."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        return 0
    return _status_kib("VmRSS")


def _peak_rss() -> int:
    try:
        return _status_kib("VmHWM")
    except OSError:
        return 0


def worker(name: str, seed: int, start: int, stop: int, work: Path, trace: bool) -> None:
    """Run cases ``start..stop`` of one target, one line per case on stdout (``fuzz.py`` reads them)."""
    import fedledger.federation  # noqa: F401 - raises the recursion limit, as in a real node

    target = targets()[name]
    seeds_of(target)
    work.mkdir(parents=True, exist_ok=True)
    out = sys.stdout
    for case in range(start, stop):
        data = make_input(target, seed, case)
        out.write(f"S {case}\n")
        out.flush()
        before = _reset_peak_rss() if trace else 0
        began = time.perf_counter()
        status, error = run_one(target, data, work)
        seconds = time.perf_counter() - began
        peak = max(0, _peak_rss() - before) if trace else 0
        out.write(f"R {case} {status} {seconds:.6f} {peak} {json.dumps(error)}\n")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    out.write(f"M {rss}\n")
    out.flush()


@dataclass
class TargetReport:
    name: str
    group: str
    cases: int = 0
    accepted: int = 0
    named: int = 0
    crashes: list[Outcome] = field(default_factory=list)
    max_seconds: float = 0.0
    slowest_case: int = -1
    max_peak_bytes: int = 0
    max_rss_bytes: int = 0
    wall_seconds: float = 0.0


def run_cases(
    target: Target,
    seed: int,
    cases: int,
    *,
    work: Path,
    timeout: float = 20.0,
    batch: int = 2000,
    trace: bool = True,
    memory_limit: int = 4 << 30,
) -> Iterator[Outcome]:
    """Run ``cases`` cases of ``target`` in child processes and yield each outcome.

    A child that dies (a segfault, the memory limit) costs only the case it was running; a case that runs
    past ``timeout`` seconds is killed and counted as a crash ("hang"); the next child starts after it.
    """
    next_case = 0
    script = Path(__file__).resolve()
    while next_case < cases:
        stop = min(cases, next_case + batch)
        cmd = [sys.executable, str(script), "worker", target.name, str(seed), str(next_case), str(stop), str(work)]
        if trace:
            cmd.append("--trace")

        def limit() -> None:
            resource.setrlimit(resource.RLIMIT_AS, (memory_limit, memory_limit))

        proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=limit, cwd=REPO, bufsize=0
        )
        assert proc.stdout is not None
        running: int | None = None
        started = time.perf_counter()
        pending = b""
        finished = False
        while True:
            ready, _, _ = select.select([proc.stdout], [], [], timeout if running is not None else timeout * 6)
            if not ready:
                proc.kill()
                proc.wait()
                case = running if running is not None else next_case
                yield Outcome(case, "crash", time.perf_counter() - started, 0, f"hang: no answer in {timeout:.0f} s")
                next_case = case + 1
                break
            chunk = os.read(proc.stdout.fileno(), 65536)
            if not chunk:  # the child is gone
                code = proc.wait()
                stderr = proc.stderr.read().decode(errors="replace")[-300:] if proc.stderr else ""
                if finished:
                    next_case = stop
                elif running is not None:
                    yield Outcome(running, "crash", 0.0, 0, f"process died (exit {code}): {stderr.strip()}")
                    next_case = running + 1
                else:
                    raise RuntimeError(f"fuzz worker failed to start (exit {code}): {stderr}")
                break
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                kind, _, rest = line.decode().partition(" ")
                if kind == "S":
                    running = int(rest)
                    started = time.perf_counter()
                elif kind == "R":
                    case_s, status, seconds, peak, error = rest.split(" ", 4)
                    running = None
                    yield Outcome(int(case_s), status, float(seconds), int(peak), json.loads(error))
                elif kind == "M":
                    finished = True
                    yield Outcome(-1, "rss", 0.0, int(rest))
        if proc.stderr:
            proc.stderr.close()
        proc.stdout.close()


def fuzz_target(
    target: Target, seed: int, cases: int, *, work: Path, crash_dir: Path | None, keep: int = 5, **kwargs: Any
) -> TargetReport:
    report = TargetReport(target.name, target.group)
    began = time.perf_counter()
    for outcome in run_cases(target, seed, cases, work=work, **kwargs):
        if outcome.status == "rss":
            report.max_rss_bytes = max(report.max_rss_bytes, outcome.peak_bytes)
            continue
        report.cases += 1
        report.max_peak_bytes = max(report.max_peak_bytes, outcome.peak_bytes)
        if outcome.seconds > report.max_seconds:
            report.max_seconds, report.slowest_case = outcome.seconds, outcome.case
        if outcome.status == "ok":
            report.accepted += 1
        elif outcome.status == "named":
            report.named += 1
        else:
            report.crashes.append(outcome)
            if crash_dir is not None and len(report.crashes) <= keep:
                crash_dir.mkdir(parents=True, exist_ok=True)
                stem = crash_dir / f"{target.name}-seed{seed}-case{outcome.case}"
                stem.with_suffix(".bin").write_bytes(make_input(target, seed, outcome.case))
                stem.with_suffix(".txt").write_text(outcome.error + "\n")
    report.wall_seconds = time.perf_counter() - began
    return report


def main_worker(argv: list[str]) -> None:
    name, seed, start, stop, work = argv[:5]
    worker(name, int(seed), int(start), int(stop), Path(work), "--trace" in argv)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "worker":
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        main_worker(sys.argv[2:])
    else:
        raise SystemExit("run benchmarks/fuzz.py; this module is its library")
