"""After training: the report of what the model gets wrong, the held-out files in the checkpoint,
prediction on exactly those, and the model choice that resuming keeps."""

import contextlib
import csv
import io
import os
import shutil
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from nnfs.app.cli import predict, train
from nnfs.app.cli.options import OptionError
from nnfs.checkpoint import metadata
from nnfs.data import ImageFolder, stratified_split
from tests.imagefolders import make_folder

CLASSES = ["circle", "square", "star"]


def run(program, *argv):
    """``program.main(argv)`` with its stdout and stderr captured: ``(status, out, err)``."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = program.main([str(a) for a in argv])
    return status, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A residual network trained for 2 epochs on 3 classes of 8 colour images."""
    base = tmp_path_factory.mktemp("report")
    root = make_folder(base / "shapes", CLASSES, per_class=8, mode="RGB", size=(16, 16))
    save = base / "out" / "model.npz"
    status, out, err = run(train, "--dataset", root, "--model", "resnet", "--epochs", "2", "--batch_size", "6",
                           "--val_split", "0.25", "--save", save)
    assert status == 0, err
    return SimpleNamespace(root=root, save=save, out=out, base=base,
                           files=train.output_files(train.parse_args(["--save", str(save)])))


def test_output_files_are_named_after_the_checkpoint():
    files = train.output_files(train.parse_args(["--save", os.path.join("runs", "photos.npz")]))
    assert files == {"checkpoint": os.path.join("runs", "photos.npz"),
                     "last": os.path.join("runs", "photos_last.npz"),
                     "curves": os.path.join("runs", "photos_curves.png"),
                     "metrics": os.path.join("runs", "photos_metrics.csv"),
                     "confusion": os.path.join("runs", "photos_confusion.png")}
    assert train.output_files(train.parse_args(["--plot", "c.png"]))["curves"] == "c.png"


def test_training_prints_per_class_results_and_writes_the_report_files(trained):
    assert all(os.path.exists(path) for path in trained.files.values()), trained.files
    assert "model: residual network (--model resnet)" in trained.out
    lines = trained.out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("per class on the 6 validation images"))
    assert "(best model, epoch " in lines[start]
    assert lines[start + 1].split() == ["class", "images", "recall", "precision", "mistaken", "for"]
    assert [line.split()[:2] for line in lines[start + 2:start + 5]] == [[name, "2"] for name in CLASSES]
    assert lines[start + 5].startswith("  accuracy ")
    with open(trained.files["metrics"]) as f:
        rows = list(csv.DictReader(f))
    assert [row["epoch"] for row in rows] == ["1", "2"]
    assert all(0 <= float(row["val_accuracy"]) <= 1 and float(row["train_loss"]) > 0 for row in rows)
    with Image.open(trained.files["confusion"]) as image:
        assert image.format == "PNG"


def test_the_checkpoint_records_the_model_and_the_held_out_files(trained):
    extra = metadata(trained.save)["extra"]
    assert extra["model"] == "resnet"
    data = ImageFolder(trained.root)
    train_idx, val_idx = stratified_split(data.labels, 0.25, seed=0)
    relative = [os.path.relpath(p, trained.root).replace(os.sep, "/") for p in data.paths]
    assert extra["split"] == {"train": [relative[i] for i in train_idx], "val": [relative[i] for i in val_idx]}
    assert extra["split"]["val"][0].startswith("circle/")


def test_split_val_scores_exactly_the_held_out_files(trained):
    csv_path = trained.base / "val.csv"
    status, out, err = run(predict, trained.save, "--split", "val", "--csv", csv_path, "--top", "1")
    assert status == 0, err
    with open(csv_path) as f:
        rows = list(csv.DictReader(f))
    held_out = metadata(trained.save)["extra"]["split"]["val"]
    assert sorted(os.path.relpath(row["path"], trained.root).replace(os.sep, "/") for row in rows) == sorted(held_out)
    assert {row["split"] for row in rows} == {"val"} and all(row["label"] in CLASSES for row in rows)
    # The same images and preprocessing as the training run's validation: the same accuracy.
    val_accuracy = metadata(trained.save)["extra"]["val_accuracy"]
    assert f"accuracy {100 * val_accuracy:.2f}% on the 6 images" in out
    assert "per class on the 6 held-out (validation) images:" in out and "note:" not in out
    assert sum(int(row["correct"]) for row in rows) == round(6 * val_accuracy)
    assert f"predictions written to {csv_path}" in out


