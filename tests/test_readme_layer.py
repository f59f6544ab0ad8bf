"""The "Write your own layer" example of docs/layers.md runs, is exact, and round-trips a checkpoint."""

import pathlib
import re

import numpy as np

from gradcheck import check_layer
from nnfs import checkpoint
from nnfs.activations import ReLU
from nnfs.backend import to_numpy
from nnfs.layers import Linear
from nnfs.losses import CrossEntropyLoss
from nnfs.net import Net

README = pathlib.Path(__file__).resolve().parents[1] / "docs" / "layers.md"


def scale_class():
    """Execute the code block that defines ``Scale`` and return the class."""
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    source = next(block for block in blocks if "class Scale(Layer)" in block)
    namespace = {}
    exec(compile(source, str(README), "exec"), namespace)
    return namespace["Scale"]


def test_the_custom_layer_is_exact_on_every_backend(backend, rng):
    errors = check_layer(scale_class()(5), rng.normal(size=(4, 5)), backend, rng)
    assert set(errors) == {"X", "weight"} and max(errors.values()) < 1e-7


def test_the_custom_layer_trains_and_round_trips_a_checkpoint(tmp_path, rng):
    Scale = scale_class()
    net = Net([Linear(4, 8), Scale(8), ReLU(), Linear(8, 3)], CrossEntropyLoss(), backend="numpy")
    X, y = rng.normal(size=(16, 4)), rng.integers(0, 3, 16)
    for _ in range(3):
        net.loss(net(X), y)
        net.backward()
        net.update_weights(0.1)
    assert not np.all(to_numpy(net.layers[1].params["weight"]) == 1)  # it learned
    checkpoint.save(tmp_path / "m.npz", net, custom_layers=[Scale])
    loaded = checkpoint.load(tmp_path / "m.npz", backend="numpy", custom_layers=[Scale]).net
    np.testing.assert_array_equal(loaded.predict_proba(X), net.eval().predict_proba(X))
