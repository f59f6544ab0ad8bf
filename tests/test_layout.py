"""The layout's two rules, read from the source: NumPy and CuPy are imported only in
nnfs/backend, and the core library never imports the training application (nnfs/app)."""

import ast

from tests import ROOT

PACKAGE = ROOT / "nnfs"


def imported_modules(path):
    """Every module name an ``import`` or ``from ... import`` statement of ``path`` names."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module


def sources(exclude):
    return [p for p in sorted(PACKAGE.rglob("*.py")) if exclude not in p.relative_to(PACKAGE).parts]


def test_only_the_backend_imports_numpy_or_cupy():
    leaks = {str(path.relative_to(PACKAGE)): name for path in sources("backend")
             for name in imported_modules(path) if name.split(".")[0] in ("numpy", "cupy")}
    assert not leaks


def test_the_core_never_imports_the_application():
    leaks = {str(path.relative_to(PACKAGE)): name for path in sources("app")
             for name in imported_modules(path) if name == "nnfs.app" or name.startswith("nnfs.app.")}
    assert not leaks


def test_the_rules_see_imports():
    # The scan itself must work: the backend does import NumPy, the application the core.
    assert "numpy" in set(imported_modules(PACKAGE / "backend" / "numpy_backend.py"))
    assert "nnfs.net" in set(imported_modules(PACKAGE / "app" / "models.py"))
