"""The training program's data options, as a user meets them: sizes, memory, cache, augmentation, hostile folders."""

import os

import numpy as np
import pytest

from nnfs.app.cli import train
from tests.app.cli.programs import assert_one_line, call, run_example
from tests.imagefolders import corrupt_exif_jpeg, make_folder, make_photo_folder, write_image

POSTSCRIPT = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n%%EOF\n"


def run(capsys, folder, save, *extra):
    """One epoch of the training program in this process: ``(exit status, stdout, stderr)``."""
    return call(train.main, ["--dataset", folder, "--epochs", "1", "--batch_size", "4", "--save", save, *extra],
                capsys)


def one_line_error(err):
    """The one line of a failure: nothing else on stderr, not even a warning."""
    assert len(err.strip().splitlines()) == 1, err
    return assert_one_line(err, "error: ")


@pytest.fixture
def photos(tmp_path):
    return make_photo_folder(tmp_path / "photos", per_class=3)


def test_photos_train_at_the_default_size_with_augmentation(tmp_path, photos, capsys):
    code, out, err = run(capsys, photos, tmp_path / "m.npz", "--cache", tmp_path / "cache")
    assert code == 0, err
    assert "9 images decoded in" in out
    assert ("image size 64x64, photos of varied sizes (the most common, 200x300, is that of 3 of 9 images): "
            "shorter side scaled to 64, middle kept; change it with --image_size and --resize") in out
    assert "augmentation of the training images: crop, flip (the default for photos; --augment none" in out
    assert "3 channel(s), 64x64" in out
    code, out, err = run(capsys, photos, tmp_path / "m.npz", "--cache", tmp_path / "cache")
    assert code == 0 and "9 images read from the cache in" in out


def test_no_cache_writes_nothing(tmp_path, photos, capsys, monkeypatch):
    monkeypatch.setenv("NNFS_CACHE_DIR", str(tmp_path / "default-cache"))
    for _ in range(2):
        code, out, err = run(capsys, photos, tmp_path / "m.npz", "--cache", "none", "--augment", "none",
                             "--image_size", "16")
        assert code == 0 and "decoded in" in out and "augmentation" not in out
    assert not (tmp_path / "default-cache").exists()
    code, out, _ = run(capsys, photos, tmp_path / "m.npz", "--image_size", "16")  # the default location
    assert code == 0 and len(os.listdir(tmp_path / "default-cache")) == 1


def test_a_cache_inside_the_dataset_is_refused(tmp_path, photos, capsys):
    code, _, err = run(capsys, photos, tmp_path / "m.npz", "--cache", photos / "cache")
    assert code == 1 and one_line_error(err) == (
        f"error: the --cache folder {photos / 'cache'} is inside the dataset folder {photos}; keep it elsewhere")
    assert not (photos / "cache").exists()


def test_digits_like_images_keep_their_size_and_get_no_augmentation(tmp_path, capsys):
    root = make_folder(tmp_path / "d", ["0", "1"], per_class=4, size=(28, 28))
    code, out, err = run(capsys, root, tmp_path / "m.npz")
    assert code == 0, err
    assert "image size 28x28, the most common size (28x28), kept as small images are; change it with " \
           "--image_size\n" in out
    assert "augmentation" not in out
    code, out, err = run(capsys, root, tmp_path / "m.npz", "--augment", "shift")
    assert code == 0 and "augmentation of the training images: shift (as asked" in out


@pytest.mark.parametrize("case, expected", [
    (["--image_size", "100000"], "8 images of 1x100000x100000 need about 76.0 TiB of memory (images 74.5 GiB + model"),
    (["--image_size", "3000"], "need about"),
    (["--image_size", "1x2"], "expected SIZE or HEIGHTxWIDTH"),
])
def test_sizes_that_cannot_work_are_refused_in_one_line(tmp_path, capsys, case, expected):
    root = make_folder(tmp_path / "d", ["a", "b"], per_class=4)
    code, _, err = run(capsys, root, tmp_path / "m.npz", *case)
    if code == 2:  # the parser's refusal
        assert expected in err and "Traceback" not in err
        return
    line = one_line_error(err)
    assert code == 1 and expected in line
    assert line.endswith("choose a smaller image size with --image_size")
    assert not (tmp_path / "m.npz").exists()


def test_a_default_size_larger_than_the_memory_is_refused(tmp_path, photos, capsys, monkeypatch):
    monkeypatch.setenv("NNFS_MEMORY_LIMIT", "10M")
    code, _, err = run(capsys, photos, tmp_path / "m.npz")
    line = one_line_error(err)
    assert code == 1 and "9 images of 3x64x64 need about" in line and "more than the 10.0 MiB available" in line
    assert "model" in line and "activations" in line and line.endswith("with --image_size")


def test_images_too_small_for_the_model_are_refused(tmp_path, capsys):
    root = make_folder(tmp_path / "d", ["a", "b"], per_class=3, size=(3, 2))
    code, _, err = run(capsys, root, tmp_path / "m.npz")
    assert code == 1 and one_line_error(err) == (
        "error: the images would be 2x3 (the most common size), smaller than the 4x4 the model needs; "
        "choose a size of at least 4 with --image_size")
    code, out, err = run(capsys, root, tmp_path / "m.npz", "--image_size", "4")
    assert code == 0, err


@pytest.mark.parametrize("value", ["rotate", "crop,spin", ""])
def test_bad_augment_values_fail_in_one_line(capsys, value):
    with pytest.raises(SystemExit) as exit_:
        train.parse_args(["--augment", value])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and "--augment: expected auto, none or some of crop,shift,flip,jitter" in err


def test_resume_continues_the_augmentation_exactly(tmp_path, photos, capsys):
    options = ["--seed", "2", "--augment", "crop,flip,jitter", "--batch_size", "3", "--image_size", "24"]

    def fit(save, epochs, *extra):
        code = train.main(["--dataset", str(photos), "--epochs", str(epochs), "--save", str(save),
                           *options, *map(str, extra)])
        assert code == 0, capsys.readouterr().err
        return capsys.readouterr().out

    fit(tmp_path / "whole" / "m.npz", 3)
    fit(tmp_path / "part" / "m.npz", 1)
    # The flag differs on resume: the saved augmentation wins, as the saved optimizer does.
    out = fit(tmp_path / "part" / "m.npz", 3, "--resume", tmp_path / "part" / "m_last.npz", "--augment", "none")
    assert "after epoch 1" in out
    a, b = np.load(tmp_path / "whole" / "m_last.npz"), np.load(tmp_path / "part" / "m_last.npz")
    weights = [k for k in a.files if k.startswith("net/")]
    assert weights
    for key in weights:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
def test_a_hostile_folder_trains_with_skip_corrupt_and_stops_cleanly_without(tmp_path):
    root = make_folder(tmp_path / "d", ["a", "b"], per_class=4, size=(12, 12))
    os.mkfifo(root / "a" / "pipe.png")
    os.symlink("loop.png", root / "b" / "loop.png")
    (root / "b" / "evil.png").write_bytes(POSTSCRIPT)
    save = tmp_path / "m.npz"
    done = run_example("CNN_custom_dataset", "--dataset", root, "--epochs", "1", "--save", save,
                       "--batch_size", "4")
    assert done.returncode == 1 and "Traceback" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "loop.png" in errors[0] and "Too many levels of symbolic links" in errors[0]
    assert not save.exists()
    done = run_example("CNN_custom_dataset", "--dataset", root, "--epochs", "1", "--save", save,
                       "--batch_size", "4", "--skip_corrupt")
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    warnings = done.stderr.strip().splitlines()
    assert warnings == [
        f"warning: skipped 1 entry that is not a regular file (a FIFO, socket or device; not opened), "
        f"e.g. {root / 'a' / 'pipe.png'}",
        f"warning: skipped 2 unreadable images, e.g. {root / 'b' / 'loop.png'}"]  # and evil.png
    assert save.exists()


def test_a_folder_of_damaged_files_stops_in_one_line_naming_a_class_with_skip_corrupt(tmp_path, capsys):
    root = tmp_path / "d"
    for name in ("a", "b"):
        (root / name).mkdir(parents=True)
        (root / name / "x.png").write_bytes(b"\x89PNG\r\n\x1a\n")  # cut off after the signature
    code, _, err = run(capsys, root, tmp_path / "m.npz", "--skip_corrupt")
    assert code == 1
    assert one_line_error(err) == (f"error: class folder {root / 'a'} has no readable images (skipped 1 "
                                   f"unreadable image, e.g. {root / 'a' / 'x.png'})")
    assert not (tmp_path / "m.npz").exists()


