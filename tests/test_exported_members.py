"""Every ``__all__`` in fedledger tells the truth (after httpx's ``test_exported_members``).

A module's ``__all__`` names only what exists, each once. A public package's ``__all__`` is exactly the public names
it binds (nothing exported unlisted, nothing listed missing), and it re-exports the API of its private modules
(``pkg/_impl.py``'s ``__all__``), the very same objects, so users import from the package and never from a
private module. A private module without ``__all__`` is a toolkit for its siblings and promises nothing.
"""

from __future__ import annotations

import importlib
import pkgutil
import types
from collections import Counter

import pytest

import fedledger


def _walk() -> dict[str, types.ModuleType]:
    modules = {"fedledger": fedledger}
    for info in pkgutil.walk_packages(fedledger.__path__, "fedledger."):
        modules[info.name] = importlib.import_module(info.name)
    return modules


MODULES = _walk()


def _is_private(name: str) -> bool:
    return any(part.startswith("_") for part in name.split("."))


def _is_package(module: types.ModuleType) -> bool:
    return hasattr(module, "__path__")


WITH_ALL = sorted(name for name, module in MODULES.items() if hasattr(module, "__all__"))
PUBLIC_PACKAGES = sorted(name for name in WITH_ALL if _is_package(MODULES[name]) and not _is_private(name))


def all_problems(module: types.ModuleType) -> list[str]:
    """What is wrong with ``module.__all__``: not strings, repeated names, names the module lacks."""
    names = module.__all__
    if not isinstance(names, list | tuple) or not all(isinstance(n, str) for n in names):
        return [f"{module.__name__}.__all__ must be a list of strings, not {names!r}"]
    problems = [f"{module.__name__}.__all__ lists {n!r} {c} times" for n, c in Counter(names).items() if c > 1]
    problems += [f"{module.__name__}.__all__ lists {n!r}, which it lacks" for n in names if not hasattr(module, n)]
    return problems


def package_problems(package: types.ModuleType, submodules: dict[str, types.ModuleType]) -> list[str]:
    """What ``package`` exports and does not promise, or promises from a private submodule and does not export.

    ``submodules``: its direct submodules by short name (``_impl``, ``rules``...).
    """
    promised = set(package.__all__)
    bound = {
        name
        for name, value in vars(package).items()
        # Submodules are reached as attributes, not exported; "annotations" is the __future__ feature.
        if not name.startswith("_")
        and not isinstance(value, types.ModuleType)
        and type(value).__module__ != "__future__"
    }
    problems = [f"{package.__name__} exports {n!r} without listing it in __all__" for n in sorted(bound - promised)]
    for short, submodule in sorted(submodules.items()):
        if not short.startswith("_") or not hasattr(submodule, "__all__"):
            continue
        for name in submodule.__all__:
            if name not in promised:
                problems.append(f"{package.__name__} does not re-export {name!r} from {short}")
            elif getattr(package, name, None) is not getattr(submodule, name, None):
                problems.append(f"{package.__name__}.{name} is not {short}.{name}")
    return problems


def _submodules(package: str) -> dict[str, types.ModuleType]:
    prefix = package + "."
    return {
        name[len(prefix) :]: module
        for name, module in MODULES.items()
        if name.startswith(prefix) and "." not in name[len(prefix) :]
    }


def test_the_walk_finds_the_library() -> None:
    assert len(WITH_ALL) > 100
    assert {"fedledger", "fedledger.chain", "fedledger.learning", "fedledger.store"} <= set(PUBLIC_PACKAGES)


@pytest.mark.parametrize("name", WITH_ALL)
def test_all_lists_existing_names_once(name: str) -> None:
    assert all_problems(MODULES[name]) == []


@pytest.mark.parametrize(
    "name",
    PUBLIC_PACKAGES,
)
def test_public_packages_export_exactly_what_they_promise(name: str) -> None:
    assert package_problems(MODULES[name], _submodules(name)) == []


# -- the checks themselves ----------------------------------------------------------------------------------------


def _module(name: str, names: object = None, **members: object) -> types.ModuleType:
    """A module with ``members`` and, unless ``names`` is None, that ``__all__``."""
    module = types.ModuleType(name)
    vars(module).update(members)
    if names is not None:
        vars(module)["__all__"] = names
    return module


def test_all_problems_are_caught() -> None:
    assert all_problems(_module("m", ["a", "b"], a=1, b=2)) == []
    assert all_problems(_module("m", ["a", "a"], a=1)) == ["m.__all__ lists 'a' 2 times"]
    assert all_problems(_module("m", ["a", "gone"], a=1)) == ["m.__all__ lists 'gone', which it lacks"]
    assert all_problems(_module("m", "a", a=1)) == ["m.__all__ must be a list of strings, not 'a'"]


def test_package_problems_are_caught() -> None:
    thing, other = object(), object()
    impl = _module("p._impl", ["thing", "other"], thing=thing, other=other)
    toolkit = _module("p._toolkit", helper=object())  # no __all__: promises nothing
    whole = _module("p", ["thing", "other"], thing=thing, other=other, _impl=impl)
    assert package_problems(whole, {"_impl": impl, "_toolkit": toolkit}) == []

    partial = _module("p", ["thing"], thing=thing, leaked=3)
    assert package_problems(partial, {"_impl": impl}) == [
        "p exports 'leaked' without listing it in __all__",
        "p does not re-export 'other' from _impl",
    ]
    swapped = _module("p", ["thing", "other"], thing=thing, other=object())
    assert package_problems(swapped, {"_impl": impl}) == ["p.other is not _impl.other"]
