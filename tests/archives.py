"""Archives written by hand, as a careless or hostile user could write them: ``.npy`` members with
any header, zips that store a name twice. The hostile-checkpoint tests of the library and of the
programs build their files with these."""

import io
import json
import warnings
import zipfile

import numpy as np


def npy_bytes(array=None, header=None, data=b""):
    """An .npy member: a real array, or any header dict followed by any data."""
    buffer = io.BytesIO()
    if array is not None:
        np.save(buffer, array)
    else:
        np.lib.format.write_array_header_1_0(buffer, header)
        buffer.write(data)
    return buffer.getvalue()


def write_zip(path, members, compression=zipfile.ZIP_STORED):
    """A zip of ``{member name: bytes}``, written by zipfile itself; a key ``(name, copy)`` stores
    ``name`` once more (zipfile allows it, with a warning)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # zipfile's "Duplicate name"
        with zipfile.ZipFile(path, "w", compression) as archive:
            for name, data in members.items():
                archive.writestr(name if isinstance(name, str) else name[0], data)
    return path


def rewrite_checkpoint(path, change_meta=None, change_arrays=None):
    """Rewrite a checkpoint in place with its JSON record and/or its arrays changed, as a careless
    user could: ``change_meta(meta)`` and ``change_arrays({name: array})`` change them in place.
    Returns ``path``."""
    with np.load(path) as archive:
        arrays = {name: archive[name] for name in archive.files}
    meta = json.loads(arrays["meta"].tobytes().decode())
    if change_meta:
        change_meta(meta)
    if change_arrays:
        change_arrays(arrays)
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    np.savez(path, **arrays)
    return path
