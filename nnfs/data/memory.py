"""Will it fit? The memory a dataset and a training run need, checked before anything is allocated.

A dataset of photos kept at full size, or a network whose first linear layer
grows with the image area, asks for more memory than a machine has; found out
by allocating, that ends in a ``MemoryError`` or in the system killing the
process after minutes of swapping. Instead, the bytes are estimated from the
sizes alone (:func:`training_bytes`, the dataset's ``N * C * H * W``) and
compared with what the machine can still give (:func:`available_memory`)
before the first byte is allocated; :func:`check_fits` refuses with the sizes
and a way out.

``NNFS_MEMORY_LIMIT`` (bytes, or a number with ``K``, ``M``, ``G`` or ``T``, e.g.
``8G``) replaces the detected amount, on a shared machine for instance. The detected amount
is shared among the MPI ranks started on one machine, as its cores are
(:func:`~nnfs.parallel.local_ranks`): each rank plans for its share, so that four ranks on
one machine do not each plan for all of its memory; the limit is each process's own. The
share is read once, at the first question, and is then a budget like the limit (see
:func:`is_budget`): read later, the machine's figure would already be short of what the
ranks that loaded first took, and each rank would divide that again.
"""

import os
import re

from nnfs.data.images import DatasetError
from nnfs.parallel import local_ranks

__all__ = ["ImageSizeError", "available_memory", "parse_bytes", "format_bytes", "check_fits",
           "training_bytes", "is_budget", "ENV_MEMORY_LIMIT"]

ENV_MEMORY_LIMIT = "NNFS_MEMORY_LIMIT"

# Floats a training step keeps per input pixel of each sample, measured on the
# reference CNN (its first block at full resolution: im2col columns, convolution,
# BatchNorm and ReLU outputs and their gradients, the convolutions' reused buffers):
# the training program's peak memory grew by 321 floats per pixel of a batch of 32 RGB
# images from 32x32 to 128x128 (2026-12-01, one thread), rounded up.
ACTIVATION_FLOATS_PER_PIXEL = 330

_UNITS = {"": 1, "K": 2 ** 10, "M": 2 ** 20, "G": 2 ** 30, "T": 2 ** 40}


class ImageSizeError(DatasetError):
    """The images cannot be used at the chosen size: too small for the model, or too large for memory.

    Attributes:
        reason: what is wrong, with the numbers.
        suggestion: the way out, e.g. ``"a smaller image size"``; a program names its
            own option for it (``--image_size``).
    """

    def __init__(self, reason, suggestion):
        self.reason, self.suggestion = reason, suggestion
        super().__init__(f"{reason}; choose {suggestion} (image_size)")

    def with_option(self, option):
        """The message with ``option`` named as the way to choose the size."""
        return f"{self.reason}; choose {self.suggestion} with {option}"


