"""The example scripts: a short real run, prediction on its checkpoint, and one-line errors."""

import importlib
import os
import pathlib
import subprocess
import sys

import pytest

from imagefolders import make_folder, write_image

ROOT = pathlib.Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"


def script(name):
    """The program an example script runs, as a module (its main() takes argv)."""
    return importlib.import_module({"CNN_custom_dataset": "nnfs.app.cli.train",
                                    "predict": "nnfs.app.cli.predict"}[name])


def run_script(*args):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    return subprocess.run([sys.executable, *map(str, args)], capture_output=True, text=True, env=env,
                          timeout=300)


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
    result = run_script(EXAMPLES / "CNN_custom_dataset.py", "--dataset", folder, "--epochs", "1",
                        "--batch_size", "8", "--save", ckpt)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert "warning: skipped 1 file(s) that are not images" in result.stderr
    assert "3 classes (circle, square, star), 3 channel(s), 12x12" in result.stdout
    assert "epoch  1/1  train loss" in result.stdout and "img/s" in result.stdout
    assert f"model saved to {ckpt}" in result.stdout
    assert ckpt.exists() and (tmp_path / "out" / "model_curves.png").exists()

    result = run_script(EXAMPLES / "predict.py", ckpt, folder / "star" / "palette.png", folder, "--top", "2")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"{folder / 'star' / 'palette.png'}: ")
    assert len(lines[0].split("%")) == 3  # two classes shown
    assert sum(line.endswith("%") for line in lines) == 1 + 21
    assert "accuracy" in lines[-1]


def test_default_dataset_is_the_shipped_digits(tmp_path):
    train = script("CNN_custom_dataset")
    args = train.apply_recipe(train.parse_args([]), "cnn")  # the digits get the reference CNN's recipe
    assert pathlib.Path(args.dataset).resolve() == ROOT / "data" / "digits"
    assert (args.epochs, args.batch_size, args.lr, args.val_split) == (10, 32, 0.01, 0.1)
    assert (args.optimizer, args.momentum, args.schedule) == ("sgd", 0.9, "constant")
    assert train.apply_recipe(train.parse_args(["--optimizer", "adam"]), "cnn").momentum is None
    code = train.main(["--limit", "4", "--epochs", "1", "--save", str(tmp_path / "m.npz")])
    assert code == 0 and (tmp_path / "m.npz").exists()


def expect_error(capsys, main, argv, message, code=1):
    """main(argv) exits with ``code`` and prints exactly one line, containing ``message``."""
    try:
        returned = main(argv)
    except SystemExit as exit_:  # argparse
        returned = exit_.code
    err = capsys.readouterr().err
    assert returned == code
    assert message in err
    assert len(err.strip().splitlines()) == 1, err


@pytest.mark.parametrize("case, message", [
    ("missing path", "error: dataset folder not found"),
    ("no class subfolders", "error: no class subfolders"),
    ("class without images", "has no images"),
    ("corrupt png", "broken.png"),
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
    main = script("CNN_custom_dataset").main
    expect_error(capsys, main, ["--dataset", str(root), "--save", str(tmp_path / "m.npz")], message)


def test_corrupt_images_can_be_skipped(tmp_path, capsys):
    root = make_folder(tmp_path / "data", ["a", "b"], per_class=4)
    (root / "b" / "broken.png").write_bytes(b"junk")
    main = script("CNN_custom_dataset").main
    assert main(["--dataset", str(root), "--epochs", "1", "--skip_corrupt", "--save",
                 str(tmp_path / "m.npz")]) == 0
    assert "skipped 1 unreadable image(s), e.g." in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["--val_split", "0"], "argument --val_split: must be strictly between 0 and 1"),
    (["--val_split", "1"], "argument --val_split: must be strictly between 0 and 1"),
    (["--batch_size", "0"], "argument --batch_size: must be a positive integer"),
    (["--image_size", "2x9"], "argument --image_size"),
])
def test_bad_options_fail_in_one_line(capsys, argv, message):
    expect_error(capsys, script("CNN_custom_dataset").main, argv, message, code=2)


def test_batch_larger_than_the_dataset_is_clamped_with_a_warning(tmp_path, capsys):
    root = make_folder(tmp_path / "data", ["a", "b"], per_class=5)
    main = script("CNN_custom_dataset").main
    assert main(["--dataset", str(root), "--epochs", "1", "--batch_size", "500", "--val_split", "0.2",
                 "--save", str(tmp_path / "m.npz")]) == 0
    captured = capsys.readouterr()
    assert "warning: --batch_size 500 is larger than the 8 training images; using 8" in captured.err
    assert "batch 8" in captured.out


def test_resume_from_another_architecture_fails_in_one_line(tmp_path, capsys):
    gray = make_folder(tmp_path / "gray", ["a", "b"], per_class=4, mode="L")
    color = make_folder(tmp_path / "color", ["a", "b"], per_class=4, mode="RGB")
    main = script("CNN_custom_dataset").main
    assert main(["--dataset", str(gray), "--epochs", "1", "--save", str(tmp_path / "gray.npz")]) == 0
    capsys.readouterr()
    expect_error(capsys, main, ["--dataset", str(color), "--epochs", "1", "--batch_size", "4", "--resume",
                                str(tmp_path / "gray.npz")], "holds a different architecture")


