"""The contract of nnfs.layers.base.Layer, kept by every layer and activation nnfs exports.

Each table below has one entry per exported class, and the first test fails when a
class is added to ``nnfs.layers`` or ``nnfs.activations`` without one: a new layer
is checked for the empty batch, NumPy sizes, bools and the base class's errors
from the start. What is particular to one layer lives in that layer's own file.
"""

import inspect
import json

import numpy as np
import pytest

import nnfs
from nnfs.activations import LeakyReLU, ReLU, Sigmoid, Tanh
from nnfs.backend import default_backend, to_numpy
from nnfs.checkpoint import build_layer, registry
from nnfs.checks import ArgumentTypeError
from nnfs.layers import (
    AvgPool2D, BatchNorm1D, BatchNorm2D, Conv2D, Dropout, Flatten, GlobalAvgPool2D, Layer, Linear, MaxPool2D,
    Residual, Sequential)
from nnfs.losses import CrossEntropyLoss
from nnfs.net import Net
from tests.configs import assert_plain

i64, i32, f64 = np.int64, np.int32, np.float64


def exported_layer_classes():
    """Every layer and activation class nnfs exports: those a checkpoint can rebuild by name
    (tests/test_checkpoint.py checks that this registry is the modules' ``__all__``)."""
    return {cls for cls in registry().values() if issubclass(cls, Layer)}


# (layer built with NumPy numbers, the same layer built with Python numbers, an input shape).
# Every size argument and hyperparameter of every layer appears at least once as a NumPy value.
NUMPY_ARGUMENTS = [
    (lambda: Linear(np.prod((3, 4)), i32(5)), lambda: Linear(12, 5), (2, 12)),
    (lambda: Conv2D(i64(2), i32(3), (i64(3), 2), stride=i64(2), padding=(np.uint8(1), i64(0))),
     lambda: Conv2D(2, 3, (3, 2), stride=2, padding=(1, 0)), (2, 2, 7, 6)),
    (lambda: Conv2D(2, 3, i64(3), stride=(i32(1), i64(2)), padding=i64(1)),
     lambda: Conv2D(2, 3, 3, stride=(1, 2), padding=1), (2, 2, 7, 6)),
    (lambda: MaxPool2D(i64(3), stride=i64(2), padding=i64(1)), lambda: MaxPool2D(3, 2, 1), (2, 2, 7, 6)),
    (lambda: MaxPool2D((i64(2), i32(3))), lambda: MaxPool2D((2, 3)), (2, 2, 7, 6)),
    (lambda: AvgPool2D((i64(3), 2), stride=i32(1), padding=(i64(1), 0)),
     lambda: AvgPool2D((3, 2), stride=1, padding=(1, 0)), (2, 2, 7, 6)),
    (lambda: GlobalAvgPool2D(), lambda: GlobalAvgPool2D(), (2, 2, 7, 6)),
    (lambda: BatchNorm2D(i64(2), epsilon=f64(1e-3), momentum=np.float32(0.25)),
     lambda: BatchNorm2D(2, 1e-3, 0.25), (2, 2, 7, 6)),
    (lambda: BatchNorm1D(i64(5), f64(1e-3), f64(0.2)), lambda: BatchNorm1D(5, 1e-3, 0.2), (4, 5)),
    (lambda: Dropout(f64(0.3)), lambda: Dropout(0.3), (4, 5)),
    (lambda: Dropout(i64(0)), lambda: Dropout(0.0), (4, 5)),
    (lambda: Flatten(), lambda: Flatten(), (2, 2, 7, 6)),
    (lambda: ReLU(), lambda: ReLU(), (4, 5)),
    (lambda: LeakyReLU(np.float32(0.5)), lambda: LeakyReLU(0.5), (4, 5)),
    (lambda: LeakyReLU(i64(1)), lambda: LeakyReLU(1.0), (4, 5)),
    (lambda: Sigmoid(), lambda: Sigmoid(), (4, 5)),
    (lambda: Tanh(), lambda: Tanh(), (4, 5)),
    (lambda: Sequential(Linear(np.prod((3, 4)), i32(5)), ReLU()), lambda: Sequential(Linear(12, 5), ReLU()), (2, 12)),
    (lambda: Residual(Linear(i64(4), i32(4)), Linear(i64(4), 4)), lambda: Residual(Linear(4, 4), Linear(4, 4)),
     (2, 4)),
]

