"""nnfs.checks: the argument checks every constructor uses."""

import numpy as np
import pytest

from nnfs.checks import boolean, integer, is_integer, number


@pytest.mark.parametrize("value", [np.True_, np.False_, np.bool_(1)])
def test_numpy_bools_are_bools_not_numbers(value):
    # On NumPy 2 the class of np.True_ is named numpy.bool, no longer numpy.bool_.
    assert boolean("SGD", "nesterov", value) is bool(value)
    assert not is_integer(value)
    with pytest.raises(TypeError, match="must be an int"):
        integer("Linear", "in_dim", value)
    with pytest.raises(TypeError, match="must be a number"):
        number("SGD", "lr", value)
