"""Names from the outside world (folders, files, class names in a checkpoint) are printed safely:
undecodable bytes and control characters as escapes, on any output encoding, never a crash."""

import os
import shutil

import pytest

from nnfs.app.cli import predict
from nnfs.app.cli.console import printable
from nnfs.checkpoint import load, save

from tests.imagefolders import make_folder, write_image

from .programs import PREDICT, TRAIN, assert_one_line, call, run

ESC = "\x1b"
HOSTILE_NAME = f"{ESC}]0;owned{ESC}\\{ESC}[2J\u202egpj.exe\n"


@pytest.mark.parametrize("text, shown", [
    ("plain name", "plain name"),
    ("chat 猫 café 🙂", "chat 猫 café 🙂"),
    ("C:\\data\\cats", "C:\\data\\cats"),
    (f"{ESC}[31mred{ESC}[0m", "\\x1b[31mred\\x1b[0m"),
    ("line\nbreak\rand\ttab\x00\x7f\x9b", "line\\x0abreak\\x0dand\\x09tab\\x00\\x7f\\x9b"),
    ("caf" + os.fsdecode(b"\xe9"), "caf\\xe9"),
    ("\u202egpj.exe", "\\u202egpj.exe"),
    ("a\u2028b", "a\\u2028b"),
    ("\ud800 lone", "\\ud800 lone"),
])
def test_printable(text, shown):
    assert printable(text) == shown
    printable(text).encode("ascii", "backslashreplace").decode("ascii")  # always encodable
    assert ESC not in printable(text) and "\n" not in printable(text)


@pytest.fixture
def odd_dataset(tmp_path):
    """Class folders named with an undecodable byte and with terminal escapes (where the file
    system allows such names)."""
    root = tmp_path / "data"
    make_folder(root, ["plain"], per_class=4)
    names = []
    for raw in (os.fsencode(str(root)) + b"/caf\xe9", os.fsencode(str(root / HOSTILE_NAME.strip()))):
        try:
            os.mkdir(raw)
        except (OSError, ValueError):  # e.g. a file system that accepts only valid UTF-8
            continue
        names.append(os.fsdecode(os.path.basename(raw)))
        for image in (root / "plain").iterdir():
            shutil.copy(image, os.path.join(os.fsdecode(raw), image.name))
    if not names:
        pytest.skip("this file system refuses such names")
    return root, names


@pytest.mark.parametrize("encoding", ["utf-8", "ascii"])
def test_training_and_predicting_on_odd_names_with_a_strict_output(tmp_path, odd_dataset, encoding):
    root, names = odd_dataset
    save_path = tmp_path / "m.npz"
    status, out, err = run(TRAIN, "--dataset", root, "--epochs", "1", "--save", save_path,
                           PYTHONIOENCODING=f"{encoding}:strict")
    assert status == 0, err
    assert ESC not in out + err and "Traceback" not in err
    if "caf" + os.fsdecode(b"\xe9") in names:
        assert "caf\\xe9" in out
    assert sorted(load(save_path).class_names) == sorted(names + ["plain"])
    status, out, err = run(PREDICT, save_path, root, PYTHONIOENCODING=f"{encoding}:strict")
    assert status == 0, err
    assert ESC not in out + err and "Traceback" not in err and "\u202e" not in out


def test_class_names_from_a_checkpoint_reach_the_terminal_escaped(tmp_path, capsys):
    from nnfs.app.models import reference_cnn
    from nnfs.data import Preprocessing

    net = reference_cnn(1, 8, 2)
    save(tmp_path / "m.npz", net, class_names=[HOSTILE_NAME, "b"],
         preprocessing=Preprocessing((8, 8), 1, [0.5], [0.25]))
    image = write_image(tmp_path / "x.png")
    code, out, err = call(predict.main, [tmp_path / "m.npz", image], capsys)
    assert code == 0, err
    assert ESC not in out and "\u202e" not in out and len(out.splitlines()) == 1
    assert "\\x1b]0;owned" in out


def test_an_error_naming_an_odd_path_is_one_safe_line(tmp_path, capsys):
    missing = tmp_path / f"{ESC}[2Jgone.npz"
    code, _, err = call(predict.main, [missing, tmp_path], capsys)
    assert code == 1
    assert ESC not in err
    assert_one_line(err, "checkpoint not found", "\\x1b[2Jgone.npz")