def test_prediction_with_a_truncated_or_foreign_checkpoint_fails_in_one_line(tmp_path, capsys):
    image = write_image(tmp_path / "x.png")
    predict = script("predict").main
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
    main = script("CNN_custom_dataset").main
    assert main(["--dataset", str(root), "--epochs", "1", "--save", str(tmp_path / "m.npz")]) == 0
    capsys.readouterr()
    predict = script("predict").main
    expect_error(capsys, predict, [str(tmp_path / "m.npz"), str(tmp_path / "nowhere.png")], "not found")
    (root / "a" / "bad.png").write_bytes(b"junk")
    assert predict([str(tmp_path / "m.npz"), str(root)]) == 1
    captured = capsys.readouterr()
    assert "bad.png" in captured.err and "1 of 9 images could not be read" in captured.err
    # Eight predictions, the accuracy line, and the note that training images are among them.
    assert len(captured.out.splitlines()) == 8 + 2
    assert captured.out.splitlines()[-1].startswith("note: 6 of these 8 images trained this model")


def test_classifier_prepares_files_exactly_as_training_did(tmp_path):
    import numpy as np

    from nnfs.checkpoint import save
    from nnfs.data import ImageFolder, Preprocessing
    from nnfs.app.inference import Classifier
    from nnfs.app.models import reference_cnn

    root = make_folder(tmp_path / "data", ["a", "b", "c"], per_class=3, mode="RGB", size=(9, 11))
    data = ImageFolder(root, channels=1, image_size=(8, 8))
    pre = Preprocessing.fit(data.images, range(len(data)), data.image_size, data.channels)
    net = reference_cnn(1, 8, 3).eval()
    save(tmp_path / "m.npz", net, class_names=data.class_names, preprocessing=pre)
    expected = net.predict_proba(pre.apply(data.images))
    predictions = Classifier(tmp_path / "m.npz").predict(data.paths, top=3)
    for row, prediction in zip(expected, predictions):
        got = dict(prediction.top)
        np.testing.assert_allclose([got[name] for name in data.class_names], row, rtol=1e-5)
        assert [p for _, p in prediction.top] == sorted(row.tolist(), reverse=True)


def test_an_unwritable_checkpoint_path_fails_in_one_line(tmp_path, capsys):
    root = make_folder(tmp_path / "data", ["a", "b"], per_class=4)
    blocker = tmp_path / "file"
    blocker.write_text("a file where a folder is needed")
    main = script("CNN_custom_dataset").main
    expect_error(capsys, main, ["--dataset", str(root), "--epochs", "1", "--batch_size", "4",
                                "--save", str(blocker / "m.npz")], "error: ")


@pytest.mark.parametrize("name", ["CNN_custom_dataset", "predict"])
@pytest.mark.parametrize("variable, value, message", [
    ("NNFS_BACKEND", "tpu", "error: unknown nnfs backend 'tpu'"),
    ("NNFS_DTYPE", "float16", "error: unknown dtype 'float16'"),
])
def test_a_bad_environment_variable_fails_in_one_line(tmp_path, name, variable, value, message):
    args = ["--epochs", "1"] if name == "CNN_custom_dataset" else [tmp_path / "m.npz", tmp_path]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    env[variable] = value
    result = subprocess.run([sys.executable, str(EXAMPLES / f"{name}.py"), *map(str, args)],
                            capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 1
    assert result.stderr.startswith(message)
    assert len(result.stderr.strip().splitlines()) == 1


def _train(folder, save, *extra):
    """Run the training example in this process; returns its exit code."""
    return script("CNN_custom_dataset").main(
        ["--dataset", str(folder), "--batch_size", "4", "--save", str(save), *map(str, extra)])


def test_resume_continues_exactly_where_the_run_stopped(tmp_path, folder, capsys):
    np = pytest.importorskip("numpy")
    options = ["--optimizer", "sgd", "--momentum", "0.9", "--lr", "0.02", "--seed", "3"]
    assert _train(folder, tmp_path / "whole" / "m.npz", "--epochs", "3", *options) == 0
    whole = capsys.readouterr().out
    assert _train(folder, tmp_path / "part" / "m.npz", "--epochs", "1", *options) == 0
    capsys.readouterr()
    assert _train(folder, tmp_path / "part" / "m.npz", "--epochs", "3", *options,
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


@pytest.mark.parametrize("optimizer", ["adam", "adamw"])
def test_adam_with_a_schedule_and_warm_up_trains(tmp_path, folder, capsys, optimizer):
    assert _train(folder, tmp_path / "m.npz", "--epochs", "3", "--optimizer", optimizer,
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
        _train(folder, tmp_path / "m.npz", *flags)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
