"""AvgPool2D and GlobalAvgPool2D: PyTorch, finite differences, every backend."""

import numpy as np
import pytest

from gradcheck import check_layer
from nnfs.backend import to_numpy
from nnfs.layers import AvgPool2D, GlobalAvgPool2D

POOLS = [
    dict(kernel_size=2),
    dict(kernel_size=3, stride=1),
    dict(kernel_size=(2, 3), stride=(1, 2)),
    dict(kernel_size=3, stride=2, padding=1),
    dict(kernel_size=(3, 2), stride=2, padding=(1, 0)),
]
IDS = ["k2", "k3s1-overlap", "rect", "k3s2p1", "rect-pad"]


@pytest.mark.parametrize("kwargs", POOLS, ids=IDS)
def test_avgpool_matches_pytorch(backend, rng, kwargs):
    torch = pytest.importorskip("torch")
    X = rng.normal(size=(2, 3, 7, 6))  # odd sizes: the floor rule drops a row or a column
    layer = AvgPool2D(**kwargs)
    Y = layer(backend.asarray(X))
    dY = rng.normal(size=Y.shape)
    dX = layer.backward(backend.asarray(dY))
    X_t = torch.tensor(X, requires_grad=True)
    Y_t = torch.nn.AvgPool2d(**kwargs)(X_t)
    Y_t.backward(torch.tensor(dY))
    np.testing.assert_allclose(to_numpy(Y), Y_t.detach().numpy(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(to_numpy(dX), X_t.grad.numpy(), rtol=1e-12, atol=1e-14)
    assert backend.is_array(Y) and backend.is_array(dX)


@pytest.mark.parametrize("kwargs", POOLS, ids=IDS)
def test_avgpool_gradient_check(backend, rng, kwargs):
    errors = check_layer(AvgPool2D(**kwargs), rng.normal(size=(2, 2, 5, 6)), backend, rng)
    assert errors["X"] < 1e-7


def test_global_avgpool_matches_pytorch_and_gradient_check(backend, rng):
    torch = pytest.importorskip("torch")
    X = rng.normal(size=(3, 4, 5, 2))
    layer = GlobalAvgPool2D()
    Y = layer(backend.asarray(X))
    assert Y.shape == (3, 4)
    dY = rng.normal(size=(3, 4))
    dX = layer.backward(backend.asarray(dY))
    X_t = torch.tensor(X, requires_grad=True)
    Y_t = torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())(X_t)
    Y_t.backward(torch.tensor(dY))
    np.testing.assert_allclose(to_numpy(Y), Y_t.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(to_numpy(dX), X_t.grad.numpy(), rtol=1e-12)
    assert check_layer(GlobalAvgPool2D(), rng.normal(size=(2, 3, 3, 4)), backend, rng)["X"] < 1e-7


@pytest.mark.parametrize("layer", [AvgPool2D(3, stride=2, padding=1), GlobalAvgPool2D()],
                         ids=["avg", "global"])
def test_float32_stays_float32(backend, rng, layer):
    X = backend.asarray(rng.normal(size=(2, 3, 6, 6)), dtype="float32")
    Y = layer(X)
    dX = layer.backward(backend.xp.ones_like(Y))
    assert Y.dtype == np.float32 and dX.dtype == np.float32 and dX.shape == X.shape


def test_errors_name_the_layer():
    with pytest.raises(ValueError, match="AvgPool2D: padding"):
        AvgPool2D(2, padding=2)
    with pytest.raises(ValueError, match="AvgPool2D: input of spatial size"):
        AvgPool2D(4)(np.zeros((1, 1, 3, 3)))
    with pytest.raises(ValueError, match="AvgPool2D: expected a 4-d input"):
        AvgPool2D(2)(np.zeros((3, 3)))
    with pytest.raises(ValueError, match="GlobalAvgPool2D: expected a 4-d input"):
        GlobalAvgPool2D()(np.zeros((2, 3)))
    with pytest.raises(TypeError, match="AvgPool2D: kernel_size"):
        AvgPool2D(2.5)


def test_config():
    assert AvgPool2D(3, 2, 1).get_config() == {"kernel_size": (3, 3), "stride": (2, 2), "padding": (1, 1)}
    assert AvgPool2D((2, 3)).get_config()["stride"] == (2, 3)
    assert GlobalAvgPool2D().get_config() == {}
