"""The training program's output files: computed in one place, checked before anything is
loaded or trained (clashes, writability), written atomically, and reported honestly."""

import os
import pathlib
import subprocess
import sys
import zipfile

import pytest

from nnfs.app.cli import train
from nnfs.checkpoint import load

from .programs import assert_one_line, call, contents, dataset


def test_output_files_lists_every_file_a_run_writes():
    args = train.parse_args(["--save", "out/model.npz"])
    assert train.output_files(args) == {"checkpoint": "out/model.npz", "last": "out/model_last.npz",
                                        "curves": "out/model_curves.png", "metrics": "out/model_metrics.csv",
                                        "confusion": "out/model_confusion.png"}
    args = train.parse_args(["--save", "m", "--plot", "p.png"])
    assert train.output_files(args) == {"checkpoint": "m", "last": "m_last.npz", "curves": "p.png",
                                        "metrics": "m_metrics.csv", "confusion": "m_confusion.png"}


@pytest.mark.parametrize("options, message", [
    (["--save", "m.png", "--plot", "m.png"], "the checkpoint file and the curves file would both be m.png"),
    (["--save", "m.npz", "--plot", "m.npz"], "the checkpoint file and the curves file"),
    (["--save", "m.npz", "--plot", "m_last.npz"], "the last file and the curves file"),
    (["--save", "sub/../m.npz", "--plot", "m.npz"], "would both be"),
    (["--save", "m.npz", "--plot", "link.png"], "would both be"),  # link.png -> m.npz
    (["--save", "m_last", "--plot", "m_last_last.npz"], "the last file and the curves file"),
    (["--save", "new.npz", "--resume", "old.npz", "--plot", "old.npz"],
     "the curves file would replace the --resume checkpoint old.npz"),
    # A model of another run, whatever its name; another zip archive is no PNG either.
    (["--save", "new.npz", "--plot", "other.npz"],
     "the curves file would replace other.npz, an nnfs checkpoint; give it another path"),
    (["--save", "new.npz", "--plot", "sub/best"], "the curves file would replace sub/best, an nnfs checkpoint"),
    (["--save", "new.npz", "--plot", "photos.zip"], "the curves file would replace photos.zip, which is not a PNG"),
])
def test_clashing_outputs_are_refused_before_anything_is_loaded(tmp_path, capsys, monkeypatch, options,
                                                                 message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sub").mkdir()
    (tmp_path / "m.npz").write_bytes(b"a good model")
    (tmp_path / "old.npz").write_bytes(b"the run to resume")
    from nnfs.checkpoint import save
    from nnfs.layers import Linear
    from nnfs.net import Net

    for path in (tmp_path / "other.npz", tmp_path / "sub" / "best"):  # models of other runs
        save(path, Net([Linear(2, 2)]))
    with zipfile.ZipFile(tmp_path / "photos.zip", "w") as archive:
        archive.writestr("cat.jpg", b"...")
    if hasattr(os, "symlink"):
        os.symlink("m.npz", "link.png")
    elif "link.png" in options:
        pytest.skip("no symbolic links here")
    before = contents(tmp_path)
    # The dataset does not exist: the clash must be found before the dataset is looked at.
    code, out, err = call(train.main, ["--dataset", "nowhere", *options], capsys)
    assert code == 2 and out == ""
    assert_one_line(err, message)
    assert contents(tmp_path) == before


@pytest.mark.parametrize("options", [["--save", "data/a/m.npz"], ["--plot", "data/curves.png"],
                                     ["--save", "inside/m.npz"]])  # inside -> data
def test_outputs_inside_the_dataset_folder_are_refused(tmp_path, capsys, monkeypatch, options):
    monkeypatch.chdir(tmp_path)
    data = dataset(tmp_path)
    if hasattr(os, "symlink"):
        os.symlink("data", "inside")
    elif "inside/m.npz" in options:
        pytest.skip("no symbolic links here")
    before = contents(data / "a")
    code, out, err = call(train.main, ["--dataset", "data", *options], capsys)
    assert code == 2
    assert_one_line(err, "would be written into the dataset folder data; save it elsewhere")
    assert contents(data / "a") == before and sorted(os.listdir(data)) == ["a", "b"]


def test_the_resume_file_may_be_updated_as_the_latest_state(tmp_path, capsys):
    data = dataset(tmp_path)
    save = tmp_path / "runs" / "m.npz"
    assert call(train.main, ["--dataset", data, "--epochs", "1", "--save", save], capsys)[0] == 0
    code, out, err = call(train.main, ["--dataset", data, "--epochs", "2", "--save", save,
                                       "--resume", save.parent / "m_last.npz"], capsys)
    assert code == 0, err
    assert load(save.parent / "m_last.npz").extra["epoch"] == 2


@pytest.mark.parametrize("case", ["file in the way", "a folder", "a fifo"])
def test_an_unwritable_save_path_is_found_before_the_dataset_loads(tmp_path, capsys, case):
    if case == "file in the way":
        (tmp_path / "file").write_text("in the way")
        save = tmp_path / "file" / "m.npz"
    elif case == "a folder":
        save = tmp_path / "m.npz"
        save.mkdir()
    else:
        if not hasattr(os, "mkfifo"):
            pytest.skip("needs FIFOs")
        save = tmp_path / "m.npz"
        os.mkfifo(save)
    code, out, err = call(train.main, ["--dataset", tmp_path / "nowhere", "--save", save], capsys)
    assert code == 1 and out == ""
    line = assert_one_line(err, "error: cannot write ")
    assert str(tmp_path) in line and ".tmp" not in line and "nowhere" not in line


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_a_fifo_as_the_curves_file_does_not_hang(tmp_path, capsys):
    os.mkfifo(tmp_path / "curves.png")
    code, _, err = call(train.main, ["--dataset", tmp_path / "nowhere", "--save", tmp_path / "m.npz",
                                     "--plot", tmp_path / "curves.png"], capsys)
    assert code == 1
    assert_one_line(err, "curves.png: is not a regular file")


def test_the_final_line_claims_only_files_this_run_wrote(tmp_path, capsys, monkeypatch):
    data = dataset(tmp_path)
    save = tmp_path / "m.npz"
    assert call(train.main, ["--dataset", data, "--epochs", "1", "--save", save], capsys)[0] == 0
    best = save.read_bytes()
    record = train.RunState.record

    def never_better(self, fit, check):
        best = self.best_val_accuracy, self.best_epoch
        record(self, fit, check)
        self.best_val_accuracy, self.best_epoch = best
        return False

    monkeypatch.setattr(train.RunState, "record", never_better)
    code, out, err = call(train.main, ["--dataset", data, "--epochs", "2", "--save", save,
                                       "--resume", tmp_path / "m_last.npz"], capsys)
    assert code == 0, err
    final = out.strip().splitlines()[-1]
    assert f"no epoch of this run beat it, so {save} was not written" in final
    assert f"latest state to {tmp_path / 'm_last.npz'}" in final and "model saved to" not in final
    assert save.read_bytes() == best


def test_nothing_to_train_writes_and_claims_nothing(tmp_path, capsys):
    data = dataset(tmp_path)
    save = tmp_path / "runs" / "m.npz"
    assert call(train.main, ["--dataset", data, "--epochs", "2", "--save", save], capsys)[0] == 0
    before = contents(save.parent)
    code, out, err = call(train.main, ["--dataset", data, "--epochs", "2", "--save", save,
                                       "--resume", save.parent / "m_last.npz"], capsys)
    assert code == 0, err
    assert "nothing to train" in out and "already holds epoch 2" in out and "saved to" not in out
    assert contents(save.parent) == before


@pytest.mark.skipif(os.name != "posix", reason="stale temporary files are recognised by POSIX process ids")
def test_a_run_removes_what_killed_runs_left_in_its_folder(tmp_path, capsys):
    from nnfs.files import _host_tag

    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    runs = tmp_path / "runs"
    runs.mkdir()
    stale = runs / f".m.npz.nnfs-{_host_tag()}-{child.pid}-01234567.tmp"
    stale.write_bytes(b"half a checkpoint")
    foreign = runs / "notes.tmp"
    foreign.write_bytes(b"not ours")
    assert call(train.main, ["--dataset", dataset(tmp_path), "--epochs", "1", "--save", runs / "m.npz"],
                capsys)[0] == 0
    assert sorted(os.listdir(runs)) == ["m.npz", "m_confusion.png", "m_curves.png", "m_last.npz", "m_metrics.csv",
                                        "notes.tmp"]


def test_a_run_that_stops_before_writing_leaves_no_empty_folder(tmp_path, capsys, monkeypatch):
    # The save location is checked (its folders made and removed again) before the dataset is
    # looked at; the dataset is missing, so nothing is written and no folder stays behind.
    monkeypatch.chdir(tmp_path)
    code, out, err = call(train.main, ["--dataset", "nowhere", "--save", "new/runs/m.npz"], capsys)
    assert code == 1 and "nowhere" in err
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("options, victim, message", [
    (["--save", "victim/notes.txt"], "notes.txt", "the checkpoint file would replace victim/notes.txt, which is "
                                                  "not an nnfs checkpoint; give --save another path"),
    (["--save", "victim/photos.npz"], "photos.npz", "which is not an nnfs checkpoint"),  # a zip of other files
    (["--plot", "victim/photo.png"], "photo.png", "the curves file would replace victim/photo.png, which is "
                                                  "not a PNG drawn by nnfs"),
    (["--save", "victim/notes.npz"], "notes_metrics.csv", "the metrics file would replace "
                                                          "victim/notes_metrics.csv, which is not a CSV written by nnfs"),
])
def test_an_output_never_replaces_a_file_of_another_kind(tmp_path, capsys, monkeypatch, options, victim, message):
    import zipfile

    from tests.imagefolders import write_image

    monkeypatch.chdir(tmp_path)
    (tmp_path / "victim").mkdir()
    (tmp_path / "victim" / "notes.txt").write_text("my notes")
    (tmp_path / "victim" / "notes_metrics.csv").write_text("a,b\n1,2\n")
    with zipfile.ZipFile(tmp_path / "victim" / "photos.npz", "w") as archive:
        archive.writestr("cat.jpg", b"a photo")
    write_image(tmp_path / "victim" / "photo.png")
    before = contents(tmp_path / "victim")
    # The dataset does not exist: refused before it is looked at.
    code, out, err = call(train.main, ["--dataset", "nowhere", *options], capsys)
    assert code == 2 and out == ""
    assert_one_line(err, message)
    assert contents(tmp_path / "victim") == before


def test_a_run_replaces_the_files_of_a_previous_run(tmp_path, capsys):
    data = dataset(tmp_path)
    save = tmp_path / "runs" / "m.npz"
    assert call(train.main, ["--dataset", data, "--epochs", "1", "--save", save], capsys)[0] == 0
    (save.parent / "m_empty.png").write_bytes(b"")  # an empty file loses nothing
    before = contents(save.parent)
    code, out, err = call(train.main, ["--dataset", data, "--epochs", "2", "--save", save, "--plot",
                                       save.parent / "m_empty.png"], capsys)
    assert code == 0, err
    after = contents(save.parent)
    assert all(after[name] != before[name] for name in ("m.npz", "m_last.npz", "m_metrics.csv", "m_empty.png"))


def test_the_pngs_beside_an_earlier_checkpoint_are_replaced_even_unmarked(tmp_path, capsys):
    """PNGs drawn before nnfs marked its PNGs: the run that made them runs again, beside its
    checkpoint; an unmarked PNG named with --plot, or beside no checkpoint, is still kept."""
    from tests.imagefolders import write_image

    data = dataset(tmp_path)
    save = tmp_path / "runs" / "m.npz"
    assert call(train.main, ["--dataset", data, "--epochs", "1", "--save", save], capsys)[0] == 0
    for name in ("m_curves.png", "m_confusion.png", "photo.png"):
        write_image(save.parent / name)  # a plain PNG, as older versions drew them
    before = contents(save.parent)
    code, out, err = call(train.main, ["--dataset", data, "--epochs", "1", "--save", save], capsys)
    assert code == 0, err
    after = contents(save.parent)
    assert after["m_curves.png"] != before["m_curves.png"] and after["m_confusion.png"] != before["m_confusion.png"]
    code, out, err = call(train.main, ["--dataset", data, "--epochs", "1", "--save", save,
                                       "--plot", save.parent / "photo.png"], capsys)
    assert code == 2 and "photo.png" in err
    write_image(tmp_path / "other_curves.png")
    code, out, err = call(train.main, ["--dataset", data, "--epochs", "1", "--save", tmp_path / "other.npz"], capsys)
    assert code == 2 and "other_curves.png" in err
    assert contents(save.parent)["photo.png"] == before["photo.png"]


def test_an_empty_file_at_save_is_no_earlier_run(tmp_path, capsys, monkeypatch):
    """Only an nnfs checkpoint at --save makes unmarked PNGs beside it an earlier run's: an
    empty file there (a touch, a failed copy) must not cost the photos named like its PNGs."""
    from tests.imagefolders import write_image

    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "cnn.npz").write_bytes(b"")
    write_image(tmp_path / "runs" / "cnn_curves.png")
    write_image(tmp_path / "runs" / "cnn_confusion.png")
    before = contents(tmp_path / "runs")
    code, out, err = call(train.main, ["--dataset", "nowhere", "--save", "runs/cnn.npz"], capsys)
    assert code == 2 and out == ""
    assert_one_line(err, "which is not a PNG drawn by nnfs")
    assert contents(tmp_path / "runs") == before


