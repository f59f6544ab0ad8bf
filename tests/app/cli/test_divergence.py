"""A diverging run never costs a good model: the guard stops it in one line naming the epoch and
the step and suggesting a lower --lr, nothing non-finite is written, and --resume refuses
non-finite or damaged state."""

import shutil

import numpy as np
import pytest

from nnfs.app.cli import train
from nnfs.app.loop import EpochResult
from tests.archives import rewrite_checkpoint

from .programs import assert_one_line, call, contents, dataset


@pytest.fixture
def trained(tmp_path, capsys):
    """A dataset and a good run of two epochs in tmp_path/runs."""
    data = dataset(tmp_path)
    save = tmp_path / "runs" / "m.npz"
    code, _, err = call(train.main, ["--dataset", data, "--epochs", "2", "--batch_size", "4", "--save", save],
                        capsys)
    assert code == 0, err
    return data, save


def test_a_huge_learning_rate_stops_in_one_line_and_keeps_the_good_model(trained, capsys):
    data, save = trained
    before = contents(save.parent)
    code, out, err = call(train.main, ["--dataset", data, "--epochs", "3", "--batch_size", "4",
                                       "--lr", "1e6", "--save", save], capsys)
    assert code == 1
    # NaN in a training step's loss, or (when the last step made the weights NaN) in validation.
    line = assert_one_line(err, "error: training diverged in epoch 1: the ",
                           "nothing of this epoch was saved", "try a lower --lr (it was 1e+06)")
    assert "became nan" in line or "became inf" in line
    assert "RuntimeWarning" not in err and "saved to" not in out
    assert contents(save.parent) == before


def test_a_non_finite_validation_loss_stops_the_run_too(trained, capsys, monkeypatch):
    data, save = trained
    before = contents(save.parent)
    monkeypatch.setattr(train, "evaluate", lambda model, loader, progress=None: EpochResult(float("nan"), 0.5, 2, 0.1))
    code, _, err = call(train.main, ["--dataset", data, "--epochs", "1", "--save", save], capsys)
    assert code == 1
    assert_one_line(err, "training diverged in epoch 1: the validation loss became nan")
    assert contents(save.parent) == before


def test_a_model_that_is_no_longer_finite_behind_a_finite_loss_stops_the_run(trained, capsys, monkeypatch):
    """A learning rate far too high can overflow BatchNorm's running variance while every loss
    stays finite (each batch is normalised with its own statistics): the run stops as for a
    NaN loss, naming the array, and the good model stays."""
    data, save = trained
    before = contents(save.parent)
    real_epoch = train.train_epoch

    def overflowing_epoch(model, *args, **kwargs):
        result = real_epoch(model, *args, **kwargs)
        model.layers[1].buffers["running_var"][0] = np.inf
        return result

    monkeypatch.setattr(train, "train_epoch", overflowing_epoch)
    code, out, err = call(train.main, ["--dataset", data, "--epochs", "3", "--batch_size", "4", "--save", save],
                          capsys)
    assert code == 1
    assert_one_line(err, "error: training diverged in epoch 1: layer 1 (BatchNorm2D) running_var became inf",
                    "nothing of this epoch was saved", "try a lower --lr")
    assert contents(save.parent) == before



def test_an_optimizer_state_no_longer_finite_behind_a_finite_model_stops_the_run(trained, capsys, monkeypatch):
    """Adam's second moment overflows (the square of a gradient of 2e19) while its updates, and
    so the weights and the loss, stay finite: the run stops as for a NaN loss, naming the array,
    before any file of the epoch is written (the checkpoint would be refused, after the curves)."""
    data, save = trained
    before = contents(save.parent)
    real_epoch = train.train_epoch

    def overflowing_epoch(model, loader, optimizer, **kwargs):
        result = real_epoch(model, loader, optimizer=optimizer, **kwargs)
        optimizer.state["0.weight"]["exp_avg_sq"][0] = np.inf
        return result

    monkeypatch.setattr(train, "train_epoch", overflowing_epoch)
    code, out, err = call(train.main, ["--dataset", data, "--epochs", "3", "--batch_size", "4", "--optimizer", "adam",
                                       "--save", save], capsys)
    assert code == 1
    assert_one_line(err, "error: training diverged in epoch 1: optimizer state 0.weight.exp_avg_sq became inf",
                    "nothing of this epoch was saved", "try a lower --lr")
    assert contents(save.parent) == before

@pytest.fixture(scope="module")
def step_schedule_run(tmp_path_factory):
    """One good run of two epochs with a step schedule, trained once for all the cases below."""
    root = tmp_path_factory.mktemp("run")
    data = dataset(root)
    code = train.main([str(a) for a in ["--dataset", data, "--epochs", "2", "--schedule", "step", "--save",
                                        root / "runs" / "m.npz"]])
    assert code == 0
    return root


def poison(arrays):
    arrays["net/0.weight"] = arrays["net/0.weight"].copy()
    arrays["net/0.weight"].flat[3] = np.nan


def set_run(key, value):
    return lambda meta: meta["extra"]["run"].__setitem__(key, value)


