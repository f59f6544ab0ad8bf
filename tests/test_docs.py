"""The README and docs/: every Python code block runs, the README's links lead somewhere, the
commands it shows are the ones CI runs, and the "Write your own layer" and "Write your own loss"
examples of docs/layers.md are exact (the layer round-trips a checkpoint), the signatures the
docs write out in full are the code's, and the gradient check's example prints what it says.

The blocks of one file run in order in one fresh process (so they may build on each other),
in a temporary folder where ``data`` leads to the checkout's ``data/`` (the examples that train
on "your own images" use the shipped digits, as from the checkout) and with a dataset cache
of their own.
"""

import importlib
import importlib.util
import inspect
import re
import subprocess
import sys

import numpy as np
import pytest

from nnfs import checkpoint
from nnfs.activations import ReLU
from nnfs.backend import to_numpy
from nnfs.gradcheck import check_layer
from nnfs.layers import Linear
from nnfs.losses import CrossEntropyLoss
from nnfs.net import Net
from tests import ROOT, environment
from tests.gradcheck import assert_layer_gradients, assert_loss_gradient

DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def code_blocks(path, language="python"):
    """The contents of the ``language`` code blocks of a Markdown file, in order."""
    return re.findall(rf"```{language}\n(.*?)```", path.read_text(), flags=re.S)


@pytest.mark.parametrize("document", [d for d in DOCUMENTS if code_blocks(d)],
                         ids=lambda d: str(d.relative_to(ROOT)))
def test_code_blocks_run(document, tmp_path):
    if document.name == "distributed.md" and importlib.util.find_spec("mpi4py") is None:
        pytest.skip("mpi4py is not installed")
    (tmp_path / "data").symlink_to(ROOT / "data", target_is_directory=True)
    source = "\n".join(code_blocks(document))
    env = environment(NNFS_CACHE_DIR=str(tmp_path / "cache"))
    env.setdefault("OPENBLAS_NUM_THREADS", "1")
    done = subprocess.run([sys.executable, "-c", source], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{document.name}:\n{done.stderr}"


def test_readme_links_lead_to_files():
    readme = (ROOT / "README.md").read_text()
    links = re.findall(r"\]\(([^)#]+)\)", readme)
    assert links, "the README links to its docs"
    missing = [link for link in links if not link.startswith("http") and not (ROOT / link).exists()]
    assert not missing


def test_readme_stays_short():
    assert len((ROOT / "README.md").read_text().splitlines()) <= 250


def test_ci_runs_the_readme_test_command():
    test_command = 'python -m pip install -e ".[test]" && python -m pytest -q'
    assert any(test_command in block for block in code_blocks(ROOT / "README.md", "bash"))
    ci_lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert test_command in ci_lines


def test_readme_main_command_runs_the_example():
    blocks = code_blocks(ROOT / "README.md", "bash")
    assert any("python examples/CNN_custom_dataset.py" in block for block in blocks)


def layers_md_class(name, base):
    """Execute the code block of docs/layers.md that defines ``class name(base)`` and return the class."""
    layers_md = ROOT / "docs" / "layers.md"
    source = next(block for block in code_blocks(layers_md) if f"class {name}({base})" in block)
    namespace = {}
    exec(compile(source, str(layers_md), "exec"), namespace)
    return namespace[name]


def scale_class():
    return layers_md_class("Scale", "Layer")


def loss_class():
    return layers_md_class("SmoothedCrossEntropy", "Loss")


def test_the_custom_loss_is_exact_on_every_backend(backend, rng):
    assert_loss_gradient(loss_class()(0.2), rng.normal(size=(5, 3)), np.array([0, 2, 1, 1, 0]), backend)


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


def test_readme_map_names_real_paths_and_every_part_of_the_package():
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Where things are"):readme.index("| Before 0.2 |")]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    named = [path for row in rows for path in re.findall(r"`([^`]+)`", row.split(" | ")[0])]
    assert named and not [path for path in named if not (ROOT / path.rstrip("/")).exists()]
    package = ROOT / "nnfs"
    parts = {f"nnfs/{p.name}/" for p in package.iterdir() if (p / "__init__.py").exists()}
    parts |= {f"nnfs/{p.name}" for p in package.glob("*.py") if p.name != "__init__.py"}
    parts |= {f"nnfs/app/{p.name}/" for p in (package / "app").iterdir() if (p / "__init__.py").exists()}
    assert not parts - set(named)
    # Modules of a package that its row does not describe by their classes are named by file.
    for folder, modules in [("nnfs/app/cli/", ["train.py", "predict.py", "process.py"]),
                            ("nnfs/data/", ["memory.py"]), ("nnfs/backend/", ["allocator.py"])]:
        row = next(row for row in rows if row.startswith(f"| `{folder}`"))
        assert all(f"`{module}`" in row for module in modules), folder


# Signatures the docs write out in full, argument by argument: a reader calls them as shown
# (a keyword-only argument shown as positional, or two swapped, fails or binds wrongly).
FULL_SIGNATURES = [
    ("data.md", "ImageFolder", "nnfs.data:ImageFolder"),
    ("checkpoints.md", "save", "nnfs.checkpoint:save"),
    ("checkpoints.md", "load", "nnfs.checkpoint:load"),
    ("checkpoints.md", "load_into", "nnfs.checkpoint:load_into"),
    ("training.md", "train_epoch", "nnfs.app.loop:train_epoch"),
    ("training.md", "evaluate", "nnfs.app.loop:evaluate"),
    ("layers.md", "Net", "nnfs.net:Net"),
]


@pytest.mark.parametrize("document, name, target", FULL_SIGNATURES, ids=lambda v: str(v))
def test_signatures_written_out_are_the_code(document, name, target):
    text = (ROOT / "docs" / document).read_text()
    shown = re.search(rf"`{name}\((.*?)\)`", text, flags=re.S).group(1)
    module, attribute = target.split(":")
    real = str(inspect.signature(getattr(importlib.import_module(module), attribute)))
    assert " ".join(f"({shown})".replace('"', "'").split()) == real


def test_the_gradient_check_example_prints_what_it_says():
    # The errors are rounding, so "about": within a factor of 3 of the ones the docs show.
    layers_md = (ROOT / "docs" / "layers.md").read_text()
    shown = re.search(r"print\(errors\)\s+# (\{.*?\}), about", layers_md).group(1)
    shown = {key: float(value) for key, value in re.findall(r"'(\w+)': ([\d.e+-]+)", shown)}
    errors = check_layer(scale_class()(8), np.random.default_rng(0).normal(size=(4, 8)))
    assert set(errors) == set(shown)
    assert all(shown[key] / 3 < errors[key] < shown[key] * 3 for key in shown), (errors, shown)
