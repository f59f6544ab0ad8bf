"""nnfs.files: the one atomic writer. The file appears whole or not at all, the old one survives
every failure byte for byte, no temporary file outlives a write (or, after a kill, the next
write), errors name the user's path."""

import errno
import os
import stat
import subprocess
import sys

import pytest

import nnfs.files as files
from nnfs.files import check_writable, file_identity, file_key, is_temporary, remove_stale_temporaries, write_atomically
from tests.filesystems import fill, tmpfs

posix_only = pytest.mark.skipif(os.name != "posix", reason="POSIX file modes, FIFOs and process ids")


def test_writes_the_content_and_returns_the_path(tmp_path):
    path = tmp_path / "model.npz"
    assert write_atomically(path, lambda f: f.write(b"weights")) == str(path)
    assert path.read_bytes() == b"weights"
    assert os.listdir(tmp_path) == ["model.npz"]  # no temporary file left behind


def test_missing_folders_are_created(tmp_path):
    path = tmp_path / "runs" / "today" / "curves.png"
    write_atomically(str(path), lambda f: f.write(b"png"))
    assert path.read_bytes() == b"png"


def test_replaces_an_existing_file_in_one_step(tmp_path):
    path = tmp_path / "model.npz"
    path.write_bytes(b"old")
    write_atomically(path, lambda f: f.write(b"new"))
    assert path.read_bytes() == b"new" and os.listdir(tmp_path) == ["model.npz"]


@pytest.mark.parametrize("failure", [OSError("disk full"), TypeError("not JSON"), KeyboardInterrupt()],
                         ids=["OSError", "TypeError", "KeyboardInterrupt"])
def test_a_failing_writer_leaves_the_old_file_and_no_temporary_file(tmp_path, failure):
    path = tmp_path / "model.npz"
    path.write_bytes(b"the good model")

    def write(file):
        file.write(b"half a mod")  # some bytes are already written when it fails
        raise failure

    with pytest.raises(type(failure)):
        write_atomically(path, write)
    assert path.read_bytes() == b"the good model"
    assert os.listdir(tmp_path) == ["model.npz"]


def test_a_failing_first_write_creates_no_file(tmp_path):
    with pytest.raises(ValueError):
        write_atomically(tmp_path / "new" / "model.npz", lambda f: (f.write(b"x"), int("x")))
    assert os.listdir(tmp_path / "new") == []


def test_the_file_is_an_ordinary_readable_file(tmp_path):
    # Created as any new file is (0666 less the umask), not private as mkstemp would make it.
    umask = os.umask(0)
    os.umask(umask)
    path = write_atomically(tmp_path / "model.npz", lambda f: f.write(b"x"))
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o666 & ~umask


def test_a_folder_in_the_way_is_an_error_that_leaves_it_alone(tmp_path):
    (tmp_path / "model.npz").mkdir()
    with pytest.raises(OSError):
        write_atomically(tmp_path / "model.npz", lambda f: f.write(b"x"))
    assert (tmp_path / "model.npz").is_dir() and os.listdir(tmp_path) == ["model.npz"]


# -- what a serious writer must also get right ----------------------------------------------------
def write_bytes(data):
    return lambda f: f.write(data)


