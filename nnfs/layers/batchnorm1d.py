"""Batch normalisation for feature vectors."""

from nnfs.layers.base import check_rank
from nnfs.layers.batchnorm_base import BatchNorm


class BatchNorm1D(BatchNorm):
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
        super().__init__(n_features, epsilon, momentum, dtype, "n_features")

    @property
    def n_features(self):
        return self.num_features

    def check_input(self, X):
        check_rank(self, X, 2, "(N, D)")
        self.check_rows(X, "features", X.shape[0])

    # One row per feature: the transposed (D, N) view, so the shared row code applies.
    def forward(self, X):
        return self.normalize_rows(X.T).T

    def backward(self, dY):
        return self.backward_rows(dY.T).T

    def local_grad(self, X):
        """The diagonal part of dY/dX (``gamma / std``), and dY/dgamma (``X_hat``), dY/dbeta (1)."""
        grads = self.local_grad_rows(X.T)
        return {"X": grads["X"], "weight": grads["weight"].T, "bias": grads["bias"].T}

    def get_config(self):
        return {"n_features": self.n_features, "epsilon": self.epsilon, "momentum": self.momentum}
