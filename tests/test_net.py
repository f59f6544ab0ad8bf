"""Net: moving between backends, train/eval, parameter names, state dicts, predictions, whole-net
gradients against finite differences and PyTorch, dtypes kept end to end, errors."""

import warnings

import numpy as np
import pytest

from nnfs.activations import ReLU
from nnfs.backend import backend_of, to_numpy
from nnfs.layers import BatchNorm2D, Layer, Linear, Residual, Sequential
from nnfs.losses import CrossEntropyLoss, MeanSquareLoss
from nnfs.net import Net
from tests.gradcheck import assert_net_gradients
from tests.layercheck import assert_close, tensor
from tests.nets import every_layer_cnn, image_batch
from tests.torchnets import twin


def _snapshot(net):
    """Every param, grad and buffer as host copies, keyed by layer index, store and name."""
    return {(index, store, key): to_numpy(value).copy()
            for index, layer in enumerate(net.layers)
            for store in ("params", "grads", "buffers")
            for key, value in getattr(layer, store).items()}


def _train_step(net, X, y, lr=0.05):
    loss = net.loss(net(X), y)
    net.backward()
    net.update_weights(lr)
    return float(loss)


def test_to_moves_params_grads_and_running_stats(backend, rng):
    net = every_layer_cnn()
    X, y = image_batch(rng)
    _train_step(net, X, y)
    before = _snapshot(net)
    assert net.to(backend) is net
    assert net.backend == backend
    moved = 0
    for (index, store, key), value in before.items():
        array = getattr(net.layers[index], store)[key]
        assert backend_of(array) == backend, (index, store, key)
        np.testing.assert_array_equal(to_numpy(array), value)
        moved += 1
    assert any(store == "buffers" for _, store, _ in before) and moved == len(before)
    # ...and back again, after a step on the new backend.
    _train_step(net, X, y)
    after = _snapshot(net)
    net.to("numpy")
    for (index, store, key), value in after.items():
        array = getattr(net.layers[index], store)[key]
        assert type(array) is np.ndarray
        np.testing.assert_array_equal(array, value)


def test_to_casts_dtype(rng):
    net = every_layer_cnn().to(dtype="float64")
    assert all(value.dtype == np.float64 for value in _snapshot(net).values())
    X, y = image_batch(rng)
    assert net(X.astype(np.float32)).dtype == np.float64


def test_same_training_on_every_backend(backend, rng):
    X, y = image_batch(rng)
    losses = {}
    for name in ("numpy", backend):
        net = every_layer_cnn(backend=name, dtype="float64")
        losses[name] = [_train_step(net, X, y) for _ in range(3)]
    np.testing.assert_allclose(losses[backend], losses["numpy"], rtol=1e-10)


def test_net_stays_where_its_layers_are():
    net = Net([Linear(2, 3).to("strict", "float64"), ReLU()])
    assert net.backend.name == "strict" and net.dtype == np.float64
    net = Net([Linear(2, 3).to("strict", "float64")], backend="numpy", dtype="float32")
    assert type(net.layers[0].params["weight"]) is np.ndarray
    assert net.layers[0].params["weight"].dtype == np.float32


def test_layers_of_two_dtypes_or_backends_are_refused_unless_the_net_is_told_where():
    # They were all cast to the first layer's: a float64 layer after a float32 one became float32.
    with pytest.raises(TypeError, match=r"^Net: the layers are in more than one dtype \(parameter 0\.weight is "
                                        r"float32, 2\.body\.0\.weight is float64\); build them in one, or give "
                                        r"Net\(\.\.\., dtype=\.\.\.\) to cast every layer to it$"):
        Net([Linear(2, 3), ReLU(), Residual(Sequential(Linear(3, 3, dtype="float64")))])
    with pytest.raises(TypeError, match=r"^Net: the layers are on more than one backend \(parameter 0\.weight is "
                                        r"strict, 1\.weight is numpy\); build them on one, or give "
                                        r"Net\(\.\.\., backend=\.\.\.\) to move every layer there$"):
        Net([Linear(2, 3).to("strict"), Linear(3, 3).to("numpy")])
    net = Net([Linear(2, 3), Linear(3, 3, dtype="float64").to("strict")], backend="numpy", dtype="float64")
    assert all(type(p) is np.ndarray and p.dtype == np.float64 for p in net.parameters())


