"""Configs are plain Python values: what ``get_config()`` and ``state_dict()`` report goes into
JSON (checkpoints) and must not carry the NumPy integers or floats it was built from."""


def is_plain(value):
    """True for Python bools, ints, floats, strings and None, and tuples, lists and dicts of them."""
    if isinstance(value, (tuple, list)):
        return all(is_plain(v) for v in value)
    if isinstance(value, dict):
        return all(type(k) is str and is_plain(v) for k, v in value.items())
    return value is None or type(value) in (bool, int, float, str)


def assert_plain(config):
    """Fail, showing ``config``, when anything in it is not a plain Python value; returns it."""
    assert is_plain(config), f"NumPy (or other) values in {config!r}"
    return config
