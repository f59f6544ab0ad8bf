"""Keeping freed host memory for the next step: when glibc's thresholds are set, and to what."""

import sys

import numpy as np
import pytest

import nnfs.backend.allocator as allocator
from nnfs.backend import get_backend
from nnfs.layers import Linear
from nnfs.losses import CrossEntropyLoss
from nnfs.net import Net
from tests.backend.test_backend import run_python


class FakeLibc:
    """Records mallopt calls; answers as glibc does (1: done)."""

    def __init__(self, answer=1):
        self.calls, self.answer = [], answer

    def mallopt(self, parameter, value):
        self.calls.append((parameter, value))
        return self.answer


@pytest.fixture
def fresh(monkeypatch):
    """An undecided allocator with a fake glibc and none of the user's malloc settings."""
    monkeypatch.setattr(allocator, "_decided", None)
    libc = FakeLibc()
    monkeypatch.setattr(allocator, "_glibc", lambda: libc)
    monkeypatch.setattr(allocator, "_strict_overcommit", lambda: False)  # whatever this machine's setting
    for name in allocator._USER_SETTINGS + (allocator.ENVIRONMENT_VARIABLE, "GLIBC_TUNABLES"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch, libc


def test_sets_both_thresholds_and_the_pad_once(fresh):
    _, libc = fresh
    assert allocator.keep_freed_memory() is True
    assert allocator.keep_freed_memory() is True
    assert libc.calls == [(-3, allocator.MMAP_THRESHOLD), (-1, allocator.TRIM_THRESHOLD), (-2, allocator.TOP_PAD)]
    assert allocator.MMAP_THRESHOLD == 32 * 2**20 and allocator.TRIM_THRESHOLD == 256 * 2**20
    assert allocator.TOP_PAD == 64 * 2**20


def test_the_pad_is_left_out_where_the_kernel_counts_commits_strictly(fresh):
    # vm.overcommit_memory = 2: a padded thread heap commits its whole 64 MiB at once.
    monkeypatch, libc = fresh
    monkeypatch.setattr(allocator, "_strict_overcommit", lambda: True)
    assert allocator.keep_freed_memory() is True
    assert libc.calls == [(-3, allocator.MMAP_THRESHOLD), (-1, allocator.TRIM_THRESHOLD)]


@pytest.mark.parametrize("name, value", [
    ("NNFS_KEEP_FREED_MEMORY", "0"), ("MALLOC_TRIM_THRESHOLD_", "1000000"),
    ("MALLOC_MMAP_THRESHOLD_", "65536"), ("MALLOC_ARENA_MAX", "2"),
    ("GLIBC_TUNABLES", "glibc.malloc.hugetlb=1")])
def test_the_users_choice_is_left_alone(fresh, name, value):
    monkeypatch, libc = fresh
    monkeypatch.setenv(name, value)
    assert allocator.keep_freed_memory() is False
    assert libc.calls == []


def test_other_tunables_and_other_values_of_the_switch_still_set_them(fresh):
    monkeypatch, libc = fresh
    monkeypatch.setenv("GLIBC_TUNABLES", "glibc.rtld.optional_static_tls=2048")
    monkeypatch.setenv("NNFS_KEEP_FREED_MEMORY", "1")
    assert allocator.keep_freed_memory() is True
    assert len(libc.calls) == 3


def test_without_glibc_nothing_is_called(fresh):
    monkeypatch, _ = fresh
    monkeypatch.setattr(allocator, "_glibc", lambda: None)
    assert allocator.keep_freed_memory() is False


def test_a_refused_setting_reports_false(fresh):
    monkeypatch, _ = fresh
    libc = FakeLibc(answer=0)
    monkeypatch.setattr(allocator, "_glibc", lambda: libc)
    assert allocator.keep_freed_memory() is False
    assert len(libc.calls) == 1  # the second is not tried once the first is refused


@pytest.mark.parametrize("name, expected", [("numpy", True), ("strict", False)])
def test_a_net_sets_them_on_the_cpu_backend_only(fresh, name, expected):
    _, libc = fresh
    net = Net([Linear(4, 3)], CrossEntropyLoss(), backend=name)
    net(np.zeros((2, 4), dtype=np.float32))
    assert bool(libc.calls) is expected
    assert allocator._decided is (True if expected else None)
    get_backend(name).prepare()  # cheap and idempotent on every backend
    assert len(libc.calls) == (3 if expected else 0)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc is a Linux C library")
def test_the_real_glibc_accepts_them_in_a_fresh_process():
    code = ("import nnfs.backend.allocator as a; print(a._glibc() is not None, a.keep_freed_memory())")
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    found, done = result.stdout.split()
    assert done == found  # set wherever the C library is glibc (musl: neither)
    assert run_python(code, NNFS_KEEP_FREED_MEMORY="0").stdout.split()[1] == "False"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc is a Linux C library")
def test_a_threads_freed_heaps_are_kept_for_its_next_step():
    # A thread other than the main one allocates from heaps of its own, which glibc unmaps
    # once they are free unless the pad says to keep them: the next "step" then faulted
    # every page in again (20,482 faults a round here without the pad, none with it).
    # Transparent huge pages are turned off for the process: where the kernel backs the heaps
    # with them (THP "always", or NumPy's madvise of large arrays), a round takes its memory
    # in about 100 faults of 2 MiB, and the count says nothing.
    code = """
import resource, threading
import numpy as np
import nnfs.backend.allocator as a
if a._glibc() is None or a._strict_overcommit() or a._glibc().prctl(41, 1, 0, 0, 0) != 0:  # PR_SET_THP_DISABLE
    print("skip")
    raise SystemExit
assert a.keep_freed_memory()
faults = []
def step():
    for _ in range(4):
        before = resource.getrusage(resource.RUSAGE_THREAD).ru_minflt
        arrays = [np.ones(2**21, dtype=np.float32) for _ in range(24)]  # 24 x 8 MiB: several heaps
        del arrays
        faults.append(resource.getrusage(resource.RUSAGE_THREAD).ru_minflt - before)
thread = threading.Thread(target=step)
thread.start()
thread.join()
print(*faults)
"""
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    if result.stdout.split() == ["skip"]:
        pytest.skip("the C library is not glibc, commits are counted strictly (no pad), or huge pages cannot be turned off")
    first, *later = (int(value) for value in result.stdout.split())
    assert first > 1000  # the first round takes its memory from the kernel
    assert max(later) < first // 10, result.stdout  # the later ones reuse it


@pytest.mark.parametrize("value, enabled", [("", True), ("1", True), (" 0 ", False), ("0", False)])
def test_the_variable_is_0_or_1(monkeypatch, value, enabled):
    monkeypatch.setenv(allocator.ENVIRONMENT_VARIABLE, value)
    assert allocator.enabled_by_environment() is enabled


@pytest.mark.parametrize("value", ["bogus", "2", "off", "yes"])
def test_another_value_is_refused_naming_the_variable(monkeypatch, value):
    monkeypatch.setenv(allocator.ENVIRONMENT_VARIABLE, value)
    with pytest.raises(ValueError, match=f"NNFS_KEEP_FREED_MEMORY: expected 0 or 1, got '{value}'"):
        allocator.enabled_by_environment()


def test_outside_posix_no_c_library_is_loaded(monkeypatch):
    # On Windows ctypes.CDLL(None) raises TypeError: it must never be tried there.
    monkeypatch.setattr(allocator.os, "name", "nt")

    def refuse(*args, **kwargs):
        raise TypeError("CDLL(None) on Windows")

    monkeypatch.setattr(allocator.ctypes, "CDLL", refuse)
    assert allocator._glibc() is None
