"""Whole training runs: an MLP learns two spirals, a CNN learns synthetic shapes (a few seconds each),
and the training toolkit (every layer, optimizer, schedule, clipping and the guard) learns together."""

import numpy as np
import pytest

import nnfs
from nnfs.activations import ReLU
from nnfs.app.guard import FiniteGuard
from nnfs.layers import (
    AvgPool2D, BatchNorm1D, BatchNorm2D, Conv2D, Dropout, Flatten, GlobalAvgPool2D, Linear, MaxPool2D)
from nnfs.losses import CrossEntropyLoss
from nnfs.net import Net
from nnfs.optim import SGD, Adam, AdamW, clip_grad_norm
from nnfs.optim.schedules import CosineAnnealingLR


def two_spirals(n_per_class, rng):
    """Two interleaved spirals of 1.5 turns each, in the unit disc."""
    radius = np.sqrt(rng.uniform(0, 1, n_per_class)) * 3 * np.pi
    X, y = [], []
    for label in (0, 1):
        angle = radius + label * np.pi
        points = np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=1) / (3 * np.pi)
        X.append(points + rng.normal(scale=0.02, size=points.shape))
        y.append(np.full(n_per_class, label))
    return np.concatenate(X), np.concatenate(y)


def line_images(n, rng, size=12):
    """Noisy ``(n, 1, size, size)`` images of a short line, placed anywhere: horizontal,
    vertical, diagonal or anti-diagonal (the class)."""
    X = rng.normal(scale=0.3, size=(n, 1, size, size))
    y = rng.integers(0, 4, size=n)
    offsets = np.arange(-2, 3)
    directions = [(0 * offsets, offsets), (offsets, 0 * offsets), (offsets, offsets), (offsets, -offsets)]
    for image, label, (row, col) in zip(X, y, rng.integers(2, size - 2, size=(n, 2))):
        rows, cols = directions[label]
        image[0, row + rows, col + cols] += 1.0
    return X, y


def gaussian_blobs(rng, n=200):
    """Two Gaussian classes in 4-d, separable but overlapping a little."""
    y = rng.integers(0, 2, size=n)
    X = rng.normal(size=(n, 4)) + np.where(y[:, None] == 1, 1.5, -1.5)
    return X.astype(np.float32), y


def train(net, X, y, epochs, batch_size, lr, rng):
    for _ in range(epochs):
        order = rng.permutation(len(X))
        for start in range(0, len(X), batch_size):
            batch = order[start:start + batch_size]
            net.loss(net(X[batch]), y[batch])
            net.backward()
            net.update_weights(lr)
    return net


def test_mlp_learns_two_spirals():
    rng = np.random.default_rng(0)
    X, y = two_spirals(100, rng)
    nnfs.seed(0)
    net = Net([Linear(2, 64), ReLU(), Linear(64, 64), ReLU(), Linear(64, 2)], CrossEntropyLoss())
    before = (net.predict(X) == y).mean()
    train(net, X, y, epochs=400, batch_size=20, lr=0.1, rng=rng)
    accuracy = (net.predict(X) == y).mean()
    assert before < 0.8 and accuracy >= 0.95, (before, accuracy)


def test_cnn_learns_line_directions():
    rng = np.random.default_rng(0)
    X, y = line_images(400, rng)
    X_test, y_test = line_images(200, rng)
    nnfs.seed(0)
    net = Net([Conv2D(1, 8, 3, padding=1), BatchNorm2D(8), ReLU(), MaxPool2D(2),
               Conv2D(8, 8, 3, padding=1), ReLU(), MaxPool2D(3),
               Flatten(), Linear(8 * 2 * 2, 4)], CrossEntropyLoss())
    train(net, X, y, epochs=30, batch_size=20, lr=0.05, rng=rng)
    net.eval()
    accuracy = (net.predict(X) == y).mean()
    test_accuracy = (net.predict(X_test) == y_test).mean()
    # Held-out images too: the lines sit at new places, so the net must have learned the shapes.
    assert accuracy >= 0.95 and test_accuracy >= 0.85, (accuracy, test_accuracy)


@pytest.mark.parametrize("make_optimizer", [
    lambda net: SGD(net, lr=0.1, momentum=0.9, nesterov=True),
    lambda net: Adam(net, lr=0.02),
    lambda net: AdamW(net, lr=0.02, weight_decay=0.01),
], ids=["sgd", "adam", "adamw"])
def test_mlp_with_dropout_and_batchnorm_learns(backend, make_optimizer):
    rng = np.random.default_rng(0)
    X, y = gaussian_blobs(rng)
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
