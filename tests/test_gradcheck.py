"""The public gradient checker: it passes correct layers and losses, names the wrong gradient
(input or parameter) with its error, and leaves the checked layer as it was, on every backend."""

import numpy as np
import pytest

import nnfs
from nnfs.backend import backend_of, host_rng, to_numpy
from nnfs.gradcheck import GradientCheckError, check_layer, check_loss
from nnfs.activations import ReLU
from nnfs.layers import BatchNorm1D, Dropout, Layer, Linear, Sequential
from nnfs.losses import CrossEntropyLoss, Loss
from tests import custom


class Scale(Layer):
    """``Y = X * weight``, with a switch that breaks the input or the weight gradient."""

    def __init__(self, n_features, wrong=None):
        super().__init__()
        self.n_features, self.wrong = n_features, wrong
        self.init_params(None, weight=np.linspace(0.5, 1.5, n_features))

    def forward(self, X):
        self.cache["X"] = X
        return X * self.params["weight"]

    def backward(self, dY):
        X = self.from_cache("X")
        self.grads["weight"] = (dY * X).sum(axis=0) * (2 if self.wrong == "weight" else 1)
        return dY * (self.params["weight"] + (0.01 if self.wrong == "X" else 0))

    def get_config(self):
        return {"n_features": self.n_features, "wrong": self.wrong}


class HalfMSE(Loss):
    """``sum((p - t)^2) / 2``, whose gradient ``p - t`` is doubled when ``wrong``."""

    def __init__(self, wrong=False):
        super().__init__()
        self.wrong = wrong

    def forward(self, prediction, target):
        self.cache["diff"] = prediction - backend_of(prediction).asarray(target, dtype=prediction.dtype)
        return (self.cache["diff"] ** 2).sum() / 2

    def backward(self):
        return self.cache["diff"] * (2 if self.wrong else 1)

    def get_config(self):
        return {"wrong": self.wrong}


def test_the_default_upstream_gradient_is_not_an_input_drawn_from_seed_0(backend):
    # A normalising layer's input gradient is about zero along its own input: with the upstream
    # gradient drawn from seed 0, an input drawn from seed 0 failed the check on rounding alone.
    X = np.random.default_rng(0).normal(size=(8, 5))
    assert max(check_layer(BatchNorm1D(5).to(backend), X).values()) < 1e-6
    assert check_layer(BatchNorm1D(5).to(backend), X, rng=0, raise_error=False).message is not None


def test_a_correct_layer_passes_on_its_own_backend(backend, rng):
    layer = Scale(5).to(backend)
    errors = check_layer(layer, rng.normal(size=(4, 5)), rng=rng)
    assert set(errors) == {"X", "weight"} and max(errors.values()) < 1e-7, errors
    assert errors.message is None


def test_built_in_layers_pass_in_train_and_eval_mode(backend, rng):
    check_layer(Linear(4, 3).to(backend), rng.normal(size=(5, 4)))
    check_layer(BatchNorm1D(3).to(backend), rng.normal(size=(6, 3)))
    check_layer(BatchNorm1D(3).to(backend).eval(), rng.normal(size=(6, 3)))


class MaskForgotten(Dropout):
    """A dropout whose backward forgets the mask."""

    def backward(self, dY):
        return dY


def test_layers_that_draw_random_masks_are_checked_with_one_mask(backend, rng):
    # Each forward pass of a Dropout in training mode draws a new mask: finite differences
    # across passes compared different functions, and every dropout failed the check.
    dropout = Dropout(0.4)
    check_layer(dropout, rng.normal(size=(4, 6)), backend=backend)
    check_layer(Sequential(Linear(6, 5), Dropout(0.5), ReLU(), Linear(5, 2)).to(backend), rng.normal(size=(4, 6)))
    assert dropout.rng_state()["calls"] == 0  # the layer checked is left as it was
    with pytest.raises(GradientCheckError, match=r"^MaskForgotten\(p=0\.4\): the input gradient \(X\) is off"):
        check_layer(MaskForgotten(0.4), rng.normal(size=(4, 6)), backend=backend)


def test_a_wrong_input_gradient_is_named(backend, rng):
    with pytest.raises(GradientCheckError, match=r"^Scale\(n_features=5, wrong='X'\): the input gradient \(X\) "
                                                 r"is off .* relative error of [0-9.e-]+, not below the tolerance 1e-05"):
        check_layer(Scale(5, wrong="X").to(backend), rng.normal(size=(4, 5)))


