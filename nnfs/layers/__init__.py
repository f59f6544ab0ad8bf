"""Layers: each is callable, with ``forward``, ``backward(dY)`` and ``local_grad(X)``.

Activations are layers too; they live in :mod:`nnfs.activations`. A layer keeps
its parameters and their gradients in two dicts with the same keys
(``params["weight"]``, ``grads["weight"]``), in PyTorch's layouts, and its
non-trained state (BatchNorm's running statistics) in ``buffers``.
:class:`Sequential` and :class:`Residual` are layers made of layers; how their
nested parameter names work is explained in :mod:`nnfs.layers.composite`.

The channel-major memory layout
-------------------------------
Images are ``(N, C, H, W)`` arrays at every layer boundary, but not all of them
lie in memory in that order, and that is what makes the convolutional layers fast.

- **Who produces it.** :class:`Conv2D` computes the whole batch as one matrix
  product ``W.reshape(C_out, -1) @ cols``, whose result is ``(C_out, N*OH*OW)``:
  channel by channel in memory. It returns that buffer as an ``(N, C_out, OH, OW)``
  *view* (a transpose, no copy). Its ``(N, C, H, W)`` shape is the public contract;
  its strides say "channel-major".
- **Who keeps it.** :class:`ReLU` and the other activations are elementwise and
  keep whatever layout they get. :class:`BatchNorm2D` reads the channel-major
  buffer as a ``(C, N*H*W)`` matrix without a copy (``channel_rows``) and writes its
  output in the same layout. :class:`MaxPool2D` makes its output like its first
  window slice (``empty_like``, whose order "K" keeps the input's layout), so its
  output is channel-major too.
- **Who relies on it.** BatchNorm's per-channel statistics become reductions and
  dot products along contiguous rows: for any other layout ``channel_rows`` has to
  copy the whole batch first. Max pooling's backward compares slices of its cached
  input with its cached output, which only streams through memory when both have
  the same layout; an upstream gradient in another layout (from ``Flatten``, which
  is plain NCHW) is copied once into the output's layout for that reason.
  ``Conv2D.backward`` reads dY as ``(C_out, N*OH*OW)``, again free for channel-major
  gradients, which is what BatchNorm and ReLU hand back.
- **Why it is faster.** On the CPU the alternative is a transpose of every conv
  output into NCHW (a full copy per layer, forward and backward), then strided
  per-channel reductions in BatchNorm. Keeping one layout from the product to the
  pooling removes those copies.

- **On CuPy it is shorter.** CuPy's elementwise kernels always write a C-ordered
  result, whatever their inputs' layout (NumPy's follow the inputs), so on a GPU ReLU
  hands max pooling a plain NCHW batch, max pooling works in that layout (and then
  needs no copy of Flatten's gradient), and BatchNorm's backward copies the gradient
  coming back through ReLU into channel rows once. BatchNorm's own output, computed
  on its ``(C, N*H*W)`` rows, is still channel-major. The strict test backend follows
  CuPy's rule, so the test suite runs the layers in both situations.

Cache blocks
------------
Three layers work through a large batch a block at a time on the CPU, so that their
repeated passes stay in the cache (:mod:`nnfs.layers.blocks`), and the layout says
how a block is cut: max pooling cuts along the outer axis in memory (channels of a
channel-major batch, samples of a plain one); BatchNorm cuts its channel rows where
they lie one after the other (never the strided rows of a transposed matrix); the
convolution's input gradient cuts samples, whose columns it makes and folds. On a
device the whole batch is one block.

Nothing outside the layers needs to know: every layer accepts any memory layout
(a plain NCHW batch from the data loader, say) and every result is a correct
``(N, C, H, W)`` array; only the speed differs.
"""

from nnfs.layers.base import Layer
from nnfs.layers.batchnorm import BatchNorm1D, BatchNorm2D
from nnfs.layers.composite import Residual, Sequential, projection
from nnfs.layers.conv import Conv2D
from nnfs.layers.dropout import Dropout
from nnfs.layers.flatten import Flatten
from nnfs.layers.linear import Linear
from nnfs.layers.pooling import AvgPool2D, GlobalAvgPool2D, MaxPool2D

__all__ = ["Layer", "Linear", "Conv2D", "MaxPool2D", "BatchNorm2D", "Flatten",
           "AvgPool2D", "GlobalAvgPool2D", "BatchNorm1D", "Dropout", "Sequential", "Residual",
           "projection"]