def test_every_line_is_written_in_one_write_with_its_newline(monkeypatch):
    """The ranks of an mpiexec run share one terminal: a line written as text, then newline,
    could be joined with another rank's line between the two writes."""
    import io

    from nnfs.app.cli import console

    class Recording(io.TextIOBase):
        def __init__(self):
            self.writes = []

        def write(self, text):
            self.writes.append(text)
            return len(text)

    out, err = Recording(), Recording()
    monkeypatch.setattr("sys.stdout", out)
    monkeypatch.setattr("sys.stderr", err)
    console.say("epoch 1")
    console.warn("careful")
    console.error("bad \x1b[2J name")
    console.notice("interrupted")
    assert out.writes == ["epoch 1\n"]
    assert err.writes == ["warning: careful\n", "error: bad \\x1b[2J name\n", "interrupted\n"]


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full here")
def test_a_full_standard_output_is_named(tmp_path):
    """> out.txt on a full disk: the line says which file could not be written, the output."""
    import subprocess
    import sys

    from tests import environment
    from tests.app.cli.programs import TRAIN, dataset

    data = dataset(tmp_path)
    with open("/dev/full", "w") as full:
        done = subprocess.run([sys.executable, str(TRAIN), "--dataset", str(data), "--epochs", "1",
                               "--save", str(tmp_path / "m.npz")], stdout=full, stderr=subprocess.PIPE,
                              text=True, env=environment(), timeout=120)
    assert done.returncode == 1
    assert done.stderr.splitlines()[-1] == "error: cannot write standard output: No space left on device"


def test_a_closed_stream_or_an_error_without_a_number_loses_nothing_more(monkeypatch):
    """Started with stdout closed (>&-), sys.stdout is None: the line has nowhere to go. A
    stream's own error without an errno keeps its message."""
    import io

    from nnfs.app.cli import console

    monkeypatch.setattr("sys.stdout", None)
    console.say("epoch 1")  # no AttributeError

    class Vanishing(io.TextIOBase):
        def write(self, text):
            raise OSError("device vanished")

    monkeypatch.setattr("sys.stdout", Vanishing())
    with pytest.raises(OSError, match="^device vanished$"):
        console.say("epoch 1")


ASCII_LOCALE = {"LC_ALL": "C", "LANG": "C", "PYTHONUTF8": "0", "PYTHONIOENCODING": None}
UTF8_LOCALE = {"LC_ALL": "C.UTF-8", "PYTHONUTF8": "1", "PYTHONIOENCODING": None}


@pytest.mark.parametrize("trained, used", [(UTF8_LOCALE, ASCII_LOCALE), (ASCII_LOCALE, UTF8_LOCALE)],
                         ids=["utf8-then-ascii", "ascii-then-utf8"])
def test_names_that_are_not_ascii_work_in_any_locale_and_across_locales(tmp_path, trained, used):
    """Under LC_ALL=C (no UTF-8 mode) Python reads 'café' as the escapes of its bytes: predicting
    with a model trained under UTF-8 failed with a traceback (the recorded split could not be
    encoded), --split val found none of its files, --resume saw another split, and a model
    trained under LC_ALL=C matched no folder under UTF-8. Names are recorded the same in every
    locale, and read back as each locale names the files."""
    root = make_folder(tmp_path / "données", ["café", "chat猫", "plain"], per_class=5)
    save = tmp_path / "rés" / "m.npz"
    status, out, err = run(TRAIN, "--dataset", root, "--epochs", "1", "--batch_size", "4", "--save", save, **trained)
    assert status == 0, err
    for argv in ([save, root, "--csv", tmp_path / "p.csv"], [save, "--split", "val"]):
        status, out, err = run(PREDICT, *argv, **used)
        assert status == 0 and "Traceback" not in err, err
        assert "accuracy" in out and "caf" in out, out  # the folders' names matched the classes
    assert "per class on the 3 held-out (validation) images" in out
    assert (tmp_path / "p.csv").read_text(encoding="utf-8").count("café/") == 5
    status, out, err = run(TRAIN, "--resume", tmp_path / "rés" / "m_last.npz", "--epochs", "2", "--batch_size", "4",
                           "--dataset", root, **used)
    assert status == 0 and "Traceback" not in err, err
    assert "resuming" in out and "epoch  2/2" in out


