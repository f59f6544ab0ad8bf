"""Every Python code block of the README and of docs/ runs, and the README's links lead somewhere.

The blocks of one file run in order in one fresh process (so they may build on each other),
in a temporary folder that holds a small ``my_images`` dataset for the examples that train
on "your own images".
"""

import importlib.util
import os
import pathlib
import re
import subprocess
import sys

import pytest

from imagefolders import make_folder

ROOT = pathlib.Path(__file__).resolve().parents[1]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def python_blocks(path):
    return re.findall(r"```python\n(.*?)```", path.read_text(), flags=re.S)


@pytest.mark.parametrize("document", [d for d in DOCUMENTS if python_blocks(d)],
                         ids=lambda d: str(d.relative_to(ROOT)))
def test_code_blocks_run(document, tmp_path):
    if document.name == "distributed.md" and importlib.util.find_spec("mpi4py") is None:
        pytest.skip("mpi4py is not installed")
    make_folder(tmp_path / "my_images", ["cats", "dogs"], per_class=10, mode="RGB", size=(40, 36))
    source = "\n".join(python_blocks(document))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    env.setdefault("OPENBLAS_NUM_THREADS", "1")
    done = subprocess.run([sys.executable, "-c", source], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{document.name}:\n{done.stderr}"


def test_readme_links_lead_to_files():
    readme = (ROOT / "README.md").read_text()
    links = re.findall(r"\]\(([^)#]+)\)", readme)
    assert links, "the README links to its docs"
    missing = [link for link in links if not link.startswith("http") and not (ROOT / link).exists()]
    assert not missing


def test_readme_stays_short():
    assert len((ROOT / "README.md").read_text().splitlines()) <= 250
