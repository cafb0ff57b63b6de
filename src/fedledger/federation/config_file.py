"""Task configs as files: TOML (or JSON) to :class:`TaskConfig`, with every error naming its field.

A task file holds :class:`TaskConfig`'s fields at the top level, with ``[model]``,
``[preparation]`` (:mod:`fedledger.data.prepare`; or ``preparation = "recipe.toml"``, a recipe
file beside it, inlined into the committed config), ``[aggregation_params]``, ``[contribution_params]`` and
``[extra]`` as tables. With a recipe, the model's ``n_features`` and ``n_classes`` default to what it produces.
``docs/guide.md`` lists the fields; ``examples/*/task.toml`` are worked examples. Unknown keys
are errors (a typo must not silently fall back to a default), and so is a value of the wrong type.
"""

from __future__ import annotations

import dataclasses
import difflib
import tomllib
import types
import typing
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fedledger.exceptions import ConfigError
from fedledger.federation.config import TaskConfig
from fedledger.store.safejson import loads_shallow

if TYPE_CHECKING:
    from fedledger.data.prepare import Recipe

__all__ = ["load_task_config", "task_config_from_mapping"]


def load_task_config(path: Path) -> TaskConfig:
    """Read a task config from ``path`` (``.toml``, or ``.json``); errors name the file and the field."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read task config {path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text: {exc}") from exc
    is_json = Path(path).suffix.lower() == ".json"
    try:
        data = loads_shallow(text, what="task config") if is_json else tomllib.loads(text)
    except ValueError as exc:  # tomllib.TOMLDecodeError is a ValueError, and so is a JSON file nested too deep
        raise ConfigError(f"{path}: not valid {'JSON' if is_json else 'TOML'}: {exc}") from exc
    except RecursionError:  # tomllib recurses once per nested array or inline table
        raise ConfigError(f"{path}: not valid TOML: nested too deeply") from None
    try:
        if isinstance(data, dict) and isinstance(data.get("preparation"), str):
            data = {**data, "preparation": _read_recipe_file(Path(path).parent / data["preparation"])}
        return task_config_from_mapping(data)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from exc


def _read_recipe_file(path: Path) -> Any:
    """``preparation = "recipe.toml"``: the recipe file, beside the task file, inlined into the committed config."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"field 'preparation': cannot read recipe {path}: {exc.strerror or exc}") from exc
    except ValueError as exc:  # not UTF-8 either
        raise ConfigError(f"field 'preparation': recipe {path} is not valid TOML: {exc}") from exc
    except RecursionError:
        raise ConfigError(f"field 'preparation': recipe {path} is not valid TOML: nested too deeply") from None


def task_config_from_mapping(data: Any) -> TaskConfig:
    """A :class:`TaskConfig` from a parsed file: unknown keys and mistyped values are refused by name."""
    if not isinstance(data, dict):
        raise ConfigError("a task config is a table of fields")
    _check_fields(data)
    if "model" not in data:
        raise ConfigError("field 'model' is required: a table with the model's 'kind' and its settings")
    if data.get("preparation"):
        data = {**data, "model": _model_sized_by_recipe(data["model"], _recipe(data["preparation"]))}
    try:
        return TaskConfig(**data)
    except ConfigError as exc:
        raise ConfigError(str(exc).removeprefix("task config: ")) from exc
    except (TypeError, ValueError) as exc:
        raise ConfigError(str(exc)) from exc


def _check_fields(data: dict[str, Any]) -> None:
    """Every key is a field of :class:`TaskConfig` and every value has its type; a near miss is suggested."""
    hints = typing.get_type_hints(TaskConfig)
    known = {f.name for f in dataclasses.fields(TaskConfig)}
    for key, value in data.items():
        if key not in known:
            close = difflib.get_close_matches(key, sorted(known), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(f"unknown field {key!r}{hint}")
        _check_type(key, value, hints[key])


def _model_sized_by_recipe(model: dict[str, Any], recipe: Recipe) -> dict[str, Any]:
    """The model's input and output sizes follow from the recipe: one-hot columns are easy to miscount by hand."""
    derived = {"n_features": len(recipe.feature_names), "n_classes": len(recipe.label.class_names)}
    sized = dict(model)
    for key, size in derived.items():
        if sized.setdefault(key, size) != size:
            raise ConfigError(f"field 'model.{key}' is {sized[key]}, the preparation recipe produces {size}")
    return sized


def _recipe(section: Any) -> Recipe:
    from fedledger.data.prepare import Recipe

    try:
        return Recipe.from_dict(section)
    except ConfigError as exc:
        message = str(exc)
        raise ConfigError(message if message.startswith("preparation") else f"preparation: {message}") from exc


def _check_type(name: str, value: Any, hint: Any) -> None:
    expected = _accepted_types(hint)
    if expected is None or _matches(value, expected):
        return
    names = " or ".join(sorted({_type_name(t) for t in expected}))
    raise ConfigError(f"field {name!r}: expected {names}, got {type(value).__name__} {value!r}")


def _accepted_types(hint: Any) -> tuple[type, ...] | None:
    origin = typing.get_origin(hint)
    if origin in (types.UnionType, typing.Union):
        parts = [_accepted_types(arg) for arg in typing.get_args(hint)]
        if any(p is None for p in parts):
            return None
        return tuple(t for p in parts if p is not None for t in p)
    if hint is type(None):
        return (type(None),)
    if origin is not None:
        return (origin,) if isinstance(origin, type) else None
    return (hint,) if isinstance(hint, type) else None


def _matches(value: Any, expected: tuple[type, ...]) -> bool:
    if isinstance(value, bool):
        return bool in expected  # a bool is an int to Python, never to a config file
    if isinstance(value, int) and float in expected:
        return True  # TOML's 10 where a float is expected
    return isinstance(value, expected)


def _type_name(t: type) -> str:
    return {type(None): "nothing", dict: "a table", list: "a list", str: "a string", bool: "true/false"}.get(
        t, t.__name__
    )
