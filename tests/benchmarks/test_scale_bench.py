"""``benchmarks/scale.py`` runs at tiny sizes: both kinds of round complete, the default committee draws at 12
members, and the growth exponent is fitted over the sizes."""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType

import pytest

from conftest import BENCHMARKS


@pytest.fixture(scope="module")
def scale() -> ModuleType:
    spec = importlib.util.spec_from_file_location("scale_bench", BENCHMARKS / "scale.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_growth_exponent_is_the_log_log_slope(scale: ModuleType) -> None:
    assert scale.growth_exponent([10, 100, 1000], [2.0, 20.0, 200.0]) == pytest.approx(1.0)
    assert scale.growth_exponent([10, 100], [1.0, 100.0]) == pytest.approx(2.0)
    assert scale.growth_exponent([10], [1.0]) is None


def test_both_kinds_complete_at_tiny_sizes(scale: ModuleType) -> None:
    validated = scale.run_size("validated", 12, 1, 7)
    secure = scale.run_size("secure", 4, 1, 7)
    for row in (validated, secure):
        assert row["complete"], row.get("error")
        assert row["transactions"] > 0 and row["gas"] > 0 and row["view_calls"] > 0
    # Twelve validators: committees of seven, so 12 x 7 scores, one transaction per validator.
    assert validated["gas_by_function"]["submit_scores"]["calls"] == 12
    assert validated["gas_by_function"]["commit_update"]["calls"] == 12
    assert secure["gas_by_function"]["post_key_advert"]["calls"] == 4
    summary = scale.summarize([validated, secure])
    assert summary["validated"]["sizes_completed"] == [12]
    assert "| validated | 12 | yes |" in scale.markdown({"rows": [validated, secure], "summary": summary})
