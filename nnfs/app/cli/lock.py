"""One training run at a time per ``--save``: an advisory lock that the OS releases with its process.

Two runs writing the same files at once (a command started in two terminals, a script started
twice) would each write its own epochs over the other's: one run's model beside the other's
curves, metrics and latest state. So the training program holds a lock beside ``--save`` from
before it writes anything until it ends, and a second run refuses to start, naming the process
that holds it.

The lock is the operating system's (``flock`` on POSIX, ``msvcrt.locking`` on Windows) on a
small file, ``.<stem>.lock`` beside the checkpoint (through symbolic links: two spellings of one
file take one lock). It is named after the checkpoint's name without its extension, as the
files beside it are: ``--save cnn``, ``--save cnn.npz`` and ``--save cnn.pt`` all write
``cnn_metrics.csv`` and ``cnn_curves.png`` (the first two ``cnn_last.npz`` too), so they take
one lock. The OS drops it when its process ends, however it ends (a crash, ``kill
-9``, a power loss), so a lock file left behind blocks nobody: the next run takes it again.
The file holds the process id and host of its holder, for the refusal's line; a run removes
it when it ends, with the folders it made for it, so a run that stops before writing leaves
nothing behind. A run checks before each write that the file is still the one it locked
(:meth:`OutputLock.keep`): a folder deleted during the run takes the lock file along.
"""

import errno
import os
import socket
import zlib

from nnfs.files import missing_folders, remove_empty_folders

__all__ = ["OutputsInUse", "OutputLock", "lock_path"]

# A file name has at most 255 bytes: longer checkpoint names get a shortened one with a hash.
_NAME_BYTES = 255
_KEPT = 40
# Windows locks a byte range, and a locked byte cannot be read by others: lock one far past the
# holder's line, which stays readable.
_WINDOWS_LOCKED_BYTE = 1 << 30


class OutputsInUse(RuntimeError):
    """Another live process holds the lock of the files a run would write.

    Attributes:
        holder: that process, as the message names it (``another training run (process
            4242)``), or None where no one process is to blame.
    """

    def __init__(self, message, holder=None):
        super().__init__(message)
        self.holder = holder


def lock_path(save):
    """The lock file of the run writing ``save``: ``runs/.cnn.lock`` for ``runs/cnn.npz`` (and for
    ``runs/cnn`` or ``runs/cnn.pt``, whose runs write the same files beside it)."""
    target = os.path.realpath(save)
    folder, name = os.path.split(target)
    name = os.path.splitext(name)[0] or name  # ".npz" alone is a name without an extension
    lock = f".{name}.lock"
    if len(os.fsencode(lock)) > _NAME_BYTES:
        lock = f".{name[:_KEPT]}-{zlib.crc32(os.fsencode(name)):08x}.lock"
    return os.path.join(folder, lock)


class OutputLock:
    """``with OutputLock(args.save):`` holds the lock of the run writing ``save`` for the block.

    Args:
        save: the run's ``--save`` (the other outputs go beside it).

    Raises:
        OutputsInUse: on entering, when another process holds it; the message names that
            process and ``save``.
        OSError: on entering, when the lock file cannot be made (a read-only folder: the
            checks of the outputs have said so already, naming the file).

    A file system that has no locks (some network and FUSE ones) cannot tell: the run goes on
    unlocked, and :attr:`unsupported` holds the reason, for a warning.
    """

    def __init__(self, save):
        self.save = save
        self.path = lock_path(save)
        self.unsupported = None
        self._fd = None
        self._made = []

    def __enter__(self):
        self._made = _make_folders(os.path.dirname(self.path))
        try:
            self._acquire()
        except BaseException:
            self._release()
            raise
        return self

    def __exit__(self, *exc):
        self._release()
        return False

    def keep(self):
        """Make sure this run still holds the lock, before it writes: one ``stat``.

        A lock is held on a file, not on a name: where the lock file was removed or replaced
        since it was taken (the ``--save`` folder deleted during the run, which the next
        writes make again), a second run would find no lock and be let in. Then the lock is
        taken again, on a new file (its folders made again).

        Raises:
            OutputsInUse: when another run took the lock meanwhile; the message names it.
            OSError: when the lock file cannot be made again.
        """
        if self._fd is None or _same_file(self._fd, self.path):
            return  # held (or never held: a file system without locks)
        os.close(self._fd)  # a lock on a file no other run can open any more
        self._fd = None
        made = _make_folders(os.path.dirname(self.path))
        self._made = made + [folder for folder in self._made if folder not in made]
        try:
            self._acquire()
        except OutputsInUse as refusal:
            if refusal.holder is None:
                raise
            raise OutputsInUse(f"the lock file {self.path} was removed while this run held it, and {refusal.holder} "
                               f"has taken it since to write --save {self.save}: this run stops so as not to "
                               "write over that run's files", refusal.holder) from None

    def _acquire(self):
        for _ in range(10):  # another run removed the file between our open and our lock: again
            fd = _open_lock_file(self.path)
            try:
                if not _lock(fd):
                    holder = f"another training run ({_holder(fd)})"
                    raise OutputsInUse(f"{holder} is writing --save {self.save} and the files beside it; wait "
                                       "for it to end, or give --save another path", holder)
            except OSError as error:
                os.close(fd)
                if error.errno in (errno.ENOLCK, errno.EINVAL, getattr(errno, "ENOTSUP", errno.EINVAL),
                                   getattr(errno, "EOPNOTSUPP", errno.EINVAL)):
                    self.unsupported = error.strerror or str(error)
                    _remove(self.path)
                    return
                raise
            except BaseException:
                os.close(fd)
                raise
            if _same_file(fd, self.path):
                self._fd = fd
                try:
                    os.ftruncate(fd, 0)
                    os.write(fd, f"{os.getpid()} {socket.gethostname()}\n".encode("utf-8", "replace"))
                except OSError as error:  # a full disk: errors on a descriptor name no file
                    raise type(error)(error.errno, error.strerror, self.path) from None
                return
            os.close(fd)
        raise OutputsInUse(f"cannot lock {self.path}: other runs keep replacing it; --save {self.save}")

    def _release(self):
        if self._fd is not None:
            # Removed while still held (POSIX), so that a run that opened the old file meanwhile
            # finds it gone once it gets the lock, and opens the new one (see _acquire). Windows
            # cannot remove an open file: there it goes after the close.
            if os.name != "nt":
                _remove(self.path)
            os.close(self._fd)
            self._fd = None
            if os.name == "nt":
                _remove(self.path)
        remove_empty_folders(self._made)  # one the run wrote into stays
        self._made = []


