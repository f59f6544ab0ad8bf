"""The fast paths of Conv2D, BatchNorm2D, MaxPool2D and ReLU keep their exact semantics.

Speed work reuses buffers, works in place where the cached values allow and
keeps internal memory layouts that differ from plain NCHW; these tests pin
down what must not change: finite-difference gradients, agreement with
PyTorch, float32 end to end, inputs never modified, and backward using the
values of its own forward pass.
"""

import numpy as np
import pytest

import nnfs

from nnfs.activations import ReLU
from nnfs.backend import to_numpy
from nnfs.layers import BatchNorm2D, Conv2D, Flatten, Linear, MaxPool2D
from nnfs.losses import CrossEntropyLoss
from nnfs.net import Net
from tests.gradcheck import check_layer


def away_from_kinks(rng, shape):
    """Distinct values at least 0.1 from 0: no ReLU kink or pooling tie within the finite-difference step."""
    X = rng.permutation(np.linspace(0.1, 3.0, int(np.prod(shape)))).reshape(shape)
    return X * rng.choice([-1.0, 1.0], size=shape)


@pytest.mark.parametrize("layer_fn, shape", [
    (lambda: Conv2D(3, 4, 3, padding=1), (2, 3, 5, 6)),
    (lambda: Conv2D(2, 3, (2, 3), stride=(2, 1), padding=0), (2, 2, 5, 5)),
    (lambda: Conv2D(2, 2, 3, stride=2, padding=(0, 2)), (3, 2, 6, 5)),
    (lambda: BatchNorm2D(3), (4, 3, 3, 2)),
    (lambda: BatchNorm2D(3).eval(), (4, 3, 3, 2)),
    (lambda: MaxPool2D(2), (2, 3, 4, 6)),
    (lambda: MaxPool2D(2), (2, 2, 5, 7)),                      # floor rule: last row/column dropped
    (lambda: MaxPool2D(3, stride=2, padding=1), (2, 2, 6, 5)),  # overlapping windows, -inf padding
    (lambda: MaxPool2D((2, 3), stride=(1, 2)), (1, 2, 4, 7)),
    (lambda: ReLU(), (3, 2, 4, 4)),
])
def test_gradients_match_finite_differences(layer_fn, shape, backend, rng):
    nnfs.seed(0)  # the same weights every run: the check is deterministic
    layer = layer_fn()
    if isinstance(layer, BatchNorm2D):  # non-trivial scale and shift, and running statistics
        layer.to("numpy")  # adjusted with host arrays here; check_layer moves it to `backend`
        layer.params["weight"] = layer.params["weight"] + rng.uniform(0.5, 1.5, size=3)
        layer.params["bias"] = layer.params["bias"] + rng.normal(size=3)
        layer.buffers["running_mean"] = layer.buffers["running_mean"] + rng.normal(size=3)
    errors = check_layer(layer, away_from_kinks(rng, shape), backend, rng)
    assert max(errors.values()) < 1e-5, errors


def test_max_pool_gives_a_tied_window_gradient_once(backend):
    X = backend.asarray(np.zeros((1, 1, 4, 4)), dtype="float32")  # every window a 4-way tie
    layer = MaxPool2D(2)
    layer(X)
    dY = backend.asarray(np.arange(1, 5, dtype=np.float32).reshape(1, 1, 2, 2))
    dX = to_numpy(layer.backward(dY))
    expected = np.zeros((4, 4), np.float32)
    expected[::2, ::2] = [[1, 2], [3, 4]]  # the first element of each window, row-major
    np.testing.assert_array_equal(dX[0, 0], expected)


@pytest.mark.parametrize("layer_fn", [
    lambda: Conv2D(3, 4, 3, padding=1), lambda: BatchNorm2D(3), lambda: MaxPool2D(2), lambda: ReLU()])
def test_layers_leave_their_inputs_and_upstream_gradients_alone(layer_fn, backend, rng):
    layer = layer_fn().to(backend)
    X = backend.asarray(rng.normal(size=(4, 3, 6, 6)), dtype="float32")
    X_before = to_numpy(X).copy()
    Y = layer(X)
    dY = backend.asarray(rng.normal(size=Y.shape), dtype="float32")
    dY_before = to_numpy(dY).copy()
    dX = layer.backward(dY)
    np.testing.assert_array_equal(to_numpy(X), X_before)
    np.testing.assert_array_equal(to_numpy(dY), dY_before)
    assert Y.dtype == dX.dtype == np.float32
    assert all(g.dtype == np.float32 for g in layer.grads.values())


