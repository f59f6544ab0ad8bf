"""Batch normalisation for images."""

from nnfs.layers.base import check_rank
from nnfs.layers.batchnorm_base import BatchNorm


class BatchNorm2D(BatchNorm):
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
        super().__init__(n_channels, epsilon, momentum, dtype, "n_channels")

    @property
    def n_channels(self):
        return self.num_features

    def check_input(self, X):
        check_rank(self, X, 4, "(N, C, H, W)")
        self.check_rows(X, "channels", X.shape[0] * X.shape[2] * X.shape[3])

    def forward(self, X):
        N, C, H, W = X.shape
        return self.normalize_rows(channel_rows(X)).reshape(C, N, H, W).transpose(1, 0, 2, 3)

    def backward(self, dY):
        N, C, H, W = dY.shape
        return self.backward_rows(channel_rows(dY)).reshape(C, N, H, W).transpose(1, 0, 2, 3)

    def local_grad(self, X):
        """The diagonal part of dY/dX (``gamma / std``), and dY/dgamma (``X_hat``), dY/dbeta (1)."""
        N, C, H, W = X.shape
        grads = self.local_grad_rows(channel_rows(X))
        for key in ("weight", "bias"):
            grads[key] = grads[key].reshape(C, N, H, W).transpose(1, 0, 2, 3)
        return grads

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
