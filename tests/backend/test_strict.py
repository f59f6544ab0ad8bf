"""The strict backend: it refuses host arrays like CuPy, and a whole training step never leaks one."""

import numpy as np
import pytest

from nnfs.backend import get_backend
from nnfs.backend.strict import HostArrayError, StrictArray
from nnfs.losses import CrossEntropyLoss, MeanSquareLoss
from tests.nets import every_layer_cnn, image_batch

STRICT = get_backend("strict")


def _device(x):
    return STRICT.asarray(x, dtype="float32")


# -- the backend really refuses to mix (otherwise the leak test below proves nothing) ------------
@pytest.mark.parametrize("operation", [
    lambda d, h: d + h,
    lambda d, h: h * d,
    lambda d, h: d @ h.reshape(3, 1),
    lambda d, h: np.maximum(d, h),
    lambda d, h: np.concatenate([d, h]),
    lambda d, h: np.where(d > 0, h, d),
    lambda d, h: STRICT.xp.maximum(d, h),
    lambda d, h: STRICT.xp.zeros_like(h),
    lambda d, h: STRICT.xp.asarray(h),
    lambda d, h: d.__setitem__(slice(None), h),
    lambda d, h: d[np.array([0, 1])],
    lambda d, h: STRICT.xp.add.at(d, np.array([0]), 1.0),
    lambda d, h: d + [1.0, 2.0, 3.0],
], ids=["add", "radd", "matmul", "ufunc", "concatenate", "where", "xp-ufunc", "xp-zeros_like",
        "xp-asarray", "setitem", "index", "ufunc.at", "list"])
def test_mixing_with_host_arrays_raises(operation):
    with pytest.raises(HostArrayError):
        operation(_device([1.0, 2.0, 3.0]), np.ones(3, np.float32))


def test_host_array_error_is_a_type_error_like_cupys():
    assert issubclass(HostArrayError, TypeError)


def test_device_only_operations_stay_on_the_device():
    d = _device([[1.0, -2.0], [3.0, 4.0]])
    results = [d + 1, d * d, d @ d, d.sum(), d.max(axis=0), np.exp(d), d[0], d[d > 0],
               STRICT.xp.maximum(d, 0), STRICT.xp.zeros((2, 2)), d.T.reshape(-1), d.mean(axis=0)]
    for result in results:
        assert isinstance(result, StrictArray), type(result)


def test_transfers_copy_both_ways():
    host = np.arange(3.0)
    device = STRICT.asarray(host)
    host[0] = 10.0
    assert device[0] == 0.0
    back = STRICT.to_numpy(device)
    assert type(back) is np.ndarray
    back[1] = 10.0
    assert device[1] == 1.0


# -- the leak test: every array of a full training step lives on the device ----------------------
def _assert_on_device(value, what):
    assert isinstance(value, StrictArray), f"{what} is a {type(value).__name__}, not a device array"


@pytest.mark.parametrize("loss", [CrossEntropyLoss(), MeanSquareLoss()], ids=["cross-entropy", "mse"])
def test_training_step_keeps_every_array_on_the_device(rng, loss):
    net = every_layer_cnn(loss=loss, backend="strict")
    X, labels = image_batch(rng)
    target = labels if isinstance(loss, CrossEntropyLoss) else rng.normal(size=(4, 3))
    for step in range(2):  # the second step runs on parameters the first one updated
        out = net(X)
        _assert_on_device(out, "the output")
        value = net.loss(out, target)
        _assert_on_device(value, "the loss")
        assert np.isfinite(float(value))
        _assert_on_device(net.backward(input_grad=True), "the input gradient")
        net.update_weights(0.01)
        for index, layer in enumerate(net.layers):
            for store in ("params", "grads", "buffers", "cache"):
                for key, item in getattr(layer, store).items():
                    if hasattr(item, "dtype"):
                        _assert_on_device(item, f"step {step}: layer {index} {store}[{key!r}]")
    net.eval()
    _assert_on_device(net(X), "the eval output")
    probabilities = net.predict_proba(X)
    assert type(probabilities) is np.ndarray and probabilities.shape == (4, 3)
    assert type(net.predict(X)) is np.ndarray


def test_a_host_array_inside_a_layer_is_caught(rng):
    # The check above would see a leak: plant one and watch the step fail.
    net = every_layer_cnn(backend="strict")
    net.layers[-1].params["bias"] = np.zeros(3, np.float32)
    X, labels = image_batch(rng)
    with pytest.raises(HostArrayError):
        net(X)
