"""Forward values and gradients against PyTorch in float64, with the weights copied across."""

import numpy as np
import pytest

from models import every_layer_cnn, image_batch
from nnfs.activations import LeakyReLU, ReLU, Sigmoid, Tanh
from nnfs.backend import to_numpy
from nnfs.layers import BatchNorm2D, Conv2D, Linear, MaxPool2D
from nnfs.losses import CrossEntropyLoss, MeanSquareLoss

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.torch

RTOL, ATOL = 1e-10, 1e-12


def _tensor(array, grad=False):
    return torch.tensor(np.asarray(array, np.float64), requires_grad=grad)


def _close(ours, theirs, what=""):
    theirs = theirs.detach().numpy() if hasattr(theirs, "detach") else theirs
    np.testing.assert_allclose(to_numpy(ours), theirs, rtol=RTOL, atol=ATOL, err_msg=what)


def _compare_layer(ours, theirs, X, backend, rng, params=()):
    """Forward, input gradient and parameter gradients of one layer against its torch twin."""
    ours.to(backend, "float64")
    with torch.no_grad():
        for name in params:
            getattr(theirs, name).copy_(_tensor(to_numpy(ours.params[name])))
    Y = ours(backend.asarray(X))
    G = rng.normal(size=Y.shape)
    dX = ours.backward(backend.asarray(G))
    Xt = _tensor(X, grad=True)
    Yt = theirs(Xt)
    Yt.backward(_tensor(G))
    _close(Y, Yt, "output")
    _close(dX, Xt.grad, "input gradient")
    for name in params:
        _close(ours.grads[name], getattr(theirs, name).grad, f"{name} gradient")


@pytest.mark.parametrize("kernel, stride, padding", [
    (3, 1, 0), (3, 2, 1), ((2, 3), 1, 2), ((3, 2), (2, 1), (1, 0)), (1, 1, 0), (5, 2, 2)])
def test_conv2d(backend, rng, kernel, stride, padding):
    ours = Conv2D(3, 4, kernel, stride=stride, padding=padding)
    ours.params["bias"] = ours.backend.asarray(rng.normal(size=4))
    theirs = torch.nn.Conv2d(3, 4, kernel, stride=stride, padding=padding).double()
    _compare_layer(ours, theirs, rng.normal(size=(2, 3, 9, 8)), backend, rng, ("weight", "bias"))


@pytest.mark.parametrize("kernel, stride, padding, size", [
    (2, None, 0, (8, 8)), (2, None, 0, (7, 9)), (3, 2, 1, (9, 7)), (3, 1, 1, (5, 6)),
    ((2, 3), (1, 2), (1, 1), (6, 7)), (3, None, 0, (10, 11))])
def test_maxpool2d(backend, rng, kernel, stride, padding, size):
    theirs = torch.nn.MaxPool2d(kernel, stride=stride, padding=padding)
    X = rng.permutation(2 * 3 * size[0] * size[1]).reshape((2, 3) + size) * 0.01 - 1.0  # no ties
    _compare_layer(MaxPool2D(kernel, stride, padding), theirs, X, backend, rng)


def test_batchnorm2d_train_and_running_statistics(backend, rng):
    ours = BatchNorm2D(3, momentum=0.2).to(backend, "float64")
    theirs = torch.nn.BatchNorm2d(3, momentum=0.2).double()
    ours.params["weight"] = backend.asarray(rng.uniform(0.5, 1.5, size=3))
    ours.params["bias"] = backend.asarray(rng.normal(size=3))
    for step in range(4):
        X = rng.normal(loc=step, scale=1.0 + step, size=(4, 3, 5, 6))
        theirs.zero_grad()
        _compare_layer(ours, theirs, X, backend, rng, ("weight", "bias"))
        _close(ours.buffers["running_mean"], theirs.running_mean, f"running mean, step {step}")
        _close(ours.buffers["running_var"], theirs.running_var, f"running variance, step {step}")
    ours.eval()
    theirs.eval()
    theirs.zero_grad()
    _compare_layer(ours, theirs, rng.normal(size=(2, 3, 4, 4)), backend, rng, ("weight", "bias"))


def test_linear(backend, rng):
    ours = Linear(6, 4)
    ours.params["bias"] = ours.backend.asarray(rng.normal(size=4))
    _compare_layer(ours, torch.nn.Linear(6, 4).double(), rng.normal(size=(5, 6)), backend, rng,
                   ("weight", "bias"))


@pytest.mark.parametrize("ours, theirs", [
    (ReLU, torch.nn.ReLU), (lambda: LeakyReLU(0.01), lambda: torch.nn.LeakyReLU(0.01)),
    (lambda: LeakyReLU(0.3), lambda: torch.nn.LeakyReLU(0.3)), (Sigmoid, torch.nn.Sigmoid),
    (Tanh, torch.nn.Tanh)], ids=["ReLU", "LeakyReLU", "LeakyReLU0.3", "Sigmoid", "Tanh"])
