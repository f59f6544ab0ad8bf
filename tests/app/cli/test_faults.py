"""Faults from outside: kills in the middle of saves, and hostile or damaged checkpoints handed to
the two programs. The user meets one line and an exit status; no file is lost."""

import json
import os
import random
import signal
import time

import numpy as np
import pytest

from nnfs.app.cli import predict, report, train
from nnfs.checkpoint import load
from nnfs.files import is_temporary

from tests.archives import npy_bytes, write_zip

from .programs import TRAIN, assert_one_line, call, contents, dataset, start

# Kills per run of the fault test; the default keeps it to a few seconds. Set it higher for a soak.
KILLS = int(os.environ.get("NNFS_FAULT_KILLS", "5"))


@pytest.mark.skipif(os.name != "posix", reason="SIGKILL")
def test_kills_at_random_moments_never_leave_an_unreadable_checkpoint(tmp_path):
    data = dataset(tmp_path, per_class=3)
    runs = tmp_path / "runs"
    best, last = runs / "m.npz", runs / "m_last.npz"
    rng = random.Random(0)
    for _ in range(KILLS):
        resume = ["--resume", last] if last.exists() else []
        process = start(TRAIN, "--dataset", data, "--epochs", "1000000", "--batch_size", "2", "--save", best,
                        *resume)
        try:
            while b"epoch " not in process.stdout.readline():  # saving an epoch or two a few ms apart
                assert process.poll() is None, process.stderr.read().decode()
            time.sleep(rng.uniform(0.0, 0.2))
        finally:
            process.kill()
            process.wait()
        for path in (best, last):  # whatever survived loads, and is complete
            loaded = load(path)
            assert loaded.extra["run"]["epoch"] >= 1
    # The next run into that folder removes what the killed ones left, and nothing else.
    process = start(TRAIN, "--dataset", data, "--epochs", str(load(last).extra["epoch"] + 1),
                    "--batch_size", "2", "--save", best, "--resume", last)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err.decode()
    assert not [name for name in os.listdir(runs) if is_temporary(name)]
    assert sorted(os.listdir(runs)) == ["m.npz", "m_confusion.png", "m_curves.png", "m_last.npz", "m_metrics.csv"]



# Kills the training program (argv after the code) just before it writes the metrics of its last epoch.
KILLED_BEFORE_THE_LAST_METRICS = """
import os, signal, sys
from nnfs.app.cli import train
epochs, write = int(sys.argv[sys.argv.index("--epochs") + 1]), train.write_history_csv
def killed_before_the_last_rows(history, path):
    if len(history["train_loss"]) == epochs:
        os.kill(os.getpid(), signal.SIGKILL)
    write(history, path)
train.write_history_csv = killed_before_the_last_rows
sys.exit(train.main(sys.argv[1:]))
"""


@pytest.mark.skipif(os.name != "posix", reason="SIGKILL")
def test_a_run_killed_while_writing_its_last_epoch_resumes_to_the_files_of_an_uninterrupted_run(tmp_path, capsys):
    """The latest state is what --resume continues after: written before the curves and the
    metrics, a kill between them left an epoch the resume found done ("nothing to train") and
    files that never got its row."""
    data = dataset(tmp_path, per_class=3)
    options = ["--dataset", data, "--epochs", "2", "--batch_size", "2"]
    code, _, err = call(train.main, [*options, "--save", tmp_path / "whole" / "m.npz"], capsys)
    assert code == 0, err
    runs = tmp_path / "runs"
    process = start("-c", KILLED_BEFORE_THE_LAST_METRICS, *options, "--save", runs / "m.npz")
    process.communicate(timeout=120)
    assert process.returncode == -signal.SIGKILL
    assert load(runs / "m_last.npz").extra["epoch"] == 1  # the epoch whose files are all written
    code, out, err = call(train.main, [*options, "--resume", runs / "m_last.npz"], capsys)
    assert code == 0, err
    assert "resuming" in out and "nothing to train" not in out
    whole = contents(tmp_path / "whole")
    assert contents(runs)["m_metrics.csv"] == whole["m_metrics.csv"]
    for name in ("m.npz", "m_last.npz"):
        with np.load(runs / name) as resumed, np.load(tmp_path / "whole" / name) as uninterrupted:
            for member in uninterrupted.files:
                if member != "meta":
                    assert np.array_equal(resumed[member], uninterrupted[member]), (name, member)
        assert load(runs / name).extra["run"] == load(tmp_path / "whole" / name).extra["run"]


