"""Optimizers and gradient clipping: step by step against PyTorch, state that follows the net."""

import json

import numpy as np
import pytest

import nnfs
from nnfs.activations import ReLU
from nnfs.backend import get_backend, to_numpy
from nnfs.layers import Linear
from nnfs.losses import MeanSquareLoss
from nnfs.net import Net
from nnfs.optim import SGD, Adam, AdamW, clip_grad_norm, make_optimizer

STEPS = 5

CONFIGS = [
    (SGD, "SGD", dict(lr=0.1)),
    (SGD, "SGD", dict(lr=0.1, momentum=0.9)),
    (SGD, "SGD", dict(lr=0.05, momentum=0.8, nesterov=True)),
    (SGD, "SGD", dict(lr=0.1, momentum=0.9, weight_decay=0.01)),
    (SGD, "SGD", dict(lr=0.1, momentum=0.5, nesterov=True, weight_decay=0.1)),
    (Adam, "Adam", dict(lr=0.01)),
    (Adam, "Adam", dict(lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1)),
    (AdamW, "AdamW", dict(lr=0.01)),
    (AdamW, "AdamW", dict(lr=0.01, betas=(0.5, 0.9), weight_decay=0.3)),
]


def small_net(backend, dtype="float64", seed=0):
    nnfs.seed(seed)
    return Net([Linear(5, 4), ReLU(), Linear(4, 3)], MeanSquareLoss(), backend=backend, dtype=dtype)


def set_grads(net, grads, backend):
    for layer in net.layers:
        for key in layer.params:
            layer.grads[key] = backend.asarray(grads[f"{net.layers.index(layer)}.{key}"],
                                               dtype=net.dtype)


def random_grads(net, rng):
    return {name: rng.normal(size=param.shape) for name, param, _ in net.named_parameters()}


@pytest.mark.parametrize("cls, torch_name, kwargs", CONFIGS,
                         ids=[f"{name}-{'-'.join(k for k in kw if k != 'lr') or 'plain'}"
                              for _, name, kw in CONFIGS])
def test_optimizer_matches_pytorch_step_by_step(backend, rng, cls, torch_name, kwargs):
    torch = pytest.importorskip("torch")
    net = small_net(backend)
    optimizer = cls(net, **kwargs)
    torch_params = {name: torch.tensor(to_numpy(p), requires_grad=True)
                    for name, p, _ in net.named_parameters()}
    torch_optimizer = getattr(torch.optim, torch_name)(list(torch_params.values()), **kwargs)
    for _ in range(STEPS):
        grads = random_grads(net, rng)
        set_grads(net, grads, backend)
        for name, tensor in torch_params.items():
            tensor.grad = torch.tensor(grads[name])
        optimizer.step()
        torch_optimizer.step()
        for name, param, _ in net.named_parameters():
            assert backend.is_array(param)
            np.testing.assert_allclose(to_numpy(param), torch_params[name].detach().numpy(),
                                       rtol=1e-12, atol=1e-14, err_msg=name)
    assert optimizer.step_count == STEPS


@pytest.mark.parametrize("cls", [SGD, Adam, AdamW])
def test_updates_are_in_place_and_keep_float32(backend, rng, cls):
    net = small_net(backend, dtype="float32")
    before = {name: param for name, param, _ in net.named_parameters()}
    copies = {name: to_numpy(param).copy() for name, param in before.items()}
    optimizer = cls(net, lr=0.1, weight_decay=0.01)
    set_grads(net, random_grads(net, rng), backend)
    optimizer.step()
    for name, param, _ in net.named_parameters():
        assert param is before[name]
        assert param.dtype == np.float32
        assert not np.allclose(to_numpy(param), copies[name])
    for slots in optimizer.state.values():
        for value in slots.values():
            assert value.dtype == np.float32 and backend.is_array(value)


def test_plain_sgd_is_update_weights(backend, rng):
    a, b = small_net(backend), small_net(backend)
    grads = random_grads(a, rng)
    set_grads(a, grads, backend)
    set_grads(b, grads, backend)
    SGD(a, lr=0.3).step()
    b.update_weights(0.3)
    for (_, pa, _), (_, pb, _) in zip(a.named_parameters(), b.named_parameters()):
        np.testing.assert_array_equal(to_numpy(pa), to_numpy(pb))


