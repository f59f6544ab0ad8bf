"""The programs under mpiexec: what is meant for the user is said once (by rank 0), and a failure
of one rank alone is said by that rank, naming it. Emulated ranks (the launcher's environment, a
stand-in communicator) and, where mpi4py and mpiexec are installed, a real ``mpiexec -n 2``."""

import importlib.util
import shutil
import subprocess
import sys

import pytest

from nnfs.app.cli import console, job, process
from nnfs.app.cli import train as train_program
from tests import ROOT, environment

from .programs import TRAIN, call, dataset

LAUNCHER_RANKS = ("PMI_RANK", "PMIX_RANK", "OMPI_COMM_WORLD_RANK")


@pytest.fixture
def rank(monkeypatch):
    """``rank(n)`` makes this process rank ``n`` of an mpiexec run, as the launcher says it."""
    for name in LAUNCHER_RANKS:
        monkeypatch.delenv(name, raising=False)

    def become(number, variable="PMI_RANK"):
        monkeypatch.setenv(variable, str(number))

    return become


@pytest.mark.parametrize("variable", LAUNCHER_RANKS)
def test_the_launcher_rank_is_read_from_the_environment(rank, variable):
    assert process.launcher_rank() is None and process.speaks_for_the_job()
    rank(3, variable)
    assert process.launcher_rank() == 3 and not process.speaks_for_the_job()
    rank(0, variable)
    assert process.speaks_for_the_job()


def test_a_rank_other_than_0_prints_only_the_failures_it_names_itself(rank, capsys):
    rank(1)
    console.say("epoch 1")
    console.warn("careful")
    console.error("bad option")
    console.notice("interrupted")
    assert capsys.readouterr() == ("", "")
    console.error("out of memory", rank=1)
    console.notice("interrupted (SIGTERM)", rank=1)
    assert capsys.readouterr().err == "error: rank 1: out of memory\nrank 1: interrupted (SIGTERM)\n"


@pytest.mark.parametrize("argv, fragment", [
    (["--momentum", "0.5", "--optimizer", "adam"], "--momentum applies to --optimizer sgd only"),
    (["--epochs", "0"], "argument --epochs"),
    (["--save", "m.png", "--plot", "m.png"], "would both be"),
])
def test_an_option_error_is_said_by_rank_0_alone(rank, capsys, tmp_path, argv, fragment):
    argv = ["--dataset", dataset(tmp_path), *argv]
    for number, lines in ((1, 0), (0, 1)):
        rank(number)
        code, out, err = call(train_program.main, argv, capsys)
        assert code == 2 and out == ""
        assert len(err.splitlines()) == lines, err
        assert fragment in err or not lines


def test_help_is_printed_by_rank_0_alone(rank, capsys):
    rank(1)
    assert call(train_program.main, ["--help"], capsys) == (0, "", "")


class Ranks:
    """A stand-in for the communicator of rank ``rank`` of ``size``: records abort()."""

    def __init__(self, rank, size=2):
        self.rank, self.size, self.aborted = rank, size, []

    @property
    def is_root(self):
        return self.rank == 0

    def abort(self, code=1):
        self.aborted.append(code)


def test_rank_0_says_a_failure_plainly_and_ends_the_job(capsys):
    world = Ranks(0)
    assert job.stop_job(world, 1, "dataset folder not found: d") == 1
    assert capsys.readouterr().err == "error: dataset folder not found: d\n"
    assert world.aborted == [1]


def test_another_rank_waits_for_rank_0_then_names_itself(rank, capsys, monkeypatch):
    """Rank 0 meeting the same failure ends the job during the wait (the line is said once); a rank
    still alive after it failed alone, and says so, naming itself."""
    waits = []
    monkeypatch.setattr(job.time, "sleep", waits.append)
    rank(1)
    world = Ranks(1)
    assert job.stop_job(world, 143, "interrupted (SIGTERM) in epoch 2/3", line=console.notice) == 143
    # The grace, then a moment for the launcher to forward the line before the abort ends it.
    assert waits == [job.RANK_GRACE, job.ABORT_DELAY]
    assert capsys.readouterr().err == "rank 1: interrupted (SIGTERM) in epoch 2/3\n"
    assert world.aborted == [143]