# Each integer argument given as a bool (Python or NumPy), and each float hyperparameter too.
BOOL_ARGUMENTS = [
    (lambda: Linear(True, 2), "Linear", "in_dim"),
    (lambda: Linear(2, np.bool_(True)), "Linear", "out_dim"),
    (lambda: Conv2D(True, 2), "Conv2D", "in_channels"),
    (lambda: Conv2D(1, True), "Conv2D", "out_channels"),
    (lambda: Conv2D(1, 2, kernel_size=True), "Conv2D", "kernel_size"),
    (lambda: Conv2D(1, 2, stride=(1, True)), "Conv2D", "stride"),
    (lambda: Conv2D(1, 2, padding=False), "Conv2D", "padding"),
    (lambda: MaxPool2D(True), "MaxPool2D", "kernel_size"),
    (lambda: MaxPool2D(2, stride=np.bool_(True)), "MaxPool2D", "stride"),
    (lambda: MaxPool2D(2, padding=True), "MaxPool2D", "padding"),
    (lambda: AvgPool2D((2, True)), "AvgPool2D", "kernel_size"),
    (lambda: AvgPool2D(2, stride=True), "AvgPool2D", "stride"),
    (lambda: AvgPool2D(2, padding=(False, 0)), "AvgPool2D", "padding"),
    (lambda: BatchNorm2D(True), "BatchNorm2D", "n_channels"),
    (lambda: BatchNorm2D(3, epsilon=True), "BatchNorm2D", "epsilon"),
    (lambda: BatchNorm2D(3, momentum=np.bool_(False)), "BatchNorm2D", "momentum"),
    (lambda: BatchNorm1D(np.bool_(True)), "BatchNorm1D", "n_features"),
    (lambda: BatchNorm1D(3, epsilon=np.bool_(True)), "BatchNorm1D", "epsilon"),
    (lambda: BatchNorm1D(3, momentum=False), "BatchNorm1D", "momentum"),
    (lambda: Dropout(True), "Dropout", "p"),
    (lambda: LeakyReLU(False), "LeakyReLU", "alpha"),
    (lambda: Sequential(ReLU(), True), "Sequential", "layers"),
    (lambda: Residual(np.bool_(True)), "Residual", "body"),
    (lambda: Residual(ReLU(), False), "Residual", "shortcut"),
]


def _torch_twin(name, *args, **kwargs):
    """A factory for the torch module ``torch.nn.<name>(*args)`` (torch imported only when called)."""
    def make():
        import torch
        return getattr(torch.nn, name)(*args, **kwargs)
    return make


def _twin_of(make):
    """A factory for the PyTorch twin of the nnfs layer ``make()`` builds (tests/torchnets.py)."""
    def twin_factory():
        import torch
        from tests.torchnets import twin
        return twin(make(), torch)
    return twin_factory


def _global_avg_twin():
    import torch
    return torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())


# (layer, the shape of one sample, its PyTorch twin), for batches of N = 0.
EMPTY_BATCH = {
    "Linear": (lambda: Linear(4, 3), (4,), _torch_twin("Linear", 4, 3)),
    "Conv2D": (lambda: Conv2D(3, 2, 3, padding=1), (3, 5, 5), _torch_twin("Conv2d", 3, 2, 3, padding=1)),
    "Conv2D-strided": (lambda: Conv2D(3, 2, (2, 3), stride=2), (3, 5, 5),
                       _torch_twin("Conv2d", 3, 2, (2, 3), stride=2)),
    "MaxPool2D": (lambda: MaxPool2D(2), (3, 5, 4), _torch_twin("MaxPool2d", 2)),
    "MaxPool2D-overlap": (lambda: MaxPool2D(3, 2, 1), (3, 5, 4), _torch_twin("MaxPool2d", 3, 2, 1)),
    "AvgPool2D": (lambda: AvgPool2D(3, stride=2, padding=1), (3, 5, 5), _torch_twin("AvgPool2d", 3, 2, 1)),
    "GlobalAvgPool2D": (GlobalAvgPool2D, (3, 4, 4), _global_avg_twin),
    "BatchNorm2D-train": (lambda: BatchNorm2D(3), (3, 4, 4), _torch_twin("BatchNorm2d", 3)),
    "BatchNorm2D-eval": (lambda: BatchNorm2D(3).eval(), (3, 4, 4), _torch_twin("BatchNorm2d", 3)),
    "BatchNorm1D-train": (lambda: BatchNorm1D(3), (3,), _torch_twin("BatchNorm1d", 3)),
    "BatchNorm1D-eval": (lambda: BatchNorm1D(3).eval(), (3,), _torch_twin("BatchNorm1d", 3)),
    "Dropout": (lambda: Dropout(0.5), (3, 4), _torch_twin("Dropout", 0.5)),
    "Flatten": (Flatten, (3, 4, 4), _torch_twin("Flatten")),
    "ReLU": (ReLU, (3, 4), _torch_twin("ReLU")),
    "LeakyReLU": (lambda: LeakyReLU(0.2), (3, 4), _torch_twin("LeakyReLU", 0.2)),
    "Sigmoid": (Sigmoid, (3, 4), _torch_twin("Sigmoid")),
    "Tanh": (Tanh, (3, 4), _torch_twin("Tanh")),
    "Sequential": (lambda: Sequential(Conv2D(3, 2, 3, padding=1), ReLU()), (3, 5, 5),
                   _twin_of(lambda: Sequential(Conv2D(3, 2, 3, padding=1), ReLU()))),
    "Residual": (lambda: Residual(Conv2D(3, 3, 3, padding=1), Conv2D(3, 3, 1)), (3, 5, 5),
                 _twin_of(lambda: Residual(Conv2D(3, 3, 3, padding=1), Conv2D(3, 3, 1)))),
}

