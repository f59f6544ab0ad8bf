"""The loading benchmark runs on a tiny generated folder and reports in its documented format.

Speed itself is not tested (the machines are shared); only that the script works.
"""

import json
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_json_report_has_every_method_and_the_ratios(tmp_path):
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_loading.py"), "--folder",
                           str(tmp_path / "photos"), "--count", "20", "--sizes", "160x120,120x160",
                           "--repeat", "1", "--json"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["images"] == 20 and [row["method"] for row in report["rows"]] == [
        "plain", "draft", "first", "cached"]
    for row in report["rows"]:
        assert row["images"] == 20 and row["seconds"] > 0 and row["peak_mib"] >= row["base_mib"] > 0
        assert row["dataset_mib"] == 20 * 3 * 64 * 64 / 2 ** 20
    rows = {row["method"]: row for row in report["rows"]}
    assert abs(report["cached_vs_first"] - rows["first"]["seconds"] / rows["cached"]["seconds"]) < 1e-9
    assert len(report["first_vs_plain_by_round"]) == len(report["cached_vs_first_by_round"]) == 1
    assert len(list((tmp_path / "photos").rglob("*.jpg"))) == 20
