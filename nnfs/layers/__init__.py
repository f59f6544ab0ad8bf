"""Layers: each is callable, with ``forward``, ``backward(dY)`` and ``local_grad(X)``.

Activations are layers too; they live in :mod:`nnfs.activations`.
"""

from nnfs.layers.avgpool import AvgPool2D, GlobalAvgPool2D
from nnfs.layers.base import Layer
from nnfs.layers.batchnorm import BatchNorm2D
from nnfs.layers.batchnorm1d import BatchNorm1D
from nnfs.layers.conv import Conv2D
from nnfs.layers.dropout import Dropout
from nnfs.layers.flatten import Flatten
from nnfs.layers.linear import Linear
from nnfs.layers.pooling import MaxPool2D

__all__ = ["Layer", "Linear", "Conv2D", "MaxPool2D", "BatchNorm2D", "Flatten",
           "AvgPool2D", "GlobalAvgPool2D", "BatchNorm1D", "Dropout"]
