"""Two training runs on one --save: the second refuses before it writes anything, and the lock dies
with the process that held it."""

import errno
import os
import signal
import subprocess
import sys

import pytest

from nnfs.app.cli import train as train_program
from nnfs.app.cli.lock import OutputLock, OutputsInUse, lock_path
from tests import environment

from .programs import TRAIN, assert_one_line, call, contents, dataset, run

HOLD = ("import sys, time; from nnfs.app.cli.lock import OutputLock\n"
        "with OutputLock(sys.argv[1]):\n"
        "    print('held', flush=True); time.sleep(120)\n")


@pytest.fixture
def holder():
    """Start a process that holds the lock of a --save (as a training run does), and returns it."""
    started = []

    def hold(save):
        process = subprocess.Popen([sys.executable, "-c", HOLD, str(save)], stdout=subprocess.PIPE,
                                   env=environment(), text=True)
        started.append(process)
        assert process.stdout.readline().strip() == "held"
        return process

    yield hold
    for process in started:
        if process.poll() is None:
            process.kill()
        process.wait()


def test_a_second_run_on_the_same_save_is_refused_naming_the_other_process(tmp_path, holder):
    data = dataset(tmp_path)
    runs = tmp_path / "runs"
    first = holder(runs / "m.npz")
    status, out, err = run(TRAIN, "--dataset", data, "--epochs", "1", "--save", runs / "m.npz")
    assert status == 1, err
    line = assert_one_line(err, f"process {first.pid}", str(runs / "m.npz"), "give --save another path")
    assert line.startswith("error: another training run")
    assert out == ""
    assert set(contents(runs)) == {".m.lock"}  # the holder's; nothing of the refused run


def test_another_spelling_of_the_same_file_takes_the_same_lock(tmp_path, holder, capsys):
    """Through ``..``, a symbolic link to the checkpoint or to its folder: one file, one lock."""
    data = dataset(tmp_path)
    runs = tmp_path / "runs"
    holder(runs / "m.npz")
    (tmp_path / "link.npz").symlink_to(runs / "m.npz")
    (tmp_path / "folder").symlink_to(runs)
    for save in (runs / ".." / "runs" / "m.npz", tmp_path / "link.npz", tmp_path / "folder" / "m.npz"):
        code, _, err = call(train_program.main, ["--dataset", data, "--epochs", "1", "--save", save], capsys)
        assert code == 1
        assert_one_line(err, "another training run")


def test_saves_that_differ_only_by_extension_take_one_lock(tmp_path, holder, capsys):
    """--save m, m.npz and m.pt write the same m_metrics.csv and m_curves.png (m and m.npz the
    same m_last.npz too): two such runs at once mixed those files, each under a lock of its own."""
    data = dataset(tmp_path)
    runs = tmp_path / "runs"
    holder(runs / "m.npz")
    for save in (runs / "m", runs / "m.pt"):
        code, _, err = call(train_program.main, ["--dataset", data, "--epochs", "1", "--save", save], capsys)
        assert code == 1
        assert_one_line(err, "another training run", str(save))
    assert lock_path(runs / "m") == lock_path(runs / "m.pt") == lock_path(runs / "m.npz")
    assert lock_path(runs / "m2.npz") != lock_path(runs / "m.npz")


def test_the_lock_does_not_outlive_a_killed_run(tmp_path, holder, capsys):
    """kill -9 leaves the lock file, but not the lock: the next run takes it, and removes the file."""
    data = dataset(tmp_path)
    save = tmp_path / "runs" / "m.npz"
    first = holder(save)
    first.send_signal(signal.SIGKILL)
    first.wait()
    assert os.path.exists(lock_path(save))  # left behind, unlocked
    code, _, err = call(train_program.main, ["--dataset", data, "--epochs", "1", "--batch_size", "4",
                                             "--save", save], capsys)
    assert code == 0, err
    assert not os.path.exists(lock_path(save))
    assert "m.npz" in contents(save.parent)


def test_a_run_that_stops_before_writing_leaves_no_folder_or_lock_behind(tmp_path, capsys):
    save = tmp_path / "new" / "deeper" / "m.npz"
    code, _, err = call(train_program.main, ["--dataset", tmp_path / "missing", "--save", save], capsys)
    assert code == 1 and "dataset folder not found" in err
    assert not (tmp_path / "new").exists()


def test_the_lock_is_held_by_one_holder_and_released_on_exit(tmp_path):
    save = tmp_path / "m.npz"
    with OutputLock(save) as lock:
        assert lock.unsupported is None
        assert open(lock.path).read().split()[0] == str(os.getpid())
        with pytest.raises(OutputsInUse, match=rf"process {os.getpid()}\).*--save {save}"):
            OutputLock(save).__enter__()  # another open file: refused even within one process
    assert not os.path.exists(lock_path(save))
    with OutputLock(save):  # free again
        pass


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="no symbolic links here")
def test_a_symbolic_link_at_the_lock_name_is_refused_and_its_target_kept(tmp_path, capsys):
    """The lock file is truncated and written: opened through a link (to another run's model),
    it wiped that model, which held the holder's line after the run."""
    data = dataset(tmp_path)
    save = tmp_path / "runs" / "m.npz"
    save.parent.mkdir()
    model = tmp_path / "model.npz"
    model.write_bytes(b"PK\x03\x04 a model of another run")
    os.symlink(model, lock_path(save))
    code, out, err = call(train_program.main, ["--dataset", data, "--epochs", "1", "--save", save], capsys)
    assert code == 1
    assert_one_line(err, f"cannot write {lock_path(save)}: a symbolic link", "remove the link")
    assert model.read_bytes() == b"PK\x03\x04 a model of another run"
    assert os.path.islink(lock_path(save)) and "m.npz" not in contents(save.parent)


