"""CrossEntropyLoss and MeanSquareLoss: gradients, values, stability, scalar outputs, target checks."""

import numpy as np
import pytest

from gradcheck import assert_loss_gradient
from nnfs.backend import to_numpy
from nnfs.losses import CrossEntropyLoss, MeanSquareLoss, log_softmax, softmax

LABELS = np.array([0, 3, 1, 3, 2])


def _targets(kind):
    if kind == "(N,)":
        return LABELS
    if kind == "(N,1)":
        return LABELS.reshape(-1, 1).astype(np.int32)
    if kind == "one-hot":
        return np.eye(4)[LABELS]
    return np.random.default_rng(7).dirichlet(np.ones(4), size=5)  # soft labels


def reference_cross_entropy(logits, target_rows):
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return -(target_rows * log_p).sum() / len(logits)


@pytest.mark.parametrize("kind", ["(N,)", "(N,1)", "one-hot", "soft"])
def test_cross_entropy_gradient(backend, rng, kind):
    assert_loss_gradient(CrossEntropyLoss(), 2 * rng.normal(size=(5, 4)), _targets(kind), backend)


@pytest.mark.parametrize("kind", ["(N,)", "(N,1)", "one-hot"])
def test_cross_entropy_value_and_target_forms_agree(backend, rng, kind):
    logits = rng.normal(size=(5, 4))
    loss = CrossEntropyLoss()(backend.asarray(logits), _targets(kind))
    assert loss.shape == ()
    np.testing.assert_allclose(float(loss), reference_cross_entropy(logits, np.eye(4)[LABELS]),
                               rtol=1e-12)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("scale", [1e3, 1e4, 1e30])
def test_cross_entropy_is_finite_for_huge_logits(backend, dtype, scale):
    # Pitfall 8: logits of 1000 gave NaN. Underflow to 0 in exp is expected and harmless.
    logits = np.array([[scale, 0.0, -scale], [0.0, scale, scale]])
    loss_fn = CrossEntropyLoss()
    # numpy.errstate watches NumPy's own arithmetic (the numpy and strict backends) and
    # catches an overflow in an intermediate; CuPy's kernels report nothing, so on a GPU
    # only the checks of the results below hold (finite, and the right values).
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        loss = float(loss_fn(backend.asarray(logits, dtype=dtype), np.array([2, 0])))
        grad = to_numpy(loss_fn.backward())
    assert np.isfinite(loss) and np.all(np.isfinite(grad))
    # Sample 0 puts all its mass on class 0, sample 1 splits it over classes 1 and 2.
    np.testing.assert_allclose(loss, (2 * scale + scale + np.log(2)) / 2, rtol=1e-6)
    np.testing.assert_allclose(grad, [[0.5, 0, -0.5], [-0.5, 0.25, 0.25]], atol=1e-6)


def test_cross_entropy_log_of_zero_probability_is_finite(backend):
    # Pitfall 8: log(0) gave inf when a probability underflowed to zero.
    logits = backend.asarray([[0.0, -1e4], [50.0, -800.0]], dtype="float32")
    loss_fn = CrossEntropyLoss()
    with np.errstate(over="raise", invalid="raise", divide="raise"):  # NumPy only: see above
        hard = float(loss_fn(logits, np.array([1, 1])))
        hard_grad = to_numpy(loss_fn.backward())
        soft = float(loss_fn(logits, np.array([[1.0, 0.0], [1.0, 0.0]])))
        soft_grad = to_numpy(loss_fn.backward())
    np.testing.assert_allclose(hard, (1e4 + 850.0) / 2, rtol=1e-6)
    assert np.all(np.isfinite(hard_grad)) and np.all(np.isfinite(soft_grad))
    # Zero target weight times a tiny probability must be 0, not 0 * -inf = NaN.
    assert soft == 0.0
    np.testing.assert_allclose(soft_grad, 0.0, atol=1e-7)


def test_softmax_rows_sum_to_one_and_log_softmax_is_its_log(backend, rng):
    logits = backend.asarray(50 * rng.normal(size=(6, 5)))
    p = to_numpy(softmax(logits))
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(np.exp(to_numpy(log_softmax(logits))), p, rtol=1e-12)


@pytest.mark.parametrize("shape, target_shape", [((5, 3), (5, 3)), ((4, 1), (4,)), ((4, 1), (4, 1))])
def test_mean_square_gradient(backend, rng, shape, target_shape):
    assert_loss_gradient(MeanSquareLoss(), rng.normal(size=shape), rng.normal(size=target_shape), backend)


def test_mean_square_returns_a_scalar_mean(backend, rng):
    # Pitfall 14: documented as (N, D), returned a scalar; now documented as a scalar.
    prediction, target = rng.normal(size=(6, 3)), rng.normal(size=(6, 3))
    loss = MeanSquareLoss()(backend.asarray(prediction), target)
    assert loss.shape == ()
    np.testing.assert_allclose(float(loss), ((prediction - target) ** 2).mean(), rtol=1e-12)


def test_losses_accept_device_targets(backend, rng):
    logits = backend.asarray(rng.normal(size=(5, 4)))
    host = float(CrossEntropyLoss()(logits, LABELS))
    assert float(CrossEntropyLoss()(logits, backend.asarray(LABELS))) == host
    target = rng.normal(size=(5, 4))
    host = float(MeanSquareLoss()(logits, target))
    assert float(MeanSquareLoss()(logits, backend.asarray(target))) == host


def test_local_grad_leaves_a_pending_backward_intact(backend, rng):
    loss = CrossEntropyLoss()
    loss(backend.asarray(rng.normal(size=(4, 3))), np.array([0, 1, 2, 0]))
    pending = to_numpy(loss.backward())
    loss.local_grad(backend.asarray(rng.normal(size=(2, 3))), np.array([1, 1]))
    np.testing.assert_array_equal(to_numpy(loss.backward()), pending)
    np.testing.assert_array_equal(to_numpy(loss.target), [0, 1, 2, 0])
