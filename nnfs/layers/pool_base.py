"""What max and average pooling share: the window arithmetic, checks and strided slices."""

from nnfs.backend import get_array_module
from nnfs.layers.base import Layer, check_rank, pair
from nnfs.layers.im2col import conv_output_size


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
        self.kernel_size = pair(kernel_size, "kernel_size", name)
        self.stride = self.kernel_size if stride is None else pair(stride, "stride", name)
        self.padding = pair(padding, "padding", name, minimum=0)
        if any(2 * p > k for p, k in zip(self.padding, self.kernel_size)):
            raise ValueError(
                f"{name}: padding {self.padding} must be at most half the kernel {self.kernel_size}")

    def output_shape(self, input_shape):
        """``(N, C, OH, OW)`` for an input of shape ``(N, C, H, W)`` (floor rule)."""
        N, C, H, W = input_shape
        OH = conv_output_size(H, self.kernel_size[0], self.stride[0], self.padding[0])
        OW = conv_output_size(W, self.kernel_size[1], self.stride[1], self.padding[1])
        return (N, C, OH, OW)

    def check_input(self, X):
        check_rank(self, X, 4, "(N, C, H, W)")
        _, _, OH, OW = self.output_shape(X.shape)
        if OH < 1 or OW < 1:
            raise ValueError(
                f"{type(self).__name__}: input of spatial size {tuple(X.shape[2:])} is smaller than "
                f"the window {self.kernel_size} with padding {self.padding}")

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
        """
        pending = dict(self.cache)
        try:
            Y = self.forward(X)
            return {"X": self.backward(get_array_module(X).ones_like(Y))}
        finally:
            self.cache = pending

    def get_config(self):
        return {"kernel_size": self.kernel_size, "stride": self.stride, "padding": self.padding}