@pytest.fixture
def job_of_two(rank, monkeypatch):
    """``job_of_two(n)``: this process is rank ``n`` of an mpiexec run of 2 that fails before it
    joins the job; returns the stand-in communicator it joins to end the job (records abort())."""
    monkeypatch.setattr(job.time, "sleep", lambda seconds: None)

    def become(number):
        rank(number)
        monkeypatch.setenv("PMI_SIZE", "2")
        world = Ranks(number)
        monkeypatch.setattr(job.dist, "join_to_abort", lambda: world, raising=False)
        return world

    return become


def test_a_rank_that_alone_gets_a_bad_option_names_itself_and_ends_the_job(job_of_two, capsys, tmp_path):
    """The other ranks wait for it in MPI's start-up, where no signal reaches them: only an abort
    from this rank ends them (it used to exit silently and leave them there forever)."""
    argv = ["--dataset", dataset(tmp_path), "--lr", "-1"]
    world = job_of_two(1)
    assert call(train_program.main, argv, capsys) == (
        2, "", "error: rank 1: argument --lr: must be a finite number > 0, got -1 (see --help)\n")
    assert world.aborted == [2]

    world = job_of_two(0)  # rank 0 meets it too: the parser's line once, and the job ends
    code, out, err = call(train_program.main, argv, capsys)
    assert (code, out, world.aborted) == (2, "", [2])
    assert err.endswith(": error: argument --lr: must be a finite number > 0, got -1 (see --help)\n")
    assert len(err.splitlines()) == 1


