"""RunState.from_dict takes only what a run writes; resume() names the file in every refusal."""

import pytest

from nnfs.app.resume import RunState, resume
from nnfs.checkpoint import Checkpoint, CheckpointError
from nnfs.layers import Linear
from nnfs.losses import CrossEntropyLoss
from nnfs.net import Net
from nnfs.optim import SGD


def state(**changes):
    good = {"epochs": 5, "schedule": "constant", "warmup_epochs": 0, "epoch": 2,
            "history": {"train_loss": [1.0, 0.5], "train_acc": [0.5, 0.6], "val_loss": [1.1, 0.9],
                        "val_acc": [0.4, 0.5]},
            "best_val_accuracy": 0.5, "best_epoch": 2, "loader": {"seed": 0, "passes": 2}}
    good.update(changes)
    return good


def test_a_good_state_round_trips():
    run = RunState.from_dict(state())
    assert RunState.from_dict(run.to_dict()) == run


@pytest.mark.parametrize("changes, match", [
    ({"epochs": 0}, "epochs must be a positive int"), ({"epochs": 2.0}, "epochs must be an int"),
    ({"epoch": 6}, r"epoch must be an int in \[0, 5\]"), ({"epoch": True}, "epoch must be an int"),
    ({"history": []}, "history must have the keys"),
    ({"history": {**state()["history"], "val_loss": [1.0, float("nan")]}}, "history\\['val_loss'\\] must be a finite"),
    ({"best_val_accuracy": float("nan")}, "best_val_accuracy"), ({"best_epoch": -1}, "best_epoch"),
    ({"schedule": ["step"]}, "unhashable|schedule"), ({"warmup_epochs": "1"}, "warmup_epochs"),
    ({"loader": {"seed": -1, "passes": 0}}, r"loader\['seed'\]"),
    ({"loader": {"seed": 0, "passes": 3}}, r"loader\['passes'\] must be an int in \[0, 2\]"),
])
def test_damaged_states_are_checkpoint_errors(changes, match):
    with pytest.raises(CheckpointError, match=match):
        RunState.from_dict(state(**changes))
    with pytest.raises(CheckpointError, match="not a dict"):
        RunState.from_dict([1, 2])


def test_resume_names_the_file_and_wraps_optimizer_failures():
    net = Net([Linear(3, 2)], CrossEntropyLoss())
    optimizer_state = SGD(net, lr=0.1, momentum=0.9).state_dict()
    optimizer_state["config"]["momentum"] = 9
    checkpoint = Checkpoint(net=net, optimizer_state=optimizer_state, extra={"run": state()}, path="x.npz")
    with pytest.raises(CheckpointError, match=r"x.npz: damaged optimizer state \(SGD: momentum must be"):
        resume(checkpoint, net, 5)
    checkpoint.optimizer_state = {"config": "sgd", "state": {}}
    with pytest.raises(CheckpointError, match="x.npz: damaged optimizer state"):
        resume(checkpoint, net, 5)
    checkpoint.optimizer_state = SGD(net, lr=0.1).state_dict()
    checkpoint.extra = {"run": state(epoch="two")}
    with pytest.raises(CheckpointError, match="x.npz: damaged run state"):
        resume(checkpoint, net, 5)
