"""BatchNorm1D: PyTorch (forward, gradients, running statistics), finite differences, every backend."""

import numpy as np
import pytest

from gradcheck import check_layer
from nnfs.backend import to_numpy
from nnfs.layers import BatchNorm1D


def test_matches_pytorch_over_training_steps_then_eval(backend, rng):
    torch = pytest.importorskip("torch")
    D = 5
    layer = BatchNorm1D(D, epsilon=1e-3, momentum=0.2).to(backend, "float64")
    reference = torch.nn.BatchNorm1d(D, eps=1e-3, momentum=0.2).double()
    weight, bias = rng.normal(size=D), rng.normal(size=D)
    layer.params["weight"], layer.params["bias"] = backend.asarray(weight), backend.asarray(bias)
    with torch.no_grad():
        reference.weight.copy_(torch.tensor(weight))
        reference.bias.copy_(torch.tensor(bias))
    for _ in range(3):
        X = rng.normal(loc=2.0, scale=3.0, size=(8, D))
        dY = rng.normal(size=(8, D))
        Y = layer(backend.asarray(X))
        dX = layer.backward(backend.asarray(dY))
        X_t = torch.tensor(X, requires_grad=True)
        reference.zero_grad()
        Y_t = reference(X_t)
        Y_t.backward(torch.tensor(dY))
        np.testing.assert_allclose(to_numpy(Y), Y_t.detach().numpy(), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(to_numpy(dX), X_t.grad.numpy(), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(to_numpy(layer.grads["weight"]), reference.weight.grad.numpy(), rtol=1e-10)
        np.testing.assert_allclose(to_numpy(layer.grads["bias"]), reference.bias.grad.numpy(), rtol=1e-10)
        np.testing.assert_allclose(to_numpy(layer.buffers["running_mean"]),
                                   reference.running_mean.numpy(), rtol=1e-12)
        np.testing.assert_allclose(to_numpy(layer.buffers["running_var"]),
                                   reference.running_var.numpy(), rtol=1e-12)
    layer.eval()
    reference.eval()
    X = rng.normal(size=(4, D))
    dY = rng.normal(size=(4, D))
    Y = layer(backend.asarray(X))
    dX = layer.backward(backend.asarray(dY))
    X_t = torch.tensor(X, requires_grad=True)
    Y_t = reference(X_t)
    Y_t.backward(torch.tensor(dY))
    np.testing.assert_allclose(to_numpy(Y), Y_t.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(to_numpy(dX), X_t.grad.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_gradient_check(backend, rng, training):
    layer = BatchNorm1D(4)
    layer.to(backend, "float64")
    layer.params["weight"] = backend.asarray(rng.normal(size=4))
    layer.params["bias"] = backend.asarray(rng.normal(size=4))
    layer.buffers["running_mean"] = backend.asarray(rng.normal(size=4))
    layer.buffers["running_var"] = backend.asarray(rng.uniform(0.5, 2.0, size=4))
    layer.train(training)
    errors = check_layer(layer, rng.normal(size=(6, 4)), backend, rng)
    assert max(errors.values()) < 1e-5, errors


def test_float32_stays_float32_and_state_moves(backend, rng):
    layer = BatchNorm1D(3).to(backend)
    X = backend.asarray(rng.normal(size=(5, 3)), dtype="float32")
    Y = layer(X)
    dX = layer.backward(backend.xp.ones_like(Y))
    assert Y.dtype == dX.dtype == layer.grads["weight"].dtype == np.float32
    assert all(backend.is_array(v) and v.dtype == np.float32 for v in layer.buffers.values())


def test_errors_name_the_layer():
    layer = BatchNorm1D(3).to("numpy")  # host inputs below, whatever NNFS_BACKEND says
    with pytest.raises(ValueError, match="BatchNorm1D: expected a 2-d input"):
        layer(np.zeros((2, 3, 1), dtype=np.float32))
    with pytest.raises(ValueError, match="BatchNorm1D: expected 3 features"):
        layer(np.zeros((2, 4), dtype=np.float32))
    with pytest.raises(ValueError, match="at least 2"):
        layer(np.zeros((1, 3), dtype=np.float32))
    with pytest.raises(TypeError, match="BatchNorm1D: input dtype"):
        layer(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="momentum"):
        BatchNorm1D(3, momentum=2)
    layer.eval()
    assert layer(np.ones((1, 3), dtype=np.float32)).shape == (1, 3)  # eval takes any batch


def test_config():
    assert BatchNorm1D(7, 1e-3, 0.05).get_config() == {"n_features": 7, "epsilon": 1e-3, "momentum": 0.05}
