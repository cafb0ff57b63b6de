"""Compile the Vyper contracts shipped in the package, cached by their sources.

The deployed contracts are composed of shared modules (``contracts/modules``)
and interfaces (``contracts/interfaces``); the compiler resolves their imports
with the contracts folder as its search path. The pure-Python vyper compiler
takes about a second per contract, so artifacts are cached in
``$FEDLEDGER_CACHE`` (default ``~/.cache/fedledger/contracts``), keyed by the
sha256 of the compiler version and of every source file the contract imports,
directly or not: a changed module, interface or compiler never reuses a stale
artifact.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from fedledger.exceptions import ConfigError

__all__ = [
    "CONTRACTS_DIR",
    "CONTRACT_NAMES",
    "CompiledContract",
    "compile_contract",
    "contract_source",
    "contract_sources",
]

CONTRACT_NAMES = (
    "Consortium",
    "TrainingTask",
    "SecureTrainingTask",
    "DataRegistry",
    "Bulletin",
    "Incentives",
    "CommitmentBatches",
)
CONTRACTS_DIR = Path(__file__).resolve().parent / "contracts"

# `import a`, `import a as b`, `from pkg import a`, `from . import a` (one name per statement).
_IMPORT = re.compile(r"^(?:from\s+([\w.]+)\s+)?import\s+(\w+)", re.MULTILINE)


@dataclass(frozen=True)
class CompiledContract:
    name: str
    abi: list[dict[str, Any]]
    bytecode: str
    source_hash: str
    bytecode_runtime: str = ""  # the code the chain stores (EIP-170 limits its size)

    @property
    def runtime_size(self) -> int:
        """Bytes of runtime code."""
        return len(self.bytecode_runtime.removeprefix("0x")) // 2


def contract_source(name: str) -> str:
    """The Vyper source of a shipped contract (its own file; modules it imports excluded)."""
    return _contract_path(name).read_text(encoding="utf-8")


def contract_sources(name: str) -> dict[str, str]:
    """Every source file a shipped contract is compiled from: its own and, recursively, the modules
    and interfaces it imports; keyed by path relative to the contracts folder, in sorted order."""
    found: dict[Path, str] = {}
    pending = [_contract_path(name)]
    while pending:
        path = pending.pop()
        if path in found:
            continue
        text = path.read_text(encoding="utf-8")
        found[path] = text
        pending.extend(_imported_files(path, text))
    return {p.relative_to(CONTRACTS_DIR).as_posix(): found[p] for p in sorted(found)}


def _contract_path(name: str) -> Path:
    if name not in CONTRACT_NAMES:
        raise ConfigError(f"unknown contract {name!r}; known: {', '.join(CONTRACT_NAMES)}")
    return CONTRACTS_DIR / f"{name}.vy"


def _imported_files(path: Path, text: str) -> list[Path]:
    """The shipped files ``path`` imports (compiler built-ins such as ``ethereum.ercs`` are not files here)."""
    files = []
    for package, module in _IMPORT.findall(text):
        if package.startswith("."):
            base = path.parent
            for _ in range(len(package) - 1):
                base = base.parent
        else:
            base = CONTRACTS_DIR.joinpath(*package.split(".")) if package else CONTRACTS_DIR
        for suffix in (".vy", ".vyi"):
            candidate = (base / module).with_suffix(suffix)
            if candidate.is_file():
                files.append(candidate.resolve())
    return files


def _cache_dir() -> Path:
    root = os.environ.get("FEDLEDGER_CACHE") or os.path.join(Path.home(), ".cache", "fedledger")
    return Path(root) / "contracts"


def _source_key(name: str, compiler_version: str) -> str:
    digest = hashlib.sha256(f"{compiler_version}\n".encode())
    for relative, text in contract_sources(name).items():
        digest.update(f"{relative}\n{len(text)}\n{text}".encode())
    return digest.hexdigest()


@cache
def compile_contract(name: str) -> CompiledContract:
    """ABI, deployment and runtime bytecode of a shipped contract (compiled once per set of sources)."""
    import vyper
    from vyper.compiler.input_bundle import FilesystemInputBundle

    key = _source_key(name, vyper.__version__)
    path = _cache_dir() / f"{name}-{key[:24]}.json"
    try:
        data = json.loads(path.read_text())
        return CompiledContract(name, data["abi"], data["bytecode"], key, data["bytecode_runtime"])
    except (OSError, ValueError, KeyError):
        pass
    out = vyper.compile_code(
        contract_source(name),
        contract_path=f"{name}.vy",
        resolved_path=_contract_path(name),
        input_bundle=FilesystemInputBundle([CONTRACTS_DIR]),
        output_formats=["abi", "bytecode", "bytecode_runtime"],
    )
    compiled = CompiledContract(name, out["abi"], out["bytecode"], key, out["bytecode_runtime"])
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Write then rename, so a concurrent reader never sees half a file.
        with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp") as tmp:
            json.dump({k: out[k] for k in ("abi", "bytecode", "bytecode_runtime")}, tmp)
        os.replace(tmp.name, path)
    except OSError:
        pass  # a read-only home only costs a recompile next time
    return compiled
