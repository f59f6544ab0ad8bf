"""Finite-difference gradient checks in float64, along a random upstream gradient.

Every check takes the backend as a :class:`~nnfs.backend.Backend` or by name
(``"numpy"``, ``"strict"``, ``"cupy"``), as ``Net(backend=...)`` does.

The rules (the random upstream gradient, the relative error and its floor, the noise
allowance, the step) are those of :mod:`nnfs.gradcheck`, the checker users call on their
own layers, which this module calls; unlike it, these checks run on the layer itself.
Tests use the three ``assert_*`` helpers, which fail with every error and
return them; the input generators below keep finite differences away from the
points where a layer is not differentiable (ReLU's kink, pooling ties).
"""

import numpy as np

from nnfs.backend import get_backend, to_numpy
from nnfs.gradcheck import EPS, TOLERANCE, GradientErrors, layer_errors, loss_error, numeric_gradient, relative_error


def check_layer(layer, X_host, backend, rng, eps=EPS):
    """Compare a layer's input and parameter gradients with finite differences.

    The layer is moved to ``backend`` in float64 and keeps its mode (train or eval); unlike
    :func:`nnfs.gradcheck.check_layer` the check runs on the layer itself, which is left
    holding the analytic gradients (tests look at them). Returns ``{name: relative error}``
    for ``"X"`` and every parameter.
    """
    backend = get_backend(backend)
    layer.to(backend, "float64")
    X = backend.asarray(X_host, dtype="float64")
    G = backend.asarray(rng.normal(size=layer(X).shape))
    return layer_errors(layer, X, G, eps)


def check_loss(loss_fn, prediction_host, target, backend, eps=EPS):
    """Compare a loss's gradient for the predictions with finite differences."""
    prediction = get_backend(backend).asarray(prediction_host, dtype="float64")
    return loss_error(loss_fn, prediction, target, eps)


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
    failure = GradientErrors(what, errors, tolerance).message  # the verdict users get
    assert failure is None, failure
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
