"""On a device, every number of these runs equals NumPy's: same seed, same data, all compared.

These are the paths that the PyTorch comparisons do not take on a GPU (the device machine has
PyTorch, but the optimizers, pooling, BatchNorm1D and reference-CNN tests compare through it),
and those that no other test ran on CuPy at all: prediction, resuming, loading into a net,
optimizer state moved between devices, the example script, ``distributed.init()`` with the
host transport. Each runs once on NumPy (the reference) and once on the device backend: the
strict stand-in everywhere, CuPy (marked ``gpu``) where a GPU is usable. Everything is float64,
so that CuPy's other summation order stays far below the tolerance.
"""

import importlib.util
import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

import nnfs
from tests.imagefolders import make_folder
from nnfs.activations import ReLU
from nnfs.app.cli import train
from nnfs.app.inference import Classifier, find_images
from nnfs.app.models import reference_cnn
from nnfs.backend import backend_of, get_backend, to_numpy, using
from nnfs.checkpoint import load, load_into, save
from nnfs.layers import AvgPool2D, BatchNorm1D, BatchNorm2D, Conv2D, Flatten, GlobalAvgPool2D, Linear, MaxPool2D
from nnfs.losses import CrossEntropyLoss
from nnfs.net import Net
from nnfs.optim import SGD, Adam, AdamW, clip_grad_norm

ROOT = pathlib.Path(__file__).resolve().parents[2]
DDP_STEPS = ROOT / "tests" / "distributed" / "mpi_scripts" / "ddp_steps.py"
# The strict backend is NumPy underneath (only memory layouts differ); CuPy sums in another order.
TOLERANCE = {"strict": 1e-12, "cupy": 1e-9}


@pytest.fixture
def device(backend):
    if not backend.is_device:
        pytest.skip("NumPy is the reference these runs are compared with")
    return backend


def assert_same(ours, reference, device):
    """Two dicts of numbers (arrays on any device, or floats): same keys, dtypes and values."""
    assert sorted(ours) == sorted(reference)
    tolerance = TOLERANCE[device.name]
    for key in reference:
        mine, theirs = to_numpy(ours[key]), to_numpy(reference[key])
        assert mine.dtype == theirs.dtype, key
        np.testing.assert_allclose(mine, theirs, rtol=tolerance, atol=tolerance, err_msg=key)


def small_cnn(backend):
    nnfs.seed(11)
    layers = [Conv2D(2, 3, 3, padding=1), BatchNorm2D(3), ReLU(), MaxPool2D(2), Flatten(), Linear(3 * 3 * 3, 4)]
    return Net(layers, CrossEntropyLoss(), backend=backend, dtype="float64")


def batches(n_batches=3, seed=5):
    rng = np.random.default_rng(seed)
    return [(rng.normal(size=(6, 2, 6, 6)), rng.integers(0, 4, size=6)) for _ in range(n_batches)]


def numbers_of(net, optimizer=None):
    found = {f"param {name}": value for name, value in net.state_dict().items()}
    found.update({f"grad {name}": grad for name, _, grad in net.named_parameters()})
    if optimizer is not None:
        found.update({f"state {name}": value for name, value in optimizer.state_dict()["state"].items()})
    return found


# -- the optimizers ------------------------------------------------------------------------------------

OPTIMIZERS = {
    "sgd": lambda net: SGD(net, lr=0.1),
    "sgd-momentum": lambda net: SGD(net, lr=0.05, momentum=0.9, weight_decay=1e-3),
    "sgd-nesterov": lambda net: SGD(net, lr=0.05, momentum=0.9, nesterov=True),
    "adam": lambda net: Adam(net, lr=1e-2, weight_decay=1e-3),
    "adamw": lambda net: AdamW(net, lr=1e-2, weight_decay=0.1),
}


def optimizer_run(backend, name, clip):
    net = small_cnn(backend)
    optimizer = OPTIMIZERS[name](net)
    found = {}
    for step, (X, y) in enumerate(batches()):
        found[f"loss {step}"] = net.loss(net(X), y)
        net.backward()
        if clip:
            found[f"norm {step}"] = clip_grad_norm(net, 0.5)
        optimizer.step()
        found.update({f"{key} after step {step}": value for key, value in numbers_of(net, optimizer).items()})
    return found


