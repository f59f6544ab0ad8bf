"""nnfs.checks: the argument checks every constructor uses.

Each returns a plain Python value, accepts NumPy numbers, refuses bools where
numbers go, and names the owner, the argument and the value in its error.
"""

import math

import numpy as np
import pytest

from nnfs.checks import ArgumentTypeError, boolean, choice, int_pair, integer, is_integer, number

NUMPY_INTEGERS = [np.int8(3), np.int16(3), np.int32(3), np.int64(3), np.uint8(3), np.uint64(3), np.prod((1, 3))]


def test_argument_type_error_is_both_a_type_error_and_a_value_error():
    assert issubclass(ArgumentTypeError, TypeError) and issubclass(ArgumentTypeError, ValueError)
    for catch in (TypeError, ValueError):  # code that caught either keeps working
        with pytest.raises(catch):
            integer("Linear", "in_dim", "3")


@pytest.mark.parametrize("value", [3] + NUMPY_INTEGERS, ids=lambda v: type(v).__name__)
def test_integers_of_any_kind_become_plain_ints(value):
    assert is_integer(value)
    result = integer("Linear", "in_dim", value, minimum=1, maximum=3)
    assert result == 3 and type(result) is int
    pair = int_pair("Conv2D", "kernel_size", value)
    assert pair == (3, 3) and all(type(v) is int for v in pair)
    assert int_pair("Conv2D", "stride", [value, np.int32(1)]) == (3, 1)


@pytest.mark.parametrize("value", [True, False, np.True_, np.False_, 3.0, np.float64(3), "3", None, [3]],
                         ids=repr)
def test_what_is_not_an_integer_is_refused_naming_owner_argument_and_value(value):
    assert not is_integer(value)
    with pytest.raises(ArgumentTypeError) as error:
        integer("Linear", "in_dim", value)
    assert str(error.value) == f"Linear: in_dim must be an int, got {value!r}"


@pytest.mark.parametrize("value, minimum, maximum, expected", [
    (0, 1, None, "Linear: in_dim must be a positive int, got 0"),
    (-2, 0, None, "Linear: in_dim must be an int >= 0, got -2"),
    (np.int64(9), None, 8, "Linear: in_dim must be an int <= 8, got 9"),
    (5, 0, 4, "Linear: in_dim must be an int in [0, 4], got 5"),
])
def test_an_integer_out_of_bounds_is_a_value_error_naming_the_bounds(value, minimum, maximum, expected):
    with pytest.raises(ValueError) as error:
        integer("Linear", "in_dim", value, minimum=minimum, maximum=maximum)
    assert str(error.value) == expected and not isinstance(error.value, TypeError)
    assert "np.int64" not in str(error.value)  # the value as the user would write it


@pytest.mark.parametrize("value", [(2, 3, 4), (2,), (2, True), (2.0, 3), "22", True, np.bool_(False)], ids=repr)
def test_int_pair_refuses_what_is_not_one_int_or_two(value):
    with pytest.raises(ArgumentTypeError, match=r"^Conv2D: kernel_size must be an int or a pair of ints, got "):
        int_pair("Conv2D", "kernel_size", value)


def test_int_pair_checks_its_minimum():
    assert int_pair("Conv2D", "padding", (0, np.int64(2)), minimum=0) == (0, 2)
    with pytest.raises(ValueError, match=r"^Conv2D: stride must be at least 1, got \(1, 0\)$"):
        int_pair("Conv2D", "stride", (1, 0))


@pytest.mark.parametrize("value", [0.5, np.float32(0.5), np.float64(0.5), 1, np.int64(1), np.uint8(0)], ids=repr)
def test_numbers_of_any_kind_become_plain_floats(value):
    result = number("SGD", "momentum", value, low=0, high=1)
    assert result == float(value) and type(result) is float


@pytest.mark.parametrize("value", [True, np.True_, "0.5", None, 1j, [0.5]], ids=repr)
def test_what_is_not_a_real_number_is_refused(value):
    with pytest.raises(ArgumentTypeError) as error:
        number("SGD", "lr", value)
    assert str(error.value) == f"SGD: lr must be a number, got {value!r}"


