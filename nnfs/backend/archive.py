"""Host-side storage for checkpoints: ``.npz`` archives of plain arrays and JSON records in them.

Writing is NumPy's (``np.savez``: a zip archive of ``.npy`` members, stored uncompressed).
Reading is ours, because a file may come from anyone and ``np.load`` trusts too much of
it: it allocates whatever shape a member's header declares before reading a byte of data
(a 1 KB file can ask for terabytes), and points at ``allow_pickle`` for object arrays.
:class:`ArchiveReader` instead

- opens only regular files, without blocking (a FIFO is refused, never waited on);
- refuses an archive that names a member twice (zip allows it, and which copy counts
  would be up to the reader);
- reads every member's header first and checks it against the zip directory: the data
  a header declares must be exactly the bytes the member holds, and its dtype a plain
  number type (:func:`dtype_refusal`: bool, integer or float of at most 64 bits; never
  objects, strings, records, complex or the platform's long double);
- lets the caller check the total size of what it is about to read, before reading;
- streams each member's data into an array of exactly the checked size, stopping at
  that size whatever the compressed stream would inflate to, and checks the CRC.

Nothing is ever unpickled: an archive can hold numbers and text, never code. Writing
(:func:`save_npz`) refuses what reading refuses, so a file written is a file that reads.
"""

import codecs
import math
import os
import stat
import struct
import tokenize
import zipfile
import zlib

import numpy as np
from numpy.lib import format as npy

from nnfs.text import shorten, short_repr

__all__ = ["ArchiveError", "ArchiveReader", "Member", "json_to_array", "array_to_json", "save_npz",
           "check_plain", "dtype_refusal", "is_plain_array", "count_non_finite", "format_size",
           "open_regular"]

# Kinds of dtype an archive may hold: bool, signed and unsigned integers, floats.
PLAIN_KINDS = "biuf"
# The widest item: a float wider than float64 is the platform's long double (float96 or
# float128, 80 bits of precision or 64, padded as the compiler likes), which another machine
# reads as different numbers or not at all.
MAX_ITEMSIZE = 8
_HEADER_LIMIT = 10_000  # bytes of a .npy header dict, as NumPy's own default
_CHUNK = 1 << 20
# What reading a damaged member raises: zipfile's own errors, a broken deflate stream, a bad header.
_DAMAGED = (zipfile.BadZipFile, zlib.error, EOFError, ValueError, OverflowError, NotImplementedError,
            RuntimeError, tokenize.TokenError)
# Where the header's length sits after the 8 bytes of magic and version, and how wide it is.
_LENGTH_FIELD = {(1, 0): "<H", (2, 0): "<I"}


class ArchiveError(ValueError):
    """The file is not a readable archive of plain arrays (the message says why)."""


def json_to_array(text):
    """Store JSON text as a uint8 array (no pickling needed to read it back)."""
    return np.frombuffer(text.encode("utf-8"), dtype=np.uint8).copy()


def array_to_json(data):
    """The JSON text stored by :func:`json_to_array` (raises UnicodeDecodeError if it is not UTF-8)."""
    return np.asarray(data, dtype=np.uint8).tobytes().decode("utf-8")


def save_npz(file, arrays):
    """Write ``{name: array}`` to an open binary file as an uncompressed ``.npz``.

    Raises:
        ArchiveError: for an array :class:`ArchiveReader` would refuse (:func:`check_plain`),
            before anything is written.
    """
    arrays = check_plain(arrays)
    np.savez(file, **arrays)


def check_plain(arrays):
    """``{name: NumPy array}`` of ``{name: array-like}``, each of a dtype an archive holds.

    Raises:
        ArchiveError: naming the first array of another dtype (:func:`dtype_refusal`).
    """
    arrays = {name: np.asarray(value) for name, value in arrays.items()}
    for name, array in arrays.items():
        refusal = dtype_refusal(array.dtype)
        if refusal:
            raise ArchiveError(f"{shorten(name, 120)} {refusal}")
    return arrays


def dtype_refusal(dtype):
    """Why an archive cannot hold arrays of ``dtype`` (``"holds complex128 data; ..."``), or
    None for the plain numbers it holds: bool, integers and floats of at most 64 bits."""
    if dtype.hasobject:
        return "holds Python objects; nnfs archives hold numbers only, and objects are never loaded"
    if (dtype.kind not in PLAIN_KINDS or dtype.fields is not None or dtype.subdtype is not None
            or dtype.itemsize > MAX_ITEMSIZE):
        return f"holds {dtype} data; nnfs archives hold only bool, integer and float arrays of at most 64 bits"
    return None


