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
