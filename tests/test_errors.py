"""User errors: each names the layer or loss, what it expected and what it got."""

import re

import numpy as np
import pytest

from nnfs.activations import LeakyReLU, ReLU, Sigmoid, Tanh
from nnfs.layers import BatchNorm2D, Conv2D, Flatten, Linear, MaxPool2D
from nnfs.losses import CrossEntropyLoss, MeanSquareLoss
from nnfs.net import Net

F32 = np.float32


@pytest.mark.parametrize("layer, shape", [
    (Linear(4, 2), (3, 4, 1)),
    (Linear(4, 2), (4,)),
    (Conv2D(3, 2), (3, 8, 8)),
    (Conv2D(3, 2), (1, 1, 3, 8, 8)),
    (MaxPool2D(2), (4, 4)),
    (BatchNorm2D(3), (2, 3, 4)),
    (Flatten(), (5,)),
])
def test_wrong_rank(layer, shape):
    name = type(layer).__name__
    with pytest.raises(ValueError, match=rf"{name}.*{re.escape(str(shape))}"):
        layer(np.zeros(shape, F32))


@pytest.mark.parametrize("layer, shape, expected", [
    (Linear(4, 2), (3, 5), "4"),
    (Conv2D(3, 2), (2, 1, 8, 8), "3"),
    (BatchNorm2D(3), (2, 4, 5, 5), "3"),
])
def test_wrong_channels_or_features(layer, shape, expected):
    name = type(layer).__name__
    with pytest.raises(ValueError, match=rf"{name}: expected {expected} .*{re.escape(str(shape))}"):
        layer(np.zeros(shape, F32))


@pytest.mark.parametrize("layer", [Conv2D(1, 1, 5), MaxPool2D(5), Conv2D(1, 1, (2, 6), padding=(0, 1))])
def test_input_smaller_than_the_kernel(layer):
    with pytest.raises(ValueError, match=type(layer).__name__):
        layer(np.zeros((1, 1, 4, 3), F32))


@pytest.mark.parametrize("layer, shape", [
    (Linear(4, 2), (3, 4)), (Conv2D(1, 2), (2, 1, 5, 5)), (BatchNorm2D(2), (2, 2, 3, 3))])
def test_dtype_mismatch_is_a_type_error(layer, shape):
    with pytest.raises(TypeError, match=rf"{type(layer).__name__}.*float64.*float32"):
        layer(np.zeros(shape, np.float64))


def test_a_non_array_input_is_a_type_error():
    with pytest.raises(TypeError, match="Linear"):
        Linear(2, 2)([[1.0, 2.0]])


@pytest.mark.parametrize("layer", [
    Linear(2, 2), Conv2D(1, 1), MaxPool2D(), BatchNorm2D(2), Flatten(), ReLU(), LeakyReLU(),
    Sigmoid(), Tanh()])
def test_backward_before_forward(layer):
    with pytest.raises(RuntimeError, match=rf"{type(layer).__name__}.*before a forward"):
        layer.backward(np.ones((2, 2, 3, 3), F32))


@pytest.mark.parametrize("loss", [CrossEntropyLoss(), MeanSquareLoss()])
def test_loss_backward_before_forward(loss):
    with pytest.raises(RuntimeError, match=type(loss).__name__):
        loss.backward()


LOGITS = np.zeros((4, 3), F32)


@pytest.mark.parametrize("labels", [np.array([0, 1, 3, 0]), np.array([0, -1, 2, 0])])
def test_labels_out_of_range(labels):
    with pytest.raises(ValueError, match=r"CrossEntropyLoss: labels must be in \[0, 3\)"):
        CrossEntropyLoss()(LOGITS, labels)


@pytest.mark.parametrize("labels", [np.zeros(3, int), np.zeros((4, 2), int), np.zeros((4, 3, 1), int),
                                    np.zeros((2, 2), int)])
def test_labels_of_the_wrong_shape(labels):
    with pytest.raises(ValueError, match="CrossEntropyLoss"):
        CrossEntropyLoss()(LOGITS, labels)


@pytest.mark.parametrize("labels", [np.array([0.0, 1.0, 2.0, 0.0]), np.array([[0.0], [1.0], [2.0], [0.0]]),
                                    np.array([True, False, True, False])])
def test_float_or_bool_labels_are_refused(labels):
    with pytest.raises(TypeError, match="CrossEntropyLoss: class labels must be integers"):
        CrossEntropyLoss()(LOGITS, labels)


def test_labels_must_be_an_array():
    with pytest.raises(TypeError, match="CrossEntropyLoss"):
        CrossEntropyLoss()(LOGITS, [0, 1, 2, 0])


@pytest.mark.parametrize("loss", [CrossEntropyLoss(), MeanSquareLoss()])
def test_predictions_must_be_two_dimensional(loss):
    with pytest.raises(ValueError, match=rf"{type(loss).__name__}: expected predictions of shape \(N, D\)"):
        loss(np.zeros((4, 3, 1), F32), np.zeros((4, 3, 1), F32))


def test_mean_square_shape_mismatch():
    with pytest.raises(ValueError, match=r"MeanSquareLoss: targets of shape \(4, 2\) .*\(4, 3\)"):
        MeanSquareLoss()(LOGITS, np.zeros((4, 2), F32))


@pytest.mark.parametrize("make, match", [
    (lambda: Conv2D(0, 2), "in_channels"),
    (lambda: Conv2D(1, 2, kernel_size=0), "kernel_size"),
    (lambda: Conv2D(1, 2, stride=(1, 0)), "stride"),
    (lambda: Conv2D(1, 2, padding=-1), "padding"),
    (lambda: Linear(0, 2), "in_dim"),
    (lambda: MaxPool2D(0), "kernel_size"),
    (lambda: BatchNorm2D(0), "n_channels"),
])
def test_bad_constructor_arguments(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_bad_kernel_type():
    with pytest.raises(TypeError, match="Conv2D: kernel_size"):
        Conv2D(1, 2, kernel_size=2.5)


def test_net_refuses_what_is_not_a_layer_or_loss():
    with pytest.raises(TypeError, match="layer 1"):
        Net([Linear(2, 2), "relu"])
    with pytest.raises(TypeError, match="loss"):
        Net([Linear(2, 2)], loss=ReLU())


def test_net_without_a_loss():
    net = Net([Linear(2, 2)])
    with pytest.raises(RuntimeError, match="without a loss"):
        net.loss(net(np.ones((1, 2))), np.zeros(1, int))
    with pytest.raises(RuntimeError, match="without a loss"):
        net.backward()