def parse_bytes(text):
    """``"8G"`` -> 8589934592; plain integers are bytes. Raises ValueError for anything else."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)i?B?\s*", str(text), re.IGNORECASE)
    if not match:
        raise ValueError(f"expected a number of bytes such as 8G or 512M, got {text!r}")
    return int(float(match.group(1)) * _UNITS[match.group(2).upper()])


def format_bytes(count):
    """``1536`` -> ``"1.5 KiB"``."""
    value = float(count)
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} bytes" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} PiB"


_share = None  # (bytes, ranks): a rank's share of its machine's memory, fixed at the first question


def available_memory():
    """Bytes this process can still allocate, or None when the platform does not say.

    ``NNFS_MEMORY_LIMIT`` when set; otherwise the smaller of the system's available
    memory (``MemAvailable``: free memory plus caches it can drop) and what the
    process's control group (container) still allows. Under ``mpiexec`` with several
    ranks on this machine, this rank's share of that, read at the first call and kept (a
    budget, as the limit is: :func:`is_budget`).

    Raises:
        ValueError: for a malformed ``NNFS_MEMORY_LIMIT``.
    """
    global _share
    limit = _limit_text()
    if limit:
        try:
            return parse_bytes(limit)
        except ValueError as error:
            raise ValueError(f"environment variable {ENV_MEMORY_LIMIT}: {error}") from None
    ranks = local_ranks()
    if ranks > 1 and _share is not None and _share[1] == ranks:
        return _share[0]
    found = [value for value in (_meminfo_available(), _cgroup_room()) if value is not None]
    if not found:
        try:
            found = [os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")]
        except (AttributeError, ValueError, OSError):
            return None
    if ranks == 1:
        return min(found)
    _share = (min(found) // ranks, ranks)
    return _share[0]


def is_budget():
    """Whether :func:`available_memory` is a budget for the whole run, what this process has
    allocated included (``NNFS_MEMORY_LIMIT``, or a rank's share of its machine), rather than
    what the machine can still give now (which already lacks what this process holds)."""
    return bool(_limit_text()) or local_ranks() > 1


def _limit_text():
    """``NNFS_MEMORY_LIMIT`` as set, stripped; "" where it is not."""
    return os.environ.get(ENV_MEMORY_LIMIT, "").strip()


def _meminfo_available():
    try:
        with open("/proc/meminfo") as file:
            for line in file:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _cgroup_room():
    """The memory limit of this process's cgroup (v2, then v1) minus what it uses, or None."""
    for limit_file, usage_file in (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                                   ("/sys/fs/cgroup/memory/memory.limit_in_bytes",
                                    "/sys/fs/cgroup/memory/memory.usage_in_bytes")):
        try:
            with open(limit_file) as file:
                text = file.read().strip()
            if text == "max":
                return None
            with open(usage_file) as file:
                usage = int(file.read().strip())
            limit = int(text)
        except (OSError, ValueError):
            continue
        if limit >= 2 ** 60:  # cgroup v1 writes "no limit" as a huge number
            return None
        return max(limit - usage, 0)
    return None


def training_bytes(parameter_count, image_size, channels, batch_size, dtype_bytes=4,
                   optimizer_slots=1):
    """Bytes a training run needs besides its dataset: the model and one batch's activations.

    Args:
        parameter_count: the model's number of parameters (e.g. ``sum(p.size for p in
            net.parameters())`` of a net, or an estimate before building it).
        image_size: ``(height, width)`` of the inputs.
        channels: input channels (kept for models whose activations scale with them).
        batch_size: samples per step.
        dtype_bytes: 4 for float32, 8 for float64.
        optimizer_slots: arrays the optimizer keeps per parameter (1 for SGD with
            momentum, 2 for Adam).

    Returns:
        ``{"model": bytes, "activations": bytes}``: parameters, gradients and optimizer
        state; the activations of one batch (a rough estimate, see
        ``ACTIVATION_FLOATS_PER_PIXEL``).
    """
    height, width = image_size
    model = int(parameter_count) * dtype_bytes * (2 + optimizer_slots)
    activations = batch_size * height * width * ACTIVATION_FLOATS_PER_PIXEL * dtype_bytes
    return {"model": model, "activations": int(activations)}


def check_fits(parts, what, available=None):
    """Refuse when the byte counts in ``parts`` add up to more than is available.

    Args:
        parts: ``{"images": bytes, "model": bytes, ...}``.
        what: the plan in words, e.g. ``"6 images of 3x5000x5000"``.
        available: bytes available; default :func:`available_memory` (no check when unknown).

    Raises:
        ImageSizeError: naming every part, the total and the available memory.
    """
    available = available_memory() if available is None else available
    total = sum(parts.values())
    if available is None or total <= available:
        return total
    detail = " + ".join(f"{name} {format_bytes(value)}" for name, value in parts.items() if value)
    if _limit_text():
        source = f"{ENV_MEMORY_LIMIT} sets it"
    elif local_ranks() > 1:
        source = (f"this process's share among the {local_ranks()} MPI ranks on this machine; "
                  f"set {ENV_MEMORY_LIMIT} to override")
    else:
        source = f"set {ENV_MEMORY_LIMIT} to override"
    raise ImageSizeError(
        f"{what} need about {format_bytes(total)} of memory ({detail}), more than the "
        f"{format_bytes(available)} available ({source})", "a smaller image size")