@pytest.mark.parametrize("layer_fn", [
    lambda: Conv2D(3, 4, 3, padding=1), lambda: BatchNorm2D(3), lambda: MaxPool2D(2), lambda: ReLU()])
def test_outputs_survive_the_next_forward_and_backward(layer_fn, backend, rng):
    """Reused buffers must not overwrite arrays already handed to the caller."""
    layer = layer_fn().to(backend)
    X1 = backend.asarray(rng.normal(size=(4, 3, 6, 6)), dtype="float32")
    X2 = backend.asarray(rng.normal(size=(4, 3, 6, 6)), dtype="float32")
    Y1 = layer(X1)
    dY = backend.asarray(rng.normal(size=Y1.shape), dtype="float32")
    dX1 = layer.backward(dY)
    Y1_host, dX1_host = to_numpy(Y1).copy(), to_numpy(dX1).copy()
    Y2 = layer(X2)
    layer.backward(dY)
    np.testing.assert_array_equal(to_numpy(Y1), Y1_host)
    np.testing.assert_array_equal(to_numpy(dX1), dX1_host)
    assert not np.array_equal(to_numpy(Y2), Y1_host)


def reference_net(C=3, H=8, W=8, backend=None):
    return Net([
        Conv2D(C, 16, 3, padding=1), BatchNorm2D(16), ReLU(), MaxPool2D(2),
        Conv2D(16, 32, 3, padding=1), BatchNorm2D(32), ReLU(), MaxPool2D(2),
        Flatten(), Linear(32 * (H // 4) * (W // 4), 128), ReLU(), Linear(128, 10)],
        CrossEntropyLoss(), backend=backend)


def test_reference_network_matches_pytorch_over_three_steps(backend, rng):
    torch = pytest.importorskip("torch")
    from torch import nn

    net = reference_net(backend=backend)
    model = nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(128, 128), nn.ReLU(), nn.Linear(128, 10))
    state = net.state_dict()
    with torch.no_grad():
        for index, module in enumerate(model):
            for key, tensor in list(module.named_parameters()) + list(module.named_buffers()):
                if f"{index}.{key}" in state:
                    tensor.copy_(torch.from_numpy(state[f"{index}.{key}"]))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    for _ in range(3):
        X = rng.normal(size=(16, 3, 8, 8)).astype(np.float32)
        y = rng.integers(0, 10, size=16)
        loss = net.loss(net(X), y)
        dX = net.backward(input_grad=True)
        net.update_weights(0.05)
        Xt = torch.from_numpy(X).requires_grad_(True)
        optimizer.zero_grad()
        loss_t = nn.functional.cross_entropy(model(Xt), torch.from_numpy(y))
        loss_t.backward()
        optimizer.step()
        assert abs(float(loss) - loss_t.item()) < 1e-4
        np.testing.assert_allclose(to_numpy(dX), Xt.grad.numpy(), rtol=1e-3, atol=1e-5)
    for index, module in enumerate(model):
        for key, tensor in list(module.named_parameters()) + list(module.named_buffers()):
            name = f"{index}.{key}"
            if name in state:
                np.testing.assert_allclose(net.state_dict()[name], tensor.detach().numpy(),
                                           rtol=1e-3, atol=1e-5, err_msg=name)


def test_conv_buffers_follow_the_batch_size(backend, rng):
    """Conv2D reuses its column buffers between steps; a new batch size must get new ones."""
    nnfs.seed(0)
    layer = Conv2D(2, 3, 3, padding=1).to(backend)
    nnfs.seed(0)
    fresh = Conv2D(2, 3, 3, padding=1).to(backend)
    for batch in (4, 3, 4):
        X = backend.asarray(rng.normal(size=(batch, 2, 5, 5)), dtype="float32")
        dY = backend.asarray(rng.normal(size=(batch, 3, 5, 5)), dtype="float32")
        layer(X)
        dX = layer.backward(dY)
        fresh.cache = {}  # no buffers kept: the plain computation
        fresh(X)
        np.testing.assert_allclose(to_numpy(dX), to_numpy(fresh.backward(dY)), rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(to_numpy(layer.grads["weight"]), to_numpy(fresh.grads["weight"]),
                                   rtol=1e-6, atol=1e-6)