def test_beside_an_earlier_checkpoint_only_pngs_count_as_its_pngs(tmp_path, capsys):
    """An archive or notes under the confusion matrix's name are no run's PNG: kept."""
    data = dataset(tmp_path)
    save = tmp_path / "runs" / "m.npz"
    assert call(train.main, ["--dataset", data, "--epochs", "1", "--save", save], capsys)[0] == 0
    with zipfile.ZipFile(save.parent / "m_confusion.png", "w") as archive:
        archive.writestr("cat.jpg", b"a photo")
    before = contents(save.parent)
    code, out, err = call(train.main, ["--dataset", data, "--epochs", "1", "--save", save], capsys)
    assert code == 2
    assert_one_line(err, "the confusion file would replace", "which is not a PNG drawn by nnfs")
    assert contents(save.parent) == before


def test_a_numpy_archive_with_a_meta_array_is_no_checkpoint_and_is_kept(tmp_path, capsys):
    """A zip holding meta.npy is not enough: the record must read as a checkpoint's."""
    import numpy as np

    np.savez(tmp_path / "experiment.npz", meta=np.arange(3), X=np.ones((4, 2)))
    before = (tmp_path / "experiment.npz").read_bytes()
    code, out, err = call(train.main, ["--dataset", "nowhere", "--save", tmp_path / "experiment.npz"], capsys)
    assert code == 2
    assert_one_line(err, "experiment.npz, which is not an nnfs checkpoint")
    assert (tmp_path / "experiment.npz").read_bytes() == before


