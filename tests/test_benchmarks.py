"""The benchmark script runs one tiny configuration and reports in its documented formats.

Speed itself is not tested (the machines are shared); only that the script works.
"""

import argparse
import importlib.util
import json
import subprocess
import sys

import pytest

from tests import ROOT
BENCH = ROOT / "benchmarks" / "bench.py"
TINY = ["--configs", "1x8x8:4", "--steps", "2", "--warmup", "1", "--threads", "1"]


def run(*args):
    done = subprocess.run([sys.executable, str(BENCH), *TINY, *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_json_report_has_one_row_per_configuration():
    report = json.loads(run("--json"))
    assert report["backend"] in ("numpy", "strict", "cupy")
    assert report["steps"] == 2 and report["threads"] == 1
    (row,) = report["rows"]
    assert row["config"] == "1x8x8:4" and row["input"] == [1, 8, 8] and row["batch"] == 4
    assert row["nnfs_img_s"] > 0 and row["nnfs_peak_mib"] > 0
    assert row["nnfs_loss"] == row["nnfs_loss"]  # a number, not NaN
    # The BLAS and its kernels: a table is comparable only with the kernels it names (on the
    # CPU; a device backend's products are its own).
    if report["backend"] == "numpy":
        assert isinstance(row["nnfs_blas"], str) and row["nnfs_blas"]
    else:
        assert row["nnfs_blas"] is None
    if importlib.util.find_spec("torch") is not None:
        assert report["torch"] is True
        assert row["torch_img_s"] > 0 and row["torch_peak_mib"] > 0
        assert abs(row["ratio"] - row["nnfs_img_s"] / row["torch_img_s"]) < 1e-9
        assert row["ratios"] == [row["ratio"]]  # one pair
    else:
        assert row["torch_img_s"] is None and row["ratio"] is None and row["ratios"] is None


def test_table_and_profile_name_every_layer():
    out = run("--no-torch", "--profile")
    lines = out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.split()[:2] == ["config", "nnfs"])
    assert lines[header + 1].split()[0] == "1x8x8:4"
    assert float(lines[header + 1].split()[1]) > 0
    assert "per-layer time" in out
    assert any(line.startswith("NumPy's BLAS: ") for line in lines) == ("backend numpy" in lines[0])
    for name in ("Conv2D", "BatchNorm2D", "ReLU", "MaxPool2D", "Flatten", "Linear", "CrossEntropyLoss"):
        assert name in out


def load_bench():
    spec = importlib.util.spec_from_file_location("bench", BENCH)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    return bench


def test_bursts_cover_the_timed_steps_exactly():
    bench = load_bench()
    assert bench.bursts(12, 5) == [5, 5, 2]
    assert bench.bursts(10, 5) == [5, 5]
    assert bench.bursts(2, 5) == [2]
    assert sum(bench.bursts(50)) == 50


def test_a_pair_takes_turns_and_leaves_no_process_behind():
    bench = load_bench()
    args = argparse.Namespace(steps=7, warmup=1, threads=1, profile=False)
    use_torch = importlib.util.find_spec("torch") is not None
    started, turns = [], []

    class Recorded(bench.Child):
        def __init__(self, *a, **k):
            super().__init__(*a, **k)
            started.append(self)

        def steps(self, count):
            turns.append((self.kind, count))
            return super().steps(count)

    bench.Child = Recorded
    nnfs_result, torch_result = bench.measure_pair((1, 8, 8), 4, args, "numpy", use_torch, profile=False)
    assert nnfs_result["img_s"] > 0
    if use_torch:
        assert torch_result["img_s"] > 0
        # 7 steps in bursts of 5 and 2, each framework's turn in alternating order.
        assert turns == [("nnfs", 5), ("torch", 5), ("torch", 2), ("nnfs", 2)]
    else:
        assert torch_result is None and turns == [("nnfs", 5), ("nnfs", 2)]
    assert all(child.process.returncode is not None for child in started)


def test_a_child_that_fails_is_reported_with_its_error():
    bench = load_bench()
    args = argparse.Namespace(steps=2, warmup=1, threads=1, profile=False)
    child = bench.Child("nnfs", (1, 8, 6), 4, args, "numpy")  # 6 is no multiple of 4: the child refuses
    try:
        with pytest.raises(SystemExit) as failure:
            child.receive()
    finally:
        child.close()
    message = str(failure.value)
    assert message.startswith("bench.py: the nnfs run of 1x8x6:4 failed:")
    assert "multiples of 4" in message


def test_the_table_gives_the_range_of_the_pairs_ratios():
    bench = load_bench()
    assert bench.pair_range([0.91, 1.02, 1.27]) == "0.91-1.27"
    assert bench.pair_range([1.004]) == "1.00"
    assert bench.pair_range(None) == "-"
