"""Small file systems for tests: a full disk, a read-only folder (Linux, as root; skipped elsewhere)."""

import contextlib
import subprocess
import sys

import pytest


@contextlib.contextmanager
def tmpfs(mount_point, options):
    """A tmpfs mounted at ``mount_point`` with ``options`` (``"size=1m"``, ``"ro,size=64k"``) for the
    block; the test is skipped where it cannot be mounted (not Linux, not root, no mount)."""
    if sys.platform != "linux":
        pytest.skip("tmpfs mounts are a Linux feature")
    try:
        result = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(mount_point)],
                                capture_output=True)
    except OSError as error:  # no mount program
        pytest.skip(f"cannot mount a tmpfs here: {error}")
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {result.stderr.decode(errors='replace').strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", str(mount_point)], capture_output=True)


def fill(folder, leave=48 * 1024):
    """Fill the file system of ``folder`` up to ``leave`` bytes (a file named ``filler``)."""
    import os

    stats = os.statvfs(folder)
    free = stats.f_bavail * stats.f_frsize
    with open(os.path.join(folder, "filler"), "wb") as file:
        file.write(b"\0" * max(free - leave, 0))
