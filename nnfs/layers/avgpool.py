"""Average pooling: windowed (AvgPool2D) and over the whole image (GlobalAvgPool2D)."""

from nnfs.backend import get_array_module
from nnfs.layers.base import Layer, check_rank
from nnfs.layers.im2col import pad_images
from nnfs.layers.pool_base import Pool2D


class AvgPool2D(Pool2D):
    """2-D average pooling over KH x KW windows (PyTorch's ``AvgPool2d`` with its defaults).

    The sum is taken over strided slices of the whole batch, one kernel offset
    at a time. Zero padding counts in the average (every window is divided by
    KH*KW, PyTorch's ``count_include_pad=True``); rows and columns that do not
    fill a window are dropped (floor rule) and get zero gradient.

    Args:
        kernel_size: int or ``(KH, KW)``.
        stride: int or ``(SH, SW)``; defaults to ``kernel_size``.
        padding: int or ``(PH, PW)`` zeros on each edge, at most half the kernel; default 0.

    Shape:
        - Input: ``(N, C, H, W)``
        - Output: ``(N, C, OH, OW)`` with ``OH = (H + 2*PH - KH) // SH + 1``,
          ``OW = (W + 2*PW - KW) // SW + 1``
    """

    def forward(self, X):
        _, _, OH, OW = self.output_shape(X.shape)
        Xp = pad_images(X, self.padding)
        total = None
        for window in self.windows(OH, OW):
            total = Xp[window].copy() if total is None else total + Xp[window]
        self.cache["input_shape"] = X.shape
        return total * (1.0 / (self.kernel_size[0] * self.kernel_size[1]))

    def backward(self, dY):
        N, C, H, W = self.from_cache("input_shape")
        (PH, PW), (KH, KW) = self.padding, self.kernel_size
        xp = get_array_module(dY)
        share = dY * (1.0 / (KH * KW))
        dXp = xp.zeros((N, C, H + 2 * PH, W + 2 * PW), dtype=dY.dtype)
        for window in self.windows(dY.shape[2], dY.shape[3]):
            # Overlapping windows (stride < kernel) add up slice by slice.
            dXp[window] += share
        return dXp[:, :, PH:PH + H, PW:PW + W]


class GlobalAvgPool2D(Layer):
    """The mean of each channel over all of H x W, flattened: ready for a ``Linear`` layer.

    Equivalent to PyTorch's ``AdaptiveAvgPool2d(1)`` followed by ``Flatten()``.

    Shape:
        - Input: ``(N, C, H, W)``
        - Output: ``(N, C)``
    """

    def check_input(self, X):
        check_rank(self, X, 4, "(N, C, H, W)")

    def forward(self, X):
        self.cache["input_shape"] = X.shape
        return X.mean(axis=(2, 3))

    def backward(self, dY):
        N, C, H, W = self.from_cache("input_shape")
        xp = get_array_module(dY)
        share = dY * (1.0 / (H * W))
        return xp.broadcast_to(share[:, :, None, None], (N, C, H, W)).copy()

    def local_grad(self, X):
        """dY/dX is ``1 / (H*W)`` for every element."""
        H, W = X.shape[2], X.shape[3]
        return {"X": get_array_module(X).full(X.shape, 1.0 / (H * W), dtype=X.dtype)}
