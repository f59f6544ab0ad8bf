"""The test suite. It mirrors the package: ``tests/layers/test_conv.py`` tests
``nnfs/layers/conv.py``, ``tests/app/cli/test_train.py`` tests ``nnfs/app/cli/train.py``.

Helpers are imported from here (``from tests.gradcheck import assert_layer_gradients``):
``gradcheck`` (finite differences), ``layercheck`` (PyTorch as the oracle, buffer reuse),
``nets`` (small networks), ``imagefolders`` (image folders in ``tmp_path``), ``configs``
(plain, JSON-able configs). The fixtures ``backend`` and ``rng`` are in ``conftest.py``.
"""

import os
import pathlib

#: The repository root (examples/, benchmarks/, data/ are below it).
ROOT = pathlib.Path(__file__).resolve().parents[1]


def environment(**changes):
    """``os.environ`` for a subprocess that must import this checkout's nnfs.

    The repository root goes first on ``PYTHONPATH``; each keyword sets a variable,
    or removes it when its value is None.
    """
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    for name, value in changes.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env