# One layer of each class with a valid input shape, for the base class's checks.
ONE_OF_EACH = list({type(layer): (layer, shape) for layer, shape in
                    ((make(), shape) for make, _, shape in NUMPY_ARGUMENTS)}.values())


def test_every_exported_layer_has_a_case_in_each_table():
    exported = exported_layer_classes()
    for table, makers in (("NUMPY_ARGUMENTS", [make for make, _, _ in NUMPY_ARGUMENTS]),
                          ("EMPTY_BATCH", [make for make, _, _ in EMPTY_BATCH.values()])):
        covered = {type(make()) for make in makers}
        assert covered == exported, f"{table} misses {exported - covered}"
    # Every constructor argument but the dtype has its bool case.
    arguments = {(cls.__name__, name) for cls in exported
                 for name in inspect.signature(cls).parameters if name != "dtype"}
    covered = {(owner, argument) for _, owner, argument in BOOL_ARGUMENTS}
    assert arguments <= covered, f"BOOL_ARGUMENTS misses {sorted(arguments - covered)}"


# -- sizes and hyperparameters as NumPy numbers; bools refused ----------------------------------------

@pytest.mark.parametrize("with_numpy, with_python, shape", NUMPY_ARGUMENTS,
                         ids=[f"{type(entry[1]()).__name__}-{i}" for i, entry in enumerate(NUMPY_ARGUMENTS)])
def test_numpy_numbers_make_the_same_layer_with_a_plain_config(backend, rng, with_numpy, with_python, shape):
    nnfs.seed(0)
    ours = with_numpy()
    nnfs.seed(0)
    reference = with_python()
    config = ours.get_config()
    assert config == reference.get_config() and repr(ours) == repr(reference)
    assert_plain(config)
    # What a checkpoint holds: the config through JSON rebuilds the same layer.
    rebuilt = build_layer({"class": type(ours).__name__, "config": json.loads(json.dumps(config))})
    assert rebuilt.get_config() == config
    X = backend.asarray(rng.normal(size=shape), dtype="float32")
    np.testing.assert_array_equal(to_numpy(ours.to(backend)(X)), to_numpy(reference.to(backend)(X)))


@pytest.mark.parametrize("make, owner, argument", BOOL_ARGUMENTS,
                         ids=[f"{owner}-{argument}-{i}" for i, (_, owner, argument) in enumerate(BOOL_ARGUMENTS)])
def test_bools_are_refused_as_sizes_and_hyperparameters(make, owner, argument):
    with pytest.raises(ArgumentTypeError, match=rf"^{owner}: {argument} must be .*, got .*(True|False)"):
        make()


# -- an empty batch ------------------------------------------------------------------------------------

def _randomise_buffers(layer, rng):
    for name, value in layer.buffers.items():
        layer.buffers[name] = layer.backend.asarray(rng.uniform(0.5, 2.0, size=value.shape), dtype=value.dtype)


@pytest.mark.parametrize("case", list(EMPTY_BATCH))
def test_local_grad_takes_an_empty_batch(backend, case):
    """Conv2D's failed on reshaping its empty columns (the row count left to infer)."""
    make, sample_shape, _ = EMPTY_BATCH[case]
    layer = make().to(backend)
    empty = layer.local_grad(backend.xp.zeros((0,) + sample_shape, dtype="float32"))
    full = layer.eval().local_grad(backend.xp.zeros((2,) + sample_shape, dtype="float32"))
    assert set(empty) == set(full)
    for key, value in empty.items():  # what does not depend on the samples keeps its shape
        assert value.shape == full[key].shape or value.size == 0, key