def test_a_model_trained_on_a_macs_names_predicts_and_resumes_on_a_linux_copy(tmp_path, capsys):
    """macOS writes 'café' decomposed (NFD), Linux tools composed (NFC): the model of a dataset
    copied from a Mac named its class decomposed, and on a composed copy predicting matched no
    folder to it, --split val found none of its files, and --resume saw another split."""
    import unicodedata

    from tests.app.cli.programs import train

    names = ["cafe\u0301", "the\u0301", "plain"]  # as a Mac writes them
    mac = make_folder(tmp_path / "mac", names, per_class=5)
    save_path = tmp_path / "m.npz"
    assert train(mac, save_path, "--epochs", "1") == 0
    capsys.readouterr()
    assert load(save_path).class_names == sorted(names)
    linux = tmp_path / "linux"  # the same images, the names composed
    for name in names:
        shutil.copytree(mac / name, linux / unicodedata.normalize("NFC", name))
    for argv in ([save_path, linux], [save_path, "--split", "val", linux]):
        code, out, err = call(predict.main, argv, capsys)
        assert code == 0, err
        assert "accuracy" in out and "in folders named after a class" in out, out
    assert "per class on the 3 held-out (validation) images" in out
    code = train(linux, tmp_path / "m2.npz", "--resume", tmp_path / "m_last.npz", "--epochs", "2")
    out, err = capsys.readouterr()
    assert code == 0 and "another split" not in err and "trained on" not in err, err
    assert "resuming" in out and "epoch  2/2" in out


def test_records_of_one_run_in_two_unicode_forms_are_one_run(tmp_path, capsys):
    """A run begun on a Mac's copy (names decomposed) and resumed on a composed copy records its
    split in both forms: a resume compared them by name_key, but the check of the files beside
    the checkpoint compared them as written and took the run's own best model for another
    run's."""
    import copy
    import unicodedata

    from nnfs.app.cli.outputs import same_run
    from nnfs.checkpoint import metadata
    from tests.app.cli.programs import train

    mac = make_folder(tmp_path / "mac", ["cafe\u0301", "plain"], per_class=4)
    assert train(mac, tmp_path / "m.npz", "--epochs", "1") == 0
    capsys.readouterr()
    first = metadata(tmp_path / "m.npz")
    composed = copy.deepcopy(first)
    split = composed["extra"]["split"]
    for name in split:
        split[name] = [unicodedata.normalize("NFC", path) for path in split[name]]
    assert split != first["extra"]["split"]  # the record does hold a decomposed name
    assert same_run(first, composed) and same_run(composed, first)
    other = copy.deepcopy(composed)
    other["extra"]["split"]["val"][0] = "plain/another.png"
    assert not same_run(first, other)
    other = copy.deepcopy(composed)
    other["extra"]["split"] = None
    assert not same_run(first, other)


def test_resuming_on_other_classes_names_a_few_of_them(tmp_path, capsys):
    """The warning printed both lists whole: thousands of names for a big dataset."""
    from nnfs.app.cli.resumed import other_classes

    trained = [f"class{i:04d}" for i in range(1000)]
    found = trained[:998] + ["new_a", "new_b"]
    message = other_classes("m.npz", trained, found)
    assert message == ("m.npz was trained on 1000 classes, this dataset has 1000 (the model lacks 'new_a', 'new_b'; "
                       "the dataset lacks 'class0998', 'class0999')")
    message = other_classes("m.npz", trained, [f"class{i:04d}" for i in range(2000)])
    assert message.endswith("(the model lacks 'class1000', 'class1001', 'class1002' and 997 more)") and len(message) < 200
    assert other_classes("m.npz", ["b", "a"], ["a", "b"]).endswith(
        "(the same names in another order, so its labels mean other classes)")
    assert "lacks" not in other_classes("m.npz", ["cafe\u0301", "x"], ["x", "caf\u00e9"])
