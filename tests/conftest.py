"""Shared fixtures: every backend-dependent test is written once and runs on each backend.

- ``numpy``: the CPU backend.
- ``strict``: NumPy arrays that refuse to mix with plain NumPy arrays, as CuPy does;
  it proves on CPU-only machines that no host array leaks into a device run.
- ``cupy``: marked ``gpu``; skipped unless CuPy and a usable GPU are present.

``NNFS_BACKEND`` picks the backend of the tests that do not take the ``backend`` fixture
(``NNFS_BACKEND=strict python -m pytest -q``). The shell's other ``NNFS_*`` settings (a
float64 default, a thread count, a memory limit, ...) are removed when the session starts, and
the dataset cache is a temporary folder: the tests are written for the defaults, and those
about a setting set it themselves.

A test that compares with PyTorch takes the ``torch`` fixture: it is skipped where
torch is not installed and marked ``torch`` (``pytest -m torch`` runs them all).
"""

import os

import numpy as np
import pytest

import nnfs
from nnfs.backend import get_backend

BACKENDS = [
    pytest.param("numpy", id="numpy"),
    pytest.param("strict", id="strict"),
    pytest.param("cupy", id="cupy", marks=pytest.mark.gpu),
]


def load_backend(name):
    try:
        return get_backend(name)
    except RuntimeError as error:  # CuPy missing or no GPU
        pytest.skip(str(error))


@pytest.fixture(params=BACKENDS)
def backend(request):
    """Each backend in turn (CuPy only where a GPU is usable)."""
    return load_backend(request.param)


@pytest.fixture
def torch():
    """The torch module; the test is skipped where it is not installed."""
    return pytest.importorskip("torch")


def pytest_collection_modifyitems(items):
    for item in items:
        if "torch" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.torch)


@pytest.fixture
def rng():
    """A seeded host generator for test data."""
    return np.random.default_rng(1234)


#: The one ``NNFS_*`` setting of the shell the tests see (see the module docstring).
SUITE_SETTING = "NNFS_BACKEND"


def shell_settings():
    """The ``NNFS_*`` variables of the environment other than :data:`SUITE_SETTING`."""
    return [name for name in os.environ if name.startswith("NNFS_") and name != SUITE_SETTING]


def pytest_configure(config):
    """The defaults of nnfs's settings, whatever the shell that runs the tests has set: removed
    before any test or fixture runs (a fixture shared by a module's tests included), and for
    the processes the tests start too. Every ``NNFS_*`` variable, so that a setting added later
    is set aside as well."""
    for name in shell_settings():
        del os.environ[name]


@pytest.fixture(autouse=True)
def seeded_weights():
    """Every test starts from the same initial weights: failures reproduce, nothing depends on order."""
    nnfs.seed(0)


@pytest.fixture(autouse=True, scope="session")
def dataset_cache(tmp_path_factory):
    """The training program caches decoded datasets; in tests, in a temporary folder, never in ~/.cache."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("NNFS_CACHE_DIR", str(tmp_path_factory.mktemp("dataset-cache")))
        yield
