"""Batch normalisation: one core on the rows of an ``(F, M)`` matrix, two thin layouts of it.

Each feature (a channel of an image, or a column of ``(N, D)`` features) is one row
whose M values are all the batch has of it. :class:`BatchNorm` computes statistics,
running averages and the backward pass on those rows; :class:`BatchNorm1D` and
:class:`BatchNorm2D` only say how their input becomes rows and back (for images,
see the channel-major layout in :mod:`nnfs.layers`).
"""

from nnfs.backend import get_array_module, host_ones, host_zeros
from nnfs.checks import integer, number
from nnfs.layers.base import Layer, check_dtype, check_rank
from nnfs.layers.blocks import memory_blocks, outer_axis
from nnfs.parallel import add_in_order, batch_gather, batch_sum


class BatchNorm(Layer):
    """Normalise each feature with batch statistics, then learn a scale and shift per feature.

    In training mode each feature is normalised with the mean and (biased)
    variance of its values in the batch, and the running statistics are updated
    as ``running = (1 - momentum) * running + momentum * batch`` (the running
    variance takes the unbiased batch variance, as PyTorch does). In eval mode
    the running statistics are used instead. An empty batch gives an empty
    output and leaves the running statistics alone, as in PyTorch.

    When a CPU step runs the batch in shards on several threads (:mod:`nnfs.parallel`),
    each shard centres its rows on its own mean and the shards' means and spreads are
    combined into those of the whole batch (one meeting of the threads in forward, one
    in backward), so everything is computed from the whole batch, as on one thread.

    Subclasses define the input layout: :meth:`check_input`, :meth:`rows`
    (input to ``(F, M)``) and :meth:`unrows` (back to the input's shape).

    Args:
        n_features: number of features F (channels, for images).
        epsilon: added to the variance for stability; default 1e-5.
        momentum: weight of the newest batch in the running statistics, in [0, 1]; default 0.1.
        dtype: float32 (default) or float64.

    Attributes:
        params["weight"], params["bias"]: scale (ones) and shift (zeros), ``(F,)``.
        buffers["running_mean"], buffers["running_var"]: ``(F,)``, start at 0 and 1.
    """

    #: The name of the feature count in the constructor and config.
    size_argument = "n_features"
    #: What one feature is called in error messages.
    feature = "feature"

    def __init__(self, n_features, epsilon=1e-5, momentum=0.1, dtype=None):
        super().__init__()
        name = type(self).__name__
        shapes = self.array_shapes(n_features)
        (self.n_features,) = shapes["weight"]
        self.epsilon = number(name, "epsilon", epsilon, low=0, low_open=True)
        self.momentum = number(name, "momentum", momentum, low=0, high=1)
        self.init_params(dtype, weight=host_ones(self.n_features), bias=host_zeros(self.n_features))
        self.buffers["running_mean"] = self.params["bias"].copy()
        self.buffers["running_var"] = self.params["weight"].copy()

    @classmethod
    def array_shapes(cls, n_features, epsilon=1e-5, momentum=0.1, dtype=None):
        """``(n_features,)`` for the weight, the bias and both running statistics (see ``Layer``)."""
        n_features = integer(cls.__name__, cls.size_argument, n_features, minimum=1)
        return dict.fromkeys(("weight", "bias", "running_mean", "running_var"), (n_features,))

    # -- the layout: what a subclass defines ------------------------------------------------
    def rows(self, X):
        """The input as an ``(F, M)`` matrix, one row per feature."""
        raise NotImplementedError

    def unrows(self, X2, shape):
        """An ``(F, M)`` matrix back in the input's ``shape``."""
        raise NotImplementedError

    def check_features(self, X, per_feature):
        """The checks every batch norm makes once the subclass's rank check passed."""
        name = type(self).__name__
        if X.shape[1] != self.n_features:
            raise ValueError(f"{name}: expected {self.n_features} {self.feature}s, got shape {tuple(X.shape)}")
        if self.training and per_feature == 1:
            raise ValueError(
                f"{name}: training needs at least 2 values per {self.feature} to estimate its "
                f"variance (got shape {tuple(X.shape)}); use a larger batch or eval mode")
        check_dtype(self, X)

    # -- the layer ---------------------------------------------------------------------------
    def forward(self, X):
        return self.unrows(self.normalize_rows(self.rows(X)), X.shape)

    def backward(self, dY):
        return self.unrows(self.backward_rows(self.rows(dY)), dY.shape)

    def local_grad(self, X):
        """dY/dX as far as it is element by element (``gamma / std``), dY/dgamma (``X_hat``), dY/dbeta (1).

        In eval mode ``gamma / std`` is dY/dX (the running statistics are constants). In
        training mode it is only the direct term: every output also depends on the whole
        batch through its mean and variance, which :meth:`backward` adds and no
        element-by-element factor can hold.

        Shape:
            - X: the layer's input, ``(N, D)`` or ``(N, C, H, W)``
            - ``"X"``: ``(F,)``, one factor per feature (channel)
            - ``"weight"``, ``"bias"``: the shape of X
        """
        grads = self.local_grad_rows(self.rows(X))
        return {"X": grads["X"], "weight": self.unrows(grads["weight"], X.shape),
                "bias": self.unrows(grads["bias"], X.shape)}

    def get_config(self):
        return {self.size_argument: self.n_features, "epsilon": self.epsilon, "momentum": self.momentum}

    # -- the core, on (F, M) rows -------------------------------------------------------------
    def _statistics(self, X2):
        """The rows centred on this shard's mean, how far that lies from the batch's mean
        (``shift``, per row: the rows centred on the batch's mean are ``centred + shift``;
        None where they are the same, with one shard), and the batch's variance: in eval
        mode the running mean and variance instead."""
        count = X2.shape[1]
        if not self.training or count == 0:  # nothing to learn from an empty batch
            return X2 - self.buffers["running_mean"][:, None], None, self.buffers["running_var"]
        # Each shard centres its rows on its own mean, then the shards' counts, means and
        # spreads are combined in one meeting (see nnfs.parallel): Chan et al.'s parallel
        # variance, sum(M2_k) + sum(n_k * (mean_k - mean)^2), which differs from centring on
        # the batch's mean only by rounding and never subtracts two large sums. One shard
        # (one thread, or a device) is the whole batch: nothing to combine, no shift (on a
        # GPU every small operation saved is a kernel launch saved).
        local_mean, centred, local_spread = self._centre(X2)
        counts, means, spreads = batch_gather(count, local_mean, local_spread)
        if len(counts) == 1:
            mean, shift, var = local_mean, None, spreads[0] / count  # biased: the batch's own spread
        else:
            count = sum(counts)
            mean = add_in_order([(n / count) * m for n, m in zip(counts, means)])
            spread = add_in_order(spreads) + add_in_order([n * (m - mean) ** 2 for n, m in zip(counts, means)])
            shift, var = local_mean - mean, spread / count
        m = self.momentum
        running_mean, running_var = self.buffers["running_mean"], self.buffers["running_var"]
        running_mean *= 1 - m
        running_mean += m * mean
        running_var *= 1 - m
        running_var += (m * count / (count - 1)) * var
        return centred, shift, var

    def normalize_rows(self, X2):
        """Forward on the ``(F, M)`` rows: returns ``gamma * X_hat + beta`` as a fresh ``(F, M)`` array."""
        centred, shift, var = self._statistics(X2)
        inv_std = (var + self.epsilon) ** -0.5
        # gamma * X_hat + beta with X_hat = (centred + shift) * inv_std, as one scale and one
        # shift per row: X_hat itself is never formed (backward works from the centred rows),
        # which saves a pass over the batch.
        scale = self.params["weight"] * inv_std
        offset = self.params["bias"] if shift is None else self.params["bias"] + shift * scale
        xp = get_array_module(centred)

        def normalize(rows, out):
            Y2 = xp.multiply(centred[rows], scale[rows, None], out=out)
            return xp.add(Y2, offset[rows, None], out=Y2)  # in place: Y2 is a fresh array of ours

        Y2 = by_row_blocks(centred, 2, normalize)
        self.cache["centred"], self.cache["shift"], self.cache["inv_std"] = centred, shift, inv_std
        self.cache["training"] = self.training
        return Y2

    def backward_rows(self, dY2):
        """Backward on the ``(F, M)`` rows: stores the scale and shift gradients, returns dX rows."""
        centred, shift, inv_std, training = self.from_cache("centred", "shift", "inv_std", "training")
        # The sum of dY over each row, and of dY * X_hat, X_hat = (centred + shift) * inv_std.
        dbeta, dots = self._row_sums(dY2, centred)
        dgamma = (dots if shift is None else dots + shift * dbeta) * inv_std
        self.grads["weight"] = dgamma  # this shard's share, when the batch runs in shards
        self.grads["bias"] = dbeta
        scale = self.params["weight"] * inv_std
        count = dY2.shape[1]
        if not training or count == 0:
            # The statistics were constants: the layer is an affine map per row.
            return dY2 * scale[:, None]
        count, dgamma, dbeta = batch_sum(count, dgamma, dbeta)  # over the whole batch
        # d/dX of gamma * (X - mean) / std, with mean and std depending on the batch:
        # gamma / std * (dY - mean(dY) - X_hat * mean(dY * X_hat)), per row; X_hat as above.
        slope = scale * inv_std * dgamma / count
        constant = scale * dbeta / count
        if shift is not None:
            constant = constant + shift * slope
        xp = get_array_module(dY2)

        def input_grad(rows, out):
            dX2 = xp.multiply(dY2[rows], scale[rows, None], out=out)
            dX2 -= centred[rows] * slope[rows, None]
            dX2 -= constant[rows, None]
            return dX2

        return by_row_blocks(dY2, 4, input_grad)

    def _centre(self, X2):
        """This shard's mean of each row, the rows centred on it, and their sums of squares.

        A block of rows at a time (:mod:`nnfs.layers.blocks`): a block's rows are still in
        the cache for the second and third pass. Each row is summed whole, as in one block.
        """
        xp = get_array_module(X2)
        count = X2.shape[1]
        means, spreads = [], []

        def centre(rows, out):
            mean = X2[rows].sum(axis=1) / count
            centred = xp.subtract(X2[rows], mean[:, None], out=out)
            means.append(mean)
            spreads.append(row_dots(centred, centred))
            return centred

        centred = by_row_blocks(X2, 2, centre)
        return join_rows(means), centred, join_rows(spreads)

    def _row_sums(self, dY2, centred):
        """``dY2.sum(axis=1)`` and ``row_dots(dY2, centred)``, a block of rows at a time."""
        sums, dots = [], []
        for rows in row_blocks(dY2, 2):
            sums.append(dY2[rows].sum(axis=1))
            dots.append(row_dots(dY2[rows], centred[rows]))
        return join_rows(sums), join_rows(dots)

    def local_grad_rows(self, X2):
        """Local derivatives on the rows, without touching the running statistics.

        Returns the element-by-element part of dY/dX (``gamma / std``, per row; see
        :meth:`local_grad`), dY/dgamma (``X_hat`` rows) and dY/dbeta (ones).
        """
        if self.training and X2.shape[1]:
            mean, var = X2.mean(axis=1), X2.var(axis=1)
        else:
            mean, var = self.buffers["running_mean"], self.buffers["running_var"]
        inv_std = (var + self.epsilon) ** -0.5
        X_hat = (X2 - mean[:, None]) * inv_std[:, None]
        return {"X": self.params["weight"] * inv_std, "weight": X_hat,
                "bias": get_array_module(X2).ones_like(X2)}


