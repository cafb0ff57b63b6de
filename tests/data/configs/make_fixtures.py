"""Write the committed config fixtures: each case's input and the canonical bytes and hash it resolved to.

A task's config hash is on chain, so a refactoring of ``TaskConfig`` must resolve the same inputs to the same
bytes. These fixtures were written by the code as it was before the config became typed and grouped;
``tests/test_config_hash_stability.py`` checks the current code against them. Regenerating them with changed code
would make that test pass whatever the code does: do it only when a change to the canonical bytes is intended
(which changes every affected task's hash), and say so in the commit.

    python tests/data/configs/make_fixtures.py
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

from fedledger.federation.config import TaskConfig
from fedledger.federation.config_file import load_task_config

HERE = Path(__file__).resolve().parent
EXAMPLES = HERE.parents[2] / "examples"

SKLEARN = {"kind": "sklearn-sgd", "n_features": 4, "n_classes": 2}
TORCH = {"kind": "torch-mlp", "n_features": 4, "n_classes": 2, "hidden": [8]}
SWITCHES = ("clip_to_median_norm", "lift_to_median_norm", "score_at_median_norm", "center_scores")

# name -> constructor keywords (JSON values, as a task file would give them)
CASES: dict[str, dict[str, Any]] = {
    "defaults": {"model": SKLEARN},
    "consortium": {"model": SKLEARN, "profile": "consortium"},
    "few-silos": {"model": SKLEARN, "profile": "few-silos"},
    "consortium-secure": {"model": SKLEARN, "secure_aggregation": True},
    "few-silos-secure": {"model": SKLEARN, "profile": "few-silos", "secure_aggregation": True, "secagg_threshold": 3},
    "consortium-client-dp": {"model": SKLEARN, "dp_epsilon": 8.0},
    "few-silos-client-dp": {"model": SKLEARN, "profile": "few-silos", "dp_epsilon": 4.0, "dp_delta": 1e-6},
    "secure-client-dp": {
        "model": SKLEARN,
        "secure_aggregation": True,
        "min_commitments": 3,
        "dp_epsilon": 2.5,
        "dp_noise_multiplier": 3.0,
    },
    "few-silos-secure-client-dp": {
        "model": SKLEARN,
        "profile": "few-silos",
        "secure_aggregation": True,
        "dp_epsilon": 8.0,
        "rounds": 20,
    },
    "sample-dp": {
        "model": TORCH,
        "dp_epsilon": 3.0,
        "dp_mode": "sample",
        "dp_batch_size": 32,
        "dp_max_grad_norm": 0.5,
    },
    "consortium-switches-on": {"model": SKLEARN, **dict.fromkeys(SWITCHES, True), "cap_examples_to_median": True},
    "consortium-switches-off": {"model": SKLEARN, **dict.fromkeys(SWITCHES, False), "cap_examples_to_median": False},
    "few-silos-switches-on": {
        "model": SKLEARN,
        "profile": "few-silos",
        **dict.fromkeys(SWITCHES, True),
        "cap_examples_to_median": True,
    },
    "few-silos-switches-off": {
        "model": SKLEARN,
        "profile": "few-silos",
        **dict.fromkeys(SWITCHES, False),
        "cap_examples_to_median": False,
    },
    "secure-switches-off": {
        "model": SKLEARN,
        "secure_aggregation": True,
        **dict.fromkeys(SWITCHES, False),
        "cap_examples_to_median": False,
    },
    "explicit-rules": {
        "model": SKLEARN,
        "scoring": "accuracy",
        "aggregation": "trimmed-mean",
        "aggregation_params": {"trim": 1},
        "acceptance_threshold": 4_000,
        "committee_size": 5,
        "max_disagreement": 3_000,
        "reputation_warmup": 7,
        "max_rejection": 2_000,
        "min_mean_score": 4_500,
    },
    "timing-and-pipeline": {
        "model": SKLEARN,
        "rounds": 3,
        "local_epochs": 2,
        "seed": 11,
        "clip_norm": 2.5,
        "frac_bits": 20,
        "max_update_bytes": 2**20,
        "max_examples": 5_000,
        "min_commitments": 4,
        "commit_duration": 60,
        "validate_duration": 90,
        "aggregate_duration": 120,
        "proposal_quorum": 3,
    },
    "server-optimizer": {
        "model": SKLEARN,
        "server_optimizer": "fedadam",
        "server_optimizer_params": {"server_lr": 0.1},
    },
    "server-optimizer-secure": {"model": SKLEARN, "secure_aggregation": True, "server_optimizer": "fedyogi"},
    "provenance-and-extras": {
        "model": SKLEARN,
        "purpose": "model-training:breast-cancer-diagnosis",
        "evaluation_board": "0x5FbDB2315678afecb367f032d93F642f64180aa3",
        "extra": {"note": "kept verbatim", "n": [1, 2]},
    },
}

# name -> example directory whose task.toml (and recipe) is copied here and loaded as a file
TOML_CASES = {"example-heart-disease": "heart-disease", "example-iot-intrusion": "iot-intrusion"}

# name -> a body committed without the settings added later (from_bytes fills them in)
LEGACY_OMITTED = (
    "profile",
    "max_rejection",
    "min_mean_score",
    "cap_examples_to_median",
    "lift_to_median_norm",
    "score_at_median_norm",
    "center_scores",
    "clip_to_median_norm",
)


def _canonical(name: str, config: TaskConfig) -> dict[str, str]:
    """Write the config's canonical bytes to ``canonical/<name>.json``; its manifest entry names them and their hash."""
    data = config.to_bytes()
    (HERE / "canonical").mkdir(exist_ok=True)
    (HERE / "canonical" / f"{name}.json").write_bytes(data)
    return {"canonical": f"canonical/{name}.json", "sha256": hashlib.sha256(data).hexdigest()}


def main() -> None:
    manifest: dict[str, Any] = {}
    for name, kwargs in CASES.items():
        manifest[name] = {"kind": "keywords", "input": kwargs, **_canonical(name, TaskConfig(**kwargs))}
    for name, example in TOML_CASES.items():
        folder = HERE / name
        folder.mkdir(exist_ok=True)
        for file in ("task.toml", "recipe.toml"):
            shutil.copyfile(EXAMPLES / example / file, folder / file)
        config = load_task_config(folder / "task.toml")
        manifest[name] = {"kind": "toml", "input": f"{name}/task.toml", **_canonical(name, config)}
    body = json.loads(TaskConfig(model=SKLEARN).to_bytes())
    for key in LEGACY_OMITTED:
        del body[key]
    legacy = json.dumps(body, sort_keys=True, separators=(",", ":"))
    name = "legacy-bytes"
    manifest[name] = {
        "kind": "bytes",
        "input": legacy,
        **_canonical(name, TaskConfig.from_bytes(legacy.encode())),
    }
    for entry in manifest.values():
        data = (HERE / entry["canonical"]).read_bytes()
        if TaskConfig.from_bytes(data).to_bytes() != data:
            raise SystemExit(f"{entry['canonical']} does not load back to its own bytes")
    (HERE / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