def test_zero_grad_zeroes_every_gradient(backend, rng):
    net = small_net(backend)
    set_grads(net, random_grads(net, rng), backend)
    SGD(net, lr=0.1).zero_grad()
    assert all(not to_numpy(grad).any() for _, _, grad in net.named_parameters())


def test_optimizer_takes_a_layer_or_a_list_of_layers(rng):
    layer = Linear(3, 2).to("numpy", "float64")
    optimizer = SGD(layer, lr=0.5)
    layer.grads["weight"] = np.ones((2, 3))
    layer.grads["bias"] = np.ones(2)
    before = layer.params["weight"].copy()
    optimizer.step()
    np.testing.assert_allclose(layer.params["weight"], before - 0.5)
    assert "weight" in optimizer.state
    assert SGD([layer, Linear(2, 2)], lr=0.1)


@pytest.mark.parametrize("make", [
    lambda net: SGD([np.zeros(3)], lr=0.1),
    lambda net: SGD(net, lr="fast"),
    lambda net: SGD(net, lr=-1.0),
    lambda net: SGD(net, lr=0.1, nesterov=True),
    lambda net: SGD(net, lr=0.1, momentum=1.5),
    lambda net: Adam(net, betas=(0.9, 1.0)),
    lambda net: Adam(net, betas=0.9),
    lambda net: clip_grad_norm(net, 0.0),
])
def test_bad_arguments_raise_clear_errors(make):
    with pytest.raises((TypeError, ValueError)):
        make(small_net("numpy"))


@pytest.mark.parametrize("cls, kwargs", [(SGD, dict(lr=0.1, momentum=0.9, nesterov=True)),
                                         (AdamW, dict(lr=0.01, weight_decay=0.1))])
def test_state_dict_round_trip_continues_identically(backend, rng, cls, kwargs):
    grads = [random_grads(small_net(backend), rng) for _ in range(6)]
    reference = small_net(backend)
    optimizer = cls(reference, **kwargs)
    for g in grads:
        set_grads(reference, g, backend)
        optimizer.step()

    net = small_net(backend)
    first = cls(net, **kwargs)
    for g in grads[:3]:
        set_grads(net, g, backend)
        first.step()
    saved = first.state_dict()
    saved = {"config": json.loads(json.dumps(saved["config"])), "state": saved["state"]}
    assert all(type(v) is np.ndarray for v in saved["state"].values())
    assert saved["config"]["step_count"] == 3 and saved["config"]["lr"] == kwargs["lr"]

    second = cls(net, lr=1.0)  # the saved learning rate wins
    second.load_state_dict(saved)
    assert second.lr == kwargs["lr"] and second.step_count == 3
    assert all(backend.is_array(v) for slots in second.state.values() for v in slots.values())
    for g in grads[3:]:
        set_grads(net, g, backend)
        second.step()
    for (_, a, _), (_, b, _) in zip(net.named_parameters(), reference.named_parameters()):
        np.testing.assert_array_equal(to_numpy(a), to_numpy(b))


def test_state_follows_the_net_between_numpy_and_strict(rng):
    strict = get_backend("strict")
    grads = [random_grads(small_net("numpy"), rng) for _ in range(4)]
    reference = small_net("numpy")
    reference_optimizer = Adam(reference, lr=0.01, weight_decay=0.1)
    moved = small_net("numpy")
    optimizer = Adam(moved, lr=0.01, weight_decay=0.1)
    for step, g in enumerate(grads):
        if step == 2:
            moved.to("strict")  # a plain NumPy moment meeting a strict parameter would raise
        set_grads(reference, g, get_backend("numpy"))
        set_grads(moved, g, moved.backend)
        reference_optimizer.step()
        optimizer.step()
    assert all(strict.is_array(v) for slots in optimizer.state.values() for v in slots.values())
    for (_, a, _), (_, b, _) in zip(moved.named_parameters(), reference.named_parameters()):
        np.testing.assert_array_equal(to_numpy(a), to_numpy(b))
    # A state saved from the strict run loads straight onto that device.
    fresh = Adam(small_net("strict"), lr=0.01, weight_decay=0.1).load_state_dict(optimizer.state_dict())
    assert all(strict.is_array(v) for slots in fresh.state.values() for v in slots.values())


