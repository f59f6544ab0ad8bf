"""The prediction program (nnfs.app.cli.predict, run by examples/predict.py): one-line errors for
damaged checkpoints, missing paths and unreadable images."""

import logging
import pathlib

import pytest

from nnfs.app.cli import predict as predict_program, train as train_program
from nnfs.app.cli.console import os_error_message
from tests.app.cli.programs import expect_error, expect_one_line_failure, run_example
from tests.imagefolders import damaged_tiff, make_folder, write_image


def test_prediction_with_a_truncated_or_foreign_checkpoint_fails_in_one_line(tmp_path, capsys):
    image = write_image(tmp_path / "x.png")
    predict = predict_program.main
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(b"PK\x03\x04" + b"\0" * 40)
    expect_error(capsys, predict, [str(truncated), str(image)], "truncated or corrupt")
    expect_error(capsys, predict, [str(tmp_path / "none.npz"), str(image)], "checkpoint not found")

    from nnfs.checkpoint import save
    from nnfs.layers import Linear
    from nnfs.net import Net
    save(tmp_path / "mlp.npz", Net([Linear(4, 2)]), class_names=["a", "b"])
    expect_error(capsys, predict, [str(tmp_path / "mlp.npz"), str(image)], "stores no image preprocessing")


def test_prediction_reports_unreadable_images_and_missing_paths(tmp_path, capsys):
    root = make_folder(tmp_path / "data", ["a", "b"], per_class=4)
    main = train_program.main
    assert main(["--dataset", str(root), "--epochs", "1", "--save", str(tmp_path / "m.npz")]) == 0
    capsys.readouterr()
    predict = predict_program.main
    expect_error(capsys, predict, [str(tmp_path / "m.npz"), str(tmp_path / "nowhere.png")], "not found")
    (root / "a" / "bad.png").write_bytes(b"junk")
    assert predict([str(tmp_path / "m.npz"), str(root)]) == 1
    captured = capsys.readouterr()
    assert "bad.png" in captured.err and "1 of 9 images could not be read" in captured.err
    # Eight predictions, the accuracy line, and the note that training images are among them.
    assert len(captured.out.splitlines()) == 8 + 2
    assert captured.out.splitlines()[-1].startswith("note: 6 of these 8 images trained this model")


@pytest.mark.parametrize("variable, value, message", [
    ("NNFS_BACKEND", "tpu", "error: unknown nnfs backend 'tpu'"),
    ("NNFS_DTYPE", "float16", "error: unknown dtype 'float16'"),
])
def test_a_bad_environment_variable_fails_in_one_line(tmp_path, variable, value, message):
    expect_one_line_failure(run_example("predict", tmp_path / "m.npz", tmp_path, **{variable: value}), message)


def test_a_csv_over_the_checkpoint_or_an_image_is_refused_and_replaces_nothing(tmp_path, capsys):
    root = make_folder(tmp_path / "data", ["a", "b"], per_class=4)
    checkpoint = tmp_path / "m.npz"
    assert train_program.main(["--dataset", str(root), "--epochs", "1", "--save", str(checkpoint)]) == 0
    capsys.readouterr()
    image = root / "a" / "000.png"
    before = {path: path.read_bytes() for path in (checkpoint, image)}
    predict = predict_program.main
    expect_error(capsys, predict, [str(checkpoint), str(image), "--csv", str(checkpoint)],
                 f"--csv {checkpoint} would replace {checkpoint}", code=2)
    expect_error(capsys, predict, [str(checkpoint), str(image), "--csv", str(image)],
                 f"--csv {image} would replace {image}", code=2)
    expect_error(capsys, predict, [str(checkpoint), str(root), "--csv", str(image)],
                 f"would replace the image {image}")
    from nnfs.checkpoint import metadata
    trained_on = root / metadata(checkpoint)["extra"]["split"]["train"][0]
    before[trained_on] = trained_on.read_bytes()
    expect_error(capsys, predict, [str(checkpoint), "--split", "train", "--csv", str(trained_on)],
                 f"would replace the image {trained_on}")
    other = tmp_path / "other.npz"  # a model of another run
    other.write_bytes(checkpoint.read_bytes())
    before[other] = other.read_bytes()
    expect_error(capsys, predict, [str(checkpoint), str(image), "--csv", str(other)],
                 f"--csv {other} would replace a checkpoint", code=2)
    assert {path: path.read_bytes() for path in before} == before


def test_neither_program_prints_what_pillow_logs_about_a_damaged_tiff(tmp_path, capsys, monkeypatch):
    # As in the programs, no logging is set up: pytest's handlers off, Python's last resort prints.
    monkeypatch.setattr(logging.getLogger(), "handlers", [])
    root = make_folder(tmp_path / "data", ["a", "b"], per_class=4)
    bad = damaged_tiff(root / "a" / "bad.tif")
    checkpoint = tmp_path / "m.npz"
    assert train_program.main(["--dataset", str(root), "--epochs", "1", "--skip_corrupt", "--batch_size", "4",
                               "--save", str(checkpoint)]) == 0
    assert capsys.readouterr().err.splitlines() == [f"warning: skipped 1 unreadable image(s), e.g. {bad}"]
    assert predict_program.main([str(checkpoint), str(root)]) == 1
    assert capsys.readouterr().err.splitlines() == [
        f"error: not a readable image (corrupt, or not one of PNG, JPEG, BMP, GIF, TIFF, WEBP, PPM): {bad}",
        "1 of 9 images could not be read"]


def test_a_folder_where_a_split_image_was_is_one_line_naming_it(tmp_path, capsys):
    root = make_folder(tmp_path / "data", ["a", "b"], per_class=4)
    checkpoint = tmp_path / "m.npz"
    assert train_program.main(["--dataset", str(root), "--epochs", "1", "--batch_size", "4",
                               "--save", str(checkpoint)]) == 0
    capsys.readouterr()
    assert predict_program.main([str(checkpoint), "--split", "val"]) == 0
    first = capsys.readouterr().out.splitlines()[0].split(": ")[0]  # a validation image
    pathlib.Path(first).unlink()
    pathlib.Path(first).mkdir()
    assert predict_program.main([str(checkpoint), "--split", "val"]) == 1
    assert capsys.readouterr().err.splitlines() == [f"error: not a regular file (a folder), not opened: {first}",
                                                    "1 of 2 images could not be read"]


def test_an_os_error_naming_a_descriptor_is_its_reason_alone():
    assert os_error_message(IsADirectoryError(21, "Is a directory", 3)) == "Is a directory"
    assert os_error_message(OSError(28, "No space left on device", "runs/m.npz")) == \
        "runs/m.npz: No space left on device"
    assert os_error_message(OSError(28, "No space left on device", b"runs/m.npz")) == \
        "runs/m.npz: No space left on device"
