"""Finite-difference gradient checks in float64, along a random upstream gradient.

The scalar checked is ``L = sum(f(X) * G)`` with ``G`` random (never all ones,
which hides errors such as BatchNorm's input gradient being exactly zero).
Central differences perturb one element at a time on the device array itself,
so the check also runs on the strict and CuPy backends.

Every error computed here is also kept in :data:`LARGEST_ERRORS` (the largest
per layer/loss and gradient name) so that a run can report how close the
analytic gradients came.
"""

import numpy as np

from nnfs.backend import to_numpy

EPS = 1e-6
TOLERANCE = 1e-5

#: ``{"Conv2D.weight": largest relative error seen, ...}``, filled by the checks below.
LARGEST_ERRORS = {}


def relative_error(analytic, numeric):
    """The largest elementwise ``|a - n| / max(|a|, |n|, floor)`` between two gradients.

    The floor (1e-3 of the largest numeric entry, at least 1e-8) keeps entries that
    are tiny next to the rest of the gradient from turning finite-difference noise
    into a large relative error. Shapes must agree exactly: a gradient of the wrong
    shape (an empty one, say) is an error, never silently broadcast.
    """
    analytic, numeric = np.asarray(analytic, np.float64), np.asarray(numeric, np.float64)
    assert analytic.shape == numeric.shape, (
        f"gradient shape {analytic.shape} differs from the input's {numeric.shape}")
    if analytic.size == 0:
        return 0.0
    floor = max(1e-8, 1e-3 * float(np.max(np.abs(numeric))))
    scale = np.maximum(np.maximum(np.abs(analytic), np.abs(numeric)), floor)
    return float(np.max(np.abs(analytic - numeric) / scale))


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


def _record(label, errors):
    for name, error in errors.items():
        key = f"{label}.{name}"
        LARGEST_ERRORS[key] = max(LARGEST_ERRORS.get(key, 0.0), error)


def check_layer(layer, X_host, backend, rng, eps=EPS):
    """Compare a layer's input and parameter gradients with finite differences.

    The layer is moved to ``backend`` in float64 and keeps its mode (train or eval).
    Returns ``{name: relative error}`` for ``"X"`` and every parameter.
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
    _record(type(layer).__name__, errors)
    return errors


def check_loss(loss_fn, prediction_host, target, backend, eps=EPS):
    """Compare a loss's gradient for the predictions with finite differences."""
    prediction = backend.asarray(prediction_host, dtype="float64")
    loss_fn(prediction, target)
    analytic = to_numpy(loss_fn.backward())

    def value():
        return float(loss_fn(prediction, target))

    error = relative_error(analytic, numeric_gradient(value, prediction, eps))
    _record(type(loss_fn).__name__, {"X": error})
    return error


def assert_layer_gradients(layer, X_host, backend, rng, tolerance=TOLERANCE):
    """:func:`check_layer`, failing with every error when one is above ``tolerance``."""
    errors = check_layer(layer, X_host, backend, rng)
    assert max(errors.values()) < tolerance, f"{layer!r}: relative errors {errors}"
    return errors


def assert_loss_gradient(loss_fn, prediction_host, target, backend, tolerance=TOLERANCE):
    """:func:`check_loss`, failing when the error is above ``tolerance``."""
    error = check_loss(loss_fn, prediction_host, target, backend)
    assert error < tolerance, f"{loss_fn!r}: relative error {error}"
    return error


def distinct_values(rng, shape, spacing=0.01):
    """Values at least ``spacing`` apart, in random order: no ties for max pooling to break."""
    size = int(np.prod(shape))
    return (rng.permutation(size) - size / 2).reshape(shape) * spacing


def away_from_zero(rng, shape, margin=0.1):
    """Values with ``|x| >= margin``: no element sits on the kink of ReLU or LeakyReLU."""
    return rng.choice([-1.0, 1.0], size=shape) * rng.uniform(margin, 1.0 + margin, size=shape)
