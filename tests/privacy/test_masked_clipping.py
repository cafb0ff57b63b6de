"""Centered clipping inside the masked checks' MPC: a 3-member MPyC committee as OS processes clips the passing
updates around a public center, and what it reveals equals the rule computed in clear on the same projections."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

pytest.importorskip("mpyc")


from fedledger.exceptions import AggregationError, BadInput, ConfigError  # noqa: E402
from fedledger.privacy.masked_checks import CheckParams, to_fixed  # noqa: E402
from fedledger.privacy.masked_clipping import (  # noqa: E402
    clip_levels,
    clipped_sums,
    clipped_update,
)
from fedledger.privacy.masked_sketch import project_exact  # noqa: E402
from helpers.masked import run_committee, sealed_bundles  # noqa: E402

D = 300
PARAMS = CheckParams(length=D, norm_bound=1.0, clip_radius=0.25, clip_levels=16)
CONTEXT = bytes(range(64, 96))
EXAMPLES = {"honest-a": 10, "honest-b": 30, "flipped": 20, "boosted": 40}


def _center_and_updates() -> tuple[np.ndarray[Any, Any], dict[str, np.ndarray[Any, Any]]]:
    rng = np.random.default_rng(3)
    direction = rng.normal(size=D)
    direction /= np.linalg.norm(direction)

    def near(scale: float) -> np.ndarray[Any, Any]:
        noise = rng.normal(size=D)
        return direction * scale + noise / np.linalg.norm(noise) * 0.05

    center = direction * 0.3  # the previous round's global update
    return center, {
        "honest-a": near(0.35),  # within the radius of the center: kept whole
        "honest-b": near(0.4),
        "flipped": -near(0.6),  # within the norm bound, far from the center: clipped
        "boosted": near(0.4) * 4.0,  # beyond the norm bound: rejected before any clipping
    }


@pytest.fixture(scope="module")
def clipped(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    center, updates = _center_and_updates()
    keys, _, bundles = sealed_bundles(PARAMS, updates, EXAMPLES, CONTEXT)
    folder = tmp_path_factory.mktemp("masked-clipping")
    results = run_committee(folder, PARAMS, CONTEXT, keys, bundles, center=to_fixed(center, PARAMS))
    return {"results": results, "center": center, "updates": updates}


def test_the_mpc_reveals_the_clipped_sums_of_the_rule_in_clear(clipped: dict[str, Any]) -> None:
    results = clipped["results"]
    assert [r["status"] for r in results] == ["ok"] * PARAMS.committee, results
    outcomes = [{k: r["outcome"][k] for k in ("passed", "weighted_sum", "clip_weight")} for r in results]
    assert outcomes[1:] == outcomes[:1] * (PARAMS.committee - 1)
    outcome = results[0]["outcome"]
    assert outcome["passed"] == ["flipped", "honest-a", "honest-b"]
    assert outcome["rejected"] == {"boosted": "failed the norm or direction check"}
    seed = bytes.fromhex(outcome["transcript"]["seed"])
    center = to_fixed(clipped["center"], PARAMS)
    rows = np.stack([to_fixed(clipped["updates"][m], PARAMS) for m in outcome["passed"]])
    k = PARAMS.projections
    levels = clip_levels(project_exact(rows, seed, k).tolist(), project_exact(center, seed, k).tolist(), PARAMS)
    # The sign-flipped update is about 0.9 from the center, over three times the radius: a quarter of it, within the
    # projections' estimate (3 to 5 of 16 over 300 random seeds), a third at most.
    assert levels[1:] == [PARAMS.clip_levels] * 2 and 0 < levels[0] <= PARAMS.clip_levels // 3
    examples = [EXAMPLES[m] for m in outcome["passed"]]
    weighted, level_weight = clipped_sums(rows, levels, examples)
    assert outcome["weighted_sum"] == [int(v) for v in weighted]
    assert outcome["clip_weight"] == level_weight
    assert outcome["total_examples"] == sum(examples)
    update = clipped_update(outcome["weighted_sum"], outcome["clip_weight"], sum(examples), center, 16)
    direction = clipped["center"] / np.linalg.norm(clipped["center"])
    plain = sum(n * clipped["updates"][m] for n, m in zip(examples, outcome["passed"], strict=True)) / sum(examples)
    # The flipped update's pull on the aggregate shrinks by its clip factor: the aggregate stays with the honest.
    assert float(update @ direction) / 2**PARAMS.frac_bits > float(plain @ direction) + 0.15


def test_clip_levels_follow_the_estimated_distance() -> None:
    k, levels, tau = PARAMS.projections, PARAMS.clip_levels, PARAMS.clip_radius_units
    # Half the projections at the distance d from the center's: S' = k d^2 / 2, the estimate of a distance d. At
    # the radius level L, at twice it L/2, at 4.1 times 3 of 16 (3/16 <= 1/4.1 < 4/16), at 17 times 0.
    for distance, expected in [(tau, levels), (2 * tau, levels // 2), (41 * tau // 10, 3), (17 * tau, 0)]:
        offset = [5] * k
        assert clip_levels([[5 + distance] * (k // 2) + offset[: k // 2]], offset, PARAMS) == [expected]
    assert clip_levels([[5 + tau + 1] * (k // 2) + [5] * (k // 2)], [5] * k, PARAMS) == [levels - 1]  # rounded down
    center = np.arange(D, dtype=np.int64)
    assert (clipped_update(np.zeros(D, dtype=object), 0, 5, center, levels) == center).all()  # all levels 0
    with pytest.raises(AggregationError, match="no update passed"):
        clipped_update(np.zeros(D, dtype=object), 0, 0, center, levels)
    with pytest.raises(BadInput, match="clip weight"):
        clipped_update(np.zeros(D, dtype=object), 17 * 5, 5, center, levels)
    with pytest.raises(ConfigError, match="no clip radius"):
        clip_levels([[0]], [0], CheckParams(length=D, norm_bound=1.0))


def test_clipping_parameters_travel_and_widen_the_field() -> None:
    plain = CheckParams(length=D, norm_bound=1.0)
    assert "clip_radius" not in plain.to_dict()  # rounds that sum without clipping keep their bundles' bytes
    assert CheckParams.from_dict(PARAMS.to_dict()) == PARAMS
    assert PARAMS.modulus > plain.modulus  # room for the levels' factor in the revealed sum
    for bad in ({"clip_radius": 0.0}, {"clip_radius": float("nan")}, {"clip_radius": 1.0, "clip_levels": 0}):
        with pytest.raises(ConfigError, match="clip"):
            CheckParams(length=D, norm_bound=1.0, **bad)  # type: ignore[arg-type]