@pytest.mark.parametrize("clip", [False, True], ids=["", "clipped"])
@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_optimizers_match_numpy(device, name, clip):
    assert_same(optimizer_run(device, name, clip), optimizer_run("numpy", name, clip), device)


# -- layers that only the PyTorch comparisons covered -----------------------------------------------

LAYERS = {
    "avgpool": (lambda: AvgPool2D(2), (3, 2, 7, 6)),
    "avgpool-stride-padding": (lambda: AvgPool2D(3, stride=2, padding=1), (3, 2, 7, 6)),
    "globalavgpool": (lambda: GlobalAvgPool2D(), (3, 2, 5, 4)),
    "batchnorm1d": (lambda: BatchNorm1D(5, dtype="float64"), (6, 5)),
}


def layer_run(backend, name):
    backend = get_backend(backend)
    make, shape = LAYERS[name]
    rng = np.random.default_rng(3)
    layer = make().to(backend, "float64")
    found = {}
    for step in range(2):  # BatchNorm1D's running statistics after two batches
        X = backend.asarray(rng.normal(size=shape), dtype="float64")
        Y = layer(X)
        found[f"output {step}"] = Y
        found[f"input grad {step}"] = layer.backward(backend.asarray(rng.normal(size=Y.shape), dtype="float64"))
        found.update({f"grad {key} {step}": value for key, value in layer.grads.items()})
        found.update({f"buffer {key} {step}": value for key, value in layer.buffers.items()})
    layer.eval()
    found["eval output"] = layer(X)
    return found


@pytest.mark.parametrize("name", list(LAYERS))
def test_pooling_and_batchnorm1d_match_numpy(device, name):
    assert_same(layer_run(device, name), layer_run("numpy", name), device)


def reference_cnn_run(backend):
    nnfs.seed(2)
    net = reference_cnn(1, (8, 12), 3, hidden=16, backend=backend, dtype="float64")
    optimizer = SGD(net, lr=0.05, momentum=0.9)
    rng = np.random.default_rng(4)
    X, y = rng.normal(size=(5, 1, 8, 12)), rng.integers(0, 3, size=5)
    found = {}
    for step in range(3):
        found[f"output {step}"] = out = net(X)
        found[f"loss {step}"] = net.loss(out, y)
        found[f"input grad {step}"] = net.backward(input_grad=True)
        optimizer.step()
    found.update(numbers_of(net, optimizer))
    found["eval output"] = net.eval()(X)
    found["probabilities"] = net.predict_proba(X)
    return found


def test_the_reference_cnn_trains_like_numpy(device):
    assert_same(reference_cnn_run(device), reference_cnn_run("numpy"), device)


# -- optimizer state moved between devices ------------------------------------------------------------

@pytest.mark.parametrize("name", ["sgd-momentum", "adam"])
def test_optimizer_state_follows_the_net_between_devices(device, name):
    def run(path):
        net = small_cnn(path[0])
        optimizer = OPTIMIZERS[name](net)
        for where, (X, y) in zip(path, batches(n_batches=len(path))):
            net.to(where)
            net.loss(net(X), y)
            net.backward()
            optimizer.step()
            for slots in optimizer.state.values():
                for value in slots.values():
                    assert backend_of(value) == backend_of(net.layers[0].params["weight"])
        return numbers_of(net.to("numpy"), optimizer)

    moved = run(["numpy", "numpy", device, device, "numpy"])
    assert_same(moved, run(["numpy"] * 5), device)


# -- checkpoints, prediction, the example script, resuming ------------------------------------------

def test_load_into_a_device_net_matches_numpy(device, tmp_path):
    trained = small_cnn("numpy")
    optimizer = OPTIMIZERS["adam"](trained)
    for X, y in batches():
        trained.loss(trained(X), y)
        trained.backward()
        optimizer.step()
    save(tmp_path / "m.npz", trained, optimizer=optimizer)
    X = batches(1, seed=9)[0][0]

    def loaded(backend):
        net = small_cnn(backend)
        checkpoint = load_into(tmp_path / "m.npz", net)
        assert checkpoint.net is net
        return {**{f"param {k}": v for k, v in net.state_dict().items()}, "output": net(X)}

    assert_same(loaded(device), loaded("numpy"), device)


@pytest.fixture
def images(tmp_path):
    return make_folder(tmp_path / "shapes", ["circle", "square", "star"], per_class=6, mode="L", size=(12, 12))