def is_plain_array(x):
    """True for a plain NumPy array (what an archive stores as it is)."""
    return type(x) is np.ndarray


def count_non_finite(array):
    """How many NaN or infinite values a host array holds (0 for integer and bool arrays)."""
    array = np.asarray(array)
    if array.dtype.kind not in "fc":
        return 0
    return int(array.size - np.count_nonzero(np.isfinite(array)))


class Member:
    """One array of an archive, known from its header before its data is read.

    Attributes:
        name: the array's name (the member's file name without ``.npy``).
        shape: a tuple of ints.
        dtype: the stored NumPy dtype (a plain number type).
        nbytes: the size of its data.
    """

    def __init__(self, name, info, shape, dtype, fortran_order, offset):
        self.name, self.shape, self.dtype = name, shape, dtype
        self.nbytes = math.prod(shape) * dtype.itemsize
        self._info, self._fortran_order, self._offset = info, fortran_order, offset

    @property
    def size(self):
        """The number of elements."""
        return math.prod(self.shape)

    def __repr__(self):
        return f"Member({self.name!r}, shape={self.shape}, dtype={self.dtype.name})"


# The first bytes of files often given where an archive belongs (an image for the checkpoint).
_SIGNATURES = ((b"\xff\xd8\xff", "a JPEG image"), (b"\x89PNG\r\n\x1a\n", "a PNG image"), (b"GIF8", "a GIF image"),
               (b"II*\x00", "a TIFF image"), (b"MM\x00*", "a TIFF image"), (b"BM", "a BMP image"),
               (b"%PDF", "a PDF document"), (b"\x93NUMPY", "a single .npy array"), (b"\x1f\x8b", "a gzip file"),
               (b"\x89HDF", "an HDF5 file"), (b"\x80\x02", "a Python pickle"), (b"\x80\x03", "a Python pickle"),
               (b"\x80\x04", "a Python pickle"), (b"\x80\x05", "a Python pickle"))


def _known_kind(file):
    """What a file that is no zip archive is, from its first bytes ("a JPEG image"), or None."""
    try:
        file.seek(0)
        head = file.read(12)
    except OSError:
        return None
    if not head:
        return "an empty file"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "a WebP image"
    kind = next((kind for signature, kind in _SIGNATURES if head.startswith(signature)), None)
    return kind or ("a text file" if _is_text(head) else None)


def _is_text(head):
    """Whether the first bytes of a file read as text (UTF-8, no control characters but
    whitespace): notes or a CSV given for the checkpoint are called that, not a damaged archive."""
    try:
        # final=False: the 12 bytes may end inside a character.
        text = codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        return False
    return all(char.isprintable() or char in "\t\n\r" for char in text)


