"""Flatten images into feature vectors."""

import math

from nnfs.backend import get_array_module
from nnfs.layers.base import Layer, check_float


class Flatten(Layer):
    """Reshape ``(N, C, H, W)`` (or any ``(N, ...)``) into ``(N, C*H*W)``.

    Shape:
        - Input: ``(N, *)`` with at least two axes
        - Output: ``(N, product of the other axes)``
    """

    def check_input(self, X):
        super().check_input(X)
        if X.ndim < 2:
            raise ValueError(f"Flatten: expected an input (N, ...) with at least 2 axes, got shape {tuple(X.shape)}")
        check_float(self, X)

    def forward(self, X):
        self.cache["input_shape"] = X.shape
        # The feature count spelled out: reshape(N, -1) cannot infer it for an empty batch.
        return X.reshape(X.shape[0], math.prod(X.shape[1:]))

    def backward(self, dY):
        return dY.reshape(self.from_cache("input_shape"))

    def local_grad(self, X):
        """Flattening moves values without changing them: dY/dX is one everywhere.

        Shape:
            - X: ``(N, ...)``; ``"X"``: the same shape
        """
        return {"X": get_array_module(X).ones_like(X)}
