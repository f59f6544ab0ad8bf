"""Writing files atomically: a crash, a full disk or a kill never leaves a half-written file
under the real name, and never destroys the file that was there before.

Every file nnfs writes (checkpoints, curves, reports, caches) goes through
:func:`write_atomically`: the content goes to a temporary file in the same folder,
is flushed to disk, and is then renamed over the target in one step.
"""

import os
import tempfile

__all__ = ["write_atomically"]


def write_atomically(path, write):
    """Write a file through ``write(binary_file)``, then rename it over ``path`` in one step.

    Args:
        path: the target; missing parent folders are created.
        write: called with the open temporary file (binary); whatever it writes becomes
            the new content of ``path``.

    Returns:
        ``path``. On any error (or interruption) the temporary file is removed and the
        old file at ``path``, if any, is left as it was.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; what we write are ordinary files
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    _sync_folder(folder)
    return path


def _sync_folder(folder):
    """Make the rename itself durable; not every platform can open a folder."""
    try:
        dir_fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)
