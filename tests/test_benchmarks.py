"""The benchmark script runs one tiny configuration and reports in its documented formats.

Speed itself is not tested (the machines are shared); only that the script works.
"""

import importlib.util
import json
import subprocess
import sys

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
    else:
        assert row["torch_img_s"] is None and row["ratio"] is None


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
