"""Compile the Vyper contracts shipped in the package, cached by source hash.

The pure-Python vyper compiler takes about a second per contract, so artifacts
are cached in ``$FEDLEDGER_CACHE`` (default ``~/.cache/fedledger/contracts``),
keyed by the sha256 of the source and the compiler version: a changed source or
compiler never reuses a stale artifact.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from fedledger.exceptions import ConfigError

__all__ = ["CONTRACT_NAMES", "CompiledContract", "compile_contract", "contract_source"]

CONTRACT_NAMES = ("Consortium", "TrainingTask", "DataRegistry", "Bulletin")


@dataclass(frozen=True)
class CompiledContract:
    name: str
    abi: list[dict[str, Any]]
    bytecode: str
    source_hash: str


def contract_source(name: str) -> str:
    """The Vyper source of a shipped contract."""
    if name not in CONTRACT_NAMES:
        raise ConfigError(f"unknown contract {name!r}; known: {', '.join(CONTRACT_NAMES)}")
    return (resources.files("fedledger.chain") / "contracts" / f"{name}.vy").read_text(encoding="utf-8")


def _cache_dir() -> Path:
    root = os.environ.get("FEDLEDGER_CACHE") or os.path.join(Path.home(), ".cache", "fedledger")
    return Path(root) / "contracts"


@cache
def compile_contract(name: str) -> CompiledContract:
    """ABI and deployment bytecode of a shipped contract (compiled once per source)."""
    import vyper

    source = contract_source(name)
    key = hashlib.sha256(f"{vyper.__version__}\n{source}".encode()).hexdigest()
    path = _cache_dir() / f"{name}-{key[:24]}.json"
    try:
        data = json.loads(path.read_text())
        return CompiledContract(name, data["abi"], data["bytecode"], key)
    except (OSError, ValueError, KeyError):
        pass
    out = vyper.compile_code(source, contract_path=f"{name}.vy", output_formats=["abi", "bytecode"])
    compiled = CompiledContract(name, out["abi"], out["bytecode"], key)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Write then rename, so a concurrent reader never sees half a file.
        with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp") as tmp:
            json.dump({"abi": compiled.abi, "bytecode": compiled.bytecode}, tmp)
        os.replace(tmp.name, path)
    except OSError:
        pass  # a read-only home only costs a recompile next time
    return compiled
