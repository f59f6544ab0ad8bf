"""CrossEntropyLoss and MeanSquareLoss: gradients, values, PyTorch, stability, scalar outputs,
dtypes, target checks, one class and empty batches."""

import contextlib
import warnings

import numpy as np
import pytest

from nnfs.backend import default_backend, to_numpy
from nnfs.losses import CrossEntropyLoss, MeanSquareLoss, log_softmax, softmax
from tests import custom
from tests.gradcheck import assert_loss_gradient
from tests.layercheck import assert_close, tensor

F32 = np.float32

LABELS = np.array([0, 3, 1, 3, 2])


def _targets(kind):
    if kind == "(N,)":
        return LABELS
    if kind == "(N,1)":
        return LABELS.reshape(-1, 1).astype(np.int32)
    if kind == "one-hot":
        return np.eye(4)[LABELS]
    if kind == "unnormalised":  # rows that do not sum to one (a scaled or partial target)
        return np.random.default_rng(7).uniform(0.0, 1.0, size=(5, 4))
    return np.random.default_rng(7).dirichlet(np.ones(4), size=5)  # soft labels


def reference_cross_entropy(logits, target_rows):
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return -(target_rows * log_p).sum() / len(logits)


@pytest.mark.parametrize("kind", ["(N,)", "(N,1)", "one-hot", "soft", "unnormalised"])
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


def test_softmax_of_a_list_is_a_type_error_naming_it():
    """It failed inside on "'list' object has no attribute 'max'"."""
    for function in (softmax, log_softmax):
        with pytest.raises(TypeError, match=rf"^{function.__name__}: expected an array of logits, got list; "
                                            r"convert it with numpy\.asarray"):
            function([[1.0, 2.0]])


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


# -- PyTorch ---------------------------------------------------------------------------------------

def _compare_with_torch(ours, theirs, prediction, target, target_torch, backend):
    loss = ours(backend.asarray(prediction), target)
    grad = ours.backward()
    Pt = tensor(prediction, grad=True)
    Lt = theirs(Pt, target_torch)
    Lt.backward()
    assert_close(loss, Lt, "loss")
    assert_close(grad, Pt.grad, "gradient")


@pytest.mark.parametrize("kind", ["(N,)", "(N,1)", "one-hot", "soft", "unnormalised", "large"])
def test_cross_entropy_matches_pytorch(backend, rng, kind, torch):
    logits = rng.normal(size=(6, 5)) * (1e3 if kind == "large" else 3)
    labels = rng.integers(0, 5, size=6)
    if kind in ("one-hot", "soft", "unnormalised"):
        target = {"one-hot": np.eye(5)[labels], "soft": rng.dirichlet(np.ones(5), size=6),
                  "unnormalised": rng.uniform(0.0, 2.0, size=(6, 5))}[kind]
        target_torch = tensor(target)
    else:
        target = labels.reshape(-1, 1) if kind == "(N,1)" else labels
        target_torch = torch.tensor(labels)
    _compare_with_torch(CrossEntropyLoss(), torch.nn.CrossEntropyLoss(), logits, target, target_torch, backend)


@pytest.mark.parametrize("shape", [(6, 3), (4, 1)])
def test_mean_square_matches_pytorch(backend, rng, shape, torch):
    prediction, target = rng.normal(size=shape), rng.normal(size=shape)
    _compare_with_torch(MeanSquareLoss(), torch.nn.MSELoss(), prediction, target, tensor(target), backend)


# -- dtypes ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("target", ["one-hot float64", "one-hot int", "(N, 1) int32"])
def test_cross_entropy_target_forms_keep_float32(backend, rng, target):
    labels = np.array([0, 2, 1, 2])
    target = {"one-hot float64": np.eye(3)[labels], "one-hot int": np.eye(3, dtype=int)[labels],
              "(N, 1) int32": labels.reshape(-1, 1).astype(np.int32)}[target]
    loss_fn = CrossEntropyLoss()
    logits = backend.asarray(rng.normal(size=(4, 3)), dtype="float32")
    assert loss_fn(logits, target).dtype == "float32"
    assert loss_fn.backward().dtype == "float32"


