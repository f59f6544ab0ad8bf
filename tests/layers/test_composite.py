"""Sequential and Residual: gradients, nesting through everything that walks layers, checkpoints."""

import numpy as np
import pytest

import nnfs
from nnfs.activations import ReLU, Tanh
from nnfs.app.models import basic_block
from nnfs.backend import backend_of, default_backend, get_backend, to_numpy
from nnfs.checkpoint import CheckpointError, build_layer, load, load_into, save
from nnfs.distributed import Communicator, DataParallel
from nnfs.layers import (
    BatchNorm2D, Conv2D, Dropout, Flatten, GlobalAvgPool2D, Layer, Linear, MaxPool2D, Residual, Sequential,
    projection)
from nnfs.losses import CrossEntropyLoss
from nnfs.net import Net
from nnfs.optim import SGD, Adam
from tests.gradcheck import TOLERANCE, check_layer


def conv_body(in_channels, out_channels, stride=1, batchnorm=True):
    """Conv BN Tanh Conv BN: Tanh, not ReLU, so finite differences meet no kink."""
    norm = (lambda c: [BatchNorm2D(c)]) if batchnorm else (lambda c: [])
    return Sequential(Conv2D(in_channels, out_channels, 3, stride=stride, padding=1), *norm(out_channels), Tanh(),
                      Conv2D(out_channels, out_channels, 3, padding=1), *norm(out_channels))


def device(array):
    """A float32 batch on the default backend, where new layers put their parameters."""
    return default_backend().asarray(array, dtype="float32")


def warmed_up(layer, backend, rng, shape, mode):
    """The layer in float64 on ``backend``, with running statistics away from 0 and 1, in ``mode``."""
    layer.to(backend, "float64")
    for _ in range(3):
        layer(backend.asarray(rng.normal(0.5, 2.0, size=shape)))
    return layer.train(mode == "train")


def followed_by(layer, name):
    """The layer after the one that holds parameter ``name`` (``"body.0.bias"``) in its Sequential."""
    path, _ = name.rsplit(".", 1)
    parent, _, index = path.rpartition(".")
    sequential = dict(layer.named_layers()).get(parent, layer if not parent else None)
    if not isinstance(sequential, Sequential) or not index.isdigit() or int(index) + 1 >= len(sequential):
        return None
    return sequential.layers[int(index) + 1]


def assert_gradients_close(layer, errors, mode):
    """Every error below the tolerance, except for gradients that are exactly zero in theory.

    In training, BatchNorm subtracts the batch mean, so the bias of a convolution right
    before it has a gradient of exactly zero (up to rounding), which finite differences
    only see as noise: those must be tiny in absolute terms instead. Returns their names.
    """
    cancelled = {name for name in errors if mode == "train" and name.endswith(".bias")
                 and isinstance(followed_by(layer, name), BatchNorm2D)}
    for name in cancelled:
        assert float(abs(layer.grads[name]).max()) < 1e-9, name
    assert max(error for name, error in errors.items() if name not in cancelled) < TOLERANCE, errors
    return cancelled


BLOCKS = {
    "identity": lambda: Residual(conv_body(3, 3)),
    "projection-stride1": lambda: Residual(conv_body(3, 4), projection(3, 4)),
    "projection-stride2": lambda: Residual(conv_body(3, 4, stride=2), projection(3, 4, stride=2)),
    "conv-shortcut-stride2": lambda: Residual(conv_body(3, 4, stride=2, batchnorm=False),
                                              projection(3, 4, stride=2, batchnorm=False)),
}


