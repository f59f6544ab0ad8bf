"""Net refuses what cannot work at the call that gets it: an empty layer list, a learning rate
that would turn every weight into NaN or inf, a layer or loss of one's own not set up by its base class."""

import math

import numpy as np
import pytest

from nnfs.layers import Linear
from nnfs.losses import CrossEntropyLoss
from nnfs.net import Net
from nnfs.optim import SGD


def test_an_empty_net_is_refused_at_construction():
    for layers in ([], (), iter([])):
        with pytest.raises(ValueError, match="Net: needs at least one layer"):
            Net(layers, CrossEntropyLoss())


@pytest.mark.parametrize("lr, error", [(math.nan, ValueError), (math.inf, ValueError), (-math.inf, ValueError),
                                       (-0.1, ValueError), ("0.1", TypeError), (None, TypeError),
                                       (True, TypeError)])
def test_update_weights_refuses_a_rate_the_optimizers_refuse(backend, lr, error):
    net = Net([Linear(3, 2)], CrossEntropyLoss(), backend=backend)
    net.loss(net(np.ones((4, 3))), np.array([0, 1, 0, 1]))
    net.backward()
    before = net.state_dict()
    with pytest.raises(error, match="Net.update_weights: lr"):
        net.update_weights(lr)
    after = net.state_dict()
    assert all(np.array_equal(before[k], after[k]) for k in before)  # nothing was changed


def test_update_weights_takes_zero_and_numpy_scalars(backend):
    net = Net([Linear(3, 2)], CrossEntropyLoss(), backend=backend)
    net.loss(net(np.ones((4, 3))), np.array([0, 1, 0, 1]))
    net.backward()
    before = net.state_dict()
    net.update_weights(0)  # as a schedule annealed to 0 gives it: the weights stay
    assert all(np.array_equal(before[k], v) for k, v in net.state_dict().items())
    net.update_weights(np.float32(0.5))
    assert not np.array_equal(before["0.weight"], net.state_dict()["0.weight"])


@pytest.mark.parametrize("X", [
    np.full((2, 4), 1j, dtype=np.complex64),   # the imaginary part would be dropped
    np.array([["1"] * 4] * 2),                 # text would be parsed as numbers
    np.array([[object()] * 4] * 2),
    [["1", "2", "3", "4"]],
], ids=["complex", "text", "objects", "list of text"])
def test_an_input_that_is_not_real_numbers_is_refused(backend, X):
    net = Net([Linear(4, 3)], CrossEntropyLoss(), backend=backend)
    with pytest.raises(TypeError, match=r"Net: the input must hold real numbers .* got dtype"):
        net(X)


@pytest.mark.parametrize("X", [np.ones((2, 4), dtype=bool), np.ones((2, 4), dtype=np.uint8),
                               np.ones((2, 4), dtype=np.int64), np.ones((2, 4), dtype=np.float16),
                               [[1, 2, 3, 4], [5, 6, 7, 8.5]]], ids=["bool", "uint8", "int64", "float16", "list"])
def test_real_inputs_of_any_width_become_the_nets_dtype(backend, X):
    out = Net([Linear(4, 3)], CrossEntropyLoss(), backend=backend)(X)
    assert out.dtype == np.float32 and out.shape == (2, 3)


def test_one_layer_object_in_two_places_is_refused():
    """Its one cache would serve both places (wrong gradients) and it would be updated twice."""
    from nnfs.activations import Tanh
    from nnfs.layers import Sequential

    layer = Linear(3, 3)
    with pytest.raises(ValueError, match=r"Net: the same Linear appears twice \(layers 0 and 2\)"):
        Net([layer, Tanh(), layer])
    with pytest.raises(ValueError, match=r"Net: the same Linear appears twice \(layers 0.0 and 1\)"):
        Net([Sequential(layer), layer])


