"""What every backend offers the rest of nnfs."""


class Backend:
    """An array library plus the device its arrays live on.

    Attributes:
        name: ``"numpy"``, ``"cupy"`` or ``"strict"``.
        xp: the array module; layers call ``xp.zeros``, ``xp.maximum`` and so on.
    """

    name = None
    xp = None

    def asarray(self, x, dtype=None):
        """Move ``x`` (a NumPy or device array, or nested lists) onto this backend's device.

        Arrays already there are returned as they are when ``dtype`` matches.
        """
        raise NotImplementedError

    def to_numpy(self, x):
        """Copy an array of this backend back to a plain NumPy array."""
        raise NotImplementedError

    def is_array(self, x):
        """True when ``x`` already is an array of this backend."""
        raise NotImplementedError

    def synchronize(self):
        """Wait for queued device work to finish (a no-op on the CPU); for timing."""

    def peak_memory_bytes(self):
        """Peak bytes held by this backend's allocator, or None where it keeps no count."""
        return None

    def __repr__(self):
        return f"Backend({self.name!r})"

    def __eq__(self, other):
        return isinstance(other, Backend) and other.name == self.name

    def __hash__(self):
        return hash(self.name)
