"""Inverted dropout with masks that are the same on every backend."""

from nnfs.backend import get_array_module, host_rng
from nnfs.checks import integer, number
from nnfs.layers.base import Layer, check_float, check_rank_at_least
from nnfs.parallel import shard_rows
from nnfs.text import short_repr

_MASK64 = (1 << 64) - 1
_GAMMA = 0x9E3779B97F4A7C15  # SplitMix64's increment (2**64 / golden ratio)
_MIX1 = 0xBF58476D1CE4E5B9
_MIX2 = 0x94D049BB133111EB


def _mix_host(z):
    """SplitMix64's finaliser on a Python int (mod 2**64)."""
    z = ((z ^ (z >> 30)) * _MIX1) & _MASK64
    z = ((z ^ (z >> 27)) * _MIX2) & _MASK64
    return z ^ (z >> 31)


def random_bits(xp, shape, seed, counter, start=0):
    """``shape`` uniform uint64 values, a pure function of ``(seed, counter)``, made on the device.

    Element i is SplitMix64's i-th output from a state derived from the seed and
    the counter: plain integer arithmetic, so NumPy, CuPy and the strict backend
    give bit-identical values, with nothing drawn on or copied from the host.
    With ``start`` the values are elements ``start, start + 1, ...`` of that sequence:
    a slice of a larger draw, made without drawing the rest.
    """
    u64 = xp.uint64
    state = _mix_host((seed + _mix_host(counter * _GAMMA + 1)) & _MASK64)
    size = 1
    for n in shape:
        size *= n
    z = xp.arange(start + 1, start + size + 1, dtype=u64) * u64(_GAMMA) + u64(state)
    z = (z ^ (z >> u64(30))) * u64(_MIX1)
    z = (z ^ (z >> u64(27))) * u64(_MIX2)
    return (z ^ (z >> u64(31))).reshape(shape)


class Dropout(Layer):
    """Inverted dropout: in training, zero each element with probability ``p`` and scale the rest by ``1/(1-p)``.

    In eval mode (``net.eval()``) the layer is the identity, so no rescaling is
    needed at inference.

    Masks come from a counter-based generator (SplitMix64 over element indices)
    computed on the data's device: the k-th mask of a layer depends only on its
    seed and k, so CPU and GPU runs drop exactly the same elements and no random
    numbers cross between host and device. The seed is drawn from nnfs's host
    generator when the layer is made (so ``nnfs.seed`` fixes it; layers made
    after it get other initial weights than without it); ``calls``
    counts the masks drawn. Together they are the layer's random stream
    (:meth:`rng_state`): training state, not model state, so it is not part of
    ``net.state_dict()``; a checkpoint saved with its optimizer records it, and
    loading one puts it back, so a resumed run drops what the uninterrupted one
    would have (see ``docs/checkpoints.md``).

    Each mask is the whole batch's: a shard of it, on a thread (:mod:`nnfs.parallel`)
    or on a data-parallel rank (:mod:`nnfs.distributed`), draws its own rows of that
    mask (:func:`~nnfs.parallel.shard_rows`), so the shards together drop what one
    process drops on the whole batch.

    Args:
        p: probability of zeroing an element, in [0, 1]; default 0.5.

    Shape:
        - Input: ``(N, ...)``, any number of axes after the batch
        - Output: the same shape and dtype

    Attributes:
        seed: the layer's mask seed (an int below 2**63).
        calls: number of masks drawn so far.
    """

    def __init__(self, p=0.5):
        super().__init__()
        self.p = number("Dropout", "p", p, low=0, high=1)
        self.seed = int(host_rng().integers(2 ** 63))
        self.calls = 0

    def check_input(self, X):
        check_rank_at_least(self, X, 1, "(N, ...)")
        check_float(self, X)

    def mask(self, X):
        """The next mask for ``X``: 0 or ``1/(1-p)`` per element, in ``X``'s dtype and device."""
        xp = get_array_module(X)
        # A shard of a batch (a thread's, a rank's) draws its own rows of the whole batch's mask.
        first, _ = shard_rows(X.shape[0])
        per_row = X.size // X.shape[0] if X.shape[0] else 0
        bits = random_bits(xp, X.shape, self.seed, self.calls, start=first * per_row)
        self.calls += 1
        # Integer comparison: the same elements are kept whatever the dtype.
        threshold = min(int(self.p * 2.0 ** 64), (1 << 64) - 1)
        keep = bits >= xp.uint64(threshold)
        scale = 0.0 if self.p == 1 else 1.0 / (1.0 - self.p)
        return keep.astype(X.dtype) * scale

    def draws(self):
        """True when a forward pass draws a mask: in training mode, with ``p > 0``."""
        return self.training and self.p != 0

    def forward(self, X):
        if not self.draws():
            self.cache["mask"] = None
            return X
        mask = self.mask(X)
        self.cache["mask"] = mask
        return X * mask

    def backward(self, dY):
        mask = self.from_cache("mask")
        return dY if mask is None else dY * mask

    def local_grad(self, X):
        """dY/dX element by element: ones in eval mode (or with ``p = 0``). In training mode, the
        mask of the last forward pass when it was of ``X``'s shape (what a pending backward
        multiplies by), else the mask the next forward pass on ``X`` will draw, without
        drawing it (the stream does not move).

        Shape:
            - X: ``(N, ...)``; the result ``{"X": ...}`` has the same shape
        """
        if not self.draws():  # whatever an earlier training pass left in the cache
            return {"X": get_array_module(X).ones_like(X)}
        mask = self.cache.get("mask")
        if mask is not None and tuple(mask.shape) == tuple(X.shape):
            return {"X": mask}
        # No pending mask of this shape (none drawn yet, another batch's, or a composite's
        # local_grad, which gives its children fresh caches): the next one, as a forward pass
        # on X now would draw it.
        calls = self.calls
        try:
            return {"X": self.mask(X)}
        finally:
            self.calls = calls

    def rng_state(self):
        """``{"seed": seed, "calls": masks drawn}``: the next mask is a function of these alone."""
        return {"seed": self.seed, "calls": self.calls}

    def load_rng_state(self, state):
        """Continue the stream of :meth:`rng_state` output (both checked before either is set)."""
        if not isinstance(state, dict) or set(state) != {"seed", "calls"}:
            raise ValueError(
                f"Dropout: rng state must be {{'seed': int, 'calls': int}}, got {short_repr(state)}")
        seed = integer("Dropout", "rng state's seed", state["seed"], minimum=0, maximum=2 ** 63 - 1)
        calls = integer("Dropout", "rng state's calls", state["calls"], minimum=0, maximum=2 ** 63 - 1)
        self.seed, self.calls = seed, calls

    def skip_batch(self):
        """Count the mask a training forward pass over an empty batch would have drawn."""
        if self.draws():
            self.calls += 1

    def get_config(self):
        return {"p": self.p}