@pytest.mark.parametrize("case", list(EMPTY_BATCH))
def test_an_empty_batch_goes_forward_and_backward(backend, rng, case):
    make, sample_shape, _ = EMPTY_BATCH[case]
    layer = make().to(backend)
    _randomise_buffers(layer, rng)
    buffers = {name: to_numpy(value).copy() for name, value in layer.buffers.items()}
    X = backend.xp.zeros((0,) + sample_shape, dtype="float32")
    Y = layer(X)
    dX = layer.backward(backend.xp.zeros(Y.shape, dtype="float32"))
    assert Y.shape[0] == 0 and Y.dtype == np.float32 and backend.is_array(Y)
    assert dX.shape == X.shape and dX.dtype == np.float32
    for name, grad in layer.grads.items():  # no samples, no gradient
        assert grad.shape == layer.params[name].shape and not to_numpy(grad).any(), name
    for name, value in layer.buffers.items():  # nothing to learn statistics from
        np.testing.assert_array_equal(to_numpy(value), buffers[name], err_msg=name)


@pytest.mark.parametrize("case", list(EMPTY_BATCH))
def test_an_empty_batch_gives_pytorch_shapes_and_statistics(rng, case, torch):
    make, sample_shape, make_twin = EMPTY_BATCH[case]
    layer, twin = make().to("numpy", "float64"), make_twin().double()
    twin.train(layer.training)
    _randomise_buffers(layer, rng)
    with torch.no_grad():
        for name, value in layer.buffers.items():
            getattr(twin, name).copy_(torch.from_numpy(to_numpy(value)))
    Y = layer(np.zeros((0,) + sample_shape))
    dX = layer.backward(np.zeros(Y.shape))
    Xt = torch.zeros((0,) + sample_shape, dtype=torch.float64, requires_grad=True)
    Yt = twin(Xt)
    Yt.backward(torch.zeros_like(Yt))
    assert Y.shape == tuple(Yt.shape) and dX.shape == tuple(Xt.grad.shape)
    for name, value in layer.buffers.items():
        np.testing.assert_array_equal(to_numpy(value), getattr(twin, name).numpy(), err_msg=name)


# -- the base class's checks, on every layer -----------------------------------------------------------

@pytest.mark.parametrize("layer", [layer for layer, _ in ONE_OF_EACH], ids=repr)
def test_backward_before_forward(layer):
    with pytest.raises(RuntimeError, match=rf"{type(layer).__name__}.*before a forward"):
        layer.backward(np.ones((2, 2, 3, 3), np.float32))


@pytest.mark.parametrize("layer, shape", ONE_OF_EACH, ids=repr)
def test_backward_refuses_a_gradient_unlike_the_output(layer, shape):
    """A gradient that would broadcast (one row for the batch), another dtype or a list is refused,
    naming the layer: ``dY * mask`` would broadcast the first silently, and a float64 gradient would
    make a float32 layer's gradients float64."""
    name = type(layer).__name__
    backend = layer.to().backend or default_backend()  # the table's layers live on the default backend
    ones = lambda shape, dtype=np.float32: backend.asarray(np.ones(shape, dtype))  # noqa: E731
    Y = layer(ones(shape))
    with pytest.raises(ValueError, match=rf"^{name}\.backward: the gradient has shape "
                                         rf"\(1, .*last forward pass gave an output of shape \({Y.shape[0]}, "):
        layer.backward(ones((1,) + Y.shape[1:]))
    with pytest.raises(TypeError, match=rf"^{name}\.backward: the gradient is float64, .* of dtype float32"):
        layer.backward(ones(Y.shape, np.float64))
    with pytest.raises(TypeError, match=rf"^{name}\.backward: expected the gradient as an array"):
        layer.backward(np.ones(Y.shape, np.float32).tolist())
    from nnfs.backend import get_backend
    other = "numpy" if backend.name != "numpy" else "strict"
    with pytest.raises(TypeError, match=rf"^{name}\.backward: the gradient is on the {other} backend, but the last "
                                        rf"forward pass gave an output on {backend.name}: move it with"):
        layer.backward(get_backend(other).asarray(np.ones(Y.shape, np.float32)))
    layer.backward(ones(Y.shape))  # the right one still goes through


def test_a_layer_of_ones_own_checks_its_gradient_too():
    class Double(Layer):
        def forward(self, X):
            return 2 * X

        def backward(self, dY):
            return 2 * dY

    layer, backend = Double(), default_backend()
    layer(backend.asarray(np.ones((3, 1), np.float32)))
    with pytest.raises(ValueError, match=r"^Double\.backward: the gradient has shape \(3,\)"):
        layer.backward(backend.asarray(np.ones(3, np.float32)))
    np.testing.assert_array_equal(to_numpy(layer.backward(backend.asarray(np.ones((3, 1), np.float32)))), 2)


