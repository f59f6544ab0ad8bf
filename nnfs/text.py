"""Words in messages and pictures: a counted noun, names safe to show and values quoted short, for the
library and the programs alike."""

import re
import unicodedata

__all__ = ["count", "printable", "display_width", "shorten", "short_repr", "listed", "short_names", "pad"]


def count(number, singular, plural=None):
    """``"1 image"``, ``"2 images"``: ``number`` and the noun, in the plural only when it needs one.

    Args:
        plural: for nouns not made with an ``s``, or phrases whose verb agrees too:
            ``count(n, "entry that is not a file", "entries that are not files")``.
    """
    return f"{number} {singular if number == 1 else plural or singular + 's'}"


# Invisible characters that reorder how the text around them is shown (a file name
# "gpj.exe" can be made to look like "exe.jpg"); shown as escapes like control characters.
_BIDI_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
# Of the invisible format characters (category Cf: a zero-width space, a word joiner, a
# byte order mark, invisible operators, tags), the joiners that shape scripts and emoji
# (U+200C, U+200D) are shown as they are; the others are escaped, so that two names
# differing by one never look the same.
_SHAPING_JOINERS = frozenset("\u200c\u200d")


def printable(text):
    """``text`` with what must not reach a terminal raw shown as a Python-style escape.

    - bytes that were not valid in the file system's encoding (Python holds them as
      lone surrogates ``\\udc80``-``\\udcff``) become ``\\xNN``, the byte they stand for;
    - control characters (the C0 and C1 ranges and DEL: newlines, tabs, ESC, so every
      terminal escape sequence), line and paragraph separators, bidirectional controls,
      invisible format characters other than the joiners U+200C and U+200D (a zero-width
      space, a byte order mark) and any other lone surrogate become ``\\xNN``, ``\\uNNNN``.

    Everything else (letters of any script, emoji, spaces, backslashes) stays as it is.
    """
    text = str(text)
    if text.isprintable():  # the common case: nothing to escape (fast)
        return text
    return "".join(_shown(ch) for ch in text)


def _shown(ch):
    code = ord(ch)
    if 0xDC80 <= code <= 0xDCFF:  # an undecodable byte, as os.fsdecode keeps it
        return f"\\x{code - 0xDC00:02x}"
    category = unicodedata.category(ch)
    if ch == " " or not (category in ("Cc", "Cs", "Zl", "Zp") or ch in _BIDI_CONTROLS
                         or (category == "Cf" and ch not in _SHAPING_JOINERS)):
        return ch
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def display_width(text):
    """The columns a terminal gives ``text``: two for a wide character (East Asian scripts,
    most emoji), none for a combining mark, a joiner or a variation selector."""
    return sum(_columns(ch) for ch in text)


def _columns(ch):
    if unicodedata.combining(ch) or unicodedata.category(ch) in ("Mn", "Me", "Cf"):
        return 0
    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


# The escapes that printable and repr write (\x8c, \u200b, \U0001f426, \n, \\): text is
# escaped first and cut after (repr, then short_repr; printable, then the per-class table), and
# a cut inside one (chat\~8c) shows a character that is not there. Each is one piece, which
# a cut keeps whole or leaves out.
_ESCAPE = re.compile(r"\\(?:x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|.)", re.DOTALL)
# The longest of them (``\\U0001f426``), in characters.
_LONGEST_ESCAPE = 10


def _clusters(text):
    """``text`` split where a new character starts on the screen: marks, joiners and selectors
    stay with the character before them, and so does what a joiner joins (an emoji family),
    and the two regional indicators of a flag; an escape (``\\x8c``) is one piece."""
    clusters = []
    index, length = 0, len(text)
    while index < length:
        ch = text[index]
        if ch == "\\":
            escape = _ESCAPE.match(text, index)
            if escape:
                clusters.append(escape.group())
                index = escape.end()
                continue
        if clusters and (_columns(ch) == 0 or clusters[-1].endswith("\u200d")
                         or (_is_regional(ch) and len(clusters[-1]) == 1 and _is_regional(clusters[-1]))):
            clusters[-1] += ch
        else:
            clusters.append(ch)
        index += 1
    return clusters


