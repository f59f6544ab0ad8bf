"""What the command-line programs print: one line at a time, safe whatever the names in it.

Folder names, file names and class names come from the outside world: a file system
(where a name can be any bytes, undecodable ones included) or a checkpoint (where a
class name can be any text). Printed raw, such a name can crash a strict UTF-8 stream
(``UnicodeEncodeError`` on the surrogate escapes Python uses for undecodable bytes), or
reach the terminal as control characters and escape sequences that move the cursor,
recolour the screen, rewrite the title or hide text (bidirectional overrides).
:func:`printable` makes any text safe to print; both programs pass every line they
print through it (:func:`say`, :func:`warn`, :func:`error`).

Under ``mpiexec`` every rank runs the program with the same options, environment and data, so
every rank would print the same lines: only rank 0 prints them
(:func:`~nnfs.app.cli.process.speaks_for_the_job`). A failure of one rank alone is said by that
rank, naming it (``rank=``).
"""

import os
import sys

from nnfs.app.cli.process import speaks_for_the_job
from nnfs.text import count, printable

__all__ = ["count", "printable", "say", "warn", "error", "notice", "os_error_message", "safe_streams", "silence_stdout"]

def _line(stream, text):
    """Write ``text`` and its newline in one write, then flush.

    ``print`` writes the text and the newline in two system calls on an unbuffered stream
    (stderr is one), so the lines of the ranks of an ``mpiexec`` run, which share one
    terminal, could interleave between the two: ``...--image_size outerror: ...``. One
    write of a line is never split by another process's (below the pipe's atomic size).
    """
    if stream is None:  # started with the stream closed (>&-): nowhere to write the line
        return
    try:
        stream.write(text + "\n")
        stream.flush()
    except BrokenPipeError:  # a reader that left (| head): the programs stop quietly
        raise
    except OSError as error:  # a full disk behind > out.txt: name the stream, not nothing
        if error.filename is not None or error.errno is None:
            raise
        name = "standard output" if stream is sys.stdout else "standard error"
        raise OSError(error.errno, error.strerror, name) from None


def say(message):
    """Print one line of results on stdout (rank 0 alone, under ``mpiexec``)."""
    if speaks_for_the_job():
        _line(sys.stdout, printable(message))


def warn(message):
    """Print ``warning: message`` on stderr (rank 0 alone, under ``mpiexec``)."""
    if speaks_for_the_job():
        _line(sys.stderr, f"warning: {printable(message)}")


def error(message, rank=None):
    """Print ``error: message`` on stderr (rank 0 alone, under ``mpiexec``); with ``rank``, the
    failure of that rank alone, which it says itself: ``error: rank 1: message``."""
    if rank is not None:
        _line(sys.stderr, f"error: rank {rank}: {printable(message)}")
    elif speaks_for_the_job():
        _line(sys.stderr, f"error: {printable(message)}")


def notice(message, rank=None):
    """Print one line on stderr, as it is (how an interrupted program says what it kept); as
    :func:`error` does under ``mpiexec`` (``rank 1: message`` with ``rank``).

    Where stderr can no longer be written (the terminal of a program stopped by SIGHUP is
    gone: writing to it fails with EIO) the line is dropped: nobody is there to read it,
    and the program still ends with its status instead of a traceback.
    """
    if rank is None and not speaks_for_the_job():
        return
    try:
        _line(sys.stderr, printable(message if rank is None else f"rank {rank}: {message}"))
    except OSError:
        pass


def os_error_message(error):
    """An OSError as one line naming its file: ``runs/cnn.npz: No space left on device``.

    The file is named only when the error holds a path: some hold a file descriptor (an
    int) instead, which names nothing to the user.
    """
    reason = error.strerror or str(error)
    if isinstance(error.filename, (str, bytes, os.PathLike)):
        return f"{os.fsdecode(error.filename)}: {reason}"
    return reason


def safe_streams():
    """Make stdout and stderr escape what their encoding cannot show instead of raising.

    A program's output encoding is whatever the environment says (``PYTHONIOENCODING``,
    the locale); a class name in another script must not crash it on an ASCII terminal.
    """
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.reconfigure(errors="backslashreplace")
        except (AttributeError, ValueError, OSError):  # not a text stream we can change: leave it
            pass


def silence_stdout():
    """After a ``BrokenPipeError`` (``... | head``): send the rest of stdout nowhere, so that
    Python's own flush at exit does not fail again with a traceback."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass
