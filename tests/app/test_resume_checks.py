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


# Paths a hostile split could hold to leave the dataset folder: by POSIX rules, and by Windows'
# (where a backslash separates too, and a drive or UNC prefix anchors the path elsewhere).
LEAVING = ["../secret.png", "/etc/passwd", "a/../../secret.png", "a//b.png", "./a.png",
           "..\\..\\Users\\me\\secret.png", "a\\..\\..\\secret.png", "C:/Users/me/secret.png", "C:secret.png",
           "c:\\secret.png", "\\\\server\\share\\secret.png", "\\Windows\\secret.png", "//server/share/x.png",
           "cats/c:d.png"]  # the programs join the parts one by one: a drive in any part anchors it
# Inside on both: a backslash or a colon inside a POSIX file name stays inside the folder.
INSIDE = ["cats/001.png", "cats/a\\b.png", "cats/note:1.png", "cats/...png", "caf\u00e9/x.png"]


@pytest.mark.parametrize("rel", LEAVING)
def test_a_split_path_leaving_the_folder_is_refused_by_posix_and_windows_rules(rel):
    from nnfs.app.resume import check_extra

    with pytest.raises(CheckpointError, match=r"m.npz: damaged metadata \(extra.split must be"):
        check_extra("m.npz", {"split": {"train": [rel], "val": []}}, ("split",))


@pytest.mark.parametrize("rel", INSIDE)
def test_a_split_path_kept_stays_inside_when_joined_by_either_rules(rel):
    import ntpath
    import posixpath

    from nnfs.app.resume import check_extra

    check_extra("m.npz", {"split": {"train": [rel], "val": []}}, ("split",))
    for module, root in ((posixpath, "/data"), (ntpath, "D:\\data")):
        joined = module.normpath(module.join(root, *rel.split("/")))
        assert joined.startswith(root + module.sep), (module.__name__, joined)


@pytest.mark.parametrize("field, bad", [
    ("seed", -1), ("seed", 2**32), ("seed", True), ("seed", 1.0), ("val_split", 1), ("val_split", 0),
    ("val_split", float("nan")), ("val_split", "0.5"), ("limit", 0), ("epoch", "9"), ("batch_size", False),
    ("val_accuracy", 1.5), ("val_accuracy", float("inf")), ("requested", {"image_size": [1.0, 2]}),
    ("requested", {"channels": True}), ("requested", {"channels": 2}), ("requested", {"size": 1}),
    ("model", ["cnn"]), ("dataset", "")])
def test_each_field_of_extra_is_checked_for_its_form(field, bad):
    from nnfs.app.resume import check_extra

    with pytest.raises(CheckpointError, match=rf"m.npz: damaged metadata \(extra.{field} must be .*, got "):
        check_extra("m.npz", {field: bad}, (field,))
    assert check_extra("m.npz", {field: bad}, ()) == {field: bad}  # not read: not checked


@pytest.mark.parametrize("field, good", [
    ("seed", 0), ("seed", 2**32 - 1), ("val_split", 0.1), ("limit", 3), ("epoch", 0), ("batch_size", 32),
    ("val_accuracy", 1), ("requested", {"image_size": None, "channels": None}),
    ("requested", {"image_size": [4, 5], "channels": 3}), ("model", "resnet"), ("limit", None)])
def test_the_fields_a_run_writes_pass(field, good):
    from nnfs.app.resume import check_extra

    assert check_extra("m.npz", {field: good}, (field,)) == {field: good}