@pytest.mark.parametrize("mode", ["train", "eval"])
@pytest.mark.parametrize("kind", list(BLOCKS))
def test_residual_gradients(backend, rng, kind, mode):
    shape = (3, 3, 6, 5)
    block = warmed_up(BLOCKS[kind](), backend, rng, shape, mode)
    errors = check_layer(block, rng.normal(size=shape), backend, rng)
    assert set(errors) == {"X"} | set(block.params)
    cancelled = assert_gradients_close(block, errors, mode)
    assert len(cancelled) == (0 if mode == "eval" or "conv" in kind else 2 if kind == "identity" else 3)
    assert any(name.startswith("shortcut.") for name in errors) == (kind != "identity")


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_nested_sequential_gradients(backend, rng, mode):
    layer = Sequential(Sequential(Conv2D(2, 3, 3, padding=1), BatchNorm2D(3)), Tanh(),
                       Residual(Sequential(Conv2D(3, 3, 3, padding=1), Tanh())), Flatten(), Linear(3 * 5 * 4, 4))
    shape = (4, 2, 5, 4)
    warmed_up(layer, backend, rng, shape, mode)
    errors = check_layer(layer, rng.normal(size=shape), backend, rng)
    assert assert_gradients_close(layer, errors, mode) == ({"0.0.bias"} if mode == "train" else set())
    assert "2.body.0.weight" in errors and "0.1.bias" in errors


def test_outputs_and_gradients_keep_float32(backend, rng):
    block = Residual(conv_body(3, 4, stride=2), projection(3, 4, stride=2)).to(backend)
    Y = block(backend.asarray(rng.normal(size=(2, 3, 6, 6)), dtype="float32"))
    dX = block.backward(backend.asarray(rng.normal(size=Y.shape), dtype="float32"))
    assert Y.dtype == dX.dtype == "float32"
    assert all(grad.dtype == "float32" for grad in block.grads.values())


# -- the dicts are live views of the children's ------------------------------------------------
def test_params_grads_and_buffers_read_and_write_through_to_the_children(rng):
    block = Residual(conv_body(3, 4), projection(3, 4))
    conv = block.body[0]
    assert block.params["body.0.weight"] is conv.params["weight"]
    assert list(block.buffers) == ["body.1.running_mean", "body.1.running_var", "body.4.running_mean",
                                   "body.4.running_var", "shortcut.1.running_mean", "shortcut.1.running_var"]
    replacement = conv.params["weight"] * 2
    block.params["body.0.weight"] = replacement
    assert conv.params["weight"] is replacement
    assert block.dtype == "float32" and block.backend is default_backend()
    with pytest.raises(KeyError):
        block.params["body.0.nothing"] = replacement
    with pytest.raises(KeyError):
        block.params["elsewhere.weight"]
    with pytest.raises(TypeError):
        del block.params["body.0.weight"]
    # A backward pass rebinds the child's gradients; the composite's view follows.
    Y = block(device(rng.normal(size=(2, 3, 5, 5))))
    block.backward(Y * 0 + 1)
    assert block.grads["body.0.weight"] is conv.grads["weight"]
    assert dict(block.grads.items()).keys() == dict(block.params.items()).keys()


def test_bad_children_are_refused_in_one_line():
    with pytest.raises(TypeError, match="Sequential: layers must be nnfs layers, got 'relu' at position 1"):
        Sequential(ReLU(), "relu")
    with pytest.raises(TypeError, match="Residual: shortcut must be an nnfs layer, got 3"):
        Residual(ReLU(), 3)
    with pytest.raises(ValueError, match="at least one layer"):
        Sequential()
    conv = Conv2D(2, 2)
    with pytest.raises(ValueError, match="the same Conv2D appears twice .at body.0 and shortcut."):
        Residual(Sequential(conv, ReLU()), conv)
    with pytest.raises(TypeError, match="needs build="):
        Sequential.from_config(Sequential(ReLU()).get_config())


def test_a_shortcut_that_does_not_fit_is_named(rng):
    X = device(rng.normal(size=(2, 3, 6, 6)))
    with pytest.raises(ValueError, match=r"Residual: the body gives shape \(2, 4, 3, 3\) but the input "
                                         r"\(identity shortcut\) has shape \(2, 3, 6, 6\); .*projection"):
        Residual(conv_body(3, 4, stride=2))(X)
    with pytest.raises(ValueError, match=r"the shortcut's output has shape \(2, 4, 6, 6\)"):
        Residual(conv_body(3, 4, stride=2), projection(3, 4))(X)