def test_load_state_dict_rejects_foreign_state():
    net = small_net("numpy")
    saved = Adam(net).state_dict()
    with pytest.raises(ValueError, match="Adam"):
        SGD(net, lr=0.1).load_state_dict(saved)
    saved["state"]["7.weight.exp_avg"] = np.zeros(3)
    with pytest.raises(ValueError, match="7.weight"):
        Adam(net).load_state_dict(saved)
    saved["state"] = {"0.weight.exp_avg": np.zeros((5, 4))}  # the net's 0.weight is (4, 5)
    with pytest.raises(ValueError, match=r"shape \(5, 4\)"):
        Adam(net).load_state_dict(saved)


@pytest.mark.parametrize("max_norm", [0.5, 1e3])
def test_clip_grad_norm_matches_pytorch(backend, rng, max_norm):
    torch = pytest.importorskip("torch")
    net = small_net(backend)
    grads = random_grads(net, rng)
    set_grads(net, grads, backend)
    tensors = [torch.zeros(g.shape, dtype=torch.float64, requires_grad=True) for g in grads.values()]
    for tensor, g in zip(tensors, grads.values()):
        tensor.grad = torch.tensor(g)
    expected_norm = torch.nn.utils.clip_grad_norm_(tensors, max_norm)
    norm = clip_grad_norm(net, max_norm)
    assert backend.is_array(norm) and norm.ndim == 0  # stays on the device: no sync
    np.testing.assert_allclose(to_numpy(norm), expected_norm.numpy(), rtol=1e-12)
    for (_, _, grad), tensor in zip(net.named_parameters(), tensors):
        np.testing.assert_allclose(to_numpy(grad), tensor.grad.numpy(), rtol=1e-12)
    clipped = np.sqrt(sum((to_numpy(g) ** 2).sum() for _, _, g in net.named_parameters()))
    assert clipped <= max_norm * (1 + 1e-9)


def test_clip_grad_norm_keeps_float32(rng):
    net = small_net("numpy", dtype="float32")
    set_grads(net, random_grads(net, rng), net.backend)
    norm = clip_grad_norm(net, 0.1)
    assert norm.dtype == np.float32
    assert all(g.dtype == np.float32 for _, _, g in net.named_parameters())


def test_make_optimizer_by_name_and_resume_from_a_saved_type(rng):
    net = small_net("numpy")
    assert type(make_optimizer("SGD", net, 0.1, momentum=0.9)) is SGD
    assert type(make_optimizer("adam", net, 0.1)) is Adam
    original = make_optimizer("AdamW", net, 0.01, weight_decay=0.2)
    set_grads(net, random_grads(net, rng), net.backend)
    original.step()
    saved = original.state_dict()
    rebuilt = make_optimizer(saved["config"]["type"], net, saved["config"]["lr"]).load_state_dict(saved)
    assert type(rebuilt) is AdamW and rebuilt.weight_decay == 0.2 and rebuilt.step_count == 1
    with pytest.raises(ValueError, match="sgd, adam, adamw"):
        make_optimizer("rmsprop", net, 0.1)


@pytest.mark.parametrize("cls, kwargs", [(SGD, dict(lr=0.1, momentum=0.9)), (Adam, dict(lr=0.01))])
def test_state_dict_is_a_snapshot_and_loading_copies(backend, rng, cls, kwargs):
    net = small_net(backend)
    optimizer = cls(net, **kwargs)
    set_grads(net, random_grads(net, rng), backend)
    optimizer.step()
    saved = optimizer.state_dict()
    frozen = {key: value.copy() for key, value in saved["state"].items()}
    set_grads(net, random_grads(net, rng), backend)
    optimizer.step()  # must not reach into the saved arrays
    for key, value in saved["state"].items():
        np.testing.assert_array_equal(value, frozen[key], err_msg=key)
    loaded = cls(net, **kwargs).load_state_dict(saved)
    set_grads(net, random_grads(net, rng), backend)
    loaded.step()  # nor may a loaded optimizer write into the dict it was given
    for key, value in saved["state"].items():
        np.testing.assert_array_equal(value, frozen[key], err_msg=key)
