"""Data for the robustness benchmark: Fashion-MNIST split as FLTrust does, and FLamby's Fed-Heart-Disease.

Fashion-MNIST (Xiao, Rasul, Vollgraf, arXiv:1708.07747) comes from the Debian package
``dataset-fashion-mnist`` (gzip idx files under ``/usr/share/datasets/fashion-mnist``); it is
parsed here with numpy, nothing is downloaded at run time.

The non-IID split is the one of Fang, Cao, Jia, Gong, "Local Model Poisoning Attacks to
Byzantine-Robust Federated Learning", USENIX Security 2020, reused by Cao, Fang, Liu, Gong,
"FLTrust: Byzantine-robust Federated Learning via Trust Bootstrapping", NDSS 2021: clients form
as many groups as there are classes; an example of label ``l`` goes to group ``l`` with
probability ``q`` (the *bias*) and to each other group with probability ``(1 - q) / (C - 1)``,
then to a uniformly chosen client of its group.

Fed-Heart-Disease follows FLamby (Ogier du Terrail et al., NeurIPS 2022 Datasets and
Benchmarks, ``flamby/datasets/fed_heart_disease/dataset.py``): the UCI processed files of the
four centres, columns 10-12 (slope, ca, thal) dropped, rows with a missing value ('?') dropped,
chest-pain type and resting ECG one-hot encoded with the first level dropped (13 features),
label ``num > 0``, and a per-centre stratified 66/34 train/test split with ``random_state=43``.
"""

from __future__ import annotations

import gzip
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.model_selection import train_test_split

from fedledger.exceptions import BadInput, ConfigError
from fedledger.learning.data import FeatureStats, Standardizer, train_val_split

__all__ = [
    "FASHION_MNIST_DEBIAN_DIR",
    "FASHION_MNIST_FILES",
    "HEART_CENTERS",
    "ClientData",
    "Federation",
    "bias_split",
    "fashion_mnist_federation",
    "find_fashion_mnist",
    "heart_disease_federation",
    "load_fashion_mnist",
    "load_heart_center",
    "read_idx",
]

FASHION_MNIST_DEBIAN_PACKAGE = "dataset-fashion-mnist"
FASHION_MNIST_DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}
HEART_CENTERS = ("cleveland", "hungarian", "switzerland", "va")

# idx type codes (LeCun's format): only unsigned bytes occur in (Fashion-)MNIST.
_IDX_DTYPES = {0x08: np.dtype(np.uint8)}


@dataclass(frozen=True)
class ClientData:
    """One member's data: what it trains on and what it validates others' updates on."""

    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray


@dataclass(frozen=True)
class Federation:
    """Every member's data plus the held-out test set the benchmark reports on."""

    name: str
    clients: list[ClientData]
    X_test: np.ndarray
    y_test: np.ndarray
    num_classes: int
    test_groups: np.ndarray | None = None
    """Which member's test split each test row came from (FLamby averages accuracy over centres)."""


