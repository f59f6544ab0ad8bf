"""The dtype is kept end to end: float32 by default, float64 on request, never silently promoted."""

import numpy as np
import pytest

from models import every_layer_cnn, image_batch
from nnfs.losses import CrossEntropyLoss, MeanSquareLoss


def _forward_backward_dtypes(net, X, target):
    """Every layer output, the loss, every input gradient, every parameter gradient and buffer."""
    seen = []
    out = net.backend.asarray(X, dtype=net.dtype)
    for index, layer in enumerate(net.layers):
        out = layer(out)
        seen.append((f"output of layer {index} {layer!r}", out.dtype))
    loss = net.loss(out, target)
    seen.append(("loss", loss.dtype))
    grad = net.loss_fn.backward()
    seen.append(("loss gradient", grad.dtype))
    for index in reversed(range(len(net.layers))):
        grad = net.layers[index].backward(grad)
        seen.append((f"input gradient of layer {index}", grad.dtype))
    net.update_weights(0.01)
    for index, layer in enumerate(net.layers):
        for store in ("params", "grads", "buffers"):
            for key, value in getattr(layer, store).items():
                seen.append((f"layer {index} {store}[{key!r}]", value.dtype))
    return seen


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("loss", [CrossEntropyLoss, MeanSquareLoss])
def test_every_array_keeps_the_dtype(backend, rng, dtype, loss):
    # Pitfall 9 and NEP 50: float64 host scalars or integer one-hot matrices promote float32.
    net = every_layer_cnn(loss=loss(), backend=backend, dtype=dtype)
    X, labels = image_batch(rng)
    target = labels if loss is CrossEntropyLoss else rng.normal(size=(4, 3))  # float64 targets
    wrong = [(what, got) for what, got in _forward_backward_dtypes(net, X, target) if got != dtype]
    assert not wrong, f"promoted or demoted: {wrong}"


@pytest.mark.parametrize("target", ["one-hot float64", "one-hot int", "(N, 1) int32"])
def test_cross_entropy_target_forms_keep_float32(backend, rng, target):
    labels = np.array([0, 2, 1, 2])
    target = {"one-hot float64": np.eye(3)[labels], "one-hot int": np.eye(3, dtype=int)[labels],
              "(N, 1) int32": labels.reshape(-1, 1).astype(np.int32)}[target]
    loss_fn = CrossEntropyLoss()
    logits = backend.asarray(rng.normal(size=(4, 3)), dtype="float32")
    assert loss_fn(logits, target).dtype == "float32"
    assert loss_fn.backward().dtype == "float32"
