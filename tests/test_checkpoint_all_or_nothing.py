"""A refused checkpoint changes nothing: ``load_into`` checks every part of the file before the net
changes, and ``save`` refuses by load's rules before anything is written."""

import os
import re

import numpy as np
import pytest

import nnfs
from nnfs.backend import to_numpy
from nnfs.checkpoint import CheckpointError, load, load_into, save
from nnfs.layers import Dropout, Layer, Linear, Sequential
from nnfs.losses import CrossEntropyLoss
from nnfs.net import Net
from nnfs.optim import SGD, Adam, StepLR
from tests.archives import rewrite_checkpoint


class Gain(Layer):
    """A layer of one's own with one parameter and no ``array_shapes``: the file's array for it is
    taken as it is, and only ``Net.load_state_dict`` finds a wrong shape, after the streams."""

    def __init__(self, n=3):
        super().__init__()
        self.n = n
        self.init_params(weight=np.ones(n))

    def get_config(self):
        return {"n": self.n}

    def forward(self, X):
        return X * self.params["weight"]

    def backward(self, dY):
        return dY * self.params["weight"]


def dropout_net(seed=0):
    nnfs.seed(seed)
    return Net([Linear(4, 8), Dropout(0.5), Sequential(Linear(8, 8), Dropout(0.3)), Linear(8, 3), Gain(3)],
               CrossEntropyLoss(), backend="numpy")


def trained(net, optimizer, steps=3):
    """``steps`` training steps: weights, moments and Dropout's mask counts all move."""
    net.train()
    X, y = np.linspace(-1, 1, 24).reshape(6, 4), np.arange(6) % 3
    for _ in range(steps):
        net.loss(net(X), y)
        net.backward()
        optimizer.step()
    return net


def snapshot(net):
    """Everything a load may change: every array bit for bit (as bytes), the streams, the modes."""
    arrays = {name: (value.dtype, value.tobytes()) for name, value in net.state_dict().items()}
    return arrays, net.rng_state(), [layer.training for layer in net.layers]


def set_meta(*keys, value):
    def change(meta):
        target = meta
        for key in keys[:-1]:
            target = target[key]
        target[keys[-1]] = value
    return change


def drop_array(name):
    return lambda arrays: arrays.pop(name)


def set_array(name, value):
    return lambda arrays: arrays.__setitem__(name, value)


@pytest.mark.parametrize("change_meta, change_arrays, match", [
    (set_meta("rng_state", "2.1", "seed", value="x"), None, r"Net.load_rng_state: layer 2.1: Dropout"),
    (None, drop_array("optimizer/0.weight.exp_avg"), r"optimizer state arrays missing: \['0.weight.exp_avg'\]"),
    (None, set_array("optimizer/3.bias.exp_avg", np.zeros(4)), r"damaged optimizer state \(.*3.bias.exp_avg has "
                                                                r"shape \(4,\)"),
    (None, set_array("optimizer/0.bias.exp_avg_sq", -np.ones(8)), r"damaged optimizer state \(.*negative value"),
    (set_meta("optimizer", "config", "step_count", value=0), None, r"damaged optimizer state \(.*step_count of 0"),
    (set_meta("optimizer", "config", "betas", value=[0.9, 1.5]), None, r"damaged optimizer state \(Adam: betas"),
    (set_meta("scheduler", "step_size", value=-3), None, r"cannot restore its schedule \(.*step_size"),
    (set_meta("scheduler", "last_step", value=-1), None, r"cannot restore its schedule \(.*last_step"),
    # Refused by the net itself, after the streams went in: they are put back.
    (None, set_array("net/4.weight", np.ones(5, np.float32)), r"Net.load_state_dict: 4.weight has shape \(5,\)"),
], ids=["random stream", "optimizer array missing", "optimizer array of another shape", "negative second moment",
        "moments at step 0", "optimizer config", "schedule config", "schedule step", "weights"])
