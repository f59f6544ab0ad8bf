"""What every batch normalisation shares: statistics per row of a ``(F, M)`` matrix.

Each feature (a channel of an image, or a column of ``(N, D)`` features) is one row
whose M values are all the batch has of it; the layers only decide how their input
becomes those rows and back.
"""

from nnfs.backend import get_array_module, host_ones, host_zeros
from nnfs.layers.base import Layer, check_dtype, positive_int


class BatchNorm(Layer):
    """Base of ``BatchNorm1D`` and ``BatchNorm2D``: normalise rows, learn a scale and shift per row.

    In training mode each row is normalised with its mean and (biased) variance,
    and the running statistics are updated as
    ``running = (1 - momentum) * running + momentum * batch`` (the running variance
    takes the unbiased batch variance, as PyTorch does). In eval mode the running
    statistics are used instead.

    Args:
        n_features: number of rows F (features or channels).
        epsilon: added to the variance for stability.
        momentum: weight of the newest batch in the running statistics, in [0, 1].
        dtype: float32 (default) or float64.

    Attributes:
        params["weight"], params["bias"]: scale (ones) and shift (zeros), ``(F,)``.
        buffers["running_mean"], buffers["running_var"]: ``(F,)``, start at 0 and 1.
    """

    def __init__(self, n_features, epsilon, momentum, dtype, size_name):
        super().__init__()
        name = type(self).__name__
        self.num_features = positive_int(n_features, size_name, name)
        if isinstance(epsilon, bool) or not isinstance(epsilon, (int, float)) or not epsilon > 0:
            raise ValueError(f"{name}: epsilon must be positive, got {epsilon!r}")
        if isinstance(momentum, bool) or not isinstance(momentum, (int, float)) or not 0 <= momentum <= 1:
            raise ValueError(f"{name}: momentum must be in [0, 1], got {momentum!r}")
        self.epsilon = float(epsilon)
        self.momentum = float(momentum)
        self.init_params(dtype, weight=host_ones(n_features), bias=host_zeros(n_features))
        self.buffers["running_mean"] = self.params["bias"].copy()
        self.buffers["running_var"] = self.params["weight"].copy()

    def check_rows(self, X, what, count):
        """The checks every batch norm makes once the layer's own shape checks passed."""
        name = type(self).__name__
        if X.shape[1] != self.num_features:
            raise ValueError(f"{name}: expected {self.num_features} {what}, got shape {tuple(X.shape)}")
        if self.training and count < 2:
            raise ValueError(
                f"{name}: training needs at least 2 values per {what[:-1]} to estimate its "
                f"variance (got shape {tuple(X.shape)}); use a larger batch or eval mode")
        check_dtype(self, X)

    def _statistics(self, X2):
        """The mean and the centred rows; the variance; batch ones in training, running ones else."""
        if not self.training:
            return X2 - self.buffers["running_mean"][:, None], self.buffers["running_var"]
        count = X2.shape[1]
        mean = X2.mean(axis=1)
        centred = X2 - mean[:, None]
        var = row_dots(centred, centred) / count  # biased: the batch's own spread
        m = self.momentum
        running_mean, running_var = self.buffers["running_mean"], self.buffers["running_var"]
        running_mean *= 1 - m
        running_mean += m * mean
        running_var *= 1 - m
        running_var += (m * count / (count - 1)) * var
        return centred, var

    def normalize_rows(self, X2):
        """Forward on the ``(F, M)`` rows: returns ``gamma * X_hat + beta`` as a fresh ``(F, M)`` array."""
        X_hat, var = self._statistics(X2)
        inv_std = (var + self.epsilon) ** -0.5
        X_hat *= inv_std[:, None]  # a fresh array of ours: normalised in place
        Y2 = X_hat * self.params["weight"][:, None]
        Y2 += self.params["bias"][:, None]
        self.cache["X_hat"], self.cache["inv_std"], self.cache["training"] = X_hat, inv_std, self.training
        return Y2

    def backward_rows(self, dY2):
        """Backward on the ``(F, M)`` rows: stores the scale and shift gradients, returns dX rows."""
        X_hat, inv_std, training = self.from_cache("X_hat", "inv_std", "training")
        dgamma = row_dots(dY2, X_hat)
        dbeta = dY2.sum(axis=1)
        self.grads["weight"] = dgamma
        self.grads["bias"] = dbeta
        scale = (self.params["weight"] * inv_std)[:, None]
        if not training:
            # The statistics were constants: the layer is an affine map per row.
            return dY2 * scale
        # d/dX of gamma * (X - mean) / std, with mean and std depending on the batch:
        # gamma / std * (dY - mean(dY) - X_hat * mean(dY * X_hat)), per row.
        count = dY2.shape[1]
        dX2 = dY2 - (dbeta / count)[:, None]
        dX2 -= X_hat * (dgamma / count)[:, None]
        dX2 *= scale
        return dX2

    def local_grad_rows(self, X2):
        """Local derivatives on the rows, without touching the running statistics.

        Returns the diagonal part of dY/dX (``gamma / std``, per row), dY/dgamma
        (``X_hat`` rows) and dY/dbeta (ones).
        """
        if self.training:
            mean, var = X2.mean(axis=1), X2.var(axis=1)
        else:
            mean, var = self.buffers["running_mean"], self.buffers["running_var"]
        inv_std = (var + self.epsilon) ** -0.5
        X_hat = (X2 - mean[:, None]) * inv_std[:, None]
        return {"X": self.params["weight"] * inv_std, "weight": X_hat,
                "bias": get_array_module(X2).ones_like(X2)}


def row_dots(A, B):
    """``(A * B).sum(axis=1)`` for ``(F, M)`` matrices, as F dot products.

    A batched matrix product ``(F, 1, M) @ (F, M, 1)`` runs in the BLAS (cuBLAS on a
    GPU) without the ``(F, M)`` temporary that the product would need, about three
    times faster than multiplying and then summing.
    """
    return (A[:, None, :] @ B[:, :, None]).reshape(A.shape[0])