def test_activations(backend, rng, ours, theirs):
    X = 5 * rng.normal(size=(3, 2, 4, 4))
    X[0, 0, 0, :2] = [-60.0, 60.0]  # saturated Sigmoid/Tanh
    _compare_layer(ours(), theirs(), X, backend, rng)


def _compare_loss(ours, theirs, prediction, target, target_torch, backend):
    loss = ours(backend.asarray(prediction), target)
    grad = ours.backward()
    Pt = _tensor(prediction, grad=True)
    Lt = theirs(Pt, target_torch)
    Lt.backward()
    _close(loss, Lt, "loss")
    _close(grad, Pt.grad, "gradient")


@pytest.mark.parametrize("kind", ["(N,)", "(N,1)", "one-hot", "soft", "large"])
def test_cross_entropy(backend, rng, kind):
    logits = rng.normal(size=(6, 5)) * (1e3 if kind == "large" else 3)
    labels = rng.integers(0, 5, size=6)
    if kind in ("one-hot", "soft"):
        target = np.eye(5)[labels] if kind == "one-hot" else rng.dirichlet(np.ones(5), size=6)
        target_torch = _tensor(target)
    else:
        target = labels.reshape(-1, 1) if kind == "(N,1)" else labels
        target_torch = torch.tensor(labels)
    _compare_loss(CrossEntropyLoss(), torch.nn.CrossEntropyLoss(), logits, target, target_torch, backend)


@pytest.mark.parametrize("shape", [(6, 3), (4, 1)])
def test_mean_square(backend, rng, shape):
    prediction, target = rng.normal(size=shape), rng.normal(size=shape)
    _compare_loss(MeanSquareLoss(), torch.nn.MSELoss(), prediction, target, _tensor(target), backend)


def _torch_twin(net):
    """The torch.nn.Sequential matching :func:`models.every_layer_cnn`, with its weights."""
    twins = {
        "Conv2D": lambda l: torch.nn.Conv2d(l.in_channels, l.out_channels, l.kernel_size,
                                            stride=l.stride, padding=l.padding),
        "BatchNorm2D": lambda l: torch.nn.BatchNorm2d(l.n_channels, eps=l.epsilon, momentum=l.momentum),
        "ReLU": lambda l: torch.nn.ReLU(),
        "LeakyReLU": lambda l: torch.nn.LeakyReLU(l.alpha),
        "MaxPool2D": lambda l: torch.nn.MaxPool2d(l.kernel_size, stride=l.stride, padding=l.padding),
        "Sigmoid": lambda l: torch.nn.Sigmoid(),
        "Tanh": lambda l: torch.nn.Tanh(),
        "Flatten": lambda l: torch.nn.Flatten(),
        "Linear": lambda l: torch.nn.Linear(l.in_dim, l.out_dim),
    }
    model = torch.nn.Sequential(*(twins[type(layer).__name__](layer) for layer in net.layers)).double()
    with torch.no_grad():
        for layer, module in zip(net.layers, model):
            for name, value in layer.params.items():
                getattr(module, name).copy_(_tensor(to_numpy(value)))
    return model


def test_whole_cnn_training_steps(backend, rng):
    net = every_layer_cnn(backend=backend, dtype="float64")
    model = _torch_twin(net)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    for step in range(3):
        X, y = image_batch(rng, n=5)
        loss = net.loss(net(X), y)
        dX = net.backward(input_grad=True)
        Xt = _tensor(X, grad=True)
        optimizer.zero_grad()
        loss_t = torch.nn.functional.cross_entropy(model(Xt), torch.tensor(y))
        loss_t.backward()
        _close(loss, loss_t, f"loss, step {step}")
        _close(dX, Xt.grad, f"input gradient, step {step}")
        for (name, _, grad), (torch_name, param) in zip(net.named_parameters(), model.named_parameters()):
            assert name == torch_name
            _close(grad, param.grad, f"{name} gradient, step {step}")
        net.update_weights(0.1)
        optimizer.step()
    for (name, param, _), (_, torch_param) in zip(net.named_parameters(), model.named_parameters()):
        _close(param, torch_param, f"{name} after 3 steps")
    bn = net.layers[1]
    _close(bn.buffers["running_mean"], model[1].running_mean, "running mean")
    _close(bn.buffers["running_var"], model[1].running_var, "running variance")
    net.eval()
    model.eval()
    X, _ = image_batch(rng, n=5)
    _close(net(X), model(_tensor(X)), "eval output")
