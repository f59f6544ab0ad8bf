"""The shards benchmark runs tiny configurations and reports in its documented formats.

Speed itself is not tested (the machines are shared); only that the script works.
"""

import argparse
import importlib.util
import json
import os
import subprocess
import sys

import pytest

from tests import ROOT
SCRIPT = ROOT / "benchmarks" / "bench_shards.py"


def run(*args, backend="numpy"):
    env = {**os.environ, "NNFS_BACKEND": backend}
    return subprocess.run([sys.executable, str(SCRIPT), "--steps", "2", "--warmup", "1", *args],
                          capture_output=True, text=True, cwd=ROOT, env=env, timeout=120)


def test_json_report_has_the_three_ways_per_configuration():
    # 16 images of 32x32 in 2 shards of 8 x 1,024 values: just sharded (MIN_SHARD_ELEMENTS).
    done = run("--configs", "1x32x32:16,1x8x8:4", "--threads", "2", "--repeat", "2", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["threads"] == 2 and report["steps"] == 2 and report["repeat"] == 2
    sharded, small = report["rows"]
    assert (sharded["config"], sharded["shards"]) == ("1x32x32:16", 2)
    assert (small["config"], small["shards"]) == ("1x8x8:4", 1)  # too small to shard: said so
    for row in report["rows"]:
        assert len(row["ratios"]) == 2 and min(row["ratios"]) <= row["ratio"] <= max(row["ratios"])
        for way in ("one", "processes", "independent", "threads"):
            assert row[f"{way}_ms"] > 0 and row[f"{way}_cpu_ms"] > 0 and row[f"{way}_switches"] >= 0


def test_table_names_each_configuration():
    done = run("--configs", "1x8x8:4", "--threads", "1", "--repeat", "1")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("shard threads against processes, float32, 1 threads, 2 steps")
    header = next(i for i, line in enumerate(lines) if line.split()[:2] == ["config", "shards"])
    assert lines[header + 1].split()[:2] == ["1x8x8:4", "1"]


def test_bad_requests_get_one_line_each():
    for args, backend, message in [
            (["--configs", "1x8x8:4,1x8x8:5", "--threads", "2"], "numpy",
             "bench_shards.py: the batch of 1x8x8:5 must be a multiple of --threads (2), for equal shares"),
            (["--configs", "1x8x6:4"], "numpy", "bench_shards.py: '1x8x6:4': sizes must be positive"),
            (["--configs", "1x8x8:4"], "strict", "bench_shards.py: shards run on the CPU only; the backend is strict")]:
        done = run(*args, backend=backend)
        assert done.returncode != 0
        assert done.stderr.strip().startswith(message) and len(done.stderr.strip().splitlines()) == 1


def test_a_child_that_fails_is_reported_with_its_error():
    spec = importlib.util.spec_from_file_location("bench_shards", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    args = argparse.Namespace(steps=2, warmup=1)
    with pytest.raises(SystemExit) as failure:  # 6 is no multiple of 4: the child refuses
        module.run_together((1, 8, 6), 4, 1, 2, args)
    message = str(failure.value)
    assert message.startswith("bench_shards.py: the run of 1x8x6:4 on 1 thread(s) failed:")
    assert "multiples of 4" in message
