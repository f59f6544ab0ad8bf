"""Running the command-line programs in tests: as the example scripts in a fresh process, or their
``main(argv)`` in this one; with the checks every failure must pass (one line, no traceback) and
the byte-for-byte snapshots that show no file was lost."""

import os
import pathlib
import signal
import subprocess
import sys

from nnfs.app.cli import train as train_program
from tests import ROOT, environment
from tests.imagefolders import make_folder

EXAMPLES = ROOT / "examples"
TRAIN = EXAMPLES / "CNN_custom_dataset.py"
PREDICT = EXAMPLES / "predict.py"


def run_example(name, *args, **env):
    """``python examples/<name>.py args...`` in a fresh process; ``env`` as for :func:`tests.environment`."""
    return subprocess.run([sys.executable, str(EXAMPLES / f"{name}.py"), *map(str, args)],
                          capture_output=True, text=True, env=environment(**env), timeout=300)


def expect_error(capsys, main, argv, message, code=1):
    """main(argv) exits with ``code`` and prints exactly one line, containing ``message``."""
    try:
        returned = main(argv)
    except SystemExit as exit_:  # argparse
        returned = exit_.code
    err = capsys.readouterr().err
    assert returned == code
    assert message in err
    assert len(err.strip().splitlines()) == 1, err


def expect_one_line_failure(result, message):
    """A finished example process failed with exit status 1 and one stderr line starting with ``message``."""
    assert result.returncode == 1
    assert result.stderr.startswith(message)
    assert len(result.stderr.strip().splitlines()) == 1


def train(folder, save, *extra):
    """Run the training program in this process with batches of 4; returns its exit code."""
    return train_program.main(
        ["--dataset", str(folder), "--batch_size", "4", "--save", str(save), *map(str, extra)])


def default_signals():
    """For a child process: SIGINT and SIGHUP as a terminal would deliver them, even when these
    tests run in a background job (where the shell starts everything with SIGINT ignored) or
    under ``nohup`` (SIGHUP ignored)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGHUP, signal.SIG_DFL)


def start(script, *args, **variables):
    """Start a script (or ``"-c", code, ...``); stdout and stderr are pipes (bytes)."""
    return subprocess.Popen([sys.executable, str(script), *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=environment(**variables),
                            preexec_fn=default_signals if os.name == "posix" else None)


def run(script, *args, timeout=120, **variables):
    """Run a script to the end: ``(exit status, stdout text, stderr text)``."""
    process = start(script, *args, **variables)
    out, err = process.communicate(timeout=timeout)
    return process.returncode, out.decode(errors="backslashreplace"), err.decode(errors="backslashreplace")


def call(main, argv, capsys):
    """``main(argv)`` in this process: ``(exit status, stdout, stderr)``."""
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exit_:  # argparse
        code = exit_.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_one_line(err, *fragments):
    """A failure reported as it must be: one line on stderr (after any warnings), no traceback."""
    assert "Traceback" not in err, err
    lines = [line for line in err.strip().splitlines() if not line.startswith("warning: ")]
    assert len(lines) == 1, err
    for fragment in fragments:
        assert fragment in lines[0], err
    return lines[0]


def dataset(tmp_path, classes=("a", "b"), per_class=5):
    """A tiny dataset that trains in milliseconds per epoch."""
    return make_folder(tmp_path / "data", list(classes), per_class=per_class)


def contents(folder):
    """``{name: bytes}`` of every file in ``folder`` (byte-for-byte comparisons before and after)."""
    folder = pathlib.Path(folder)
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir()) if path.is_file()}