def test_a_rank_whose_environment_is_refused_before_joining_ends_the_job(job_of_two, capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("NNFS_DTYPE", "float16")
    world = job_of_two(1)
    code, out, err = call(train_program.main, ["--dataset", dataset(tmp_path)], capsys)
    assert (code, out, world.aborted) == (1, "", [1])
    assert err.startswith("error: rank 1: unknown dtype 'float16'") and len(err.splitlines()) == 1, err


class JobWorld:
    """A stand-in for ``MPI.COMM_WORLD`` as the launcher joins it: records Abort()."""

    def __init__(self, rank):
        self.rank, self.aborted = rank, []

    def Get_rank(self):
        return self.rank

    def Abort(self, code):
        self.aborted.append(code)


@pytest.mark.parametrize("number", [0, 1])
def test_a_rank_interrupted_while_it_starts_ends_the_job(rank, monkeypatch, capsys, number):
    """Killed by process id while it loaded NumPy, a rank exited (rank 0 with its line, another
    without a word) and left the others waiting for it in MPI's start-up forever."""
    rank(number)
    monkeypatch.setenv("PMI_SIZE", "2")
    world = JobWorld(number)
    waits = []
    monkeypatch.setattr(process, "_job_world", lambda: world)
    monkeypatch.setattr(process.time, "sleep", waits.append)

    def interrupted(module):
        raise process.Interrupted(process.signal.SIGTERM)

    monkeypatch.setattr(process, "_program", interrupted)
    assert process.launch_train() == 143
    said = "interrupted (SIGTERM) while starting; nothing was written"
    assert capsys.readouterr().err == (f"rank 1: {said}\n" if number else f"{said}\n")
    assert world.aborted == [143]
    assert waits == ([process.RANK_GRACE] if number else []) + [process.ABORT_DELAY]
    monkeypatch.setattr(process, "_job_world", lambda: None)  # no mpi4py: the line alone, as before
    assert process.launch_train() == 143 and world.aborted == [143]


@pytest.mark.parametrize("batch, ranks, said", [(32, 2, "16 per rank"), (15, 2, "7 or 8 per rank"),
                                                (1, 2, "0 or 1 per rank"), (5, 1, "5 per rank")])
def test_the_model_line_says_how_a_batch_is_cut_across_the_ranks(batch, ranks, said):
    """A batch of 1 on 2 ranks was '1 per rank': rank 1 gets none."""
    assert train_program.per_rank(batch, ranks) == said


def mpiexec_or_skip():
    if importlib.util.find_spec("mpi4py") is None or shutil.which("mpiexec") is None:
        pytest.skip("mpi4py or mpiexec is missing (pip install -e '.[mpi]')")
    return shutil.which("mpiexec")


def mpiexec(*commands, cwd):
    """``mpiexec -n 1 COMMAND : -n 1 COMMAND ...``: one rank per command (the same one for both
    ranks, or a rank given other options)."""
    line = [mpiexec_or_skip()]
    for command in commands:
        line += [":"] * (len(line) > 1) + ["-n", "1", sys.executable, str(TRAIN), *map(str, command)]
    return subprocess.run(line, env=environment(OMP_NUM_THREADS="1", NNFS_BACKEND=None), cwd=cwd,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)


def ours(stderr):
    """The lines of stderr the program wrote (MPI adds one of its own when a job is aborted)."""
    return [line for line in stderr.splitlines() if not line.startswith("Abort(")]


@pytest.mark.mpi
def test_under_mpiexec_an_option_error_and_a_warning_are_said_once(tmp_path):
    data = dataset(tmp_path)
    clash = ["--dataset", data, "--momentum", "0.5", "--optimizer", "adam"]
    result = mpiexec(clash, clash, cwd=tmp_path)
    assert result.returncode == 2
    assert len(ours(result.stderr)) == 1 and "--momentum applies" in result.stderr, result.stderr

    threads = ["--dataset", data, "--epochs", "1", "--batch_size", "4", "--threads", "64", "--save", tmp_path / "m.npz"]
    result = mpiexec(threads, threads, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert sum("--threads 64 is more than" in line for line in result.stderr.splitlines()) == 1, result.stderr


@pytest.mark.mpi
def test_under_mpiexec_a_failure_of_one_rank_names_it_and_a_common_one_is_said_once(tmp_path):
    data = dataset(tmp_path)
    good = ["--dataset", data, "--epochs", "1", "--save", tmp_path / "m.npz"]
    bad = ["--dataset", tmp_path / "missing", "--epochs", "1", "--save", tmp_path / "m.npz"]
    result = mpiexec(good, bad, cwd=tmp_path)
    assert result.returncode == 1
    errors = [line for line in ours(result.stderr) if line.startswith("error: ")]
    assert errors == [f"error: rank 1: dataset folder not found: {tmp_path / 'missing'}"], result.stderr

    result = mpiexec(bad, bad, cwd=tmp_path)
    assert result.returncode == 1
    assert ours(result.stderr) == [f"error: dataset folder not found: {tmp_path / 'missing'}"], result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "m.npz").exists()


@pytest.mark.mpi
def test_under_mpiexec_a_bad_option_on_one_rank_ends_the_job_instead_of_hanging(tmp_path):
    good = ["--dataset", dataset(tmp_path), "--epochs", "1", "--save", tmp_path / "m.npz"]
    result = mpiexec(good, [*good, "--lr", "-1"], cwd=tmp_path)
    assert result.returncode == 2
    assert ours(result.stderr) == ["error: rank 1: argument --lr: must be a finite number > 0, got -1 (see --help)"], \
        result.stderr
    assert not (tmp_path / "m.npz").exists()


@pytest.mark.mpi
@pytest.mark.parametrize("other", [["--lr", "0.02"], ["--batch_size", "2"], ["--epochs", "2"]])
def test_under_mpiexec_a_rank_given_other_training_options_ends_the_job_in_one_line(tmp_path, other):
    """Another --lr trained replicas apart without a word, another --batch_size failed inside
    MPI (a stack of its lines, status 142), another --epochs left the other rank waiting forever."""
    good = ["--dataset", dataset(tmp_path), "--epochs", "1", "--batch_size", "4", "--save", tmp_path / "m.npz"]
    result = mpiexec(good, [*good, *other], cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    assert [line for line in ours(result.stderr) if line.startswith("error: ")] == [
        f"error: the 2 ranks were not given the same {other[0]} (another option or environment on one rank or "
        "machine): give every rank the same options and environment"], result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "m.npz").exists()


# Rank 1 sends itself SIGTERM while the training program loads, as a kill by process id would.
KILLED_WHILE_STARTING = """
import os, signal, sys
from nnfs.app.cli import process
program = process._program
process._program = lambda module: os.kill(os.getpid(), signal.SIGTERM) or program(module)
sys.argv = sys.argv[1:]
sys.exit(process.launch_train())
"""


@pytest.mark.mpi
def test_under_mpiexec_a_rank_killed_while_it_starts_ends_the_job(tmp_path):
    good = [str(TRAIN), "--dataset", str(dataset(tmp_path)), "--epochs", "1", "--save", str(tmp_path / "m.npz")]
    line = [mpiexec_or_skip(), "-n", "1", sys.executable, *good, ":",
            "-n", "1", sys.executable, "-c", KILLED_WHILE_STARTING, *good]
    result = subprocess.run(line, env=environment(OMP_NUM_THREADS="1", NNFS_BACKEND=None), cwd=tmp_path,
                            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    assert result.returncode == 143, result.stderr
    assert ours(result.stderr) == ["rank 1: interrupted (SIGTERM) while starting; nothing was written"], result.stderr
    assert not (tmp_path / "m.npz").exists()