def test_a_parameter_gradient_unlike_its_parameter_is_named_as_backward_returns():
    """A gradient of another shape failed in ``param -= lr * grad`` with NumPy's "non-broadcastable
    output operand", naming no layer; a float64 one for a float32 parameter went through silently."""
    from nnfs.backend import host_ones
    from nnfs.optim import SGD

    class Gain(Layer):
        def __init__(self, make_grad):
            super().__init__()
            self.make_grad = make_grad
            self.init_params(None, weight=host_ones(3))

        def forward(self, X):
            self.cache["X"] = X
            return X * self.params["weight"]

        def backward(self, dY):
            self.grads["weight"] = self.make_grad(dY * self.cache["X"])  # should be summed over the batch
            return dY * self.params["weight"]

    X, y = np.ones((4, 3), np.float32), np.array([0, 1, 2, 0])
    for make_grad, error, message in [
            (lambda g: g, ValueError, r"grads\['weight'\] has shape \(4, 3\), but params\['weight'\] is an array of "
                                      r"shape \(3,\)"),
            (lambda g: g.sum(axis=0).astype(np.float64), TypeError,
             r"grads\['weight'\] is float64, but params\['weight'\] is an array of dtype float32"),
            (lambda g: g.sum(axis=0).tolist(), TypeError, r"expected grads\['weight'\] as an array of shape \(3,\)")]:
        net = Net([Gain(make_grad), Linear(3, 3)], CrossEntropyLoss(), dtype="float32")  # whatever NNFS_DTYPE says
        net.loss(net(X), y)
        with pytest.raises(error, match=rf"^Gain\.backward: {message}"):
            net.backward()
    net = Net([Gain(lambda g: g.sum(axis=0)), Linear(3, 3)], CrossEntropyLoss())
    net.loss(net(X), y)
    net.backward()
    SGD(net, lr=0.1).step()  # the right one still goes through


def test_a_forward_that_changes_the_dtype_is_named_not_the_next_layer():
    """``X * np.float64(0.5)`` is float64 for a float32 X: the next layer refused its input, naming
    itself and telling to cast that input, and as the last layer it gave a float32 net float64
    outputs without a word."""
    class Half(Layer):
        def forward(self, X):
            return X * np.float64(0.5)

        def backward(self, dY):
            return dY * 0.5

    X = np.ones((2, 3), np.float32)
    message = r"^Half\.forward: returned float64 for a float32 input: a layer keeps its input's dtype"
    for layers in ([Half(), Linear(3, 2)], [Linear(3, 3), Half()]):
        with pytest.raises(TypeError, match=message):
            Net(layers, dtype="float32")(X)
    assert Net([Half(), Linear(3, 2)], dtype="float64")(X).dtype == np.float64  # float64 in, float64 out


def test_a_method_a_layer_of_ones_own_lacks_is_named():
    # A bare NotImplementedError, with no message, came from the base class.
    class Twice(Layer):
        def forward(self, X):
            return 2 * X

    layer, X = Twice(), default_backend().asarray(np.ones((2, 3), np.float32))
    with pytest.raises(NotImplementedError, match=r"^Twice defines no backward\(dY\): a layer of one's own needs "
                                                  r"forward\(X\) and backward\(dY\)$"):
        layer.backward(layer(X))
    with pytest.raises(NotImplementedError, match=r"^Twice defines no local_grad\(X\)"):
        layer.local_grad(X)
    with pytest.raises(NotImplementedError, match=r"^Layer defines no forward\(X\)"):
        Layer()(X)


def test_setting_dtype_or_backend_in_a_layer_of_ones_own_says_what_to_do():
    # They failed with "property 'dtype' of 'Gain' object has no setter".
    from nnfs.backend import host_ones

    class Gain(Layer):
        def __init__(self, n, dtype=None):
            super().__init__()
            self.dtype = dtype
            self.init_params(dtype, weight=host_ones(n))

    with pytest.raises(AttributeError, match=r"^Gain\.dtype is the dtype of its parameters, which cannot be set: "
                                             r"give the dtype to self\.init_params\(dtype, \.\.\.\)"):
        Gain(3)
    with pytest.raises(AttributeError, match=r"^Linear\.backend is the backend holding its parameters, which "
                                             r"cannot be set: move the layer with \.to\(backend\)"):
        Linear(2, 2).backend = "numpy"


def test_a_layer_of_ones_own_that_skipped_super_init_is_named_when_called():
    # A Net refused it already; called alone it failed with "object has no attribute 'cache'".
    class Shift(Layer):
        def __init__(self):
            self.offset = 1.0

        def forward(self, X):
            return X + self.offset

    with pytest.raises(TypeError, match=r"^Shift was never set up as an nnfs layer: its __init__ must call "
                                        r"super\(\)\.__init__\(\) first$"):
        Shift()(default_backend().asarray(np.ones((2, 3), np.float32)))


def test_a_forward_that_returns_no_array_is_named_not_the_next_layer():
    # A forward that forgot its return: the next layer said it got a NoneType, naming itself.
    class Forgetful(Layer):
        def forward(self, X):
            self.cache["X"] = X

        def backward(self, dY):
            return dY

    X = default_backend().asarray(np.ones((2, 3), np.float32))
    with pytest.raises(TypeError, match=r"^Forgetful\.forward: returned NoneType, not an array"):
        Net([Forgetful(), Linear(3, 2)])(X)


