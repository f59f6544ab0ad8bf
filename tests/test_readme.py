"""The README's promises: the commands it shows are the ones CI runs and the files exist."""

import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _bash_blocks(text):
    return re.findall(r"```bash\n(.*?)```", text, flags=re.S)


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    test_command = 'python -m pip install -e ".[test]" && python -m pytest -q'
    assert any(test_command in block for block in _bash_blocks(readme))
    ci_lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert test_command in ci_lines


def test_readme_main_command_runs_the_example():
    readme = (ROOT / "README.md").read_text()
    assert any("python examples/CNN_custom_dataset.py" in block for block in _bash_blocks(readme))
