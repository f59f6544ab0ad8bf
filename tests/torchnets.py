"""The same networks written in PyTorch, with our weights copied in: the oracle for nested layers.

Parameter and buffer names agree with ours by construction (``torch.nn.Sequential`` numbers
its children as :class:`~nnfs.layers.Sequential` does, and :class:`TorchResidual` has a
``body`` and a ``shortcut``), so tests compare gradients and statistics name by name.
"""

import numpy as np

from nnfs.backend import to_numpy


def twin(layer, torch):
    """A float64 ``torch.nn.Module`` computing what ``layer`` (or a whole ``Net``) computes."""
    nn = torch.nn

    class GlobalAvgPool(nn.Module):
        def forward(self, x):
            return x.mean(dim=(2, 3))

    class TorchResidual(nn.Module):
        def __init__(self, body, shortcut):
            super().__init__()
            self.body = body
            self.shortcut = shortcut

        def forward(self, x):
            return self.body(x) + (x if self.shortcut is None else self.shortcut(x))

    def build(l):
        name = type(l).__name__
        if name in ("Net", "Sequential"):
            return nn.Sequential(*(build(child) for child in l.layers))
        if name == "Residual":
            return TorchResidual(build(l.body), None if l.shortcut is None else build(l.shortcut))
        return {
            "Conv2D": lambda: nn.Conv2d(l.in_channels, l.out_channels, l.kernel_size, stride=l.stride,
                                        padding=l.padding),
            "BatchNorm2D": lambda: nn.BatchNorm2d(l.n_channels, eps=l.epsilon, momentum=l.momentum),
            "ReLU": nn.ReLU, "Tanh": nn.Tanh, "Sigmoid": nn.Sigmoid, "Flatten": nn.Flatten,
            "LeakyReLU": lambda: nn.LeakyReLU(l.alpha),
            "MaxPool2D": lambda: nn.MaxPool2d(l.kernel_size, stride=l.stride, padding=l.padding),
            "GlobalAvgPool2D": GlobalAvgPool,
            "Linear": lambda: nn.Linear(l.in_dim, l.out_dim),
        }[name]()

    model = build(layer).double()
    ours = layer.state_dict() if hasattr(layer, "state_dict") else {
        key: to_numpy(value) for store in (layer.params, layer.buffers) for key, value in store.items()}
    missing, unexpected = model.load_state_dict(
        {key: torch.tensor(np.asarray(value, np.float64)) for key, value in ours.items()}, strict=False)
    assert not unexpected and all(key.endswith("num_batches_tracked") for key in missing), (missing, unexpected)
    return model