def read_idx(path: Path) -> np.ndarray:
    """An idx file (optionally gzip-compressed) as a numpy array, or ``BadInput`` naming the file."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as fh:
            raw = fh.read()
    except (OSError, EOFError) as exc:
        raise BadInput(f"{path}: cannot read idx file: {exc}") from exc
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise BadInput(f"{path}: not an idx file (bad magic number)")
    dtype = _IDX_DTYPES.get(raw[2])
    if dtype is None:
        raise BadInput(f"{path}: unsupported idx element type 0x{raw[2]:02x}")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(raw) < header:
        raise BadInput(f"{path}: truncated idx header")
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(raw) - header != expected:
        raise BadInput(f"{path}: idx header says shape {shape} ({expected} bytes) but {len(raw) - header} bytes follow")
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)


def _has_fashion_mnist(directory: Path) -> bool:
    return all((directory / name).is_file() for name in FASHION_MNIST_FILES.values())


def find_fashion_mnist(data_dir: Path | None = None, *, install: bool = True) -> Path:
    """The folder holding the four Fashion-MNIST idx files.

    ``data_dir`` if given (it must hold them), else the Debian package's folder; when that is
    missing and ``install`` is set, ``apt-get install dataset-fashion-mnist`` is tried once.
    """
    if data_dir is not None:
        if not _has_fashion_mnist(data_dir):
            raise ConfigError(
                f"--data-dir {data_dir} lacks the Fashion-MNIST files {sorted(FASHION_MNIST_FILES.values())}"
            )
        return data_dir
    if _has_fashion_mnist(FASHION_MNIST_DEBIAN_DIR):
        return FASHION_MNIST_DEBIAN_DIR
    if install and shutil.which("apt-get"):
        prefix = [] if _is_root() else (["sudo", "-n"] if shutil.which("sudo") else [])
        subprocess.run(
            [*prefix, "apt-get", "install", "-y", FASHION_MNIST_DEBIAN_PACKAGE], check=False, capture_output=True
        )
        if _has_fashion_mnist(FASHION_MNIST_DEBIAN_DIR):
            return FASHION_MNIST_DEBIAN_DIR
    raise ConfigError(
        f"Fashion-MNIST not found in {FASHION_MNIST_DEBIAN_DIR} and could not be installed: run "
        f"`apt-get update && apt-get install -y {FASHION_MNIST_DEBIAN_PACKAGE}` (as root), "
        "or pass --data-dir with the four idx .gz files"
    )


def _is_root() -> bool:
    return os.geteuid() == 0


def load_fashion_mnist(directory: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(X_train, y_train, X_test, y_test): images as float32 ``(n, 1, 28, 28)`` in [0, 1], labels int64."""
    arrays = {key: read_idx(directory / name) for key, name in FASHION_MNIST_FILES.items()}
    for split in ("train", "test"):
        raw_images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if raw_images.ndim != 3 or labels.ndim != 1 or len(raw_images) != len(labels):
            raise BadInput(f"{directory}: {split} images {raw_images.shape} and labels {labels.shape} do not match")
        if labels.size and int(labels.max()) > 9:
            raise BadInput(f"{directory}: {split} labels outside 0..9")

    def images(a: np.ndarray) -> np.ndarray:
        return (a.astype(np.float32) / 255.0)[:, None, :, :]

    return (
        images(arrays["train_images"]),
        arrays["train_labels"].astype(np.int64),
        images(arrays["test_images"]),
        arrays["test_labels"].astype(np.int64),
    )


def bias_split(y: np.ndarray, num_clients: int, bias: float, num_classes: int, seed: int) -> list[np.ndarray]:
    """Indices per client of Fang et al.'s non-IID split with bias ``q`` (see the module docstring).

    Clients are cut into ``num_classes`` groups of (nearly) equal size; each example picks its
    group (``q`` for its own label's group, ``(1 - q) / (C - 1)`` for each other one), then a
    uniform client in that group.
    """
    if not 0 <= bias <= 1:
        raise ConfigError(f"bias must be in [0, 1], got {bias}")
    if num_clients < num_classes:
        raise ConfigError(f"need at least one client per group: {num_clients} clients, {num_classes} classes")
    rng = np.random.default_rng(seed)
    groups = np.array_split(np.arange(num_clients), num_classes)
    labels = np.asarray(y, dtype=np.int64)
    # Probability of group g for label l: q on the diagonal, (1 - q) / (C - 1) elsewhere.
    other = (1.0 - bias) / (num_classes - 1)
    probs = np.full((num_classes, num_classes), other)
    np.fill_diagonal(probs, bias)
    cumulative = np.cumsum(probs, axis=1)
    draws = rng.random(len(labels))
    group_of = np.minimum((draws[:, None] > cumulative[labels]).sum(axis=1), num_classes - 1)
    client_of = np.empty(len(labels), dtype=np.int64)
    for g, members in enumerate(groups):
        in_group = np.flatnonzero(group_of == g)
        client_of[in_group] = members[rng.integers(0, len(members), size=len(in_group))]
    return [np.flatnonzero(client_of == c) for c in range(num_clients)]


def fashion_mnist_federation(
    directory: Path, *, num_clients: int, bias: float, val_fraction: float, seed: int
) -> Federation:
    """Fashion-MNIST's 60,000 training images split over ``num_clients`` (bias ``q``), each keeping a
    stratified ``val_fraction`` as validation data; the 10,000 test images held out."""
    X, y, X_test, y_test = load_fashion_mnist(directory)
    clients = []
    for c, idx in enumerate(bias_split(y, num_clients, bias, 10, seed)):
        if len(idx) < 2:
            raise ConfigError(f"client {c} got {len(idx)} examples; use fewer clients")
        X_tr, y_tr, X_val, y_val = train_val_split(X[idx], y[idx], val_fraction=val_fraction, seed=seed + 1 + c)
        clients.append(ClientData(X_tr, y_tr, X_val, y_val))
    return Federation("fashion-mnist", clients, X_test, y_test, 10)