def test_one_parameter_array_in_two_layers_is_refused():
    """Tied by hand, it was taken for two parameters: Adam moved it twice a step with two states,
    and a checkpoint loaded it as two arrays, untied."""
    from nnfs.activations import Tanh
    from nnfs.layers import Sequential

    first, second = Linear(3, 3), Linear(3, 3)
    second.params["weight"] = first.params["weight"]
    message = r"^Net: parameters {} and {} are one array \(a weight shared by two layers\), which nnfs does not support"
    with pytest.raises(ValueError, match=message.format("0.weight", "2.weight")):
        Net([first, Tanh(), second])
    with pytest.raises(ValueError, match=message.format(r"0\.0\.weight", r"0\.1\.weight")):
        Net([Sequential(first, second)])


def test_a_layer_or_loss_given_as_its_class_says_to_make_one():
    # They said "layer 0 is a type, not an nnfs layer" and "loss must be an nnfs loss, got type".
    with pytest.raises(TypeError, match=r"^Net: layer 1 is the class Linear, not a layer made from it: write "
                                        r"Linear\(\.\.\.\)$"):
        Net([Linear(3, 3), Linear])
    with pytest.raises(TypeError, match=r"^Net: loss is the class CrossEntropyLoss, not a loss made from it: write "
                                        r"CrossEntropyLoss\(\)$"):
        Net([Linear(3, 3)], CrossEntropyLoss)


def test_a_long_one_dimensional_input_is_named_whole():
    """Sliced before the first layer's check, 784 values read as 'got shape (256,)'."""
    net = Net([Linear(784, 10)])
    with pytest.raises(ValueError, match=r"\(784,\)"):
        net.predict_proba(np.zeros(784, dtype=np.float32))


def test_boolean_labels_are_classes_0_and_1():
    from nnfs.app.metrics import confusion_matrix
    from nnfs.data import stratified_split

    assert confusion_matrix([True, False], [1, 0], 2) == [[1, 0], [0, 1]]
    assert stratified_split([True, False] * 5, 0.2, seed=0) == stratified_split([1, 0] * 5, 0.2, seed=0)


def test_one_layer_is_a_net_of_one_and_other_things_are_refused_in_one_line():
    net = Net(Linear(2, 3))
    assert len(net.layers) == 1 and net(np.ones((4, 2))).shape == (4, 3)
    with pytest.raises(TypeError, match=r"^Net: layers must be a list of nnfs layers, got int$"):
        Net(5)
    with pytest.raises(TypeError, match=r"^Net: layers must be a list of nnfs layers, got dict$"):
        Net({"first": Linear(2, 3)})
    with pytest.raises(TypeError, match=r"^Net: layers must be a list of nnfs layers, got set$"):
        Net({Linear(2, 3)})  # no order

    class Indexed(Linear):  # a layer of one's own that can be indexed is still one layer
        def __getitem__(self, key):
            return self.params[key]

    assert len(Net(Indexed(2, 3)).layers) == 1


def test_a_dtype_given_as_the_backend_says_how_to_give_it():
    with pytest.raises(ValueError, match=r"unknown nnfs backend 'float64' .*; for a dtype, write "
                                         r"\.to\(dtype='float64'\)$"):
        Net([Linear(2, 3)]).to("float64")


def test_a_sequential_given_as_the_layers_is_its_layers():
    """As before one layer became a net of one: a Sequential iterates as its layers, and its
    parameter names (and so state dicts and checkpoints) stay those of the layers."""
    from nnfs.activations import ReLU
    from nnfs.layers import Sequential

    net = Net(Sequential(Linear(2, 3), ReLU(), Linear(3, 1)))
    assert [name for name, _, _ in net.named_parameters()] == ["0.weight", "0.bias", "2.weight", "2.bias"]