class BatchNorm1D(BatchNorm):
    """Batch normalisation over ``(N, D)``: one mean and variance per feature (PyTorch's ``BatchNorm1d``).

    Args:
        n_features: number of features D.
        epsilon, momentum, dtype: see :class:`BatchNorm`.

    Shape:
        - Input: ``(N, D)``
        - Output: ``(N, D)``
    """

    def check_input(self, X):
        check_rank(self, X, 2, "(N, D)")
        self.check_features(X, X.shape[0])

    def rows(self, X):
        return X.T  # (D, N): a view, whatever the layout

    def unrows(self, X2, shape):
        return X2.T


class BatchNorm2D(BatchNorm):
    """Batch normalisation over ``(N, C, H, W)``: one mean and variance per channel over N*H*W values.

    Each channel is a row of the channel-major ``(C, N*H*W)`` matrix that
    Conv2D produces; the output is an ``(N, C, H, W)`` view of that memory, as
    Conv2D's is (see :mod:`nnfs.layers`).

    Args:
        n_channels: number of channels C.
        epsilon, momentum, dtype: see :class:`BatchNorm`.

    Shape:
        - Input: ``(N, C, H, W)``
        - Output: ``(N, C, H, W)``
    """

    size_argument = "n_channels"
    feature = "channel"

    def __init__(self, n_channels, epsilon=1e-5, momentum=0.1, dtype=None):
        super().__init__(n_channels, epsilon, momentum, dtype)

    @classmethod
    def array_shapes(cls, n_channels, epsilon=1e-5, momentum=0.1, dtype=None):
        return super().array_shapes(n_channels)

    @property
    def n_channels(self):
        """The seed's name for the number of features of an image: its channels."""
        return self.n_features

    def check_input(self, X):
        check_rank(self, X, 4, "(N, C, H, W)")
        self.check_features(X, X.shape[0] * X.shape[2] * X.shape[3])

    def rows(self, X):
        return channel_rows(X)

    def unrows(self, X2, shape):
        N, C, H, W = shape
        return X2.reshape(C, N, H, W).transpose(1, 0, 2, 3)