def test_train_and_eval_switch_every_layer(rng):
    net = every_layer_cnn()
    assert net.training and all(layer.training for layer in net.layers)
    assert net.eval() is net
    assert not net.training and not any(layer.training for layer in net.layers)
    net.train()
    assert all(layer.training for layer in net.layers)


def test_eval_uses_running_statistics(rng):
    net = Net([BatchNorm2D(2)], backend="numpy", dtype="float64")
    X = rng.normal(loc=3.0, size=(8, 2, 3, 3))
    train_out = to_numpy(net(X))
    np.testing.assert_allclose(train_out.mean(axis=(0, 2, 3)), 0, atol=1e-12)
    mean = 0.1 * X.mean(axis=(0, 2, 3))
    var = 0.9 + 0.1 * X.var(axis=(0, 2, 3), ddof=1)
    eval_out = to_numpy(net.eval()(X))
    expected = (X - mean[:, None, None]) / np.sqrt(var[:, None, None] + 1e-5)
    np.testing.assert_allclose(eval_out, expected, rtol=1e-12)
    # Evaluating twice changes nothing: eval mode never updates the statistics.
    np.testing.assert_array_equal(to_numpy(net(X)), eval_out)


def test_named_parameters():
    net = Net([Linear(3, 4), ReLU(), BatchNorm2D(2), Linear(4, 2)])
    names = [name for name, _, _ in net.named_parameters()]
    assert names == ["0.weight", "0.bias", "2.weight", "2.bias", "3.weight", "3.bias"]
    for (name, param, grad), layer_param in zip(net.named_parameters(), net.parameters()):
        assert param is layer_param
        assert grad.shape == param.shape
    assert names == [name for name, _, _ in net.to("strict").named_parameters()]


def test_update_weights_is_plain_sgd(backend, rng):
    net = every_layer_cnn(backend=backend, dtype="float64")
    X, y = image_batch(rng)
    net.loss(net(X), y)
    net.backward()
    before = {name: (to_numpy(p).copy(), to_numpy(g).copy()) for name, p, g in net.named_parameters()}
    net.update_weights(0.5)
    for name, param, _ in net.named_parameters():
        value, grad = before[name]
        np.testing.assert_allclose(to_numpy(param), value - 0.5 * grad, rtol=1e-12, atol=1e-15)


def test_net_gradients_match_finite_differences(backend, rng):
    # Every parameter of a whole network (all layers chained), checked through the loss.
    net = every_layer_cnn(backend=backend, dtype="float64")
    X, y = image_batch(rng, n=3)
    errors = assert_net_gradients(net, X, y, backend)
    assert set(errors) == {"X"} | {name for name, _, _ in net.named_parameters()}


def test_state_dict_round_trip(backend, rng):
    net = every_layer_cnn(backend=backend)
    X, y = image_batch(rng)
    for _ in range(2):
        _train_step(net, X, y)
    state = net.state_dict()
    assert all(type(value) is np.ndarray for value in state.values())
    assert {"1.running_mean", "1.running_var", "0.weight", "11.bias"} <= set(state)
    net.eval()
    expected = to_numpy(net(X))

    other = every_layer_cnn(seed=1, backend=backend).load_state_dict(state).eval()
    np.testing.assert_array_equal(to_numpy(other(X)), expected)
    for name, value in other.state_dict().items():
        np.testing.assert_array_equal(value, state[name])


def test_state_dict_is_a_snapshot_and_loading_copies(backend, rng):
    # On NumPy, to_numpy and asarray used to hand out the net's own arrays.
    net = every_layer_cnn(backend=backend)
    X, y = image_batch(rng)
    state = net.state_dict()
    saved = {name: value.copy() for name, value in state.items()}
    other = every_layer_cnn(seed=1, backend=backend).load_state_dict(state)
    # Training the loaded net changes neither the saved state nor the net it came from...
    _train_step(other, X, y)
    for name, value in net.state_dict().items():
        np.testing.assert_array_equal(value, saved[name], err_msg=name)
    # ...and training the original leaves the saved state alone too.
    _train_step(net, X, y)
    for name, value in state.items():
        np.testing.assert_array_equal(value, saved[name], err_msg=name)


