"""The prediction program (nnfs.app.cli.predict, run by examples/predict.py): one-line errors for
damaged checkpoints, missing paths and unreadable images."""

import logging
import os
import pathlib
import shutil

import pytest

from nnfs.app.cli import predict as predict_program, train as train_program
from nnfs.app.cli.console import os_error_message
from tests.app.cli.programs import assert_one_line, call, expect_error, expect_one_line_failure, run_example
from tests.imagefolders import damaged_tiff, make_folder, write_image


def test_prediction_with_a_truncated_or_foreign_checkpoint_fails_in_one_line(tmp_path, capsys):
    image = write_image(tmp_path / "x.png")
    predict = predict_program.main
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(b"PK\x03\x04" + b"\0" * 40)
    expect_error(capsys, predict, [str(truncated), str(image)], "truncated or corrupt")
    expect_error(capsys, predict, [str(tmp_path / "none.npz"), str(image)], "checkpoint not found")
    # The image first (the arguments swapped): called an image, with the order to use.
    prog = predict_program.build_parser().prog
    expect_error(capsys, predict, [str(image), str(image)], f"error: {image} is not a readable nnfs checkpoint "
                 f"(a PNG image, not a zip archive); the checkpoint comes first: {prog} CHECKPOINT IMAGE_OR_FOLDER ...")
    expect_error(capsys, predict, [str(tmp_path), str(image)], f"error: {tmp_path} is not a readable nnfs checkpoint "
                 f"(a folder, not a file); the checkpoint comes first: {prog} CHECKPOINT IMAGE_OR_FOLDER ...")

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
    # An image found below a folder: refused as an image, before the folder is walked.
    expect_error(capsys, predict, [str(checkpoint), str(root), "--csv", str(image)],
                 f"--csv {image} would replace a file that is not a CSV of predictions", code=2)
    from nnfs.checkpoint import metadata
    trained_on = root / metadata(checkpoint)["extra"]["split"]["train"][0]
    before[trained_on] = trained_on.read_bytes()
    expect_error(capsys, predict, [str(checkpoint), "--split", "train", "--csv", str(trained_on)],
                 f"--csv {trained_on} would replace a file that is not a CSV of predictions", code=2)
    # A file named like an image that holds a CSV of predictions: found among the images to classify.
    disguised = root / "b" / "000.png"
    before[disguised] = b"path,label,predicted,confidence,correct,split\n"
    disguised.write_bytes(before[disguised])
    expect_error(capsys, predict, [str(checkpoint), str(root), "--csv", str(disguised)],
                 f"would replace the image {disguised}")
    other = tmp_path / "other.npz"  # a model of another run
    other.write_bytes(checkpoint.read_bytes())
    before[other] = other.read_bytes()
    expect_error(capsys, predict, [str(checkpoint), str(image), "--csv", str(other)],
                 f"--csv {other} would replace a file that is not a CSV of predictions", code=2)
    assert {path: path.read_bytes() for path in before} == before


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A checkpoint trained for one epoch on two classes of four images, and its dataset."""
    base = tmp_path_factory.mktemp("predict")
    root = make_folder(base / "data", ["a", "b"], per_class=4)
    assert train_program.main(["--dataset", str(root), "--epochs", "1", "--save", str(base / "m.npz")]) == 0
    return base / "m.npz", root


@pytest.mark.parametrize("order", [
    ["CKPT", "--top", "1", "IMAGE"], ["--top", "1", "CKPT", "IMAGE"], ["CKPT", "IMAGE", "--top", "1"],
    ["CKPT", "--csv", "CSV", "IMAGE", "FOLDER"], ["CKPT", "IMAGE", "--csv", "CSV", "FOLDER", "--top", "1"],
    ["CKPT", "--split", "val", "ROOT"], ["CKPT", "ROOT", "--split", "val", "--top", "1"]])
def test_options_may_come_before_between_or_after_the_paths(trained, tmp_path, capsys, order):
    checkpoint, root = trained
    values = {"CKPT": checkpoint, "IMAGE": root / "a" / "000.png", "FOLDER": root / "b",
              "CSV": tmp_path / "p.csv", "ROOT": root}
    argv = [str(values.get(arg, arg)) for arg in order]
    assert predict_program.main(argv) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    if "--top" in order:
        assert all(line.count("%") == 1 for line in out.splitlines() if line.startswith(str(root)))
    if "--split" in order:
        assert "per class on the 2 held-out (validation) images:" in out
    if "--csv" in order:
        assert (tmp_path / "p.csv").read_text().count("\n") == 1 + 5


@pytest.mark.parametrize("case, reason", [("a folder", "Is a directory"), ("under a file", "Not a directory"),
                                          ("in /proc", "No such file or directory")])
def test_a_csv_that_cannot_be_written_is_found_before_any_image_is_classified(trained, tmp_path, capsys, case,
                                                                               reason):
    checkpoint, root = trained
    if case == "in /proc" and not os.path.isdir("/proc/self"):
        pytest.skip("needs Linux's /proc")
    (tmp_path / "afile").write_text("in the way")
    csv_path = {"a folder": tmp_path, "under a file": tmp_path / "afile" / "x.csv", "in /proc": "/proc/x.csv"}[case]
    code, out, err = call(predict_program.main, [checkpoint, root, "--csv", csv_path], capsys)
    assert code == 1 and out == ""  # nothing classified
    assert_one_line(err, f"error: --csv {csv_path} cannot be written: {reason}")
    assert ".tmp" not in err and (tmp_path / "afile").read_text() == "in the way"


def test_a_csv_that_fails_while_written_is_the_same_one_line(trained, tmp_path, capsys, monkeypatch):
    """A full disk, the one cause the check before classifying cannot find: the same line."""
    import errno

    checkpoint, root = trained

    def full(path, rows):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(predict_program, "write_csv", full)
    csv_path = tmp_path / "p.csv"
    code, out, err = call(predict_program.main, [checkpoint, root, "--csv", csv_path], capsys)
    assert code == 1 and "accuracy" in out
    assert_one_line(err, f"error: --csv {csv_path} cannot be written: {os.strerror(errno.ENOSPC)}")
    assert not csv_path.exists()


def test_a_file_given_twice_or_also_in_a_folder_is_classified_once(trained, capsys, monkeypatch):
    checkpoint, root = trained
    monkeypatch.chdir(root.parent)
    image = os.path.join("data", "b", "000.png")
    code, out, err = call(predict_program.main, [checkpoint, image, image, os.path.join("data", "b"),
                                                 os.path.join(".", image)], capsys)
    assert code == 0, err
    scored = [line.split(":")[0] for line in out.splitlines() if line.startswith("data")]
    assert scored == [image] + [os.path.join("data", "b", f"00{i}.png") for i in (1, 2, 3)]
    assert "on the 4 images in folders named after a class" in out


def test_a_hard_link_is_the_same_file_and_overlapping_folders_warn_once(trained, tmp_path, capsys):
    """A hard link has a real path of its own but is the same file; folders given together that
    reach the same skipped entry say it once."""
    checkpoint, root = trained
    scored = tmp_path / "scored"
    shutil.copytree(root, scored)
    os.link(scored / "b" / "000.png", scored / "a" / "zz_same_as_b0.png")
    os.symlink("..", scored / "a" / "up")  # a link back up: a folder reached twice
    code, out, err = call(predict_program.main, [checkpoint, scored, scored / "a", scored], capsys)
    assert code == 0, err
    assert "on the 8 images in folders named after a class" in out
    lines = [line for line in err.splitlines() if "reached twice" in line]
    assert len(lines) == 1 and lines[0].endswith(f"e.g. {scored / 'a' / 'up'}"), err  # not once per path given


def test_an_image_that_warned_and_then_failed_is_one_error(trained, tmp_path, capsys):
    """A truncated TIFF makes Pillow warn about its tags, then fail: its error line alone."""
    from PIL import Image

    checkpoint, root = trained
    whole, cut = tmp_path / "whole.tif", tmp_path / "cut.tif"
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.new("L", (64, 48), 90).save(whole, exif=exif.tobytes(), compression="tiff_lzw")
    cut.write_bytes(whole.read_bytes()[:len(whole.read_bytes()) // 2])
    code, out, err = call(predict_program.main, [checkpoint, cut], capsys)
    assert code == 1
    assert err.splitlines() == [f"error: not a readable image (corrupt, or not one of PNG, JPEG, BMP, GIF, TIFF, "
                                f"WEBP, PPM): {cut}", "1 of 1 image could not be read"]


def test_a_csv_never_replaces_a_photo_or_notes_but_replaces_its_own_predictions(trained, tmp_path, capsys):
    checkpoint, root = trained
    photo, notes, previous = write_image(tmp_path / "photo.png"), tmp_path / "notes.txt", tmp_path / "p.csv"
    notes.write_text("my notes")
    before = {path: path.read_bytes() for path in (photo, notes)}
    for victim in (photo, notes):
        code, out, err = call(predict_program.main, [checkpoint, root / "a", "--csv", victim], capsys)
        assert code == 2 and out == ""
        assert_one_line(err, f"--csv {victim} would replace a file that is not a CSV of predictions")
    assert {path: path.read_bytes() for path in before} == before
    for _ in range(2):  # the second run replaces the first one's CSV
        assert call(predict_program.main, [checkpoint, root / "a", "--csv", previous], capsys)[0] == 0
    assert previous.read_text().count("\n") == 1 + 4
    # Saved again by a spreadsheet as "CSV UTF-8" (a byte-order mark first): still its own.
    previous.write_bytes(b"\xef\xbb\xbf" + previous.read_bytes().replace(b"\n", b"\r\n"))
    assert call(predict_program.main, [checkpoint, root / "a", "--csv", previous], capsys)[0] == 0


def test_one_image_is_counted_in_the_singular(trained, capsys):
    checkpoint, root = trained
    from nnfs.checkpoint import metadata
    trained_on = root / metadata(checkpoint)["extra"]["split"]["train"][0]
    code, out, err = call(predict_program.main, [checkpoint, trained_on], capsys)
    assert code == 0, err
    assert "accuracy" in out and "on the 1 image in folders named after a class" in out
    assert "note: this image trained this model" in out
    (root.parent / "bad.png").write_bytes(b"junk")
    code, out, err = call(predict_program.main, [checkpoint, root.parent / "bad.png"], capsys)
    assert code == 1 and "1 of 1 image could not be read" in err
    (root.parent / "bad.png").unlink()


def test_neither_program_prints_what_pillow_logs_about_a_damaged_tiff(tmp_path, capsys, monkeypatch):
    # As in the programs, no logging is set up: pytest's handlers off, Python's last resort prints.
    monkeypatch.setattr(logging.getLogger(), "handlers", [])
    root = make_folder(tmp_path / "data", ["a", "b"], per_class=4)
    bad = damaged_tiff(root / "a" / "bad.tif")
    checkpoint = tmp_path / "m.npz"
    assert train_program.main(["--dataset", str(root), "--epochs", "1", "--skip_corrupt", "--batch_size", "4",
                               "--save", str(checkpoint)]) == 0
    assert capsys.readouterr().err.splitlines() == [f"warning: skipped 1 unreadable image, e.g. {bad}"]
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


@pytest.mark.skipif(os.name != "posix" or os.uname().sysname == "Darwin", reason="file names of any bytes")
def test_a_csv_with_file_names_that_are_not_utf8_is_written(tmp_path, capsys):
    """Their bytes are written back (the CSV failed with a traceback after classifying everything)."""
    root = make_folder(tmp_path / "data", ["a", "b"], per_class=4)
    assert train_program.main(["--dataset", str(root), "--epochs", "1", "--save", str(tmp_path / "m.npz")]) == 0
    odd = os.fsdecode(bytes(root / "a") + b"/x\xff.png")
    shutil.copy(root / "a" / sorted(os.listdir(root / "a"))[0], odd)
    capsys.readouterr()
    assert predict_program.main([str(tmp_path / "m.npz"), odd, "--csv", str(tmp_path / "p.csv")]) == 0
    assert b"x\xff.png" in (tmp_path / "p.csv").read_bytes()


@pytest.mark.parametrize("argv, missing", [([], "checkpoint"), (["--split", "val"], "checkpoint"),
                                           (["--top", "1"], "checkpoint")])
def test_a_missing_checkpoint_is_the_one_argument_named_as_required(capsys, argv, missing):
    """The paths were named as required too, though --split needs none."""
    expect_error(capsys, predict_program.main, argv, f"the following arguments are required: {missing} (", code=2)


@pytest.mark.parametrize("where", ["moved", "given", "a file"])
def test_a_split_whose_dataset_folder_is_not_there_says_so(trained, tmp_path, capsys, where):
    """A moved or mistyped dataset folder was reported as its validation images missing from it."""
    checkpoint, root = trained
    if where == "moved":
        moved = tmp_path / "elsewhere"
        shutil.copytree(root, moved)
        shutil.copy(checkpoint, tmp_path / "m.npz")
        shutil.rmtree(root)
        try:
            assert predict_program.main([str(tmp_path / "m.npz"), "--split", "val"]) == 1
        finally:
            shutil.copytree(moved, root)  # the module's model and folder, for the other tests
        expected = f"the dataset folder {root} (recorded in {tmp_path / 'm.npz'}) is not there"
    else:
        folder = tmp_path / "typo"
        if where == "a file":
            folder.write_text("x")
        assert predict_program.main([str(checkpoint), "--split", "val", str(folder)]) == 1
        expected = f"the dataset folder {folder} (given) is not {'a folder' if where == 'a file' else 'there'}"
    assert capsys.readouterr().err.splitlines() == [
        f"error: {expected}; give the dataset folder the model was trained on"]


def test_csv_dash_writes_the_csv_to_standard_output_and_the_rest_to_standard_error(trained, tmp_path, capsys,
                                                                                    monkeypatch):
    """For a pipe: ``--csv -`` wrote a file named ``-``, and /dev/stdout in a pipe is no regular file."""
    checkpoint, root = trained
    monkeypatch.chdir(tmp_path)
    assert predict_program.main([str(checkpoint), str(root / "a"), "--csv", "-"]) == 0
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert lines[0] == predict_program.CSV_HEADER and len(lines) == 1 + 4
    assert all(line.startswith(str(root / "a")) and line.count(",") == 5 for line in lines[1:])
    assert f"{root / 'a' / '000.png'}: " in captured.err and "accuracy" in captured.err
    assert "written to" not in captured.err and not (tmp_path / "-").exists()
