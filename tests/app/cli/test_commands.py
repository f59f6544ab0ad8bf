"""The commands people install: help text for every option, the environment in the epilog,
console scripts that resolve and run the example scripts' code."""

import importlib
import subprocess
import sys

import pytest

from nnfs.app.cli import predict, train
from tests import ROOT, environment
from tests.app.cli.programs import run_example

PROGRAMS = {"train": train, "predict": predict}


def options(parser):
    return [action for action in parser._actions if action.option_strings and action.dest != "help"]


@pytest.mark.parametrize("name", list(PROGRAMS))
def test_every_option_has_help_that_shows_its_default(name):
    parser = PROGRAMS[name].build_parser()
    formatter = parser._get_formatter()
    for action in options(parser):
        text = formatter._expand_help(action) if action.help else ""
        # One spelling, "(default: ...)", as argparse's own and the environment variables' lines.
        assert len(text) > 20 and "(default: " in text, f"{action.option_strings[0]}: {text!r}"


def test_the_epilog_names_the_backend_variables(monkeypatch):
    monkeypatch.setenv("COLUMNS", "60")
    text = train.build_parser().format_help()
    assert text.index("environment variables:") > text.index("--distributed")
    for variable in ("NNFS_BACKEND", "NNFS_DTYPE", "NNFS_NUM_THREADS", "NNFS_TRANSPORT", "NNFS_CACHE_DIR",
                     "NNFS_MEMORY_LIMIT", "NNFS_KEEP_FREED_MEMORY", "OPENBLAS_NUM_THREADS"):
        assert f"\n  {variable} " in text
    assert "cuda-aware-mpi" in text and "(default: 32)" in text and "(default: 0.1)" in text
    assert max(len(line) for line in text.splitlines()) <= 60
    assert "NNFS_BACKEND" in predict.build_parser().format_help()


def console_scripts():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11 and later
    with open(ROOT / "pyproject.toml", "rb") as f:
        return tomllib.load(f)["project"]["scripts"]


def resolve(target):
    module, _, function = target.partition(":")
    return getattr(importlib.import_module(module), function)


def test_console_scripts_run_the_programs_of_the_example_scripts(capsys, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["nnfs-command", "--help"])
    scripts = console_scripts()
    assert scripts == {"nnfs-train": "nnfs.app.cli.process:launch_train",
                       "nnfs-predict": "nnfs.app.cli.process:launch_predict"}
    for name, target in scripts.items():
        with pytest.raises(SystemExit) as done:
            resolve(target)()  # what the installed command calls, reading sys.argv
        assert done.value.code == 0 and capsys.readouterr().out.startswith("usage: "), name
    # The example scripts call the same launchers, which run the same programs.
    assert "from nnfs.app.cli.process import launch_train" in (ROOT / "examples" / "CNN_custom_dataset.py").read_text()
    assert "from nnfs.app.cli.process import launch_predict" in (ROOT / "examples" / "predict.py").read_text()


def python(code, **env):
    variables = dict({"OPENBLAS_NUM_THREADS": None, "MKL_NUM_THREADS": None}, **env)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=environment(**variables), timeout=120, cwd=ROOT)


LAUNCH = """
import os, sys
from nnfs.app.cli import process
assert "numpy" not in sys.modules, "importing the launcher imported NumPy"
sys.argv = ["nnfs-train", "--help"]
try:
    process.launch_train()
except SystemExit as done:
    assert done.code == 0
print(os.environ["OPENBLAS_NUM_THREADS"], os.environ["MKL_NUM_THREADS"], "numpy" in sys.modules)
"""


def test_the_train_command_pins_blas_threads_before_numpy_is_imported():
    done = python(LAUNCH)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "1 1 True"
    done = python(LAUNCH, OPENBLAS_NUM_THREADS="2")  # the user's choice wins
    assert done.stdout.splitlines()[-1] == "2 1 True"


PREDICT = """
import os, sys
from nnfs.app.cli import process
sys.argv = ["nnfs-predict", "--help"]
try:
    process.launch_predict()
except SystemExit as done:
    assert done.code == 0
print(os.environ.get("OPENBLAS_NUM_THREADS"), os.environ.get("MKL_NUM_THREADS"))
"""


def test_the_help_says_which_commands_pin_blas_threads():
    # Only the training launcher sets them; the help of the variable must not promise more.
    done = python(PREDICT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "None None"
    text = " ".join(train.build_parser().format_help().split())
    entry = text[text.index("OPENBLAS_NUM_THREADS"):]
    assert "nnfs-train" in entry and "nnfs-predict" not in entry


def test_the_example_script_help_runs():
    done = run_example("CNN_custom_dataset", "--help")
    assert done.returncode == 0 and "--model {cnn,resnet}" in done.stdout and "NNFS_TRANSPORT" in done.stdout


@pytest.mark.parametrize("script", ["CNN_custom_dataset.py", "predict.py"])
def test_an_example_run_before_the_install_says_so_in_one_line(tmp_path, script):
    # A copy of the script alone, in a fresh interpreter that cannot see this checkout: nnfs
    # is not importable, as in a clone where the install step was skipped.
    copy = tmp_path / script
    copy.write_text((ROOT / "examples" / script).read_text())
    done = subprocess.run([sys.executable, "-I", "-S", str(copy)], capture_output=True, text=True,
                          cwd=tmp_path, timeout=60)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines() == [
        "nnfs is not installed: run `python -m pip install -e .` in the checkout first"]


def test_a_missing_dependency_is_one_line_naming_it(tmp_path):
    # numpy hidden behind a module that refuses to load, as when the install step failed.
    (tmp_path / "numpy").mkdir()
    (tmp_path / "numpy" / "__init__.py").write_text(
        "raise ModuleNotFoundError(\"No module named 'numpy'\", name='numpy')\n")
    code = "import sys; from nnfs.app.cli.process import launch_train; sys.exit(launch_train())"
    env = environment(PYTHONPATH=f"{tmp_path}:{ROOT}")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                          cwd=tmp_path, timeout=60)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines() == [
        "nnfs.app.cli.train: the package 'numpy' is missing; install nnfs with its dependencies "
        "(python -m pip install -e .)"]


@pytest.mark.parametrize("failure, line", [
    ("raise MemoryError()", "error: out of memory while loading NumPy and nnfs"),
    ("raise ImportError('libXau.so.6: failed to map segment from shared object')",
     "error: cannot load the libraries nnfs.app.cli.train needs: libXau.so.6: failed to map segment "
     "from shared object"),
], ids=["memory", "a library that cannot be mapped"])
def test_a_memory_limit_while_the_program_loads_is_one_line(tmp_path, failure, line):
    """Under ulimit -v, NumPy's import itself can run out of memory, or a compiled library
    fail to map: one line, status 1, no traceback."""
    (tmp_path / "numpy").mkdir()
    (tmp_path / "numpy" / "__init__.py").write_text(failure + "\n")
    code = "import sys; from nnfs.app.cli.process import launch_train; sys.exit(launch_train())"
    env = environment(PYTHONPATH=f"{tmp_path}:{ROOT}")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                          cwd=tmp_path, timeout=60)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines() == [line]
