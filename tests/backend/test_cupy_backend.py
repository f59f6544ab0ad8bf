"""The CuPy backend's own plumbing: which stream it waits on, how it measures memory, what it says.

The calls are checked against a fake CuPy laid out as CuPy 14 is (tests/fakecupy.py); the
same measurements run on a real GPU where there is one.
"""

from pathlib import Path

import numpy as np
import pytest

from tests.conftest import load_backend
from tests.fakecupy import fake_cupy  # noqa: F401 (a fixture)
from nnfs.backend import cupy_backend
from nnfs.backend.cupy_backend import CupyBackend


def test_synchronize_waits_on_the_current_stream_not_the_null_stream(fake_cupy):
    cupy = fake_cupy()
    CupyBackend().synchronize()
    assert cupy.calls == [("synchronize", cupy.cuda.get_current_stream().ptr)]
    assert cupy.cuda.get_current_stream().ptr != cupy.cuda.Stream.null.ptr


def test_current_stream_device_pointer_and_cuda_version(fake_cupy):
    cupy = fake_cupy(cuda=12)
    backend = CupyBackend()
    assert backend.current_stream() == 77
    assert backend.device_pointer(cupy.ndarray(4, np.dtype("float32"), ptr=4096)) == 4096
    assert backend.cuda_major() == 12


def test_peak_memory_counts_live_blocks_not_the_cached_pool(fake_cupy):
    cupy = fake_cupy()
    pool = cupy.get_default_memory_pool()
    kept = pool.malloc(1000)  # 1024 bytes held before the measurement: part of the peak

    def work():
        first = pool.malloc(4096)
        pool.free(first)  # returned to the pool: no longer in use, though the pool keeps it
        second = pool.malloc(2048)
        third = pool.malloc(100)  # rounded up to 512
        pool.free(second)
        pool.free(third)

    assert CupyBackend().measure_peak_memory(work) == 1024 + 4096
    assert cupy.cuda.memory_hook.get_memory_hooks() == {}  # the hook is gone afterwards
    pool.free(kept)


def test_the_host_backends_keep_no_device_count(backend):
    if backend.is_device and backend.name == "cupy":
        pytest.skip("the GPU backend: measured below")
    ran = []
    assert backend.measure_peak_memory(lambda: ran.append(1)) is None and ran == [1]


@pytest.mark.gpu
def test_peak_memory_on_a_gpu_sees_the_arrays_of_the_work():
    backend = load_backend("cupy")
    xp = backend.xp

    def work():
        a = xp.ones(2**20, dtype="float32")  # 4 MiB
        (a * 2).sum()

    assert backend.measure_peak_memory(work) >= 2 * 4 * 2**20


def test_install_hints_name_one_cuda_per_extra_and_the_toolkit_libraries():
    hint = cupy_backend.INSTALL_HINT
    assert ".[gpu-cuda13]" in hint and ".[gpu-cuda12]" in hint and "[ctk]" in hint


def test_the_gpu_extras_install_one_cupy_each_and_say_where_the_cuda_libraries_come_from():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    root = Path(__file__).resolve().parents[2]
    extras = tomllib.loads((root / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    cupys = {name: [req for req in reqs if req.startswith("cupy")] for name, reqs in extras.items()}
    assert cupys["gpu-cuda12"] == ["cupy-cuda12x>=14,<15"]
    assert cupys["gpu-cuda13"] == ["cupy-cuda13x>=14,<15"]
    # No other extra (test, mpi, ...) brings a CuPy, so `.[gpu-cuda13,test]` installs exactly one.
    assert all(not found for name, found in cupys.items() if not name.startswith("gpu-"))
    guide = (root / "docs" / "gpu.md").read_text()
    assert "cupy-cuda13x[ctk]" in guide and "cupy-cuda12x[ctk]" in guide and "never both" in guide