def dead_pid():
    """The id of a process that has exited (and been reaped)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def stale_name(target, pid, host=None):
    """A temporary name as write_atomically draws it, for another process ``pid``."""
    host = host or files._host_tag()
    return f".{target}.nnfs-{host}-{pid}-0badf00d.tmp"


def test_a_full_disk_error_names_the_users_path_not_the_temporary_file(tmp_path):
    path = tmp_path / "m.bin"
    write_atomically(path, write_bytes(b"good model"))

    def fail(f):
        f.write(b"half a mod")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OSError) as info:
        write_atomically(path, fail)
    assert info.value.filename == str(path) and info.value.errno == errno.ENOSPC
    assert "No space left on device" in str(info.value) and ".tmp" not in str(info.value)
    assert path.read_bytes() == b"good model" and os.listdir(tmp_path) == ["m.bin"]


def test_an_interruption_just_after_the_temporary_file_is_created_leaves_nothing(tmp_path, monkeypatch):
    """The narrow window at the start of a save: the file exists but open() has not returned."""
    real_open = os.open

    def open_then_interrupted(name, flags, mode=0o777):
        fd = real_open(name, flags, mode)
        os.close(fd)
        raise KeyboardInterrupt

    monkeypatch.setattr(files.os, "open", open_then_interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_atomically(tmp_path / "m.bin", write_bytes(b"x"))
    assert os.listdir(tmp_path) == []


def test_a_name_drawn_twice_is_drawn_again(tmp_path, monkeypatch):
    names = iter([".m.bin.nnfs-00000000-1-00000000.tmp"] * 2 + [".m.bin.nnfs-00000000-1-00000001.tmp"])
    monkeypatch.setattr(files, "_temporary_name", lambda target: next(names))
    (tmp_path / ".m.bin.nnfs-00000000-1-00000000.tmp").write_bytes(b"someone else's")
    write_atomically(tmp_path / "m.bin", write_bytes(b"mine"))
    assert (tmp_path / "m.bin").read_bytes() == b"mine"
    assert (tmp_path / ".m.bin.nnfs-00000000-1-00000000.tmp").read_bytes() == b"someone else's"


@posix_only
def test_temporary_files_of_dead_writers_are_removed_by_the_next_write(tmp_path):
    pid = dead_pid()
    stale = [stale_name("m.npz", pid), stale_name("other.png", pid)]
    kept = [stale_name("m.npz", os.getppid()),  # a live writer
            stale_name("m.npz", pid, host="12345678"),  # another machine sharing the folder
            ".m.npz.tmp", "m.npz.nnfs-tmp", f".m.npz.nnfs-{files._host_tag()}-{pid}.tmp"]  # not our pattern
    for name in stale + kept:
        (tmp_path / name).write_bytes(b"partial")
    write_atomically(tmp_path / "m.npz", write_bytes(b"new"))
    assert sorted(os.listdir(tmp_path)) == sorted(kept + ["m.npz"])
    assert remove_stale_temporaries(tmp_path) == 0


@posix_only
def test_a_stale_name_that_is_a_folder_or_a_link_is_left_alone(tmp_path):
    pid = dead_pid()
    (tmp_path / stale_name("a", pid)).mkdir()
    (tmp_path / "target").write_bytes(b"keep me")
    (tmp_path / stale_name("b", pid)).symlink_to(tmp_path / "target")
    assert remove_stale_temporaries(tmp_path) == 0
    assert (tmp_path / "target").read_bytes() == b"keep me"


def test_the_temporary_name_matches_the_pattern_and_stays_short():
    name = files._temporary_name("é" * 300 + ".npz")
    assert is_temporary(name) and len(name.encode()) < 255
    assert not is_temporary("m.npz") and not is_temporary(".m.npz.tmp")


@posix_only
def test_permissions_follow_the_umask_and_an_existing_file_keeps_its_own(tmp_path):
    old = os.umask(0o027)
    try:
        write_atomically(tmp_path / "new", write_bytes(b"x"))
        assert (tmp_path / "new").stat().st_mode & 0o777 == 0o640
        (tmp_path / "private").write_bytes(b"x")
        os.chmod(tmp_path / "private", 0o600)
        write_atomically(tmp_path / "private", write_bytes(b"y"))
        assert (tmp_path / "private").stat().st_mode & 0o777 == 0o600
    finally:
        os.umask(old)


@posix_only
def test_a_symbolic_link_is_written_through(tmp_path):
    (tmp_path / "real").write_bytes(b"old")
    (tmp_path / "link").symlink_to(tmp_path / "real")
    write_atomically(tmp_path / "link", write_bytes(b"new"))
    assert (tmp_path / "link").is_symlink() and (tmp_path / "real").read_bytes() == b"new"


@posix_only
def test_a_fifo_a_device_or_a_folder_is_never_replaced(tmp_path):
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "folder").mkdir()
    for target, error in ((tmp_path / "fifo", OSError), (tmp_path / "folder", IsADirectoryError)):
        for attempt in (write_atomically, check_writable):
            with pytest.raises(error) as info:
                attempt(target, *([write_bytes(b"x")] if attempt is write_atomically else []))
            assert info.value.filename == str(target)
    assert (tmp_path / "fifo").is_fifo() and (tmp_path / "folder").is_dir()
    if os.path.exists("/dev/null"):  # as root, os.replace would remove the device node
        with pytest.raises(OSError, match="not a regular file"):
            write_atomically("/dev/null", write_bytes(b"x"))
        assert not os.path.isfile("/dev/null")


def test_check_writable_finds_a_file_where_a_folder_is_needed(tmp_path):
    (tmp_path / "file").write_text("in the way")
    with pytest.raises(OSError) as info:
        check_writable(tmp_path / "file" / "m.npz")
    assert str(tmp_path / "file") in str(info.value)


def test_a_file_where_a_folder_is_needed_is_named_as_such(tmp_path):
    (tmp_path / "file").write_text("in the way")
    for attempt in (check_writable, lambda path: write_atomically(path, lambda f: f.write(b"x"))):
        with pytest.raises(NotADirectoryError) as info:
            attempt(tmp_path / "file" / "m.npz")
        assert info.value.filename == str(tmp_path / "file" / "m.npz")  # not "File exists"
    assert (tmp_path / "file").read_text() == "in the way"


def test_a_folder_where_no_file_can_be_made_is_named_by_the_users_path(tmp_path, monkeypatch):
    # As in /proc: the folder exists but refuses new files with ENOENT, on every retry.
    real_open = os.open

    def no_new_files(name, flags, *args):
        if is_temporary(os.path.basename(name)):
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), name)
        return real_open(name, flags, *args)

    monkeypatch.setattr(files.os, "open", no_new_files)
    for attempt in (check_writable, lambda path: write_atomically(path, lambda f: f.write(b"x"))):
        with pytest.raises(FileNotFoundError) as info:
            attempt(tmp_path / "m.npz")
        assert info.value.filename == str(tmp_path / "m.npz"), info.value
    assert os.listdir(tmp_path) == []


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs Linux's /proc")
def test_a_checkpoint_into_proc_names_the_users_path(capsys):
    from nnfs.app.cli import train
    from nnfs.checkpoint import save
    from nnfs.layers import Linear
    from nnfs.net import Net

    with pytest.raises(OSError) as info:
        save("/proc/x.npz", Net([Linear(2, 2)]))
    assert info.value.filename == "/proc/x.npz"
    assert train.main(["--dataset", "nowhere", "--save", "/proc/m.npz"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: cannot write /proc/m.npz: ") and ".tmp" not in err, err


@pytest.fixture
def read_only_folder(tmp_path):
    """A folder nobody may write into: a read-only tmpfs as root (root ignores modes), else mode 0555."""
    folder = tmp_path / "ro"
    folder.mkdir()
    if os.name == "posix" and os.geteuid() == 0:
        with tmpfs(folder, "ro,size=64k"):
            yield folder
    else:
        os.chmod(folder, 0o555)
        yield folder
        os.chmod(folder, 0o755)


@posix_only
def test_check_writable_finds_a_read_only_folder_and_touches_nothing(tmp_path, read_only_folder):
    with pytest.raises(OSError) as info:
        check_writable(read_only_folder / "m.npz")
    assert info.value.errno in (errno.EACCES, errno.EROFS, errno.EPERM)
    assert info.value.filename == str(read_only_folder / "m.npz")
    check_writable(tmp_path / "new" / "m.npz")
    assert not (tmp_path / "new").exists()  # the folders it made for the probe are gone again


def test_check_writable_leaves_no_folder_it_made_and_keeps_the_ones_there(tmp_path):
    (tmp_path / "there").mkdir()
    check_writable(tmp_path / "there" / "a" / "b" / "m.npz")
    assert os.listdir(tmp_path) == ["there"] and os.listdir(tmp_path / "there") == []
    write_atomically(tmp_path / "there" / "a" / "b" / "m.npz", lambda f: f.write(b"x"))
    assert (tmp_path / "there" / "a" / "b" / "m.npz").read_bytes() == b"x"  # the write makes them


# -- a full file system -----------------------------------------------------------------------------
@pytest.fixture
def small_filesystem(tmp_path):
    """A 1 MiB tmpfs (needs root on Linux; skipped where it cannot be mounted)."""
    (tmp_path / "small").mkdir()
    with tmpfs(tmp_path / "small", "size=1m") as mount_point:
        yield mount_point


def test_a_full_disk_keeps_every_old_file_byte_for_byte(small_filesystem):
    from nnfs.app.plot import plot_history
    from nnfs.checkpoint import load, save
    from nnfs.layers import Linear
    from nnfs.net import Net

    checkpoint, curves = small_filesystem / "m.npz", small_filesystem / "m.png"
    save(checkpoint, Net([Linear(4, 2)]))
    history = {key: [0.5, 0.6] for key in ("train_loss", "val_loss", "train_acc", "val_acc")}
    plot_history(history, curves)
    before = {path: path.read_bytes() for path in (checkpoint, curves)}
    fill(small_filesystem, leave=48 * 1024)
    with pytest.raises(OSError) as info:
        save(checkpoint, Net([Linear(200, 100)]))  # 80 KB of weights
    assert info.value.errno == errno.ENOSPC and info.value.filename == str(checkpoint)
    with pytest.raises(OSError) as info:
        write_atomically(curves, write_bytes(b"\1" * 200_000))
    assert info.value.errno == errno.ENOSPC and info.value.filename == str(curves)
    assert {path: path.read_bytes() for path in before} == before
    assert sorted(os.listdir(small_filesystem)) == ["filler", "m.npz", "m.png"]
    load(checkpoint)


def test_a_folder_removed_by_another_writers_probe_is_made_again(tmp_path, monkeypatch):
    # Another process's check_writable may remove the empty folder it made for its probe just
    # after this writer made the same folder: the writer makes it again instead of failing.
    import nnfs.files as files

    real = files.remove_stale_temporaries
    removed = []

    def another_probe_removes_the_folder(folder):
        if not removed:
            os.rmdir(folder)
            removed.append(folder)
        return real(folder)

    monkeypatch.setattr(files, "remove_stale_temporaries", another_probe_removes_the_folder)
    target = tmp_path / "runs" / "sub" / "m.npz"
    write_atomically(target, lambda f: f.write(b"model"))
    assert removed and target.read_bytes() == b"model"


@posix_only
def test_a_probe_that_fails_part_way_leaves_none_of_its_folders(tmp_path):
    with pytest.raises(OSError):
        check_writable(tmp_path / "new" / ("x" * 300) / "m.npz")  # a name too long for the file system
    assert os.listdir(tmp_path) == []


def test_file_identity_is_the_same_through_links_and_differs_between_files(tmp_path):
    original, other = tmp_path / "a.png", tmp_path / "b.png"
    original.write_bytes(b"a")
    other.write_bytes(b"a")  # the same bytes: still another file
    (tmp_path / "link.png").symlink_to(original)
    os.link(original, tmp_path / "hard.png")
    identity = file_identity(original)
    assert file_identity(tmp_path / "link.png") == identity == file_identity(str(tmp_path / "hard.png"))
    assert file_identity(other) != identity
    assert file_identity(tmp_path) != identity
    with pytest.raises(FileNotFoundError):
        file_identity(tmp_path / "missing.png")
    assert file_key(tmp_path / "link.png") == identity  # the same identity where it can be looked up,
    assert file_key(tmp_path / "missing.png") == os.path.normcase(os.path.realpath(tmp_path / "missing.png"))


@pytest.mark.parametrize("name, recorded", [
    ("café/1.png", "café/1.png"),                  # read under a UTF-8 locale
    ("caf\udcc3\udca9/1.png", "café/1.png"),      # the same bytes read under LC_ALL=C
    ("caf\udce9/1.png", "caf\udce9/1.png"),       # a Latin-1 byte, which is no UTF-8: kept as its escape
    ("\ud800 lone", "\ud800 lone"),               # stands for no byte: left as it is
])
def test_a_name_is_recorded_the_same_whatever_the_locale_that_read_it(name, recorded):
    from nnfs.files import local_name, portable_name

    assert portable_name(name) == recorded
    local = local_name(recorded)
    os.fsencode(local)  # always a name this process can hand to the OS
    if recorded.isprintable() or "\udce9" in recorded:
        assert os.fsencode(local) == recorded.encode("utf-8", "surrogateescape")  # the file's bytes


def test_names_are_compared_in_one_unicode_form_and_found_in_the_form_on_disk(tmp_path):
    """A split recorded on a Mac names 'café' decomposed; the copy on Linux holds it composed."""
    import os

    from nnfs.files import as_found, name_key

    assert name_key("cafe\u0301") == name_key("caf\u00e9") == "caf\u00e9"
    assert name_key("caf" + os.fsdecode(b"\xc3\xa9")) == "caf\u00e9"  # read under LC_ALL=C
    (tmp_path / "caf\u00e9" / "no\u00ebl").mkdir(parents=True)
    (tmp_path / "caf\u00e9" / "no\u00ebl" / "a.png").write_bytes(b"")
    listings = {}
    found = as_found(str(tmp_path), ["cafe\u0301", "noe\u0308l", "a.png"], listings)
    assert found == os.path.join(str(tmp_path), "caf\u00e9", "no\u00ebl", "a.png") and os.path.isfile(found)
    assert as_found(str(tmp_path), ["cafe\u0301", "b.png"], listings) == \
        os.path.join(str(tmp_path), "caf\u00e9", "b.png")  # not there in any form: as recorded
    assert as_found(str(tmp_path / "gone"), ["x"]) == os.path.join(str(tmp_path / "gone"), "x")


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="the /proc/self/fd links of Linux")
def test_a_pipe_behind_a_link_is_refused_as_a_pipe(tmp_path):
    """`--csv /dev/stdout | ...`: the link's text ("pipe:[123]") names no file, so the pipe was
    taken for a new file and the temporary file beside it failed: "No such file or directory"."""
    read_end, write_end = os.pipe()
    try:
        for act in (check_writable, lambda path: write_atomically(path, lambda f: f.write(b"x"))):
            with pytest.raises(OSError, match="is not a regular file") as info:
                act(f"/proc/self/fd/{write_end}")
            assert info.value.errno == errno.EINVAL
    finally:
        os.close(read_end)
        os.close(write_end)
