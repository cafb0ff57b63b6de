"""A member's own table turned into training and validation data, the same way at every member.

With a preparation recipe in the task config (:mod:`fedledger.data.prepare`), raw files with
missing values, categorical columns and unscaled features are prepared by it; a recipe whose
statistics come from the consortium gets them first from the members' masked sums
(:mod:`fedledger.federation.consortium_stats`). Without a recipe the file must already be a
headered, numeric CSV (standardized with the config's ``standardizer`` when it has one).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
from eth_account.signers.local import LocalAccount

from fedledger.chain.task import TrainingTaskClient
from fedledger.data.cleanse import cleanse
from fedledger.data.prepare import Recipe, prepare
from fedledger.exceptions import ConfigError
from fedledger.federation.config import TaskConfig
from fedledger.federation.consortium_stats import (
    DEFAULT_FRAC_BITS,
    STATS_FRAC_BITS_KEY,
    STATS_MEMBERS_KEY,
    ConsortiumStats,
)
from fedledger.federation.evaluation import task_bulletin
from fedledger.federation.node import LocalData
from fedledger.learning import Dataset, Standardizer, load_csv_dataset, train_val_split
from fedledger.store import BlobStore

__all__ = ["agreed_recipe", "load_member_data", "load_member_table"]

log = logging.getLogger("fedledger.node")


def agreed_recipe(
    config: TaskConfig,
    task: TrainingTaskClient,
    store: BlobStore,
    *,
    account: LocalAccount | None = None,
    table: Path | None = None,
    wait: float = 0.0,
    poll: float = 0.5,
    on_wait: Callable[[list[str]], None] | None = None,
) -> Recipe | None:
    """The task's recipe with every statistic it needs (None without a recipe). Consortium statistics: this
    member (``account``) posts its masked statistics of ``table`` once, then the recipe waits up to ``wait``
    seconds for the other participants' posts (``on_wait`` is told who is missing); :class:`ConfigError` when
    they are still missing then."""
    if not config.preparation:
        return None
    recipe = Recipe.from_dict(config.preparation)
    if not recipe.missing_stats():
        return recipe
    agreement = ConsortiumStats(
        task,
        task_bulletin(task, store),
        store,
        recipe,
        list(config.extra.get(STATS_MEMBERS_KEY, [])),
        account,
        frac_bits=int(config.extra.get(STATS_FRAC_BITS_KEY, DEFAULT_FRAC_BITS)),
    )
    if table is not None:
        agreement.contribute(cleansed(recipe, table))
    deadline = time.monotonic() + wait
    told: list[str] | None = None
    while (agreed := agreement.agreed()) is None:
        missing = agreement.progress().missing
        if time.monotonic() >= deadline:
            raise ConfigError(
                "the consortium's preparation statistics are not agreed yet: waiting for " + ", ".join(missing)
            )
        if missing != told and on_wait is not None:
            on_wait(missing)
        told = missing
        time.sleep(poll)
    return agreed


def load_member_table(config: TaskConfig, path: Path, *, label: str | None = None, recipe: Recipe | None) -> Dataset:
    """Features and labels of one member's file, prepared as the task says (errors name file, line, column).
    ``recipe``: :func:`agreed_recipe` of the task (None: the task has no recipe)."""
    if recipe is not None:
        if label is not None and label != recipe.label.column:
            raise ConfigError(f"--label {label!r}: the task's recipe takes its label from {recipe.label.column!r}")
        prepared = prepare(recipe, cleansed(recipe, path))
        return Dataset(prepared.X, prepared.y, list(prepared.feature_names))
    if label is None:
        raise ConfigError("the task has no preparation recipe: name the label column with --label")
    dataset = load_csv_dataset(path, label)
    scaler = config.extra.get("standardizer")
    return dataset._replace(X=Standardizer.from_dict(scaler).transform(dataset.X)) if scaler else dataset


def cleansed(recipe: Recipe, path: Path) -> Path | pd.DataFrame:
    """The member's file as training reads it: through the recipe's ``[cleanse]`` rules first when it has them
    (duplicates, repaired numbers, out-of-range values; ``fedledger data cleanse`` applies the same rules to a file),
    so a raw file trains with no manual step. Statistics and preparation both read this."""
    if recipe.cleanse is None:
        return path
    result = cleanse(path, recipe)
    names = list(result.header) if result.header is not None else list(recipe.columns)
    frame = pd.DataFrame(result.rows, columns=names, dtype=str)
    frame.attrs["name"] = f"{path.name} (cleansed)"
    return frame


def load_member_data(
    config: TaskConfig, path: Path, *, label: str | None = None, recipe: Recipe | None, val_fraction: float
) -> LocalData:
    """The member's training split and its validation split (stratified, seeded by the task)."""
    dataset = load_member_table(config, path, label=label, recipe=recipe)
    X_tr, y_tr, X_val, y_val = train_val_split(dataset.X, dataset.y, val_fraction=val_fraction, seed=config.seed)
    return LocalData(X_tr, y_tr, X_val, y_val)