class ArchiveReader:
    """An ``.npz`` file opened for careful reading (see the module docstring); a context manager.

    Args:
        path: the file.

    Attributes:
        members: ``{name: Member}`` for every array, headers checked.

    Raises:
        FileNotFoundError: when there is no such file.
        ArchiveError: for anything that is not a regular file, not a zip archive, or holds a
            member that is not a plain ``.npy`` array exactly as large as its header says.
        OSError: when the file cannot be opened or read.
    """

    def __init__(self, path):
        self.path = os.fspath(path)
        self._file = open_regular(self.path)
        try:
            try:
                self._zip = zipfile.ZipFile(self._file)
            except zipfile.BadZipFile as error:
                kind = _known_kind(self._file)
                if kind:
                    raise ArchiveError(f"{kind}, not a zip archive") from None
                raise ArchiveError(f"truncated or corrupt: not a zip archive ({error})") from None
            except (EOFError, ValueError, NotImplementedError, OverflowError) as error:
                raise ArchiveError(f"truncated or corrupt zip archive ({error})") from None
            self.members = {}
            for info in self._zip.infolist():
                if info.filename.endswith(".npy") and info.filename[:-len(".npy")] in self.members:
                    raise ArchiveError(f"member {short_repr(info.filename)} is stored twice (which copy "
                                       "counts would be up to the reader)")
                member = self._header(info)
                self.members[member.name] = member
        except BaseException:
            self._file.close()
            raise

    def _header(self, info):
        if info.is_dir() or not info.filename.endswith(".npy"):
            raise ArchiveError(f"member {short_repr(info.filename)} is not an .npy array")
        name = info.filename[:-len(".npy")]
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise ArchiveError(f"member {short_repr(info.filename)} uses a compression nnfs does not read")
        if info.compress_type == zipfile.ZIP_STORED and info.compress_size != info.file_size:
            raise ArchiveError(f"member {short_repr(info.filename)} is damaged (stored sizes disagree)")
        if info.flag_bits & 0x1:
            raise ArchiveError(f"member {short_repr(info.filename)} is encrypted")
        try:
            with self._zip.open(info) as stream:
                version = npy.read_magic(stream)
                # The header's length is read first: NumPy reads and parses a header of any
                # declared length (4 GiB in a v2 header) before it compares it with its limit.
                if version in _LENGTH_FIELD:
                    field = struct.calcsize(_LENGTH_FIELD[version])
                    (length,) = struct.unpack(_LENGTH_FIELD[version], stream.read(field))
                    if length > _HEADER_LIMIT:
                        raise ValueError(f"its header declares {length} bytes, more than the "
                                         f"{_HEADER_LIMIT} a plain array needs")
                    stream.seek(stream.tell() - field)
                if version == (1, 0):
                    shape, fortran_order, dtype = npy.read_array_header_1_0(stream, _HEADER_LIMIT)
                elif version == (2, 0):
                    shape, fortran_order, dtype = npy.read_array_header_2_0(stream, _HEADER_LIMIT)
                else:
                    raise ValueError(f".npy format version {version} is not one NumPy writes for plain arrays")
                offset = stream.tell()
        except _DAMAGED + (SyntaxError, TypeError) as error:
            raise ArchiveError(f"member {short_repr(info.filename)} has a damaged header "
                               f"({shorten(str(error), 200)})") from None
        refusal = dtype_refusal(dtype)
        if refusal:
            raise ArchiveError(f"member {short_repr(info.filename)} {refusal}")
        if not all(isinstance(n, int) and n >= 0 for n in shape):
            raise ArchiveError(f"member {short_repr(info.filename)} declares an invalid shape {shape!r}")
        member = Member(name, info, tuple(shape), dtype, fortran_order, offset)
        held = info.file_size - offset
        if member.nbytes != held:
            raise ArchiveError(
                f"member {short_repr(info.filename)} declares shape {member.shape} of {dtype} "
                f"({format_size(member.nbytes)}) but holds {format_size(max(held, 0))} of data")
        return member

    def read(self, name):
        """The array ``name`` as a native-byte-order NumPy array (exactly its checked size).

        Raises:
            ArchiveError: when the data is truncated, longer than declared, or fails its CRC.
        """
        member = self.members[name]
        raw = np.empty(member.nbytes, dtype=np.uint8)
        view = memoryview(raw)
        try:
            with self._zip.open(member._info) as stream:
                stream.read(member._offset)  # the header, read and checked already
                done = 0
                while done < member.nbytes:
                    chunk = stream.read(min(_CHUNK, member.nbytes - done))
                    if not chunk:
                        raise ArchiveError(f"member {short_repr(name + '.npy')} is truncated")
                    view[done:done + len(chunk)] = chunk
                    done += len(chunk)
                if stream.read(1):  # also what makes zipfile check the CRC of the whole member
                    raise ArchiveError(f"member {short_repr(name + '.npy')} holds more data than its header declares")
        except _DAMAGED as error:
            if isinstance(error, ArchiveError):
                raise
            raise ArchiveError(f"member {short_repr(name + '.npy')} is damaged ({error})") from None
        order = "F" if member._fortran_order else "C"
        array = raw.view(member.dtype).reshape(member.shape, order=order)
        if not member.dtype.isnative:
            array = array.astype(member.dtype.newbyteorder("="))
        return array

    def close(self):
        self._zip.close()
        self._file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()


def open_regular(path):
    """Open ``path`` for reading only if it is a regular file; never blocks on a FIFO.

    The open is non-blocking and the check is made on the opened file, so a FIFO (or a
    device) put there between a check and the open is refused as well.
    """
    nonblocking = getattr(os, "O_NONBLOCK", 0)  # none on Windows
    flags = os.O_RDONLY | nonblocking | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except IsADirectoryError:
        raise ArchiveError("a folder, not a file") from None
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise ArchiveError("a folder, not a file")
        if not stat.S_ISREG(mode):
            raise ArchiveError("not a regular file (a FIFO, a device or a socket)")
        if nonblocking:
            # Back to blocking reads. Only where the open set O_NONBLOCK: Windows has had
            # set_blocking since Python 3.12, for pipes only, and it fails on a regular file.
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def format_size(nbytes):
    """``nbytes`` for people: ``"812 bytes"``, ``"3.5 GiB"``."""
    if nbytes < 1024:
        return f"{nbytes:.0f} bytes"
    for unit in ("KiB", "MiB", "GiB", "TiB", "PiB"):
        nbytes /= 1024
        if nbytes < 1024 or unit == "PiB":
            return f"{nbytes:.1f} {unit}"