def test_a_wrong_parameter_gradient_is_named(backend, rng):
    with pytest.raises(GradientCheckError, match=r"^Scale\(n_features=5, wrong='weight'\): the gradient of "
                                                 r"params\['weight'\] is off .* relative error of 0\.5"):
        check_layer(Scale(5, wrong="weight").to(backend), rng.normal(size=(4, 5)))


def test_without_raising_the_errors_carry_the_message(rng):
    errors = check_layer(Scale(5, wrong="weight"), rng.normal(size=(4, 5)), raise_error=False)
    assert errors["weight"] == pytest.approx(0.5) and errors["X"] < 1e-7
    assert "params['weight']" in errors.message and "\n" not in errors.message


def test_the_checked_layer_and_input_are_left_as_they_were(backend, rng):
    layer = BatchNorm1D(3).to(backend)
    X = rng.normal(size=(6, 3))
    X_before = X.copy()
    running_mean = to_numpy(layer.buffers["running_mean"]).copy()
    draw = host_rng().bit_generator.state
    check_layer(layer, X)
    assert layer.dtype == np.float32 and backend_of(layer.params["weight"]) is backend
    assert layer.training and layer.cache == {}
    np.testing.assert_array_equal(to_numpy(layer.buffers["running_mean"]), running_mean)
    np.testing.assert_array_equal(X, X_before)
    assert host_rng().bit_generator.state == draw  # the weight-initialisation stream is untouched


def test_a_parameterless_layer_runs_where_its_input_is(backend, rng):
    from nnfs.activations import Tanh
    errors = check_layer(Tanh(), backend.asarray(rng.normal(size=(3, 4))))
    assert set(errors) == {"X"}


def test_a_gradient_of_the_wrong_shape_is_a_value_error(rng):
    class Summed(Scale):
        def backward(self, dY):
            super().backward(dY)
            self.grads["weight"] = self.grads["weight"][:2]
            return dY * self.params["weight"]

    # The layer's own backward refuses it as it returns (nnfs.layers.base.check_parameter_grads).
    with pytest.raises(ValueError, match=r"^Summed\.backward: grads\['weight'\] has shape \(2,\), but "
                                         r"params\['weight'\] is an array of shape \(5,\)"):
        check_layer(Summed(5), rng.normal(size=(4, 5)))


def test_a_layer_or_loss_that_skipped_super_init_is_named(rng):
    # They failed with "object has no attribute 'params'" ('cache' for a loss) from inside the check.
    class Shift(Layer):
        def __init__(self):
            self.offset = 1.0

        def forward(self, X):
            return X + self.offset

        def backward(self, dY):
            return dY

    class Half(Loss):
        def __init__(self):
            self.factor = 0.5

    X = rng.normal(size=(4, 3))
    with pytest.raises(TypeError, match=r"^check_layer: Shift was never set up as an nnfs layer: its __init__ must "
                                        r"call super\(\)\.__init__\(\) first$"):
        check_layer(Shift(), X)
    with pytest.raises(TypeError, match=r"^check_loss: Half was never set up as an nnfs loss"):
        check_loss(Half(), X, X)


def test_a_correct_loss_passes_and_a_wrong_one_is_named(backend, rng):
    prediction, target = backend.asarray(rng.normal(size=(4, 3))), rng.normal(size=(4, 3))
    assert check_loss(HalfMSE(), prediction, target)["X"] < 1e-7
    assert check_loss(CrossEntropyLoss(), prediction, np.array([0, 2, 1, 1]))["X"] < 1e-7
    with pytest.raises(GradientCheckError, match=r"^HalfMSE\(wrong=True\): the input gradient \(X\) .* 0\.5"):
        check_loss(HalfMSE(wrong=True), prediction, target)


def test_the_upstream_gradient_is_random_and_seeded(rng):
    """A seed gives the same errors again; ones would not be random (the rule of every check)."""
    X = rng.normal(size=(4, 5))
    nnfs.seed(0)
    assert check_layer(Scale(5), X, rng=3) == check_layer(Scale(5), X, rng=3)


def test_a_nan_gradient_is_the_one_named():
    """NaN is worse than any error (a gradient that does not even compare), whichever key it has."""
    from nnfs.gradcheck import GradientErrors
    for errors in ({"X": 0.5, "weight": float("nan")}, {"X": float("nan"), "weight": 0.5}):
        name = next(name for name, error in errors.items() if error != error)
        what = "the input gradient (X)" if name == "X" else f"the gradient of params['{name}']"
        assert f"{what} is off from finite differences by a relative error of nan" in \
            GradientErrors("L", errors, 1e-5).message


