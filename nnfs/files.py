"""Writing files atomically: a crash, a full disk, a kill or a signal never leaves a half-written
file under the real name, and never destroys the file that was there before.

Every file nnfs writes (checkpoints, curves, reports, caches) goes through
:func:`write_atomically`: the content goes to a temporary file in the same folder,
is flushed to disk, and is then renamed over the target in one step (``os.replace``,
atomic on POSIX and Windows file systems).

The temporary file is named ``.<target>.nnfs-<host>-<pid>-<random>.tmp``. An
error or an interruption (Ctrl-C, SIGTERM, SIGHUP) removes it; a process killed outright
(SIGKILL, power loss) cannot, so every later write into the same folder first
removes the temporary files of that pattern whose writer, a process of this
machine (``<host>`` is a hash of its name), no longer runs. Files of live
writers, of other machines sharing the folder, and anything not of that exact
pattern are never touched.

Errors name the path the caller gave, never the hidden temporary file:
``[Errno 28] No space left on device: 'runs/cnn.npz'``.

:func:`portable_name` and :func:`local_name` carry a file name recorded in one locale (a
checkpoint's split, written under ``LC_ALL=C``) to another (read under UTF-8), and back.
:func:`name_key` is how two names are compared (whatever the locale and the Unicode form
that wrote them: macOS writes ``café`` decomposed), and :func:`as_found` finds the file a
recorded path names where a copy spells its names in the other form.

:func:`file_identity` says which file a path names, through links and hard links: the
programs use it so that a file is never read twice as two images, nor written over
while it is one of their inputs.
"""

import contextlib
import errno
import os
import re
import secrets
import socket
import stat
import unicodedata
import zlib

__all__ = ["write_atomically", "check_writable", "remove_stale_temporaries", "is_temporary", "file_identity",
           "file_key", "missing_folders", "remove_empty_folders", "portable_name", "local_name", "name_key",
           "name_order", "as_found"]

# Part of the target's name kept in the temporary name: a long name plus the suffix must stay
# under the usual 255-byte limit of a file name (40 characters are at most 160 UTF-8 bytes).
_NAME_KEPT = 40
_TEMPORARY = re.compile(r"\..*\.nnfs-(?P<host>[0-9a-f]{8})-(?P<pid>[0-9]{1,10})-[0-9a-f]{8}\.tmp",
                        re.DOTALL)
_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0) | getattr(os, "O_CLOEXEC", 0)


def _host_tag():
    return f"{zlib.crc32(socket.gethostname().encode('utf-8', 'surrogateescape')):08x}"


def _temporary_name(target_name):
    return (f".{target_name[:_NAME_KEPT]}.nnfs-{_host_tag()}-{os.getpid()}-"
            f"{secrets.token_hex(4)}.tmp")


def is_temporary(name):
    """True when ``name`` (a file name, no folder) has the pattern of :func:`write_atomically`'s
    temporary files."""
    return _TEMPORARY.fullmatch(name) is not None


def write_atomically(path, write):
    """Write a file through ``write(binary_file)``, then rename it over ``path`` in one step.

    A symbolic link at ``path`` is written through (its target is replaced, the link
    stays). An existing file keeps its permission bits; a new one gets the usual ones
    (0666 less the umask).

    Args:
        path: the target; missing parent folders are created.
        write: called with the open temporary file (binary); whatever it writes becomes
            the new content of ``path``.

    Returns:
        ``path``.

    Raises:
        OSError: the error that stopped the write, naming ``path`` (e.g. a
            ``PermissionError``, or ``OSError`` with ``errno.ENOSPC`` for a full disk);
            ``IsADirectoryError`` when ``path`` is a folder, and an ``OSError`` with
            ``errno.EINVAL`` when it is a FIFO, a device or a socket.

    On any error or interruption the temporary file is removed and the old file at
    ``path``, if any, is left as it was, byte for byte.
    """
    path = os.fspath(path)
    with _temporary_beside(path) as (fd, temporary, target, mode):
        with os.fdopen(fd, "wb") as file:
            if mode is not None:
                os.chmod(temporary, mode)
            write(file)
            file.flush()
            _fsync(file.fileno())
        os.replace(temporary, target)
    _sync_folder(os.path.dirname(target))
    return path


def check_writable(path):
    """Fail now, naming ``path``, where :func:`write_atomically` would fail later.

    Creates the missing parent folders, removes what killed writers left there (as a
    write would), then creates and removes an empty temporary file beside ``path``, and
    removes again the folders it created (the write creates them when it comes, so a run
    that stops before writing leaves no empty folder behind); ``path`` itself is not
    touched. A full disk can still stop the real write; every other cause (a missing
    permission, a read-only file system, a file where a folder is needed, a folder or a
    FIFO at ``path``) is found here.

    Raises:
        OSError: as :func:`write_atomically` would.
    """
    path = os.fspath(path)
    missing = _missing_folders(path)
    try:
        with _temporary_beside(path) as (fd, temporary, _, _):
            os.close(fd)
            _remove(temporary)
    finally:
        remove_empty_folders(missing)
    return path


