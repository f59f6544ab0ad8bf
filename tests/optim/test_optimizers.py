"""Optimizers: step by step against PyTorch, state that follows the net, configs and checkpoints."""

import json

import numpy as np
import pytest

from nnfs.backend import get_backend, to_numpy
from nnfs.layers import Linear
from nnfs.net import Net
from nnfs.optim import SGD, Adam, AdamW, make_optimizer
from tests.configs import assert_plain
from tests.nets import mlp as small_net, random_grads, set_grads

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


@pytest.mark.parametrize("cls, torch_name, kwargs", CONFIGS,
                         ids=[f"{name}-{'-'.join(k for k in kw if k != 'lr') or 'plain'}"
                              for _, name, kw in CONFIGS])
def test_optimizer_matches_pytorch_step_by_step(backend, rng, cls, torch_name, kwargs, torch):
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


@pytest.mark.parametrize("cls, kwargs, slot", [(SGD, dict(lr=0.1, momentum=0.9), "momentum_buffer"),
                                               (Adam, dict(lr=0.01), "exp_avg")])
def test_a_layer_replaced_by_one_of_another_shape_is_named_before_any_weight_changes(rng, cls, kwargs, slot):
    """A new head for more classes kept the old head's state under its name: the step failed
    inside NumPy on a broadcast, after updating the layers before it."""
    from nnfs.activations import ReLU
    from nnfs.losses import CrossEntropyLoss
    from nnfs.net import Net

    X = rng.normal(size=(8, 3)).astype(np.float32)
    net = Net([Linear(3, 4), ReLU(), Linear(4, 2)], CrossEntropyLoss())
    optimizer = cls(net, **kwargs)
    net.loss(net(X), rng.integers(0, 2, 8))
    net.backward()
    optimizer.step()
    net.layers[2] = Linear(4, 5)
    net.loss(net(X), rng.integers(0, 5, 8))
    net.backward()
    before = net.state_dict()
    with pytest.raises(ValueError, match=rf"^{cls.__name__}\.step: its {slot} for 2\.weight has shape \(2, 4\), "
                                         r"but the parameter is now \(5, 4\) \(was its layer replaced\?\); make a new "
                                         r"optimizer, or drop that parameter's state with "
                                         r"del optimizer\.state\['2\.weight'\]$"):
        optimizer.step()
    assert optimizer.step_count == 1
    for name, value in net.state_dict().items():
        np.testing.assert_array_equal(value, before[name], err_msg=name)
    del optimizer.state["2.weight"], optimizer.state["2.bias"]
    optimizer.step()  # the new head starts its state, as a parameter added during a run does
    assert optimizer.state["2.weight"][slot].shape == (5, 4)


def test_a_list_that_holds_one_layer_twice_is_refused():
    """As a Net refuses it: the layer's parameters were updated twice per step (twice the rate)."""
    from nnfs.activations import ReLU
    from nnfs.layers import Sequential

    layer = Linear(3, 2)
    for layers, where in (([layer, layer], "layers 0 and 1"),
                          ([layer, Sequential(ReLU(), layer)], "layers 0 and 1.1")):
        for make in (lambda: SGD(layers, lr=0.1), lambda: Adam(layers)):
            with pytest.raises(ValueError, match=rf"^(SGD|Adam): the same Linear appears twice in the list "
                                                 rf"\({where}\), so its parameters would count twice \(two "
                                                 r"updates a step, twice in a norm\); give each layer once$"):
                make()


