"""Batch normalisation for images."""

from nnfs.layers.base import (
    Layer, check_dtype, check_rank, get_array_module, host_ones, host_zeros, positive_int)


class BatchNorm2D(Layer):
    """Batch normalisation over ``(N, C, H, W)``: one mean and variance per channel.

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
        axes = (0, 2, 3)
        if self.training:
            mean = X.mean(axis=axes)
            var = X.var(axis=axes)
            count = X.size // X.shape[1]
            m = self.momentum
            running_mean, running_var = self.buffers["running_mean"], self.buffers["running_var"]
            running_mean *= 1 - m
            running_mean += m * mean
            running_var *= 1 - m
            running_var += (m * count / (count - 1)) * var
        else:
            mean, var = self.buffers["running_mean"], self.buffers["running_var"]
        inv_std = (var + self.epsilon) ** -0.5
        X_hat = (X - mean[:, None, None]) * inv_std[:, None, None]
        self.cache["X_hat"] = X_hat
        self.cache["inv_std"] = inv_std
        self.cache["training"] = self.training
        return X_hat * self.params["weight"][:, None, None] + self.params["bias"][:, None, None]

    def backward(self, dY):
        X_hat, inv_std, training = self.from_cache("X_hat", "inv_std", "training")
        axes = (0, 2, 3)
        dgamma = (dY * X_hat).sum(axis=axes)
        dbeta = dY.sum(axis=axes)
        self.grads["weight"] = dgamma
        self.grads["bias"] = dbeta
        scale = (self.params["weight"] * inv_std)[:, None, None]
        if not training:
            # The statistics were constants: the layer is a per-channel affine map.
            return dY * scale
        count = dY.size // dY.shape[1]
        # d/dX of gamma * (X - mean) / std, with mean and std depending on the batch.
        return scale * (dY - (dbeta / count)[:, None, None] - X_hat * (dgamma / count)[:, None, None])

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
