"""Stopping and resuming training from saved state gives exactly the uninterrupted run."""

import json

import numpy as np
import pytest

import nnfs
from nnfs.activations import ReLU
from nnfs.layers import BatchNorm1D, Dropout, Linear, Sequential
from nnfs.losses import CrossEntropyLoss
from nnfs.net import Net
from nnfs.optim import SGD, AdamW, clip_grad_norm
from nnfs.optim.schedules import CosineAnnealingLR, StepLR

N_STEPS, M_STEPS = 4, 3

SETUPS = {
    "adamw-cosine-warmup": (lambda net: AdamW(net, lr=0.01, weight_decay=0.05),
                            lambda opt: CosineAnnealingLR(opt, T_max=5, warmup_steps=2)),
    "sgd-nesterov-step": (lambda net: SGD(net, lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-3),
                          lambda opt: StepLR(opt, step_size=2, gamma=0.5)),
}


def build(backend, seed, dropout=False):
    nnfs.seed(seed)
    # With Dropout (one inside a layer made of layers too) the masks must continue where they were.
    drop = [Dropout(0.3), Sequential(Linear(8, 8), Dropout(0.5))] if dropout else []
    net = Net([Linear(6, 8), BatchNorm1D(8), ReLU(), *drop, Linear(8, 3)], CrossEntropyLoss(),
              backend=backend, dtype="float32")
    return net


def train(net, optimizer, scheduler, batches):
    for X, y in batches:
        net.loss(net(X), y)
        net.backward()
        clip_grad_norm(net, 1.0)
        optimizer.step()
        scheduler.step()


def through_json(state):
    """What a checkpoint file would hold: the config through JSON, the arrays as NumPy."""
    return {"config": json.loads(json.dumps(state["config"])), "state": dict(state["state"])}


@pytest.mark.parametrize("setup", list(SETUPS))
def test_resume_equals_uninterrupted(backend, setup):
    make_optimizer, make_scheduler = SETUPS[setup]
    data = np.random.default_rng(0)
    batches = [(data.normal(size=(10, 6)).astype(np.float32), data.integers(0, 3, size=10))
               for _ in range(N_STEPS + M_STEPS)]

    net = build(backend, seed=1)
    optimizer = make_optimizer(net)
    scheduler = make_scheduler(optimizer)
    train(net, optimizer, scheduler, batches)

    first = build(backend, seed=1)
    first_optimizer = make_optimizer(first)
    first_scheduler = make_scheduler(first_optimizer)
    train(first, first_optimizer, first_scheduler, batches[:N_STEPS])
    saved = (first.state_dict(), through_json(first_optimizer.state_dict()),
             json.loads(json.dumps(first_scheduler.state_dict())))

    resumed = build(backend, seed=2)  # other initial weights: everything must come from the files
    resumed_optimizer = make_optimizer(resumed)
    resumed_scheduler = make_scheduler(resumed_optimizer)
    resumed.load_state_dict(saved[0])
    resumed_optimizer.load_state_dict(saved[1])
    resumed_scheduler.load_state_dict(saved[2])
    train(resumed, resumed_optimizer, resumed_scheduler, batches[N_STEPS:])

    expected, got = net.state_dict(), resumed.state_dict()
    assert expected.keys() == got.keys()
    for name in expected:
        np.testing.assert_array_equal(got[name], expected[name], err_msg=name)
    expected_state, got_state = optimizer.state_dict(), resumed_optimizer.state_dict()
    assert got_state["config"] == expected_state["config"]
    for key in expected_state["state"]:
        np.testing.assert_array_equal(got_state["state"][key], expected_state["state"][key], err_msg=key)
    assert resumed_optimizer.lr == optimizer.lr and resumed_scheduler.last_step == N_STEPS + M_STEPS
    # The run really moved: not a comparison of two untouched nets.
    assert not np.array_equal(expected["0.weight"], build(backend, seed=1).state_dict()["0.weight"])


def _checkpoint_after(tmp_path, schedule, epochs, done, warmup=0):
    """A checkpoint of a run planned for ``epochs`` epochs with ``done`` of them finished."""
    from nnfs.checkpoint import save
    from nnfs.app.resume import RunState
    from nnfs.optim.schedules import make_schedule
    net = build("numpy", 0)
    optimizer = SGD(net, lr=0.1, momentum=0.9)
    scheduler = make_schedule(schedule, optimizer, epochs, warmup)
    state = RunState(epochs=epochs, schedule=schedule, warmup_epochs=warmup)
    result = type("Result", (), {"loss": 1.0, "accuracy": 0.5})
    for _ in range(done):
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        state.record(result, result)
    path = tmp_path / "run.npz"
    save(path, net, optimizer=optimizer, scheduler=scheduler, extra={"run": state.to_dict()})
    return path, optimizer, scheduler


def _resume(path, epochs):
    from nnfs.checkpoint import load_into
    from nnfs.app.resume import resume
    net = build("numpy", 1)
    return resume(load_into(path, net), net, epochs)


def test_resume_with_the_planned_epochs_keeps_the_schedule(tmp_path):
    path, optimizer, scheduler = _checkpoint_after(tmp_path, "cosine", epochs=5, done=2, warmup=1)
    resumed_optimizer, resumed_scheduler, state = _resume(path, 5)
    assert state.epoch == 2 and state.epochs == 5 and len(state.history["val_acc"]) == 2
    assert resumed_optimizer.lr == optimizer.lr and resumed_optimizer.step_count == 2
    assert [resumed_scheduler.step() for _ in range(3)] == [scheduler.step() for _ in range(3)]


