"""Trace and span ids (W3C: 128 and 64 random bits, never all zero)."""

from __future__ import annotations

import random


def new_span_id() -> int:
    return random.getrandbits(64) or 1


def new_trace_id() -> int:
    return random.getrandbits(128) or 1