def test_a_link_beside_an_earlier_checkpoint_is_no_run_png(tmp_path, capsys):
    """The writer follows a link: under the confusion matrix's name it could lead to a photo."""
    from tests.imagefolders import write_image

    data = dataset(tmp_path)
    save = tmp_path / "runs" / "m.npz"
    assert call(train.main, ["--dataset", data, "--epochs", "1", "--save", save], capsys)[0] == 0
    photo = write_image(tmp_path / "photos" / "me.png")
    before = photo.read_bytes()
    (save.parent / "m_confusion.png").unlink()
    (save.parent / "m_confusion.png").symlink_to(photo)
    code, out, err = call(train.main, ["--dataset", data, "--epochs", "1", "--save", save], capsys)
    assert code == 2 and "m_confusion.png" in err
    assert photo.read_bytes() == before


def test_plot_at_the_default_path_is_the_default(tmp_path, capsys):
    """--plot spelling out the default curves path beside an earlier checkpoint is accepted as
    leaving it out is; its unmarked PNG (drawn by an older version) is that run's."""
    from tests.imagefolders import write_image

    data = dataset(tmp_path)
    save = tmp_path / "runs" / "m.npz"
    assert call(train.main, ["--dataset", data, "--epochs", "1", "--save", save], capsys)[0] == 0
    write_image(save.parent / "m_curves.png")  # unmarked, as versions before the mark drew it
    before = contents(save.parent)
    code, out, err = call(train.main, ["--dataset", data, "--epochs", "1", "--save", save, "--plot",
                                       save.parent / "m_curves.png"], capsys)
    assert code == 0, err
    assert contents(save.parent)["m_curves.png"] != before["m_curves.png"]