def test_split_train_and_a_moved_dataset(trained, tmp_path):
    moved = tmp_path / "elsewhere"
    shutil.copytree(trained.root, moved)
    status, out, err = run(predict, trained.save, moved, "--split", "train", "--csv", tmp_path / "t.csv")
    assert status == 0, err
    with open(tmp_path / "t.csv") as f:
        paths = [row["path"] for row in csv.DictReader(f)]
    assert len(paths) == 18 and all(path.startswith(str(moved)) for path in paths)
    assert "per class on the 18 training images:" in out


def test_scoring_a_folder_with_training_images_says_so(trained):
    status, out, _ = run(predict, trained.save, trained.root)
    assert status == 0
    note = out.splitlines()[-1]
    assert note.startswith("note: 18 of these 24 images trained this model") and "--split val" in note
    assert "on the 6 held-out images among them" in note
    status, out, _ = run(predict, trained.save, trained.root / "circle" / metadata(trained.save)["extra"]["split"]
                         ["val"][0].split("/")[1])
    assert "note:" not in out  # a held-out image alone


@pytest.mark.parametrize("argv, message", [
    ([], "give image files or folders to classify, or --split"),
    (["a", "b", "--split", "val"], "with --split give at most one path")])
def test_bad_prediction_requests_fail_in_one_line(trained, argv, message, capsys):
    with pytest.raises(SystemExit) as exit:
        predict.main([str(trained.save), *argv])
    assert exit.value.code == 2 and message in capsys.readouterr().err


def test_resume_keeps_the_saved_model_and_refuses_another(trained, tmp_path):
    last = trained.files["last"]
    status, _, err = run(train, "--dataset", trained.root, "--model", "cnn", "--resume", last, "--epochs", "3",
                         "--batch_size", "6",
                         "--val_split", "0.25", "--save", tmp_path / "m.npz")
    assert status == 1 and len(err.strip().splitlines()) == 1
    assert "holds a residual network (--model resnet); it cannot continue as --model cnn" in err
    # Refused from the checkpoint's metadata alone, before the dataset is looked at.
    status, _, err = run(train, "--dataset", tmp_path / "nowhere", "--model", "cnn", "--resume", last,
                         "--save", tmp_path / "m.npz")
    assert status == 1 and "it cannot continue as --model cnn" in err and "nowhere" not in err
    status, out, err = run(train, "--dataset", trained.root, "--resume", last, "--epochs", "3", "--batch_size", "6",
                           "--val_split", "0.25", "--save", tmp_path / "m.npz")
    assert status == 0, err
    assert "resuming" in out and "model: residual network (--model resnet)" in out


def test_the_residual_network_resumes_exactly(tmp_path):
    root = make_folder(tmp_path / "data", ["a", "b"], per_class=6, mode="RGB", size=(12, 12))
    options = ["--dataset", root, "--model", "resnet", "--batch_size", "4", "--seed", "2"]
    assert run(train, *options, "--epochs", "2", "--save", tmp_path / "whole" / "m.npz")[0] == 0
    assert run(train, *options, "--epochs", "1", "--save", tmp_path / "part" / "m.npz")[0] == 0
    assert run(train, *options, "--epochs", "2", "--save", tmp_path / "part" / "m.npz",
               "--resume", tmp_path / "part" / "m_last.npz")[0] == 0
    a, b = np.load(tmp_path / "whole" / "m_last.npz"), np.load(tmp_path / "part" / "m_last.npz")
    keys = [k for k in a.files if k.startswith(("net/", "optimizer/"))]
    assert "net/3.body.1.running_var" in keys and "optimizer/5.shortcut.0.weight.exp_avg_sq" in keys  # Adam, the recipe
    for key in keys:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def test_the_default_model_follows_the_kind_of_data(tmp_path):
    args = train.parse_args([])
    assert args.model is None
    assert train.choose_model(args, SimpleNamespace(kind="photos")) == "resnet"
    assert train.choose_model(args, SimpleNamespace(kind="small")) == "cnn"
    assert train.choose_model(args, SimpleNamespace()) == "cnn"  # a folder that does not say
    assert train.choose_model(train.parse_args(["--model", "resnet"]), SimpleNamespace(kind="small")) == "resnet"