def channel_rows(X):
    """``(N, C, H, W)`` as a ``(C, N*H*W)`` matrix: one row per channel.

    Free (a view) for channel-major images such as Conv2D's output; other layouts
    are copied once (see :mod:`nnfs.layers`).
    """
    return X.transpose(1, 0, 2, 3).reshape(X.shape[1], -1)


def row_blocks(X2, touched):
    """Slices of the rows of ``X2`` ``(F, M)``, blocks that fit the cache (see :func:`memory_blocks`).

    Only rows that lie one after the other in memory are cut (the channel rows of
    BatchNorm2D): the rows of a transposed matrix (BatchNorm1D's ``X.T``) are strided, and
    blocks of them would make every pass strided (2-3x slower, measured); they are one block.
    """
    if outer_axis(X2) != 0:
        return [slice(None)]
    return [part for part, _ in memory_blocks(X2, touched)]


def by_row_blocks(X2, touched, compute):
    """The ``(F, M)`` result of ``compute(rows, out)`` over the row blocks of ``X2``.

    ``compute`` works out the rows ``rows`` of the result into ``out`` and returns them.
    With one block ``out`` is None: ``compute`` makes a fresh array, in whatever layout its
    backend gives a result, so a device runs exactly the whole-batch operations. With
    several, each block is written into one array of X2's (row-major) layout.
    """
    blocks = row_blocks(X2, touched)
    if len(blocks) == 1:
        return compute(blocks[0], None)
    result = get_array_module(X2).empty_like(X2)
    for rows in blocks:
        compute(rows, result[rows])
    return result


