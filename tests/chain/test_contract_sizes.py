"""Every deployed contract stays under EIP-170 with room to spare for fixes.

EIP-170 caps runtime code at 24,576 bytes; the project's own bound keeps 2 KiB below it (22,528 bytes), room a
security fix may need without splitting a contract. The size is the compiler's runtime bytecode (what the chain
stores), compiled from the sources as shipped.
"""

from __future__ import annotations

import re
from importlib.resources import files

import pytest

from fedledger.chain.compiler import CONTRACT_NAMES, CONTRACTS_DIR, compile_contract, contract_sources

EIP_170 = 24_576
BOUND = EIP_170 - 2_048


def test_every_shipped_contract_is_listed() -> None:
    """Every contract file at the top of the contracts folder is deployable (modules and interfaces sit below)."""
    folder = files("fedledger.chain").joinpath("contracts")
    shipped = sorted(p.name.removesuffix(".vy") for p in folder.iterdir() if p.name.endswith(".vy"))
    assert shipped == sorted(CONTRACT_NAMES)


@pytest.mark.parametrize("name", CONTRACT_NAMES)
def test_runtime_bytecode_within_bound(name: str) -> None:
    compiled = compile_contract(name)
    size = len(bytes.fromhex(compiled.bytecode_runtime.removeprefix("0x")))
    assert size == compiled.runtime_size
    assert 0 < size <= BOUND < EIP_170, f"{name}: {size} bytes of runtime code, over the {BOUND}-byte bound"


def test_task_contracts_are_built_from_the_shared_modules() -> None:
    validated, secure = contract_sources("TrainingTask"), contract_sources("SecureTrainingTask")
    shared = {"modules/round_core.vy", "modules/membership.vy", "modules/provenance.vy", "interfaces/ITrainingTask.vyi"}
    assert shared <= set(validated) & set(secure)
    assert {"modules/committees.vy", "modules/reputation.vy", "modules/validation.vy"} <= set(validated)
    assert {"modules/staking.vy", "interfaces/IStakeGate.vyi"} <= set(validated)  # the stake gate: scored rounds only
    assert "modules/secure_phases.vy" in secure and "modules/secure_phases.vy" not in validated
    assert "modules/staking.vy" not in secure
    assert all((CONTRACTS_DIR / path).is_file() for path in validated)


def test_the_cache_key_covers_imported_modules(monkeypatch: pytest.MonkeyPatch) -> None:
    """A changed module (not only the contract's own file) or compiler version gives another key."""
    from fedledger.chain import compiler

    key = compiler._source_key("TrainingTask", "0.4.3")
    assert key == compiler._source_key("TrainingTask", "0.4.3")
    assert key != compiler._source_key("TrainingTask", "0.4.4")
    real = compiler.contract_sources

    def edited(name: str) -> dict[str, str]:
        sources = real(name)
        sources["modules/reputation.vy"] += "\n# edited\n"
        return sources

    monkeypatch.setattr(compiler, "contract_sources", edited)
    assert compiler._source_key("TrainingTask", "0.4.3") != key


_FUNCTION = re.compile(r"^def (\w+)\((.*?)\)(\s*->\s*[^:]+)?:\n(\s+\"\"\"(.*?)\"\"\")?", re.MULTILINE | re.DOTALL)


def test_every_contract_function_has_natspec() -> None:
    """Every function of every contract, module and interface (internal ones too) has a NatSpec docstring
    with @notice, an @param per parameter and @return when it returns."""
    missing = []
    for path in sorted(CONTRACTS_DIR.rglob("*.vy*")):
        for match in _FUNCTION.finditer(path.read_text(encoding="utf-8")):
            name, args, returns, _, doc = match.groups()
            where = f"{path.relative_to(CONTRACTS_DIR)}:{name}"
            if doc is None:
                missing.append(f"{where}: no docstring")
                continue
            params = [a.split(":")[0].strip() for a in re.split(r",\s*(?![^\[]*\])", args) if a.strip()]
            tags = ["@notice", *(f"@param {p}" for p in params), *(["@return"] if returns else [])]
            missing += [f"{where}: no {tag}" for tag in tags if not re.search(re.escape(tag) + r"\b", doc)]
    assert not missing, "\n".join(missing)