def test_load_state_dict_refuses_a_different_architecture():
    state = every_layer_cnn().state_dict()
    with pytest.raises(ValueError, match=r"missing: \['0.bias'\]"):
        every_layer_cnn().load_state_dict({k: v for k, v in state.items() if k != "0.bias"})
    with pytest.raises(ValueError, match="unexpected: \\['99.weight'\\]"):
        every_layer_cnn().load_state_dict(dict(state, **{"99.weight": np.zeros(1)}))
    wrong = dict(state, **{"9.weight": np.zeros((6, 16))})
    with pytest.raises(ValueError, match=r"9.weight has shape \(6, 16\) .* \(6, 15\)"):
        every_layer_cnn().load_state_dict(wrong)


def test_predict_proba_and_predict(backend, rng):
    net = every_layer_cnn(backend=backend).eval()
    X, _ = image_batch(rng, n=6)
    p = net.predict_proba(X)
    assert type(p) is np.ndarray and p.shape == (6, 3)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-6)
    assert np.all(p >= 0)
    np.testing.assert_array_equal(net.predict(X), p.argmax(axis=1))


def test_repr_names_layers_backend_and_dtype():
    text = repr(Net([Linear(2, 3)], CrossEntropyLoss(), backend="strict"))
    assert "Linear(in_dim=2, out_dim=3)" in text and "'strict'" in text and "float32" in text


def test_backward_skips_the_input_gradient_unless_asked(backend, rng):
    from nnfs.layers import Conv2D, Flatten
    net = Net([Conv2D(2, 3, 3), ReLU(), Flatten(), Linear(3 * 3 * 3, 4)], CrossEntropyLoss(), backend=backend)
    X, y = rng.normal(size=(5, 2, 5, 5)), rng.integers(0, 4, 5)
    net.loss(net(X), y)
    assert net.backward() is None
    weight_grad = to_numpy(net.layers[0].grads["weight"]).copy()
    net.loss(net(X), y)
    dX = net.backward(input_grad=True)
    assert dX.shape == X.shape
    np.testing.assert_allclose(to_numpy(net.layers[0].grads["weight"]), weight_grad, rtol=1e-6)
    assert net.layers[0].input_grad  # the switch is the net's, for one call only
    assert net.layers[0].backward(backend.asarray(rng.normal(size=(5, 3, 3, 3)), dtype="float32")).shape == X.shape


def test_an_input_gradient_unlike_the_input_is_named_after_the_first_layer(backend, rng):
    """No layer comes before the first to check what its backward returns: a first layer of one's
    own that returned another shape or dtype gave that to ``backward(input_grad=True)``'s caller."""
    class Cut(Layer):  # the gradient of its first two features only
        def forward(self, X):
            return X

        def backward(self, dY):
            return dY[:, :2]

    class Widened(Cut):
        def backward(self, dY):
            return dY.astype("float64")

    X, y = rng.normal(size=(5, 3)), rng.integers(0, 2, 5)
    for first, error, message in [
            (Cut(), ValueError, r"has shape \(5, 2\), but the net was given a batch of shape \(5, 3\)"),
            (Widened(), TypeError, r"is float64, but the net was given a batch of dtype float32")]:
        net = Net([first, Linear(3, 2)], CrossEntropyLoss(), backend=backend, dtype="float32")
        net.loss(net(X), y)
        assert net.backward() is None  # not asked for: nothing to check
        net.loss(net(X), y)
        with pytest.raises(error, match=rf"^Net\.backward: {type(first).__name__}\.backward: the input gradient it "
                                        rf"returned {message}"):
            net.backward(input_grad=True)


def test_predictions_run_in_eval_mode_and_leave_the_mode_and_statistics_alone(backend, rng):
    from nnfs.layers import BatchNorm1D
    net = Net([Linear(4, 6), BatchNorm1D(6), ReLU(), Linear(6, 3)], CrossEntropyLoss(), backend=backend)
    X = rng.normal(size=(1, 4))  # a single sample: batch statistics would be impossible
    running = to_numpy(net.layers[1].buffers["running_mean"]).copy()
    probabilities = net.predict_proba(X)
    assert probabilities.shape == (1, 3) and np.allclose(probabilities.sum(axis=1), 1)
    assert net.predict(X).shape == (1,)
    assert net.training and net.layers[1].training
    np.testing.assert_array_equal(to_numpy(net.layers[1].buffers["running_mean"]), running)
    net.eval()
    net.predict(X)
    assert not net.training