def _confusion_fails(monkeypatch):
    """The end-of-run confusion matrix meets a full disk (as write_atomically raises it)."""
    import errno

    def full(matrix, class_names, path, **options):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(report, "plot_confusion_matrix", full)


def test_a_run_stopped_before_its_report_gets_it_from_a_resume_without_training(tmp_path, capsys, monkeypatch):
    """After the last epoch's files, a full disk (or a kill) before the confusion matrix: the
    resume of that finished run said "nothing to train" and wrote nothing, so the report was
    never made; the error did not say that the model and the latest state were whole."""
    data = dataset(tmp_path)
    runs = tmp_path / "runs"
    options = ["--dataset", data, "--epochs", "1", "--batch_size", "4"]
    with monkeypatch.context() as patch:
        _confusion_fails(patch)
        code, _, err = call(train.main, [*options, "--save", runs / "m.npz"], capsys)
    assert code == 1
    assert_one_line(err, f"error: cannot write {runs / 'm_confusion.png'}: No space left on device",
                    f"the model {runs / 'm.npz'} and the latest state {runs / 'm_last.npz'} are safe",
                    f"--resume {runs / 'm_last.npz'} --epochs 1 draws")  # spelled out: the default may be more
    before = contents(runs)
    assert "m_confusion.png" not in before
    code, out, err = call(train.main, [*options, "--resume", runs / "m_last.npz"], capsys)
    assert code == 0, err
    assert "nothing to train" not in out and "without training" in out and "per class on the" in out
    assert out.strip().splitlines()[-1].endswith(f"confusion matrix in {runs / 'm_confusion.png'}; "
                                                 "no other file was written")
    after = contents(runs)
    assert after.pop("m_confusion.png") and after == before
    # Once it is there, a resume of the finished run has nothing to do again.
    code, out, err = call(train.main, [*options, "--resume", runs / "m_last.npz"], capsys)
    assert code == 0, err
    assert "nothing to train" in out and "per class" not in out
    assert contents(runs) == {**before, "m_confusion.png": contents(runs)["m_confusion.png"]}


def test_a_confusion_matrix_of_an_earlier_best_model_is_redrawn_by_a_resume(tmp_path, capsys, monkeypatch):
    data = dataset(tmp_path)
    runs = tmp_path / "runs"
    options = ["--dataset", data, "--batch_size", "4", "--save", runs / "m.npz"]
    assert call(train.main, [*options, "--epochs", "1"], capsys)[0] == 0
    earlier = (runs / "m_confusion.png").read_bytes()
    record = train.RunState.record

    def always_better(self, fit, check):
        record(self, fit, check)
        self.best_val_accuracy, self.best_epoch = check.accuracy, self.epoch
        return True

    with monkeypatch.context() as patch:  # epoch 2 is the new best model; its matrix is not drawn
        patch.setattr(train.RunState, "record", always_better)
        _confusion_fails(patch)
        assert call(train.main, [*options, "--epochs", "2", "--resume", runs / "m_last.npz"], capsys)[0] == 1
    before = contents(runs)
    assert before["m_confusion.png"] == earlier and load(runs / "m.npz").extra["epoch"] == 2
    code, out, err = call(train.main, [*options, "--epochs", "2", "--resume", runs / "m_last.npz"], capsys)
    assert code == 0, err
    assert f"was not drawn from its best model {runs / 'm.npz'}" in out and "(best model, epoch 2)" in out
    after = contents(runs)
    assert after.pop("m_confusion.png") != earlier
    del before["m_confusion.png"]
    assert after == before

# -- hostile checkpoints handed to the programs -------------------------------------------------------
@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """A trained checkpoint, its dataset, and the checkpoint's arrays to tamper with."""
    root = tmp_path_factory.mktemp("model")
    data = dataset(root)
    path = root / "m.npz"
    assert train.main([str(a) for a in ["--dataset", data, "--epochs", "1", "--save", path]]) == 0
    with np.load(path) as archive:
        arrays = {name: archive[name] for name in archive.files}
    return data, path, arrays


def rewritten(path, arrays, meta_change=None):
    arrays = dict(arrays)
    meta = json.loads(arrays["meta"].tobytes().decode())
    if meta_change:
        meta_change(meta)
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    np.savez(path, **arrays)
    return path


def preprocessing(**changes):
    return lambda meta: meta["preprocessing"].update(changes)


