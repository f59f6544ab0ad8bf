"""Argument checks shared by every constructor and function that takes sizes or hyperparameters.

Each check names its owner, the argument and the value it got, and returns
the value as a plain Python ``int`` or ``float``, so configs stay JSON-able.
Integers may be Python or NumPy integers (``np.int64(2)``, ``np.prod((3, 4))``),
as PyTorch accepts them; ``True`` and ``False`` are refused, since a bool
passed as a size is almost always a mistake. Numbers may be any real
(Python, NumPy float32 or float64); NaN is refused wherever a range is asked.

    >>> integer("Linear", "in_dim", np.int64(12), minimum=1)
    12
"""

import math
import numbers
import operator

from nnfs.text import short_repr

__all__ = ["ArgumentTypeError", "is_integer", "integer", "int_pair", "number", "boolean", "choice"]


class ArgumentTypeError(TypeError, ValueError):
    """An argument of the wrong type (a float where a size goes, a bool, a string).

    A TypeError, as PyTorch raises for these, and a ValueError, as nnfs's own checks
    always did, so that code catching either keeps working.
    """


def is_integer(value):
    """True for a Python or NumPy integer that is not a bool."""
    return isinstance(value, numbers.Integral) and not _is_bool(value)


def _is_bool(value):
    """True for ``True``, ``False`` and array libraries' bools (``numpy.bool_``, 0-d bool
    arrays), recognised by their dtype's kind: only the backend imports NumPy."""
    return type(value) is bool or getattr(getattr(value, "dtype", None), "kind", None) == "b"


def integer(owner, name, value, minimum=None, maximum=None):
    """``value`` as an int in ``[minimum, maximum]`` (either bound optional).

    Raises:
        ArgumentTypeError: for anything that is not an integer (floats, bools, strings).
        ValueError: for an integer outside the bounds.
    """
    if not is_integer(value):
        raise ArgumentTypeError(f"{owner}: {name} must be an int, got {short_repr(value)}")
    value = operator.index(value)
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise ValueError(f"{owner}: {name} must be {_bounds(minimum, maximum)}, got {short_repr(value)}")
    return value


def int_pair(owner, name, value, minimum=1):
    """An int or a pair of ints as a validated ``(int, int)`` tuple, each at least ``minimum``."""
    if is_integer(value):
        value = (value, value)
    if not isinstance(value, (tuple, list)) or len(value) != 2 or not all(is_integer(v) for v in value):
        raise ArgumentTypeError(f"{owner}: {name} must be an int or a pair of ints, got {short_repr(value)}")
    pair = tuple(operator.index(v) for v in value)
    if min(pair) < minimum:
        raise ValueError(f"{owner}: {name} must be at least {minimum}, got {short_repr(value)}")
    return pair


def number(owner, name, value, low=None, high=None, low_open=False, high_open=False, finite=True):
    """``value`` as a float between ``low`` and ``high`` (either bound optional; closed unless ``*_open``).

    Infinities are refused unless ``finite=False``; NaN is always refused.

    Raises:
        ArgumentTypeError: for anything that is not a real number (bools included).
        ValueError: for NaN, an infinity, or a value outside the bounds.
    """
    if _is_bool(value) or not isinstance(value, numbers.Real):
        raise ArgumentTypeError(f"{owner}: {name} must be a number, got {short_repr(value)}")
    value = float(value)
    inside = not math.isnan(value) and (not finite or math.isfinite(value))
    if low is not None:
        inside = inside and (value > low if low_open else value >= low)
    if high is not None:
        inside = inside and (value < high if high_open else value <= high)
    if not inside:
        raise ValueError(f"{owner}: {name} must be {_interval(low, high, low_open, high_open, finite)}, "
                         f"got {short_repr(value)}")
    return value


def boolean(owner, name, value):
    """``value`` if it is True or False (a NumPy bool too), else a TypeError."""
    if _is_bool(value):
        return bool(value)
    raise ArgumentTypeError(f"{owner}: {name} must be True or False, got {short_repr(value)}")


def choice(owner, name, value, allowed):
    """``value`` if it is one of ``allowed``, else a ValueError listing them."""
    if value not in allowed:
        raise ValueError(f"{owner}: {name} must be one of {', '.join(map(repr, allowed))}, got {short_repr(value)}")
    return value


def _bounds(minimum, maximum):
    if maximum is None:
        return "a positive int" if minimum == 1 else f"an int >= {minimum}"
    if minimum is None:
        return f"an int <= {maximum}"
    return f"an int in [{minimum}, {maximum}]"


def _interval(low, high, low_open, high_open, finite):
    kind = "a finite number" if finite else "a number"
    if low is not None and high is not None:
        return f"{kind} in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    if low is not None:
        return f"{kind} {'>' if low_open else '>='} {low:g}"
    if high is not None:
        return f"{kind} {'<' if high_open else '<='} {high:g}"
    return kind