def test_a_part_refused_leaves_the_net_as_it_was(tmp_path, change_meta, change_arrays, match):
    """The weights went in first and the streams or the optimizer's arrays were refused after: the
    caller was told the load failed, holding a net with the file's weights. The optimizer's and
    the schedule's own refusals came later still, from whoever loaded them."""
    source = dropout_net()
    optimizer = Adam(source, lr=0.01)
    trained(source, optimizer)
    path = save(tmp_path / "run.npz", source, optimizer=optimizer, scheduler=StepLR(optimizer, 2),
                custom_layers=Gain)
    rewrite_checkpoint(path, change_meta, change_arrays)
    net = dropout_net(seed=1)
    trained(net, SGD(net, lr=0.1), steps=1)  # its own weights and streams, in training mode
    before = snapshot(net)
    for loading in (lambda: load_into(path, net, custom_layers=Gain), lambda: load(path, custom_layers=Gain)):
        with pytest.raises(CheckpointError, match=f"^{re.escape(str(path))}: .*{match}") as error:
            loading()
        assert "\n" not in str(error.value)
        assert snapshot(net) == before


def test_a_refused_optimizer_state_is_refused_before_the_net_changes_with_sgd_too(tmp_path):
    source = dropout_net()
    optimizer = SGD(source, lr=0.1, momentum=0.9)
    trained(source, optimizer)
    path = save(tmp_path / "run.npz", source, optimizer=optimizer, custom_layers=Gain)
    rewrite_checkpoint(path, change_arrays=set_array("optimizer/0.weight.momentum_buffer", np.zeros((2, 2))))
    net = dropout_net(seed=1)
    before = snapshot(net)
    with pytest.raises(CheckpointError, match=r"damaged optimizer state \(SGD.load_state_dict: .*0.weight"):
        load_into(path, net, custom_layers=Gain)
    assert snapshot(net) == before


def test_a_sound_file_still_loads_every_part(tmp_path):
    source = dropout_net()
    optimizer = Adam(source, lr=0.01)
    trained(source, optimizer)
    scheduler = StepLR(optimizer, 2)
    path = save(tmp_path / "run.npz", source, optimizer=optimizer, scheduler=scheduler, custom_layers=Gain)
    net = dropout_net(seed=1)
    loaded = load_into(path, net, custom_layers=Gain)
    assert snapshot(net)[:2] == snapshot(source)[:2]
    resumed = Adam(net).load_state_dict(loaded.optimizer_state)
    assert resumed.step_count == 3 and StepLR(resumed, 1).load_state_dict(loaded.scheduler_state).step_size == 2


# -- save refuses by load's rules ---------------------------------------------------------------------
class Wrong(Gain):
    """Says its weight has ``n`` elements and holds ``n + 1``: the file could never be loaded."""

    @classmethod
    def array_shapes(cls, n=3):
        return {"weight": (n,)}

    def __init__(self, n=3):
        super().__init__(n)
        self.init_params(weight=np.ones(n + 1))


class Counting(Gain):
    """Keeps a buffer that it makes in its forward pass, of integers, not the net's dtype."""

    def forward(self, X):
        self.buffers["seen"] = self.backend.asarray(np.array([len(X)]))
        return super().forward(X)


@pytest.mark.parametrize("cls, match", [
    (Wrong, r"layer 1 Wrong\(n=3\): net/1.weight is \(4,\) in the net but must be \(3,\)$"),
    (Counting, r"net/1.seen holds int64 values; the net's parameters and buffers are stored as float64"),
])
def test_save_refuses_arrays_load_would_refuse_writing_nothing(tmp_path, cls, match):
    net = Net([Linear(2, 3), cls(3)], CrossEntropyLoss(), backend="numpy", dtype="float64")
    if cls is Counting:
        net(np.ones((2, 2)))
    path = tmp_path / "m.npz"
    with pytest.raises(CheckpointError, match=rf"^checkpoint.save: refusing to write {re.escape(str(path))}: "
                                              + match):
        save(path, net, custom_layers=cls)
    assert os.listdir(tmp_path) == []  # no file, no temporary


def test_a_layer_of_ones_own_whose_arrays_agree_with_its_array_shapes_saves_and_loads(tmp_path):
    class Right(Gain):
        @classmethod
        def array_shapes(cls, n=3):
            return {"weight": (n,)}

    net = Net([Linear(2, 3), Right(3)], CrossEntropyLoss(), backend="numpy")
    save(tmp_path / "m.npz", net, custom_layers=Right)
    assert to_numpy(load(tmp_path / "m.npz", custom_layers=Right).net.layers[1].params["weight"]).shape == (3,)