@pytest.mark.parametrize("change_meta, change_arrays, message", [
    (None, poison, "net/0.weight holds 1 NaN or infinite value"),
    (lambda m: m["extra"].__setitem__("run", "epoch 3"), None, "damaged run state"),
    (set_run("epoch", 7), None, "epoch must be an int in [0, 2]"),
    (set_run("epoch", "2"), None, "epoch must be an int"),
    (set_run("history", {"train_loss": [1.0]}), None, "history must have the keys"),
    (lambda m: m["extra"]["run"]["history"]["val_acc"].append(0.5), None, "history['val_acc'] must list"),
    (lambda m: m["extra"]["run"]["history"].__setitem__("val_acc", ["a", "b"]), None, "must be a number"),
    (set_run("best_val_accuracy", 5), None, "best_val_accuracy must be"),
    (set_run("best_epoch", 9), None, "best_epoch must be"),
    (set_run("schedule", "zigzag"), None, "schedule must be one of"),
    (set_run("loader", {"seed": 0, "passes": 10**12}), None, "loader['passes'] must be"),
    (set_run("loader", [0, 1]), None, "loader must be"),
    (lambda m: m["optimizer"]["config"].__setitem__("type", "rmsprop"), None, "damaged optimizer state"),
    (lambda m: m["optimizer"]["config"].__setitem__("lr", "inf"), None, "damaged optimizer state"),
    (lambda m: m["optimizer"]["config"].__setitem__("momentum", 7), None, "momentum must be"),
    (lambda m: m["optimizer"]["config"].pop("lr"), None, "damaged optimizer state (missing 'lr')"),
    (lambda m: m["optimizer"]["config"].__setitem__("step_count", -1), None, "step_count"),
    (lambda m: m["optimizer"]["config"].__setitem__("step_count", 0), None, "but a step_count of 0"),
    (None, lambda a: a.__setitem__("optimizer/0.weight.momentum_buffer", np.zeros((2, 2), np.float32)),
     "momentum_buffer has shape"),
    (lambda m: m.__setitem__("scheduler", {"type": "Warp"}), None, "cannot restore its schedule"),
    (lambda m: m.__setitem__("scheduler", {"type": "StepLR", "step_size": -3, "gamma": 0.1,
                                            "base_lr": 0.01, "last_step": 1}), None, "step_size"),
    (lambda m: m["scheduler"].__setitem__("last_step", -1), None, "last_step must be an int >= 0"),
])
def test_resume_refuses_non_finite_or_damaged_state_in_one_line(tmp_path, capsys, step_schedule_run,
                                                               change_meta, change_arrays, message):
    data = step_schedule_run / "data"
    shutil.copytree(step_schedule_run / "runs", tmp_path / "runs")
    save = tmp_path / "runs" / "m.npz"
    last = save.parent / "m_last.npz"
    rewrite_checkpoint(last, change_meta, change_arrays)
    before = contents(save.parent)
    code, out, err = call(train.main, ["--dataset", data, "--epochs", "4", "--save", save, "--resume", last],
                          capsys)
    assert code == 1
    assert_one_line(err, "error: ", str(last), message)
    assert contents(save.parent) == before


def test_a_diverged_resumed_run_says_the_saved_rate_is_kept(trained, capsys):
    data, save = trained
    code, _, err = call(train.main, ["--dataset", data, "--epochs", "1", "--batch_size", "4", "--lr", "1e6",
                                     "--save", save.parent / "wild.npz"], capsys)
    assert code == 1  # diverged in its first epoch: nothing written
    last = save.parent / "m_last.npz"
    rewrite_checkpoint(last, lambda meta: meta["optimizer"]["config"].__setitem__("lr", 1e6))
    code, _, err = call(train.main, ["--dataset", data, "--epochs", "3", "--batch_size", "4", "--save", save,
                                     "--resume", last], capsys)
    assert code == 1
    assert_one_line(err, "training diverged in epoch 3", f"kept from {last}",
                    "start a new run with a lower --lr")


def test_a_weight_decay_that_blows_the_weights_up_is_named_in_the_advice(trained, capsys):
    """--weight_decay 5e4 (for 5e-4) diverges at any rate: the line named --lr alone, so the
    user lowered the wrong option."""
    data, save = trained
    code, _, err = call(train.main, ["--dataset", data, "--epochs", "3", "--batch_size", "4",
                                     "--weight_decay", "5e4", "--save", save.parent / "decayed.npz"], capsys)
    assert code == 1
    assert_one_line(err, "training diverged in epoch ",
                    "try a lower --lr (it was 0.01) or --weight_decay (it was 50000)")
    last = save.parent / "m_last.npz"
    rewrite_checkpoint(last, lambda meta: meta["optimizer"]["config"].__setitem__("weight_decay", 5e4))
    code, _, err = call(train.main, ["--dataset", data, "--epochs", "6", "--batch_size", "4", "--save", save,
                                     "--resume", last], capsys)
    assert code == 1
    assert_one_line(err, "the learning rate was 0.01 and the weight decay 50000", f"kept from {last}",
                    "start a new run with a lower --lr or --weight_decay")
