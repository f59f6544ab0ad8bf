"""Ready-made networks, and which one the training program uses for which data.

- ``"cnn"``, :func:`reference_cnn`: the original project's small CNN. Fast and accurate on
  small, centred images (the shipped 28x28 digits: about 98 %), but its ``Linear`` layer
  grows with the image area and it has no skip connections.
- ``"resnet"``, :func:`small_resnet`: a small residual network (a convolution stem, three
  stages of residual blocks with BatchNorm and stride-2 downsampling, global average
  pooling, a linear head). Its parameter count does not depend on the image size, and
  the average pooling makes it indifferent to where in the picture the object is.

:func:`default_model` picks by the kind of data (``ImageFolder.kind``): ``"resnet"`` for
photos, ``"cnn"`` for small images such as the digits.
"""

from nnfs.activations import ReLU
from nnfs.checks import choice, int_pair, integer
from nnfs.layers import (
    BatchNorm2D, Conv2D, Flatten, GlobalAvgPool2D, Linear, MaxPool2D, Residual, Sequential, projection)
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


def basic_block(in_channels, out_channels, stride=1):
    """ResNet's basic block without its final ReLU: ``Residual(body, shortcut)``.

    The body is ``Conv(in, out, 3, stride, pad 1) BN ReLU Conv(out, out, 3, pad 1) BN``;
    the shortcut is the identity when the shape stays, otherwise :func:`projection`
    (a 1x1 convolution with the same stride, then BatchNorm), as in He et al. (2016).
    """
    body = Sequential(
        Conv2D(in_channels, out_channels, 3, stride=stride, padding=1), BatchNorm2D(out_channels), ReLU(),
        Conv2D(out_channels, out_channels, 3, padding=1), BatchNorm2D(out_channels))
    same_shape = stride == 1 and in_channels == out_channels
    return Residual(body, None if same_shape else projection(in_channels, out_channels, stride))


def small_resnet(in_channels, image_size, n_classes, widths=(16, 32, 64), blocks=1, stem_stride=2,
                 backend=None, dtype=None):
    """A small residual network for photos; its parameter count does not depend on the image size.

    ``Conv(C, widths[0], 3, stem_stride, pad 1) BN ReLU``, then three stages of ``blocks``
    :func:`basic_block` s each followed by ``ReLU``, of ``widths[0]``, ``widths[1]`` and
    ``widths[2]`` channels (the first block of the second and third stage halves the
    height and width with stride 2), then ``GlobalAvgPool2D`` and ``Linear(widths[2], n_classes)``,
    with a cross-entropy loss.

    The defaults are sized for the training program's 64x64 photos on a CPU: the stem's
    stride 2 runs the first stage at 32x32 (a quarter of the work of stride 1, the main
    cost on a CPU), and widths 16/32/64 with one block per stage (8 weighted layers on the
    main path, about 78,000 parameters for 3 channels and 10 classes) train a 2,000-photo
    folder in minutes on two cores. Wider or deeper variants are one argument away.

    Args:
        in_channels: channels of the input images (1 or 3).
        image_size: ``(height, width)`` or an int, at least 4x4; checked, but the network
            takes any size (the average pooling removes the spatial axes).
        n_classes: number of output classes.
        widths: channels of the three stages; default ``(16, 32, 64)``.
        blocks: residual blocks per stage; default 1.
        stem_stride: stride of the first convolution, 1 or 2; default 2.
        backend, dtype: passed to :class:`~nnfs.net.Net`.

    Shape:
        - Input: ``(N, in_channels, H, W)``
        - Output: ``(N, n_classes)`` logits

    The parameters of block ``b`` are named ``"<layer index>.body.0.weight"`` and so on
    (see :mod:`nnfs.layers.composite`): the stem is layers 0-2 and the blocks start at 3.
    """
    owner = "small_resnet"
    height, width = int_pair(owner, "image_size", image_size)
    if height < 4 or width < 4:
        raise ValueError(f"{owner}: images must be at least 4x4, got {height}x{width}")
    widths = tuple(integer(owner, "widths", w, minimum=1) for w in widths)
    if len(widths) != 3:
        raise ValueError(f"{owner}: widths must give the channels of 3 stages, got {widths}")
    blocks = integer(owner, "blocks", blocks, minimum=1)
    stem_stride = choice(owner, "stem_stride", stem_stride, (1, 2))
    layers = [Conv2D(in_channels, widths[0], 3, stride=stem_stride, padding=1), BatchNorm2D(widths[0]), ReLU()]
    channels = widths[0]
    for stage, stage_width in enumerate(widths):
        for index in range(blocks):
            stride = 2 if stage > 0 and index == 0 else 1
            layers += [basic_block(channels, stage_width, stride), ReLU()]
            channels = stage_width
    layers += [GlobalAvgPool2D(), Linear(channels, n_classes)]
    return Net(layers, CrossEntropyLoss(), backend=backend, dtype=dtype)


