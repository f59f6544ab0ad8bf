"""SIGINT, SIGTERM and SIGHUP behave alike everywhere in both programs: one line on stderr, no
temporary file left, the old files byte for byte, exit status 130 / 143 / 129; from the first
import on."""

import os
import shutil
import signal
import time

import pytest

import nnfs.backend.archive as archive
import nnfs.files as files
from nnfs.app.cli import predict, train
from nnfs.app.cli.process import Interrupted, stop_on_signals
from nnfs.checkpoint import load

from .programs import PREDICT, TRAIN, assert_one_line, call, contents, dataset, run, start

pytestmark = pytest.mark.skipif(os.name != "posix", reason="POSIX signals")
SIGNALS = [pytest.param(getattr(signal, name), id=name) for name in ("SIGINT", "SIGTERM", "SIGHUP")]


@pytest.fixture(autouse=True)
def deliverable_signals():
    """SIGINT and SIGHUP reach this process as they reach a program in a terminal, even when the
    tests run in a background job (SIGINT ignored) or under ``nohup`` (SIGHUP ignored)."""
    wanted = {signal.SIGINT: signal.default_int_handler, signal.SIGHUP: signal.SIG_DFL}
    previous = {number: signal.getsignal(number) for number in wanted}
    for number, handler in wanted.items():
        if previous[number] is signal.SIG_IGN:
            signal.signal(number, handler)
    yield
    for number, handler in previous.items():
        signal.signal(number, handler)


def signalled(number, function):
    """``function``, but the process signals itself first (as a user or a scheduler would, right then)."""
    def wrapper(*args, **kwargs):
        os.kill(os.getpid(), number)
        time.sleep(1)  # the handler raises long before this ends
        return function(*args, **kwargs)
    return wrapper


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("finished")
    data = dataset(root)
    assert train.main([str(a) for a in ["--dataset", data, "--epochs", "1", "--save", root / "runs" / "m.npz"]]) == 0
    return root


@pytest.fixture
def good_run(tmp_path, finished_run):
    """A dataset and (a copy of) the files of a finished good run, to be kept byte for byte."""
    shutil.copytree(finished_run / "runs", tmp_path / "runs")
    return finished_run / "data", tmp_path / "runs" / "m.npz"


@pytest.mark.parametrize("number", SIGNALS)
@pytest.mark.parametrize("moment", ["loading the dataset", "training", "saving", "creating the temporary file"])
def test_a_signal_at_any_moment_of_training(good_run, capsys, monkeypatch, number, moment):
    data, save = good_run
    before = contents(save.parent)
    if moment == "loading the dataset":
        monkeypatch.setattr(train, "ImageFolder", signalled(number, train.ImageFolder))
    elif moment == "training":
        monkeypatch.setattr(train, "train_epoch", signalled(number, train.train_epoch))
    elif moment == "saving":
        def half_then_signalled(file, arrays):
            file.write(b"PK\x03\x04 half a checkpoint")
            signalled(number, lambda: None)()
        monkeypatch.setattr(archive, "save_npz", half_then_signalled)
    else:  # the narrow window: the file exists, os.open has not returned yet
        real_open = os.open

        def open_then_signalled(name, flags, mode=0o777):
            fd = real_open(name, flags, mode)
            if os.path.basename(name).startswith(".m"):
                signalled(number, lambda: None)()
            return fd
        monkeypatch.setattr(files.os, "open", open_then_signalled)
    code, _, err = call(train.main, ["--dataset", data, "--epochs", "3", "--save", save], capsys)
    assert code == 128 + number
    line = assert_one_line(err, f"interrupted ({signal.Signals(number).name})")
    if moment in ("loading the dataset", "creating the temporary file"):
        assert "this run wrote no file" in line
    assert contents(save.parent) == before  # the old files, and nothing else (no temporary file)
    assert signal.getsignal(signal.SIGINT) is not None  # the handlers were put back


@pytest.mark.parametrize("number", SIGNALS)
def test_a_signal_while_predicting(good_run, capsys, monkeypatch, number):
    data, save = good_run
    monkeypatch.setattr(predict.Classifier, "predict", signalled(number, predict.Classifier.predict))
    code, out, err = call(predict.main, [save, data], capsys)
    assert code == 128 + number and out == ""
    assert_one_line(err, f"interrupted ({signal.Signals(number).name})")


IMPORT_TRAP = """
import os, runpy, signal, sys
class Trap:  # signals this process the moment NumPy starts loading, while the program imports
    def find_spec(self, name, path=None, target=None):
        if name == "numpy":
            sys.meta_path.remove(self)
            os.kill(os.getpid(), signal.{signal})
            import time; time.sleep(5)
        return None
sys.meta_path.insert(0, Trap())
script = sys.argv[1]
sys.argv = sys.argv[1:]
runpy.run_path(script, run_name="__main__")
"""