def test_each_model_trains_with_its_recipe_unless_told_otherwise():
    resnet = train.apply_recipe(train.parse_args([]), "resnet")
    assert (resnet.optimizer, resnet.lr, resnet.schedule, resnet.epochs, resnet.momentum) == \
        ("adam", 0.003, "cosine", 50, None)
    cnn = train.apply_recipe(train.parse_args([]), "cnn")
    assert (cnn.optimizer, cnn.lr, cnn.schedule, cnn.epochs, cnn.momentum) == ("sgd", 0.01, "constant", 10, 0.9)
    given = train.apply_recipe(train.parse_args(["--optimizer", "sgd", "--epochs", "4"]), "resnet")
    assert (given.optimizer, given.lr, given.momentum, given.schedule, given.epochs) == ("sgd", 0.01, 0.9, "cosine", 4)
    assert train.apply_recipe(train.parse_args(["--optimizer", "adamw"]), "resnet").lr == 0.001
    assert train.apply_recipe(train.parse_args(["--lr", "0.5"]), "resnet").lr == 0.5
    with pytest.raises(OptionError, match="--model resnet trains with adam unless you give --optimizer sgd"):
        train.apply_recipe(train.parse_args(["--momentum", "0.5"]), "resnet")
    with pytest.raises(OptionError, match=r"--warmup_epochs \(10\) must be less than --epochs \(10\)"):
        train.apply_recipe(train.parse_args(["--warmup_epochs", "10"]), "cnn")


def test_an_option_that_clashes_with_the_recipe_is_a_usage_error(tmp_path):
    root = make_folder(tmp_path / "data", ["a", "b"], per_class=3)
    status, out, err = run(train, "--dataset", root, "--model", "resnet", "--momentum", "0.8", "--batch_size", "4",
                           "--save", tmp_path / "m.npz")
    assert status == 2 and err.startswith("error: --momentum applies to --optimizer sgd only")
    assert len(err.splitlines()) == 1 and not (tmp_path / "m.npz").exists()


def test_the_memory_estimate_counts_the_model_and_optimizer_this_run_will_build():
    photos = SimpleNamespace(kind="photos", channels=3, image_size=(64, 64))
    digits = SimpleNamespace(kind="small", channels=1, image_size=(28, 28))
    # The residual network (its size does not depend on the images) with Adam's two moments.
    assert train.planned_training(train.parse_args([]), photos, 10) == (78_378, 2)
    # The reference CNN with SGD's momentum buffer; none without momentum.
    assert train.planned_training(train.parse_args([]), digits, 10) == (207_018, 1)
    assert train.planned_training(train.parse_args(["--momentum", "0"]), digits, 10)[1] == 0
    assert train.planned_training(train.parse_args(["--model", "cnn"]), photos, 10)[0] == 1_055_178
    # Resuming: the model of the run being resumed, not the default for the images.
    assert train.planned_training(train.parse_args([]), photos, 10, saved_model="cnn")[0] == 1_055_178
    args = train.parse_args([])
    train.planned_training(args, photos, 10)
    assert args.optimizer is None and args.epochs is None  # the run's own options are left alone


def test_split_val_in_a_folder_without_those_images_fails_in_one_line(trained, tmp_path):
    other = make_folder(tmp_path / "other", ["a", "b"], per_class=2)
    status, out, err = run(predict, trained.save, other, "--split", "val")
    assert status == 1 and out == ""
    assert err.startswith(f"error: none of the 6 val images recorded in {trained.save} is in {other} (no ")
    assert len(err.strip().splitlines()) == 1, err
