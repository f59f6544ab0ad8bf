"""The same forward and backward pass gives the same numbers on every backend."""

import numpy as np
import pytest

from nnfs.backend import to_numpy
from nnfs.losses import CrossEntropyLoss, MeanSquareLoss
from tests.nets import every_layer_cnn, image_batch

# CuPy uses other kernels (cuBLAS, its own reductions): equal up to rounding.
TOLERANCE = {"float32": 1e-4, "float64": 1e-12}


def _every_number(backend, dtype, loss, rng_seed):
    """Outputs, loss, input gradient, all params/grads/buffers after one step and after an eval pass."""
    rng = np.random.default_rng(rng_seed)
    net = every_layer_cnn(loss=loss(), backend=backend, dtype=dtype)
    X, labels = image_batch(rng, n=6)
    target = labels if loss is CrossEntropyLoss else rng.normal(size=(6, 3))
    numbers = {}
    out = net(X)
    numbers["output"] = out
    numbers["loss"] = net.loss(out, target)
    numbers["input gradient"] = net.backward(input_grad=True)
    for name, param, grad in net.named_parameters():
        numbers[f"{name} grad"] = grad
    net.update_weights(0.1)
    for name, value in net.state_dict().items():
        numbers[f"{name} after update"] = value
    numbers["eval output"] = net.eval()(X)
    numbers["probabilities"] = net.predict_proba(X)
    return {key: to_numpy(value) for key, value in numbers.items()}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("loss", [CrossEntropyLoss, MeanSquareLoss])
def test_backend_matches_numpy(backend, dtype, loss):
    ours = _every_number(backend, dtype, loss, rng_seed=5)
    reference = _every_number("numpy", dtype, loss, rng_seed=5)
    assert ours.keys() == reference.keys()
    tolerance = 0 if backend.name == "strict" else TOLERANCE[dtype]  # strict is NumPy underneath
    for key in reference:
        assert ours[key].dtype == reference[key].dtype, key
        np.testing.assert_allclose(ours[key], reference[key], rtol=tolerance, atol=tolerance, err_msg=key)
