"""Words in messages: how a counted noun is written, for the library and the programs alike."""

__all__ = ["count"]


def count(number, singular, plural=None):
    """``"1 image"``, ``"2 images"``: ``number`` and the noun, in the plural only when it needs one.

    Args:
        plural: for nouns not made with an ``s``, or phrases whose verb agrees too:
            ``count(n, "entry that is not a file", "entries that are not files")``.
    """
    return f"{number} {singular if number == 1 else plural or singular + 's'}"