# -- one class, and empty batches --------------------------------------------------------------------

def test_one_class_with_float_targets_of_shape_n_1_are_probabilities(backend, rng):
    # With D = 1 a float (N, 1) target is a probability row, not a column of labels: PyTorch
    # reads it so, and the loss of targets of ones is 0 (the single class is certain).
    logits = rng.normal(size=(5, 1))
    loss_fn = CrossEntropyLoss()
    loss = loss_fn(backend.asarray(logits), np.ones((5, 1)))
    assert loss_fn.target.shape == (5, 1) and loss_fn.target.dtype == np.float64
    assert float(loss) == 0.0
    np.testing.assert_array_equal(to_numpy(loss_fn.backward()), np.zeros((5, 1)))


@pytest.mark.parametrize("value", [1.0, 0.5])
def test_one_class_with_float_targets_matches_pytorch(backend, rng, value, torch):
    logits, target = rng.normal(size=(5, 1)), np.full((5, 1), value)
    _compare_with_torch(CrossEntropyLoss(), torch.nn.CrossEntropyLoss(), logits, target, tensor(target), backend)


@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.uint8])
def test_integer_targets_of_shape_n_1_are_still_labels(backend, rng, dtype):
    for D in (1, 3):
        loss_fn = CrossEntropyLoss()
        labels = rng.integers(0, D, size=(6, 1)).astype(dtype)
        logits = rng.normal(size=(6, D))
        loss = float(loss_fn(backend.asarray(logits), labels))
        assert loss_fn.target.shape == (6,) and loss_fn.target.dtype.kind in "iu"
        np.testing.assert_array_equal(to_numpy(loss_fn.target), labels[:, 0])
        np.testing.assert_allclose(loss, reference_cross_entropy(logits, np.eye(D)[labels[:, 0]]), rtol=1e-12)


@contextlib.contextmanager
def no_warnings():
    """Any warning, and any NumPy floating-point complaint, is an error inside."""
    with warnings.catch_warnings(), np.errstate(all="raise"):
        warnings.simplefilter("error")
        yield


@pytest.mark.parametrize("loss_fn, target", [
    (CrossEntropyLoss(), np.zeros(0, np.int64)),
    (CrossEntropyLoss(), np.zeros((0, 1), np.int64)),
    (CrossEntropyLoss(), np.zeros((0, 3))),
    (MeanSquareLoss(), np.zeros((0, 3))),
], ids=["labels", "(N, 1) labels", "one-hot", "mse"])
def test_an_empty_batch_has_a_nan_loss_without_a_warning(backend, loss_fn, target):
    # The mean of nothing is undefined: NaN, as in PyTorch, and no RuntimeWarning on the way.
    with no_warnings():
        loss = loss_fn(backend.xp.zeros((0, 3), dtype="float32"), target)
        grad = loss_fn.backward()
    assert loss.shape == () and loss.dtype == np.float32 and np.isnan(float(loss))
    assert grad.shape == (0, 3) and grad.dtype == np.float32


@pytest.mark.parametrize("kind", ["labels", "probabilities", "mse"])
def test_an_empty_batch_matches_pytorch(kind, torch):
    logits = torch.zeros((0, 3), dtype=torch.float64, requires_grad=True)
    ours, theirs, target, target_torch = {
        "labels": (CrossEntropyLoss(), torch.nn.CrossEntropyLoss(), np.zeros(0, np.int64),
                   torch.zeros(0, dtype=torch.long)),
        "probabilities": (CrossEntropyLoss(), torch.nn.CrossEntropyLoss(), np.zeros((0, 3)),
                          torch.zeros((0, 3), dtype=torch.float64)),
        "mse": (MeanSquareLoss(), torch.nn.MSELoss(), np.zeros((0, 3)), torch.zeros((0, 3), dtype=torch.float64)),
    }[kind]
    loss = ours(np.zeros((0, 3)), target)
    expected = theirs(logits, target_torch)
    expected.backward()
    assert np.isnan(float(loss)) and np.isnan(expected.item())
    assert ours.backward().shape == tuple(logits.grad.shape)


# -- errors ----------------------------------------------------------------------------------------

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