def remove_empty_folders(folders):
    """Remove ``folders`` (:func:`missing_folders` made them, deepest first) while they are
    empty: one that is no longer empty (another writer's file) stays, and so do those above it."""
    for folder in folders:
        try:
            os.rmdir(folder)
        except OSError:
            if os.path.lexists(folder):
                break
            # never made (makedirs failed part-way) or already gone: go on upwards


def file_identity(path, info=None):
    """What tells the file (or folder) ``path`` names from every other: its device and inode,
    the same through symbolic and hard links; its real path where the file system has no
    inodes (``st_ino`` 0).

    ``info``: the ``os.stat`` result of ``path`` (through links) where the caller has it
    already, which saves a second lookup; a ``DirEntry.stat()`` result will do, since on
    Windows, where its ``st_ino`` is 0, the path is looked up again.

    Raises:
        OSError: when ``path`` cannot be looked up (missing, no permission).
    """
    if info is None or not info.st_ino:
        info = os.stat(path)  # not DirEntry.stat: on Windows its st_ino and st_dev are always 0
    if info.st_ino:
        return info.st_dev, info.st_ino
    return os.path.normcase(os.path.realpath(path))


def file_key(path, info=None):
    """:func:`file_identity` of ``path``, or its real path where it cannot be looked up (missing,
    no permission; on Windows a directory entry's second lookup): never raises, for telling
    apart paths of which some may be unreadable (they are reported when they are read)."""
    try:
        return file_identity(path, info)
    except OSError:
        return os.path.normcase(os.path.realpath(path))


def _missing_folders(path):
    """The folders above ``path`` (of its target, for a link) that do not exist yet, deepest first."""
    target = os.path.realpath(path) if os.path.islink(path) else os.path.abspath(path)
    return missing_folders(os.path.dirname(target))


def missing_folders(folder):
    """``folder`` and the folders above it that do not exist yet, deepest first: what a writer
    that makes them removes again when it leaves them empty."""
    missing = []
    while folder and not os.path.lexists(folder):
        missing.append(folder)
        parent = os.path.dirname(folder)
        if parent == folder:
            break
        folder = parent
    return missing


@contextlib.contextmanager
def _temporary_beside(path):
    """A new, empty temporary file in the folder of ``path`` (of its target, for a link).

    Yields ``(fd, temporary name, target, permission bits to keep or None)``. If the block
    fails or is interrupted, the temporary file is removed (a no-op once it was renamed),
    and an OSError is raised again naming ``path``.
    """
    target, mode = _prepare(path)
    folder = os.path.dirname(target)
    # ``candidate`` outlives ``temporary`` (None again after a failed try): an error raised by the
    # last try names it, and must be renamed to ``path`` all the same.
    temporary, candidate, vanished = None, None, 0
    try:
        remove_stale_temporaries(folder)
        while temporary is None:
            candidate = os.path.join(folder, _temporary_name(os.path.basename(target)))
            try:
                # Set before the file exists: an interruption landing just after os.open
                # returns (before fd is bound) still finds the name, and removes the file.
                temporary = candidate
                fd = os.open(candidate, _FLAGS, 0o666)
            except FileExistsError:  # another writer drew the same name: draw again
                temporary = None
            except FileNotFoundError:
                # The folder went since _prepare made it: another process's check_writable
                # removed the empty folders it had made for its probe. Make it again.
                temporary, vanished = None, vanished + 1
                if vanished > 5:
                    raise
                os.makedirs(folder, exist_ok=True)
        yield fd, temporary, target, mode
    except BaseException as error:  # GeneratorExit too: an interruption between yield and the block
        if temporary is not None:
            _remove(temporary)
        if isinstance(error, OSError):
            raise _naming(error, path, candidate) from None
        raise


def remove_stale_temporaries(folder):
    """Remove the temporary files that killed writers left in ``folder``; returns how many.

    Only regular files named as :func:`write_atomically` names them, written by a
    process of this machine that no longer runs, are removed. Nothing happens where
    whether a process runs cannot be told safely (outside POSIX).
    """
    if os.name != "posix":
        return 0
    host, removed = _host_tag(), 0
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return 0
    for entry in entries:
        match = _TEMPORARY.fullmatch(entry.name)
        if match is None or match["host"] != host or _is_running(int(match["pid"])):
            continue
        try:
            if entry.is_file(follow_symlinks=False):
                os.unlink(entry.path)
                removed += 1
        except OSError:  # gone already, or not ours to remove: leave it
            pass
    return removed


