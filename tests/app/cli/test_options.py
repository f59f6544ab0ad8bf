"""Every numeric option of the training program is checked when it is parsed: a value that would
fail later (or train on NaN) is refused at once with exit status 2 and one line."""

import pytest

from nnfs.app.cli import predict, train
from nnfs.app.cli.options import non_negative_float, positive_float, positive_int, seed, unit_interval

from .programs import assert_one_line, call


@pytest.mark.parametrize("option, value, expected", [
    ("--lr", "inf", "a finite number > 0"), ("--lr", "nan", "a finite number > 0"),
    ("--lr", "-0.1", "a finite number > 0"), ("--lr", "0", "a finite number > 0"),
    ("--lr", "1e400", "a finite number > 0"), ("--lr", "fast", "a finite number > 0"),
    ("--weight_decay", "inf", "a finite number >= 0"), ("--weight_decay", "-1", "a finite number >= 0"),
    ("--weight_decay", "nan", "a finite number >= 0"),
    ("--momentum", "inf", "a number in [0, 1]"), ("--momentum", "5", "a number in [0, 1]"),
    ("--momentum", "-0.5", "a number in [0, 1]"), ("--momentum", "nan", "a number in [0, 1]"),
    ("--seed", "-1", "an integer in [0, 4294967295]"), ("--seed", "1.5", "an integer in"),
    ("--seed", str(2**64), "an integer in"),
    ("--epochs", "0", "a positive integer"), ("--epochs", "inf", "a positive integer"),
    ("--batch_size", "-3", "a positive integer"), ("--limit", "0", "a positive integer"),
    ("--warmup_epochs", "-1", "zero or a positive integer"),
    ("--val_split", "nan", "strictly between 0 and 1"), ("--val_split", "inf", "strictly between 0 and 1"),
])
def test_bad_numbers_are_refused_by_the_parser(capsys, option, value, expected):
    code, out, err = call(train.main, [option, value], capsys)
    assert code == 2 and out == ""
    assert_one_line(err, f"argument {option}: must be {expected}")


@pytest.mark.parametrize("check, good, bad", [
    (positive_float, ["1e-8", "3", "1e300"], ["0", "inf", "-inf", "nan", "x", "1e999"]),
    (non_negative_float, ["0", "2.5"], ["-1e-9", "inf", "nan"]),
    (unit_interval, ["0", "0.9", "1"], ["1.0001", "-0.1", "inf", "nan"]),
    (positive_int, ["1", "10000000000"], ["0", "-1", "1.0", "1e3", "inf"]),
    (seed, ["0", "4294967295"], ["-1", "4294967296", "0x10"]),
])
def test_option_types(check, good, bad):
    import argparse

    for text in good:
        check(text)
    for text in bad:
        with pytest.raises(argparse.ArgumentTypeError):
            check(text)


def test_good_values_still_parse():
    args = train.parse_args(["--lr", "0.5", "--momentum", "1", "--weight_decay", "0", "--seed", "7"])
    assert (args.lr, args.momentum, args.weight_decay, args.seed) == (0.5, 1.0, 0.0, 7)


@pytest.mark.parametrize("option, value", [("--save", ""), ("--save", "runs/"), ("--plot", "a\0b"),
                                           ("--resume", "")])
def test_output_and_resume_paths_must_name_a_file(capsys, option, value):
    code, _, err = call(train.main, [option, value], capsys)
    assert code == 2
    assert_one_line(err, f"argument {option}: must name a file")


def test_option_errors_print_the_value_safely(capsys):
    code, _, err = call(train.main, ["--lr", "\x1b[2J"], capsys)
    assert code == 2 and "\x1b" not in err
    assert_one_line(err, "got '\\x1b[2J'")


@pytest.mark.parametrize("option", ["--dataset", "--cache"])
def test_an_empty_folder_option_is_refused(capsys, option):
    # Empty would mean the current folder: --cache "" wrote the cache there without a word.
    code, out, err = call(train.main, [option, ""], capsys)
    assert code == 2 and out == ""
    assert_one_line(err, f"argument {option}: must name a folder, got ''")


@pytest.mark.parametrize("module", ["nnfs.app.cli.train", "nnfs.app.cli.predict"])
def test_a_program_run_as_a_module_calls_itself_by_that_name(module):
    import os
    import subprocess
    import sys

    from tests import environment

    done = subprocess.run([sys.executable, "-m", module, "--top" if "predict" in module else "--lr"],
                          capture_output=True, text=True, env=environment(), timeout=120)
    assert done.returncode == 2
    assert_one_line(done.stderr, f"{os.path.basename(sys.executable)} -m {module}: error: argument ")


def test_the_options_given_are_told_from_defaults_however_spelled():
    args = train.parse_args(["--lr=0.5", "--optim", "adam", "--resize", "crop"])  # crop is the default
    assert args.given == {"lr", "optimizer", "resize"}
    assert train.build_parser().get_default("resize") == "crop"  # no parser's defaults changed
    assert vars(train.build_parser(suppress_defaults=True).parse_args([])) == {}


def test_given_options_needs_a_parser_without_defaults():
    from nnfs.app.cli.options import given_options

    with pytest.raises(ValueError, match="suppress_defaults=True"):
        given_options(train.build_parser(), [])


def test_run_takes_any_parsed_namespace(tmp_path, capsys):
    """run() does not need parse_args' ``given``: a Namespace of build_parser() trains, and resumes."""
    from tests.imagefolders import make_folder

    folder = make_folder(tmp_path / "data", ["a", "b"], per_class=4)
    common = ["--dataset", str(folder), "--batch_size", "4", "--save", str(tmp_path / "m.npz")]
    train.run(train.build_parser().parse_args([*common, "--epochs", "1"]))
    train.run(train.build_parser().parse_args([*common, "--epochs", "2", "--resume", str(tmp_path / "m_last.npz")]))
    assert "resuming" in capsys.readouterr().out


def test_a_leading_tilde_is_the_home_folder(tmp_path, monkeypatch):
    """The shell leaves ~ alone after =: --save=~/runs/cnn.npz made a folder named ~."""
    monkeypatch.setenv("HOME", str(tmp_path))
    args = train.parse_args(["--save=~/runs/cnn.npz", "--dataset=~/data", "--cache=~/cache"])
    assert (args.save, args.dataset, args.cache) == (
        str(tmp_path / "runs" / "cnn.npz"), str(tmp_path / "data"), str(tmp_path / "cache"))
    assert predict.parse_args(["~/m.npz", "--csv=~/p.csv", "x.png"]).csv == str(tmp_path / "p.csv")


def test_a_stray_path_says_which_option_takes_it(tmp_path, capsys, monkeypatch):
    # 'nnfs-train photos' is the natural first try: the line says the folder goes with --dataset.
    monkeypatch.chdir(tmp_path)
    (tmp_path / "photos").mkdir()
    (tmp_path / "m.npz").write_bytes(b"")
    code, out, err = call(train.main, ["photos"], capsys)
    assert code == 2 and out == ""
    assert_one_line(err, "unrecognized arguments: photos; a dataset folder is given as --dataset photos")
    code, _, err = call(train.main, ["--epochs", "2", "m.npz"], capsys)
    assert code == 2
    assert_one_line(err, "unrecognized arguments: m.npz; a checkpoint to go on training from is given "
                         "as --resume m.npz")
    code, _, err = call(train.main, ["nothing_here"], capsys)  # no such path: argparse's line alone
    assert code == 2
    assert_one_line(err, "unrecognized arguments: nothing_here (see --help)")
