"""Max pooling over strided slices."""

from nnfs.backend import get_array_module
from nnfs.layers.im2col import pad_images
from nnfs.layers.pool_base import Pool2D


class MaxPool2D(Pool2D):
    """2-D max pooling.

    The maximum is taken over KH x KW strided slices of the whole batch (a
    loop over kernel offsets, never over pixels). Backward finds the winners
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
        - Output: ``(N, C, OH, OW)`` with ``OH = (H + 2*PH - KH) // SH + 1``,
          ``OW = (W + 2*PW - KW) // SW + 1``
    """

    def __init__(self, kernel_size=2, stride=None, padding=0):
        super().__init__(kernel_size, stride, padding)

    def forward(self, X):
        xp = get_array_module(X)
        _, _, OH, OW = self.output_shape(X.shape)
        Xp = pad_images(X, self.padding, value=-float("inf"))
        # The maximum of KH*KW strided slices: a few passes over output-sized arrays.
        # Which element won is not recorded here (that costs more than the maximum
        # itself); backward finds it again from the input and the output.
        windows = self.windows(OH, OW)
        # order="K" keeps the input's memory layout (channel-major after Conv2D), so the
        # input and output slices that later passes combine are walked in the same order.
        out = xp.copy(Xp[next(windows)], order="K")
        for window in windows:
            xp.maximum(out, Xp[window], out=out)
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
            # An upstream gradient in another memory layout (Flatten's is plain NCHW, the
            # input channel-major) would make every pass below jump through memory; one
            # copy into the output's layout is cheaper.
            dY_matched = xp.empty_like(out)
            dY_matched[...] = dY
            dY = dY_matched
        taken = None
        for window in self.windows(OH, OW):
            # An offset wins a window where it holds the maximum and no earlier offset
            # did: exactly one element per window gets the gradient, even on ties
            # (common after ReLU, where whole windows are 0).
            wins = Xp[window] == out
            if taken is None:
                taken = wins
            else:
                xp.greater(wins, taken, out=wins)  # wins and not taken, for booleans
                taken = taken | wins
            if tiles:
                xp.multiply(dY, wins, out=dXp[window])
            else:
                # Overlapping windows add up slice by slice, never by fancy index.
                dXp[window] += dY * wins
        (PH, PW), (_, _, H, W) = self.padding, input_shape
        return dXp[:, :, PH:PH + H, PW:PW + W]
