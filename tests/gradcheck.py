"""Finite-difference gradient checks in float64, along a random upstream gradient.

The scalar checked is ``L = sum(f(X) * G)`` with ``G`` random (never all ones,
which hides errors such as BatchNorm's input gradient being exactly zero).
Central differences perturb one element at a time on the host copy.
"""

import numpy as np

from nnfs.backend import to_numpy

EPS = 1e-6


def relative_error(analytic, numeric):
    """max |a - n| / max(|a|, |n|, 1e-8), elementwise over the arrays (0 when both are zero)."""
    analytic, numeric = np.asarray(analytic, np.float64), np.asarray(numeric, np.float64)
    scale = np.maximum(np.maximum(np.abs(analytic), np.abs(numeric)), 1e-8)
    return float(np.max(np.abs(analytic - numeric) / scale)) if analytic.size else 0.0


def numeric_gradient(scalar_fn, array, eps=EPS):
    """dL/d(array) by central differences; ``array`` is a float64 device array changed in place."""
    host = to_numpy(array)
    grad = np.zeros_like(host)
    for index in np.ndindex(host.shape):
        original = host[index]
        array[index] = original + eps
        plus = scalar_fn()
        array[index] = original - eps
        minus = scalar_fn()
        array[index] = original
        grad[index] = (plus - minus) / (2 * eps)
    return grad


def check_layer(layer, X_host, backend, rng, eps=EPS):
    """Compare a layer's input and parameter gradients with finite differences.

    The layer is moved to ``backend`` in float64. Returns ``{name: relative error}``
    for ``"X"`` and every parameter.
    """
    layer.to(backend, "float64")
    X = backend.asarray(X_host, dtype="float64")
    Y = layer(X)
    G = backend.asarray(rng.normal(size=Y.shape))

    def loss():
        return float((layer.forward(X) * G).sum())

    layer(X)
    dX = layer.backward(G)
    analytic = {"X": to_numpy(dX)}
    analytic.update({name: to_numpy(grad) for name, grad in layer.grads.items()})
    errors = {"X": relative_error(analytic["X"], numeric_gradient(loss, X, eps))}
    for name in layer.params:
        errors[name] = relative_error(analytic[name], numeric_gradient(loss, layer.params[name], eps))
    return errors


def check_loss(loss_fn, prediction_host, target, backend, eps=EPS):
    """Compare a loss's gradient for the predictions with finite differences."""
    prediction = backend.asarray(prediction_host, dtype="float64")
    loss_fn(prediction, target)
    analytic = to_numpy(loss_fn.backward())

    def value():
        return float(loss_fn(prediction, target))

    return relative_error(analytic, numeric_gradient(value, prediction, eps))