@pytest.mark.parametrize("layer", [layer for layer, _ in ONE_OF_EACH], ids=repr)
def test_a_non_array_input_is_a_type_error(layer):
    with pytest.raises(TypeError, match=rf"{type(layer).__name__}: expected an array, got list"):
        layer([[1.0, 2.0]])


@pytest.mark.parametrize("layer, shape", [(layer, shape) for layer, shape in ONE_OF_EACH if layer.params],
                         ids=repr)
def test_dtype_mismatch_is_a_type_error(layer, shape):
    with pytest.raises(TypeError, match=rf"{type(layer).__name__}.*float64.*float32"):
        layer(layer.backend.asarray(np.zeros(shape), dtype="float64"))


@pytest.mark.parametrize("layer, shape", [(layer, shape) for layer, shape in ONE_OF_EACH if layer.params],
                         ids=repr)
def test_an_input_on_another_backend_than_the_parameters_is_a_type_error(layer, shape):
    """Named after the layer, in one line (CuPy, and the strict backend, fail inside their own
    functions; NumPy would take a device array's values through __array__ where it can)."""
    from nnfs.backend import get_backend

    name = type(layer).__name__
    try:
        for layer_on, input_on in (("strict", "numpy"), ("numpy", "strict")):
            layer.to(layer_on)
            X = get_backend(input_on).asarray(np.zeros(shape, np.float32))
            with pytest.raises(TypeError, match=rf"^{name}: the input is on the {input_on} backend but the "
                                                rf"parameters are on {layer_on}; move the input with "
                                                rf"get_backend\('{layer_on}'\)\.asarray\(X\), or the layer"):
                layer(X)
    finally:  # the table's layers are shared by the other tests
        layer.to(default_backend())


@pytest.mark.parametrize("dtype", ["int64", "bool", "float16"])
@pytest.mark.parametrize("layer, shape", [(layer, shape) for layer, shape in ONE_OF_EACH if not layer.params],
                         ids=repr)
def test_a_layer_without_parameters_refuses_an_input_it_would_promote(layer, shape, dtype):
    # Tanh of bools came out float16, Sigmoid, averages and Dropout of integers float64, and
    # ReLU of integers int64, whose backward no float gradient of the loss can go through.
    name = type(layer).__name__
    X = default_backend().asarray(np.ones(shape, dtype=dtype))
    with pytest.raises(TypeError, match=rf"^{name}: expected a float32 or float64 input, got dtype {dtype}; cast it "
                                        r"with \.astype\('float32'\) \(a Net casts its input itself\)$"):
        layer(X)
    for float_dtype in ("float32", "float64"):
        assert layer(default_backend().asarray(np.ones(shape), dtype=float_dtype)).dtype == float_dtype


# An input of each layer that calling it refuses (with the start of its message): local_grad(X)
# refuses it too. Unchecked, Linear's gave values for another feature count, BatchNorm's failed
# inside NumPy on a broadcast, the pooling layers' on an unpacking of the shape, Tanh's of bools
# came out float16.
LOCAL_GRAD_REFUSALS = [
    (lambda: Linear(3, 2), (2, 4), "float32", ValueError, r"Linear: expected 3 input features"),
    (lambda: Linear(3, 2), (2, 3), "float64", TypeError, r"Linear: input dtype float64 does not match"),
    (lambda: Conv2D(3, 2), (2, 4, 5, 5), "float32", ValueError, r"Conv2D: expected 3 input channels"),
    (lambda: BatchNorm1D(3), (2, 4), "float32", ValueError, r"BatchNorm1D: expected 3 features"),
    (lambda: BatchNorm1D(3), (1, 3), "float32", ValueError, r"BatchNorm1D: training needs at least 2 values"),
    (lambda: BatchNorm2D(3), (2, 3), "float32", ValueError, r"BatchNorm2D: expected a 4-d input"),
    (lambda: MaxPool2D(2), (2, 5), "float32", ValueError, r"MaxPool2D: expected a 4-d input"),
    (lambda: AvgPool2D(2), (2, 1, 5, 5), "int64", TypeError, r"AvgPool2D: expected a float32 or float64 input"),
    (lambda: GlobalAvgPool2D(), (2, 5), "float32", ValueError, r"GlobalAvgPool2D: expected a 4-d input"),
    (lambda: Flatten(), (2,), "float32", ValueError, r"Flatten: expected an input \(N, ...\)"),
    (lambda: Dropout(0.5), (2, 3), "int64", TypeError, r"Dropout: expected a float32 or float64 input"),
    (lambda: Tanh(), (2, 3), "bool", TypeError, r"Tanh: expected a float32 or float64 input"),
    (lambda: Sequential(Linear(3, 2), ReLU()), (2, 4), "float32", ValueError, r"Linear: expected 3 input features"),
    (lambda: Residual(Linear(3, 3)), (2, 3), "float64", TypeError, r"Residual: input dtype float64 does not match"),
]


