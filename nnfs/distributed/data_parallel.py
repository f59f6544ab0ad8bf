"""Data-parallel training: one replica of the net per rank, gradients averaged every step."""

from nnfs.backend import backend_of, get_array_module, to_numpy
from nnfs.distributed.comm import differ_between_ranks
from nnfs.distributed.flat import FlatBuffer
from nnfs.distributed.sharding import shard_range
from nnfs.parallel import part_of_batch


class DataParallel:
    """Keep identical replicas of a :class:`~nnfs.net.Net` on every rank.

    Each rank runs the usual step on its own shard of every global batch;
    :meth:`backward` (or :meth:`average_gradients` after ``net.backward()``)
    then replaces every gradient by its average over all ranks, weighted by
    the number of samples each rank had, with **one** allreduce over one
    preallocated flat buffer. The update that follows (``net.update_weights``
    or any optimizer that reads the gradients from ``net.named_parameters()``)
    is then the same on every rank, so the replicas stay identical, and equal
    to one process training on the whole global batch (for nets without
    BatchNorm, up to floating-point rounding)::

        world = nnfs.distributed.init()        # before building the net
        net = Net([...], CrossEntropyLoss())
        ddp = DataParallel(net, world)         # rank 0's parameters everywhere
        for X, y in global_batches:
            X, y = ddp.shard(X, y)             # this rank's share, and where it sits
            loss = ddp.loss(ddp(X), y)
            ddp.backward()                     # net.backward() + one allreduce
            net.update_weights(lr)             # or optimizer.step()

    Dropout: each rank draws its own rows of the global batch's mask (its forward pass
    runs as those rows of the global batch, :func:`~nnfs.parallel.part_of_batch`, which
    :meth:`shard` tells it), from the same random stream on every rank (rank 0's, copied
    with the parameters), so the ranks together drop what one process drops on the whole
    batch. A rank whose share is empty moves its streams on in :meth:`average_gradients`.

    BatchNorm: in training each replica normalises with the statistics of its
    **own shard** (local batch statistics, not synchronised across ranks), so
    with BatchNorm the result equals one process that normalises each shard
    separately, not one that normalises the global batch. Each replica also
    updates its running statistics from its own shards; :meth:`sync_buffers`
    (called by :meth:`eval` and :meth:`state_dict`) replaces them by their
    average over the ranks that had samples since the last average.

    Every method that communicates is collective: call it on every rank.

    Args:
        net: the replica on this rank; build it after :func:`~nnfs.distributed.init`.
        comm: the communicator; default :func:`~nnfs.distributed.init` for the net's backend.
        broadcast: copy rank 0's parameters and buffers to every rank now; default True.

    Raises:
        ValueError: for a net without parameters, or, on every rank, where the ranks' nets
            differ (their parameter or buffer shapes, random streams or dtype): checked
            first, in one collective, since the collectives that follow would not match.

    Attributes:
        net: the wrapped net.
        comm: the communicator (``rank``, ``size``, ``is_root``).
    """

    def __init__(self, net, comm=None, broadcast=True):
        if comm is None:
            from nnfs.distributed.world import init
            comm = init(backend=net.backend)
        self.net = net
        self.comm = comm
        if not self._parameters():
            raise ValueError("DataParallel: the net has no parameters; there is nothing to train")
        self._check_device()
        self._grads = None
        self._n_samples = None
        self._rows = None  # where the share cut by shard() sits in its global batch
        self._statistics_moved = False  # whether this rank had samples since the last sync_buffers
        self._check_same_replicas()
        if broadcast:
            self.broadcast_parameters()

    @property
    def rank(self):
        return self.comm.rank

    @property
    def size(self):
        return self.comm.size

    @property
    def is_root(self):
        """True on rank 0: the rank that prints, writes checkpoints and curves."""
        return self.comm.is_root

    # -- the training step -----------------------------------------------------------------
    def shard(self, *arrays):
        """This rank's contiguous share of each global-batch array (:func:`~nnfs.distributed.shard`),
        remembered as rows of the global batch for the forward passes that follow.

        Returns:
            The share of the one array given, or a tuple of shares (``X, y = ddp.shard(X, y)``).

        Raises:
            ValueError: for arrays of different lengths, or none.
        """
        lengths = {len(array) for array in arrays}
        if len(lengths) != 1:
            raise ValueError(f"DataParallel.shard: expected arrays of one global batch (one length), "
                             f"got lengths {[len(array) for array in arrays]}")
        (total,) = lengths
        rows = shard_range(total, self.comm.rank, self.comm.size)
        self._rows = (rows.start, rows.stop - rows.start, total)
        shares = tuple(array[rows] for array in arrays)
        return shares[0] if len(shares) == 1 else shares

    def __call__(self, X):
        return self.forward(X)

    def forward(self, X):
        """``net(X)`` on this rank's share; remembers its size to weight the average.

        Run as the share's rows of the global batch that :meth:`shard` cut it from, so
        that its Dropout masks are those rows of the global batch's masks.

        Raises:
            ValueError: when the net draws masks in this pass (Dropout in training mode)
                but ``X`` is not the share the latest :meth:`shard` cut: its place in the
                global batch is unknown, and guessing it would drop the rows of another rank.
        """
        n = X.shape[0]
        self._n_samples = n
        if self._rows is not None and self._rows[1] == n:
            first, _, total = self._rows
            with part_of_batch(first, total):
                return self.net(X)
        if self.net.draws():
            cut = "no share was cut" if self._rows is None else f"the latest share has {self._rows[1]} rows"
            raise ValueError(f"DataParallel: the net draws Dropout masks of the global batch, so cut each "
                             f"batch with ddp.shard(X, y) before ddp(X); got {n} rows and {cut}")
        return self.net(X)

    def loss(self, out, y):
        """``net.loss(out, y)``: the mean loss over this rank's shard."""
        return self.net.loss(out, y)

    @property
    def loss_fn(self):
        """The wrapped net's loss (its ``target`` holds the last shard's device targets)."""
        return self.net.loss_fn

    def backward(self, n_samples=None, input_grad=False):
        """``net.backward(input_grad)``, then :meth:`average_gradients`; returns what the former does."""
        grad = self.net.backward(input_grad=input_grad)
        self.average_gradients(n_samples)
        return grad

    def average_gradients(self, n_samples=None):
        """Replace every gradient by its sample-weighted average over all ranks (one allreduce).

        Rank r's gradients are multiplied by its sample count n_r and packed
        into the flat buffer with n_r in a trailing slot; after the sum over
        ranks the gradients are divided by the summed count. Since each local
        loss is a mean over the shard, this gives the gradient of the mean loss
        over the global batch, also when the shards differ in size. Afterwards
        each ``layer.grads[key]`` is a view into the flat buffer.

        Args:
            n_samples: this rank's shard size; default the batch size of the last
                :meth:`forward` (equal weights when the net was called directly).
                A rank with an empty shard passes 0 (without forward or backward):
                it contributes nothing but still takes part in the collective.
        """
        if n_samples is None:
            n_samples = 1 if self._n_samples is None else self._n_samples
        if n_samples == 0 and self._n_samples is None:
            # No forward pass on this rank: its random streams move on as the other ranks'
            # did, so that its next masks are drawn from the same place as theirs.
            self.net.skip_batch()
        self._statistics_moved = self._statistics_moved or n_samples > 0
        self._n_samples = None
        slots = self._grad_slots()
        grads = [store[key] for store, key in slots]
        if self._grads is None or not self._grads.fits(grads):
            self._grads = FlatBuffer(grads, extra=1)
        flat = self._grads
        values = flat.values
        if n_samples == 0:
            flat.data[...] = 0
        else:
            flat.pack(grads)
            if n_samples != 1:
                values *= n_samples
            flat.data[-1] = n_samples
        self.comm.allreduce_sum(flat.data)
        # Divide on the device by the summed count (no host round trip); at least 1
        # so that a step where every shard was empty leaves zeros, not NaNs.
        values /= get_array_module(values).maximum(flat.data[-1:], 1)
        for (store, key), view in zip(slots, flat.views()):
            store[key] = view

    # -- replicas in step ----------------------------------------------------------------------
    def broadcast_parameters(self, root=0):
        """Copy rank ``root``'s parameters, buffers (BatchNorm statistics) and random streams
        (Dropout's seed and mask count) to every rank, in one broadcast."""
        arrays = self._parameters() + self._buffers()
        streams = self.net.rng_state()
        # The streams' numbers travel in the buffer's extra slots as 16-bit pieces, exact in
        # float32 too (seeds and counts are below 2**64: four pieces each).
        pieces = [(value >> shift) & 0xFFFF for stream in streams.values() for value in stream.values()
                  for shift in _SHIFTS]
        flat = FlatBuffer(arrays, dtype=self.net.dtype, extra=len(pieces))
        flat.pack(arrays)
        if pieces:
            flat.data[flat.n_values:] = get_array_module(flat.data).asarray(pieces, dtype=flat.data.dtype)
        self.comm.broadcast(flat.data, root=root)
        flat.unpack_into(arrays)
        if pieces:
            received = iter(int(piece) for piece in to_numpy(flat.data[flat.n_values:]))
            for stream in streams.values():
                for key in stream:
                    stream[key] = sum(next(received) << shift for shift in _SHIFTS)
            self.net.load_rng_state(streams)

    def sync_buffers(self):
        """Average the buffers (BatchNorm running mean and variance) over the ranks, in place.

        Only the ranks that had samples in some step since the last average count: a rank
        whose share was empty in all of them (a global batch smaller than the number of
        ranks, every time) updated nothing and still holds the last average (or the
        statistics it started from), which would pull the average back towards them.
        Where no rank had samples, every rank keeps its own. A rank whose share was empty
        in some of the steps only counts like the others (its statistics missed those
        updates, as the running averages of different shards differ anyway).

        The running variance becomes the mean of the ranks' running variances,
        which leaves out the spread between the shards' means; with shards drawn
        from one distribution that spread is small.
        """
        buffers = self._buffers()
        if not buffers or self.size == 1:
            return
        flat = FlatBuffer(buffers, dtype=self.net.dtype, extra=1)
        if self._statistics_moved:  # else its zeros (a FlatBuffer starts all zeros) count nothing
            flat.pack(buffers)
            flat.data[-1] = 1
        self.comm.allreduce_sum(flat.data)
        counted = int(to_numpy(flat.data[-1]))  # outside the training step: eval() and state_dict()
        self._statistics_moved = False
        if counted:
            flat.values[...] /= counted
            flat.unpack_into(buffers)

    def replica_difference(self):
        """Largest difference of any parameter from rank 0's, summed over ranks (0.0: in step)."""
        arrays = self._parameters() + self._buffers()
        mine = FlatBuffer(arrays, dtype=self.net.dtype)
        mine.pack(arrays)
        root = FlatBuffer(arrays, dtype=self.net.dtype)
        root.data[...] = mine.data
        self.comm.broadcast(root.data, root=0)
        return self.comm.sum_host([abs(mine.data - root.data).max()])[0]

    # -- modes and state -----------------------------------------------------------------------
    def train(self, mode=True):
        """``net.train(mode)``; returns self."""
        self.net.train(mode)
        return self

    def eval(self):
        """Average the BatchNorm running statistics over the ranks, then ``net.eval()``."""
        self.sync_buffers()
        self.net.eval()
        return self

    def state_dict(self):
        """``net.state_dict()`` after :meth:`sync_buffers` (collective; usually only rank 0 saves it)."""
        self.sync_buffers()
        return self.net.state_dict()

    def reduce_metrics(self, **values):
        """Sum named numbers over the ranks, e.g. ``loss_sum=..., correct=..., count=...``."""
        from nnfs.distributed.sharding import reduce_metrics
        return reduce_metrics(self.comm, **values)

    # -- helpers ---------------------------------------------------------------------------------
    def _grad_slots(self):
        """``(grads dict, key)`` per parameter, in ``net.named_parameters()`` order."""
        return [(layer.grads, key) for layer in self.net.layers for key in layer.params]

    def _parameters(self):
        return [param for layer in self.net.layers for param in layer.params.values()]

    def _buffers(self):
        return [buffer for layer in self.net.layers for buffer in layer.buffers.values()]

    def _layout(self):
        """What the collectives pack of this replica, JSON-able: every parameter's and buffer's
        shape, the random streams and the dtype."""
        return {"parameters": [list(param.shape) for param in self._parameters()],
                "buffers": [list(buffer.shape) for buffer in self._buffers()],
                "streams": {path: sorted(stream) for path, stream in self.net.rng_state().items()},
                "dtype": str(self.net.dtype)}

    def _check_same_replicas(self):
        """Refuse, on every rank, replicas that differ (another layer, size or dtype on one
        rank): their broadcasts and allreduces would not match, and MPI fails with a stack of
        its own lines, or waits forever. One small collective of two numbers."""
        if self.comm.size == 1:
            return
        if differ_between_ranks(self.comm, [self._layout()])[0]:
            count = sum(param.size for param in self._parameters())
            raise ValueError(
                f"DataParallel: the nets of the {self.comm.size} ranks differ (their layers, sizes or dtype); build "
                f"the same net on every rank (rank {self.comm.rank}'s has {count:,} parameters in "
                f"{len(self._parameters())} arrays, {self.net.dtype})")

    def _check_device(self):
        wanted = getattr(self.comm, "device_id", None)
        if wanted is None:
            return
        for param in self._parameters():
            device = backend_of(param).device_of(param)
            if device != wanted:
                raise ValueError(
                    f"DataParallel: rank {self.comm.rank} uses GPU {wanted}, but the net's "
                    f"parameters are on GPU {device}; call nnfs.distributed.init() before "
                    "building the net")

    def __repr__(self):
        return f"DataParallel({self.net!r}, comm={self.comm!r})"


#: Where each 16-bit piece of a random stream's number sits in it, in a broadcast.
_SHIFTS = (0, 16, 32, 48)