HOSTILE = {
    "truncated": (lambda p, a: p.write_bytes(p.read_bytes()[:1000]), "truncated or corrupt"),
    "a huge header": (lambda p, a: _huge_header(p), "declares shape (10000000, 10000000) of float32 (363.8 TiB)"),
    "a terabyte layer": (lambda p, a: rewritten(p, a, lambda m: m["layers"][0]["config"].update(
        in_channels=10**6, out_channels=10**6)), "Conv2D(in_channels=1000000"),
    "a loss as a layer": (lambda p, a: rewritten(p, a, lambda m: m["layers"].__setitem__(
        1, {"class": "CrossEntropyLoss", "config": {}})), "a loss, not a layer"),
    "deep json": (lambda p, a: np.savez(p, **{**a, "meta": np.frombuffer(
        b"[" * 100_000 + b"]" * 100_000, np.uint8)}), "nested too deeply"),
    "class names not strings": (lambda p, a: rewritten(p, a, lambda m: m.__setitem__("class_names", [1, 2])),
                                "class_names must be"),
    "complex weights": (lambda p, a: rewritten(p, {**a, "net/0.weight": a["net/0.weight"].astype(
        np.complex64)}), "complex64"),
    "NaN weights": (lambda p, a: rewritten(p, {**a, "net/0.weight": a["net/0.weight"] * np.nan}),
                    "NaN or infinite"),
    "an object array": (lambda p, a: np.savez(p, **{**a, "net/0.bias": np.array([None, 1], dtype=object)}),
                        "holds Python objects"),
    "a fifo": (lambda p, a: (p.unlink(), os.mkfifo(p)), "not a regular file"),
    "a folder": (lambda p, a: (p.unlink(), p.mkdir()), "a folder, not a file"),
    "a megabyte class name": (lambda p, a: rewritten(p, a, lambda m: m["layers"][0].__setitem__("class", "x" * 10**6)),
                              "layer 0 is a 'xxxx"),
    "class names twice": (lambda p, a: rewritten(p, a, lambda m: m.__setitem__("class_names", ["a", "a"])),
                          "damaged metadata (class_names must be distinct, got 'a' more than once)"),
    "an empty class name": (lambda p, a: rewritten(p, a, lambda m: m["class_names"].__setitem__(0, "")),
                            "damaged metadata (class_names must not hold an empty name, got '' as class 0)"),
    "a version of true": (lambda p, a: rewritten(p, a, lambda m: m.__setitem__("version", True)),
                          "damaged metadata (version must be an integer, got True)"),
    "a version of 1.0": (lambda p, a: rewritten(p, a, lambda m: m.__setitem__("version", 1.0)),
                         "damaged metadata (version must be an integer, got 1.0)"),
    "a member stored twice": (lambda p, a: write_zip(p, {**{f"{k}.npy": npy_bytes(v) for k, v in a.items()},
                                                       ("net/0.weight.npy", 2): npy_bytes(a["net/0.weight"] * 100)}),
                              "member 'net/0.weight.npy' is stored twice"),
    "a long double member": (lambda p, a: write_zip(p, {**{f"{k}.npy": npy_bytes(v) for k, v in a.items()}, "optimizer/x.npy":
                                                      npy_bytes(header={"descr": "<f16", "fortran_order": False,
                                                                   "shape": (2,)}, data=b"\0" * 32)}),
                             "member 'optimizer/x.npy' "),
    "float64 weights in a float32 net": (lambda p, a: rewritten(p, {**a, "net/0.weight": a["net/0.weight"].astype(
        np.float64) * 1e300}), "net/0.weight holds float64 values; the net's parameters and buffers are stored as"),
}
PREPROCESSING = {
    "std 0": (preprocessing(std=[0.0]), "std must be a finite number in [1e-06, 1e+30]"),
    "std nan": (preprocessing(std=[float("nan")]), "std must be a finite number in [1e-06, 1e+30]"),
    "size 0": (preprocessing(image_size=[0, 0]), "image_size must be at least 1"),
    "size 100000": (preprocessing(image_size=[100000, 100000]), "image size 100000x100000"),
    "a size the net does not take": (preprocessing(image_size=[16, 16]), "does not fit its net"),
    "3 channels for a 1-channel net": (preprocessing(channels=3, mean=[0.5] * 3, std=[0.2] * 3),
                                       "does not fit its net"),
    "fewer class names than outputs": (lambda meta: meta.__setitem__("class_names", ["a"]),
                                       "1 class names are stored"),
    "a million means": (preprocessing(mean=[0.5] * 10**6), "mean must hold one number per channel (1), got [0.5, 0.5"),
}
# The optimizer's record and state: read by a resumed run only.
RESUMED = {
    "a megabyte optimizer type": (lambda p, a: rewritten(p, a, lambda m: m["optimizer"]["config"].__setitem__(
        "type", "x" * 10**6)), "damaged optimizer state (unknown optimizer 'xxxx"),
    "a negative step count": (lambda p, a: rewritten(p, a, lambda m: m["optimizer"]["config"].__setitem__(
        "step_count", -1)), "damaged optimizer state (SGD.load_state_dict: the saved step_count must be an int >= 0"),
    "a step count of 1.5": (lambda p, a: rewritten(p, a, lambda m: m["optimizer"]["config"].__setitem__(
        "step_count", 1.5)), "the saved step_count must be an int >= 0, got 1.5"),
    "a momentum beyond float32": (lambda p, a: rewritten(p, {**a, **{k: np.full(v.shape, 1e300) for k, v in a.items()
                                                                   if k.endswith(".momentum_buffer")}}),
                                  ".momentum_buffer holds "),
    "a negative second moment": (lambda p, a: _as_adam(p, a, -1.0), ".exp_avg_sq holds "),
}