def run_example(backend, monkeypatch, *argv):
    """The example's program (nnfs.app.cli.train) in this process, on ``backend``, in float64."""
    monkeypatch.setenv("NNFS_DTYPE", "float64")
    with using(backend):
        assert train.main([str(arg) for arg in argv]) == 0


def checkpoint_numbers(path):
    saved = load(path, backend="numpy")
    found = {f"param {name}": value for name, value in saved.net.state_dict().items()}
    if saved.optimizer_state is not None:
        found.update({f"state {k}": v for k, v in saved.optimizer_state["state"].items()})
    history = saved.extra["run"]["history"]
    found.update({f"{key}": np.array(values) for key, values in history.items()})
    return found


EXAMPLE = ["--epochs", "2", "--batch_size", "5", "--val_split", "0.2", "--optimizer", "adam",
           "--schedule", "cosine"]


def test_the_example_script_trains_like_numpy(device, images, tmp_path, monkeypatch):
    run_example(device, monkeypatch, "--dataset", images, *EXAMPLE, "--save", tmp_path / "device.npz")
    run_example("numpy", monkeypatch, "--dataset", images, *EXAMPLE, "--save", tmp_path / "numpy.npz")
    assert_same(checkpoint_numbers(tmp_path / "device_last.npz"),
                checkpoint_numbers(tmp_path / "numpy_last.npz"), device)


def test_resume_continues_on_the_device_like_numpy(device, images, tmp_path, monkeypatch):
    # One epoch on NumPy, saved; then the run resumed (resume(): optimizer, schedule, shuffling)
    # for a second epoch, once on the device and once on NumPy.
    run_example("numpy", monkeypatch, "--dataset", images, *EXAMPLE[:1], "1", *EXAMPLE[2:],
                "--save", tmp_path / "first.npz")
    for backend, name in ((device, "device"), ("numpy", "numpy")):
        run_example(backend, monkeypatch, "--dataset", images, *EXAMPLE, "--resume",
                    tmp_path / "first_last.npz", "--save", tmp_path / f"{name}.npz")
    assert_same(checkpoint_numbers(tmp_path / "device_last.npz"),
                checkpoint_numbers(tmp_path / "numpy_last.npz"), device)


def test_prediction_matches_numpy(device, images, tmp_path, monkeypatch):
    run_example("numpy", monkeypatch, "--dataset", images, *EXAMPLE, "--save", tmp_path / "m.npz")
    paths = find_images(str(images))

    def predicted(backend):
        found = {}
        for prediction in Classifier(str(tmp_path / "m.npz"), backend=backend).predict(paths, top=3):
            assert prediction.error is None
            found[f"{prediction.path} classes"] = np.array([names.index(c) for c, _ in prediction.top])
            found[f"{prediction.path} probabilities"] = np.array([p for _, p in prediction.top])
        return found

    names = ["circle", "square", "star"]
    assert_same(predicted(device), predicted("numpy"), device)


# -- distributed.init() and the host transport, with device buffers --------------------------------

def ddp_run(backend, out, *args):
    """``ddp_steps.py`` as one rank (no mpiexec): init(), DataParallel's broadcast and allreduce
    through host memory, on ``backend``'s buffers."""
    env = dict(os.environ, NNFS_BACKEND=backend, NNFS_TRANSPORT="host", OMP_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    out.mkdir()
    done = subprocess.run([sys.executable, str(DDP_STEPS), "--out", str(out), *args], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    report = json.loads((out / "rank0.json").read_text())
    assert report["transport"] == "host" and report["size"] == 1
    with np.load(out / "rank0.npz") as saved:
        return {**dict(saved), **{f"total {k}": np.array(v) for k, v in report["totals"].items()}}


@pytest.mark.parametrize("batchnorm", [False, True], ids=["", "batchnorm"])
def test_distributed_init_and_the_host_transport_with_device_buffers(device, tmp_path, batchnorm):
    if importlib.util.find_spec("mpi4py") is None:
        pytest.skip("mpi4py is not installed (pip install -e '.[mpi]')")
    args = ["--batchnorm"] if batchnorm else []
    assert_same(ddp_run(device.name, tmp_path / "device", *args),
                ddp_run("numpy", tmp_path / "numpy", *args), device)
