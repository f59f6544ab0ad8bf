"""Keeping freed host memory for the next training step: glibc's malloc thresholds.

Why
---
A training step allocates the same large temporaries every time (activations,
their gradients, the pooling and normalisation intermediates: megabytes each)
and frees them before the next step. glibc's ``malloc`` adapts two thresholds to
what a program frees: blocks above the *mmap threshold* come straight from the
operating system and go back to it on ``free``, and free memory at the top of a
heap beyond the *trim threshold* is handed back too. Both start low (128 KiB)
and only rise as large blocks are freed. A thread other than the main one
allocates from heaps of its own, of at most 64 MiB each, and glibc unmaps such a
heap as soon as all of it is free, whatever the trim threshold, unless the *top
pad* asks it to keep that much. So in practice every step gives its temporaries
back to the kernel and takes them again: each first touch of a page is a page
fault in which the kernel zeroes it, and each unmap interrupts the other cores
to flush their address translations. Measured on 2 cores (the reference CNN at
3x32x32, 2 threads): 2,000-2,600 page faults and 3-8 ms of kernel time per step,
10-20 % of the step at batch 64; with the two thresholds fixed, the shard thread
(see :mod:`nnfs.parallel`) still made and unmade its heaps: 8 ``mmap`` and 23
``munmap`` calls, 100-150 page faults and 3-8 ms of kernel time a step at batch 256.

What
----
:func:`keep_freed_memory` fixes the two thresholds at the values glibc's own
adaptive rule tops out at for mmap (:data:`MMAP_THRESHOLD`, 32 MiB; larger blocks
still come from and go back to the OS) and with room for a step's churn at the
top of each heap (:data:`TRIM_THRESHOLD`, 256 MiB), and the top pad at a whole
thread heap (:data:`TOP_PAD`, 64 MiB, so a free one is kept), through ``mallopt``:
the temporaries of one step are then reused by the next, on every thread, with no
``mmap`` or ``munmap`` a step and a few dozen page faults instead of 2,000. The pad also
makes the main heap grow by 64 MiB more each time it grows, address space that
costs no memory until it is used. What the process holds at its peak is what a
step needs anyway; what it keeps after training is at most each thread's own peak
(the shard threads peak together, in every step: about the step's peak; ``top``
shows the peak resident size staying put). Nothing else changes: the same
memory is allocated and freed, only not returned to the kernel in between.

Where the kernel counts committed memory strictly (``vm.overcommit_memory = 2``,
some clusters), the pad is left out: it makes every thread heap commit its whole
64 MiB when it is made, which counts against the machine's commit limit whether
it is used or not, and an allocation over that limit fails.

When
----
Once per process, the first time a :class:`~nnfs.net.Net` computes on the CPU
backend (never on a device backend, never on import), and only:

- with glibc (Linux; musl, macOS and Windows have other allocators, left alone);
- when the process has not chosen its own settings: any ``MALLOC_*_`` variable
  glibc reads or a ``glibc.malloc`` tunable in ``GLIBC_TUNABLES`` is left to rule;
- unless ``NNFS_KEEP_FREED_MEMORY=0`` turns it off.
"""

import ctypes
import os
import threading

__all__ = ["ENVIRONMENT_VARIABLE", "MMAP_THRESHOLD", "TRIM_THRESHOLD", "TOP_PAD", "enabled_by_environment",
           "keep_freed_memory"]

#: Set to 0 to leave glibc's malloc thresholds as they are.
ENVIRONMENT_VARIABLE = "NNFS_KEEP_FREED_MEMORY"
#: Blocks up to this size come from the heap and are reused (glibc's own upper limit for it).
MMAP_THRESHOLD = 32 * 2**20
#: Free memory at the top of a heap is kept up to this size (several steps' temporaries).
TRIM_THRESHOLD = 256 * 2**20
#: Free memory glibc keeps at the top of a heap when it trims or grows one: the size of a
#: whole heap of a thread other than the main one (glibc's HEAP_MAX_SIZE on 64 bits),
#: so that a thread's heap that comes free is kept for the next step instead of unmapped.
TOP_PAD = 64 * 2**20

# mallopt's parameter numbers (malloc.h).
_M_TRIM_THRESHOLD = -1
_M_TOP_PAD = -2
_M_MMAP_THRESHOLD = -3
# The environment through which a user sets glibc's malloc themselves.
_USER_SETTINGS = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_",
                  "MALLOC_MMAP_MAX_", "MALLOC_ARENA_MAX")

_lock = threading.Lock()
_decided = None  # None: not yet; then whether the thresholds were set


def enabled_by_environment():
    """What ``NNFS_KEEP_FREED_MEMORY`` says: True when unset, empty or 1, False for 0.

    Raises:
        ValueError: for any other value, naming the variable (the programs check it at start).
    """
    value = os.environ.get(ENVIRONMENT_VARIABLE, "").strip()
    if value not in ("", "0", "1"):
        raise ValueError(f"environment variable {ENVIRONMENT_VARIABLE}: expected 0 or 1, got {value!r}")
    return value != "0"


def _wanted():
    """False when the user turned it off or chose glibc's settings themselves."""
    if not enabled_by_environment():
        return False
    if any(name in os.environ for name in _USER_SETTINGS):
        return False
    return "glibc.malloc." not in os.environ.get("GLIBC_TUNABLES", "")


def _glibc():
    """The C library when it is glibc, else None."""
    if os.name != "posix":  # Windows: no C library to load by None (CDLL raises TypeError)
        return None
    try:
        libc = ctypes.CDLL(None)
        libc.gnu_get_libc_version  # only glibc has it
        return libc
    except (OSError, AttributeError):
        return None


def keep_freed_memory():
    """Fix glibc's mmap and trim thresholds and its top pad once per process (see the module
    docstring).

    Cheap to call again: the decision is made once.

    Returns:
        True when the settings are made (now or before), False where they are left alone.
    """
    global _decided
    if _decided is not None:
        return _decided
    with _lock:
        if _decided is None:
            libc = _glibc() if _wanted() else None
            # mallopt returns 1 on success; both thresholds or neither (one alone makes it
            # worse: setting either one turns off glibc's adaptation of the other). The pad
            # only matters once they are set.
            _decided = bool(libc) and libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1 \
                and libc.mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1 \
                and (_strict_overcommit() or libc.mallopt(_M_TOP_PAD, TOP_PAD) == 1)
    return _decided


def _strict_overcommit():
    """Whether the kernel counts committed memory strictly (Linux's ``vm.overcommit_memory``
    2), where the pad would charge a whole thread heap for each thread (see the module
    docstring). False where it cannot be read (not Linux)."""
    try:
        with open("/proc/sys/vm/overcommit_memory") as file:
            return file.read().strip() == "2"
    except OSError:
        return False
