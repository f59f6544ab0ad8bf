"""Command-line plumbing shared by the example scripts: one-line errors and typed options."""

import argparse


class Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one line (exit status 2), not the whole usage text."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _number(convert, text, accept, requirement):
    try:
        value = convert(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be {requirement}, got {text!r}") from None
    if not accept(value):
        raise argparse.ArgumentTypeError(f"must be {requirement}, got {text}")
    return value


def positive_int(text):
    return _number(int, text, lambda v: v >= 1, "a positive integer")


def non_negative_int(text):
    return _number(int, text, lambda v: v >= 0, "zero or a positive integer")


def positive_float(text):
    return _number(float, text, lambda v: v > 0, "positive")


def non_negative_float(text):
    return _number(float, text, lambda v: v >= 0, "zero or positive")


def fraction(text):
    """A share strictly between 0 and 1 (e.g. of images held out for validation)."""
    return _number(float, text, lambda v: 0 < v < 1, "strictly between 0 and 1")


def image_size(text):
    """``28`` or ``32x48`` (height x width), each at least 4, as an ``(h, w)`` pair."""
    try:
        parts = [int(p) for p in text.lower().split("x")]
    except ValueError:
        parts = []
    if len(parts) not in (1, 2) or min(parts) < 4:
        raise argparse.ArgumentTypeError(f"expected SIZE or HEIGHTxWIDTH, each at least 4, got {text!r}")
    return (parts[0], parts[-1])
