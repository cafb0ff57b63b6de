"""Fuzzing: hypothesis properties and a quick pass of the seeded byte fuzzer over every target of
``benchmarks/fuzz.py`` (blobs, ``check_update``, ``aggregate_round``, CSV readers, config files and every file a
CLI command reads). Every input must be accepted or refused with the reader's named error; the full run is
``python benchmarks/fuzz.py --cases 100000``. Regression tests for what the fuzzer found close the file."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fedledger.federation  # noqa: F401 - the recursion limit a node runs with
from conftest import BENCHMARKS
from fedledger.exceptions import BadInput, ConfigError, IntegrityError, KeystoreError, UpdateRejected

sys.path.insert(0, str(BENCHMARKS))

import fuzz_lib  # noqa: E402

TARGETS = fuzz_lib.targets()
QUICK_CASES = 40  # per target; the benchmark runs thousands
FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


def _passes(name: str, data: bytes, work: Path) -> None:
    status, error = fuzz_lib.run_one(TARGETS[name], data, work / name)
    assert status != "crash", f"{name}: {error} on {data[:200]!r}"


@pytest.fixture(scope="module", autouse=True)
def _folders(work: Path) -> None:
    for name in TARGETS:
        (work / name).mkdir(exist_ok=True)


def test_every_target_has_named_errors_and_valid_seeds(work: Path) -> None:
    assert {t.group for t in TARGETS.values()} == {"blob", "round", "csv", "config", "cli-file"}
    for name in ("decode_tensors", "decode_model", "check_update", "aggregate_round", "task_toml", "goal_json"):
        target = TARGETS[name]
        for seed in fuzz_lib.seeds_of(target):
            status, error = fuzz_lib.run_one(target, seed, work / name)
            assert status in ("ok", "named"), error
        assert fuzz_lib.run_one(target, fuzz_lib.seeds_of(target)[0], work / name)[0] == "ok"


def test_inputs_replay_exactly() -> None:
    target = TARGETS["task_toml"]
    assert fuzz_lib.make_input(target, 3, 17) == fuzz_lib.make_input(target, 3, 17)
    assert len({fuzz_lib.make_input(target, 3, i) for i in range(20)}) > 15


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_quick_seeded_pass(name: str, work: Path) -> None:
    """The CI subset of the benchmark: a few dozen seeded cases per target, in this process."""
    target = TARGETS[name]
    for case in range(QUICK_CASES):
        data = fuzz_lib.make_input(target, 0, case)
        if len(data) > 64 * 1024:
            continue  # the deep-nesting cases run in a child process below: a regression would segfault
        _passes(name, data, work)


def test_the_child_process_runner_counts_outcomes(tmp_path: Path) -> None:
    report = fuzz_lib.fuzz_target(TARGETS["decode_tensors"], 5, 25, work=tmp_path / "w", crash_dir=tmp_path / "c")
    assert report.cases == 25 and report.accepted + report.named == 25 and not report.crashes
    assert report.max_rss_bytes > 0 and report.max_seconds < 20


# -- hypothesis ----------------------------------------------------------------------------------------

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
ENTRY = st.fixed_dictionaries(
    {
        "dtype": st.sampled_from(["F32", "F64", "I64", "U64", "BOOL", "U8", "BF16", "x"]) | JSON_VALUES,
        "shape": st.lists(st.integers(-2, 2**41), max_size=3) | JSON_VALUES,
        "data_offsets": st.lists(st.integers(-2, 64), min_size=2, max_size=2) | JSON_VALUES,
    }
)


@FAST
@given(
    header=st.dictionaries(st.sampled_from(["w", "b", "__metadata__", ""]), ENTRY | JSON_VALUES, max_size=3),
    body=st.binary(max_size=64),
)
def test_any_header_is_decoded_or_named(header: dict, body: bytes, work: Path) -> None:
    head = json.dumps(header).encode()
    blob = struct.pack("<Q", len(head)) + head + body
    for name in ("decode_tensors", "decode_model", "check_update", "aggregate_round"):
        _passes(name, blob, work)


@FAST
@given(values=st.lists(st.floats(width=64), min_size=4, max_size=4), n=st.integers(0, 2**40))
def test_any_update_values_are_checked_or_named(values: list[float], n: int, work: Path) -> None:
    from fedledger.learning import encode_update

    tensors = {"w": np.array(values[:3], np.float32), "b": np.array(values[3:], np.float32)}
    raw = encode_update(tensors, {"num_examples": str(n)})
    for blob in (raw, fuzz_lib.honest_update((1e6, -1e6, 0.0, 0.0), max(n, 1))):
        _passes("check_update", blob, work)
        _passes("aggregate_round", blob, work)


@FAST
@given(data=st.binary(max_size=512))
def test_any_bytes_are_decoded_or_named(data: bytes, work: Path) -> None:
    for name in ("decode_tensors", "task_config_blob", "metrics_report", "secagg_messages", "csv_records"):
        _passes(name, data, work)


CSV_TEXT = st.lists(
    st.lists(st.text(alphabet=st.sampled_from('0123456789.-e?"x,;\t \r\n'), max_size=6), min_size=1, max_size=15),
    max_size=8,
)


@FAST
@given(rows=CSV_TEXT, sep=st.sampled_from([",", ";", "\t"]))
def test_any_table_is_read_or_named(rows: list[list[str]], sep: str, work: Path) -> None:
    data = "\n".join(sep.join(r) for r in rows).encode()
    for name in ("csv_records", "read_table", "prepare", "cleanse"):
        _passes(name, data, work)


@FAST
@given(doc=st.dictionaries(st.sampled_from(["rounds", "model", "preparation", "seed", "aggregation"]), JSON_VALUES))
def test_any_task_file_is_parsed_or_named(doc: dict, work: Path) -> None:
    _passes("task_json", json.dumps(doc).encode(), work)
    for name in ("goal_json", "privacy_spends", "workspace_config", "registrations", "stats_document"):
        _passes(name, json.dumps(doc).encode(), work)


# -- what the fuzzer found -------------------------------------------------------------------------------


def test_files_a_command_reads_refuse_deep_nesting_in_a_subprocess() -> None:
    """Each JSON or TOML file reader at 100,000 levels, after the import that raises the recursion limit: before
    the depth check, json.loads overflowed the C stack (SIGSEGV) on the JSON ones."""
    script = textwrap.dedent(
        f"""
        import sys, tempfile
        from pathlib import Path
        sys.path.insert(0, {str(BENCHMARKS)!r})
        import fedledger.federation
        import fuzz_lib
        work = Path(tempfile.mkdtemp())
        targets = fuzz_lib.targets()
        for name in sorted(targets):
            (work / name).mkdir()
            for deep in (b"[" * 100_000, b'{{"a":' * 100_000, b"a = " + b"[" * 100_000):
                status, error = fuzz_lib.run_one(targets[name], deep, work / name)
                print(name, status, error[:80])
        print("DONE")
        """
    )
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.splitlines()[-1] == "DONE"
    crashes = [line for line in run.stdout.splitlines() if " crash " in line]
    assert not crashes, crashes


def test_a_task_file_that_is_not_utf8_is_a_config_error(tmp_path: Path) -> None:
    from fedledger.federation.config_file import load_task_config

    path = tmp_path / "task.toml"
    path.write_bytes(b'rounds = 3\nname = "\xe9"\n')
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_task_config(path)


def test_deep_json_files_are_named(tmp_path: Path) -> None:
    from fedledger.data.goal import Goal
    from fedledger.privacy.accounting import read_spends
    from fedledger.workspace import Workspace

    deep = "[" * 40 + "]" * 40
    (tmp_path / "config.json").write_text(deep)
    with pytest.raises(ConfigError, match="nested 40 levels deep"):
        Workspace.load(tmp_path)
    (tmp_path / "g.json").write_text(deep)
    with pytest.raises(ConfigError, match="nested 40 levels deep"):
        Goal.load(tmp_path / "g.json")
    with pytest.raises(BadInput, match="nested 40 levels deep"):
        read_spends(tmp_path / "g.json")


def test_a_keystore_with_missing_or_mistyped_fields_is_a_keystore_error(tmp_path: Path) -> None:
    from fedledger.identity.keystore import Keystore

    store = Keystore(tmp_path, scrypt_n=2)
    good = json.loads(fuzz_lib._keystore_seed())
    del good["crypto"]["kdfparams"]
    store.path("a").write_text(json.dumps(good))
    with pytest.raises(KeystoreError, match="has no key derivation parameters"):
        store.load("a", password="pw")
    good = json.loads(fuzz_lib._keystore_seed())
    good["crypto"]["kdfparams"]["n"] = 2.0
    store.path("b").write_text(json.dumps(good))
    with pytest.raises(KeystoreError, match="scrypt n must be a power of two"):
        store.load("b", password="pw")
    good = json.loads(fuzz_lib._keystore_seed())
    del good["crypto"]["cipherparams"]
    store.path("c").write_text(json.dumps(good))
    with pytest.raises(KeystoreError, match="corrupt keystore"):
        store.load("c", password="pw")


def test_a_malformed_erasure_receipt_is_an_integrity_error(tmp_path: Path) -> None:
    from fedledger.data.vault import Vault

    vault = Vault(tmp_path, b"k" * 32)
    vault.put("s", "name", 0, "Ann")
    vault.erase("s")
    receipt = vault._erased / f"{vault.subject_ref('s')}.json"
    for text in ("{", '{"subject_ref": "x"}', "[1]", '{"a": ' * 50 + "1" + "}" * 50):
        receipt.write_text(text)
        with pytest.raises(IntegrityError, match="not an erasure receipt"):
            vault.receipt("s")


def test_an_empty_table_under_local_statistics_is_bad_input(tmp_path: Path) -> None:
    from fedledger.data.prepare import prepare

    path = tmp_path / "empty.data"
    path.write_bytes(b"")
    with pytest.raises(BadInput, match="no value at all"):
        prepare(fuzz_lib._heart_recipe(), path)


def test_update_rejection_is_still_the_blob_error() -> None:
    with pytest.raises(UpdateRejected):
        fuzz_lib._decode_tensors(b"\0" * 7, Path("."))


@pytest.mark.parametrize("value", ["Infinity", "3", "1", "2.0", "true", "1099511627776"])
def test_a_workspace_config_with_an_impossible_scrypt_factor_is_a_config_error(tmp_path: Path, value: str) -> None:
    from fedledger.workspace import Workspace

    ws = Workspace.create(tmp_path, scrypt_n=2**10)
    ws.close()
    path = tmp_path / "config.json"
    path.write_text(path.read_text().replace('"scrypt_n": 1024', f'"scrypt_n": {value}'))
    with pytest.raises(ConfigError, match="scrypt_n must be a power of two from 2 to"):
        Workspace.load(tmp_path)


@pytest.mark.parametrize("noise", [1e308, 18446744073709551616, -1.0])
def test_a_privacy_ledger_with_an_absurd_noise_multiplier_is_bad_input(tmp_path: Path, noise: float) -> None:
    from fedledger.privacy.accounting import read_spends

    path = tmp_path / "spends.json"
    mechanism = {"round": 1, "noise_multiplier": noise, "sample_rate": 0.01, "steps": 100}
    document = {"format": "fedledger-privacy-ledger/1", "delta": 1e-05, "accountant": "rdp"}
    path.write_text(json.dumps({**document, "members": {"0xab": [mechanism]}}))
    with pytest.raises(BadInput, match=r"noise_multiplier must be within 0\.\.1e\+06"):
        read_spends(path)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("dklen", 1e308, "dklen must be 32 to 64"),
        ("n", float("inf"), "scrypt n must be a power of two up to 2"),
        ("n", 2**40, "scrypt n must be a power of two up to 2"),
        ("n", 3, "scrypt n must be a power of two up to 2"),
        ("r", 0, "scrypt r must be 1 to 32"),
        ("p", 10**9, "scrypt p must be 1 to 16"),
    ],
)
def test_a_key_file_whose_derivation_would_not_finish_is_refused_before_it_runs(
    tmp_path: Path, field: str, value: object, message: str
) -> None:
    from fedledger.identity.keystore import Keystore

    store = Keystore(tmp_path, scrypt_n=2)
    key = json.loads(fuzz_lib._keystore_seed())
    key["crypto"]["kdfparams"][field] = value
    store.path("k").write_text(json.dumps(key))
    assert store.address("k")  # listing keys still reads the address
    with pytest.raises(KeystoreError, match=message):
        store.load("k", password="pw")