def _as_adam(path, arrays, second_moment):
    """The checkpoint's SGD state rewritten as Adam's, every second moment ``second_moment``."""
    arrays = dict(arrays)
    for key in [k for k in arrays if k.endswith(".momentum_buffer")]:
        stem = key[:-len(".momentum_buffer")]
        momentum = arrays.pop(key)
        arrays[stem + ".exp_avg"], arrays[stem + ".exp_avg_sq"] = momentum, np.full_like(momentum, second_moment)

    def change(meta):
        config = meta["optimizer"]["config"]
        meta["optimizer"] = {"config": {"type": "Adam", "step_count": config["step_count"], "lr": 0.001,
                                        "betas": [0.9, 0.999], "eps": 1e-8, "weight_decay": 0.0},
                             "keys": [k[len("optimizer/"):] for k in arrays if k.startswith("optimizer/")]}
    return rewritten(path, arrays, change)


def _huge_header(path):
    """net/0.weight's header declares 10**14 values; the member still holds 64 bytes."""
    with np.load(path) as archive:
        members = {f"{name}.npy": npy_bytes(archive[name]) for name in archive.files}
    members["net/0.weight.npy"] = npy_bytes(
        header={"descr": "<f4", "fortran_order": False, "shape": (10**7, 10**7)}, data=b"\0" * 64)
    return write_zip(path, members)


def extra(**changes):
    return lambda meta: meta["extra"].update(changes)


# The training program's record in extra: each field a program reads, of the wrong form, and the
# programs that read it (predict: the dataset and the split; a resumed run: what training reads).
EXTRA = {
    "a model that does not exist": (extra(model="vgg"), "extra.model must be one of 'cnn', 'resnet', got 'vgg'",
                                    ("resume",)),
    "a model that is a number": (extra(model=3), "extra.model must be one of", ("resume",)),
    "a split of numbers": (extra(split={"train": 5, "val": None}), "extra.split must be", ("predict", "resume")),
    "a split without val": (extra(split={"train": ["a/000.png"]}), "extra.split must be", ("predict", "resume")),
    "a split leaving the folder": (extra(split={"train": ["../../etc/passwd"], "val": []}), "extra.split must be",
                                   ("predict", "resume")),
    "a split of absolute paths": (extra(split={"train": ["/etc/passwd"], "val": []}), "extra.split must be",
                                  ("predict", "resume")),
    "a dataset that is a number": (extra(dataset=5), "extra.dataset must be a folder path, got 5", ("predict",)),
    "a val_split of 2": (extra(val_split=2), "extra.val_split must be", ("resume",)),
    "a limit of 0": (extra(limit=0), "extra.limit must be", ("resume",)),
    "a negative seed": (extra(seed=-1), "extra.seed must be", ("resume",)),
    "a run state that is a list": (extra(run=[1]), "damaged run state", ("resume",)),
    "a request that is text": (extra(requested="28x28"), "extra.requested must be", ("resume",)),
    "a request of another size": (extra(requested={"image_size": [9, 9], "channels": None}),
                                  "extra.requested.image_size is 9x9, but the run was trained with 8x8",
                                  ("resume",)),
}


# Training refits its preprocessing on the dataset, so a damaged stored one matters to predict only.
CASES = [(case, program) for case in HOSTILE for program in ("predict", "resume")] + \
        [(case, "predict") for case in PREPROCESSING] + [(case, "resume") for case in RESUMED] + \
        [(case, program) for case, (_, _, programs) in EXTRA.items() for program in programs]