# -- nesting through the net, devices, modes ---------------------------------------------------------
def small_net(backend=None, dtype=None, seed=3):
    nnfs.seed(seed)
    layers = [Conv2D(2, 4, 3, padding=1), BatchNorm2D(4), ReLU(),
              basic_block(4, 4), ReLU(), basic_block(4, 6, stride=2), ReLU(),
              Sequential(Dropout(0.0), GlobalAvgPool2D()), Linear(6, 3)]
    return Net(layers, CrossEntropyLoss(), backend=backend, dtype=dtype)


def batch(rng, n=6):
    return rng.normal(size=(n, 2, 8, 8)), rng.integers(0, 3, size=n)


def test_net_names_parameters_by_their_path_and_the_names_survive_moves(backend):
    net = small_net()
    names = [name for name, _, _ in net.named_parameters()]
    assert names[:6] == ["0.weight", "0.bias", "1.weight", "1.bias", "3.body.0.weight", "3.body.0.bias"]
    assert "5.shortcut.0.weight" in names and "5.shortcut.1.bias" in names and "8.weight" in names
    assert not any(name.startswith("3.shortcut") for name in names)  # identity shortcut
    assert len(names) == len(set(names)) == len(net.parameters())
    net.to(backend, "float64")
    assert [name for name, _, _ in net.named_parameters()] == names
    state = net.state_dict()
    assert "5.body.1.running_var" in state and "5.shortcut.1.running_mean" in state
    for name, param, grad in net.named_parameters():
        assert backend_of(param) is backend and backend_of(grad) is backend, name
        assert param.dtype == grad.dtype == "float64", name
    for layer in (net.layers[5].body[1], net.layers[5].shortcut[1]):
        assert all(backend_of(value) is backend for value in layer.buffers.values())


def test_train_and_eval_reach_every_child():
    net = small_net().eval()
    nested = [layer for top in net.layers if hasattr(top, "named_layers") for _, layer in top.named_layers()]
    assert len(nested) > 10 and not any(layer.training for layer in nested)
    net.train()
    assert all(layer.training for layer in nested)


def test_state_dict_round_trip_restores_outputs(backend, rng):
    X, y = batch(rng)
    source = small_net(backend=backend)
    for _ in range(2):  # moves the running statistics
        source.loss(source(X), y)
    target = small_net(backend=backend, seed=99)
    assert not np.array_equal(source.predict_proba(X), target.predict_proba(X))
    target.load_state_dict(source.state_dict())
    np.testing.assert_array_equal(source.predict_proba(X), target.predict_proba(X))
    with pytest.raises(ValueError, match=r"missing: \['5.shortcut.1.running_var'\]"):
        state = source.state_dict()
        del state["5.shortcut.1.running_var"]
        target.load_state_dict(state)


def test_backward_without_input_gradient_skips_it_inside_a_first_composite(rng):
    """Net.backward(input_grad=False) reaches the convolutions that read the net's input."""
    X, y = batch(rng)

    def gradients(first_input_grad):
        nnfs.seed(5)
        net = Net([Residual(Sequential(Conv2D(2, 3, 3, padding=1), BatchNorm2D(3)), projection(2, 3)),
                   ReLU(), GlobalAvgPool2D(), Linear(3, 2)], CrossEntropyLoss())
        net.loss(net(X), y % 2)
        convs = [net.layers[0].body[0], net.layers[0].shortcut[0]]
        skipped = []
        for conv in convs:  # record what each first convolution returns
            original = conv.backward
            conv.backward = lambda dY, original=original: skipped.append(original(dY) is None) or original(dY)
        dX = net.backward(input_grad=first_input_grad)
        assert all(conv.input_grad for conv in convs) and net.layers[0].input_grad  # put back
        return dX, skipped[:2], {name: to_numpy(grad) for name, _, grad in net.named_parameters()}

    dX, skipped, grads = gradients(False)
    assert dX is None and skipped == [True, True]
    dX, skipped, expected = gradients(True)
    assert dX.shape == X.shape and skipped == [False, False]
    for name in expected:
        np.testing.assert_array_equal(grads[name], expected[name], err_msg=name)