def test_resume_with_more_epochs_lays_the_schedule_out_again(tmp_path):
    # A cosine run planned for 2 epochs ends at lr 0; continued to 4 it must anneal to the
    # new end from where it stands, not train on at lr 0.
    path, optimizer, _ = _checkpoint_after(tmp_path, "cosine", epochs=2, done=2)
    assert optimizer.lr == pytest.approx(0.0)
    resumed_optimizer, scheduler, state = _resume(path, 4)
    assert state.epochs == 4 and scheduler.T_max == 4 and scheduler.last_step == 2
    assert resumed_optimizer.lr == pytest.approx(0.05)  # 0.1 * (1 + cos(pi * 2 / 4)) / 2
    assert scheduler.step() == pytest.approx(0.1 * (1 + np.cos(np.pi * 3 / 4)) / 2)
    path, _, _ = _checkpoint_after(tmp_path, "step", epochs=3, done=3)
    _, scheduler, _ = _resume(path, 9)
    # Where a 9-epoch run stands after 3: past the first of its milestones [3, 6].
    assert scheduler.milestones == [3, 6] and scheduler.lr == pytest.approx(0.01)


@pytest.mark.parametrize("epochs, done", [(4, 1), (7, 3), (5, 4), (2, 1)])
def test_a_resumed_step_run_follows_the_uninterrupted_schedule(tmp_path, epochs, done):
    """The "step" schedule is laid out over uneven runs of epochs: resumed, with the planned
    epochs, it continues with the rates of the run that was never stopped."""
    _, _, uninterrupted = _checkpoint_after(tmp_path, "step", epochs=epochs, done=0)
    expected = [uninterrupted.lr_at(t) for t in range(epochs + 1)]
    path, _, _ = _checkpoint_after(tmp_path, "step", epochs=epochs, done=done)
    optimizer, scheduler, _ = _resume(path, epochs)
    assert [optimizer.lr] + [scheduler.step() for _ in range(epochs - done)] == expected[done:]


def test_a_run_saved_with_the_former_step_schedule_continues_with_it(tmp_path):
    """Runs saved before "step" meant milestones hold a StepLR: resumed as planned they keep
    it (an exact resume); extended, they are laid out again with today's milestones."""
    from nnfs.checkpoint import save
    from nnfs.app.resume import RunState

    net = build("numpy", 0)
    optimizer = SGD(net, lr=0.1, momentum=0.9)
    scheduler = StepLR(optimizer, step_size=2, gamma=0.1)  # what 4 epochs used to get
    state = RunState(epochs=4, schedule="step")
    result = type("Result", (), {"loss": 1.0, "accuracy": 0.5})
    optimizer.step()
    scheduler.step()
    state.record(result, result)
    path = tmp_path / "old.npz"
    save(path, net, optimizer=optimizer, scheduler=scheduler, extra={"run": state.to_dict()})
    _, kept, _ = _resume(path, 4)
    assert type(kept) is StepLR and [kept.step() for _ in range(3)] == pytest.approx([0.01, 0.01, 0.001])
    _, relaid, _ = _resume(path, 6)
    assert relaid.milestones == [2, 4] and relaid.last_step == 1 and relaid.lr == pytest.approx(0.1)


def test_resume_needs_optimizer_and_run_state(tmp_path):
    from nnfs.checkpoint import CheckpointError, load_into, save
    from nnfs.app.resume import resume
    net = build("numpy", 0)
    save(tmp_path / "weights.npz", net)
    with pytest.raises(CheckpointError, match="weights only"):
        resume(load_into(tmp_path / "weights.npz", net), net, 3)


@pytest.mark.parametrize("setup", list(SETUPS))
def test_a_checkpoint_saved_and_loaded_continues_the_run_bit_for_bit_with_dropout(backend, tmp_path, setup):
    """Through the library's files: save with the optimizer, load_into a net built otherwise,
    train on; the weights, the optimizer state and the masks are the uninterrupted run's."""
    from nnfs.checkpoint import load_into, save
    make_optimizer, make_scheduler = SETUPS[setup]
    data = np.random.default_rng(0)
    batches = [(data.normal(size=(10, 6)).astype(np.float32), data.integers(0, 3, size=10))
               for _ in range(N_STEPS + M_STEPS)]

    net = build(backend, seed=1, dropout=True)
    optimizer = make_optimizer(net)
    train(net, optimizer, make_scheduler(optimizer), batches)

    first = build(backend, seed=1, dropout=True)
    first_optimizer = make_optimizer(first)
    first_scheduler = make_scheduler(first_optimizer)
    train(first, first_optimizer, first_scheduler, batches[:N_STEPS])
    save(tmp_path / "run.npz", first, optimizer=first_optimizer, scheduler=first_scheduler)

    resumed = build(backend, seed=2, dropout=True)  # other weights and other mask seeds
    checkpoint = load_into(tmp_path / "run.npz", resumed)
    resumed.train()
    resumed_optimizer = make_optimizer(resumed)
    resumed_optimizer.load_state_dict(checkpoint.optimizer_state)
    resumed_scheduler = make_scheduler(resumed_optimizer)
    resumed_scheduler.load_state_dict(checkpoint.scheduler_state)
    train(resumed, resumed_optimizer, resumed_scheduler, batches[N_STEPS:])

    expected, got = net.state_dict(), resumed.state_dict()
    for name in expected:
        np.testing.assert_array_equal(got[name], expected[name], err_msg=name)
    for key, value in optimizer.state_dict()["state"].items():
        np.testing.assert_array_equal(resumed_optimizer.state_dict()["state"][key], value, err_msg=key)
    assert resumed.rng_state() == net.rng_state()
    assert all(stream["calls"] == N_STEPS + M_STEPS for stream in net.rng_state().values())
