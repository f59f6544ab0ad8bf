"""A stand-in for CuPy 14's module layout, written to disk so that imports behave as they do.

nnfs's GPU plumbing (the NCCL transport, the current stream, the memory hook) cannot run
without a GPU, and a namespace of attributes would let a test pass that the real CuPy
fails (as an invented ``cupy.cuda.nccl_enabled`` flag once did). So the fake is a real
package, laid out as CuPy 14.2's is (``cupy/cuda/__init__.py``, ``cupy/cuda/nccl.py``,
``cupy_backends/cuda/libs/nccl``):

- ``cupy.cuda`` does not import ``nccl``: the attribute exists only after
  ``import cupy.cuda.nccl``, and unknown attributes (``nccl_enabled``) raise
  AttributeError through the module's ``__getattr__``, as CuPy's does;
- ``cupy/cuda/nccl.py`` sets ``available = False`` and warns when the library does not
  load, or re-exports the bindings, whose ``get_unique_id()`` returns bytes and whose
  ``NcclCommunicator(ndev, commId, rank)`` takes them (CuPy 14's signatures);
- streams, devices, the runtime's version and device count, the memory pool and the
  memory-hook registry follow ``cupy.cuda``'s names.

Every call into the fake is appended to ``cupy.calls`` for the tests to inspect.
"""

import sys
import textwrap

import pytest

CUPY_INIT = '''
"""Fake CuPy 14 (tests only)."""
calls = []
from cupy import cuda  # noqa: E402


class ndarray:
    def __init__(self, size, dtype, ptr):
        self.size, self.dtype = size, dtype
        self.data = cuda.memory.MemoryPointer(ptr)


def is_available():
    return cuda.runtime.getDeviceCount() > 0


def get_default_memory_pool():
    return cuda.memory.POOL
'''

CUDA_INIT = '''
import cupy
from cupy.cuda import memory, memory_hook, runtime  # noqa: F401
from cupy.cuda.memory_hook import MemoryHook  # noqa: F401


class Stream:
    def __init__(self, ptr):
        self.ptr = ptr

    def synchronize(self):
        cupy.calls.append(("synchronize", self.ptr))


Stream.null = Stream(0)
_current = Stream(77)


def get_current_stream():
    return _current


class Device:
    def __init__(self, index):
        self.id = index

    def use(self):
        cupy.calls.append(("use_device", self.id))


def __getattr__(key):  # as in CuPy 14: unknown names (nccl_enabled among them) do not exist
    raise AttributeError("module '{}' has no attribute '{}'".format(__name__, key))
'''

RUNTIME = '''
DEVICES = {devices}
VERSION = {version}


def getDeviceCount():
    return DEVICES


def runtimeGetVersion():
    return VERSION
'''

MEMORY = '''
from cupy.cuda import memory_hook


class MemoryPointer:
    def __init__(self, ptr):
        self.ptr = ptr


class Pool:
    """Hands out blocks and calls the registered hooks, as CuPy's pool does."""

    def __init__(self):
        self.used = 0

    def used_bytes(self):
        return self.used

    def malloc(self, size):
        rounded = -(-size // 512) * 512
        self.used += rounded
        for hook in memory_hook.get_memory_hooks().values():
            hook.malloc_postprocess(device_id=0, size=size, mem_size=rounded, mem_ptr=1, pmem_id=1)
        return rounded

    def free(self, rounded):
        self.used -= rounded
        for hook in memory_hook.get_memory_hooks().values():
            hook.free_postprocess(device_id=0, mem_size=rounded, mem_ptr=1, pmem_id=1)


POOL = Pool()
'''

MEMORY_HOOK = '''
_hooks = {}


def get_memory_hooks():
    return _hooks


class MemoryHook:
    name = "MemoryHook"

    def __enter__(self):
        if self.name in _hooks:
            raise KeyError("memory hook %s already exists" % self.name)
        _hooks[self.name] = self
        return self

    def __exit__(self, *_):
        del _hooks[self.name]

    def malloc_postprocess(self, **kwargs):
        pass

    def free_postprocess(self, **kwargs):
        pass
'''

# cupy/cuda/nccl.py in CuPy 14.2, with the library load made configurable.
NCCL = '''
import warnings

available = True

try:
    if not {loads}:
        raise ImportError("libnccl.so.2: cannot open shared object file: No such file or directory")
    from cupy_backends.cuda.libs.nccl import *  # noqa: F401,F403
except ImportError as e:
    available = False
    warnings.warn(
        "\\nnccl library could not be loaded.\\n\\nReason: {{}} ({{}})\\n\\nYou can install the "
        "library by:\\n  $ pip install nvidia-nccl-cu13".format(type(e).__name__, e))
'''

BINDINGS = '''
import cupy

NCCL_FLOAT32, NCCL_FLOAT64, NCCL_SUM = 7, 8, 0


def get_unique_id():
    return bytes(range(128))


class NcclCommunicator:
    def __init__(self, ndev, commId, rank):
        if not isinstance(commId, bytes):
            raise TypeError("Argument 'commId' has incorrect type (expected bytes)")
        self.created = (ndev, commId, rank)
        cupy.calls.append(("NcclCommunicator", ndev, rank))

    def allReduce(self, sendbuf, recvbuf, count, datatype, op, stream):
        cupy.calls.append(("allReduce", sendbuf, recvbuf, count, datatype, op, stream))

    def bcast(self, buff, count, datatype, root, stream):
        cupy.calls.append(("bcast", buff, count, datatype, root, stream))
'''


def _forget_cupy():
    for name in [n for n in sys.modules if n.split(".")[0] in ("cupy", "cupy_backends")]:
        del sys.modules[name]


@pytest.fixture
def fake_cupy(tmp_path, monkeypatch):
    """``make(nccl="loads" | "missing-library" | "no-module", cuda=13, devices=2)`` writes and
    imports a fake CuPy 14; returns the ``cupy`` module. The real one, if any, is restored."""
    saved = {n: m for n, m in sys.modules.items() if n.split(".")[0] in ("cupy", "cupy_backends")}

    def make(nccl="loads", cuda=13, devices=2):
        root = tmp_path / f"fake-cupy-{nccl}-{cuda}-{devices}"
        files = {
            "cupy/__init__.py": CUPY_INIT,
            "cupy/cuda/__init__.py": CUDA_INIT,
            "cupy/cuda/runtime.py": RUNTIME.format(devices=devices, version=cuda * 1000 + 20),
            "cupy/cuda/memory.py": MEMORY,
            "cupy/cuda/memory_hook.py": MEMORY_HOOK,
            "cupy_backends/__init__.py": "",
            "cupy_backends/cuda/__init__.py": "",
            "cupy_backends/cuda/libs/__init__.py": "",
            "cupy_backends/cuda/libs/nccl.py": BINDINGS,
        }
        if nccl != "no-module":
            files["cupy/cuda/nccl.py"] = NCCL.format(loads=nccl == "loads")
        for name, text in files.items():
            path = root / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(text))
        _forget_cupy()
        monkeypatch.syspath_prepend(str(root))
        import cupy
        return cupy

    yield make
    _forget_cupy()
    sys.modules.update(saved)