@pytest.mark.parametrize("make_optimizer", [lambda net: SGD(net, lr=0.05, momentum=0.9),
                                            lambda net: Adam(net, lr=0.01)], ids=["sgd", "adam"])
def test_optimizers_update_nested_parameters_in_place_across_a_device_move(backend, rng, make_optimizer):
    X, y = batch(rng)
    stay = small_net(dtype="float64")
    move = small_net(dtype="float64")
    optimizers = make_optimizer(stay), make_optimizer(move)
    for step in range(4):
        if step == 2:
            move.to(backend)  # state keyed by name follows the parameters
        for net, optimizer in zip((stay, move), optimizers):
            net.loss(net(X), y)
            net.backward()
            optimizer.step()
    assert set(optimizers[1].state) == {name for name, _, _ in move.named_parameters()}
    for (name, a, _), (_, b, _) in zip(stay.named_parameters(), move.named_parameters()):
        np.testing.assert_allclose(to_numpy(a), to_numpy(b), rtol=1e-12, atol=1e-12, err_msg=name)
    assert backend_of(optimizers[1].state["5.body.0.weight"][next(iter(optimizers[1].state["5.body.0.weight"]))]) \
        is backend


class OneRank(Communicator):
    """A world of one: the collectives change nothing, DataParallel still packs and unpacks."""

    transport = "test"

    def allreduce_sum(self, buffer):
        pass

    def broadcast(self, buffer, root=0):
        pass

    def sum_host(self, values):
        return [float(to_numpy(v)) for v in values]


def test_data_parallel_packs_nested_gradients_by_name(backend, rng):
    X, y = batch(rng)
    plain, wrapped = small_net(backend=backend, dtype="float64"), small_net(backend=backend, dtype="float64")
    ddp = DataParallel(wrapped, OneRank())
    sgd_plain, sgd_ddp = SGD(plain, lr=0.1, momentum=0.9), SGD(wrapped, lr=0.1, momentum=0.9)
    for _ in range(3):
        plain.loss(plain(X), y)
        plain.backward()
        sgd_plain.step()
        ddp.loss(ddp(X), y)
        ddp.backward()
        # The child's own gradient is now a view of the one flat buffer that was reduced.
        flat, conv = ddp._grads.data, wrapped.layers[5].shortcut[0]
        before = to_numpy(conv.grads["weight"]).copy()
        flat *= 2
        np.testing.assert_array_equal(to_numpy(conv.grads["weight"]), 2 * before)
        flat /= 2
        sgd_ddp.step()
    for (name, a, _), (_, b, _) in zip(plain.named_parameters(), wrapped.named_parameters()):
        np.testing.assert_allclose(to_numpy(a), to_numpy(b), rtol=1e-12, atol=1e-12, err_msg=name)
    assert ddp.replica_difference() == 0.0
    assert set(ddp.state_dict()) == set(plain.state_dict())


# -- configs and checkpoints -----------------------------------------------------------------------
def test_config_nests_class_names_and_rebuilds_the_same_tree():
    block = Residual(conv_body(3, 4, stride=2), projection(3, 4, stride=2))
    config = block.get_config()
    assert config["body"]["class"] == "Sequential" and config["shortcut"]["class"] == "Sequential"
    assert config["body"]["config"]["layers"][0] == {"class": "Conv2D", "config": Conv2D(3, 4, 3, 2, 1).get_config()}
    rebuilt = build_layer({"class": "Residual", "config": config})
    assert repr(rebuilt) == repr(block)
    assert list(rebuilt.params) == list(block.params)
    assert Residual(ReLU()).get_config()["shortcut"] is None


def test_checkpoint_round_trip_of_a_nested_net(backend, tmp_path, rng):
    X, y = batch(rng)
    net = small_net(backend=backend)
    optimizer = SGD(net, lr=0.05, momentum=0.9)
    for _ in range(2):
        net.loss(net(X), y)
        net.backward()
        optimizer.step()
    path = save(tmp_path / "nested.npz", net, optimizer=optimizer)
    loaded = load(path, backend=backend)
    assert repr(loaded.net.layers) == repr(net.layers)
    np.testing.assert_array_equal(loaded.net.predict_proba(X), net.predict_proba(X))
    assert "5.shortcut.0.weight.momentum_buffer" in loaded.optimizer_state["state"]
    restored = SGD(loaded.net, lr=0.05, momentum=0.9).load_state_dict(loaded.optimizer_state)
    assert set(restored.state) == set(optimizer.state)


