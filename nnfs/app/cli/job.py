"""Ending a data-parallel job: one line for the whole job, and every rank stopped.

A rank that stops alone would leave the others waiting for it in their next collective
forever, deaf to Ctrl-C. So every failure of a run under ``mpiexec`` goes through
:func:`stop_job`, which says why once (rank 0, or the rank that failed alone, naming
itself) and aborts the job with the run's exit status.
"""

import sys
import time

import nnfs.distributed as dist  # mpi4py is imported only when asked for
from nnfs.app.cli import console
# The delays live beside the launcher, which ends a job interrupted while it starts, before
# this module (and NumPy) can load.
from nnfs.app.cli.process import ABORT_DELAY, RANK_GRACE, Interrupted, launcher_size

__all__ = ["RANK_GRACE", "ABORT_DELAY", "stop_job", "joined", "said_by_the_parser"]


def stop_job(world, status, message, line=console.error):
    """Say why the run stops, once for the whole job, and stop every rank; returns ``status``.

    Args:
        world: the MPI communicator (None: one process, or a rank that failed before it
            joined the job, which joins it now to end it: see :func:`joined`).
        status: the exit status.
        message: the line, for :func:`~nnfs.app.cli.console.error` (or ``line``).
    """
    world = joined(world)
    if world is None or world.size == 1:
        line(message)
        return status
    if world.is_root:
        line(message)
    else:
        try:
            time.sleep(RANK_GRACE)
        except Interrupted:  # Ctrl-C meanwhile: this rank is stopping already
            pass
        line(message, rank=world.rank)
    # The launcher forwards each rank's output on its own schedule, and an abort ends the
    # forwarding with the processes: give the line a moment to leave (once, under a loaded
    # machine, the job's one line was lost). A failing job is no slower to notice.
    sys.stderr.flush()
    time.sleep(ABORT_DELAY)
    world.abort(status)  # the other ranks would otherwise wait for this one forever
    return status


def joined(world):
    """``world``; for a process that ``mpiexec`` started among others and that fails before it
    joined the job (an option, an environment variable or an output refused before
    :func:`~nnfs.distributed.init`), the job, joined now to end it
    (:func:`~nnfs.distributed.join_to_abort`); None for a process on its own.

    Where every rank fails alike (the same bad option), each could simply exit; but a rank
    that fails alone (a machine without CuPy, another environment) would leave the others
    waiting for it in MPI's start-up forever, deaf to Ctrl-C and SIGTERM, and only an abort
    from a rank in the job ends them.
    """
    if world is not None or (launcher_size() or 1) < 2:
        return world
    try:
        return dist.join_to_abort()
    except RuntimeError:  # no mpi4py here: nothing this rank can do ends the others
        return None


def said_by_the_parser(message, rank=None):
    """:func:`stop_job`'s line for an option error, which the parser has printed on rank 0
    already: only a rank naming itself still says it."""
    if rank is not None:
        console.error(message, rank=rank)
