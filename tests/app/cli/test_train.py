"""The training program (nnfs.app.cli.train, run by examples/CNN_custom_dataset.py): a short real
run, the defaults, resuming, optimizers and schedules, and one-line errors for every user mistake."""

import hashlib
import importlib.util
import os
import pathlib
import signal
import shutil
import subprocess
import sys

import pytest

import nnfs.distributed as dist
from nnfs.app.cli import report, resumed, train_options
from nnfs.app.cli import train as train_program
from tests import ROOT, environment
from tests.app.cli.programs import call, dataset, expect_error, expect_one_line_failure, run_example, train
from tests.archives import rewrite_checkpoint
from tests.imagefolders import make_folder, write_image


@pytest.fixture
def folder(tmp_path):
    """Three classes of mixed modes and sizes, plus a text file that must be skipped."""
    root = make_folder(tmp_path / "shapes", ["circle", "square", "star"], per_class=6, mode="RGB",
                       size=(12, 12))
    write_image(root / "circle" / "gray.png", "L", (12, 12))
    write_image(root / "square" / "rgba.png", "RGBA", (16, 10))
    write_image(root / "star" / "palette.png", "P", (12, 12))
    (root / "star" / "notes.txt").write_text("a text file among the images")
    return root


def test_train_one_epoch_then_predict(tmp_path, folder):
    ckpt = tmp_path / "out" / "model.npz"
    result = run_example("CNN_custom_dataset", "--dataset", folder, "--epochs", "1",
                         "--batch_size", "8", "--save", ckpt)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert "warning: skipped 1 file that is not an image" in result.stderr
    assert "3 classes (circle, square, star), 3 channel(s), 12x12" in result.stdout
    assert "epoch  1/1  train loss" in result.stdout and "img/s" in result.stdout
    assert f"model saved to {ckpt}" in result.stdout
    assert ckpt.exists() and (tmp_path / "out" / "model_curves.png").exists()

    result = run_example("predict", ckpt, folder / "star" / "palette.png", folder, "--top", "2")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"{folder / 'star' / 'palette.png'}: ")
    assert len(lines[0].split("%")) == 3  # two classes shown
    assert sum(line.endswith("%") for line in lines) == 21  # palette.png once, though given twice
    assert "accuracy" in lines[-1]


def test_default_dataset_is_the_shipped_digits(tmp_path):
    train = train_program
    args = train.apply_recipe(train.parse_args([]), "cnn")  # the digits get the reference CNN's recipe
    assert pathlib.Path(args.dataset).resolve() == ROOT / "data" / "digits"
    assert (args.epochs, args.batch_size, args.lr, args.val_split) == (10, 32, 0.01, 0.1)
    assert (args.optimizer, args.momentum, args.schedule) == ("sgd", 0.9, "constant")
    assert train.apply_recipe(train.parse_args(["--optimizer", "adam"]), "cnn").momentum is None
    code = train.main(["--limit", "4", "--epochs", "1", "--save", str(tmp_path / "m.npz")])
    assert code == 0 and (tmp_path / "m.npz").exists()


def test_the_default_dataset_missing_after_an_install_says_to_pass_dataset(tmp_path, capsys, monkeypatch):
    # As after `pip install .`: the package sits in site-packages, with no data/digits beside it.
    monkeypatch.setattr(train_options, "DEFAULT_DATASET", str(tmp_path / "site-packages" / "data" / "digits"))
    expect_error(capsys, train_program.main, ["--save", str(tmp_path / "m.npz")],
                 "error: the default dataset is the digits in data/digits of a repository checkout, and this "
                 "installation has none")
    expect_error(capsys, train_program.main, ["--dataset", str(tmp_path / "nowhere"), "--save", str(tmp_path / "m.npz")],
                 "error: dataset folder not found")  # a folder given: the usual message


