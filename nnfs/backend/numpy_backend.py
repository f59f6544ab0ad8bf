"""The CPU backend: plain NumPy."""

import numpy as np

from nnfs.backend.base import Backend


class NumpyBackend(Backend):
    name = "numpy"
    xp = np

    def asarray(self, x, dtype=None):
        if type(x).__module__.startswith("cupy"):
            x = x.get()
        elif type(x).__module__ == "nnfs.backend.strict":
            x = x.view(np.ndarray)
        return np.asarray(x, dtype=dtype)

    def to_numpy(self, x):
        return self.asarray(x)

    def is_array(self, x):
        return type(x) is np.ndarray