def _is_regional(ch):
    return "\U0001f1e6" <= ch <= "\U0001f1ff"


def shorten(text, width):
    """``text`` in at most ``width`` columns, keeping its start and its end around a ``~``
    (``dog_b~beagle``), never cut inside a character (an accent stays on its letter) nor inside
    an escape (``caf\\xe9`` is kept or left out whole): text may be escaped first and cut after.

    A text of more than ``4 * width`` characters is measured at its two ends only (its middle
    is cut anyway): a megabyte of it, a record read from a file, costs what a line costs.
    """
    if width > 0 and len(text) > 4 * width:
        margin = _LONGEST_ESCAPE  # the tail may start inside an escape: its first pieces are dropped
        head, tail = _clusters(text[:2 * width + margin]), _clusters(text[-(2 * width + margin):])
        while margin > 0 and tail:
            margin -= len(tail.pop(0))
        parts = head + tail
        return _shorten(parts, [display_width(part) for part in parts], width, whole=False)
    parts = _clusters(text)
    return _shorten(parts, [display_width(part) for part in parts], width)


def _shorten(parts, widths, width, whole=True):
    if whole and sum(widths) <= width:
        return "".join(parts)
    if width < 1:
        return ""
    room = [(width - 1) // 2, width - 1 - (width - 1) // 2]
    ends = []
    for order, limit in ((range(len(parts)), room[0]), (range(len(parts) - 1, -1, -1), room[1])):
        kept, used = [], 0
        for index in order:
            used += widths[index]
            if used > limit:
                break
            kept.append(index)
        ends.append(kept)
    head, tail = ends
    return "".join(parts[i] for i in head) + "~" + "".join(parts[i] for i in reversed(tail))


def short_repr(value, width=80):
    """``repr(value)`` in at most ``width`` columns, as :func:`shorten` cuts it (``[1, 1, 1~1, 1]``):
    how an error message quotes a value it got, which may come from a file and be megabytes long.
    A value nested too deeply to be written out at all is named by its type.
    """
    try:
        return shorten(repr(value), width)
    except RecursionError:
        return f"<a {type(value).__name__} nested too deeply to show>"


def listed(values, shown=3, quote=None):
    """``'cat', 'dog', 'bird' and 997 more``: the first ``shown`` of ``values``, each quoted as
    ``quote`` writes it (default ``short_repr(value, 40)``), and how many are left out. How a
    message names the classes or files of a dataset, which may be thousands.
    """
    values = list(values)
    quote = quote or (lambda value: short_repr(value, 40))
    text = ", ".join(quote(value) for value in values[:shown])
    return text + (f" and {len(values) - shown} more" if len(values) > shown else "")


def short_names(names, width):
    """``(names shortened to width columns, the columns the longest takes)``, at least 5 (a
    table's "class" header): each as :func:`shorten` cuts it, and where two would look alike,
    those two get wider, until every name says which one it is."""
    names = [str(name) for name in names]
    parts = [_clusters(name) for name in names]
    widths = [[display_width(part) for part in name] for name in parts]
    sizes = [max(5, width)] * len(names)
    cut = [_shorten(*name, size) for name, size in zip(zip(parts, widths), sizes)]
    while True:
        owners = {}
        for name, short in zip(names, cut):
            owners.setdefault(short, set()).add(name)
        alike = [i for i, short in enumerate(cut) if len(owners[short]) > 1 and short != names[i]]
        if not alike:
            return cut, max([5] + [display_width(short) for short in cut])
        for i in alike:  # only these are cut again, a little wider each round
            sizes[i] += 1 + sizes[i] // 8
            cut[i] = _shorten(parts[i], widths[i], sizes[i])


def pad(text, width):
    """``text`` followed by the spaces that make it ``width`` columns wide (as ``f"{text:<{width}}"``
    does for text whose characters are one column each)."""
    return text + " " * max(0, width - display_width(text))
