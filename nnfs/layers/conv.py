"""2-D convolution through im2col."""

import math

from nnfs.backend import backend_of, get_array_module, host_rng, host_zeros
from nnfs.checks import int_pair, integer
from nnfs.layers.base import Layer, check_dtype, check_rank, check_window_fits
from nnfs.layers.blocks import fitting_blocks
from nnfs.layers.im2col import col2im, col2im_rows, im2col, output_size, padded_rows_shape, unpad_rows


class Conv2D(Layer):
    """2-D convolution (cross-correlation, as in PyTorch) over ``(N, C, H, W)`` images.

    The algorithm is im2col: unfold every KH x KW patch of the batch into a column,
    then multiply once by the flattened kernels::

        cols = im2col(X)                          # (C_in*KH*KW, N*OH*OW)
        Y = W.reshape(C_out, -1) @ cols + b       # (C_out, N*OH*OW), then (N, C_out, OH, OW)
        dW = dY @ cols.T;  dX = col2im(W.reshape(C_out, -1).T @ dY)

    Five optimisations of exactly that: the column buffers are reused from one step
    to the next (:meth:`_workspace` says why); ``Y`` is returned as a view of the
    product's channel-major memory instead of a transposed copy (the layout is
    explained in :mod:`nnfs.layers`); with stride 1 the input gradient's columns
    are made with rows as wide as the padded image, which col2im folds back in long
    runs (:func:`~nnfs.layers.im2col.col2im_rows`), a block of samples at a time
    that fits the CPU's cache (:meth:`_input_grad_rows`); and ``dW`` is computed as
    ``(cols @ dY.T).T``, the operand order the BLAS's AVX-512 kernels run fastest.
    Weights are drawn from N(0, 2 / (C_in*KH*KW)) (He initialisation); the bias
    starts at zero.

    Args:
        in_channels: channels of the input images.
        out_channels: number of filters.
        kernel_size: int or ``(KH, KW)``; default 3.
        stride: int or ``(SH, SW)``; default 1.
        padding: int or ``(PH, PW)`` zeros added to each edge; default 0.
        dtype: float32 (default) or float64.

    Shape:
        - Input: ``(N, C_in, H, W)``
        - Output: ``(N, C_out, OH, OW)`` with
          ``OH = (H + 2*PH - KH) // SH + 1`` and ``OW = (W + 2*PW - KW) // SW + 1``

    Attributes:
        params["weight"]: ``(C_out, C_in, KH, KW)``, as in PyTorch.
        params["bias"]: ``(C_out,)``.
    """

    def __init__(self, in_channels, out_channels, kernel_size=3, stride=1, padding=0, dtype=None):
        super().__init__()
        shapes = self.array_shapes(in_channels, out_channels, kernel_size)
        self.out_channels, self.in_channels, KH, KW = shapes["weight"]
        self.kernel_size = (KH, KW)
        self.stride = int_pair("Conv2D", "stride", stride)
        self.padding = int_pair("Conv2D", "padding", padding, minimum=0)
        std = math.sqrt(2.0 / (self.in_channels * KH * KW))
        self.init_params(
            dtype,
            weight=host_rng().normal(0.0, std, size=shapes["weight"]),
            bias=host_zeros(shapes["bias"]))

    @classmethod
    def array_shapes(cls, in_channels, out_channels, kernel_size=3, stride=1, padding=0, dtype=None):
        """``{"weight": (C_out, C_in, KH, KW), "bias": (C_out,)}``, the sizes checked (see ``Layer``)."""
        in_channels = integer("Conv2D", "in_channels", in_channels, minimum=1)
        out_channels = integer("Conv2D", "out_channels", out_channels, minimum=1)
        KH, KW = int_pair("Conv2D", "kernel_size", kernel_size)
        return {"weight": (out_channels, in_channels, KH, KW), "bias": (out_channels,)}

    def output_shape(self, input_shape):
        """``(N, C_out, OH, OW)`` for an input of shape ``(N, C_in, H, W)``."""
        N, _, H, W = input_shape
        return (N, self.out_channels) + output_size((H, W), self.kernel_size, self.stride, self.padding)

    def check_input(self, X):
        check_rank(self, X, 4, "(N, C, H, W)")
        if X.shape[1] != self.in_channels:
            raise ValueError(
                f"Conv2D: expected {self.in_channels} input channels, got shape {tuple(X.shape)}")
        check_window_fits(self, X, "kernel")
        check_dtype(self, X)

    def forward(self, X):
        N, _, OH, OW = self.output_shape(X.shape)
        KH, KW = self.kernel_size
        # The columns are the largest array of the step; the last step's buffer is refilled.
        cols = self._workspace("cols", (self.in_channels * KH * KW, N * OH * OW), X)
        im2col(X, self.kernel_size, self.stride, self.padding, out=cols)
        weight = self.params["weight"].reshape(self.out_channels, -1)
        Y = weight @ cols
        Y += self.params["bias"][:, None]  # in place: Y is a fresh array of ours
        self.cache["cols"] = cols
        self.cache["input_shape"] = X.shape
        # Channel-major (C_out, N*OH*OW), returned as an (N, C_out, OH, OW) view: see nnfs.layers.
        return Y.reshape(self.out_channels, N, OH, OW).transpose(1, 0, 2, 3)

    def backward(self, dY):
        cols, input_shape = self.from_cache("cols", "input_shape")
        N, C_out, OH, OW = dY.shape
        dY = dY.transpose(1, 0, 2, 3).reshape(C_out, N * OH * OW)
        weight = self.params["weight"]
        xp = get_array_module(dY)
        # dot, not @: a small result of a long sum (see nnfs.parallel, "the interpreter lock").
        # The columns as the left operand: OpenBLAS's AVX-512 kernels take this long sum 1.4-1.6x
        # faster that way round (its AVX2 ones run both orders alike). The transposed result,
        # a few thousand values, is copied to C order, the layout every gradient has.
        self.grads["weight"] = xp.ascontiguousarray(xp.dot(cols, dY.T).T).reshape(weight.shape)
        self.grads["bias"] = dY.sum(axis=1)
        if not self.input_grad:
            return None
        C, (KH, KW) = self.in_channels, self.kernel_size
        weight_t = weight.reshape(C_out, -1).T
        if self.stride == (1, 1):
            return self._input_grad_rows(dY.reshape(C_out, N, OH, OW), weight_t, input_shape)
        dcols = self._workspace("dcols", cols.shape, dY)
        xp.matmul(weight_t, dY, out=dcols)
        dcols = dcols.reshape(C, KH, KW, N, OH, OW)
        return col2im(dcols, input_shape, self.kernel_size, self.stride, self.padding)

    def _input_grad_rows(self, dY, weight_t, input_shape):
        """dX for stride 1, from ``dY`` as ``(C_out, N, OH, OW)``: a block of samples at a time.

        Each block's rows of dY are widened by zeros to the padded width, multiplied by the
        kernels, and folded straight into the padded input gradient (col2im_rows says why
        the rows are widened). A block is as many samples as fill the backend's
        ``block_bytes`` with columns (the whole batch where it has none, on a device): on
        the CPU the product's columns are then still in the cache when col2im reads them,
        where the columns of a whole batch (tens of MB) go out to memory and back
        (measured: the reference net's second convolution's backward 11.4 -> 10.2 ms a
        step, 3x32x32 images, batch 256). The workspaces' pad columns are zeroed once and
        never written: a column's place in a row is its flat index modulo the padded width,
        whatever the block's size, so a smaller block uses the start of the same buffers (a
        new width, a new buffer).

        Shape:
            - dY: ``(C_out, N, OH, OW)``; weight_t: ``(C_in*KH*KW, C_out)``
            - returns ``(N, C_in, H, W)``, a view of the padded gradient
        """
        xp = get_array_module(dY)
        C_out, N, OH, OW = dY.shape
        C, (KH, KW) = self.in_channels, self.kernel_size
        Wp = input_shape[3] + 2 * self.padding[1]
        per_sample = C * KH * KW * OH * Wp * dY.dtype.itemsize
        blocks = fitting_blocks(N, per_sample, backend_of(dY).block_bytes)
        block = max(part.stop - part.start for part in blocks)
        # Wp in the workspace's shape: its zero columns are zero for this width only.
        dY_rows = self._workspace("dY_rows", (C_out * block * OH, Wp), dY, zeros=True).reshape(-1)
        dcols = self._workspace("dcols", (C * KH * KW * block * OH * Wp,), dY)
        dXp = xp.empty(padded_rows_shape(input_shape, self.kernel_size, self.padding), dtype=dY.dtype)
        for part in blocks:
            first, n = part.start, part.stop - part.start
            rows = dY_rows[:C_out * n * OH * Wp].reshape(C_out, n, OH, Wp)
            rows[:, :, :, :OW] = dY[:, first:first + n]
            product = dcols[:C * KH * KW * n * OH * Wp].reshape(C * KH * KW, n * OH * Wp)
            xp.matmul(weight_t, rows.reshape(C_out, -1), out=product)
            col2im_rows(product.reshape(C, KH, KW, n, OH, Wp), (n, C) + tuple(input_shape[2:]),
                        self.kernel_size, self.padding, out=dXp[:, first:first + n])
        return unpad_rows(dXp, input_shape, self.kernel_size, self.padding)

    def _workspace(self, name, shape, like, zeros=False):
        """A scratch array kept in the cache and reused by the next step of the same shape.

        Arrays above about 32 MB (the columns of a batch of 256 small images) come
        fresh from the operating system on every allocation, and touching their pages
        the first time costs about as much as filling them. Only arrays that never
        leave the layer are reused, so no caller ever sees one change. ``zeros``: a new
        buffer starts as zeros (what the caller never writes stays zero).
        """
        buffer = self.cache.get(name)
        if buffer is None or buffer.shape != shape or buffer.dtype != like.dtype \
                or type(buffer) is not type(like):
            xp = get_array_module(like)
            buffer = (xp.zeros if zeros else xp.empty)(shape, dtype=like.dtype)
        self.cache[name] = buffer
        return buffer

    def local_grad(self, X):
        """dY/dW is the unfolded input; dY/dX is the kernel.

        Shape:
            - X: ``(N, C_in, H, W)``
            - ``"X"``: ``(C_out, C_in, KH, KW)``, the weight
            - ``"weight"``: ``(C_in*KH*KW, N*OH*OW)``, the im2col columns, one per output pixel
              (in ``(N, OH, OW)`` order): ``weight.reshape(C_out, -1) @ columns`` is the output
              without its bias, as ``(C_out, N, OH, OW)``
        """
        N, _, OH, OW = self.output_shape(X.shape)
        KH, KW = self.kernel_size
        cols = im2col(X, self.kernel_size, self.stride, self.padding)
        # The row count spelled out: reshape(-1, 0) cannot infer it for an empty batch.
        return {"X": self.params["weight"], "weight": cols.reshape(self.in_channels * KH * KW, N * OH * OW)}

    def get_config(self):
        return {"in_channels": self.in_channels, "out_channels": self.out_channels,
                "kernel_size": self.kernel_size, "stride": self.stride, "padding": self.padding}
