"""The one plural rule of every message, in the core where the data code can reach it."""

from nnfs.text import count


def test_one_is_singular_every_other_number_plural():
    assert [count(n, "image") for n in (0, 1, 2)] == ["0 images", "1 image", "2 images"]
    assert count(1, "entry that is not a file", "entries that are not files") == "1 entry that is not a file"
    assert count(3, "entry that is not a file", "entries that are not files") == "3 entries that are not files"


def test_the_programs_and_the_data_code_share_it():
    from nnfs.app import inference
    from nnfs.app.cli import console
    from nnfs.data import folder

    assert console.count is count and folder.count is count and inference.count is count


def test_display_width_counts_columns_not_code_points():
    from nnfs.text import display_width

    assert display_width("cat") == 3 and display_width("日本") == 4 and display_width("e\u0301") == 1
    assert display_width("👩\u200d👩\u200d👧") == 6  # three wide emoji and two joiners (terminals differ here)


def test_shorten_keeps_both_ends_and_never_cuts_inside_a_character():
    from nnfs.text import display_width, shorten

    assert shorten("dog_breed_beagle", 12) == "dog_b~beagle" and shorten("short", 12) == "short"
    accented = "e\u0301" * 12 + "_long_tail"
    cut = shorten(accented, 12)
    assert display_width(cut) <= 12 and cut.startswith("e\u0301" * 5 + "~") and "\u0301~" in cut
    wide = shorten("日本語の猫と犬の写真", 9)
    assert display_width(wide) <= 9 and "~" in wide and all(ch in "日本語の猫と犬写真~" for ch in wide)
    # The family (6 columns) does not fit the 5 before the "~": left out whole, not cut at a joiner.
    assert shorten("👩\u200d👩\u200d👧 family photos", 12) == "~photos"
    assert shorten("👩\u200d👩\u200d👧 family photos", 14) == "👩\u200d👩\u200d👧~ photos"


def test_flags_stay_whole_and_tiny_widths_are_kept():
    from nnfs.text import shorten

    assert shorten("🇫🇷🇩🇪🇮🇹🇪🇸 flags of europe", 10) == "🇫🇷🇩🇪~urope"  # never half a flag
    assert shorten("abcdef", 0) == "" and shorten("abcdef", 1) == "~" and shorten("abcdef", 2) == "~f"


def test_characters_that_show_nothing_are_escaped_and_joiners_kept():
    from nnfs.text import printable

    assert printable("a\u200bb") == "a\\u200bb" and printable("\ufeffname") == "\\ufeffname"
    assert printable("cat\u2063") == "cat\\u2063" and printable("dog\U000e0020") == "dog\\U000e0020"
    assert printable("👩\u200d👩") == "👩\u200d👩" and printable("می\u200cخواهم") == "می\u200cخواهم"


def test_a_long_text_is_measured_at_its_ends_only():
    """Error messages quote values read from files: a megabyte of text took seconds to cut."""
    import time

    from nnfs.text import shorten

    text = "head_" + "x" * 4_000_000 + "_tail"
    start = time.perf_counter()
    assert shorten(text, 20) == "head_xxxx~xxxxx_tail"
    assert time.perf_counter() - start < 0.5
    # Just over four times the width: still cut (with its "~"), even where the ends alone would fit.
    assert shorten("e\u0301" * 41, 10) == "e\u0301" * 4 + "~" + "e\u0301" * 5
    assert shorten("0123456789" * 9, 20) == "012345678~0123456789"


def test_short_repr_quotes_any_value_in_a_line():
    from nnfs.text import short_repr

    assert short_repr("cat") == "'cat'" and short_repr([1, 2]) == "[1, 2]"
    assert short_repr([1] * 1000, 20) == "[1, 1, 1,~, 1, 1, 1]"
    assert short_repr({"mean": "\n" * 100}, 30).count("\\n") > 3 and "\n" not in short_repr("\n" * 100)
    deep = []
    for _ in range(100_000):  # deeper than repr can go
        deep = [deep]
    assert short_repr(deep) == "<a list nested too deeply to show>"


def _whole_escapes(cut):
    """Whether every backslash of ``cut`` starts a whole escape (``\\x8c``, ``\\u200b``, ``\\n``)."""
    import re

    return re.fullmatch(r"(?:[^\\]|\\(?:x[0-9a-f]{2}|u[0-9a-f]{4}|U[0-9a-f]{8}|[^xuU]))*", cut, re.DOTALL) is not None


def test_a_cut_never_falls_inside_an_escape():
    """Names are escaped, then cut: "chat" and two undecodable bytes were cut to ``chat\\~b_noir``."""
    import os

    from nnfs.text import printable, short_names, shorten

    escaped = printable("chat" + os.fsdecode(b"\x8c\xab") + "_noir")
    assert escaped == "chat\\x8c\\xab_noir"
    for width in range(1, len(escaped) + 1):
        cut = shorten(escaped, width)
        assert _whole_escapes(cut) and len(cut) <= width, (width, cut)
    assert shorten(escaped, 12) == "chat~_noir" and shorten(escaped, 17) == escaped
    assert short_names([escaped, "dog"], 12)[0] == ["chat~_noir", "dog"]
    assert shorten("caf\\U0001f426\\u200b\\n", 17) == "caf~\\u200b\\n"


def test_a_long_escaped_text_is_cut_between_escapes_at_both_ends():
    from nnfs.text import short_repr, shorten

    for tail in range(12):  # the tail's slice starts at every offset into an escape
        text = "\\U0001f426" * 500 + "x" * tail
        for width in (8, 20, 41):
            cut = shorten(text, width)
            assert _whole_escapes(cut) and len(cut) <= width, (tail, width, cut)
    assert short_repr("\n" * 1000, 20) == "'\\n\\n\\n\\n~\\n\\n\\n\\n'"
    assert short_repr("x" * 1000 + "\udc8c", 20) == "'xxxxxxxx~xxx\\udc8c'"


def test_listed_names_a_few_and_counts_the_rest():
    from nnfs.text import listed

    assert listed(["cat", "dog"]) == "'cat', 'dog'"
    assert listed([f"c{i}" for i in range(5000)]) == "'c0', 'c1', 'c2' and 4997 more"
    assert listed(["x" * 1000], quote=str.upper) == "X" * 1000
    assert len(listed(["x" * 1000] * 4)) < 150  # each quoted shortened
