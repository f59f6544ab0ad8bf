"""The benchmark says what it measured: threads per framework, nnfs's shards, machine and load."""

import importlib.util
import json
import os
import subprocess
import sys

from tests import ROOT, environment

BENCH = ROOT / "benchmarks" / "bench.py"


def run(*args):
    """The benchmark on the CPU backend (the one that shards), whatever NNFS_BACKEND says."""
    env = environment(NNFS_BACKEND="numpy")
    done = subprocess.run([sys.executable, str(BENCH), "--steps", "2", "--warmup", "1", *args],
                          capture_output=True, text=True, cwd=ROOT, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_report_names_the_threads_the_machine_and_its_load():
    has_torch = importlib.util.find_spec("torch") is not None
    report = json.loads(run("--configs", "1x28x28:32", "--threads", "2", "--json",
                            *([] if has_torch else ["--no-torch"])))
    assert report["threads"] == 2 and report["machine"]
    if hasattr(os, "getloadavg"):
        assert len(report["load_average"]["before"]) == 3 and len(report["load_average"]["after"]) == 3
    (row,) = report["rows"]
    assert row["nnfs_threads"] == 2
    assert row["nnfs_shards"] == 2  # 32 digits: two shards of 16, one per thread
    if has_torch:
        assert row["torch_threads"] == 2


def test_one_thread_runs_unsharded_and_the_table_says_so():
    out = run("--configs", "1x28x28:32", "--threads", "1", "--no-torch")
    assert "load average" in out and "machine:" in out
    header = next(line for line in out.splitlines() if line.split()[:1] == ["config"])
    assert "threads" in header and "shards" in header
    row = next(line for line in out.splitlines() if line.split()[:1] == ["1x28x28:32"])
    assert row.split()[3:7] == ["-", "-", "1/-", "1"]  # no ratio and no pairs without PyTorch
