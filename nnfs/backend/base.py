"""What every backend offers the rest of nnfs."""


class Backend:
    """An array library plus the device its arrays live on.

    A backend answers every question the rest of nnfs has about arrays and
    devices: whether an array is one of its own (:meth:`recognises`), how to
    move data onto its device and back, how many devices it has and which one
    to use. Nothing outside :mod:`nnfs.backend` looks at an array's type.

    Attributes:
        name: ``"numpy"``, ``"cupy"`` or ``"strict"``.
        xp: the array module; layers call ``xp.zeros``, ``xp.maximum`` and so on.
        is_device: True when its arrays are not host memory (CuPy, and the strict stand-in).
        block_bytes: how much memory an operation that can work through a batch a block at
            a time (of samples, channels or rows: :mod:`nnfs.layers.blocks`) should touch per
            block, or None for the whole batch at once. On the CPU a few MB, well inside the last-level cache: what one step writes
            is still there when the next reads it, instead of going out to memory and back.
            On a device None: there the cost is the kernel launches, one per step and block.
    """

    name = None
    xp = None
    is_device = False
    block_bytes = None

    def __reduce__(self):
        """Pickled (and deep-copied) by name: one backend object per process, which the checks
        compare by identity (the output record a layer's cache holds for its backward pass)."""
        from nnfs.backend import get_backend
        return get_backend, (self.name,)

    @staticmethod
    def recognises(x):
        """True when ``x`` is an array of this backend (without creating the backend)."""
        raise NotImplementedError

    def is_array(self, x):
        """True when ``x`` already is an array of this backend."""
        return self.recognises(x)

    def asarray(self, x, dtype=None):
        """Move ``x`` (an array of any backend, a NumPy array, a number or nested lists) here.

        Arrays already here are returned as they are when ``dtype`` matches (else cast);
        anything else is copied: arrays of another device through the host.
        """
        if self.is_array(x):
            return x if dtype is None or x.dtype == dtype else x.astype(dtype)
        from nnfs.backend import host_view  # the registry of backends lives there
        return self.from_host(host_view(x), dtype)

    def from_host(self, x, dtype=None):
        """A new array of this backend from host data (a NumPy array, a number or lists)."""
        raise NotImplementedError

    def to_numpy(self, x):
        """Copy an array of this backend back to a plain NumPy array."""
        raise NotImplementedError

    def prepare(self):
        """Get the process ready to compute on this backend: a :class:`~nnfs.net.Net` calls it
        before every forward pass, so it must be cheap after the first call. The CPU backend
        keeps freed memory for the next step here (:mod:`nnfs.backend.allocator`); the others
        have nothing to do."""

    def synchronize(self):
        """Wait for the device work queued so far (on the current stream) to finish; a no-op
        on the CPU. For timing, and before handing device memory to a library that does
        not know the stream."""

    def measure_peak_memory(self, run):
        """Run ``run()`` and return the most bytes this backend's arrays held at once meanwhile,
        or None where the backend keeps no count (the host backends: use the process's
        resident memory there)."""
        run()
        return None

    def nccl(self):
        """The NCCL bindings for this backend's devices, or None (always None off the GPU)."""
        return None

    def nccl_problem(self):
        """Why :meth:`nccl` is None and what to install, or None when NCCL is usable."""
        return f"the {self.name} backend has no GPUs for NCCL"

    def current_stream(self):
        """The handle of the stream device work is queued on (an int), or None on the host."""
        return None

    def device_pointer(self, x):
        """The device address of array ``x``'s first element (an int), for NCCL calls."""
        raise RuntimeError(f"the {self.name} backend has no device memory to point at")

    def device_count(self):
        """How many devices of this kind this machine has (0 for the host backends)."""
        return 0

    def use_device(self, index):
        """Make device ``index`` the one new arrays go to (for one data-parallel rank per GPU)."""
        raise RuntimeError(f"the {self.name} backend has no devices to choose from")

    def device_of(self, x):
        """The index of the device ``x`` lives on, or None for host memory."""
        return None

    def __repr__(self):
        return f"Backend({self.name!r})"

    def __eq__(self, other):
        return isinstance(other, Backend) and other.name == self.name

    def __hash__(self):
        return hash(self.name)
