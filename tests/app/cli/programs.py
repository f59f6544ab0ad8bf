"""Running the command-line programs in tests: as the example scripts in a fresh process, or their
``main(argv)`` in this one."""

import subprocess
import sys

from nnfs.app.cli import train as train_program
from tests import ROOT, environment

EXAMPLES = ROOT / "examples"


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
