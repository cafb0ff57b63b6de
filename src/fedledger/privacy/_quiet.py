"""Muting dp-accounting's per-order RDP warnings (see :func:`quiet_rdp_orders`)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

__all__ = ["quiet_rdp_orders"]


@contextlib.contextmanager
def quiet_rdp_orders() -> Iterator[None]:
    """Mute dp-accounting's warning for each RDP order it leaves out (no convergence at sampling rates >= 1/3):
    that only loosens its bound, and a member with few examples would print it hundreds of times a round."""
    logger, level = logging.getLogger("absl"), logging.getLogger("absl").level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)
