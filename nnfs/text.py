"""Words in messages and pictures: a counted noun, and names safe to show, for the library and the programs alike."""

import unicodedata

__all__ = ["count", "printable"]


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


def printable(text):
    """``text`` with what must not reach a terminal raw shown as a Python-style escape.

    - bytes that were not valid in the file system's encoding (Python holds them as
      lone surrogates ``\\udc80``-``\\udcff``) become ``\\xNN``, the byte they stand for;
    - control characters (the C0 and C1 ranges and DEL: newlines, tabs, ESC, so every
      terminal escape sequence), line and paragraph separators, bidirectional controls
      and any other lone surrogate become ``\\xNN``, ``\\uNNNN``.

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
    if ch == " " or not (unicodedata.category(ch) in ("Cc", "Cs", "Zl", "Zp") or ch in _BIDI_CONTROLS):
        return ch
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