@pytest.mark.parametrize("system", ["without O_NOFOLLOW", "where O_NOFOLLOW gives EMLINK"])
def test_a_symbolic_link_at_the_lock_name_is_refused_on_other_systems_too(tmp_path, monkeypatch, system):
    """Where os has no O_NOFOLLOW (Windows) the link was followed and its target wiped; FreeBSD
    refuses O_NOFOLLOW on a link with EMLINK, not ELOOP, which read as no link."""
    model = tmp_path / "model.npz"
    model.write_bytes(b"a model of another run")
    save = tmp_path / "m.npz"
    os.symlink(model, lock_path(save))
    if system == "without O_NOFOLLOW":
        monkeypatch.delattr(os, "O_NOFOLLOW", raising=False)
    else:
        real_open = os.open

        def freebsd_open(path, flags, *args):
            if os.path.islink(path) and flags & os.O_NOFOLLOW:
                raise OSError(errno.EMLINK, os.strerror(errno.EMLINK), path)
            return real_open(path, flags, *args)

        monkeypatch.setattr(os, "open", freebsd_open)
    with pytest.raises(OSError, match="a symbolic link, not a lock file"):
        with OutputLock(save):
            pass
    assert model.read_bytes() == b"a model of another run" and os.path.islink(lock_path(save))


def test_a_long_checkpoint_name_gets_a_lock_name_that_fits(tmp_path):
    name = "m" * 250 + ".npz"
    path = lock_path(tmp_path / name)
    assert len(os.path.basename(path).encode()) <= 255 and os.path.dirname(path) == str(tmp_path)
    assert lock_path(tmp_path / ("m" * 249 + "n.npz")) != path  # two long names, two locks


def test_a_full_disk_while_the_lock_is_written_names_the_lock_file(tmp_path, capsys, monkeypatch):
    """Writing the holder's line into the lock fails on a descriptor, whose error names no file:
    the line said "cannot write No space left on device"."""
    import errno
    import types

    import nnfs.app.cli.lock as lock

    def full(fd, data):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(lock, "os", types.SimpleNamespace(**{**vars(os), "write": full}))
    save = tmp_path / "runs" / "m.npz"
    code, _, err = call(train_program.main, ["--dataset", dataset(tmp_path), "--epochs", "1", "--save", save], capsys)
    assert code == 1
    assert_one_line(err, f"error: cannot write {lock_path(save)}: No space left on device")
    assert not (tmp_path / "runs").exists()


def _deleting_the_folder_before_epoch(epoch, save, then=None):
    """A train_epoch that removes the --save folder (its lock file with it) as ``epoch`` starts,
    then calls ``then(epoch)`` at the start of each epoch."""
    import shutil

    calls = []
    train_epoch = train_program.train_epoch

    def deleting(*args, **kwargs):
        calls.append(None)
        if len(calls) == epoch:
            shutil.rmtree(save.parent)
        if then is not None:
            then(len(calls))
        return train_epoch(*args, **kwargs)

    return deleting


def test_a_run_whose_lock_file_is_deleted_takes_the_lock_again(tmp_path, capsys, monkeypatch):
    """The --save folder removed between epochs took the lock file along, and the folder that the
    next writes made again had none: a second run on that --save was let in."""
    save = tmp_path / "runs" / "m.npz"
    refused = []

    def second_run(epoch):
        if epoch == 3:  # after epoch 2's files, written into the folder made again
            with pytest.raises(OutputsInUse, match="another training run"):
                OutputLock(save).__enter__()
            refused.append(epoch)

    monkeypatch.setattr(train_program, "train_epoch", _deleting_the_folder_before_epoch(2, save, second_run))
    code, _, err = call(train_program.main, ["--dataset", dataset(tmp_path), "--epochs", "3", "--batch_size", "4",
                                             "--save", save], capsys)
    assert code == 0, err
    assert refused == [3]
    # The best model of epoch 1 went with the folder (the report of a later best only).
    assert {"m_last.npz", "m_curves.png", "m_metrics.csv"} <= set(contents(save.parent))
    assert not os.path.exists(lock_path(save))


def test_a_run_whose_lock_was_taken_by_another_run_meanwhile_stops_before_writing(tmp_path, holder, capsys,
                                                                               monkeypatch):
    save = tmp_path / "runs" / "m.npz"
    other = []
    monkeypatch.setattr(train_program, "train_epoch", _deleting_the_folder_before_epoch(
        2, save, lambda epoch: other.append(holder(save)) if epoch == 2 else None))
    code, out, err = call(train_program.main, ["--dataset", dataset(tmp_path), "--epochs", "2", "--batch_size", "4",
                                               "--save", save], capsys)
    assert code == 1
    assert_one_line(err, f"error: the lock file {lock_path(save)} was removed while this run held it",
                    f"another training run (process {other[0].pid}) has taken it since to write --save {save}")
    assert "epoch  2/2" not in out
    assert set(contents(save.parent)) == {".m.lock"}  # the other run's; nothing of epoch 2 written over it
