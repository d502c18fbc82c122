"""Checking arguments where they enter: one small set of validators for ``ViT``, ``TrainConfig`` and the CLI.

Why a module of its own: a wrong argument is often a learner's first contact with the package, and
the message should read the same wherever it comes from ("dim must be a positive integer, got 0").
Python's ``bool`` is an ``int``, so ``True`` is refused wherever a number is expected: ``lr=True``
must not quietly train at a learning rate of 1.0, and ``augment='no'`` must not count as "yes".
Each validator returns the value it accepted, so a caller can write ``x = positive_int("x", x)``.
"""
from __future__ import annotations

import math
import numbers

#: The range ``torch.manual_seed`` accepts on every platform; larger seeds overflow inside torch.
SEED_RANGE = (0, 2 ** 63 - 1)


def _is_number(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _finite(value) -> bool:
    try:
        return math.isfinite(float(value))
    except OverflowError:  # an int like 10**400 has no float
        return False


def positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def integer_in(name: str, value, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or not low <= value <= high:
        raise ValueError(f"{name} must be an integer from {low} to {high}, got {value!r}")
    return int(value)


def positive_number(name: str, value) -> float:
    if not (_is_number(value) and _finite(value) and value > 0):
        raise ValueError(f"{name} must be a positive number, got {value!r}")
    return float(value)


def non_negative_number(name: str, value) -> float:
    if not (_is_number(value) and _finite(value) and value >= 0):
        raise ValueError(f"{name} must be a number >= 0, got {value!r}")
    return float(value)


def fraction(name: str, value) -> float:
    """A number in ``[0, 1)``: a probability that must leave something (dropout, label smoothing)."""
    if not (_is_number(value) and 0 <= value < 1):
        raise ValueError(f"{name} must be a number in [0, 1), got {value!r}")
    return float(value)


def flag(name: str, value) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be True or False, got {value!r}")
    return value


def choice(name: str, value, allowed):
    if isinstance(value, bool) or value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, allowed))}, got {value!r}")
    return value


def first_line(err: object, limit: int = 160) -> str:
    """The first non-empty line of an exception's message (or of any text), else the exception's type
    name: never an ``IndexError`` on an empty message."""
    line = next((s.strip() for s in str(err).splitlines() if s.strip()), "")
    return line[:limit] if line else type(err).__name__
