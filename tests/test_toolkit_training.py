"""The training toolkit end to end: new layers, optimizers, schedules and the guard together."""

import json

import numpy as np
import pytest

import nnfs
import nnfs.layers
from nnfs.activations import ReLU
from nnfs.layers import AvgPool2D, BatchNorm1D, Conv2D, Dropout, GlobalAvgPool2D, Linear
from nnfs.losses import CrossEntropyLoss
from nnfs.net import Net
from nnfs.optim import SGD, Adam, AdamW, clip_grad_norm
from nnfs.optim.schedules import CosineAnnealingLR
from nnfs.app.guard import FiniteGuard


def blobs(rng, n=200):
    """Two Gaussian classes in 4-d, separable but overlapping a little."""
    y = rng.integers(0, 2, size=n)
    X = rng.normal(size=(n, 4)) + np.where(y[:, None] == 1, 1.5, -1.5)
    return X.astype(np.float32), y


@pytest.mark.parametrize("make_optimizer", [
    lambda net: SGD(net, lr=0.1, momentum=0.9, nesterov=True),
    lambda net: Adam(net, lr=0.02),
    lambda net: AdamW(net, lr=0.02, weight_decay=0.01),
], ids=["sgd", "adam", "adamw"])
def test_mlp_with_dropout_and_batchnorm_learns(backend, make_optimizer):
    rng = np.random.default_rng(0)
    X, y = blobs(rng)
    nnfs.seed(0)
    net = Net([Linear(4, 16), BatchNorm1D(16), ReLU(), Dropout(0.2), Linear(16, 2)],
              CrossEntropyLoss(), backend=backend)
    optimizer = make_optimizer(net)
    scheduler = CosineAnnealingLR(optimizer, T_max=55, warmup_steps=5)
    guard = FiniteGuard(every=10)
    for step in range(60):
        batch = rng.choice(len(X), size=32, replace=False)
        loss = net.loss(net(X[batch]), y[batch])
        guard(loss, step)
        net.backward()
        clip_grad_norm(net, 5.0)
        optimizer.step()
        scheduler.step()
    net.eval()
    assert (net.predict(X) == y).mean() > 0.95


def test_cnn_with_average_pooling_trains_on_every_backend(backend):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(16, 1, 8, 8)).astype(np.float32)
    y = (X[:, 0, :4].mean(axis=(1, 2)) > X[:, 0, 4:].mean(axis=(1, 2))).astype(np.int64)
    nnfs.seed(0)
    net = Net([Conv2D(1, 4, 3, padding=1), ReLU(), AvgPool2D(2), GlobalAvgPool2D(), Linear(4, 2)],
              CrossEntropyLoss(), backend=backend)
    optimizer = Adam(net, lr=0.01)
    first = float(net.loss(net(X), y))
    for _ in range(30):
        net.loss(net(X), y)
        net.backward()
        optimizer.step()
    assert float(net.loss(net(X), y)) < first


@pytest.mark.parametrize("name", ["AvgPool2D", "GlobalAvgPool2D", "BatchNorm1D", "Dropout"])
def test_new_layers_are_exported_and_rebuild_from_their_config(name):
    assert name in nnfs.layers.__all__
    examples = {"AvgPool2D": AvgPool2D((3, 2), stride=1, padding=(1, 0)), "GlobalAvgPool2D": GlobalAvgPool2D(),
                "BatchNorm1D": BatchNorm1D(5, 1e-3, 0.2), "Dropout": Dropout(0.3)}
    layer = examples[name]
    config = json.loads(json.dumps(layer.get_config()))  # what a checkpoint file holds
    rebuilt = getattr(nnfs.layers, name)(**config)
    assert rebuilt.get_config() == layer.get_config()