def test_labels_must_be_an_array_or_a_list():
    with pytest.raises(TypeError, match="CrossEntropyLoss: targets must be an array or a list, got dict"):
        CrossEntropyLoss()(LOGITS, {0: 1})


@pytest.mark.parametrize("loss", [CrossEntropyLoss(), MeanSquareLoss()])
def test_predictions_must_be_two_dimensional(loss):
    with pytest.raises(ValueError, match=rf"{type(loss).__name__}: expected predictions of shape \(N, D\)"):
        loss(np.zeros((4, 3, 1), F32), np.zeros((4, 3, 1), F32))


def test_mean_square_shape_mismatch():
    with pytest.raises(ValueError, match=r"MeanSquareLoss: targets of shape \(4, 2\) .*\(4, 3\)"):
        MeanSquareLoss()(LOGITS, np.zeros((4, 2), F32))


def test_targets_may_be_lists_as_inputs_may(backend):
    import numpy as np

    from nnfs.losses import CrossEntropyLoss, MeanSquareLoss

    logits = backend.asarray(np.array([[2.0, 0.5, -1.0], [0.1, 0.2, 3.0]]), dtype="float64")
    assert float(CrossEntropyLoss()(logits, [0, 2])) == pytest.approx(
        float(CrossEntropyLoss()(logits, np.array([0, 2]))))
    assert float(MeanSquareLoss()(logits, [[0.0] * 3, [1.0] * 3])) == pytest.approx(
        float(MeanSquareLoss()(logits, np.array([[0.0] * 3, [1.0] * 3]))))


def test_list_labels_are_checked_on_the_host_after_a_move_to_the_device(backend):
    """Lists are host labels: no device record of them, which after ``net.to`` would have mixed
    a host array with device ones (CuPy refuses that, and so does the strict backend)."""
    from nnfs.layers import Linear
    from nnfs.losses import CrossEntropyLoss
    from nnfs.net import Net

    net = Net([Linear(4, 3)], CrossEntropyLoss(), backend="numpy")
    X = np.ones((4, 4), F32)
    net.loss(net(X), [0, 1, 2, 0])
    net.to(backend)
    first = float(net.loss(net(X), [0, 1, 2, 0]))
    assert first == pytest.approx(float(net.loss(net(X), np.array([0, 1, 2, 0]))))
    with pytest.raises(ValueError, match=r"labels must be in \[0, 3\)"):
        net.loss(net(X), [0, 1, 3, 0])  # at once, as for any host labels


@pytest.mark.parametrize("loss, target, error, message", [
    (MeanSquareLoss, np.ones((4, 3)) * 1j, TypeError, r"MeanSquareLoss: the targets must hold real numbers .* complex128"),
    (MeanSquareLoss, np.array([["a"] * 3] * 4), TypeError, r"MeanSquareLoss: the targets must hold real .* <U1"),
    (MeanSquareLoss, np.array([[None] * 3] * 4), TypeError, r"MeanSquareLoss: the targets .* got dtype object"),
    (MeanSquareLoss, [[1.0, 2.0, 3.0]] * 3 + [[1.0]], ValueError, r"MeanSquareLoss: the targets must be a "
                                                                  r"rectangular array; its nested lists have"),
    (CrossEntropyLoss, np.array([["1", "0", "0"]] * 4), TypeError, r"CrossEntropyLoss: the target rows must hold real"),
    (CrossEntropyLoss, np.eye(3)[[0, 1, 2, 0]] * 1j, TypeError, r"CrossEntropyLoss: the target rows .* complex128"),
    (CrossEntropyLoss, [0, 1, [2], 0], ValueError, r"CrossEntropyLoss: the targets must be a rectangular array"),
])
def test_targets_that_are_not_real_numbers_are_refused(loss, target, error, message):
    """A cast would drop the imaginary part, parse text or give NaN, as for a net's input."""
    with pytest.raises(error, match=message):
        loss()(LOGITS, target)


# -- a loss of one's own (tests/custom.py, written as docs/layers.md says) ------------------------

