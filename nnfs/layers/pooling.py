"""Pooling over windows of images: max and average pooling, and the global average.

All windowed pooling is the same window arithmetic (:class:`Pool2D`): the output
is combined from the KH x KW strided slices of the padded input, one per kernel
offset, so there is a loop over kernel offsets and never over pixels.
"""

from nnfs.backend import get_array_module
from nnfs.checks import int_pair
from nnfs.layers.base import Layer, check_float, check_rank, check_window_fits
from nnfs.layers.blocks import memory_blocks
from nnfs.layers.im2col import output_size, pad_images


class Pool2D(Layer):
    """Base of the windowed pooling layers: KH x KW windows moved by a stride over padded images.

    Args:
        kernel_size: int or ``(KH, KW)``.
        stride: int or ``(SH, SW)``; defaults to ``kernel_size``.
        padding: int or ``(PH, PW)`` on each edge, at most half the kernel.

    Shape:
        - Input: ``(N, C, H, W)``
        - Output: ``(N, C, OH, OW)`` with ``OH = (H + 2*PH - KH) // SH + 1``,
          ``OW = (W + 2*PW - KW) // SW + 1``
    """

    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        name = type(self).__name__
        self.kernel_size = int_pair(name, "kernel_size", kernel_size)
        self.stride = self.kernel_size if stride is None else int_pair(name, "stride", stride)
        self.padding = int_pair(name, "padding", padding, minimum=0)
        if any(2 * p > k for p, k in zip(self.padding, self.kernel_size)):
            raise ValueError(
                f"{name}: padding {self.padding} must be at most half the kernel {self.kernel_size}")

    def output_shape(self, input_shape):
        """``(N, C, OH, OW)`` for an input of shape ``(N, C, H, W)`` (floor rule)."""
        N, C, H, W = input_shape
        return (N, C) + output_size((H, W), self.kernel_size, self.stride, self.padding)

    def check_input(self, X):
        check_rank(self, X, 4, "(N, C, H, W)")
        check_float(self, X)
        check_window_fits(self, X, "window")

    def windows(self, OH, OW):
        """Yield, for each kernel offset in row-major order, the index of the (N, C, OH, OW)
        strided slice of the padded input that this offset sees in every window."""
        (KH, KW), (SH, SW) = self.kernel_size, self.stride
        for i in range(KH):
            for j in range(KW):
                yield (slice(None), slice(None), slice(i, i + SH * OH, SH), slice(j, j + SW * OW, SW))

    def local_grad(self, X):
        """dY/dX summed over the windows each input element falls in, in the input's shape.

        It runs a forward and a backward pass of its own; the cache of a pending
        training step is put back afterwards, so its backward still works.

        Shape:
            - X: ``(N, C, H, W)``; ``"X"``: the same shape
        """
        pending = dict(self.cache)
        try:
            Y = self.forward(X)
            return {"X": self.backward(get_array_module(X).ones_like(Y))}
        finally:
            self.cache = pending

    def get_config(self):
        return {"kernel_size": self.kernel_size, "stride": self.stride, "padding": self.padding}


