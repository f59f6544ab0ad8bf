"""ReLU, LeakyReLU, Sigmoid, Tanh: gradients, values, PyTorch, and the overflow cases."""

import numpy as np
import pytest

from nnfs.activations import LeakyReLU, ReLU, Sigmoid, Tanh
from nnfs.backend import to_numpy
from tests.gradcheck import assert_layer_gradients, away_from_zero
from tests.layercheck import (
    assert_leaves_inputs_alone, assert_outputs_survive_the_next_step, compare_with_torch)

ACTIVATIONS = [ReLU, LeakyReLU, lambda: LeakyReLU(alpha=0.2), Sigmoid, Tanh]
IDS = ["ReLU", "LeakyReLU", "LeakyReLU0.2", "Sigmoid", "Tanh"]

REFERENCE = {
    "ReLU": lambda x: np.maximum(x, 0),
    "LeakyReLU": lambda x: np.where(x > 0, x, 0.01 * x),
    "LeakyReLU0.2": lambda x: np.where(x > 0, x, 0.2 * x),
    "Sigmoid": lambda x: 1 / (1 + np.exp(-x)),
    "Tanh": np.tanh,
}


@pytest.mark.parametrize("make", ACTIVATIONS, ids=IDS)
def test_gradients_match_finite_differences(backend, rng, make):
    # Away from 0: the kink of ReLU and LeakyReLU would break finite differences.
    assert_layer_gradients(make(), 3 * away_from_zero(rng, (3, 2, 4, 5)), backend, rng)


@pytest.mark.parametrize("name, make", list(zip(IDS, ACTIVATIONS)), ids=IDS)
def test_values_match_the_definition(backend, rng, name, make):
    X = 4 * rng.normal(size=(5, 7))
    np.testing.assert_allclose(to_numpy(make()(backend.asarray(X))), REFERENCE[name](X),
                               rtol=1e-12, atol=1e-300)


def test_leaky_relu_works_and_keeps_its_slope(backend):
    # Pitfall 4: the original LeakyReLU never received its slope and always crashed.
    layer = LeakyReLU(alpha=0.1)
    Y = layer(backend.asarray([[-2.0, 3.0]]))
    np.testing.assert_allclose(to_numpy(Y), [[-0.2, 3.0]])
    np.testing.assert_allclose(to_numpy(layer.backward(backend.asarray([[1.0, 1.0]]))), [[0.1, 1.0]])
    assert LeakyReLU().alpha == 0.01


def test_leaky_relu_refuses_a_non_number_slope():
    with pytest.raises(TypeError, match="LeakyReLU"):
        LeakyReLU(alpha="0.1")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_sigmoid_saturates_without_overflow(backend, dtype):
    # Pitfall 10: exp(-x) overflowed for large negative x.
    layer = Sigmoid()
    X = backend.asarray([[-1000.0, -100.0, 0.0, 100.0, 1000.0]], dtype=dtype)
    # numpy.errstate sees NumPy's arithmetic only (numpy and strict backends): on CuPy an
    # overflow inside would pass unseen, so the results are checked for finiteness as well.
    with np.errstate(over="raise", divide="raise", invalid="raise"):  # underflow to 0 is right
        Y = to_numpy(layer(X))
        dX = to_numpy(layer.backward(backend.asarray(np.ones((1, 5)), dtype=dtype)))
    np.testing.assert_allclose(Y, [[0.0, 0.0, 0.5, 1.0, 1.0]], atol=1e-30)
    assert np.all(np.isfinite(Y)) and np.all(np.isfinite(dX)) and dX[0, 2] == 0.25
    assert dX[0, 0] == 0.0 and dX[0, 4] == 0.0


def test_sigmoid_keeps_relative_accuracy_far_left(backend):
    X = backend.asarray([[-60.0, -30.0, 30.0]], dtype="float64")
    expected = 1 / (1 + np.exp(np.array([[60.0, 30.0, -30.0]])))
    np.testing.assert_allclose(to_numpy(Sigmoid()(X)), expected, rtol=1e-14)


def test_relu_derivative_at_zero_is_zero(backend):
    layer = ReLU()
    layer(backend.asarray([[-1.0, 0.0, 2.0]]))
    np.testing.assert_array_equal(to_numpy(layer.backward(backend.asarray([[5.0, 5.0, 5.0]]))),
                                  [[0.0, 0.0, 5.0]])


@pytest.mark.parametrize("make", ACTIVATIONS, ids=IDS)
def test_local_grad_is_backward_of_ones(backend, rng, make):
    X = backend.asarray(away_from_zero(rng, (4, 6)))
    layer = make()
    layer(X)
    np.testing.assert_allclose(to_numpy(layer.local_grad(X)["X"]),
                               to_numpy(layer.backward(backend.asarray(np.ones((4, 6))))), rtol=1e-12)


@pytest.mark.parametrize("name, make", list(zip(IDS, ACTIVATIONS)) + [("LeakyReLU0.3", lambda: LeakyReLU(0.3))],
                         ids=IDS + ["LeakyReLU0.3"])
def test_matches_pytorch(backend, rng, name, make, torch):
    theirs = {"ReLU": torch.nn.ReLU(), "LeakyReLU": torch.nn.LeakyReLU(0.01),
              "LeakyReLU0.2": torch.nn.LeakyReLU(0.2), "LeakyReLU0.3": torch.nn.LeakyReLU(0.3),
              "Sigmoid": torch.nn.Sigmoid(), "Tanh": torch.nn.Tanh()}
    X = 5 * rng.normal(size=(3, 2, 4, 4))
    X[0, 0, 0, :2] = [-60.0, 60.0]  # saturated Sigmoid/Tanh
    compare_with_torch(make(), theirs[name], X, backend, rng)


def test_relu_leaves_its_input_and_upstream_gradient_alone(backend, rng):
    assert_leaves_inputs_alone(ReLU(), backend, rng)


def test_relu_outputs_survive_the_next_forward_and_backward(backend, rng):
    assert_outputs_survive_the_next_step(ReLU(), backend, rng)
