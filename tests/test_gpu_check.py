"""scripts/gpu_check.sh runs as written: it stops at once with a reason where there is no GPU,
and its CPU rehearsal runs every part (tests, example, benchmark, NCCL step) and prints the summary.

The check itself needs a GPU machine; what can go wrong there before any GPU work (a missing
interpreter, a missing package, a part that hangs, a summary that does not print) is tried here.
The machine installs nothing, so a part whose packages (pytest, Pillow, tqdm, threadpoolctl) are
missing is reported as not run, naming them, while the others still run.
"""

import os
import pathlib
import re
import shutil
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "gpu_check.sh"


def run(*args, env=None, timeout=60):
    return subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})}, stdin=subprocess.DEVNULL)


def fake_tools(tmp_path, cupy_init):
    """A PATH with an nvidia-smi that lists a GPU, and a PYTHONPATH whose cupy is ``cupy_init``."""
    bin_dir, site = tmp_path / "bin", tmp_path / "site"
    bin_dir.mkdir()
    (bin_dir / "nvidia-smi").write_text("#!/bin/sh\necho 'GPU 0: Fake GPU (UUID: GPU-0)'\n")
    (bin_dir / "nvidia-smi").chmod(0o755)
    (site / "cupy").mkdir(parents=True)
    (site / "cupy" / "__init__.py").write_text(cupy_init)
    return {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "PYTHONPATH": str(site),
            "GPU_CHECK_LOGS": str(tmp_path / "logs")}


def assert_stops_with(done, reason):
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    (line,) = [line for line in done.stderr.splitlines() if line.startswith("gpu_check:")]
    assert reason in line
    assert "paste from here" not in done.stdout


def test_without_a_driver_it_stops_at_once():
    if shutil.which("nvidia-smi"):
        pytest.skip("this machine has an NVIDIA driver: the full check is scripts/gpu_check.sh itself")
    assert_stops_with(run(), "nvidia-smi not found")


def test_without_cupy_it_stops_at_once_and_says_what_to_install(tmp_path):
    env = fake_tools(tmp_path, "raise ImportError('No module named cupy')\n")
    done = run(env=env)
    assert_stops_with(done, "CuPy is not installed")
    assert "cupy-cuda13x[ctk]" in done.stderr


def test_with_cupy_but_no_usable_gpu_it_stops_at_once(tmp_path):
    env = fake_tools(tmp_path, "__version__ = '14.2.0'\n\ndef is_available():\n    return False\n")
    assert_stops_with(run(env=env), "finds no usable GPU")


def test_without_the_interpreter_it_says_so():
    assert_stops_with(run(env={"PYTHON": "no-such-python3"}), "no Python interpreter 'no-such-python3'")


def test_an_unknown_option_is_refused():
    done = run("--fast")
    assert done.returncode == 2 and "usage: scripts/gpu_check.sh [--rehearse]" in done.stderr


def test_the_rehearsal_runs_every_part_and_prints_one_summary(tmp_path):
    done = run("--rehearse", env={"GPU_CHECK_LOGS": str(tmp_path / "logs")}, timeout=400)
    assert done.returncode == 0, done.stdout + done.stderr
    summary = done.stdout.split("===== nnfs GPU check: paste from here =====\n")[1]
    summary = summary.split("===== to here =====")[0]
    parts = {line.split()[0]: line.split()[1] for line in summary.splitlines()
             if re.match(r"^(tests|example|bench|nccl) ", line)}
    assert parts.keys() == {"tests", "example", "bench", "nccl"}
    assert parts["tests"] == parts["example"] == parts["bench"] == "PASS"
    assert parts["nccl"] in ("PASS", "SKIP")
    assert "backend strict" in summary and "nnfs img/s" in summary  # the benchmark table
    assert re.search(r"^example +PASS +\d+ s  epoch 1/1 train loss", summary, flags=re.M)
    assert re.search(r"^total +\d+ s of the 480 s budget: OK", summary, flags=re.M)
    assert (tmp_path / "logs" / "summary.txt").read_text().startswith("===== nnfs GPU check")


def summary_of(done):
    return done.stdout.split("===== nnfs GPU check: paste from here =====\n")[1].split("===== to here =====")[0]


def test_a_part_whose_packages_are_missing_is_not_run_and_says_which(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    # A module set to None in sys.modules is one that find_spec does not find and import refuses:
    # this Python then lacks pytest, Pillow and tqdm, as a bare GPU machine may.
    (site / "sitecustomize.py").write_text(
        "import sys\nfor name in ('pytest', 'PIL', 'tqdm'):\n    sys.modules[name] = None\n")
    done = run("--rehearse", env={"PYTHONPATH": str(site), "GPU_CHECK_LOGS": str(tmp_path / "logs")},
               timeout=300)
    assert done.returncode == 1, done.stdout + done.stderr
    summary = summary_of(done)
    assert "not installed: pytest, pillow, tqdm" in summary
    assert re.search(r"^tests +FAIL +0 s  not run: needs pytest pillow tqdm, not installed", summary, flags=re.M)
    assert re.search(r"^example +FAIL +0 s  not run: needs pillow tqdm, not installed", summary, flags=re.M)
    assert re.search(r"^nccl +(FAIL +0 s  not run: needs pytest pillow tqdm|SKIP .* mpi4py)", summary, flags=re.M)
    assert re.search(r"^bench +PASS ", summary, flags=re.M)  # it needs none of them, so it ran
    assert re.search(r"^total +\d+ s of the 480 s budget: FAILED", summary, flags=re.M)
