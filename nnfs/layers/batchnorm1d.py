"""Batch normalisation for feature vectors."""

from nnfs.layers.base import (
    Layer, check_dtype, check_rank, get_array_module, host_ones, host_zeros, positive_int)


class BatchNorm1D(Layer):
    """Batch normalisation over ``(N, D)``: one mean and variance per feature.

    In training mode each feature is normalised with the mean and (biased)
    variance of its N values in the batch, and the running statistics are
    updated as ``running = (1 - momentum) * running + momentum * batch`` (the
    running variance takes the unbiased batch variance, as in PyTorch's
    ``BatchNorm1d``). In eval mode the running statistics are used. Then a
    learned per-feature scale and shift are applied.

    Args:
        n_features: number of features D.
        epsilon: added to the variance for stability; default 1e-5.
        momentum: weight of the newest batch in the running statistics; default 0.1.
        dtype: float32 (default) or float64.

    Shape:
        - Input: ``(N, D)``
        - Output: ``(N, D)``

    Attributes:
        params["weight"], params["bias"]: scale (ones) and shift (zeros), ``(D,)``.
        buffers["running_mean"], buffers["running_var"]: ``(D,)``, start at 0 and 1.
    """

    def __init__(self, n_features, epsilon=1e-5, momentum=0.1, dtype=None):
        super().__init__()
        self.n_features = positive_int(n_features, "n_features", "BatchNorm1D")
        if isinstance(epsilon, bool) or not isinstance(epsilon, (int, float)) or not epsilon > 0:
            raise ValueError(f"BatchNorm1D: epsilon must be positive, got {epsilon!r}")
        if isinstance(momentum, bool) or not isinstance(momentum, (int, float)) or not 0 <= momentum <= 1:
            raise ValueError(f"BatchNorm1D: momentum must be in [0, 1], got {momentum!r}")
        self.epsilon = float(epsilon)
        self.momentum = float(momentum)
        self.init_params(dtype, weight=host_ones(n_features), bias=host_zeros(n_features))
        self.buffers["running_mean"] = self.params["bias"].copy()
        self.buffers["running_var"] = self.params["weight"].copy()

    def check_input(self, X):
        check_rank(self, X, 2, "(N, D)")
        if X.shape[1] != self.n_features:
            raise ValueError(
                f"BatchNorm1D: expected {self.n_features} features, got shape {tuple(X.shape)}")
        if self.training and X.shape[0] < 2:
            raise ValueError(
                f"BatchNorm1D: training needs a batch of at least 2 (got shape {tuple(X.shape)}); "
                "use a larger batch or eval mode")
        check_dtype(self, X)

    def _statistics(self, X):
        if self.training:
            return X.mean(axis=0), X.var(axis=0)
        return self.buffers["running_mean"], self.buffers["running_var"]

    def forward(self, X):
        mean, var = self._statistics(X)
        if self.training:
            N, m = X.shape[0], self.momentum
            running_mean, running_var = self.buffers["running_mean"], self.buffers["running_var"]
            running_mean *= 1 - m
            running_mean += m * mean
            running_var *= 1 - m
            running_var += (m * N / (N - 1)) * var
        inv_std = (var + self.epsilon) ** -0.5
        X_hat = (X - mean) * inv_std
        self.cache["X_hat"], self.cache["inv_std"], self.cache["training"] = X_hat, inv_std, self.training
        return X_hat * self.params["weight"] + self.params["bias"]

    def backward(self, dY):
        X_hat, inv_std, training = self.from_cache("X_hat", "inv_std", "training")
        dgamma = (dY * X_hat).sum(axis=0)
        dbeta = dY.sum(axis=0)
        self.grads["weight"], self.grads["bias"] = dgamma, dbeta
        scale = self.params["weight"] * inv_std
        if not training:
            # The statistics were constants: the layer is a per-feature affine map.
            return dY * scale
        N = dY.shape[0]
        # d/dX of gamma * (X - mean) / std, with mean and std depending on the batch.
        return scale * (dY - dbeta / N - X_hat * (dgamma / N))

    def local_grad(self, X):
        """The diagonal part of dY/dX (``gamma / std``), and dY/dgamma (``X_hat``), dY/dbeta (1)."""
        mean, var = self._statistics(X)
        inv_std = (var + self.epsilon) ** -0.5
        return {"X": self.params["weight"] * inv_std, "weight": (X - mean) * inv_std,
                "bias": get_array_module(X).ones_like(X)}

    def get_config(self):
        return {"n_features": self.n_features, "epsilon": self.epsilon, "momentum": self.momentum}