@pytest.mark.parametrize("case, program", CASES)
def test_hostile_checkpoints_are_one_line_errors_in_both_programs(tmp_path, capsys, model, case, program):
    data, good, arrays = model
    path = tmp_path / "m.npz"
    path.write_bytes(good.read_bytes())
    if case in HOSTILE or case in RESUMED:
        damage, message = {**HOSTILE, **RESUMED}[case]
        if case == "a fifo" and not hasattr(os, "mkfifo"):
            pytest.skip("needs FIFOs")
        damage(path, arrays)
    else:
        change, message = {**PREPROCESSING, **EXTRA}[case][:2]
        rewritten(path, arrays, change)
    outputs = tmp_path / "out"
    outputs.mkdir()
    (outputs / "m.npz").write_bytes(good.read_bytes())
    before = contents(outputs)
    if program == "predict":
        code, out, err = call(predict.main, [path, data], capsys)
    else:
        code, out, err = call(train.main, ["--dataset", data, "--epochs", "3", "--save", outputs / "m.npz",
                                           "--resume", path], capsys)
    assert code == 1
    line = assert_one_line(err, "error: ", str(path), message)
    assert len(line) < 1000, len(line)  # what a file holds is quoted shortened
    assert "allow_pickle" not in err
    assert contents(outputs) == before


def test_a_sound_checkpoint_still_predicts(model, capsys):
    data, path, _ = model
    code, out, err = call(predict.main, [path, data], capsys)
    assert code == 0, err
    assert "accuracy" in out.splitlines()[-1]


def test_fields_of_extra_a_program_does_not_read_are_the_users_own(tmp_path, capsys, model):
    """checkpoint.save takes "a JSON-able dict of anything else" as extra: a field named like one
    the training program writes, but of the user's own form, is none of predict's business, and
    resuming reads neither the epoch nor the dataset (the run state holds its own)."""
    from nnfs import checkpoint

    data, good, arrays = model
    saved = checkpoint.load(good)
    mine = tmp_path / "mine.npz"
    checkpoint.save(mine, saved.net, class_names=saved.class_names, preprocessing=saved.preprocessing,
                    extra={"model": "my-mlp", "epoch": "final", "val_accuracy": "high"})
    code, out, err = call(predict.main, [mine, data], capsys)
    assert code == 0, err
    assert "accuracy" in out.splitlines()[-1]

    resumable = rewritten(tmp_path / "m.npz", arrays, extra(epoch="final", dataset=5, batch_size="all",
                                                          val_accuracy="high"))
    code, out, err = call(train.main, ["--dataset", data, "--epochs", "2", "--save", tmp_path / "out" / "m.npz",
                                       "--resume", resumable], capsys)
    assert code == 0, err
    assert "resuming" in out


@pytest.mark.skipif(os.name != "posix", reason="pipes closed by their reader")
def test_output_into_a_closed_pipe_ends_quietly(model):
    """``predict.py ... | head -1``: once the reader has gone, no BrokenPipeError traceback."""
    import subprocess
    import sys

    from tests import environment

    from .programs import PREDICT

    data, path, _ = model
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        process = subprocess.run([sys.executable, str(PREDICT), str(path), str(data)], stdout=write_end,
                                 stderr=subprocess.PIPE, env=environment(), timeout=120)
    finally:
        os.close(write_end)
    assert process.returncode == 1
    assert b"Traceback" not in process.stderr and b"BrokenPipe" not in process.stderr


def test_a_full_disk_during_training_keeps_the_old_files_byte_for_byte(tmp_path, capsys):
    from tests.filesystems import fill, tmpfs

    data = dataset(tmp_path)
    (tmp_path / "small").mkdir()
    with tmpfs(tmp_path / "small", "size=2m") as runs:
        save = runs / "m.npz"
        assert call(train.main, ["--dataset", data, "--epochs", "1", "--save", save], capsys)[0] == 0
        before = contents(runs)
        fill(runs, leave=64 * 1024)  # room for the writability check, not for a 180 KB checkpoint
        code, out, err = call(train.main, ["--dataset", data, "--epochs", "2", "--save", save], capsys)
        assert code == 1
        assert_one_line(err, "error: cannot write ", str(runs), "No space left on device")
        assert ".tmp" not in err
        after = contents(runs)
        del after["filler"]
        assert after == before