@pytest.mark.parametrize("case, message", [
    ("missing path", "error: dataset folder not found"),
    ("no class subfolders", "error: no class subfolders"),
    ("class without images", "has no images"),
    ("corrupt png", "broken.png: Truncated File Read (--skip_corrupt leaves such files out, with a warning)"),
    ("empty file", "error: empty file (0 bytes), not an image: "),
    ("one image per class", "error: validation split is empty: every class has a single image (2 images in all), "
                            "and a class needs 2 or more to give one to validation; add images"),
])
def test_training_on_a_bad_dataset_fails_in_one_line(tmp_path, capsys, case, message):
    root = tmp_path / "data"
    if case == "no class subfolders":
        root.mkdir()
    elif case == "class without images":
        make_folder(root, ["a"], per_class=3)
        (root / "b").mkdir()
    elif case == "corrupt png":
        make_folder(root, ["a", "b"], per_class=3)
        (root / "b" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    elif case == "one image per class":  # no validation split: refused before any epoch, never scored 0 %
        make_folder(root, ["a", "b"], per_class=1)
    elif case == "empty file":
        make_folder(root, ["a", "b"], per_class=3)
        (root / "b" / "empty.jpg").write_bytes(b"")
    main = train_program.main
    expect_error(capsys, main, ["--dataset", str(root), "--save", str(tmp_path / "m.npz")], message)


def test_corrupt_images_can_be_skipped(tmp_path, capsys):
    root = make_folder(tmp_path / "data", ["a", "b"], per_class=4)
    (root / "b" / "broken.png").write_bytes(b"junk")
    main = train_program.main
    assert main(["--dataset", str(root), "--epochs", "1", "--skip_corrupt", "--save",
                 str(tmp_path / "m.npz")]) == 0
    assert "skipped 1 unreadable image, e.g." in capsys.readouterr().err
    # Resumed without the flag: the run left the file out (its split has none of it), so does
    # the resumed one, and says so (it stopped at that file, advising the flag).
    assert main(["--dataset", str(root), "--epochs", "2", "--save", str(tmp_path / "m.npz"),
                 "--resume", str(tmp_path / "m_last.npz")]) == 0
    out, err = capsys.readouterr()
    assert f"--skip_corrupt, as the resumed run {tmp_path / 'm_last.npz'} had" in out
    assert "skipped 1 unreadable image, e.g." in err


@pytest.mark.parametrize("argv, message", [
    (["--val_split", "0"], "argument --val_split: must be strictly between 0 and 1"),
    (["--val_split", "1"], "argument --val_split: must be strictly between 0 and 1"),
    (["--batch_size", "0"], "argument --batch_size: must be a positive integer"),
    (["--image_size", "2x9"], "argument --image_size"),
])
def test_bad_options_fail_in_one_line(capsys, argv, message):
    expect_error(capsys, train_program.main, argv, message, code=2)


def test_batch_larger_than_the_dataset_is_clamped_with_a_warning(tmp_path, capsys):
    root = make_folder(tmp_path / "data", ["a", "b"], per_class=5)
    main = train_program.main
    assert main(["--dataset", str(root), "--epochs", "1", "--batch_size", "500", "--val_split", "0.2",
                 "--save", str(tmp_path / "m.npz")]) == 0
    captured = capsys.readouterr()
    assert "warning: --batch_size 500 is larger than the 8 training images; using 8" in captured.err
    assert "batch 8" in captured.out


def test_resume_from_another_architecture_fails_in_one_line(tmp_path, capsys):
    gray = make_folder(tmp_path / "gray", ["a", "b"], per_class=4, mode="L")
    # Three classes: with the checkpoint's channel count, the output layer still differs, which
    # is said as the classes that differ.
    color = make_folder(tmp_path / "color", ["a", "b", "c"], per_class=4, mode="RGB")
    main = train_program.main
    assert main(["--dataset", str(gray), "--epochs", "1", "--save", str(tmp_path / "gray.npz")]) == 0
    capsys.readouterr()
    expect_error(capsys, main, ["--dataset", str(color), "--epochs", "1", "--batch_size", "4", "--resume",
                                str(tmp_path / "gray.npz")],
                 f"was trained on {gray} with --channels 1, and the images of {color} give 3: resume with --dataset {gray}")
    expect_error(capsys, main, ["--dataset", str(color), "--epochs", "1", "--batch_size", "4", "--channels", "1",
                                "--resume", str(tmp_path / "gray.npz")],
                 "gray.npz was trained on 2 classes, this dataset has 3 (the model lacks 'c'): its last layer")


@pytest.mark.parametrize("changed, difference", [
    (["--seed", "5"], "(--seed 0 there, 5 now)"), (["--val_split", "0.5"], "(--val_split 0.1 there, 0.5 now)"),
    (["--limit", "4"], "(--limit none there, 4 now)"), (["added"], "(1 file added)")])
def test_resume_on_another_split_of_the_images_fails_in_one_line(tmp_path, capsys, changed, difference):
    # Trained on other images than before, the run would learn its validation images.
    folder = make_folder(tmp_path / "data", ["circle", "square"], per_class=6)
    assert train(folder, tmp_path / "m.npz", "--epochs", "1") == 0
    capsys.readouterr()
    if changed == ["added"]:
        write_image(folder / "circle" / "new.png")
        changed = []
    before = (tmp_path / "m_last.npz").read_bytes()
    expect_error(capsys, train_program.main, ["--dataset", str(folder), "--batch_size", "4", "--save",
                                              str(tmp_path / "m.npz"), "--epochs", "2", *changed, "--resume",
                                              str(tmp_path / "m_last.npz")],
                 f"was trained on another split of the images {difference}")
    assert (tmp_path / "m_last.npz").read_bytes() == before


@pytest.mark.parametrize("change, what", [("added", "3 classes, this dataset has 4 (the model lacks 'extra')"),
                                          ("removed", "3 classes, this dataset has 2 (the dataset lacks 'square')")])
def test_resume_on_another_number_of_classes_says_so(tmp_path, capsys, change, what):
    """A class folder added or removed since: the line was "a different architecture: layer 10 is
    Linear(..., out_dim=3) in the file but Linear(..., out_dim=4) in this net"."""
    folder = make_folder(tmp_path / "data", ["circle", "square", "triangle"], per_class=4)
    assert train(folder, tmp_path / "m.npz", "--epochs", "1") == 0
    capsys.readouterr()
    if change == "added":
        shutil.copytree(folder / "circle", folder / "extra")
    else:
        shutil.rmtree(folder / "square")
    expect_error(capsys, train_program.main, ["--dataset", str(folder), "--save", str(tmp_path / "m.npz"),
                                              "--epochs", "2", "--resume", str(tmp_path / "m_last.npz")],
                 f"m_last.npz was trained on {what}: its last layer has one output per class, so it cannot "
                 "continue on another number of classes; start a new run, or resume on the images it was "
                 "trained on")


def test_resume_on_another_folder_of_like_images_names_the_folder_the_run_trained_on(tmp_path, capsys):
    """The same classes and sizes elsewhere: the split differs because the folder does, so the line
    says which folder to resume with, not which options to change."""
    first = make_folder(tmp_path / "first", ["circle", "square"], per_class=6)
    other = make_folder(tmp_path / "other", ["circle", "square"], per_class=7)
    assert train(first, tmp_path / "m.npz", "--epochs", "1") == 0
    capsys.readouterr()
    expect_error(capsys, train_program.main, ["--dataset", str(other), "--batch_size", "4", "--save",
                                              str(tmp_path / "m.npz"), "--epochs", "2", "--resume",
                                              str(tmp_path / "m_last.npz")],
                 f"m_last.npz was trained on the images of {first}, and {other} splits otherwise (2 files added): "
                 f"resume with --dataset {first}")
    # Another --seed on a copy of the same images: the seed, not the folder, is what differs.
    shutil.copytree(first, tmp_path / "copy")
    expect_error(capsys, train_program.main, ["--dataset", str(tmp_path / "copy"), "--batch_size", "4", "--save",
                                              str(tmp_path / "m.npz"), "--epochs", "2", "--seed", "1", "--resume",
                                              str(tmp_path / "m_last.npz")],
                 "was trained on another split of the images (--seed 0 there, 1 now)")


def test_resume_on_another_split_names_only_the_options_the_checkpoint_does_not_record(tmp_path, capsys):
    """Older checkpoints record the seed but not --val_split or --limit: the seed is the same, so
    the line names those two only."""
    folder = make_folder(tmp_path / "data", ["circle", "square"], per_class=6)
    assert train(folder, tmp_path / "m.npz", "--epochs", "1") == 0
    capsys.readouterr()
    last = tmp_path / "m_last.npz"
    rewrite_checkpoint(last, lambda meta: (meta["extra"].pop("val_split"), meta["extra"].pop("limit")))
    expect_error(capsys, train_program.main, ["--dataset", str(folder), "--batch_size", "4", "--save",
                                              str(tmp_path / "m.npz"), "--epochs", "2", "--val_split", "0.5",
                                              "--resume", str(last)],
                 "was trained on another split of the images (another --val_split or --limit, which it does "
                 "not record)")


@pytest.mark.parametrize("option, value, saved", [("--image_size", "20", "24x24"), ("--resize", "stretch", "crop"),
                                                  ("--channels", "3", "1")])
def test_resume_with_other_preprocessing_is_refused_before_the_dataset_loads(tmp_path, capsys, option, value,
                                                                             saved):
    folder = make_folder(tmp_path / "data", ["a", "b"], per_class=4, size=(30, 30))
    assert train(folder, tmp_path / "m.npz", "--epochs", "1", "--image_size", "24", "--model", "resnet") == 0
    capsys.readouterr()
    before = (tmp_path / "m_last.npz").read_bytes()
    # The dataset is missing: the refusal must come before it is looked at.
    expect_error(capsys, train_program.main, ["--dataset", str(tmp_path / "nowhere"), "--save", str(tmp_path / "m.npz"),
                                              "--epochs", "2", option, value, "--resume", str(tmp_path / "m_last.npz")],
                 f"m_last.npz was trained with {option} {saved}; it cannot continue with {option} ")
    assert (tmp_path / "m_last.npz").read_bytes() == before


def test_resume_keeps_the_preprocessing_of_the_run(tmp_path, capsys):
    folder = make_folder(tmp_path / "data", ["a", "b"], per_class=4, size=(30, 30))
    assert train(folder, tmp_path / "m.npz", "--epochs", "1", "--image_size", "24", "--resize", "stretch") == 0
    capsys.readouterr()
    # Without --image_size the images' own size (30x30) would not fit the reference CNN saved for 24x24.
    assert train(folder, tmp_path / "m.npz", "--epochs", "2", "--resume", tmp_path / "m_last.npz") == 0
    assert "24x24" in capsys.readouterr().out
    from nnfs.checkpoint import metadata
    assert metadata(tmp_path / "m_last.npz")["preprocessing"]["resize"] == "stretch"



def test_resume_without_batch_size_continues_with_the_batch_of_the_run(tmp_path, capsys):
    """--resume left --batch_size to its default (32): a run of batch 3 went on with other steps
    than an uninterrupted one, without a word. Given, a batch size applies from the next epoch."""
    data = dataset(tmp_path, per_class=8)
    options = ["--dataset", data, "--epochs", "2"]
    code, _, err = call(train_program.main, [*options, "--batch_size", "3", "--save", tmp_path / "whole" / "m.npz"],
                        capsys)
    assert code == 0, err
    code, _, err = call(train_program.main, [*options, "--epochs", "1", "--batch_size", "3", "--save",
                                             tmp_path / "runs" / "m.npz"], capsys)
    assert code == 0, err
    code, out, err = call(train_program.main, [*options, "--resume", tmp_path / "runs" / "m_last.npz"], capsys)
    assert code == 0, err
    assert ", batch 3" in out
    csv = "m_metrics.csv"
    assert (tmp_path / "runs" / csv).read_text() == (tmp_path / "whole" / csv).read_text()
    code, out, err = call(train_program.main, [*options, "--epochs", "3", "--batch_size", "2", "--resume",
                                               tmp_path / "runs" / "m_last.npz"], capsys)
    assert code == 0 and ", batch 2" in out, err


def test_resume_without_epochs_or_split_options_continues_the_run_as_planned(tmp_path, capsys):
    """--resume left --epochs to the recipe's default (10): a run of 3 epochs resumed after its
    first trained 9 more, and one of 12 stopped at 10. --limit, --seed and --val_split left out
    were refused as another split, though only the run's could continue it."""
    data = dataset(tmp_path, per_class=8)
    split = ["--limit", "14", "--seed", "3", "--val_split", "0.25", "--batch_size", "4"]
    whole, runs = tmp_path / "whole" / "m.npz", tmp_path / "runs" / "m.npz"
    code, _, err = call(train_program.main, ["--dataset", data, "--epochs", "3", *split, "--save", whole], capsys)
    assert code == 0, err
    code, _, err = call(train_program.main, ["--dataset", data, "--epochs", "3", *split, "--save", runs], capsys)
    assert code == 0, err
    # The run stopped after its first epoch: its latest state then.
    shutil.copy(tmp_path / "runs" / "m_last.npz", tmp_path / "epoch3.npz")
    code, _, err = call(train_program.main, ["--dataset", data, "--epochs", "1", *split, "--save",
                                             tmp_path / "once" / "m.npz"], capsys)
    assert code == 0, err
    rewrite_checkpoint(tmp_path / "once" / "m_last.npz", lambda meta: meta["extra"]["run"].update(epochs=3))
    code, out, err = call(train_program.main, ["--dataset", data, "--resume", tmp_path / "once" / "m_last.npz"],
                          capsys)
    assert code == 0, err
    assert "epoch  3/3" in out and "epoch  4/" not in out
    assert (tmp_path / "once" / "m_metrics.csv").read_text() == (tmp_path / "whole" / "m_metrics.csv").read_text()
    code, out, err = call(train_program.main, ["--dataset", data, "--resume", tmp_path / "epoch3.npz", "--save",
                                               tmp_path / "again" / "m.npz"], capsys)
    assert code == 0, err
    assert "already holds epoch 3, the last of the 3 its run planned" in out
    # Given, they still win: another split is refused.
    expect_error(capsys, train_program.main, ["--dataset", str(data), "--seed", "4", "--resume",
                                              str(tmp_path / "epoch3.npz")],
                 "was trained on another split of the images (--seed 3 there, 4 now)")


def test_a_resume_in_another_dtype_says_its_numbers_are_not_the_uninterrupted_runs(tmp_path, capsys, monkeypatch):
    """A float64 run resumed without NNFS_DTYPE=float64 went on in float32 (the weights cast on
    loading) without a word."""
    data = dataset(tmp_path, per_class=4)
    monkeypatch.setenv("NNFS_DTYPE", "float64")
    code, _, err = call(train_program.main, ["--dataset", data, "--epochs", "1", "--batch_size", "4", "--save",
                                             tmp_path / "m.npz"], capsys)
    assert code == 0, err
    monkeypatch.delenv("NNFS_DTYPE")
    shutil.copy(tmp_path / "m_last.npz", tmp_path / "wide_last.npz")
    code, _, err = call(train_program.main, ["--dataset", data, "--epochs", "2", "--resume", tmp_path / "m_last.npz"],
                        capsys)
    assert code == 0, err
    assert err == (f"warning: {tmp_path / 'm_last.npz'} was trained in float64 and resumes in float32 (NNFS_DTYPE): "
                   "the numbers differ from an uninterrupted run's (resume with NNFS_DTYPE=float64 to continue "
                   "exactly)\n")
    monkeypatch.setenv("NNFS_DTYPE", "float64")
    code, _, err = call(train_program.main, ["--dataset", data, "--epochs", "2", "--resume", tmp_path / "wide_last.npz",
                                             "--save", tmp_path / "wide" / "m.npz"], capsys)
    assert code == 0 and err == "", err


def test_a_resume_on_another_number_of_ranks_says_its_numbers_are_not_the_uninterrupted_runs(tmp_path, capsys):
    """The global batch is the same, but BatchNorm normalises each rank's share: a run of 2 ranks
    resumed as one process (or the reverse) went on with other numbers, without a word."""
    data = dataset(tmp_path, per_class=4)
    options = ["--dataset", data, "--epochs", "1", "--batch_size", "4", "--save", tmp_path / "m.npz"]
    code, _, err = call(train_program.main, options, capsys)
    assert code == 0, err
    from nnfs.checkpoint import metadata
    assert metadata(tmp_path / "m_last.npz")["extra"]["ranks"] == 1
    resume = ["--dataset", data, "--epochs", "2", "--resume", tmp_path / "m_last.npz"]
    rewrite_checkpoint(tmp_path / "m_last.npz", lambda meta: meta["extra"].update(ranks=2))
    code, _, err = call(train_program.main, resume, capsys)
    assert code == 0, err
    assert err == (f"warning: {tmp_path / 'm_last.npz'} was trained on 2 ranks and resumes on 1: each rank's "
                   "BatchNorm normalises its own share of the global batch, so the numbers differ from an "
                   "uninterrupted run's (resume on 2 ranks to continue exactly)\n")
    code, _, err = call(train_program.main, [*resume[:3], "3", *resume[4:]], capsys)  # on 1 rank again: silent
    assert code == 0 and err == "", err


def test_a_resume_on_images_changed_since_keeps_the_normalisation_its_weights_were_trained_with(tmp_path, capsys):
    """The same names, other pixels: the statistics refitted on them would feed the resumed
    weights other inputs than they were trained on, silently."""
    from nnfs.checkpoint import metadata

    folder = make_folder(tmp_path / "data", ["a", "b"], per_class=4)
    assert train(folder, tmp_path / "m.npz", "--epochs", "1") == 0
    saved = metadata(tmp_path / "m_last.npz")["preprocessing"]
    for image in (folder / "a").iterdir():
        write_image(image, value=255)
    capsys.readouterr()
    code, out, err = call(train_program.main, ["--dataset", folder, "--batch_size", "4", "--save", tmp_path / "m.npz",
                                               "--epochs", "2", "--resume", tmp_path / "m_last.npz"], capsys)
    assert code == 0, err
    assert f"warning: the training images of {folder} are not those {tmp_path / 'm_last.npz'} was trained on" in err
    assert metadata(tmp_path / "m_last.npz")["preprocessing"] == saved

def test_a_resume_reads_the_dataset_from_the_cache_of_the_run(tmp_path, capsys):
    """The resumed run asks for what the run asked for (the data's own size), not for the size it
    got: the same request, the same cache entry; nothing is decoded again."""
    folder = make_folder(tmp_path / "data", ["a", "b"], per_class=4, size=(30, 30))
    cache = tmp_path / "cache"
    assert train(folder, tmp_path / "m.npz", "--epochs", "1", "--cache", cache) == 0
    assert "8 images decoded" in capsys.readouterr().out
    assert train(folder, tmp_path / "m.npz", "--epochs", "2", "--cache", cache, "--resume", tmp_path / "m_last.npz") == 0
    assert "8 images read from the cache" in capsys.readouterr().out
    assert len(list(cache.glob("*.nnfs-cache"))) == 1


def test_a_resume_checks_the_record_of_its_checkpoint_once(tmp_path, capsys, monkeypatch):
    folder = make_folder(tmp_path / "data", ["a", "b"], per_class=4)
    assert train(folder, tmp_path / "m.npz", "--epochs", "1") == 0
    checked = []
    real = resumed.check_extra
    for module in (resumed, report):  # the record before the dataset loads, the best model at the end
        monkeypatch.setattr(module, "check_extra", lambda path, *rest: checked.append(str(path)) or real(path, *rest))
    assert train(folder, tmp_path / "m.npz", "--epochs", "2", "--resume", tmp_path / "m_last.npz") == 0
    assert checked.count(str(tmp_path / "m_last.npz")) == 1, checked


def test_a_resume_on_images_that_now_give_another_size_is_refused(tmp_path, capsys):
    folder = make_folder(tmp_path / "data", ["a", "b"], per_class=4, size=(30, 30))
    assert train(folder, tmp_path / "m.npz", "--epochs", "1", "--model", "resnet") == 0
    capsys.readouterr()
    make_folder(tmp_path / "data", ["a", "b"], per_class=4, size=(24, 24))  # the same files, now smaller
    before = (tmp_path / "m_last.npz").read_bytes()
    expect_error(capsys, train_program.main, ["--dataset", str(folder), "--save", str(tmp_path / "m.npz"),
                                              "--epochs", "2", "--resume", str(tmp_path / "m_last.npz")],
                 f"m_last.npz was trained with --image_size 30x30, and the images of {folder} now give 24x24: "
                 "resume with --image_size 30x30")
    assert (tmp_path / "m_last.npz").read_bytes() == before


def test_a_resume_on_another_datasets_images_names_the_run_s_own_dataset(tmp_path, capsys):
    # "resume with --image_size 8x8" only led to the next refusal: the folder is another one.
    folder = make_folder(tmp_path / "data", ["a", "b"], per_class=4, size=(30, 30))
    other = make_folder(tmp_path / "other", ["c", "d"], per_class=4, size=(24, 24))
    assert train(folder, tmp_path / "m.npz", "--epochs", "1") == 0
    capsys.readouterr()
    expect_error(capsys, train_program.main, ["--dataset", str(other), "--save", str(tmp_path / "m.npz"),
                                              "--epochs", "2", "--resume", str(tmp_path / "m_last.npz")],
                 f"m_last.npz was trained on {folder} with --image_size 30x30, and the images of {other} give "
                 f"24x24: resume with --dataset {folder} (or, for another copy of those images, --image_size 30x30)")


def test_optimizer_flags_given_with_resume_are_said_to_be_unused(tmp_path, capsys):
    folder = make_folder(tmp_path / "data", ["a", "b"], per_class=4)
    assert train(folder, tmp_path / "m.npz", "--epochs", "1") == 0
    capsys.readouterr()
    assert train(folder, tmp_path / "m.npz", "--epochs", "2", "--optimizer", "adam", "--lr", "0.5",
                 "--resume", tmp_path / "m_last.npz") == 0
    captured = capsys.readouterr()
    warnings = [line for line in captured.err.splitlines() if "not used" in line]
    assert warnings == [f"warning: --optimizer adam --lr 0.5 not used: {tmp_path / 'm_last.npz'} continues with "
                        "its saved optimizer, schedule and augmentation (SGD(lr=0.01, momentum=0.9, nesterov=False, "
                        "weight_decay=0); augmentation none); start a new run to change them"], captured.err
    assert "SGD(lr=0.01" in captured.out


def test_augment_given_with_resume_is_said_unused_and_the_line_shows_what_runs(tmp_path, capsys):
    """The saved run's augmentation is part of the exact resume: --augment is not used, and the
    line about augmentation says what the resumed run does, not what was asked."""
    folder = make_folder(tmp_path / "data", ["a", "b"], per_class=4)
    assert train(folder, tmp_path / "m.npz", "--epochs", "1", "--augment", "flip") == 0
    capsys.readouterr()
    assert train(folder, tmp_path / "m.npz", "--epochs", "2", "--augment", "crop,jitter",
                 "--resume", tmp_path / "m_last.npz") == 0
    captured = capsys.readouterr()
    assert [line for line in captured.err.splitlines() if "not used" in line] == [
        f"warning: --augment crop,jitter not used: {tmp_path / 'm_last.npz'} continues with its saved optimizer, "
        "schedule and augmentation (SGD(lr=0.01, momentum=0.9, nesterov=False, weight_decay=0); "
        "augmentation flip); start a new run to change them"], captured.err
    assert "augmentation of the training images: flip (as the resumed run did;" in captured.out


def test_an_unwritable_checkpoint_path_fails_in_one_line(tmp_path, capsys):
    root = make_folder(tmp_path / "data", ["a", "b"], per_class=4)
    blocker = tmp_path / "file"
    blocker.write_text("a file where a folder is needed")
    main = train_program.main
    expect_error(capsys, main, ["--dataset", str(root), "--epochs", "1", "--batch_size", "4",
                                "--save", str(blocker / "m.npz")], "error: ")


def test_resume_continues_exactly_where_the_run_stopped(tmp_path, folder, capsys):
    np = pytest.importorskip("numpy")
    options = ["--optimizer", "sgd", "--momentum", "0.9", "--lr", "0.02", "--seed", "3"]
    assert train(folder, tmp_path / "whole" / "m.npz", "--epochs", "3", *options) == 0
    whole = capsys.readouterr().out
    assert train(folder, tmp_path / "part" / "m.npz", "--epochs", "1", *options) == 0
    capsys.readouterr()
    assert train(folder, tmp_path / "part" / "m.npz", "--epochs", "3", *options,
                 "--resume", tmp_path / "part" / "m_last.npz") == 0
    resumed = capsys.readouterr().out
    assert "resuming" in resumed and "after epoch 1" in resumed

    def epoch_lines(text):  # the numbers, without the timings
        return [line.split("  ")[:4] for line in text.splitlines() if line.startswith("epoch ")]

    assert epoch_lines(resumed) == epoch_lines(whole)[1:]
    a, b = np.load(tmp_path / "whole" / "m_last.npz"), np.load(tmp_path / "part" / "m_last.npz")
    arrays = [k for k in a.files if k.startswith(("net/", "optimizer/"))]
    assert any(k.startswith("optimizer/") for k in arrays)  # momentum buffers were saved
    for key in arrays:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def test_resume_with_dropout_continues_exactly_where_the_run_stopped(tmp_path, folder, capsys, monkeypatch):
    """The masks too: the latest state records where each Dropout's stream stands."""
    np = pytest.importorskip("numpy")
    from nnfs.app import models
    from nnfs.layers import Dropout
    from nnfs.net import Net

    def cnn_with_dropout(*args, **kwargs):
        net = models.reference_cnn(*args, **kwargs)
        return Net([*net.layers[:-1], Dropout(0.5), net.layers[-1]], net.loss_fn)

    monkeypatch.setitem(models.MODELS, "cnn", cnn_with_dropout)
    options = ["--model", "cnn", "--optimizer", "sgd", "--momentum", "0.9", "--lr", "0.02", "--seed", "3"]
    assert train(folder, tmp_path / "whole" / "m.npz", "--epochs", "4", *options) == 0
    assert train(folder, tmp_path / "part" / "m.npz", "--epochs", "2", *options) == 0
    assert train(folder, tmp_path / "part" / "m.npz", "--epochs", "4", *options,
                 "--resume", tmp_path / "part" / "m_last.npz") == 0
    assert "after epoch 2" in capsys.readouterr().out
    a, b = np.load(tmp_path / "whole" / "m_last.npz"), np.load(tmp_path / "part" / "m_last.npz")
    assert "Dropout" in a["meta"].tobytes().decode()
    for key in [k for k in a.files if k.startswith(("net/", "optimizer/"))]:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


@pytest.mark.parametrize("optimizer", ["adam", "adamw"])
def test_adam_with_a_schedule_and_warm_up_trains(tmp_path, folder, capsys, optimizer):
    assert train(folder, tmp_path / "m.npz", "--epochs", "3", "--optimizer", optimizer,
                 "--schedule", "cosine", "--warmup_epochs", "1", "--weight_decay", "1e-4") == 0
    out = capsys.readouterr().out
    assert "CosineAnnealingLR" in out and ("AdamW(" if optimizer == "adamw" else "Adam(") in out
    assert out.count("epoch ") >= 3


@pytest.mark.parametrize("flags, message", [
    (["--optimizer", "adam", "--momentum", "0.9"], "--momentum applies to --optimizer sgd only"),
    (["--epochs", "2", "--warmup_epochs", "2"], "--warmup_epochs (2) must be less than --epochs (2)"),
    (["--schedule", "linear"], "invalid choice"),
])
def test_bad_optimizer_flags_fail_in_one_line(tmp_path, folder, capsys, flags, message):
    with pytest.raises(SystemExit) as exit_info:
        train(folder, tmp_path / "m.npz", *flags)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("variable, value, message", [
    ("NNFS_BACKEND", "tpu", "error: unknown nnfs backend 'tpu'"),
    ("NNFS_DTYPE", "float16", "error: unknown dtype 'float16'"),
    ("NNFS_MEMORY_LIMIT", "lots", "error: environment variable NNFS_MEMORY_LIMIT: expected a number of bytes"),
    ("NNFS_KEEP_FREED_MEMORY", "bogus", "error: environment variable NNFS_KEEP_FREED_MEMORY: expected 0 or 1"),
])
def test_a_bad_environment_variable_fails_in_one_line(variable, value, message):
    expect_one_line_failure(run_example("CNN_custom_dataset", "--epochs", "1", **{variable: value}), message)


# -- data-parallel runs ---------------------------------------------------------------------------------

def test_example_asked_for_distributed_without_mpi4py_says_what_to_install(tmp_path):
    code = ("import runpy, sys; sys.modules['mpi4py'] = None; "
            f"sys.argv = ['CNN_custom_dataset.py', '--distributed', '--save', {str(tmp_path / 'm.npz')!r}]; "
            f"runpy.run_path({str(ROOT / 'examples' / 'CNN_custom_dataset.py')!r}, run_name='__main__')")
    result = subprocess.run([sys.executable, "-c", code], env=environment(), capture_output=True, text=True,
                            timeout=60, stdin=subprocess.DEVNULL)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1 and "mpi4py is not installed" in result.stderr
    assert not (tmp_path / "m.npz").exists()


@pytest.mark.mpi
def test_example_trains_on_two_ranks_and_reports_whole_validation_metrics(tmp_path):
    """The example under mpiexec: rank 0 alone prints and saves; the validation metrics it
    reports (each batch split across the ranks, then summed) are those of the saved model
    evaluated on the whole validation set in one process."""
    from nnfs.app.loop import evaluate
    from nnfs.checkpoint import load
    from nnfs.data import DataLoader, ImageFolder, Preprocessing, stratified_split

    if importlib.util.find_spec("mpi4py") is None or shutil.which("mpiexec") is None:
        pytest.skip("mpi4py or mpiexec is missing (pip install -e '.[mpi]')")
    digits = ROOT / "data" / "digits"
    ckpt = tmp_path / "cnn.npz"
    env = environment(OMP_NUM_THREADS="1", NNFS_BACKEND=None)
    command = [shutil.which("mpiexec"), "-n", "2", sys.executable,
               str(ROOT / "examples" / "CNN_custom_dataset.py"), "--dataset", str(digits),
               "--limit", "12", "--epochs", "2", "--batch_size", "15", "--save", str(ckpt)]
    result = subprocess.run(command, env=env, cwd=tmp_path, stdin=subprocess.DEVNULL,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    lines = result.stdout.splitlines()
    assert sum(line.startswith("dataset ") for line in lines) == 1  # printed by rank 0 only
    assert sum(line.startswith("epoch ") for line in lines) == 2
    assert "batch 15 (7 or 8 per rank on 2 ranks, host transport)" in result.stdout
    assert ckpt.exists() and (tmp_path / "cnn_curves.png").exists()

    saved = load(ckpt, backend="numpy")
    data = ImageFolder(digits, limit=12)
    _, val_idx = stratified_split(data.labels, 0.1, seed=0)
    val = DataLoader(data.images, data.labels, val_idx, 256, Preprocessing.from_config(saved.preprocessing))
    check = evaluate(saved.net, val)
    assert check.samples == len(val_idx) == 10
    assert check.accuracy == saved.extra["val_accuracy"]
    epoch = saved.extra["epoch"]
    assert check.loss == pytest.approx(saved.extra["run"]["history"]["val_loss"][epoch - 1], rel=1e-5)


def test_a_rank_that_writes_nothing_does_not_claim_no_file_was_written():
    """In a data-parallel run only rank 0 writes: another rank's line must not say 'this run
    wrote no file' when rank 0 wrote four."""
    record = train_program.RunProgress()
    record.writer = False
    assert record.kept() == "rank 0 writes this run's files; those of the epochs it finished are kept"
    record.writer = True
    assert record.kept() == "this run wrote no file"


@pytest.mark.parametrize("given", ["--threads", "NNFS_NUM_THREADS"])
def test_more_threads_than_cores_are_used_after_one_warning(tmp_path, capsys, monkeypatch, given):
    """More threads than the cores this process may use only wait for each other: said once, in
    one line naming the option, and the run goes on with them (the user may know better)."""
    import nnfs.parallel
    from nnfs.backend import default_backend

    monkeypatch.setattr(nnfs.parallel, "available_cores", lambda: 2)
    monkeypatch.delenv("NNFS_NUM_THREADS", raising=False)
    argv = ["--threads", "3"] if given == "--threads" else []
    if given == "NNFS_NUM_THREADS":
        monkeypatch.setenv("NNFS_NUM_THREADS", "3")
        monkeypatch.setattr(nnfs.parallel, "_threads", None)
    code, out, err = call(train_program.main, ["--dataset", dataset(tmp_path), "--epochs", "1", "--batch_size",
                                               "4", "--save", tmp_path / "m.npz", *argv], capsys)
    assert code == 0, err
    warnings = [line for line in err.splitlines() if "threads" in line]
    if default_backend().is_device:  # the strict stand-in for a GPU: no CPU threads to warn about
        assert warnings == []
        return
    assert warnings == [f"warning: {given} 3 is more than the 2 CPU cores this process may use; training on "
                        "3 threads anyway, which wait for each other (--threads 2 uses every core)"]
    assert "on 3 CPU thread(s)" in out
    code, _, err = call(train_program.main, ["--dataset", tmp_path / "data", "--epochs", "1", "--batch_size", "4",
                                             "--save", tmp_path / "n.npz", "--threads", "2"], capsys)
    assert code == 0 and "more than" not in err, err


def test_ranks_that_read_different_images_are_refused():
    """Data parallel needs the same images on every rank: a rank with another folder or other
    files would train on its own data (silently where the counts agree)."""
    from types import SimpleNamespace

    from nnfs.data import DatasetError

    class TwoRanks:  # the other rank's value is given; sum_host adds this rank's to it
        size = 2

        def __init__(self, other):
            self.other = other

        def sum_host(self, values):
            return [float(mine + theirs) for mine, theirs in zip(values, self.other)]

    data = SimpleNamespace(class_names=["a", "b"], image_size=(8, 8), channels=1)
    split = {"train": ["a/0.png", "b/0.png"], "val": ["a/1.png", "b/1.png"]}
    args = SimpleNamespace(dataset="ds")
    record = train_program.json.dumps([split, data.class_names, [8, 8], 1], sort_keys=True)
    same = int(hashlib.sha256(record.encode()).hexdigest()[:5], 16)
    train_program.check_same_data(TwoRanks([same, same * same]), args, data, split)  # agrees: no error
    with pytest.raises(DatasetError, match=r"the 2 ranks did not read the same images from ds"):
        train_program.check_same_data(TwoRanks([same + 1, (same + 1) ** 2]), args, data, split)


def test_ranks_that_would_train_differently_are_refused_naming_what_differs():
    """Another --epochs on one rank left the others waiting forever, another --batch_size or
    NNFS_DTYPE failed inside MPI (status 142), another --lr or optimizer moved the replicas
    apart without a word: every rank compares what it will train with, in one collective."""
    from types import SimpleNamespace

    from nnfs.activations import ReLU
    from nnfs.app.resume import RunState
    from nnfs.layers import Linear
    from nnfs.losses import CrossEntropyLoss
    from nnfs.net import Net
    from nnfs.optim import SGD, Adam

    def training(optimizer=SGD, batch_size=4, epochs=3, passes=0, **config):
        net = Net([Linear(4, 8), ReLU(), Linear(8, 2)], CrossEntropyLoss())
        loader = {"seed": 0, "passes": passes, "augment": None}
        args = SimpleNamespace(epochs=epochs)
        return args, SimpleNamespace(optimizer=optimizer(net, **{"lr": 0.01, **config}), state=RunState(epochs=epochs),
                                     train=SimpleNamespace(state_dict=lambda: loader), batch_size=batch_size,
                                     model="cnn", net=net)

    class TwoRanks:  # the other rank's values are given; sum_host adds this rank's to them
        size = 2

        def __init__(self, other):
            self.other = other

        def sum_host(self, values):
            assert len(values) == len(self.other)  # one collective of one length, whatever differs
            return [float(mine + theirs) for mine, theirs in zip(values, self.other)]

    class Alone:  # records what a rank hands to the sum: the other rank's values
        size = 1

        def sum_host(self, values):
            self.values = values
            return [0.0] * len(values)

    def other_rank(**changes):
        alone = Alone()
        dist.differ_between_ranks(alone, list(train_program.same_training_fields(*training(**changes)).values()))
        return TwoRanks(alone.values)

    train_program.check_same_training(other_rank(), *training())  # agrees: no error
    for changes, named in [({"epochs": 4}, "--epochs"), ({"batch_size": 2}, "--batch_size"),
                           ({"lr": 0.02}, "--lr"), ({"momentum": 0.5}, "--momentum"),
                           ({"passes": 1}, "--resume"), ({"optimizer": Adam}, "--optimizer, --momentum")]:
        with pytest.raises(train_program.RanksDiffer, match=rf"the 2 ranks were not given the same {named} "):
            train_program.check_same_training(other_rank(**changes), *training())


@pytest.mark.parametrize("resumed", ["m_last.npz", "m.npz"])
def test_resume_without_save_writes_the_resumed_runs_files_not_the_default_ones(tmp_path, capsys, monkeypatch,
                                                                                resumed):
    """``runs/cnn.npz`` may hold another run's model: a resumed run without --save writes beside
    the checkpoint it continues, and a checkpoint of weights only starts a new run with the defaults."""
    import nnfs
    from nnfs.checkpoint import metadata, save

    monkeypatch.chdir(tmp_path)
    other = make_folder(tmp_path / "other", ["x", "y"], per_class=4)
    folder = make_folder(tmp_path / "data", ["circle", "square"], per_class=6)
    main = train_program.main
    assert main(["--dataset", str(other), "--epochs", "1", "--batch_size", "4"]) == 0  # runs/cnn.npz
    assert train(folder, tmp_path / "b" / "m.npz", "--epochs", "1") == 0
    theirs = (tmp_path / "runs" / "cnn.npz").read_bytes(), (tmp_path / "runs" / "cnn_last.npz").read_bytes()
    capsys.readouterr()
    assert main(["--dataset", str(folder), "--epochs", "2", "--batch_size", "4",
                 "--resume", str(tmp_path / "b" / resumed)]) == 0
    out = capsys.readouterr().out
    assert ((tmp_path / "runs" / "cnn.npz").read_bytes(), (tmp_path / "runs" / "cnn_last.npz").read_bytes()) == theirs
    assert metadata(tmp_path / "b" / "m_last.npz")["extra"]["epoch"] == 2
    assert f"latest state to {tmp_path / 'b' / 'm_last.npz'}" in out
    assert "runs" not in out.splitlines()[-1]

    # Weights only: a new run from them, whose best epoch must not replace the model it started from.
    net = train_program.build_model("cnn", 3, (12, 12), 2)
    nnfs.seed(0)
    save(tmp_path / "weights.npz", net, class_names=["circle", "square"])
    before = (tmp_path / "weights.npz").read_bytes()
    capsys.readouterr()
    assert main(["--dataset", str(folder), "--epochs", "1", "--batch_size", "4", "--image_size", "12",
                 "--channels", "3", "--resume", str(tmp_path / "weights.npz")]) == 0
    assert (tmp_path / "weights.npz").read_bytes() == before
    assert f"model saved to {pathlib.Path('runs', 'cnn.npz')}" in capsys.readouterr().out


def test_a_new_run_over_an_earlier_runs_model_keeps_it_aside_and_says_so_first(tmp_path, capsys):
    """The user named the file, so this run's model goes there, but the earlier run's model and
    latest state are kept beside it, byte for byte, under the first free name; the line before
    the first epoch says what that model scored and where it goes; a resumed run's own files
    are its own."""
    folder = make_folder(tmp_path / "data", ["circle", "square"], per_class=6)
    save = tmp_path / "m.npz"
    assert train(folder, save, "--epochs", "1") == 0
    assert "holds the model of an earlier run" not in capsys.readouterr().err
    first = (save.read_bytes(), (tmp_path / "m_last.npz").read_bytes())
    assert train(folder, save, "--epochs", "1", "--lr", "0.02") == 0
    out, err = capsys.readouterr()
    line = [line for line in err.splitlines() if "earlier run" in line]
    assert len(line) == 1 and line[0].startswith(f"warning: {save} holds the model of an earlier run (val accuracy ")
    assert line[0].endswith(f"% at epoch 1); this run's best epoch replaces it (kept as {tmp_path / 'm.earlier.npz'}), "
                            f"and its first epoch {tmp_path / 'm_last.npz'}, that run's latest state (kept as "
                            f"{tmp_path / 'm_last.earlier.npz'})")
    assert f"the earlier run's model {save} is kept as {tmp_path / 'm.earlier.npz'}" in out
    assert f"the earlier run's latest state {tmp_path / 'm_last.npz'} is kept as {tmp_path / 'm_last.earlier.npz'}" in out
    assert ((tmp_path / "m.earlier.npz").read_bytes(), (tmp_path / "m_last.earlier.npz").read_bytes()) == first
    assert save.read_bytes() != first[0]
    assert train(folder, save, "--epochs", "2", "--resume", str(tmp_path / "m_last.npz")) == 0
    assert "earlier run" not in capsys.readouterr().err
    assert not (tmp_path / "m.earlier-2.npz").exists()
    # A third run keeps the second's model under the next free name: the first's stays.
    second = save.read_bytes()
    assert train(folder, save, "--epochs", "1") == 0
    assert f"is kept as {tmp_path / 'm.earlier-2.npz'}" in capsys.readouterr().out
    assert ((tmp_path / "m.earlier.npz").read_bytes(), (tmp_path / "m.earlier-2.npz").read_bytes()) == (first[0], second)


def test_a_run_stopped_before_writing_over_an_earlier_runs_model_moves_nothing(tmp_path, capsys, monkeypatch):
    folder = make_folder(tmp_path / "data", ["circle", "square"], per_class=6)
    save = tmp_path / "m.npz"
    assert train(folder, save, "--epochs", "1") == 0
    before = save.read_bytes()

    def stop(*args, **kwargs):
        raise train_program.Interrupted(signal.SIGINT)

    monkeypatch.setattr(train_program, "train_epoch", stop)
    assert train(folder, save, "--epochs", "1") == 130
    assert save.read_bytes() == before and not list(tmp_path.glob("*.earlier*"))


def test_resuming_an_earlier_epoch_over_a_later_latest_state_is_refused(tmp_path, capsys):
    """Resuming the best epoch (1) would replace the latest state of epoch 3 with the new branch."""
    import json

    from nnfs.checkpoint import metadata

    folder = make_folder(tmp_path / "data", ["circle", "square"], per_class=6)
    save = tmp_path / "m.npz"
    assert train(folder, save, "--epochs", "2") == 0
    best, last = metadata(save)["extra"]["epoch"], metadata(tmp_path / "m_last.npz")["extra"]["epoch"]
    capsys.readouterr()
    if best == last:  # the second epoch improved: make the best file an earlier epoch's by hand
        import shutil
        assert train(folder, tmp_path / "e1.npz", "--epochs", "1") == 0
        shutil.copy(tmp_path / "e1.npz", save)
        capsys.readouterr()
    before = (tmp_path / "m_last.npz").read_bytes()
    for argv in ([], ["--save", str(save)]):
        code = train_program.main(["--dataset", str(folder), "--batch_size", "4", "--epochs", "3",
                                   "--resume", str(save), *argv])
        err = capsys.readouterr().err
        assert code == 2 and err.strip() == (
            f"error: --resume {save} continues from epoch 1, and its latest state {tmp_path / 'm_last.npz'} "
            f"(epoch 2) would be replaced: resume from {tmp_path / 'm_last.npz'}, or give --save another path "
            "for this run")
    assert (tmp_path / "m_last.npz").read_bytes() == before
    assert json.loads(json.dumps(metadata(tmp_path / "m_last.npz")["extra"]["epoch"])) == 2


def test_resume_of_a_run_saved_without_an_extension_writes_its_files(tmp_path, capsys):
    folder = make_folder(tmp_path / "data", ["circle", "square"], per_class=6)
    assert train(folder, tmp_path / "n", "--epochs", "1") == 0  # runs/n and runs/n_last.npz
    capsys.readouterr()
    assert train_program.main(["--dataset", str(folder), "--batch_size", "4", "--epochs", "2",
                               "--resume", str(tmp_path / "n_last.npz")]) == 0
    last_line = capsys.readouterr().out.strip().splitlines()[-1]
    assert f"{tmp_path / 'n'} " in last_line + " " and "n.npz" not in last_line
    assert not (tmp_path / "n.npz").exists()


def test_a_resumed_run_reports_its_own_best_model_not_another_runs_at_save(tmp_path, capsys):
    """--save naming another run's model: the per-class report is this run's best model's (the
    file this run wrote, or else the resumed run's best, found by its record), never that
    other model, and the warning says when the file would be replaced."""
    import re

    from nnfs.checkpoint import metadata

    folder = make_folder(tmp_path / "data", ["circle", "square"], per_class=6)
    assert train(folder, tmp_path / "a" / "m.npz", "--epochs", "1") == 0
    assert train(folder, tmp_path / "b" / "m.npz", "--epochs", "1", "--lr", "1e-9", "--seed", "1") == 0
    capsys.readouterr()
    best = metadata(tmp_path / "a" / "m.npz")["extra"]
    assert train(folder, tmp_path / "b" / "m.npz", "--epochs", "2",
                 "--resume", str(tmp_path / "a" / "m_last.npz")) == 0
    out, err = capsys.readouterr()
    assert f"an epoch of this run that beats its {100 * best['val_accuracy']:.2f}% replaces it" in err
    reported = re.search(r"\(best model, epoch (\d+)\):", out).group(1)
    accuracy = re.search(r"  accuracy ([\d.]+)% on", out).group(1)
    final = re.search(r"best val accuracy ([\d.]+)% \(epoch (\d+)\)", out)
    assert (float(accuracy), reported) == (float(final.group(1)), final.group(2))


def test_which_files_a_resumed_checkpoint_belongs_to(tmp_path):
    """A _last file: beside it; the best epoch's file: itself; a latest state under another name
    (a copy) or weights only: cannot be told (None: the defaults apply, and the copy is not
    written over with the best model)."""
    from nnfs.app.cli.outputs import resumed_run_files

    def meta(epoch, best_epoch):
        return {"optimizer": {}, "extra": {"epoch": epoch, "run": {"best_epoch": best_epoch}}}

    assert resumed_run_files(str(tmp_path / "m_last.npz"), meta(3, 1)) == str(tmp_path / "m.npz")
    assert resumed_run_files(str(tmp_path / "M_LAST.NPZ"), meta(3, 1)) == str(tmp_path / "M.NPZ")
    assert resumed_run_files(str(tmp_path / "m.npz"), meta(1, 1)) == str(tmp_path / "m.npz")
    assert resumed_run_files(str(tmp_path / "snapshot.npz"), meta(3, 1)) is None
    assert resumed_run_files(str(tmp_path / "m.npz"), {"extra": {"epoch": 1}}) is None
    (tmp_path / "n").write_bytes(b"")  # a --save without an extension
    assert resumed_run_files(str(tmp_path / "n_last.npz"), meta(2, 1)) == str(tmp_path / "n")


@pytest.mark.skipif(not hasattr(__import__("os"), "symlink"), reason="symbolic links")
def test_a_resume_through_a_link_writes_beside_the_file_it_points_to(tmp_path, capsys):
    from nnfs.checkpoint import metadata

    folder = make_folder(tmp_path / "data", ["circle", "square"], per_class=6)
    assert train(folder, tmp_path / "r" / "m.npz", "--epochs", "1") == 0
    (tmp_path / "links").mkdir()
    (tmp_path / "links" / "run_last.npz").symlink_to(tmp_path / "r" / "m_last.npz")
    assert train_program.main(["--dataset", str(folder), "--batch_size", "4", "--epochs", "2",
                               "--resume", str(tmp_path / "links" / "run_last.npz")]) == 0
    assert sorted(p.name for p in (tmp_path / "links").iterdir()) == ["run_last.npz"]
    assert metadata(tmp_path / "r" / "m_last.npz")["extra"]["epoch"] == 2
    assert len((tmp_path / "r" / "m_metrics.csv").read_text().splitlines()) == 3  # header and 2 epochs


def test_weights_only_at_the_save_path_are_refused_and_a_lone_latest_state_is_warned_about(tmp_path, capsys):
    import nnfs
    from nnfs.checkpoint import save

    folder = make_folder(tmp_path / "data", ["circle", "square"], per_class=6)
    nnfs.seed(0)
    save(tmp_path / "weights.npz", train_program.build_model("cnn", 3, (12, 12), 2), class_names=["circle", "square"])
    expect_error(capsys, train_program.main, ["--dataset", str(folder), "--image_size", "12", "--channels", "3",
                                              "--resume", str(tmp_path / "weights.npz"), "--save",
                                              str(tmp_path / "weights.npz")],
                 f"error: --resume {tmp_path / 'weights.npz'} holds weights only, so a new run starts from them, and "
                 "its best epoch would replace them: give --save another path", code=2)
    assert train(folder, tmp_path / "r" / "m.npz", "--epochs", "1") == 0
    (tmp_path / "r" / "m.npz").unlink()
    capsys.readouterr()
    assert train(folder, tmp_path / "r" / "m.npz", "--epochs", "1") == 0
    assert (f"warning: {tmp_path / 'r' / 'm_last.npz'} holds the latest state of an earlier run; this run's first "
            f"epoch replaces it (kept as {tmp_path / 'r' / 'm_last.earlier.npz'}) and the files beside it (give "
            "--save another path to keep them)") in capsys.readouterr().err
    assert (tmp_path / "r" / "m_last.earlier.npz").is_file()


def test_a_save_named_like_a_latest_state_is_resumed_as_the_best_model_it_is(tmp_path, capsys):
    """--save d/m_last.npz: its latest state is d/m_last_last.npz, and a resume of d/m_last.npz
    writes those two (it wrote epoch 2 over the best model, and left no best model anywhere)."""
    from nnfs.checkpoint import metadata

    folder = make_folder(tmp_path / "data", ["circle", "square"], per_class=6)
    assert train(folder, tmp_path / "d" / "m_last.npz", "--epochs", "1") == 0
    best = (tmp_path / "d" / "m_last.npz").read_bytes()
    capsys.readouterr()
    assert train_program.main(["--dataset", str(folder), "--batch_size", "4", "--epochs", "2",
                               "--resume", str(tmp_path / "d" / "m_last.npz")]) == 0
    latest = metadata(tmp_path / "d" / "m_last_last.npz")["extra"]
    assert latest["epoch"] == 2 and not (tmp_path / "d" / "m.npz").exists()
    assert metadata(tmp_path / "d" / "m_last.npz")["extra"]["epoch"] == latest["run"]["best_epoch"]  # the best model
    if latest["run"]["best_epoch"] == 1:
        assert (tmp_path / "d" / "m_last.npz").read_bytes() == best


def test_another_runs_files_alike_in_scores_are_never_taken_for_this_runs(tmp_path, capsys):
    """Two runs on one split with the same accuracy at epoch 1: a resumed run's report is its own
    best model's, told by the whole history, and the other run's latest state is no reason to refuse."""
    import re

    folder = make_folder(tmp_path / "data", ["circle", "square"], per_class=6)
    assert train(folder, tmp_path / "a" / "m.npz", "--epochs", "1") == 0
    assert train(folder, tmp_path / "b" / "m.npz", "--epochs", "3", "--lr", "0.02") == 0
    capsys.readouterr()
    code = train_program.main(["--dataset", str(folder), "--batch_size", "4", "--epochs", "2", "--save",
                               str(tmp_path / "b" / "m.npz"), "--resume", str(tmp_path / "a" / "m_last.npz")])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "holds the model of an earlier run" in err  # and its latest state, replaced at the first epoch:
    assert f"and its first epoch {tmp_path / 'b' / 'm_last.npz'}, that run's latest state" in err
    if "no epoch of this run beat it" in out:  # then the report is of a/m.npz, the resumed best
        from nnfs.checkpoint import load
        expected = load(tmp_path / "a" / "m.npz").extra["val_accuracy"]
        assert float(re.search(r"  accuracy ([\d.]+)% on", out).group(1)) == pytest.approx(100 * expected, abs=0.05)


def test_a_dataset_whose_file_list_cannot_fit_a_checkpoint_is_refused_before_training(tmp_path, capsys,
                                                                                    monkeypatch):
    # The split (every file's name) is part of each checkpoint's record: a dataset too large for the
    # record trained an epoch, then every save was refused. 10 images' names take ~150 bytes here.
    monkeypatch.setattr(train_program, "MAX_META_BYTES", (1 << 20) + 100)
    data = dataset(tmp_path)
    expect_error(capsys, train_program.main,
                 ["--dataset", str(data), "--batch_size", "4", "--save", str(tmp_path / "m.npz")],
                 f"error: --dataset {data}: the names of its 10 images take ")
    assert not (tmp_path / "m.npz").exists() and not (tmp_path / "m_last.npz").exists()
    monkeypatch.setattr(train_program, "MAX_META_BYTES", (1 << 20) + 10_000)  # room: it trains
    assert train(data, tmp_path / "m.npz", "--epochs", "1") == 0


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="no symbolic links here")
def test_an_earlier_runs_model_through_a_linked_save_is_kept_beside_the_file_it_points_to(tmp_path, capsys):
    folder = make_folder(tmp_path / "data", ["circle", "square"], per_class=6)
    (tmp_path / "store").mkdir()
    assert train(folder, tmp_path / "store" / "m.npz", "--epochs", "1") == 0
    first = (tmp_path / "store" / "m.npz").read_bytes()
    os.symlink(tmp_path / "store" / "m.npz", tmp_path / "link.npz")
    assert train(folder, tmp_path / "link.npz", "--epochs", "1", "--lr", "0.02") == 0
    assert f"is kept as {tmp_path / 'store' / 'm.earlier.npz'}" in capsys.readouterr().out
    assert (tmp_path / "store" / "m.earlier.npz").read_bytes() == first
    assert (tmp_path / "link.npz").is_symlink()


def test_the_model_line_shows_an_optimizer_and_schedule_in_four_significant_digits():
    # A rate a schedule moved printed as 0.0002500000000000001, in a line of 300 characters.
    from nnfs.layers import Linear
    from nnfs.net import Net
    from nnfs.optim import Adam, CosineAnnealingLR

    optimizer = Adam(Net([Linear(2, 2)]), lr=0.001)
    schedule = CosineAnnealingLR(optimizer, T_max=4)
    optimizer.lr = 0.0002500000000000001
    assert train_program.described(optimizer) == "Adam(lr=0.00025, betas=(0.9, 0.999), eps=1e-08, weight_decay=0)"
    assert train_program.described(schedule).startswith("CosineAnnealingLR(T_max=4, eta_min=0, ")
    assert repr(optimizer).startswith("Adam(lr=0.0002500000000000001, ")  # the repr stays exact