@pytest.mark.parametrize("state", [None, [1], "0.weight", 3])
def test_load_state_dict_refuses_a_state_that_is_not_a_dict(state):
    """None failed on iterating it, deep inside; a list was a state with "unexpected: [1]"."""
    net = Net([Linear(2, 3)], CrossEntropyLoss(), backend="numpy")
    with pytest.raises(TypeError, match=rf"^Net.load_state_dict: expected a dict of arrays by name \(as "
                                        rf"state_dict\(\) returns\), got {type(state).__name__}$"):
        net.load_state_dict(state)


def test_load_state_dict_refuses_values_that_are_not_arrays():
    net = Net([Linear(2, 3)], CrossEntropyLoss(), backend="numpy")
    state = net.state_dict()
    state["0.weight"] = [[0.0, 0.0]] * 3
    with pytest.raises(ValueError, match="0.weight must be an array, got list"):
        net.load_state_dict(state)


# -- dtypes: float32 by default, float64 on request, never promoted --------------------------------

def _forward_backward_dtypes(net, X, target):
    """Every layer output, the loss, every input gradient, every parameter gradient and buffer."""
    seen = []
    out = net.backend.asarray(X, dtype=net.dtype)
    for index, layer in enumerate(net.layers):
        out = layer(out)
        seen.append((f"output of layer {index} {layer!r}", out.dtype))
    loss = net.loss(out, target)
    seen.append(("loss", loss.dtype))
    grad = net.loss_fn.backward()
    seen.append(("loss gradient", grad.dtype))
    for index in reversed(range(len(net.layers))):
        grad = net.layers[index].backward(grad)
        seen.append((f"input gradient of layer {index}", grad.dtype))
    net.update_weights(0.01)
    for index, layer in enumerate(net.layers):
        for store in ("params", "grads", "buffers"):
            for key, value in getattr(layer, store).items():
                seen.append((f"layer {index} {store}[{key!r}]", value.dtype))
    return seen


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("loss", [CrossEntropyLoss, MeanSquareLoss])
def test_every_array_keeps_the_dtype(backend, rng, dtype, loss):
    # Pitfall 9 and NEP 50: float64 host scalars or integer one-hot matrices promote float32.
    net = every_layer_cnn(loss=loss(), backend=backend, dtype=dtype)
    X, labels = image_batch(rng)
    target = labels if loss is CrossEntropyLoss else rng.normal(size=(4, 3))  # float64 targets
    wrong = [(what, got) for what, got in _forward_backward_dtypes(net, X, target) if got != dtype]
    assert not wrong, f"promoted or demoted: {wrong}"


# -- a whole CNN against PyTorch, in float64 ---------------------------------------------------------

def test_whole_cnn_training_steps_match_pytorch(backend, rng, torch):
    net = every_layer_cnn(backend=backend, dtype="float64")
    model = twin(net, torch)  # the torch.nn.Sequential of every_layer_cnn, with its weights
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    for step in range(3):
        X, y = image_batch(rng, n=5)
        loss = net.loss(net(X), y)
        dX = net.backward(input_grad=True)
        Xt = tensor(X, grad=True)
        optimizer.zero_grad()
        loss_t = torch.nn.functional.cross_entropy(model(Xt), torch.tensor(y))
        loss_t.backward()
        assert_close(loss, loss_t, f"loss, step {step}")
        assert_close(dX, Xt.grad, f"input gradient, step {step}")
        for (name, _, grad), (torch_name, param) in zip(net.named_parameters(), model.named_parameters()):
            assert name == torch_name
            assert_close(grad, param.grad, f"{name} gradient, step {step}")
        net.update_weights(0.1)
        optimizer.step()
    for (name, param, _), (_, torch_param) in zip(net.named_parameters(), model.named_parameters()):
        assert_close(param, torch_param, f"{name} after 3 steps")
    bn = net.layers[1]
    assert_close(bn.buffers["running_mean"], model[1].running_mean, "running mean")
    assert_close(bn.buffers["running_var"], model[1].running_var, "running variance")
    net.eval()
    model.eval()
    X, _ = image_batch(rng, n=5)
    assert_close(net(X), model(tensor(X)), "eval output")


# -- errors ----------------------------------------------------------------------------------------

def test_net_refuses_what_is_not_a_layer_or_loss():
    with pytest.raises(TypeError, match="layer 1"):
        Net([Linear(2, 2), "relu"])
    with pytest.raises(TypeError, match="loss"):
        Net([Linear(2, 2)], loss=ReLU())


def test_net_without_a_loss():
    net = Net([Linear(2, 2)])
    with pytest.raises(RuntimeError, match="without a loss"):
        net.loss(net(np.ones((1, 2))), np.zeros(1, int))
    with pytest.raises(RuntimeError, match="without a loss"):
        net.backward()