def _prepare(path):
    """The file to replace (through a symbolic link) and the permission bits to keep (or None).

    Creates the parent folders; refuses a target that is a folder, a FIFO, a device or a
    socket: replacing it would remove something that is not a file nnfs wrote.
    """
    target = os.path.realpath(path) if os.path.islink(path) else os.path.abspath(path)
    try:
        os.makedirs(os.path.dirname(target), exist_ok=True)
        # Through the link as the system follows it, not its resolved text: a link to a pipe
        # (/dev/stdout in a pipeline) reads "pipe:[123]", which names no file and was taken
        # for a new one.
        info = os.stat(path)
    except FileNotFoundError:
        return target, None
    except FileExistsError:
        # makedirs met a file where a folder is needed ("afile/x.csv"): say that, of the path given.
        raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), path) from None
    except OSError as error:
        raise _naming(error, path) from None
    if stat.S_ISDIR(info.st_mode):
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), path)
    if not stat.S_ISREG(info.st_mode):
        raise OSError(errno.EINVAL, "is not a regular file (a FIFO, a device or a socket)", path)
    return target, stat.S_IMODE(info.st_mode)


def _naming(error, path, temporary=None):
    """``error`` again, naming the caller's ``path`` instead of no file or the temporary one."""
    if error.errno is None or error.filename not in (None, temporary):
        return error  # about some other file (one that `write` read, say): leave it alone
    return type(error)(error.errno, error.strerror or os.strerror(error.errno), path)


def _is_running(pid):
    """Whether process ``pid`` exists (POSIX only: ``kill(pid, 0)`` sends nothing)."""
    if pid == os.getpid():
        return True  # another thread of ours may be writing
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (OverflowError, ValueError):  # not a valid process id at all
        return False
    except OSError:  # EPERM: it runs, as another user
        return True
    return True


def _remove(name):
    try:
        os.unlink(name)
    except FileNotFoundError:
        pass
    except OSError:
        pass  # nothing better to do while another error is on its way up


def _fsync(fd):
    """Flush to the disk; file systems that cannot (some network and FUSE ones) say so with
    EINVAL or ENOTSUP, and the data is then as safe as that file system makes it."""
    try:
        os.fsync(fd)
    except OSError as error:
        if error.errno not in (errno.EINVAL, getattr(errno, "ENOTSUP", errno.EINVAL)):
            raise


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


def portable_name(name):
    """A file name (or path) as it is recorded, the same whatever the locale that read it.

    Python decodes a name's bytes with the locale's encoding: ``café`` is ``'café'`` under a
    UTF-8 locale, but ``'caf\\udcc3\\udca9'`` (its two UTF-8 bytes kept as escapes) under
    ``LC_ALL=C``. Both give the same bytes back, which are decoded here as UTF-8 (a byte that
    is not UTF-8 stays an escape): the form a UTF-8 locale reads, whichever read it.
    """
    try:
        return name.encode("utf-8", "surrogateescape").decode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a lone surrogate that stands for no byte: no file's name
        return name


def local_name(text):
    """A recorded name (:func:`portable_name`, or a name as any locale read it) as this process
    names that file, for ``open``, ``os.stat``, ``os.path.realpath``: never an error for a name
    this locale cannot encode (a name that holds no file's bytes is returned escaped, and so
    names no file)."""
    try:
        return os.fsdecode(text.encode("utf-8", "surrogateescape"))
    except UnicodeEncodeError:
        return os.fsdecode(text.encode("utf-8", "backslashreplace"))


def name_key(name):
    """What two names (of files, folders, classes) are compared by: :func:`portable_name`, in
    Unicode's composed form (NFC).

    One name can be two strings: macOS writes ``café`` decomposed (NFD: ``e`` and a combining
    accent), Linux tools and most keyboards composed (``é``, one character). The two look the
    same everywhere, and a dataset copied from one system to another keeps the form it was
    written in, so names are matched in one form; the real name is kept for opening the file.
    """
    return unicodedata.normalize("NFC", portable_name(name))


def name_order(name):
    """How the names of a folder's entries are sorted, wherever one is listed (the dataset
    scan, the prediction program's walk): as they read (:func:`name_key`, whatever their
    Unicode form and the locale), then as written, so that two forms of one name keep a
    fixed order."""
    return name_key(name), name


def as_found(folder, parts, listings=None):
    """``os.path.join(folder, *parts)``, each part spelled as the file system spells it there.

    A recorded name (``parts``, as this process names them: :func:`local_name`) that is not
    there is looked up among the entries of its folder by :func:`name_key`: a split recorded
    on a Mac (decomposed names) finds its files in a copy whose names are composed. A part
    found in no form is kept as recorded (and so names no file).

    Args:
        listings: a dict kept between calls, ``{folder: {name_key: entry name}}``, so that
            each folder is listed once however many of its files are looked up.
    """
    listings = {} if listings is None else listings
    path = folder
    for part in parts:
        here = os.path.join(path, part)
        if not os.path.lexists(here):
            if path not in listings:
                try:
                    listings[path] = {name_key(entry): entry for entry in sorted(os.listdir(path))}
                except OSError:  # missing or unreadable: the recorded name is reported as it is
                    listings[path] = {}
            here = os.path.join(path, listings[path].get(name_key(part), part))
        path = here
    return path
