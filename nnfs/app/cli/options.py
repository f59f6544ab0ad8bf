"""Command-line plumbing shared by the example scripts: one-line errors and typed options."""

import argparse
import os

from nnfs.app.cli.console import printable
from nnfs.checks import integer, number


class Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one line (exit status 2), not the whole usage text."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {printable(message)} (see --help)\n")


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
    """A path naming a file: not empty, no NUL character, not ending with a folder separator."""
    separators = tuple(sep for sep in (os.sep, os.altsep) if sep)
    if not text or "\0" in text or text.endswith(separators):
        raise argparse.ArgumentTypeError(f"must name a file, got {text!r}")
    return text


def image_size(text):
    """``28`` or ``32x48`` (height x width), each at least 4, as an ``(h, w)`` pair."""
    try:
        parts = [int(p) for p in text.lower().split("x")]
    except ValueError:
        parts = []
    if len(parts) not in (1, 2) or min(parts) < 4:
        raise argparse.ArgumentTypeError(f"expected SIZE or HEIGHTxWIDTH, each at least 4, got {text!r}")
    return (parts[0], parts[-1])
