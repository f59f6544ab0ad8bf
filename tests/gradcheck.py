"""Finite-difference gradient checks in float64, along a random upstream gradient.

The scalar checked is ``L = sum(f(X) * G)`` with ``G`` random (never all ones,
which hides errors such as BatchNorm's input gradient being exactly zero).
Central differences perturb one element at a time on the device array itself,
so the check also runs on the strict and CuPy backends.

Every check takes the backend as a :class:`~nnfs.backend.Backend` or by name
(``"numpy"``, ``"strict"``, ``"cupy"``), as ``Net(backend=...)`` does.

Tests use the three ``assert_*`` helpers, which fail with every error and
return them; the input generators below keep finite differences away from the
points where a layer is not differentiable (ReLU's kink, pooling ties).
"""

import numpy as np

from nnfs.backend import get_backend, to_numpy

EPS = 1e-6
TOLERANCE = 1e-5


def relative_error(analytic, numeric, noise=0.0):
    """The largest elementwise ``|a - n| / max(|a|, |n|, floor)`` between two gradients.

    The floor (1e-3 of the largest numeric entry, at least 1e-8, at least ``noise``) keeps
    entries that are tiny next to the rest of the gradient from turning finite-difference
    noise into a large relative error. ``noise`` is how large finite differences of a
    gradient that is zero come out (rounding of the scalar, over the step): two gradients
    both within it are equal, 0 (a bias just before BatchNorm has a gradient of exactly zero,
    and its finite differences are noise). Shapes must agree exactly: a gradient of the
    wrong shape (an empty one, say) is an error, never silently broadcast.
    """
    analytic, numeric = np.asarray(analytic, np.float64), np.asarray(numeric, np.float64)
    assert analytic.shape == numeric.shape, (
        f"gradient shape {analytic.shape} differs from the input's {numeric.shape}")
    if analytic.size == 0 or max(np.max(np.abs(analytic)), np.max(np.abs(numeric))) <= noise:
        return 0.0
    floor = max(1e-8, 1e-3 * float(np.max(np.abs(numeric))), noise)
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


def check_layer(layer, X_host, backend, rng, eps=EPS):
    """Compare a layer's input and parameter gradients with finite differences.

    The layer is moved to ``backend`` in float64 and keeps its mode (train or eval).
    Returns ``{name: relative error}`` for ``"X"`` and every parameter.
    """
    backend = get_backend(backend)
    layer.to(backend, "float64")
    X = backend.asarray(X_host, dtype="float64")
    Y = layer(X)
    G = backend.asarray(rng.normal(size=Y.shape))

    def loss():
        return float((layer.forward(X) * G).sum())

    noise = _noise(float(abs(layer.forward(X) * G).sum()), eps)
    layer(X)
    dX = layer.backward(G)
    analytic = {"X": to_numpy(dX)}
    analytic.update({name: to_numpy(grad) for name, grad in layer.grads.items()})
    errors = {"X": relative_error(analytic["X"], numeric_gradient(loss, X, eps), noise)}
    for name in layer.params:
        errors[name] = relative_error(analytic[name], numeric_gradient(loss, layer.params[name], eps), noise)
    return errors


def _noise(magnitude, eps):
    """How large a central difference of a function of this ``magnitude`` (the sum of its terms'
    sizes) comes out from rounding alone, with a margin of 10 (100 hid a wrong gradient of
    4e-7 that finite differences still measure): float64's epsilon over the step."""
    return 10 * np.finfo(np.float64).eps * magnitude / eps


def check_loss(loss_fn, prediction_host, target, backend, eps=EPS):
    """Compare a loss's gradient for the predictions with finite differences."""
    backend = get_backend(backend)
    prediction = backend.asarray(prediction_host, dtype="float64")
    loss_fn(prediction, target)
    analytic = to_numpy(loss_fn.backward())

    def value():
        return float(loss_fn(prediction, target))

    return relative_error(analytic, numeric_gradient(value, prediction, eps))


def check_net(net, X_host, target, backend):
    """Every parameter gradient and the input gradient of a whole net, through its loss.

    The net must already be on ``backend`` in float64. Returns ``{name: relative error}``
    for ``"X"`` and every ``"<layer>.<param>"``.
    """
    backend = get_backend(backend)
    X = backend.asarray(X_host, dtype="float64")

    def loss():
        return float(net.loss(net(X), target))

    loss()
    dX = to_numpy(net.backward(input_grad=True))
    analytic = {name: to_numpy(grad).copy() for name, _, grad in net.named_parameters()}
    errors = {name: relative_error(analytic[name], numeric_gradient(loss, param))
              for name, param, _ in net.named_parameters()}
    errors["X"] = relative_error(dX, numeric_gradient(loss, X))
    return errors


def _assert_below(errors, tolerance, what):
    assert max(errors.values()) < tolerance, f"{what}: relative errors {errors}"
    return errors


def assert_layer_gradients(layer, X_host, backend, rng, tolerance=TOLERANCE):
    """:func:`check_layer`, failing with every error when one is above ``tolerance``; returns the errors."""
    return _assert_below(check_layer(layer, X_host, backend, rng), tolerance, repr(layer))


def assert_loss_gradient(loss_fn, prediction_host, target, backend, tolerance=TOLERANCE):
    """:func:`check_loss`, failing when the error is above ``tolerance``; returns the error."""
    error = check_loss(loss_fn, prediction_host, target, backend)
    _assert_below({"X": error}, tolerance, repr(loss_fn))
    return error


def assert_net_gradients(net, X_host, target, backend, tolerance=TOLERANCE):
    """:func:`check_net`, failing with every error when one is above ``tolerance``; returns the errors."""
    return _assert_below(check_net(net, X_host, target, backend), tolerance, "net")


def distinct_values(rng, shape, spacing=0.01):
    """Values at least ``spacing`` apart, in random order: no ties for max pooling to break."""
    size = int(np.prod(shape))
    return (rng.permutation(size) - size / 2).reshape(shape) * spacing


def away_from_zero(rng, shape, margin=0.1):
    """Values with ``|x| >= margin``: no element sits on the kink of ReLU or LeakyReLU."""
    return rng.choice([-1.0, 1.0], size=shape) * rng.uniform(margin, 1.0 + margin, size=shape)
