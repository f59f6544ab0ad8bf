"""Small networks and data shared by the tests."""

import nnfs
from nnfs.activations import LeakyReLU, ReLU, Sigmoid, Tanh
from nnfs.layers import BatchNorm2D, Conv2D, Flatten, Linear, MaxPool2D
from nnfs.losses import CrossEntropyLoss, MeanSquareLoss
from nnfs.net import Net


def every_layer_cnn(loss=None, backend=None, dtype=None, n_classes=3, seed=0):
    """A CNN for ``(N, 2, 9, 8)`` images that uses every layer and activation nnfs has."""
    nnfs.seed(seed)
    layers = [
        Conv2D(2, 4, 3, padding=1), BatchNorm2D(4), ReLU(), MaxPool2D(2),      # -> (4, 4, 4)
        Conv2D(4, 5, (2, 3), stride=1, padding=(1, 0)), LeakyReLU(0.1),         # -> (5, 5, 2)
        MaxPool2D(3, stride=2, padding=1), Sigmoid(),                           # -> (5, 3, 1)
        Flatten(), Linear(15, 6), Tanh(), Linear(6, n_classes),
    ]
    return Net(layers, loss if loss is not None else CrossEntropyLoss(), backend=backend, dtype=dtype)


def image_batch(rng, n=4, n_classes=3):
    """Images ``(n, 2, 9, 8)`` and integer labels ``(n,)``."""
    return rng.normal(size=(n, 2, 9, 8)), rng.integers(0, n_classes, size=n)


def mlp(backend, dtype="float64", seed=0):
    """``Linear(5, 4) ReLU Linear(4, 3)`` with a mean-square loss: the optimizers' test net."""
    nnfs.seed(seed)
    return Net([Linear(5, 4), ReLU(), Linear(4, 3)], MeanSquareLoss(), backend=backend, dtype=dtype)


def random_grads(net, rng):
    """``{parameter name: random host array}`` in the shapes of ``net``'s parameters."""
    return {name: rng.normal(size=param.shape) for name, param, _ in net.named_parameters()}


def set_grads(net, grads, backend):
    """Put the host arrays ``grads`` (by parameter name) into the net's gradients on ``backend``."""
    for index, layer in enumerate(net.layers):
        for key in layer.params:
            layer.grads[key] = backend.asarray(grads[f"{index}.{key}"], dtype=net.dtype)