@pytest.mark.parametrize("call, error, match", [
    (lambda X: check_layer(lambda x: 2 * x, X), TypeError, r"^check_layer: expected an nnfs Layer .*got <function"),
    (lambda X: check_layer(Linear, X), TypeError, r"^check_layer: expected an nnfs Layer .*got <class"),
    (lambda X: check_loss(Linear(3, 2), X, X), TypeError, r"^check_loss: expected an nnfs Loss .*got Linear"),
    (lambda X: check_layer(Linear(3, 2), X, eps=0), ValueError, r"^check_layer: eps must be a finite number > 0, got 0\.0$"),
    (lambda X: check_layer(Linear(3, 2), X, eps=-1e-6), ValueError, r"^check_layer: eps must be a finite number > 0"),
    (lambda X: check_loss(CrossEntropyLoss(), X, [0, 1, 2, 0]), None, None),
    (lambda X: check_layer(Linear(3, 2), X, tolerance="1e-5"), TypeError, r"^check_layer: tolerance must be a number"),
    (lambda X: check_loss(CrossEntropyLoss(), X, [0, 1, 2, 0], tolerance=float("nan")), ValueError,
     r"^check_loss: tolerance must be a finite number > 0, got nan$"),
    (lambda X: check_layer(Linear(3, 2), X, rng="0"), TypeError,
     r"^check_layer: rng must be a NumPy Generator or a seed \(an int >= 0, or a sequence of them\), got '0'$"),
    (lambda X: check_layer(Linear(3, 2), X, rng=-1), ValueError, r"^check_layer: rng must be a NumPy Generator"),
    (lambda X: check_layer(Linear(3, 2), X, rng=1.5), TypeError, r"^check_layer: rng must be .* got 1\.5$"),
    (lambda X: check_layer(Linear(3, 2), X, rng=True), TypeError, r"^check_layer: rng must be .* got True$"),
    (lambda X: check_layer(Linear(3, 2), X, rng=np.int64(3)), None, None),
], ids=["a function", "a class", "a layer as loss", "eps 0", "eps negative", "a sound call", "tolerance text",
        "tolerance nan", "rng text", "rng negative", "rng fraction", "rng bool", "rng numpy int"])
def test_arguments_of_the_wrong_kind_are_named_in_one_line(rng, call, error, match):
    # A zero step divided by zero, a text tolerance failed in a comparison, a function had no .backend,
    # an rng of text failed inside NumPy's seeding, and True seeded it as 1.
    X = rng.normal(size=(4, 3))
    if error is None:
        call(X)
        return
    with pytest.raises(error, match=match):
        call(X)


class Centred(Layer):
    """``X - mean(X over the batch)``: right on one thread, and the gradient check passes, but
    each shard of a batch on two threads centres on its own rows."""

    def forward(self, X):
        return X - X.mean(axis=0, keepdims=True)

    def backward(self, dY):
        return dY - dY.mean(axis=0, keepdims=True)


class RunningMeanOfShard(custom.RunningMean):
    """A buffer updated from shard 0's rows alone: the statistic not passed through batch_sum."""

    def forward(self, X):
        if self.training:
            self.buffers["mean"] = 0.9 * self.buffers["mean"] + 0.1 * X.mean(axis=0)
        self.cache["X"] = X
        return X * self.params["weight"]


@pytest.mark.parametrize("make, what", [(Centred, "its output"), (lambda: RunningMeanOfShard(5), "its buffer 'mean'")])
def test_a_layer_that_looks_at_the_whole_batch_without_saying_so_fails_on_two_threads(make, what):
    X = np.random.default_rng(1).normal(size=(8, 5))
    errors = check_layer(make(), X, backend="numpy", raise_error=False)  # the CPU: where batches are sharded
    assert max(errors.values()) < 1e-6  # its gradients are right: only the threads tell
    assert errors.threads.startswith(f"{make()!r}: on two CPU threads (a batch in two shards, as a Net runs it) "
                                     f"{what} differs from one thread's by a relative ")
    assert errors.threads.endswith("pass its statistics through nnfs.parallel.batch_sum or batch_gather "
                                   "(docs/layers.md, Threads)")
    with pytest.raises(GradientCheckError, match="on two CPU threads"):
        check_layer(make(), X, backend="numpy")
    assert check_layer(make(), X, backend="strict").threads is None  # a device backend never shards


def test_layers_that_say_so_or_look_at_their_rows_alone_pass_on_two_threads(backend):
    X = np.random.default_rng(1).normal(size=(8, 5))
    for layer in (custom.RunningMean(5), BatchNorm1D(5), Linear(5, 3), Dropout(0.5), Centred()):
        errors = check_layer(layer.to(backend) if layer.params else layer, X[:3] if isinstance(layer, Centred) else X,
                             backend=backend)
        assert errors.threads is None, errors.threads  # (too few samples to shard: not checked)