def test_an_empty_batch_goes_through_the_whole_net_without_a_warning(backend):
    # A data-parallel rank whose share of the validation set is empty runs exactly this.
    net = every_layer_cnn(backend=backend)
    running = to_numpy(net.layers[1].buffers["running_mean"]).copy()
    X, y = np.zeros((0, 2, 9, 8), np.float32), np.zeros(0, np.int64)
    with warnings.catch_warnings(), np.errstate(all="raise"):
        warnings.simplefilter("error")
        out = net(X)
        loss = net.loss(out, y)
        dX = net.backward(input_grad=True)
        probabilities = net.eval().predict_proba(X)
    assert out.shape == (0, 3) and np.isnan(float(loss)) and dX.shape == X.shape
    assert probabilities.shape == (0, 3) and net.predict(X).shape == (0,)
    np.testing.assert_array_equal(to_numpy(net.layers[1].buffers["running_mean"]), running)


@pytest.mark.parametrize("between", ["predict", "forward"])
def test_backward_refuses_a_loss_whose_forward_pass_was_not_the_latest(rng, between):
    # The layers keep what the latest pass saw: backward after another pass (a predict to log
    # the accuracy, the forward of a second batch) would give silently wrong gradients.
    net = every_layer_cnn(loss=CrossEntropyLoss())
    X, y = image_batch(rng)
    out = net(X)
    if between == "forward":
        net(X[::-1].copy())
    net.loss(out, y)
    if between == "predict":
        net.predict(X)
    with pytest.raises(RuntimeError, match="not computed on the output of the latest forward pass"):
        net.backward()
    net.loss(net(X), y)
    net.backward()
    net.backward()  # the same gradients again: nothing ran in between


def test_backward_refuses_a_loss_whose_forward_pass_ran_on_weights_loaded_over_since(rng, tmp_path):
    # The layers hold the old weights' activations: backward gave their gradients without a word,
    # which the optimizer then applied to the loaded weights (PyTorch raises here too).
    from nnfs import checkpoint

    net, other = every_layer_cnn(loss=CrossEntropyLoss()), every_layer_cnn(loss=CrossEntropyLoss())
    X, y = image_batch(rng)
    path = checkpoint.save(tmp_path / "m.npz", other)
    for load in (lambda: net.load_state_dict(other.state_dict()), lambda: checkpoint.load_into(path, net)):
        net.train()
        net.loss(net(X), y)
        load()
        with pytest.raises(RuntimeError, match=r"^Net\.backward: the weights were loaded \(load_state_dict, "
                                               r"checkpoint\.load_into\) after the forward pass of the last loss"):
            net.backward()
    net.loss(net(X), y)
    net.backward()  # a forward pass after the loading: its gradients are the loaded weights'


def test_predictions_go_in_slices_and_keep_nothing_for_a_backward(backend, rng):
    """A large input goes through INFER_BATCH samples at a time, with the outputs of one whole
    pass; afterwards no layer holds activations (no backward can follow a prediction)."""
    from nnfs.app.models import reference_cnn
    from nnfs.backend import to_numpy

    net = reference_cnn(1, (8, 8), 3).to(backend)
    X = rng.normal(size=(600, 1, 8, 8)).astype(np.float32)
    net.eval()
    whole = to_numpy(net(X))  # one pass over all 600
    net.train()
    np.testing.assert_allclose(net.predict_proba(X), to_numpy(softmax_rows(whole)), rtol=1e-5, atol=1e-6)
    assert net.training
    assert all(not layer.cache for layer in net.layers)
    assert all(not twin.cache for replica in net._shards.replicas for _, twin in replica.pairs)


def softmax_rows(logits):
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


class _FlatGradientLoss(MeanSquareLoss):
    """A loss of one's own whose backward returns the gradient flattened, or in float64."""

    def __init__(self, change):
        super().__init__()
        self.change = change

    def backward(self):
        return self.change(super().backward())


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("change, error, message", [
    (lambda g: g.ravel(), ValueError, r"has shape \(64,\), but the last forward pass gave an output of "
                                      r"shape \(64, 1\)"),
    (lambda g: g.astype(np.float64), TypeError, r"is float64, but the last forward pass gave an output of dtype float32"),
])
def test_backward_names_a_loss_whose_gradient_is_unlike_the_output(rng, threads, change, error, message):
    """Reported as the loss's fault, before the gradient reaches the layers or the shards' row cuts."""
    from nnfs.parallel import using_threads

    net = Net([Linear(300, 1), ReLU()], _FlatGradientLoss(change))
    X, y = rng.normal(size=(64, 300)), rng.normal(size=(64, 1))
    with using_threads(threads):
        net.loss(net(X), y)
        with pytest.raises(error, match=r"^Net.backward: _FlatGradientLoss.backward: the gradient it returned "
                                        + message):
            net.backward()