def load_heart_center(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One UCI ``processed.<centre>.data`` file as FLamby reads it: raw columns 0-9 (slope, ca, thal
    dropped), complete rows only, label ``num > 0``. Categorical columns are still codes here."""
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise ConfigError(f"heart-disease file {path} cannot be read: {exc}") from exc
    rows, labels = [], []
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        fields = line.strip().split(",")
        if len(fields) != 14:
            raise BadInput(f"{path}:{lineno}: expected 14 comma-separated fields, got {len(fields)}")
        kept = fields[:10]
        if "?" in kept or fields[13] == "?":
            continue  # FLamby drops columns 10-12 first, then every row with a missing value left
        try:
            rows.append([float(v) for v in kept])
            labels.append(int(float(fields[13]) > 0))
        except ValueError as exc:
            raise BadInput(f"{path}:{lineno}: non-numeric field: {exc}") from exc
    if not rows:
        raise BadInput(f"{path}: no complete rows")
    return np.asarray(rows, dtype=np.float64), np.asarray(labels, dtype=np.int64)


def _one_hot_drop_first(column: np.ndarray, levels: np.ndarray) -> np.ndarray:
    encoded: np.ndarray = (column[:, None] == levels[None, 1:]).astype(np.float64)
    return encoded


def heart_disease_federation(directory: Path, *, val_fraction: float, seed: int) -> tuple[Federation, ClientData]:
    """The four centres as members (FLamby's train/test split), and the pooled training data.

    Features are standardized with the members' combined training statistics
    (:class:`fedledger.learning.data.FeatureStats`, what members can share without their rows);
    FLamby trains without standardizing but for 50 epochs with Adam, we train far fewer steps.
    Each member holds out a stratified ``val_fraction`` of its training rows for validating others.
    """
    raw = {}
    for center in HEART_CENTERS:
        path = directory / f"processed.{center}.data"
        if not path.is_file():
            raise ConfigError(f"heart-disease data missing: {path} (pass --shared-dir)")
        raw[center] = load_heart_center(path)
    # FLamby's get_dummies runs on the pooled frame: levels are those seen in any centre.
    cp_levels = np.unique(np.concatenate([X[:, 2] for X, _ in raw.values()]))
    ecg_levels = np.unique(np.concatenate([X[:, 6] for X, _ in raw.values()]))

    def encode(X: np.ndarray) -> np.ndarray:
        numeric = np.delete(X, [2, 6], axis=1)
        return np.hstack([numeric, _one_hot_drop_first(X[:, 2], cp_levels), _one_hot_drop_first(X[:, 6], ecg_levels)])

    splits = []
    for center in HEART_CENTERS:
        X, y = raw[center]
        counts = np.bincount(y, minlength=2)
        stratify = y if np.all(counts > 2) else None
        train_idx, test_idx = train_test_split(
            np.arange(len(y)), test_size=1.0 - 0.66, train_size=0.66, random_state=43, shuffle=True, stratify=stratify
        )
        splits.append((encode(X[train_idx]), y[train_idx], encode(X[test_idx]), y[test_idx]))
    scaler = Standardizer.from_stats(FeatureStats.combine(FeatureStats.of(s[0]) for s in splits))

    def scaled(X: np.ndarray) -> np.ndarray:
        return np.asarray(scaler.transform(X), dtype=np.float32)

    clients = []
    for c, (X_tr, y_tr, _, _) in enumerate(splits):
        Xa, ya, Xv, yv = train_val_split(scaled(X_tr), y_tr, val_fraction=val_fraction, seed=seed + c)
        clients.append(ClientData(Xa, ya, Xv, yv))
    X_test = np.concatenate([scaled(s[2]) for s in splits])
    y_test = np.concatenate([s[3] for s in splits])
    groups = np.concatenate([np.full(len(s[3]), c, dtype=np.int64) for c, s in enumerate(splits)])
    pooled = ClientData(
        np.concatenate([scaled(s[0]) for s in splits]),
        np.concatenate([s[1] for s in splits]),
        X_test,
        y_test,
    )
    return Federation("heart-disease", clients, X_test, y_test, 2, groups), pooled
