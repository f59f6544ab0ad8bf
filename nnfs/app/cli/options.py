"""Command-line plumbing shared by the example scripts: one-line errors and typed options."""

import argparse
import os
import re
import sys
import textwrap

from nnfs.app.cli.console import printable
from nnfs.app.cli.process import speaks_for_the_job
from nnfs.checks import integer, number


#: What the environment variables of nnfs mean, for the programs' ``--help``.
ENVIRONMENT = {
    "NNFS_BACKEND": "numpy (default: the CPU), cupy (an NVIDIA GPU) or strict (CPU, refuses host "
                    "arrays as CuPy does; for tests)",
    "NNFS_DTYPE": "float32 (default) or float64",
    "NNFS_NUM_THREADS": "CPU threads of the training steps, as --threads (default: every core, "
                        "shared among the MPI ranks of the machine)",
    "NNFS_CACHE_DIR": "where decoded datasets are kept (default: $XDG_CACHE_HOME/nnfs/datasets, else "
                      "~/.cache/nnfs/datasets)",
    "NNFS_MEMORY_LIMIT": "the memory a run may plan for, e.g. 8G (default: what the machine "
                         "reports)",
    "NNFS_KEEP_FREED_MEMORY": "0 leaves glibc's malloc thresholds as they are (default: freed "
                              "memory is kept for the next step)",
    "NNFS_TRANSPORT": "data parallel under mpiexec: auto (default: NCCL with GPUs, else host), host, "
                      "nccl or cuda-aware-mpi",
    "OPENBLAS_NUM_THREADS": "NumPy's BLAS threads (default under nnfs-train and "
                            "examples/CNN_custom_dataset.py: 1, as for MKL_NUM_THREADS; small "
                            "networks gain nothing from more)",
}


def environment_epilog(*names):
    """The ``--help`` text after the options: the environment variables ``names`` and their values."""
    width = max(len(name) for name in names)
    rows = "\n".join(f"  {name:<{width}}  {ENVIRONMENT[name]}" for name in names)
    return f"environment variables:\n{rows}"


class OptionError(ValueError):
    """Options that do not fit together, found after parsing (once the data or the checkpoint
    has settled a default); the programs report it as a usage error (exit status 2)."""


class HelpFormatter(argparse.HelpFormatter):
    """Help in which every option shows its default.

    ``(default: X)`` is appended to an option's help unless its text already speaks of
    the default (which options whose default depends on the data must do in words).
    Flags show ``(default: off)``. The description and epilog keep their line breaks and
    are wrapped to the terminal, table rows (``"  NAME  text"``) with a hanging indent.
    """

    def _fill_text(self, text, width, indent):
        lines = []
        for line in text.splitlines():
            row = re.match(r"(\s+\S+\s{2,})(.*)", line)
            lead = row.group(1) if row else ""
            lines.append(textwrap.fill(row.group(2) if row else line, width, initial_indent=indent + lead,
                                       break_on_hyphens=False,
                                       subsequent_indent=indent + " " * len(lead)) or indent)
        return "\n".join(lines)

    def _get_help_string(self, action):
        text = action.help or ""
        if not action.option_strings or "default" in text or action.default in (None, argparse.SUPPRESS):
            return text
        shown = "off" if action.default is False else "%(default)s"
        return f"{text} (default: {shown})"


class UsageError(SystemExit):
    """A bad option: argparse's exit with status 2, once :class:`Parser` has said it.

    Attributes:
        message: what was wrong, without the program's name (``argument --lr: ...``): under
            ``mpiexec`` rank 0 alone prints the line, and a rank that met the error alone
            names itself with this (``nnfs.app.cli.job.stop_job``).
    """

    def __init__(self, message):
        super().__init__(2)
        self.message = message


class Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one line (exit status 2), not the whole usage
    text, and whose help shows every default (:class:`HelpFormatter`).

    With ``suppress_defaults=True`` every argument is added with ``default=argparse.SUPPRESS``
    whatever default it is given: parsing then leaves out what the command line does not give
    (:func:`given_options`), and the same function builds both parsers.
    """

    def __init__(self, *args, suppress_defaults=False, path_options=(), **kwargs):
        self.suppress_defaults = suppress_defaults  # before argparse adds --help through add_argument
        self.path_options = tuple(path_options)
        kwargs.setdefault("formatter_class", HelpFormatter)
        if program_name() is not None:
            kwargs.setdefault("prog", program_name())
        super().__init__(*args, **kwargs)

    def add_argument(self, *args, **kwargs):
        if self.suppress_defaults:
            kwargs["default"] = argparse.SUPPRESS
        return super().add_argument(*args, **kwargs)

    def parse_args(self, args=None, namespace=None):
        # argparse's own parse_args, with a hint for a stray path (see stray_hint).
        namespace, stray = self.parse_known_args(args, namespace)
        if stray:
            hint = self.stray_hint(stray)
            self.error(f"unrecognized arguments: {' '.join(stray)}" + (f"; {hint}" if hint else ""))
        return namespace

    def stray_hint(self, stray):
        """What a stray argument that names an existing path was probably meant for, or None.

        ``nnfs-train photos`` is the natural first try: the folder goes with ``--dataset``.
        ``path_options`` lists ``(option, what, test)``: the first test that the first stray
        path passes names its option.
        """
        word = next((w for w in stray if not w.startswith("-")), None)
        if word is None:
            return None
        path = os.path.expanduser(word)
        for option, what, test in self.path_options:
            try:
                if test(path):
                    return f"{what} is given as {option} {word}"
            except (OSError, ValueError):  # a name the system refuses to look at: no hint
                continue
        return None

    def error(self, message):
        text = f"{printable(message)} (see --help)"
        self._print_message(f"{self.prog}: error: {text}\n", sys.stderr)
        raise UsageError(text)

    def _print_message(self, message, file=None):
        # argparse's one way out (help, usage, errors): under mpiexec every rank parses the same
        # command line, and rank 0 alone says what it finds.
        if speaks_for_the_job():
            super()._print_message(message, file)


def given_options(parser, argv):
    """The destinations of the options ``argv`` itself gives (not left at their defaults).

    ``parser`` is built with ``Parser(suppress_defaults=True)``: parsing ``argv`` with it keeps
    only what ``argv`` gives, so an option counts as given however it was spelled
    (``--lr=0.5``, an abbreviation such as ``--optim``), even at its default value.
    """
    if not parser.suppress_defaults:
        raise ValueError("given_options needs a parser built with suppress_defaults=True")
    return set(vars(parser.parse_args(argv)))


def program_name():
    """``python -m nnfs.app.cli.predict`` when the program runs as a module, else None (argparse then
    takes the script's name: ``predict.py``, ``nnfs-predict``), for the usage and error lines."""
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    if spec is None or not spec.name:
        return None
    name = spec.name[:-len(".__main__")] if spec.name.endswith(".__main__") else spec.name
    return f"{os.path.basename(sys.executable) or 'python'} -m {name}"


def _number(convert, text, requirement, **bounds):
    """``text`` converted and checked with :mod:`nnfs.checks` (finite, within ``bounds``)."""
    try:
        value = convert(text)
    except (ValueError, OverflowError):
        raise argparse.ArgumentTypeError(f"must be {requirement}, got {text!r}") from None
    try:
        if convert is int:
            return integer("option", "value", value, **bounds)
        return number("option", "value", value, **bounds)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be {requirement}, got {text}") from None


def positive_int(text):
    return _number(int, text, "a positive integer", minimum=1)


def non_negative_int(text):
    return _number(int, text, "zero or a positive integer", minimum=0)


def positive_float(text):
    """A finite number > 0 (``inf`` and ``nan`` are refused, as for every float option)."""
    return _number(float, text, "a finite number > 0", low=0, low_open=True)


def non_negative_float(text):
    return _number(float, text, "a finite number >= 0", low=0)


def unit_interval(text):
    """A finite number in [0, 1] (e.g. a momentum)."""
    return _number(float, text, "a number in [0, 1]", low=0, high=1)


def seed(text):
    """A seed: an integer in [0, 2**32 - 1], what every generator nnfs uses accepts."""
    return _number(int, text, "an integer in [0, 4294967295]", minimum=0, maximum=2**32 - 1)


def fraction(text):
    """A share strictly between 0 and 1 (e.g. of images held out for validation)."""
    return _number(float, text, "strictly between 0 and 1", low=0, high=1, low_open=True, high_open=True)


def file_path(text):
    """A path naming a file: not empty, no NUL character, not ending with a folder separator.

    A leading ``~`` is the home folder, as the shell would have made it (it does not after
    ``=``: ``--save=~/runs/cnn.npz`` would make a folder named ``~``).
    """
    separators = tuple(sep for sep in (os.sep, os.altsep) if sep)
    if not text or "\0" in text or text.endswith(separators):
        raise argparse.ArgumentTypeError(f"must name a file, got {text!r}")
    return os.path.expanduser(text)


def folder_path(text):
    """A path naming a folder: not empty (an empty one would mean the current folder, unsaid), no
    NUL; a leading ``~`` is the home folder (see :func:`file_path`)."""
    if not text or "\0" in text:
        raise argparse.ArgumentTypeError(f"must name a folder, got {text!r}")
    return os.path.expanduser(text)


def image_size(text):
    """``28`` or ``32x48`` (height x width), each at least 4, as an ``(h, w)`` pair."""
    try:
        parts = [int(p) for p in text.lower().split("x")]
    except ValueError:
        parts = []
    if len(parts) not in (1, 2) or min(parts) < 4:
        raise argparse.ArgumentTypeError(f"expected SIZE or HEIGHTxWIDTH, each at least 4, got {text!r}")
    return (parts[0], parts[-1])