def test_a_size_the_prediction_program_would_refuse_is_refused_before_training(tmp_path, capsys, monkeypatch):
    # The real limit (2^24 values) needs photos of thousands of pixels: the same rule, a smaller limit.
    from nnfs.app import inference
    monkeypatch.setattr(inference, "MAX_INPUT_VALUES", 3 * 12 * 12 - 1)
    monkeypatch.setattr(train, "MAX_INPUT_VALUES", inference.MAX_INPUT_VALUES)
    root = make_folder(tmp_path / "d", ["a", "b"], per_class=3, mode="RGB", size=(12, 12))
    code, _, err = run(capsys, root, tmp_path / "m.npz", "--cache", "none")
    assert code == 1
    assert one_line_error(err) == ("error: the images would be 12x12 (the most common size) with 3 channels, "
                                   "432 values each, more than the 431 a saved model classifies; choose a "
                                   "smaller image size with --image_size")
    assert not (tmp_path / "m.npz").exists()
    assert run(capsys, root, tmp_path / "m.npz", "--cache", "none", "--image_size", "11")[0] == 0
    assert inference.Classifier(str(tmp_path / "m.npz")).predict([str(root / "a" / "000.png")])[0].top


def test_huge_images_and_corrupt_exif_warn_in_one_line_each(tmp_path, capsys, monkeypatch):
    from PIL import Image

    root = make_folder(tmp_path / "d", ["a", "b"], per_class=3, size=(12, 12))
    write_image(root / "a" / "huge.png", size=(90, 90))
    corrupt_exif_jpeg(root / "b" / "bad_exif.jpg")  # 80x60
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 5000)  # 90x90: over it, under twice it
    code, out, err = run(capsys, root, tmp_path / "m.npz", "--image_size", "12")
    assert code == 0
    assert err.splitlines() == [
        f"warning: 1 very large image read (over Pillow's decompression-bomb limit of 5,000 pixels; "
        f"check that they are real photos), e.g. {root / 'a' / 'huge.png'}",
        f"warning: 1 image with corrupt EXIF or TIFF tag data (read; its orientation may be wrong), "
        f"e.g. {root / 'b' / 'bad_exif.jpg'}"]
    assert "8 images decoded" in out


def test_the_validation_batch_takes_what_the_memory_leaves(tmp_path, capsys, monkeypatch):
    """Validation takes up to 256 small images at once whatever --batch_size is, but never more
    than the memory beside a training step holds: the plan counts the training step, so that a
    small --batch_size makes a run fit (a run accepted with one ran out of memory at its first
    validation, and one refused for the validation batch had no option to turn)."""
    import argparse

    from nnfs.app.cli.train import validation_batch_size
    from nnfs.data.memory import ACTIVATION_FLOATS_PER_PIXEL

    root = make_folder(tmp_path / "d", ["a", "b"], per_class=150, size=(12, 12))
    per_image = 12 * 12 * ACTIVATION_FLOATS_PER_PIXEL * 4
    data = argparse.Namespace(channels=1, image_size=(12, 12), sizing=None, class_names=["a", "b"],
                              images=np.zeros((300, 1, 12, 12), np.uint8))
    args = train.apply_recipe(train.parse_args(["--dataset", str(root)]), "cnn")
    monkeypatch.setattr(train, "planned_training", lambda *a: (1000, 1))
    monkeypatch.setenv("NNFS_MEMORY_LIMIT", "1G")
    assert validation_batch_size(args, data, 8) == 256 and validation_batch_size(args, data, 500) == 500
    model = 1000 * 4 * 3
    monkeypatch.setenv("NNFS_MEMORY_LIMIT", str(data.images.nbytes + model + 8 * per_image + 40 * per_image))
    assert validation_batch_size(args, data, 8) == 40
    monkeypatch.setenv("NNFS_MEMORY_LIMIT", str(data.images.nbytes + model + 8 * per_image))
    assert validation_batch_size(args, data, 8) == 1
    # The machine's own figure is read with the images already in memory: not counted twice.
    data.images = np.zeros(10 * per_image, np.uint8)
    monkeypatch.delenv("NNFS_MEMORY_LIMIT")
    monkeypatch.setattr(train, "available_memory", lambda: data.images.nbytes + model + 48 * per_image)
    assert validation_batch_size(args, data, 8) == 50
    monkeypatch.undo()
    monkeypatch.setenv("NNFS_MEMORY_LIMIT", str(20 * 8 * per_image))  # room for a step of 8, not of 256
    code, _, err = run(capsys, root, tmp_path / "m.npz", "--batch_size", "8", "--val_split", "0.9")
    assert code == 0, err
