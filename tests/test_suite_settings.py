"""The suite runs on nnfs's defaults whatever the shell has set (see tests/conftest.py)."""

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import shell_settings

ROOT = Path(__file__).resolve().parent.parent


def test_no_setting_of_the_shell_reaches_a_test():
    # NNFS_CACHE_DIR is the session's temporary folder (conftest's dataset_cache), not the shell's.
    assert shell_settings() == ["NNFS_CACHE_DIR"]


def test_a_test_written_for_float32_passes_in_a_float64_shell():
    """It failed with "Linear: input dtype float32 does not match the parameters' float64"
    before the settings were set aside."""
    test = "tests/layers/test_linear.py::test_a_size_computed_with_numpy_is_an_integer_like_any_other"
    environment = dict(os.environ, NNFS_DTYPE="float64", NNFS_NUM_THREADS="1", NNFS_MEMORY_LIMIT="1")
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", test], cwd=ROOT,
                            env=environment, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-2000:]
    assert "1 passed" in result.stdout