@pytest.mark.parametrize("damage, error, message", [
    (lambda v: np.zeros(5, np.float32), ValueError, r"1.bias has shape \(5,\) in the saved state but \(2,\)"),
    (lambda v: v * 1j, TypeError, r"Net.load_state_dict: 1.bias: the array must hold real numbers .* complex"),
    (lambda v: v.astype(str), TypeError, r"Net.load_state_dict: 1.bias: the array must hold real numbers .* <U"),
    # float64 into the float32 net: 1e300 would become inf, with no more than a RuntimeWarning.
    (lambda v: np.full(2, 1e300), ValueError, r"^Net.load_state_dict: 1.bias holds 2 value\(s\) beyond the range "
                                              r"of float32, the net's dtype \(they would become inf\)$"),
])
def test_a_refused_state_leaves_the_net_as_it_was(backend, damage, error, message):
    """Checked whole before anything is stored (the last array was refused after the others were
    loaded); text and complex values are refused, not parsed or cut to their real part."""
    net = Net([Linear(4, 3), Linear(3, 2)], backend=backend)
    before = net.state_dict()
    state = {key: value + 1 for key, value in before.items()}
    state["1.bias"] = damage(state["1.bias"])
    with pytest.raises(error, match=message):
        net.load_state_dict(state)
    after = net.state_dict()
    assert all(np.array_equal(before[key], after[key]) for key in before)


def test_predictions_give_every_layer_its_own_mode_back(backend, rng):
    """A BatchNorm frozen in eval mode while the rest trains stays frozen after predict."""
    from nnfs.layers import BatchNorm1D, Residual, Sequential

    inner = BatchNorm1D(3)
    net = Net([Linear(4, 3), BatchNorm1D(3), Residual(Sequential(Linear(3, 3), inner)), Linear(3, 2)],
              backend=backend)
    net.layers[1].eval()
    inner.eval()
    X = backend.asarray(rng.normal(size=(8, 4)))
    for predict in (net.predict, net.predict_proba):
        predict(X)
        assert [net.training, net.layers[0].training, net.layers[1].training, net.layers[2].training,
                inner.training] == [True, True, False, True, False]
    net.eval()
    net.predict(X)
    assert not any(part.training for part in (net, *net.layers, inner))


def test_predictions_of_large_images_go_in_smaller_slices(backend, rng, monkeypatch):
    """Activations grow with the pixels: 256 images of 128x128 at once held 2.8 GB, so large
    images go through fewer at a time (INFER_PIXELS), other inputs INFER_BATCH samples."""
    from nnfs.app.models import reference_cnn

    assert Net.inference_batch((3, 32, 32)) == 256 and Net.inference_batch((1, 28, 28)) == 256
    assert Net.inference_batch((3, 128, 128)) == 16 and Net.inference_batch((3, 64, 48)) == 85
    assert Net.inference_batch((1, 4000, 3000)) == 1 and Net.inference_batch((784,)) == 256
    net = reference_cnn(3, (64, 64), 2).to(backend)
    sizes = []
    forward = net.forward
    monkeypatch.setattr(net, "forward", lambda X: sizes.append(X.shape[0]) or forward(X))
    X = rng.normal(size=(150, 3, 64, 64)).astype(np.float32)
    probabilities = net.predict_proba(X)
    assert sizes == [64, 64, 22] and probabilities.shape == (150, 2)


@pytest.mark.parametrize("threads", [1, 2])
def test_a_layer_whose_backward_returns_the_wrong_shape_is_the_one_named(rng, threads):
    from nnfs.layers import Layer
    from nnfs.parallel import using_threads

    class FirstColumn(Layer):  # a bug of one's own: the gradient of one column only
        def forward(self, X):
            return X

        def backward(self, dY):
            return dY[:, :1]

    net = Net([Linear(300, 3), FirstColumn(), Linear(3, 1)], MeanSquareLoss())
    with using_threads(threads):
        net.loss(net(rng.normal(size=(64, 300))), rng.normal(size=(64, 1)))
        with pytest.raises(ValueError, match=r"^FirstColumn\.backward: the gradient it returned for Linear has shape "
                                             r"\(\d+, 1\), but the last forward pass gave an output of shape \(\d+, 3\)"):
            net.backward()


