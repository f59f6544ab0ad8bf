"""Checks that the layer tests share: PyTorch as the oracle, and what buffer reuse must not break.

:func:`compare_with_torch` needs torch: call it from a test that takes the ``torch``
fixture (skipped without torch); the module is imported lazily here.
"""

import numpy as np

from nnfs.backend import to_numpy

#: float64 against float64: equal up to the rounding of a different summation order.
RTOL, ATOL = 1e-10, 1e-12


def tensor(array, grad=False):
    """A float64 torch tensor of a host array."""
    import torch
    return torch.tensor(np.asarray(array, np.float64), requires_grad=grad)


def assert_close(ours, theirs, what="", rtol=RTOL, atol=ATOL):
    """An nnfs array (any backend) against a torch tensor or a host array."""
    theirs = theirs.detach().numpy() if hasattr(theirs, "detach") else theirs
    np.testing.assert_allclose(to_numpy(ours), theirs, rtol=rtol, atol=atol, err_msg=what)


def compare_with_torch(ours, theirs, X, backend, rng, params=(), rtol=RTOL, atol=ATOL):
    """Forward, input gradient and the ``params`` gradients of one layer against its torch twin.

    ``ours`` is moved to ``backend`` in float64 and its ``params`` are copied into ``theirs``
    (a float64 torch module) first; the upstream gradient is random.
    """
    import torch
    ours.to(backend, "float64")
    with torch.no_grad():
        for name in params:
            getattr(theirs, name).copy_(tensor(to_numpy(ours.params[name])))
    Y = ours(backend.asarray(X))
    G = rng.normal(size=Y.shape)
    dX = ours.backward(backend.asarray(G))
    assert backend.is_array(Y) and backend.is_array(dX)
    Xt = tensor(X, grad=True)
    Yt = theirs(Xt)
    Yt.backward(tensor(G))
    assert_close(Y, Yt, "output", rtol, atol)
    assert_close(dX, Xt.grad, "input gradient", rtol, atol)
    for name in params:
        assert_close(ours.grads[name], getattr(theirs, name).grad, f"{name} gradient", rtol, atol)


def assert_leaves_inputs_alone(layer, backend, rng, shape=(4, 3, 6, 6)):
    """Forward and backward modify neither the input nor the upstream gradient, and keep float32."""
    layer.to(backend)
    X = backend.asarray(rng.normal(size=shape), dtype="float32")
    X_before = to_numpy(X).copy()
    Y = layer(X)
    dY = backend.asarray(rng.normal(size=Y.shape), dtype="float32")
    dY_before = to_numpy(dY).copy()
    dX = layer.backward(dY)
    np.testing.assert_array_equal(to_numpy(X), X_before)
    np.testing.assert_array_equal(to_numpy(dY), dY_before)
    assert Y.dtype == dX.dtype == np.float32
    assert all(g.dtype == np.float32 for g in layer.grads.values())


def assert_outputs_survive_the_next_step(layer, backend, rng, shape=(4, 3, 6, 6)):
    """Reused buffers must not overwrite arrays already handed to the caller."""
    layer.to(backend)
    X1 = backend.asarray(rng.normal(size=shape), dtype="float32")
    X2 = backend.asarray(rng.normal(size=shape), dtype="float32")
    Y1 = layer(X1)
    dY = backend.asarray(rng.normal(size=Y1.shape), dtype="float32")
    dX1 = layer.backward(dY)
    Y1_host, dX1_host = to_numpy(Y1).copy(), to_numpy(dX1).copy()
    Y2 = layer(X2)
    layer.backward(dY)
    np.testing.assert_array_equal(to_numpy(Y1), Y1_host)
    np.testing.assert_array_equal(to_numpy(dX1), dX1_host)
    assert not np.array_equal(to_numpy(Y2), Y1_host)