class Scale(Layer):
    """A custom layer with a parameter, to hide inside a Sequential."""

    def __init__(self, factor=2.0):
        super().__init__()
        self.factor = factor
        self.init_params(weight=np.full(1, factor))

    def forward(self, X):
        self.cache["X"] = X
        return X * self.params["weight"]

    def backward(self, dY):
        self.grads["weight"] = (dY * self.from_cache("X")).sum().reshape(1)
        return dY * self.params["weight"]

    def get_config(self):
        return {"factor": self.factor}


def test_custom_layers_inside_a_sequential_need_to_be_named(tmp_path, rng):
    net = Net([Sequential(Flatten(), Scale(3.0)), Linear(4, 2)], CrossEntropyLoss())
    with pytest.raises(CheckpointError, match=r"cannot save layer 0\.1 \(Scale\) inside Sequential.*custom_layers"):
        save(tmp_path / "c.npz", net)
    path = save(tmp_path / "c.npz", net, custom_layers=[Scale])
    assert not (tmp_path / "c.npz.tmp").exists()
    with pytest.raises(CheckpointError, match=r"layer 0\.1 is a 'Scale', which this nnfs does not provide"):
        load(path)
    loaded = load(path, custom_layers=[Scale]).net
    X = rng.normal(size=(3, 2, 2)).astype("float32")
    np.testing.assert_array_equal(loaded.predict(X), net.predict(X))
    assert loaded.layers[0][1].factor == 3.0 and list(loaded.state_dict()) == ["0.1.weight", "1.weight", "1.bias"]


def test_load_into_names_the_nested_layer_that_differs(tmp_path):
    path = save(tmp_path / "a.npz", small_net())
    other = small_net()
    other.layers[5] = basic_block(4, 6, stride=1)
    with pytest.raises(CheckpointError, match=r"layer 5\.body\.0 is Conv2D\(.*stride=\(2, 2\).* in the file but "
                                              r"Conv2D\(.*stride=\(1, 1\).* in this net"):
        load_into(path, Net(other.layers, CrossEntropyLoss()))
    flat = small_net()
    flat.layers[3] = MaxPool2D(1)
    with pytest.raises(CheckpointError, match=r"layer 3 is a Residual in the file but MaxPool2D\(.*\) in this net"):
        load_into(path, Net(flat.layers, CrossEntropyLoss()))


# -- local_grad -------------------------------------------------------------------------------------
def test_local_grad_gives_each_child_its_input_and_leaves_no_trace(rng):
    X = device(rng.normal(size=(4, 3, 5, 5)))
    block = Residual(conv_body(3, 4, stride=2), projection(3, 4, stride=2))
    Y = block(X)
    G = device(rng.normal(size=Y.shape))
    running = {k: to_numpy(v).copy() for k, v in block.buffers.items()}
    grads = block.local_grad(device(rng.normal(size=X.shape)))
    # The pending backward (of the first forward) and the running statistics are untouched.
    for key, value in running.items():
        np.testing.assert_array_equal(to_numpy(block.buffers[key]), value, err_msg=key)
    dX = block.backward(G)
    reference = Residual(conv_body(3, 4, stride=2), projection(3, 4, stride=2))
    for key, value in block.params.items():
        reference.params[key] = value.copy()
    reference(X)
    np.testing.assert_allclose(to_numpy(dX), to_numpy(reference.backward(G)), rtol=1e-6)
    # The keys and values: each child's local_grad at the input it sees.
    assert {"body.0.X", "body.0.weight", "body.1.weight", "shortcut.0.weight", "shortcut.1.bias"} <= set(grads)
    Z = device(rng.normal(size=X.shape))
    conv = Conv2D(3, 2, 3)
    grads = Sequential(conv, Tanh()).local_grad(Z)
    assert set(grads) == {"0.X", "0.weight", "1.X"}
    np.testing.assert_array_equal(to_numpy(grads["0.weight"]), to_numpy(conv.local_grad(Z)["weight"]))
    np.testing.assert_allclose(to_numpy(grads["1.X"]), to_numpy(Tanh().local_grad(conv(Z))["X"]), rtol=1e-6)
    identity = Residual(Tanh()).local_grad(Z)
    assert set(identity) == {"body.X", "shortcut.X"} and (to_numpy(identity["shortcut.X"]) == 1).all()


