"""One finished demo workspace for every API and dashboard test (building it takes the demo's run)."""

from __future__ import annotations

import pytest

from helpers.api import Demo, build_demo


@pytest.fixture(scope="session")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Demo:
    return build_demo(tmp_path_factory.mktemp("api") / "demo")
