"""Fully connected layer."""

import math

from nnfs.backend import get_array_module, host_rng, host_zeros
from nnfs.checks import integer
from nnfs.layers.base import Layer, check_dtype, check_rank


class Linear(Layer):
    """``Y = X @ W.T + b``.

    Weights are drawn from N(0, 2 / in_dim) (He initialisation, suited to ReLU
    networks); the bias starts at zero.

    Args:
        in_dim: number of input features.
        out_dim: number of output features.
        dtype: float32 (default) or float64.

    Shape:
        - Input: ``(N, in_dim)``
        - Output: ``(N, out_dim)``

    Attributes:
        params["weight"]: ``(out_dim, in_dim)``, as in PyTorch.
        params["bias"]: ``(out_dim,)``.
    """

    def __init__(self, in_dim, out_dim, dtype=None):
        super().__init__()
        shapes = self.array_shapes(in_dim, out_dim)
        self.out_dim, self.in_dim = shapes["weight"]
        std = math.sqrt(2.0 / self.in_dim)
        self.init_params(
            dtype,
            weight=host_rng().normal(0.0, std, size=shapes["weight"]),
            bias=host_zeros(shapes["bias"]))

    @classmethod
    def array_shapes(cls, in_dim, out_dim, dtype=None):
        """``{"weight": (out_dim, in_dim), "bias": (out_dim,)}``, the sizes checked (see ``Layer``)."""
        in_dim = integer("Linear", "in_dim", in_dim, minimum=1)
        out_dim = integer("Linear", "out_dim", out_dim, minimum=1)
        return {"weight": (out_dim, in_dim), "bias": (out_dim,)}

    def check_input(self, X):
        check_rank(self, X, 2, "(N, in_dim)")
        if X.shape[1] != self.in_dim:
            raise ValueError(
                f"Linear: expected {self.in_dim} input features, got shape {tuple(X.shape)}")
        check_dtype(self, X)

    def forward(self, X):
        self.cache["X"] = X
        return X @ self.params["weight"].T + self.params["bias"]

    def backward(self, dY):
        X = self.from_cache("X")
        # dot, not @: a small result of a long sum (see nnfs.parallel, "the interpreter lock").
        self.grads["weight"] = get_array_module(dY).dot(dY.T, X)
        self.grads["bias"] = dY.sum(axis=0)
        if not self.input_grad:
            return None
        return dY @ self.params["weight"]

    def local_grad(self, X):
        """dY/dX is the weight matrix, dY/dW is the input, dY/db is one.

        Shape:
            - X: ``(N, in_dim)``
            - ``"X"``: ``(out_dim, in_dim)``, the weight (each sample's Jacobian)
            - ``"weight"``: ``(N, in_dim)``, X itself
            - ``"bias"``: ``(out_dim,)``, ones
        """
        xp = get_array_module(X)
        return {"X": self.params["weight"], "weight": X, "bias": xp.ones_like(self.params["bias"])}

    def get_config(self):
        return {"in_dim": self.in_dim, "out_dim": self.out_dim}
