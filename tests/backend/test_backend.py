"""The backend switch: environment variables, errors that say what to do, seeding, transfers."""

import os
import subprocess
import sys
import types

import numpy as np
import pytest

import nnfs
import nnfs.backend as backend_module
from nnfs.backend import (
    BACKEND_NAMES, as_dtype, backend_of, default_backend, default_dtype, get_array_module,
    get_backend, to_numpy)
from nnfs.layers import BatchNorm2D, Conv2D, Linear
from tests import ROOT, environment


def run_python(code, **env):
    """Run ``code`` in a fresh interpreter (NNFS_BACKEND is read once per process)."""
    changes = {name: None for name in os.environ if name.startswith("NNFS_")}
    changes.update(env)
    return subprocess.run([sys.executable, "-c", code], env=environment(**changes), cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


@pytest.fixture
def fresh_default(monkeypatch):
    """Forget the cached default backend for one test; monkeypatch puts it back afterwards."""
    monkeypatch.setattr(backend_module, "_default_name", None)
    return monkeypatch


@pytest.fixture
def no_cupy(monkeypatch):
    """Make ``import cupy`` fail as it does where CuPy is not installed."""
    monkeypatch.setitem(sys.modules, "cupy", None)
    monkeypatch.delitem(backend_module._backends, "cupy", raising=False)
    return monkeypatch


def test_unknown_backend_in_environment_lists_the_allowed_names(fresh_default):
    fresh_default.setenv("NNFS_BACKEND", "tensorflow")
    with pytest.raises(ValueError, match="tensorflow") as error:
        default_backend()
    for name in BACKEND_NAMES:
        assert name in str(error.value)
    assert "NNFS_BACKEND" in str(error.value)


def test_unknown_backend_fails_a_fresh_process_clearly():
    result = run_python("import nnfs.layers as L; L.Linear(2, 2)", NNFS_BACKEND="torch")
    assert result.returncode != 0
    assert "ValueError" in result.stderr and "numpy, cupy, strict" in result.stderr


def test_unknown_backend_argument_raises():
    with pytest.raises(ValueError, match="numpy, cupy, strict"):
        get_backend("gpu")
    with pytest.raises(TypeError):
        get_backend(3)


@pytest.mark.parametrize("value, expected", [("strict", "strict"), (" NumPy ", "numpy"), ("", "numpy")])
def test_backend_from_environment(fresh_default, value, expected):
    fresh_default.setenv("NNFS_BACKEND", value)
    assert default_backend().name == expected
    assert Linear(2, 3).backend.name == expected


def test_cupy_without_cupy_names_the_fix(no_cupy):
    with pytest.raises(RuntimeError) as error:
        get_backend("cupy")
    message = str(error.value)
    assert message.startswith("CuPy is not installed (the cupy backend needs it): ")
    assert "pip install" in message and "NNFS_BACKEND=numpy" in message
    assert "NNFS_BACKEND=cupy" not in message  # asked for by name, not by the variable


def test_cupy_without_a_gpu_says_so(monkeypatch):
    # `import cupy` succeeds without a GPU; only is_available() tells.
    fake = types.ModuleType("cupy")
    fake.is_available = lambda: False
    monkeypatch.setitem(sys.modules, "cupy", fake)
    monkeypatch.delitem(backend_module._backends, "cupy", raising=False)
    with pytest.raises(RuntimeError, match="no usable NVIDIA GPU"):
        get_backend("cupy")


def test_cupy_from_environment_without_cupy(fresh_default, no_cupy):
    fresh_default.setenv("NNFS_BACKEND", "cupy")
    with pytest.raises(RuntimeError, match=r"^NNFS_BACKEND=cupy: CuPy is not installed \(the cupy backend"):
        Linear(2, 2)


def test_import_and_train_without_cupy():
    code = (
        "import sys; sys.modules['cupy'] = None\n"
        "import numpy as np, nnfs\n"
        "from nnfs.net import Net\n"
        "from nnfs.layers import Linear\n"
        "from nnfs.losses import CrossEntropyLoss\n"
        "net = Net([Linear(3, 2)], CrossEntropyLoss())\n"
        "net.loss(net(np.ones((4, 3))), np.array([0, 1, 0, 1])); net.backward(); net.update_weights(0.1)\n"
        "assert sys.modules['cupy'] is None\n"
        "print('ok', net.backend.name)\n")
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok numpy"


def test_same_seed_same_weights_on_every_backend(backend):
    def weights(name):
        nnfs.seed(42)
        layers = [Linear(5, 4), Conv2D(2, 3, 3)]
        return [to_numpy(layer.to(name).params["weight"]) for layer in layers]

    for ours, reference in zip(weights(backend), weights("numpy")):
        np.testing.assert_array_equal(ours, reference)
    nnfs.seed(43)
    assert not np.array_equal(to_numpy(Linear(5, 4).params["weight"]), weights("numpy")[0])


@pytest.mark.parametrize("value, error, text", [
    (-1, ValueError, "an int >= 0, got -1"), ("a", TypeError, "an int, got 'a'"),
    (1.5, TypeError, "an int, got 1.5"), (True, TypeError, "an int, got True")])
def test_a_bad_seed_is_a_one_line_error_naming_nnfs_seed(value, error, text):
    # NumPy's own errors named its SeedSequence or a .pyx file, never nnfs.seed.
    with pytest.raises(error, match=rf"^nnfs\.seed: the seed must be {text}$"):
        nnfs.seed(value)
    nnfs.seed(np.int64(5))
    nnfs.seed(None)


def test_dtype_from_environment(monkeypatch):
    monkeypatch.setenv("NNFS_DTYPE", "float64")
    assert default_dtype() == np.float64
    assert Linear(2, 2).dtype == np.float64
    assert BatchNorm2D(2).buffers["running_var"].dtype == np.float64
    monkeypatch.setenv("NNFS_DTYPE", "float16")
    with pytest.raises(ValueError, match="NNFS_DTYPE"):
        default_dtype()
    monkeypatch.delenv("NNFS_DTYPE")
    assert Linear(2, 2).dtype == np.float32


def test_float64_net_from_environment_in_a_fresh_process():
    code = ("import numpy as np\nfrom nnfs.net import Net\nfrom nnfs.layers import Linear\n"
            "print(Net([Linear(2, 2)])(np.ones((1, 2))).dtype)")
    result = run_python(code, NNFS_DTYPE="float64")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "float64"


@pytest.mark.parametrize("dtype", ["int32", "float16", "complex64"])
def test_only_float32_and_float64_are_accepted(dtype):
    with pytest.raises(ValueError, match="float32 or float64"):
        as_dtype(dtype)
    with pytest.raises(ValueError):
        Linear(2, 2, dtype=dtype)


def test_arrays_report_their_backend(backend):
    x = backend.asarray(np.arange(3.0))
    assert backend_of(x) == backend
    assert get_array_module(x) is backend.xp
    assert backend.is_array(x)
    back = to_numpy(x)
    assert type(back) is np.ndarray
    np.testing.assert_array_equal(back, [0.0, 1.0, 2.0])
    assert backend_of(np.ones(2)).name == "numpy" and backend_of(1.0).name == "numpy"
    assert get_backend(backend) is backend


def test_numpy_arrays_of_every_kind_are_numpy_s():
    # A plain ndarray (a view is one too) skips asking the other backends; a subclass, a
    # scalar, a list and None take the general way, and all of them are NumPy's.
    class Tagged(np.ndarray):
        pass

    for value in (np.ones(2), np.ones(3)[1:], np.ones(2).view(Tagged), np.float32(1.0), [1.0], None):
        assert backend_of(value).name == "numpy", type(value)


def test_using_scopes_where_new_parameters_go():
    from nnfs.backend import default_backend, using
    before = default_backend()
    with using("strict") as strict:
        assert default_backend() is strict
        layer = Linear(2, 3)
        with using("numpy"):
            assert Linear(2, 3).backend.name == "numpy"
        assert default_backend() is strict
    assert default_backend() is before
    assert layer.backend.name == "strict"  # what was built inside stays there
