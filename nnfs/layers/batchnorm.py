"""Batch normalisation for images."""

from nnfs.layers.base import (
    Layer, check_dtype, check_rank, get_array_module, host_ones, host_zeros, positive_int)


class BatchNorm2D(Layer):
    """Batch normalisation over ``(N, C, H, W)``: one mean and variance per channel.

    Internally each channel is a row of a ``(C, N*H*W)`` matrix (see
    :func:`channel_rows`); the output is returned as an ``(N, C, H, W)`` view of
    that channel-major memory, as Conv2D's is.

    In training mode each channel is normalised with the mean and (biased)
    variance of its N*H*W values in the batch, and the running statistics
    are updated as ``running = (1 - momentum) * running + momentum * batch``
    (the running variance uses the unbiased batch variance, as PyTorch does).
    In eval mode the running statistics are used instead. Then a learned
    per-channel scale and shift are applied.

    Args:
        n_channels: number of channels C.
        epsilon: added to the variance for stability; default 1e-5.
        momentum: weight of the newest batch in the running statistics; default 0.1.
        dtype: float32 (default) or float64.

    Shape:
        - Input: ``(N, C, H, W)``
        - Output: ``(N, C, H, W)``

    Attributes:
        params["weight"], params["bias"]: scale (ones) and shift (zeros), ``(C,)``.
        buffers["running_mean"], buffers["running_var"]: ``(C,)``, start at 0 and 1.
    """

    def __init__(self, n_channels, epsilon=1e-5, momentum=0.1, dtype=None):
        super().__init__()
        self.n_channels = positive_int(n_channels, "n_channels", "BatchNorm2D")
        if not epsilon > 0:
            raise ValueError(f"BatchNorm2D: epsilon must be positive, got {epsilon!r}")
        if not 0 <= momentum <= 1:
            raise ValueError(f"BatchNorm2D: momentum must be in [0, 1], got {momentum!r}")
        self.epsilon = float(epsilon)
        self.momentum = float(momentum)
        self.init_params(dtype, weight=host_ones(n_channels), bias=host_zeros(n_channels))
        self.buffers["running_mean"] = self.params["bias"].copy()
        self.buffers["running_var"] = self.params["weight"].copy()

    def check_input(self, X):
        check_rank(self, X, 4, "(N, C, H, W)")
        if X.shape[1] != self.n_channels:
            raise ValueError(
                f"BatchNorm2D: expected {self.n_channels} channels, got shape {tuple(X.shape)}")
        if self.training and X.shape[0] * X.shape[2] * X.shape[3] < 2:
            raise ValueError(
                "BatchNorm2D: training needs more than one value per channel "
                f"(got shape {tuple(X.shape)}); use a larger batch or eval mode")
        check_dtype(self, X)

    def forward(self, X):
        N, C, H, W = X.shape
        X2 = channel_rows(X)
        count = N * H * W
        if self.training:
            mean = X2.mean(axis=1)
            X_hat = X2 - mean[:, None]
            var = row_dots(X_hat, X_hat) / count  # biased: the batch's own spread
            m = self.momentum
            running_mean, running_var = self.buffers["running_mean"], self.buffers["running_var"]
            running_mean *= 1 - m
            running_mean += m * mean
            running_var *= 1 - m
            running_var += (m * count / (count - 1)) * var
        else:
            var = self.buffers["running_var"]
            X_hat = X2 - self.buffers["running_mean"][:, None]
        inv_std = (var + self.epsilon) ** -0.5
        X_hat *= inv_std[:, None]  # a fresh array of ours: normalised in place
        Y2 = X_hat * self.params["weight"][:, None]
        Y2 += self.params["bias"][:, None]
        self.cache["X_hat"] = X_hat
        self.cache["inv_std"] = inv_std
        self.cache["training"] = self.training
        return Y2.reshape(C, N, H, W).transpose(1, 0, 2, 3)

    def backward(self, dY):
        X_hat, inv_std, training = self.from_cache("X_hat", "inv_std", "training")
        N, C, H, W = dY.shape
        dY2 = channel_rows(dY)
        dgamma = row_dots(dY2, X_hat)
        dbeta = dY2.sum(axis=1)
        self.grads["weight"] = dgamma
        self.grads["bias"] = dbeta
        scale = (self.params["weight"] * inv_std)[:, None]
        if not training:
            # The statistics were constants: the layer is a per-channel affine map.
            dX2 = dY2 * scale
        else:
            # d/dX of gamma * (X - mean) / std, with mean and std depending on the batch:
            # gamma / std * (dY - mean(dY) - X_hat * mean(dY * X_hat)), per channel.
            count = N * H * W
            dX2 = dY2 - (dbeta / count)[:, None]
            dX2 -= X_hat * (dgamma / count)[:, None]
            dX2 *= scale
        return dX2.reshape(C, N, H, W).transpose(1, 0, 2, 3)

    def local_grad(self, X):
        """The diagonal part of dY/dX (``gamma / std``), and dY/dgamma (``X_hat``), dY/dbeta (1)."""
        axes = (0, 2, 3)
        if self.training:
            mean, var = X.mean(axis=axes), X.var(axis=axes)
        else:
            mean, var = self.buffers["running_mean"], self.buffers["running_var"]
        inv_std = (var + self.epsilon) ** -0.5
        X_hat = (X - mean[:, None, None]) * inv_std[:, None, None]
        return {"X": self.params["weight"] * inv_std, "weight": X_hat,
                "bias": get_array_module(X).ones_like(X)}

    def get_config(self):
        return {"n_channels": self.n_channels, "epsilon": self.epsilon, "momentum": self.momentum}


def channel_rows(X):
    """``(N, C, H, W)`` as a ``(C, N*H*W)`` matrix: one row per channel.

    Every BatchNorm statistic is then a reduction along contiguous rows, and every
    per-channel scale a broadcast over rows. The images Conv2D produces already lie
    in memory channel by channel (its matrix product gives ``(C, N*OH*OW)``), so for
    them this is a free view; other layouts are copied once.
    """
    return X.transpose(1, 0, 2, 3).reshape(X.shape[1], -1)


def row_dots(A, B):
    """``(A * B).sum(axis=1)`` for ``(C, M)`` matrices, as C dot products.

    A batched matrix product ``(C, 1, M) @ (C, M, 1)`` runs in the BLAS (cuBLAS on a
    GPU) without the ``(C, M)`` temporary that the product would need, about three
    times faster than multiplying and then summing.
    """
    return (A[:, None, :] @ B[:, :, None]).reshape(A.shape[0])
