"""Ready-made networks."""

from nnfs.activations import ReLU
from nnfs.checks import int_pair
from nnfs.layers import BatchNorm2D, Conv2D, Flatten, Linear, MaxPool2D
from nnfs.losses import CrossEntropyLoss
from nnfs.net import Net


def reference_cnn(in_channels, image_size, n_classes, hidden=128, backend=None, dtype=None):
    """The small CNN of the examples: two conv blocks, then two linear layers.

    ``Conv(C,16,3,pad 1) BN ReLU MaxPool(2)``, ``Conv(16,32,3,pad 1) BN ReLU MaxPool(2)``,
    ``Flatten``, ``Linear(32*(H//4)*(W//4), hidden)``, ``ReLU``, ``Linear(hidden, n_classes)``,
    with a cross-entropy loss. Weights come from the seeded host generator (:func:`nnfs.seed`).

    Args:
        in_channels: channels of the input images (1 or 3).
        image_size: ``(height, width)`` or an int; both at least 4.
        n_classes: number of output classes.
        hidden: width of the hidden linear layer; default 128.
        backend, dtype: passed to :class:`~nnfs.net.Net`.

    Shape:
        - Input: ``(N, in_channels, H, W)``
        - Output: ``(N, n_classes)`` logits
    """
    height, width = int_pair("reference_cnn", "image_size", image_size)
    if height < 4 or width < 4:
        raise ValueError(f"reference_cnn: images must be at least 4x4 (two 2x2 poolings), "
                         f"got {height}x{width}")
    layers = [
        Conv2D(in_channels, 16, 3, padding=1), BatchNorm2D(16), ReLU(), MaxPool2D(2),
        Conv2D(16, 32, 3, padding=1), BatchNorm2D(32), ReLU(), MaxPool2D(2),
        Flatten(),
        Linear(32 * (height // 4) * (width // 4), hidden), ReLU(),
        Linear(hidden, n_classes),
    ]
    return Net(layers, CrossEntropyLoss(), backend=backend, dtype=dtype)


def reference_cnn_parameters(in_channels, image_size, n_classes, hidden=128):
    """The number of parameters :func:`reference_cnn` would have, without building it.

    Its first linear layer grows with the image area (491 million weights at
    1600x1200), so this is what a program asks before building the net at a size
    that may not fit in memory.
    """
    height, width = int_pair("reference_cnn_parameters", "image_size", image_size)
    convs = (in_channels * 9 + 1) * 16 + (16 * 9 + 1) * 32
    batchnorms = 2 * (16 + 32)
    linears = (32 * (height // 4) * (width // 4) + 1) * hidden + (hidden + 1) * n_classes
    return convs + batchnorms + linears


__all__ = ["reference_cnn", "reference_cnn_parameters"]