class MaxPool2D(Pool2D):
    """2-D max pooling.

    The maximum is taken over KH x KW strided slices of the whole batch (a
    loop over kernel offsets, never over pixels; on the CPU a cache block of the
    batch at a time, see :mod:`nnfs.layers.blocks`). Backward finds the winners
    again by comparing each slice with the cached output, which is cheaper
    than recording an argmax in forward. On ties exactly one element per
    window, the first in row-major order, receives the gradient, so the
    gradient of a window always sums to its upstream value. Rows and columns
    that do not fill a window are dropped (floor rule) and get zero gradient.

    Args:
        kernel_size: int or ``(KH, KW)``; default 2.
        stride: int or ``(SH, SW)``; defaults to ``kernel_size``.
        padding: int or ``(PH, PW)``, padded with -inf so padding never wins; default 0.

    Shape:
        - Input: ``(N, C, H, W)``
        - Output: ``(N, C, OH, OW)``, the size of :class:`Pool2D` (the floor rule)
    """

    def __init__(self, kernel_size=2, stride=None, padding=0):
        super().__init__(kernel_size, stride, padding)

    def forward(self, X):
        xp = get_array_module(X)
        _, _, OH, OW = self.output_shape(X.shape)
        KH, KW = self.kernel_size
        Xp = pad_images(X, self.padding, value=-float("inf"))
        # The maximum of KH*KW strided slices: a few passes over output-sized arrays.
        # Which element won is not recorded here (that costs more than the maximum
        # itself); backward finds it again from the input and the output.
        first, *others = self.windows(OH, OW)
        # empty_like keeps the input's memory layout (its order "K"; channel-major after
        # Conv2D, see nnfs.layers), so the slices that later passes combine are walked in one
        # order. A block at a time (nnfs.layers.blocks): each block's output stays in the
        # cache through its KH*KW passes.
        out = xp.empty_like(Xp[first])
        for part in memory_blocks(Xp, touched=1 + 1 / (KH * KW)):
            Xp_part, out_part = Xp[part], out[part]
            out_part[...] = Xp_part[first]
            for window in others:
                xp.maximum(out_part, Xp_part[window], out=out_part)
        self.cache["Xp"], self.cache["out"], self.cache["input_shape"] = Xp, out, X.shape
        return out

    def backward(self, dY):
        Xp, out, input_shape = self.from_cache("Xp", "out", "input_shape")
        xp = get_array_module(dY)
        _, _, OH, OW = dY.shape
        (KH, KW), (SH, SW) = self.kernel_size, self.stride
        # When the windows tile the padded input exactly (the usual kernel == stride,
        # sizes divisible), every input element gets exactly one write: no zero fill.
        tiles = (KH, KW) == (SH, SW) and Xp.shape[2:] == (OH * KH, OW * KW)
        dXp = xp.empty_like(Xp) if tiles else xp.zeros_like(Xp)
        if dY.strides != out.strides:
            # dY in another layout than the output (Flatten's plain NCHW; see nnfs.layers):
            # one copy into the output's layout, or every pass below jumps through memory.
            dY_matched = xp.empty_like(out)
            dY_matched[...] = dY
            dY = dY_matched
        # A block of channels (or samples) at a time, each small enough for the cache: the
        # passes below go over the same slices once per kernel offset (nnfs.layers.blocks).
        # Touched per byte of the input: its gradient, and the output, dY and two masks.
        for part in memory_blocks(Xp, touched=2 + 2.5 / (KH * KW)):
            self._backward_block(Xp[part], out[part], dY[part], dXp[part], tiles)
        (PH, PW), (_, _, H, W) = self.padding, input_shape
        return dXp[:, :, PH:PH + H, PW:PW + W]

    def _backward_block(self, Xp, out, dY, dXp, tiles):
        """Backward on one block: route ``dY`` to the winners of ``Xp``'s windows, into ``dXp``.

        Shape:
            - Xp, dXp: ``(n, c, Hp, Wp)``, a block of the padded input and its gradient
            - out, dY: ``(n, c, OH, OW)``, the same block of the output and its gradient
        """
        xp = get_array_module(dY)
        taken = None
        last = self.kernel_size[0] * self.kernel_size[1] - 1
        for index, window in enumerate(self.windows(*out.shape[2:])):
            # An offset wins a window where it holds the maximum and no earlier offset
            # did: exactly one element per window gets the gradient, even on ties
            # (common after ReLU, where whole windows are 0).
            wins = Xp[window] == out
            if taken is None:
                taken = wins  # updated in place from the next offset on, once used below
            else:
                xp.greater(wins, taken, out=wins)  # wins and not taken, for booleans
                if index < last:  # the last offset's winners are never looked at again
                    xp.logical_or(taken, wins, out=taken)
            if tiles:
                xp.multiply(dY, wins, out=dXp[window])
            else:
                # Overlapping windows add up slice by slice, never by fancy index.
                dXp[window] += dY * wins


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
        - Output: ``(N, C, OH, OW)``, the size of :class:`Pool2D` (the floor rule)
    """

    def __init__(self, kernel_size, stride=None, padding=0):  # its own signature: errors name it
        super().__init__(kernel_size, stride, padding)

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
        check_float(self, X)

    def forward(self, X):
        self.cache["input_shape"] = X.shape
        return X.mean(axis=(2, 3))

    def backward(self, dY):
        N, C, H, W = self.from_cache("input_shape")
        xp = get_array_module(dY)
        share = dY * (1.0 / (H * W))
        return xp.broadcast_to(share[:, :, None, None], (N, C, H, W)).copy()

    def local_grad(self, X):
        """dY/dX is ``1 / (H*W)`` for every element.

        Shape:
            - X: ``(N, C, H, W)``; ``"X"``: the same shape
        """
        H, W = X.shape[2], X.shape[3]
        return {"X": get_array_module(X).full(X.shape, 1.0 / (H * W), dtype=X.dtype)}