@pytest.mark.parametrize("number", SIGNALS)
@pytest.mark.parametrize("script", [TRAIN, PREDICT], ids=["train", "predict"])
def test_a_signal_while_the_program_imports(tmp_path, number, script):
    name = signal.Signals(number).name
    code = IMPORT_TRAP.replace("{signal}", name)
    args = ["--epochs", "1"] if script == TRAIN else [tmp_path / "m.npz", tmp_path]
    status, out, err = run("-c", code, script, *args)
    assert status == 128 + number, err
    assert_one_line(err, f"interrupted ({name}) while starting; nothing was written")


@pytest.mark.parametrize("module", ["nnfs.app.cli.train", "nnfs.app.cli.predict"])
def test_a_signal_while_the_program_imports_as_a_module(tmp_path, module):
    """``python -m nnfs.app.cli.train`` is armed before NumPy loads too (a traceback otherwise)."""
    code = IMPORT_TRAP.replace("{signal}", "SIGINT").replace(
        'runpy.run_path(script, run_name="__main__")', 'runpy.run_module(script, run_name="__main__", alter_sys=True)')
    args = ["--epochs", "1"] if module.endswith("train") else [tmp_path / "m.npz", tmp_path]
    status, out, err = run("-c", code, module, *args)
    assert status == 130, err
    assert_one_line(err, "interrupted (SIGINT) while starting; nothing was written")


@pytest.mark.parametrize("number", SIGNALS)
def test_a_real_signal_to_a_real_training_run(tmp_path, number):
    """The program as users run it, signalled from outside in the middle of its epochs."""
    data = dataset(tmp_path)
    runs = tmp_path / "runs"
    process = start(TRAIN, "--dataset", data, "--epochs", "100000", "--save", runs / "m.npz")
    try:
        while b"saved" not in process.stdout.readline():  # its first epoch is done and saved
            assert process.poll() is None, process.stderr.read()
        time.sleep(0.2)
        process.send_signal(number)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 128 + number
    assert_one_line(err.decode(), f"interrupted ({signal.Signals(number).name}) in epoch ", "this run wrote")
    assert sorted(os.listdir(runs)) == ["m.npz", "m_curves.png", "m_last.npz", "m_metrics.csv"]  # no report yet
    load(runs / "m.npz")
    load(runs / "m_last.npz")


def test_a_signal_ignored_at_start_stays_ignored():
    previous = signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        with stop_on_signals():
            assert signal.getsignal(signal.SIGTERM) is signal.SIG_IGN
            assert signal.getsignal(signal.SIGINT) is not signal.SIG_IGN
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_the_handlers_are_put_back_and_a_second_signal_is_ignored():
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(Interrupted) as info:
        with stop_on_signals():
            with stop_on_signals():  # nested: armed once
                try:
                    os.kill(os.getpid(), signal.SIGTERM)
                    time.sleep(1)
                finally:  # the clean-up on the way up: a second signal must not cut it short
                    os.kill(os.getpid(), signal.SIGINT)
                    time.sleep(0.05)
    assert info.value.exit_status == 143 and info.value.name == "SIGTERM"
    assert isinstance(info.value, KeyboardInterrupt)
    assert signal.getsignal(signal.SIGTERM) is before


def test_the_launcher_module_loads_without_numpy():
    """What the scripts import first must be light, or a signal during NumPy's import would find
    no handler yet."""
    import subprocess
    import sys

    from tests import environment

    code = "import sys, nnfs.app.cli.process; print('numpy' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=environment())
    assert done.stdout.strip() == "False", done.stderr


def test_under_nohup_a_hangup_does_not_stop_training(tmp_path):
    """``nohup`` starts a program with SIGHUP ignored: it must stay ignored (a user logging out
    expects the run to go on), while SIGTERM still stops the run in one line."""
    data = dataset(tmp_path)
    runs = tmp_path / "runs"
    code = ("import runpy, signal, sys; signal.signal(signal.SIGHUP, signal.SIG_IGN); "
            "sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')")
    process = start("-c", code, TRAIN, "--dataset", data, "--epochs", "100000", "--save", runs / "m.npz")
    try:
        while b"saved" not in process.stdout.readline():  # its first epoch is done and saved
            assert process.poll() is None, process.stderr.read()
        process.send_signal(signal.SIGHUP)
        epochs = 0
        while epochs < 3:  # three more epochs after the hangup
            line = process.stdout.readline()
            assert line, process.stderr.read()
            epochs += line.startswith(b"epoch ")
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 143
    assert_one_line(err.decode(), "interrupted (SIGTERM) in epoch ", "this run wrote")
    load(runs / "m.npz")


def test_the_last_line_to_a_terminal_that_is_gone_is_dropped(monkeypatch):
    """After SIGHUP the terminal is gone and writing to it fails (EIO): the program still ends
    with its status, not with a traceback about the line it could not print."""
    import errno
    import io

    from nnfs.app.cli import console

    class GoneTerminal(io.TextIOBase):
        def write(self, text):
            raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr("sys.stderr", GoneTerminal())
    console.notice("interrupted (SIGHUP) in epoch 3")  # no exception
