"""Running the two programs in tests: in this process (fast) or as the example scripts (real
processes, for signals, encodings and kills), with the checks every failure must pass."""

import os
import pathlib
import signal
import subprocess
import sys

from imagefolders import make_folder

ROOT = pathlib.Path(__file__).resolve().parents[3]
EXAMPLES = ROOT / "examples"
TRAIN = EXAMPLES / "CNN_custom_dataset.py"
PREDICT = EXAMPLES / "predict.py"


def environment(**variables):
    """This checkout first on the path, as a user running the scripts from it has it."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    env.update(variables)
    return env


def default_signals():
    """For a child process: SIGINT as a terminal would deliver it, even when these tests run in a
    background job (where the shell starts everything with SIGINT ignored)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start(script, *args, **variables):
    """Start an example script; stdout and stderr are pipes (bytes)."""
    return subprocess.Popen([sys.executable, str(script), *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=environment(**variables),
                            preexec_fn=default_signals if os.name == "posix" else None)


def run(script, *args, timeout=120, **variables):
    """Run an example script to the end: ``(exit status, stdout text, stderr text)``."""
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