def test_rng_state_names_every_random_stream_and_loads_all_or_nothing():
    import nnfs
    from nnfs.layers import Dropout, Residual, Sequential
    nnfs.seed(0)
    net = Net([Linear(4, 4), Dropout(0.5), Residual(Sequential(Linear(4, 4), Dropout(0.2))), Linear(4, 2)])
    state = net.rng_state()
    assert list(state) == ["1", "2.body.1"]
    assert all(set(stream) == {"seed", "calls"} for stream in state.values())
    assert Net([Linear(2, 2)]).rng_state() == {}
    assert net.load_rng_state(None) is net and net.rng_state() == state  # nothing recorded: as it was
    moved = {"1": {"seed": 5, "calls": 7}, "2.body.1": {"seed": 6, "calls": 8}}
    net.load_rng_state(moved)
    assert net.rng_state() == moved
    half_bad = {"1": {"seed": 9, "calls": 9}, "2.body.1": {"seed": 6, "calls": -1}}
    with pytest.raises(ValueError, match=r"^Net.load_rng_state: layer 2.body.1: Dropout: rng state's calls"):
        net.load_rng_state(half_bad)
    assert net.rng_state() == moved  # layer 1 was put back too
    with pytest.raises(ValueError, match=r"^Net.load_rng_state: expected the random streams of layers "
                                         r"\['1', '2.body.1'\], got \['1'\]"):
        net.load_rng_state({"1": moved["1"]})


def test_skip_batch_moves_every_random_stream_on():
    import nnfs
    from nnfs.layers import Dropout, Sequential
    nnfs.seed(0)
    net = Net([Linear(4, 4), Dropout(0.5), Sequential(Dropout(0.2)), Linear(4, 2)])
    net.skip_batch()
    assert [stream["calls"] for stream in net.rng_state().values()] == [1, 1]
    net.eval().skip_batch()  # eval mode draws no masks
    assert [stream["calls"] for stream in net.rng_state().values()] == [1, 1]


def test_a_net_pickled_between_forward_and_backward_backpropagates():
    """The layers' caches record the backend of their outputs; a pickled copy of it was
    another object, and the copy's backward refused a gradient 'on numpy, not on numpy'."""
    import pickle

    net = Net([Linear(4, 3), Linear(3, 2)], CrossEntropyLoss(), backend="numpy")
    net.loss(net(np.ones((5, 4))), np.zeros(5, dtype=int))
    copy = pickle.loads(pickle.dumps(net))
    assert copy.backend is net.backend
    copy.backward()


def test_a_layers_error_in_a_forward_pass_says_where_it_stands_and_what_the_net_was_given():
    # "Linear: expected 1568 input features" alone does not tell that the images are 32x32.
    from nnfs.layers import Conv2D, Flatten, MaxPool2D

    net = Net([Conv2D(1, 8, 3, padding=1), ReLU(), MaxPool2D(2), Flatten(), Linear(8 * 14 * 14, 10)],
              CrossEntropyLoss(), backend="numpy")
    with pytest.raises(ValueError) as error:
        net(np.zeros((4, 1, 32, 32), dtype=np.float32))
    assert str(error.value) == ("Linear: expected 1568 input features, got shape (4, 2048) (layer 4 of the net; "
                                "the net was given a batch of shape (4, 1, 32, 32))")
    with pytest.raises(ValueError, match=r"^Conv2D: expected 1 input channels, got shape \(4, 3, 28, 28\) "
                                         r"\(layer 0 of the net\)$"):
        net(np.zeros((4, 3, 28, 28), dtype=np.float32))

    class Buggy(Layer):
        def forward(self, X):
            raise ValueError("Buggy: my own bug")

    with pytest.raises(ValueError) as error:
        Net([Linear(3, 3), Buggy()], backend="numpy")(np.zeros((2, 3)))
    assert str(error.value) == "Buggy: my own bug (layer 1 of the net; the net was given a batch of shape (2, 3))"
    assert error.traceback[-1].name == "forward"  # the layer's own frame: its traceback is kept