def join_rows(parts):
    """Per-row results of the blocks as one ``(F,)`` array (one block: that array itself)."""
    return parts[0] if len(parts) == 1 else get_array_module(parts[0]).concatenate(parts)


#: Row dot products are summed in blocks of this many values (see :func:`row_dots`).
ROW_BLOCK = 256


def row_dots(A, B):
    """``(A * B).sum(axis=1)`` for ``(F, M)`` matrices, as F dot products.

    ``einsum`` sums the products without the ``(F, M)`` temporary that multiplying first
    would need (2-3 times faster), and lets the other threads run meanwhile (see
    :mod:`nnfs.parallel`; the batched matrix product ``(F, 1, M) @ (F, M, 1)`` keeps the
    interpreter lock for a result this small). But it adds a whole row into one running
    sum, whose rounding error grows with the row: in float32, 6e-5 of the result for the
    million values per channel of 256 images of 64x64, against 3e-8 for NumPy's pairwise
    ``sum``. So each row is summed in blocks of :data:`ROW_BLOCK` values by ``einsum`` and
    the block sums are added pairwise by ``sum``: as accurate as ``sum``, and faster than
    one long ``einsum`` (the short blocks stay in registers and cache).
    """
    # Two operands: there is no contraction order for optimize=True to choose, only its
    # planning to pay (10 us a call, more than the whole product for small rows).
    xp = get_array_module(A)
    F, M = A.shape
    whole = M - M % ROW_BLOCK
    if whole == 0:  # a row shorter than one block is one block
        return xp.einsum("fm,fm->f", A, B)
    # Splitting the last axis into (blocks, ROW_BLOCK) is a view, whatever the rows' strides.
    blocks = xp.einsum("fbk,fbk->fb", A[:, :whole].reshape(F, -1, ROW_BLOCK),
                       B[:, :whole].reshape(F, -1, ROW_BLOCK))
    total = blocks.sum(axis=1)
    if whole < M:
        total += xp.einsum("fm,fm->f", A[:, whole:], B[:, whole:])
    return total
