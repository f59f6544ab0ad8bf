"""One flat buffer for many arrays, so that a step needs one collective, not one per array."""

from nnfs.backend import get_array_module


class FlatBuffer:
    """A preallocated 1-d device array that holds several arrays end to end.

    ``pack`` copies the arrays into their slices; ``views`` returns each
    slice reshaped to its array's shape, sharing memory with the buffer
    (no copy); ``unpack_into`` copies the slices back into existing arrays.
    ``extra`` slots after the packed arrays carry scalars that travel in the
    same collective (the sample count for weighted averaging).

    Args:
        like: arrays whose shapes (and backend) the buffer is laid out for.
        dtype: the buffer's dtype; default that of the first array.
        extra: number of trailing scalar slots; default 0.

    Attributes:
        data: the flat array, ``(n_values + extra,)``, on the arrays' device.
        n_values: number of values the packed arrays take (the extra slots follow).
        shapes: the arrays' shapes, in packing order.
    """

    def __init__(self, like, dtype=None, extra=0):
        like = list(like)
        if not like:
            raise ValueError("FlatBuffer: needs at least one array to lay out")
        self.shapes = [tuple(array.shape) for array in like]
        self.bounds = []
        start = 0
        for array in like:
            self.bounds.append((start, start + array.size))
            start += array.size
        self.n_values = start
        self.extra = extra
        xp = get_array_module(like[0])
        self.data = xp.zeros(start + extra, dtype=dtype or like[0].dtype)

    def fits(self, arrays):
        """True when ``arrays`` have this layout's shapes and live on the buffer's device and dtype."""
        arrays = list(arrays)
        return (len(arrays) == len(self.shapes)
                and all(tuple(a.shape) == s for a, s in zip(arrays, self.shapes))
                and all(type(a) is type(self.data) and a.dtype == self.data.dtype for a in arrays))

    def pack(self, arrays):
        """Copy ``arrays`` into their slices of :attr:`data` (shapes must match the layout)."""
        for (start, stop), array in zip(self.bounds, arrays):
            self.data[start:stop] = array.reshape(-1)

    def views(self):
        """Each slice reshaped to its array's shape: views of :attr:`data`, not copies."""
        return [self.data[start:stop].reshape(shape)
                for (start, stop), shape in zip(self.bounds, self.shapes)]

    @property
    def values(self):
        """The packed part of :attr:`data`, without the extra slots (a view)."""
        return self.data[:self.n_values]

    def unpack_into(self, arrays):
        """Copy each slice back into the matching array, in place."""
        for view, array in zip(self.views(), arrays):
            array[...] = view