def test_a_layer_or_loss_of_ones_own_that_skipped_super_init_is_named():
    # It failed at the first batch with "'Shift' object has no attribute 'params'".
    from nnfs.layers import Layer, Sequential
    from nnfs.losses import Loss

    class Shift(Layer):
        def __init__(self):
            self.offset = 1.0

        def forward(self, X):
            return X + self.offset

    class Hinge(Loss):
        def __init__(self, margin=1.0):
            self.margin = margin

    pattern = r"^Net: layer {} \(Shift\) was never set up as an nnfs layer: its __init__ must call super\(\).__init__\(\) first$"
    with pytest.raises(TypeError, match=pattern.format("1")):
        Net([Linear(3, 3), Shift()])
    with pytest.raises(TypeError, match=pattern.format(r"0\.1")):
        Net([Sequential(Linear(3, 3), Shift())])
    with pytest.raises(TypeError, match=r"^Net: the loss \(Hinge\) was never set up as an nnfs loss"):
        Net([Linear(3, 3)], Hinge())


def test_parameters_of_ones_own_set_by_hand_as_lists_or_without_gradients_are_named():
    """A list failed in the net with "'list' object has no attribute 'dtype'"; a parameter without
    a gradient with a KeyError at named_parameters(), which every optimizer calls when it is made."""
    from nnfs.layers import Layer, Sequential

    class Raw(Layer):
        def __init__(self, weight, grad=None):
            super().__init__()
            self.params["weight"] = weight
            if grad is not None:
                self.grads["weight"] = grad

    with pytest.raises(TypeError, match=r"^Net: layer 1 \(Raw\) holds params\['weight'\] as a list, not an "
                                        r"array; make its parameters with self\.init_params\(dtype, weight=\.\.\.\), "
                                        r"which makes their gradients too$"):
        Net([Linear(3, 3), Raw([1.0, 1.0, 1.0], [0.0, 0.0, 0.0])])
    # Without gradients a net still predicts (a layer may make them in its backward pass); an
    # optimizer, which needs them, names the layer.
    predicting = Net([Sequential(Linear(3, 3), Raw(np.ones(3, np.float32)))], backend="numpy")
    with pytest.raises(TypeError, match=r"^Net: layer 0 \(Sequential\) has params\['1\.weight'\] but no "
                                        r"grads\['1\.weight'\]; make its parameters with self\.init_params"):
        SGD(predicting, lr=0.1)
    fine = Net([Linear(3, 3), Raw(np.ones(3, np.float32), np.zeros(3, np.float32))], backend="numpy")
    assert fine.parameters()[2].shape == (3,)


@pytest.mark.parametrize("mode", ["eval", "no", 0, 1.0, None])
def test_a_mode_that_is_not_a_bool_is_refused_in_one_line(mode):
    # bool("eval") is True: train("eval") trained on, with Dropout dropping and BatchNorm's
    # running statistics moving, where eval mode was meant.
    from nnfs.layers import Dropout, Sequential

    net = Net([Sequential(Linear(2, 2)), Dropout()]).eval()
    with pytest.raises(TypeError, match=rf"^Net\.train: mode must be True or False, got {mode!r}$"):
        net.train(mode)
    assert not net.training and not any(layer.training for layer in net.layers)
    for layer in (Dropout(), Sequential(Linear(2, 2))):
        with pytest.raises(TypeError, match=rf"^{type(layer).__name__}\.train: mode must be True or False"):
            layer.train(mode)
    assert net.train(np.bool_(True)).training and net.layers[1].training


def test_an_input_grad_that_is_not_a_bool_is_refused_in_one_line():
    net = Net([Linear(2, 3)], CrossEntropyLoss())
    net.loss(net(np.ones((4, 2))), [0, 1, 2, 0])
    with pytest.raises(TypeError, match=r"^Net\.backward: input_grad must be True or False, got 'no'$"):
        net.backward(input_grad="no")  # was taken as True: the input gradient came back
    assert net.backward() is None and net.backward(input_grad=True).shape == (4, 2)