@pytest.mark.parametrize("value", [math.nan, np.float32("nan"), math.inf, -math.inf, np.float64("-inf")], ids=repr)
def test_nan_and_infinities_are_refused_by_default(value):
    with pytest.raises(ValueError, match=r"^SGD: lr must be a finite number, got -?(nan|inf)$"):
        number("SGD", "lr", value)


def test_infinities_are_accepted_when_asked_but_nan_never():
    assert number("clip", "max_norm", math.inf, low=0, finite=False) == math.inf
    assert number("clip", "max_norm", np.float32("-inf"), finite=False) == -math.inf
    with pytest.raises(ValueError, match="clip: max_norm must be a number >= 0, got -inf"):
        number("clip", "max_norm", -math.inf, low=0, finite=False)
    with pytest.raises(ValueError, match="clip: max_norm must be a number, got nan"):
        number("clip", "max_norm", math.nan, finite=False)


@pytest.mark.parametrize("value, bounds, message", [
    (0.0, dict(low=0, low_open=True), "a finite number > 0"),
    (1.0, dict(low=0, high=1, high_open=True), "a finite number in [0, 1)"),
    (-0.5, dict(low=0, high=1), "a finite number in [0, 1]"),
    (2.0, dict(high=1), "a finite number <= 1"),
    (0.0, dict(low=0, high=1, low_open=True, high_open=True), "a finite number in (0, 1)"),
])
def test_bounds_are_closed_unless_open_and_named_in_the_message(value, bounds, message):
    with pytest.raises(ValueError) as error:
        number("Adam", "betas", value, **bounds)
    assert str(error.value) == f"Adam: betas must be {message}, got {value!r}"


def test_closed_bounds_accept_their_edges():
    assert number("Dropout", "p", 0, low=0, high=1) == 0.0
    assert number("Dropout", "p", np.float32(1), low=0, high=1) == 1.0


@pytest.mark.parametrize("value", [True, False, np.True_, np.False_], ids=repr)
def test_booleans_of_either_kind_become_plain_bools(value):
    result = boolean("SGD", "nesterov", value)
    assert result is bool(value)


@pytest.mark.parametrize("value", [0, 1, np.int64(1), 1.0, "True", None], ids=repr)
def test_what_is_not_a_bool_is_refused(value):
    with pytest.raises(ArgumentTypeError) as error:
        boolean("SGD", "nesterov", value)
    assert str(error.value) == f"SGD: nesterov must be True or False, got {value!r}"


def test_choice_lists_the_allowed_values():
    assert choice("ImageFolder", "on_error", "skip", ("raise", "skip")) == "skip"
    with pytest.raises(ValueError) as error:
        choice("ImageFolder", "on_error", "ignore", ("raise", "skip"))
    assert str(error.value) == "ImageFolder: on_error must be one of 'raise', 'skip', got 'ignore'"


@pytest.mark.parametrize("value", [np.True_, np.False_, np.bool_(1)])
def test_numpy_bools_are_bools_not_numbers(value):
    # On NumPy 2 the class of np.True_ is named numpy.bool, no longer numpy.bool_.
    assert boolean("SGD", "nesterov", value) is bool(value)
    assert not is_integer(value)
    with pytest.raises(TypeError, match="must be an int"):
        integer("Linear", "in_dim", value)
    with pytest.raises(TypeError, match="must be a number"):
        number("SGD", "lr", value)


@pytest.mark.parametrize("check", [
    lambda v: integer("Linear", "in_dim", v), lambda v: int_pair("Conv2D", "stride", v),
    lambda v: number("SGD", "lr", v), lambda v: boolean("SGD", "nesterov", v),
    lambda v: choice("Preprocessing", "resize", v, ("crop", "stretch")),
])
def test_a_huge_value_is_quoted_shortened(check):
    """Configs come from checkpoint files: a megabyte of text was echoed whole in the message."""
    with pytest.raises(ValueError) as info:
        check("x" * 1_000_000)
    message = str(info.value)
    assert len(message) < 200 and "'xxxx" in message and "~" in message