def test_strict_backend_takes_no_host_array_anywhere_in_the_tree(rng):
    strict = get_backend("strict")
    net = small_net(backend=strict)
    X, y = batch(rng)
    net.loss(net(X), y)
    net.backward(input_grad=True)
    SGD(net, lr=0.1, momentum=0.9).step()
    assert all(backend_of(p) is strict and backend_of(g) is strict for _, p, g in net.named_parameters())


def test_the_gradient_check_takes_a_zero_gradient_as_zero(rng):
    """A Linear bias just before BatchNorm has a gradient of exactly zero; its finite
    differences are rounding noise, which must not read as a relative error of 4 %."""
    from nnfs.layers import BatchNorm1D, Linear, Sequential
    from tests.gradcheck import check_layer

    errors = check_layer(Sequential(Linear(8, 8), BatchNorm1D(8)), rng.normal(size=(4, 8)), "numpy", rng)
    assert max(errors.values()) < 1e-6, errors


def test_the_gradient_check_still_finds_a_small_wrong_gradient(rng):
    """The noise floor for zero gradients must not hide one that finite differences measure:
    a weight gradient of about 4e-7 reported as zero is an error."""
    from nnfs.layers import Layer
    from tests.gradcheck import check_layer

    class Faint(Layer):
        def __init__(self):
            super().__init__()
            self.init_params(None, weight=rng.normal(size=(4, 4)))

        def forward(self, X):
            self.cache["X"] = X
            return X + 1e-7 * (X @ self.params["weight"])

        def backward(self, dY):
            self.grads["weight"] = self.params["weight"] * 0  # wrong: the true one is tiny, not zero
            return dY + 1e-7 * (dY @ self.params["weight"].T)

    errors = check_layer(Faint(), rng.normal(size=(3, 4)), "numpy", rng)
    assert errors["weight"] > 0.5 and errors["X"] < 1e-6, errors


def test_a_wrong_gradient_inside_a_composite_names_the_layer_that_returned_it():
    """Inside a Sequential as in a Net; a Residual would have added a (N, 1) and a (N, 3)
    gradient by broadcasting."""
    import numpy as np

    from nnfs.layers import Layer, Linear, Residual, Sequential
    from nnfs.losses import MeanSquareLoss
    from nnfs.net import Net

    class FirstColumn(Layer):
        def forward(self, X):
            return X

        def backward(self, dY):
            return dY[:, :1]

    X, y = np.ones((4, 4)), np.ones((4, 1))
    net = Net([Sequential(Linear(4, 3), FirstColumn(), Linear(3, 1))], MeanSquareLoss())
    net.loss(net(X), y)
    with pytest.raises(ValueError, match=r"^FirstColumn\.backward: the gradient it returned for Linear has shape \(4, 1\)"):
        net.backward()
    net = Net([Linear(4, 3), Residual(FirstColumn()), Linear(3, 1)], MeanSquareLoss())
    net.loss(net(X), y)
    with pytest.raises(ValueError, match=r"^Residual: the body's backward \(FirstColumn\): the gradient it returned "
                                         r"has shape \(4, 1\), but the Residual's input was of shape \(4, 3\)"):
        net.backward()

    class NoGradient(FirstColumn):
        def backward(self, dY):
            return None

    net = Net([Linear(4, 3), Residual(NoGradient()), Linear(3, 1)], MeanSquareLoss())
    net.loss(net(X), y)
    with pytest.raises(TypeError, match=r"^Residual: the body's backward \(NoGradient\): expected the gradient it "
                                        r"returned as an array"):
        net.backward()
