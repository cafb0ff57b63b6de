"""What ``fedledger demo`` checks before it runs masked checks: light enough for the CLI to import at start-up
(the demo itself, :mod:`fedledger.demo_masked`, loads the whole federation)."""

from __future__ import annotations

import importlib.util

from fedledger.exceptions import ConfigError

__all__ = ["MPC_INSTALL_HINT", "UNCLIPPED_BOOST", "check_masked_choices", "require_mpc"]

MPC_INSTALL_HINT = 'pip install "fedledger[mpc]"'
UNCLIPPED_BOOST = 20
"""How many times an unclipped hospital boosts its honest update (its norm then far exceeds the clip bound)."""


def require_mpc() -> None:
    """Refuse (ConfigError naming the fix) when MPyC, which runs the committee's parties, is not installed: it is
    in the ``mpc`` extra, not the base install."""
    if importlib.util.find_spec("mpyc") is None:
        raise ConfigError(
            f"--masked-checks runs the check committee's parties on MPyC, which is not installed: {MPC_INSTALL_HINT}"
        )


def check_masked_choices(*, masked_checks: bool, secure_aggregation: bool, unclipped: int) -> None:
    """Refuse masked checks without secure aggregation or MPyC, and unclipped hospitals without masked checks."""
    if masked_checks and not secure_aggregation:
        raise ConfigError(
            "--masked-checks screens masked updates, so it needs --secure-aggregation: "
            "run `fedledger demo --secure-aggregation --masked-checks`"
        )
    if unclipped and not masked_checks:
        raise ConfigError("--unclipped hospitals are only caught by the masked checks: add --masked-checks")
    if masked_checks:
        require_mpc()