def _open_lock_file(path):
    """Open (or create) the lock file at ``path`` for reading and writing, never through a link.

    The lock file is truncated and written (the holder's line), so opening it through a
    symbolic link (a link named ``.cnn.lock``, to a model or anything else) would wipe the file
    the link points to. The lock is found through the links of ``--save`` already
    (:func:`lock_path`); a link at the lock's own name is no lock file of nnfs, and is refused.

    Where the system has no ``O_NOFOLLOW`` (Windows), the name is looked at before the open,
    which leaves a moment between the two but still keeps a link's target from being wiped.

    Raises:
        OSError: naming ``path``; a link there says so and what to do.
    """
    flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOFOLLOW", 0)
    if not hasattr(os, "O_NOFOLLOW") and os.path.islink(path):
        raise _a_link(path)
    try:
        return os.open(path, flags, 0o666)
    except OSError as error:
        # O_NOFOLLOW on a link: ELOOP on Linux and macOS, EMLINK on FreeBSD, EFTYPE on NetBSD.
        if error.errno in _LINK_ERRNOS and os.path.islink(path):
            raise _a_link(path) from None
        raise


_LINK_ERRNOS = {errno.ELOOP, errno.EMLINK, getattr(errno, "EFTYPE", errno.ELOOP)}


def _a_link(path):
    return OSError(errno.ELOOP, "a symbolic link, not a lock file (the lock is written, which would wipe "
                                "the file it points to); remove the link", path)


def _holder(fd):
    """Who holds the lock of ``fd``, as the holder wrote it: ``process 4242`` (``on HOST`` where
    that is another machine), else ``another process``."""
    try:
        holder = os.pread(fd, 256, 0).decode("utf-8", "replace").split()
    except (OSError, AttributeError):  # Windows has no pread
        holder = []
    who = "another process"
    if holder and holder[0].isdigit():
        who = f"process {holder[0]}"
        if len(holder) > 1 and holder[1] != socket.gethostname():
            who += f" on {holder[1]}"
    return who


def _make_folders(folder):
    """Make ``folder`` and the folders above it that are missing; returns those made, deepest first."""
    missing = missing_folders(folder)
    if missing:
        os.makedirs(missing[0], exist_ok=True)
    return missing


def _remove(path):
    try:
        os.unlink(path)
    except OSError:  # gone already, or held open by another run (Windows): it is that run's now
        pass


def _same_file(fd, path):
    """Whether ``path`` still names the file open as ``fd`` (not removed or replaced since)."""
    try:
        mine, now = os.fstat(fd), os.stat(path)
    except OSError:
        return False
    return (mine.st_dev, mine.st_ino) == (now.st_dev, now.st_ino)


def _lock(fd):
    """Take the lock on ``fd`` without waiting: True if taken, False if another process holds it."""
    if os.name == "nt":
        import msvcrt

        os.lseek(fd, _WINDOWS_LOCKED_BYTE, os.SEEK_SET)
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError as error:
            if error.errno in (errno.EACCES, errno.EDEADLK):
                return False
            raise
        finally:
            os.lseek(fd, 0, os.SEEK_SET)
        return True
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True