def small_resnet_parameters(in_channels, n_classes, widths=(16, 32, 64), blocks=1):
    """The number of parameters :func:`small_resnet` has, without building it (the same for
    every image size): for the memory estimate a program makes before building a net."""
    def conv(c_in, c_out, k):
        return c_in * c_out * k * k + c_out

    count = conv(in_channels, widths[0], 3) + 2 * widths[0]
    channels = widths[0]
    for stage, width in enumerate(widths):
        for index in range(blocks):
            count += conv(channels, width, 3) + conv(width, width, 3) + 4 * width
            if (stage > 0 and index == 0) or channels != width:  # the projection shortcut
                count += conv(channels, width, 1) + 2 * width
            channels = width
    return count + channels * n_classes + n_classes


#: The networks the training program can build, by ``--model`` name.
MODELS = {"cnn": reference_cnn, "resnet": small_resnet}
#: How the programs call them in their output.
MODEL_TITLES = {"cnn": "reference CNN", "resnet": "residual network"}
#: The default model per kind of data (``ImageFolder.kind``); any other kind gets "cnn".
DEFAULT_MODELS = {"photos": "resnet", "small": "cnn"}


#: How each network trains when the command line does not say (``--optimizer``, ``--epochs``,
#: ``--schedule``, and ``lr`` when the optimizer is the recipe's). The reference CNN keeps the
#: original settings (SGD with momentum, 10 epochs: about 98 % on the digits). The residual
#: network needs Adam, a cosine schedule and more epochs for photos. Best validation accuracy
#: in trials on 2,000 generated 64x64 photos of 10 shapes (stretched, flips and shifts as
#: augmentation, 2 CPU cores, about 5 s an epoch): Adam at 0.003 38.5 % after 20 epochs, 51 %
#: after 30, 75 % after 50; Adam at 0.001 33.5 % and at 0.005 30.5 % after 30; SGD at 0.01
#: 23.5 % after 20, and SGD at 0.05 did not learn. The default command (centre crops, crop and
#: flip augmentation) reaches 64 % there in 3.5 minutes; the reference CNN stays at chance.
RECIPES = {
    "cnn": {"optimizer": "sgd", "epochs": 10, "schedule": "constant"},
    "resnet": {"optimizer": "adam", "lr": 0.003, "epochs": 50, "schedule": "cosine"},
}


def default_model(kind):
    """The ``--model`` used when none is given: ``"resnet"`` for ``kind="photos"``, else ``"cnn"``.

    Photos are large, varied and rarely centred: the residual network with average
    pooling learns them better, with a size-independent parameter count. Small images
    such as the digits keep the reference CNN, which is faster there and as accurate.
    """
    return DEFAULT_MODELS.get(kind, "cnn")


def model_parameters(name, in_channels, image_size, n_classes):
    """The number of parameters ``build_model(name, ...)`` would give, without building it (for
    the memory estimate made before a dataset loads)."""
    name = choice("model_parameters", "name", name, tuple(MODELS))
    if name == "cnn":
        return reference_cnn_parameters(in_channels, image_size, n_classes)
    return small_resnet_parameters(in_channels, n_classes)


def build_model(name, in_channels, image_size, n_classes, backend=None, dtype=None):
    """The network ``MODELS[name]`` for images of ``in_channels`` x ``image_size`` and ``n_classes``."""
    name = choice("build_model", "name", name, tuple(MODELS))
    return MODELS[name](in_channels, image_size, n_classes, backend=backend, dtype=dtype)


__all__ = ["reference_cnn", "small_resnet", "basic_block", "MODELS", "MODEL_TITLES", "DEFAULT_MODELS", "RECIPES",
           "default_model", "build_model", "small_resnet_parameters", "reference_cnn_parameters", "model_parameters"]