@pytest.mark.parametrize("make", [
    lambda net: SGD([np.zeros(3)], lr=0.1),
    lambda net: SGD(net, lr="fast"),
    lambda net: SGD(net, lr=-1.0),
    lambda net: SGD(net, lr=0.1, nesterov=True),
    lambda net: SGD(net, lr=0.1, momentum=1.5),
    lambda net: Adam(net, betas=(0.9, 1.0)),
    lambda net: Adam(net, betas=0.9),
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


@pytest.mark.parametrize("cls, with_numpy, with_python", [
    (SGD, dict(lr=np.float32(0.5), momentum=np.float64(0.9), nesterov=np.bool_(True), weight_decay=np.int64(0)),
     dict(lr=0.5, momentum=0.9, nesterov=True, weight_decay=0.0)),
    (Adam, dict(lr=np.float64(0.01), betas=(np.float32(0.5), np.float64(0.99)), eps=np.float64(1e-6),
                weight_decay=np.int64(1)),
     dict(lr=0.01, betas=(0.5, 0.99), eps=1e-6, weight_decay=1.0)),
    (AdamW, dict(lr=np.int64(1), betas=[np.float64(0.5), np.float32(0.75)], weight_decay=np.float64(0.25)),
     dict(lr=1.0, betas=(0.5, 0.75), weight_decay=0.25)),
], ids=["SGD", "Adam", "AdamW"])
def test_numpy_numbers_as_hyperparameters_give_plain_configs(backend, rng, cls, with_numpy, with_python):
    grads = random_grads(small_net(backend), rng)
    ours, theirs = small_net(backend), small_net(backend)
    optimizer, reference = cls(ours, **with_numpy), cls(theirs, **with_python)
    assert optimizer.get_config() == reference.get_config() and repr(optimizer) == repr(reference)
    for net, opt in ((ours, optimizer), (theirs, reference)):
        set_grads(net, grads, backend)
        opt.step()
    saved = optimizer.state_dict()
    assert_plain(saved["config"])
    assert json.loads(json.dumps(saved["config"])) == saved["config"]
    for (name, a, _), (_, b, _) in zip(ours.named_parameters(), theirs.named_parameters()):
        np.testing.assert_array_equal(to_numpy(a), to_numpy(b), err_msg=name)
    saved["config"]["step_count"] = np.int64(saved["config"]["step_count"])  # e.g. read back by NumPy
    assert cls(small_net(backend), lr=1.0).load_state_dict(saved).step_count == 1


@pytest.mark.parametrize("make, argument", [
    (lambda net: SGD(net, lr=True), "lr"),
    (lambda net: SGD(net, lr=0.1, momentum=np.bool_(True)), "momentum"),
    (lambda net: SGD(net, lr=0.1, weight_decay=False), "weight_decay"),
    (lambda net: SGD(net, lr=0.1, momentum=0.9, nesterov=1), "nesterov"),
    (lambda net: Adam(net, betas=(True, 0.9)), "betas"),
    (lambda net: Adam(net, eps=True), "eps"),
    (lambda net: AdamW(net, weight_decay=np.bool_(False)), "weight_decay"),
])
def test_bools_are_refused_where_numbers_go_and_numbers_where_bools_go(make, argument):
    with pytest.raises(TypeError, match=rf"(SGD|Adam|AdamW): {argument} must be"):
        make(small_net("numpy"))


def test_make_optimizer_takes_a_numpy_learning_rate():
    optimizer = make_optimizer("sgd", small_net("numpy"), np.float64(0.125), momentum=np.float32(0.5))
    assert type(optimizer.lr) is float and optimizer.get_config()["momentum"] == 0.5


@pytest.mark.parametrize("lr, error", [(float("nan"), ValueError), (-5.0, ValueError), ("0.5", TypeError)])
def test_a_rate_set_between_steps_is_checked_at_the_step(lr, error):
    """A schedule of one's own, or a hand, sets optimizer.lr: NaN made every weight NaN."""
    import numpy as np

    from nnfs.layers import Linear
    from nnfs.optim import SGD

    from nnfs.backend import to_numpy

    layer = Linear(2, 2)
    optimizer = SGD(layer, lr=0.1)
    before = to_numpy(layer.params["weight"]).copy()
    optimizer.lr = lr
    with pytest.raises(error, match=r"^SGD\.step: lr must be"):
        optimizer.step()
    np.testing.assert_array_equal(to_numpy(layer.params["weight"]), before)


def test_a_saved_state_with_a_slot_missing_or_foreign_is_refused_when_loaded():
    """It was accepted, and failed with a KeyError at the first step."""
    import copy

    import numpy as np

    from nnfs.layers import Linear
    from nnfs.optim import SGD, Adam

    layer = Linear(3, 2)
    adam = Adam(layer)
    layer.grads["weight"][...] = 1
    adam.step()
    saved = adam.state_dict()
    missing = copy.deepcopy(saved)
    del missing["state"]["weight.exp_avg_sq"]
    with pytest.raises(ValueError, match=r"^Adam\.load_state_dict: the saved state of weight has \['exp_avg'\], but "
                                         r"Adam keeps \['exp_avg', 'exp_avg_sq'\]$"):
        Adam(Linear(3, 2)).load_state_dict(missing)
    foreign = {"config": dict(SGD(layer, 0.1, momentum=0.9).state_dict()["config"]),
               "state": {"weight.exp_avg": np.zeros((2, 3), np.float32)}}
    with pytest.raises(ValueError, match=r"^SGD\.load_state_dict: the saved state of weight has \['exp_avg'\]"):
        SGD(Linear(3, 2), 0.1, momentum=0.9).load_state_dict(foreign)
    Adam(Linear(3, 2)).load_state_dict(saved)  # the whole state loads


def test_an_optimizer_of_nothing_is_refused():
    from nnfs.activations import ReLU
    from nnfs.losses import CrossEntropyLoss
    from nnfs.net import Net
    from nnfs.optim import SGD, Adam

    for make in (lambda: Adam([]), lambda: SGD(Net([ReLU()], CrossEntropyLoss()), 0.1)):
        with pytest.raises(ValueError, match=r"^(Adam|SGD): there are no parameters to optimize"):
            make()


def _damaged(saved, slot, value):
    """``saved`` with the first parameter's ``slot`` replaced by ``value`` (a scalar, broadcast)."""
    import copy

    damaged = copy.deepcopy(saved)
    key = next(key for key in damaged["state"] if key.endswith("." + slot))
    damaged["state"][key] = np.full_like(damaged["state"][key], value, dtype=np.asarray(value).dtype)
    return damaged


@pytest.mark.parametrize("cls, kwargs, slot, value, match", [
    (SGD, dict(momentum=0.9), "momentum_buffer", np.float32(np.nan), r"momentum_buffer holds \d+ NaN or infinite"),
    (SGD, dict(momentum=0.9), "momentum_buffer", np.float32(-np.inf), r"momentum_buffer holds \d+ NaN or infinite"),
    (Adam, {}, "exp_avg", np.float32(np.nan), r"exp_avg holds \d+ NaN or infinite"),
    (Adam, {}, "exp_avg_sq", np.float32(-1e-3), r"exp_avg_sq holds \d+ negative value\(s\); it is a running average"),
    (AdamW, {}, "exp_avg_sq", np.float32(np.inf), r"exp_avg_sq holds \d+ NaN or infinite"),
    # Finite in float64, inf once cast to the float32 parameter: refused without NumPy's overflow warning.
    (Adam, {}, "exp_avg", np.float64(1e300), r"exp_avg holds \d+ NaN or infinite value\(s\) in float32"),
], ids=["SGD NaN", "SGD -inf", "Adam NaN", "Adam negative second moment", "AdamW inf", "beyond float32"])
def test_slot_values_no_run_makes_are_refused_leaving_the_optimizer_as_it_was(backend, rng, cls, kwargs, slot,
                                                                                value, match):
    """They loaded, and the weights became NaN a few steps later (the square root of a negative
    second moment at once)."""
    import warnings

    net = small_net(backend, dtype="float32")
    source = cls(net, lr=0.01, **kwargs)
    set_grads(net, random_grads(net, rng), backend)
    source.step()
    saved = source.state_dict()
    target = cls(net, lr=0.5, **kwargs)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a warning would be a second message
        with pytest.raises(ValueError, match=rf"^{cls.__name__}\.load_state_dict: the saved \S+\." + match):
            target.load_state_dict(_damaged(saved, slot, value))
    assert target.lr == 0.5 and target.step_count == 0 and target.state == {}
    target.load_state_dict(saved)  # the sound state loads


@pytest.mark.parametrize("step_count", [-1, 1.5, True, "3", None])
def test_a_step_count_that_is_not_an_int_of_zero_or_more_is_refused(step_count):
    layer = Linear(3, 2)
    adam = Adam(layer)
    layer.grads["weight"][...] = 1
    adam.step()
    saved = adam.state_dict()
    saved["config"]["step_count"] = step_count
    fresh = Adam(Linear(3, 2), lr=0.5)
    with pytest.raises(ValueError, match=r"^Adam\.load_state_dict: the saved step_count must be an int >= 0"):
        fresh.load_state_dict(saved)
    assert fresh.lr == 0.5 and fresh.step_count == 0 and fresh.state == {}


@pytest.mark.parametrize("cls, kwargs", [(SGD, dict(momentum=0.9)), (Adam, {}), (AdamW, {})])
def test_arrays_beside_a_step_count_of_0_are_refused_leaving_the_optimizer_as_it_was(rng, cls, kwargs):
    """State is made at a parameter's first step, after it is counted: moments with no step
    loaded, and Adam's next step multiplied them by 1 / (1 - beta1) = 10 (and the second by 1000)."""
    net = small_net("numpy")
    source = cls(net, lr=0.01, **kwargs)
    set_grads(net, random_grads(net, rng), get_backend("numpy"))
    source.step()
    saved = source.state_dict()
    saved["config"]["step_count"] = 0
    target = cls(net, lr=0.5, **kwargs)
    target.step()  # a state of its own, which the refusal must leave bit for bit
    before = {key: value.copy() for key, value in target.state_dict()["state"].items()}
    with pytest.raises(ValueError, match=rf"^{cls.__name__}\.load_state_dict: the saved state holds arrays for "
                                         r"\['0\.bias', .*\] but a step_count of 0; .* holds none$"):
        target.load_state_dict(saved)
    assert target.lr == 0.5 and target.step_count == 1
    after = target.state_dict()["state"]
    assert after.keys() == before.keys() and all(np.array_equal(after[k], before[k]) for k in before)
    saved["state"] = {}
    assert target.load_state_dict(saved).state == {}  # no step and no arrays: a fresh optimizer


def test_a_parameter_without_saved_state_after_steps_starts_its_own_at_the_next_step(rng):
    """As a parameter added to the net during a run does: its moments start from zero, with the
    optimizer's step count in the bias correction (one count for all, so none can disagree)."""
    net = small_net("numpy")
    adam = Adam(net, lr=0.01)
    set_grads(net, random_grads(net, rng), get_backend("numpy"))
    adam.step()
    saved = adam.state_dict()
    saved["state"] = {key: value for key, value in saved["state"].items() if not key.startswith("2.")}
    loaded = Adam(net).load_state_dict(saved)
    assert loaded.step_count == 1 and sorted(loaded.state) == ["0.bias", "0.weight"]


def test_a_layer_without_parameters_listed_twice_is_no_repeat():
    from nnfs.activations import ReLU

    relu = ReLU()
    layers = [Linear(3, 3), relu, Linear(3, 3), relu]
    assert len(SGD(layers, lr=0.1).params) == 4
    with pytest.raises(ValueError, match=r"^SGD.step: the same Linear appears twice"):
        optimizer = SGD(layers, lr=0.1)
        layers.append(layers[0])
        optimizer.step()


def test_the_state_shape_check_looks_at_the_optimizers_own_slots_only():
    """A subclass of one's own may keep other state of any shape (a step count, factored moments)."""
    class Counting(SGD):
        def update(self, name, param, grad, state, lr):
            state["seen"] = np.zeros(())
            super().update(name, param, grad, state, lr)

    layer = Linear(3, 2)
    optimizer = Counting([layer], lr=0.1, momentum=0.9)
    optimizer.step()
    optimizer.step()  # refused as "was its layer replaced?" before


def test_an_optimizer_of_ones_own_without_update_is_named():
    from nnfs.optim import Optimizer

    class Still(Optimizer):
        def get_config(self):
            return {"lr": self.lr}

    with pytest.raises(NotImplementedError, match=r"^Still defines no update\(name, param, grad, state, lr\)"):
        Still(Linear(2, 2), lr=0.1).step()


@pytest.mark.parametrize("optimizer", [SGD, Adam])
def test_a_class_instead_of_a_net_or_layer_is_named_as_a_class(optimizer):
    """SGD(Net) failed inside named_parameters with "missing 'self'", SGD(Linear) said "got type"."""
    for source in (Net, Linear):
        with pytest.raises(TypeError, match=rf"^{optimizer.__name__}: got the class {source.__name__}, not a net"):
            optimizer(source, lr=0.1)
