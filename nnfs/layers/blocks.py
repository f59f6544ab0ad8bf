"""Blocks of a batch that fit the CPU's cache, for layers that make several passes over it.

A layer that goes over the same large arrays several times (max pooling's backward
compares, masks and multiplies once per kernel offset) runs at the speed of memory
when the arrays are larger than the cache: every pass reads them from memory again.
Made one block at a time, with a block small enough that all it touches stays in the
cache, only the first pass over a block goes to memory. How large a block may be is
the backend's ``block_bytes`` (:class:`~nnfs.backend.base.Backend`): a few MB on the
CPU, and None, the whole batch at once, on a device, where the cost is the number of
kernel launches instead.
"""

from nnfs.backend import backend_of


def memory_blocks(X, touched=1.0):
    """Index tuples that cut ``X`` ``(N, C, ...)`` into blocks along its outer axis in memory.

    The outer axis (:func:`outer_axis`) is C for channel-major images (Conv2D's output and
    what follows it, see :mod:`nnfs.layers`) and N for plain ones, so each block is one
    contiguous run of memory (or, for a view with padding, a few). Apply the same index to
    every array of the computation that has X's shape and layout; the blocks cover X
    exactly once, in order.

    Args:
        X: an array of rank 2 or more.
        touched: bytes the computation touches per byte of X (its other arrays, its
            temporaries), so that all of it fits the backend's ``block_bytes``.

    Returns:
        A list of ``(slice, slice)`` indices for the first two axes, the blocks as even as
        can be (:func:`even_blocks`): one, ``(slice(None), slice(None))``, where the backend
        has no ``block_bytes``, X has one axis, or X fits in one block.
    """
    block_bytes = backend_of(X).block_bytes
    whole = [(slice(None), slice(None))]
    if block_bytes is None or X.ndim < 2 or X.nbytes * touched <= block_bytes:
        return whole
    axis = outer_axis(X)
    size = X.shape[axis]
    cut = fitting_blocks(size, touched * X.nbytes / size, block_bytes)
    if len(cut) == 1:
        return whole
    return [(part, slice(None)) if axis == 0 else (slice(None), part) for part in cut]


def outer_axis(X):
    """0 or 1: which of the first two axes of ``X`` is the outer one in memory (its larger
    stride; an axis of length 1 never is, whatever its stride: a single image is cut into
    channels, a batch of one channel into samples)."""
    if X.shape[0] == 1 or X.shape[1] == 1:
        return 1 if X.shape[0] == 1 else 0
    return 1 if X.strides[1] > X.strides[0] else 0


def fitting_blocks(size, bytes_each, block_bytes):
    """``range(size)`` cut into :func:`even_blocks` of as many indices of ``bytes_each`` as fit
    in ``block_bytes`` (at least one a block; one block for all where ``block_bytes`` is None)."""
    return even_blocks(size, size if block_bytes is None else int(block_bytes // bytes_each))


def even_blocks(size, most):
    """``range(size)`` cut into as few consecutive slices of at most ``most`` (at least 1) as
    can be, their lengths differing by at most one (100 by 40: 33, 33, 34; never 40, 40, 20)."""
    count = -(-size // max(1, most)) if size else 1
    bounds = [size * k // count for k in range(count + 1)]
    return [slice(start, stop) for start, stop in zip(bounds, bounds[1:])]