@pytest.mark.parametrize("make, shape, dtype, error, message", LOCAL_GRAD_REFUSALS,
                         ids=[f"{make().__class__.__name__}-{shape}-{dtype}" for make, shape, dtype, _, _ in
                              LOCAL_GRAD_REFUSALS])
def test_local_grad_refuses_what_calling_the_layer_refuses(make, shape, dtype, error, message):
    X = default_backend().asarray(np.ones(shape, dtype=dtype))
    with pytest.raises(error, match=f"^{message}"):
        make()(X)
    with pytest.raises(error, match=f"^{message}"):
        make().local_grad(X)


@pytest.mark.parametrize("layer", [layer for layer, _ in ONE_OF_EACH], ids=repr)
def test_local_grad_of_a_non_array_is_a_type_error(layer):
    with pytest.raises(TypeError, match=rf"^{type(layer).__name__}: expected an array, got list"):
        layer.local_grad([[1.0, 2.0]])


# The shapes of local_grad's entries, as the table of docs/layers.md gives them, for an input (4, 3)
# (features) or (2, 3, 6, 6) (images).
LOCAL_GRAD_SHAPES = [
    (lambda: Linear(3, 5), (4, 3), {"X": (5, 3), "weight": (4, 3), "bias": (5,)}),
    (lambda: Conv2D(3, 5, 3, stride=2), (2, 3, 6, 6), {"X": (5, 3, 3, 3), "weight": (27, 2 * 2 * 2)}),
    (lambda: MaxPool2D(2), (2, 3, 6, 6), {"X": (2, 3, 6, 6)}),
    (lambda: AvgPool2D(3, stride=2, padding=1), (2, 3, 6, 6), {"X": (2, 3, 6, 6)}),
    (lambda: GlobalAvgPool2D(), (2, 3, 6, 6), {"X": (2, 3, 6, 6)}),
    (lambda: BatchNorm1D(3), (4, 3), {"X": (3,), "weight": (4, 3), "bias": (4, 3)}),
    (lambda: BatchNorm2D(3).eval(), (2, 3, 6, 6), {"X": (3,), "weight": (2, 3, 6, 6), "bias": (2, 3, 6, 6)}),
    (lambda: Dropout(0.5).eval(), (4, 3), {"X": (4, 3)}),
    (lambda: Flatten(), (2, 3, 6, 6), {"X": (2, 3, 6, 6)}),
    (lambda: LeakyReLU(0.1), (2, 3, 6, 6), {"X": (2, 3, 6, 6)}),
    (lambda: Sequential(Linear(3, 5), Tanh()), (4, 3),
     {"0.X": (5, 3), "0.weight": (4, 3), "0.bias": (5,), "1.X": (4, 5)}),
    (lambda: Residual(Tanh()), (4, 3), {"body.X": (4, 3), "shortcut.X": (4, 3)}),
]


@pytest.mark.parametrize("make, shape, expected", LOCAL_GRAD_SHAPES,
                         ids=[repr(make()) for make, _, _ in LOCAL_GRAD_SHAPES])
def test_local_grad_has_the_documented_shapes(make, shape, expected, rng):
    X = default_backend().asarray(rng.normal(size=shape), dtype="float32")
    assert {key: tuple(value.shape) for key, value in make().local_grad(X).items()} == expected


def test_dtype_messages_say_what_helps():
    """A float64 input: move the layer, or cast; an integer one: cast (no layer is int64)."""
    from nnfs.layers import AvgPool2D, Linear

    with pytest.raises(TypeError, match=r"cast the input with .astype\('float32'\) or move the layer with "
                                        r"\.to\(dtype='float64'\)"):
        Linear(4, 3)(default_backend().asarray(np.ones((2, 4)), dtype="float64"))
    with pytest.raises(TypeError, match=r"cast the input with \.astype\('float32'\) \(a Net casts its input"):
        Linear(4, 3)(default_backend().asarray(np.ones((2, 4), dtype=np.int64)))
    with pytest.raises(TypeError, match=r"AvgPool2D.__init__\(\) missing 1 required positional argument"):
        AvgPool2D()