def test_a_loss_of_ones_own_is_exact_on_every_backend(backend, rng):
    # Host labels, as net.loss hands them on: the loss moves them itself (on the strict
    # backend a host array meeting a device one is an error, as on CuPy).
    assert_loss_gradient(custom.FocalLoss(2.0), rng.normal(size=(5, 4)), LABELS, backend)


def test_a_loss_shows_its_constructor_arguments():
    # Layers did, losses said FocalLoss() whatever their gamma.
    assert repr(custom.FocalLoss(0.5)) == "FocalLoss(gamma=0.5)"
    assert repr(CrossEntropyLoss()) == "CrossEntropyLoss()"


def test_local_grad_leaves_a_loss_held_inside_another_as_it_was():
    """A loss that delegates to a CrossEntropyLoss of its own: the inner loss's cache and counters
    are put back too, so a pending backward still gives the pending step's gradient."""
    from nnfs.losses import Loss

    class Wrapped(Loss):
        def __init__(self):
            super().__init__()
            self.inner = CrossEntropyLoss()

        def forward(self, prediction, target):
            return self.inner(prediction, target)

        def backward(self):
            return self.inner.backward()

    rng = np.random.default_rng(0)
    loss = Wrapped()
    loss(rng.standard_normal((4, 3)), np.array([0, 1, 2, 1]))
    pending = loss.backward().copy()
    batches = loss.inner.batches
    loss.local_grad(rng.standard_normal((2, 3)), np.array([2, 2]))
    assert np.array_equal(loss.backward(), pending) and loss.inner.batches == batches


def test_local_grad_takes_integer_target_rows_of_any_value_as_forward_does():
    from nnfs.backend import get_backend

    strict = get_backend("strict")
    P = strict.asarray(np.zeros((2, 3), np.float32))
    rows = strict.asarray(np.array([[0, 3, 0], [1, 0, 0]]))  # rows, not labels: 3 is a weight
    loss = CrossEntropyLoss()
    expected = to_numpy(loss.local_grad(P, strict.asarray(np.array([[0, 3, 0], [1, 0, 0]], np.float32)))["X"])
    assert np.allclose(to_numpy(loss.local_grad(P, rows)["X"]), expected)
    with pytest.raises(ValueError, match="labels must be in"):
        loss.local_grad(P, strict.asarray(np.array([0, 3])))


def test_a_method_a_loss_of_ones_own_lacks_is_named():
    from nnfs.losses import Loss

    class Total(Loss):
        def forward(self, prediction, target):
            return prediction.sum()

    with pytest.raises(NotImplementedError, match=r"^Total defines no backward\(\): a loss of one's own needs"):
        Total().backward()
    with pytest.raises(NotImplementedError, match=r"^Loss defines no forward\(prediction, target\)"):
        Loss()(np.ones((2, 2)), np.ones((2, 2)))


def test_a_loss_of_ones_own_that_returns_no_scalar_is_named():
    """Per-sample losses (a forgotten ``.mean()``) went through ``Net.loss`` and failed later in the
    epoch loop with "only 0-dimensional arrays can be converted to Python scalars"."""
    from nnfs.gradcheck import check_loss
    from nnfs.losses import Loss

    class Squares(Loss):
        def __init__(self, reduce):
            super().__init__()
            self.reduce = reduce

        def forward(self, prediction, target):
            self.cache["difference"] = prediction - target
            return self.reduce(self.cache["difference"] ** 2)

        def backward(self):
            difference = self.from_cache("difference")
            return 2 * difference / difference.size

    P, T = np.ones((4, 2)), np.zeros((4, 2))
    with pytest.raises(TypeError, match=r"^Squares\.forward: returned an array of shape \(4,\), not a scalar: a "
                                        r"loss returns one number for the batch"):
        Squares(lambda squares: squares.mean(axis=1))(P, T)
    with pytest.raises(TypeError, match=r"^Squares\.forward: returned NoneType, not a scalar"):
        check_loss(Squares(lambda squares: None), P, default_backend().asarray(T))  # where check_loss puts P
    assert float(Squares(lambda squares: squares.mean())(P, T)) == 1.0
    assert Squares(lambda squares: float(squares.mean()))(P, T) == 1.0  # a Python number is one too

