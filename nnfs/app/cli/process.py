"""How the command-line programs start and stop: SIGINT, SIGTERM and SIGHUP alike, exit statuses.

Ctrl-C (SIGINT), ``kill`` (SIGTERM, what schedulers, containers and ``timeout``
send) and a closed terminal or dropped SSH session (SIGHUP) stop a program the same
way, wherever it is: during the imports, while the dataset loads, in the middle of an
epoch or of a save. Each raises :class:`Interrupted`, a ``KeyboardInterrupt``, so
every ``finally`` and ``except BaseException`` on the way up runs (the atomic writer
removes its temporary file there); the program then prints one line (where there is
still a terminal to print it on) and exits with 128 + the signal number (130 for
SIGINT, 143 for SIGTERM, 129 for SIGHUP), as a shell reports a process stopped by
that signal. A run started under ``nohup`` keeps SIGHUP ignored and goes on. A second signal while the first is being
handled is ignored, so a user pressing Ctrl-C twice cannot cut the clean-up
short (SIGKILL still stops the process at once).

Only the standard library is imported here, so that the example scripts and the
installed commands (``nnfs-train``, ``nnfs-predict``) can arm the handlers
(:func:`launch`) and set the BLAS threads (:func:`single_threaded_blas`) before NumPy
and the rest of nnfs load.
"""

import contextlib
import importlib
import os
import signal
import sys
import threading
import time

__all__ = ["Interrupted", "stop_on_signals", "launch", "launch_train", "launch_predict", "single_threaded_blas",
           "launcher_rank", "launcher_size", "speaks_for_the_job", "BLAS_THREADS", "EXIT_OK", "EXIT_ERROR", "EXIT_USAGE"]

EXIT_OK = 0
EXIT_ERROR = 1  # a damaged file, a dataset that cannot be read, a file that cannot be written
EXIT_USAGE = 2  # a bad option (argparse's status)

SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))

#: Seconds a rank other than 0 waits before it reports a failure of its own and ends the job.
#: Most failures meet every rank alike (a damaged checkpoint, a divergence, Ctrl-C through
#: mpiexec): rank 0 says it and ends the job within that time, so the line comes once. A rank
#: still running then failed alone (its machine lacks the dataset, it ran out of memory, it
#: alone was sent a signal), and says so, naming itself.
RANK_GRACE = 3.0
#: Seconds between a rank's last line and its abort of the job (see
#: :func:`nnfs.app.cli.job.stop_job`).
ABORT_DELAY = 0.5

_armed = False

# Where the MPI launchers tell each process its rank: MPICH's and Intel MPI's Hydra (and Slurm
# with PMI-2), PMIx (Open MPI 5, Slurm), Open MPI. nnfs.distributed.world lists what tells that
# a launcher started the process at all; these are known before MPI (or NumPy) loads.
_RANK_VARIABLES = ("PMI_RANK", "PMIX_RANK", "OMPI_COMM_WORLD_RANK")


class Interrupted(KeyboardInterrupt):
    """The program was asked to stop by a signal.

    Attributes:
        signum: the signal number.
        name: ``"SIGINT"``, ``"SIGTERM"`` or ``"SIGHUP"``.
        exit_status: 128 + ``signum``.
    """

    def __init__(self, signum):
        super().__init__(signum)
        self.signum = int(signum)
        self.name = signal.Signals(signum).name
        self.exit_status = 128 + self.signum


def _raise(signum, frame):
    for number in SIGNALS:  # the clean-up on the way up must not be interrupted in turn
        signal.signal(number, signal.SIG_IGN)
    raise Interrupted(signum)


@contextlib.contextmanager
def stop_on_signals():
    """Within the block, SIGINT, SIGTERM and SIGHUP raise :class:`Interrupted`; the handlers in
    place before are put back after it. A signal that was ignored when the block began (SIGINT
    in a shell's background job, SIGHUP under ``nohup``) stays ignored.

    Nested uses (the launcher, then the program's ``main``) arm once. Off the main thread,
    where Python cannot set signal handlers, the block runs with the handlers as they are.
    """
    global _armed
    if _armed or threading.current_thread() is not threading.main_thread():
        yield
        return
    # A signal ignored when the program started stays ignored, as for any well-behaved program
    # (a shell starts background jobs with SIGINT ignored, so Ctrl-C does not reach them).
    previous = {number: signal.getsignal(number) for number in SIGNALS
                if signal.getsignal(number) is not signal.SIG_IGN}
    _armed = True
    try:
        for number in previous:
            signal.signal(number, _raise)
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler if handler is not None else signal.SIG_DFL)
        _armed = False


def launcher_rank():
    """This process's rank as the MPI launcher (``mpiexec``) set it, or None outside a launcher."""
    return _launcher_number(_RANK_VARIABLES)


#: Where the MPI launchers tell each process how many they started: Hydra (and Slurm with
#: PMI-2), Open MPI (also under PMIx).
_SIZE_VARIABLES = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE")


def launcher_size():
    """How many processes the MPI launcher started for this job, or None outside a launcher
    (or under one that does not say)."""
    return _launcher_number(_SIZE_VARIABLES)