def test_a_subclass_that_reshapes_its_parents_output_is_checked_against_its_own():
    """The record is its outermost forward's, and only its outermost backward checks: the
    gradient it hands to super().backward() is the parent's, of the parent's shape."""
    class LinearThenColumn(Linear):
        def forward(self, X):
            return super().forward(X)[:, None, :]

        def backward(self, dY):
            return super().backward(dY[:, 0, :])

    layer, backend = LinearThenColumn(4, 3), default_backend()
    Y = layer(backend.asarray(np.ones((2, 4), np.float32)))
    assert Y.shape == (2, 1, 3)
    assert layer.backward(backend.asarray(np.ones((2, 1, 3), np.float32))).shape == (2, 4)
    with pytest.raises(ValueError, match=r"^LinearThenColumn\.backward: the gradient has shape \(2, 3\)"):
        layer.backward(backend.asarray(np.ones((2, 3), np.float32)))


def test_forward_and_backward_of_ones_own_may_take_more_arguments():
    class Scale(Layer):
        def forward(self, X, factor=2.0):
            self.cache["factor"] = factor
            return X * factor

        def backward(self, dY, scale=1.0):
            return dY * self.cache["factor"] * scale

    layer, backend = Scale(), default_backend()
    ones = backend.asarray(np.ones((2, 2), np.float32))
    assert to_numpy(layer.forward(ones, factor=3.0))[0, 0] == 3.0
    assert to_numpy(layer.backward(ones, scale=2.0))[0, 0] == 6.0
    assert to_numpy(layer.backward(dY=ones))[0, 0] == 3.0


def test_a_mixin_before_a_layer_and_a_forward_assigned_later_are_checked_or_never_wrongly():
    """The methods a class ends up with are wrapped (a mixin's too); a forward assigned to the
    class afterwards records nothing, so no check is made against an older record."""
    class Column:
        def forward(self, X):
            return super().forward(X)[:, None, :]

        def backward(self, dY):
            return super().backward(dY[:, 0, :])

    class ColumnLinear(Column, Linear):
        pass

    backend = default_backend()
    layer = ColumnLinear(4, 3)
    layer(backend.asarray(np.ones((2, 4), np.float32)))
    assert layer.backward(backend.asarray(np.ones((2, 1, 3), np.float32))).shape == (2, 4)
    with pytest.raises(ValueError, match=r"^ColumnLinear\.backward: the gradient has shape \(4,\)"):
        layer.backward(backend.asarray(np.ones(4, np.float32)))

    class Double(Layer):
        def forward(self, X):
            return 2 * X

        def backward(self, dY):
            return 2 * dY

    double = Double()
    double(backend.asarray(np.ones((3, 2), np.float32)))
    Double.forward = lambda self, X: (2 * X)[:1]  # assigned later: no record, so no stale one either
    Y = double(backend.asarray(np.ones((3, 2), np.float32)))
    assert to_numpy(double.backward(backend.asarray(np.ones(Y.shape, np.float32)))).shape == (1, 2)


def test_a_decorated_inherited_forward_is_wrapped_and_threads_do_not_mix_the_call_depths():
    """functools.wraps copies a function's attributes, so the wrappers are known by their code;
    a layer called from two threads at once keeps its check (the depths are per thread)."""
    import functools
    import threading

    def flattened(forward):
        @functools.wraps(forward)
        def flat(self, X):
            return forward(self, X).reshape(-1)
        return flat

    class FlatLinear(Linear):
        forward = flattened(Linear.forward)

        def backward(self, dY):
            return super().backward(dY.reshape(-1, self.params["weight"].shape[0]))

    backend = default_backend()
    layer = FlatLinear(4, 3)
    Y = layer(backend.asarray(np.ones((2, 4), np.float32)))
    assert Y.shape == (6,) and layer.backward(backend.asarray(np.ones(6, np.float32))).shape == (2, 4)

    inside, leave = threading.Event(), threading.Event()

    class Slow(Layer):
        def forward(self, X):
            if threading.current_thread() is not threading.main_thread():
                inside.set()
                leave.wait(5)
            return X

        def backward(self, dY):
            return dY

    slow = Slow()
    other = threading.Thread(target=lambda: slow(backend.asarray(np.ones((2, 2), np.float32))))
    other.start()
    inside.wait(5)
    slow(backend.asarray(np.ones((3, 2), np.float32)))  # while the other thread is inside
    leave.set()
    other.join()
    slow(backend.asarray(np.ones((3, 2), np.float32)))
    with pytest.raises(ValueError, match=r"^Slow\.backward: the gradient has shape \(5,\)"):
        slow.backward(backend.asarray(np.ones(5, np.float32)))


def test_a_layer_without_a_random_stream_quotes_a_state_it_got_short():
    with pytest.raises(ValueError, match=r"^Linear has no random stream to load, got \{'seed': \[0, 0, .*~") as error:
        Linear(2, 2).load_rng_state({"seed": [0] * 10**5})
    assert len(str(error.value)) < 200
