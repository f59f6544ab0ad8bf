"""FlatBuffer: many arrays packed into one buffer for a single collective, and views back into it."""

import numpy as np
import pytest

from nnfs.distributed import FlatBuffer


def test_flat_buffer_round_trip_keeps_shapes_values_and_dtype(backend, rng):
    arrays = [backend.asarray(rng.standard_normal(shape), dtype="float32")
              for shape in [(3, 2, 2), (5,), (1, 4)]]
    flat = FlatBuffer(arrays, extra=1)
    assert flat.data.shape == (12 + 5 + 4 + 1,) and flat.data.dtype == np.float32
    assert backend.is_array(flat.data)
    flat.pack(arrays)
    views = flat.views()
    for view, array in zip(views, arrays):
        assert view.shape == array.shape and view.dtype == array.dtype
        np.testing.assert_array_equal(backend.to_numpy(view), backend.to_numpy(array))
    # The views share memory with the buffer: what the collective writes, they show.
    flat.data[...] = 2.0
    assert all((backend.to_numpy(view) == 2.0).all() for view in views)
    targets = [backend.xp.zeros_like(array) for array in arrays]
    flat.unpack_into(targets)
    assert all((backend.to_numpy(target) == 2.0).all() for target in targets)


def test_flat_buffer_needs_arrays():
    with pytest.raises(ValueError, match="at least one array"):
        FlatBuffer([])