def _launcher_number(variables):
    """The first of the environment ``variables`` that holds a whole number, as an int, or None."""
    for variable in variables:
        text = os.environ.get(variable, "").strip()
        if text.isdigit():
            return int(text)
    return None


def speaks_for_the_job():
    """Whether the lines meant for the user are this process's to print: yes, unless it is
    a rank other than 0 of an ``mpiexec`` run, whose every rank meets the same options, the same
    environment and the same data, and would say the same thing once per rank."""
    return launcher_rank() in (None, 0)


def launch(module, joins_a_job=False):
    """Run ``module.main()`` as a program, armed against signals from before its imports.

    The example scripts call this: a Ctrl-C, SIGTERM or SIGHUP while NumPy is still loading then
    ends in one line and the usual status, not a traceback or a silent death.

    Args:
        module: the program's module name, e.g. ``"nnfs.app.cli.train"``.
        joins_a_job: whether the program's processes under ``mpiexec`` join one MPI job (the
            training program does): one interrupted while it starts then ends the job
            (:func:`_end_the_job`), since the others wait for it in MPI's start-up forever.

    Returns:
        The exit status.
    """
    with stop_on_signals():
        try:
            main = _program(module)
            return 1 if main is None else main()
        except Interrupted as stop:
            line = f"interrupted ({stop.name}) while starting; nothing was written"
            if joins_a_job and (launcher_size() or 1) > 1:
                return _end_the_job(stop.exit_status, line)
            _say(line)
            return stop.exit_status


def _end_the_job(status, line):
    """End the MPI job of a process interrupted while it starts; returns ``status``.

    A signal sent to one rank alone (``kill`` with its process id) while it loads NumPy and
    nnfs stopped it there, and the others waited for it in MPI's start-up forever, deaf to
    Ctrl-C and SIGTERM: only an abort from a rank in the job ends them. So this rank joins
    the job to end it, as :func:`nnfs.app.cli.job.stop_job` does once the program has
    loaded, with mpi4py alone (what was interrupted may be NumPy's import): rank 0 says the
    line; another rank waits :data:`RANK_GRACE` first, in which rank 0, sent the same signal
    through ``mpiexec``, ends the job with its line, and then names itself.
    """
    world = _job_world()
    if world is None:  # no MPI here: nothing this process can do ends the others
        _say(line)
        return status
    if world.Get_rank():
        time.sleep(RANK_GRACE)
        line = f"rank {world.Get_rank()}: {line}"
    print(line, file=sys.stderr, flush=True)
    time.sleep(ABORT_DELAY)  # for the launcher to forward the line before the abort ends it
    world.Abort(status)
    return status


def _say(line):
    """One line on stderr, from rank 0 only under ``mpiexec`` (:func:`speaks_for_the_job`)."""
    if speaks_for_the_job():
        print(line, file=sys.stderr)


def _program(module):
    """``module.main``; None, after one line naming it, when a required package is missing.

    A missing numpy or pillow means the install step was skipped or failed. Optional
    packages (cupy, mpi4py) are imported later, where their own messages say what to install.
    """
    try:
        return importlib.import_module(module).main
    except ModuleNotFoundError as error:
        if error.name is None or error.name.split(".")[0] == "nnfs":
            raise
        _say(f"{module}: the package {error.name!r} is missing; install nnfs with its "
             f"dependencies (python -m pip install -e .)")
        return None
    except MemoryError:  # a memory limit (ulimit -v) below what NumPy needs to load
        _say("error: out of memory while loading NumPy and nnfs")
        return None
    except ImportError as error:  # a compiled library that cannot be mapped (the same limit)
        if isinstance(error, ModuleNotFoundError):
            raise
        _say(f"error: cannot load the libraries {module} needs: {error}")
        return None


#: The variables :func:`single_threaded_blas` sets to 1 where they are not set.
BLAS_THREADS = ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def single_threaded_blas():
    """One BLAS thread for NumPy, unless ``OPENBLAS_NUM_THREADS`` / ``MKL_NUM_THREADS`` say otherwise.

    The matrices of the networks the training program builds are too small to gain from
    several BLAS threads, and on a shared CPU the threads wait for each other (measured: up
    to 5x slower). OpenBLAS and MKL read the variables once, when NumPy is first imported,
    which is why this runs here, before the program module (and NumPy) is imported.

    Returns:
        False when NumPy was imported already (the setting then comes too late), else True.
    """
    for variable in BLAS_THREADS:
        os.environ.setdefault(variable, "1")
    return "numpy" not in sys.modules


def _job_world():
    """``MPI.COMM_WORLD`` (this process joins the job), or None without mpi4py."""
    try:
        from mpi4py import MPI
    except ImportError:
        return None
    return MPI.COMM_WORLD


def launch_train():
    """The training program (``nnfs-train``, ``examples/CNN_custom_dataset.py``): armed from the
    start, with one BLAS thread (:func:`single_threaded_blas`)."""
    single_threaded_blas()
    return launch("nnfs.app.cli.train", joins_a_job=True)


def launch_predict():
    """The prediction program (``nnfs-predict``, ``examples/predict.py``), armed from the start."""
    return launch("nnfs.app.cli.predict")