def test_an_unmarked_plot_elsewhere_beside_an_earlier_run_says_how_to_go_on(tmp_path, capsys):
    """A run of an older version with --plot up/curves.png: its curves are unmarked, and only
    their owner can tell them from a photo. Refused, keeping the file, with what to do."""
    from tests.imagefolders import write_image

    data = dataset(tmp_path)
    save, plot = tmp_path / "up" / "m.npz", tmp_path / "up" / "curves.png"
    argv = ["--dataset", data, "--epochs", "1", "--save", save, "--plot", plot]
    assert call(train.main, argv, capsys)[0] == 0
    write_image(plot)
    before = contents(save.parent)
    code, out, err = call(train.main, argv, capsys)
    assert code == 2
    assert_one_line(err, f"the curves file would replace {plot}, which is not a PNG drawn by nnfs",
                    "give --plot another path, or remove that file if it is an earlier run's")
    assert contents(save.parent) == before
    plot.unlink()
    assert call(train.main, argv, capsys)[0] == 0
    assert call(train.main, argv, capsys)[0] == 0  # now marked: the command repeats


def test_a_damaged_file_at_save_is_refused_in_one_line(tmp_path, capsys):
    """A zip whose header a bare zipfile cannot read (NotImplementedError: zip file version
    11.3) is no checkpoint, kept, and the run says so in one line."""
    import shutil

    fixture = pathlib.Path(__file__).resolve().parents[2] / "fixtures" / "damaged_zip_header.npz"
    shutil.copy(fixture, tmp_path / "m.npz")
    code, out, err = call(train.main, ["--dataset", "nowhere", "--save", tmp_path / "m.npz"], capsys)
    assert code == 2 and "Traceback" not in err
    assert_one_line(err, "m.npz, which is not an nnfs checkpoint")
    assert (tmp_path / "m.npz").read_bytes() == fixture.read_bytes()
