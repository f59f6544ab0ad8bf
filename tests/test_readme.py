"""The README's promises: the commands it shows are the ones CI runs, and its "Write your own
layer" example runs, is exact, and round-trips a checkpoint."""

import re

import numpy as np

from nnfs import checkpoint
from nnfs.activations import ReLU
from nnfs.backend import to_numpy
from nnfs.layers import Linear
from nnfs.losses import CrossEntropyLoss
from nnfs.net import Net
from tests import ROOT
from tests.gradcheck import assert_layer_gradients

README = ROOT / "README.md"


def _bash_blocks(text):
    return re.findall(r"```bash\n(.*?)```", text, flags=re.S)


def test_ci_runs_the_readme_test_command():
    readme = README.read_text()
    test_command = 'python -m pip install -e ".[test]" && python -m pytest -q'
    assert any(test_command in block for block in _bash_blocks(readme))
    ci_lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert test_command in ci_lines


def test_readme_main_command_runs_the_example():
    readme = README.read_text()
    assert any("python examples/CNN_custom_dataset.py" in block for block in _bash_blocks(readme))


def scale_class():
    """Execute the README's code block that defines ``Scale`` and return the class."""
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    source = next(block for block in blocks if "class Scale(Layer)" in block)
    namespace = {}
    exec(compile(source, str(README), "exec"), namespace)
    return namespace["Scale"]


def test_the_custom_layer_is_exact_on_every_backend(backend, rng):
    errors = assert_layer_gradients(scale_class()(5), rng.normal(size=(4, 5)), backend, rng, tolerance=1e-7)
    assert set(errors) == {"X", "weight"}


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
