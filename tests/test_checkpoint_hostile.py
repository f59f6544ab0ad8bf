"""Hostile and damaged checkpoint files: every one is a CheckpointError, raised before anything
large is allocated, and nothing in a file is ever unpickled.

Each case below is a file a careless or hostile user could hand to ``load`` (or to the two
programs, see tests/app/cli/test_faults.py): crafted with zipfile and NumPy's own header
writer, so that it is exactly what such a user could produce.
"""

import io
import json
import os
import pickle
import struct
import tracemalloc
import zipfile

import numpy as np
import pytest

import nnfs
import nnfs.checkpoint as checkpoint
from nnfs.activations import ReLU
from nnfs.checkpoint import CheckpointError, load, load_into, registry, save
from nnfs.layers import BatchNorm1D, BatchNorm2D, Conv2D, Flatten, Layer, Linear, MaxPool2D, Residual, Sequential
from nnfs.layers.composite import Composite
from nnfs.losses import CrossEntropyLoss
from nnfs.net import Net
from tests.archives import npy_bytes, write_zip


def small_net():
    nnfs.seed(0)
    return Net([Linear(4, 3), BatchNorm1D(3), ReLU(), Linear(3, 2)], CrossEntropyLoss())


def saved(tmp_path, net=None, **kwargs):
    """A sound checkpoint and its arrays, as plain NumPy, to tamper with."""
    path = tmp_path / "m.npz"
    save(path, net or small_net(), **kwargs)
    with np.load(path) as archive:
        arrays = {name: archive[name] for name in archive.files}
    return path, arrays


def meta_of(arrays):
    return json.loads(arrays["meta"].tobytes().decode())


def with_meta(arrays, meta):
    arrays = dict(arrays)
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    return arrays


def tampered(tmp_path, arrays, name="m.npz"):
    path = tmp_path / name
    write_zip(path, {f"{key}.npy": npy_bytes(value) for key, value in arrays.items()})
    return path


def refused(path, match, **kwargs):
    """load(path) raises a one-line CheckpointError matching ``match`` and naming the file."""
    with pytest.raises(CheckpointError, match=match) as info:
        load(path, **kwargs)
    message = str(info.value)
    assert str(path) in message and "\n" not in message
    assert "allow_pickle" not in message
    return message


# -- headers that lie about their data -------------------------------------------------------------
def test_a_header_declaring_far_more_data_than_the_member_holds(tmp_path):
    path, arrays = saved(tmp_path)
    members = {f"{k}.npy": npy_bytes(v) for k, v in arrays.items()}
    # 364 TiB declared, 16 bytes held: np.load would allocate first and fail with MemoryError.
    members["net/0.weight.npy"] = npy_bytes(header={"descr": "<f4", "fortran_order": False,
                                                    "shape": (10**7, 10**7)}, data=b"\0" * 16)
    write_zip(path, members)
    tracemalloc.start()
    try:
        refused(path, r"net/0.weight.npy' declares shape \(10000000, 10000000\).*holds 16 bytes")
        assert tracemalloc.get_traced_memory()[1] < 50 << 20
    finally:
        tracemalloc.stop()


def test_a_header_declaring_less_data_than_the_member_holds(tmp_path):
    path, arrays = saved(tmp_path)
    members = {f"{k}.npy": npy_bytes(v) for k, v in arrays.items()}
    members["net/0.weight.npy"] = npy_bytes(header={"descr": "<f4", "fortran_order": False,
                                                    "shape": (3, 4)}, data=b"\0" * 4096)
    write_zip(path, members)
    refused(path, "declares shape")


@pytest.mark.parametrize("header, match", [
    ({"descr": "|O", "fortran_order": False, "shape": (3,)}, "holds Python objects"),
    ({"descr": "<c16", "fortran_order": False, "shape": (3, 4)}, "complex128"),
    ({"descr": "<U8", "fortran_order": False, "shape": (3,)}, "<U8"),
    ({"descr": [("a", "<f4")], "fortran_order": False, "shape": (3,)}, "only bool, integer and float"),
    # The platform's long double: float128 (or float96) here, unreadable or other numbers elsewhere.
    ({"descr": "<f16", "fortran_order": False, "shape": (3,)}, "holds float128 data|damaged header"),
])
def test_members_that_are_not_plain_numbers_are_refused_without_the_pickle_hint(tmp_path, header, match):
    path, arrays = saved(tmp_path)
    members = {f"{k}.npy": npy_bytes(v) for k, v in arrays.items()}
    itemsize = np.dtype(header["descr"]).itemsize
    members["net/0.weight.npy"] = npy_bytes(header=header,
                                            data=b"\0" * (itemsize * int(np.prod(header["shape"]))))
    write_zip(path, members)
    refused(path, match)


def test_a_real_object_array_is_refused_without_the_pickle_hint(tmp_path):
    path, arrays = saved(tmp_path)
    members = {f"{k}.npy": npy_bytes(v) for k, v in arrays.items()}
    buffer = io.BytesIO()
    np.save(buffer, np.array([{"evil": 1}], dtype=object), allow_pickle=True)
    members["net/0.weight.npy"] = buffer.getvalue()
    write_zip(path, members)
    refused(path, "holds Python objects")


@pytest.mark.parametrize("dtype", ["complex64", "int32", "bool"])
def test_parameters_that_are_not_floats_are_refused(tmp_path, dtype):
    path, arrays = saved(tmp_path)
    arrays["net/0.weight"] = arrays["net/0.weight"].astype(dtype)
    refused(tampered(tmp_path, arrays), "complex64|int32|bool")


def test_a_member_that_inflates_beyond_its_declared_size_is_cut_and_refused(tmp_path):
    """The zip directory declares 1 KB; the deflate stream inflates to 64 MiB: reading stops at
    the declared size (never holding the rest) and the CRC check refuses the member."""
    path, arrays = saved(tmp_path)
    members = {f"{k}.npy": npy_bytes(v) for k, v in arrays.items()}
    weight = arrays["net/0.weight"]
    bomb = npy_bytes(weight) + b"\0" * (64 << 20)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, bomb if name == "net/0.weight.npy" else data)
    declared = len(npy_bytes(weight))
    data = bytearray(path.read_bytes())
    for signature, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):  # local and central headers
        start = 0
        while (start := data.find(signature, start)) >= 0:
            name_length = struct.unpack_from("<H", data, start + (26 if offset == 22 else 28))[0]
            name_start = start + (30 if offset == 22 else 46)
            if data[name_start:name_start + name_length] == b"net/0.weight.npy":
                struct.pack_into("<I", data, start + offset, declared)
            start += 4
    path.write_bytes(bytes(data))
    tracemalloc.start()
    try:
        refused(path, "net/0.weight.*(damaged|CRC)")
        assert tracemalloc.get_traced_memory()[1] < 16 << 20
    finally:
        tracemalloc.stop()


def test_loading_that_would_not_fit_in_memory_is_refused_before_reading(tmp_path, monkeypatch):
    path, _ = saved(tmp_path)
    monkeypatch.setattr(checkpoint, "_memory_bytes", lambda: 100)
    refused(path, "more than this machine's 100 bytes of memory")


# -- configs that would allocate what the file does not hold ---------------------------------------
@pytest.mark.parametrize("layer, config, match", [
    ("Linear", {"in_dim": 10**9, "out_dim": 10**9}, r"net/0.bias is \(3,\) in the file but must be "
                                                    r"\(1000000000,\)"),
    ("Conv2D", {"in_channels": 4, "out_channels": 3, "kernel_size": 50000}, r"must be \(3, 4, 50000, 50000\)"),
    ("Linear", {"in_dim": "4", "out_dim": 3}, "in_dim must be an int"),
    ("Linear", {"in_dim": "aaaa", "out_dim": 10**12}, "in_dim must be an int"),
    ("Linear", {"in_dim": -4, "out_dim": 3}, "in_dim must be a positive int"),
    ("Linear", {"in_dim": 4, "out_dim": 3, "secret": 1}, "unexpected keyword"),
    ("BatchNorm1D", {"n_features": 10**12}, "0.weight is missing|must be"),
])
def test_layer_configs_that_do_not_match_the_stored_arrays(tmp_path, layer, config, match):
    path, arrays = saved(tmp_path)
    meta = meta_of(arrays)
    meta["layers"][0] = {"class": layer, "config": config}
    tracemalloc.start()
    try:
        refused(tampered(tmp_path, with_meta(arrays, meta)), match)
        assert tracemalloc.get_traced_memory()[1] < 50 << 20
    finally:
        tracemalloc.stop()


# -- layers inside layers: every child checked as a top-level layer is ------------------------------
def nested_net():
    nnfs.seed(0)
    return Net([Sequential(Linear(4, 3), BatchNorm1D(3)), Residual(Linear(3, 3)), Linear(3, 2)],
               CrossEntropyLoss())


def deep(levels):
    record = {"class": "ReLU", "config": {}}
    for _ in range(levels):
        record = {"class": "Sequential", "config": {"layers": [record]}}
    return record


@pytest.mark.parametrize("change, match", [
    (lambda m: m["layers"][1]["config"]["body"]["config"].update(in_dim=10**9, out_dim=10**9),
     r"layer 1 Residual.*net/1.body.bias is \(3,\) in the file but must be \(1000000000,\)"),
    (lambda m: m["layers"][0]["config"]["layers"][1]["config"].update(n_features=10**12),
     r"net/0.1.bias is \(3,\) in the file but must be \(1000000000000,\)"),
    (lambda m: m["layers"][0]["config"]["layers"].append({"class": "os.system", "config": {}}),
     r"layer 0.2 is a 'os.system', which this nnfs does not provide"),
    (lambda m: m["layers"][1]["config"].__setitem__("shortcut", {"class": "CrossEntropyLoss", "config": {}}),
     r"layer 1.shortcut is CrossEntropyLoss, a loss, not a layer"),
    (lambda m: m["layers"][0]["config"]["layers"].__setitem__(0, 5),
     r"damaged metadata \(layer 0.0 must be a \{'class': name, 'config': dict\} record, got 5\)"),
    (lambda m: m["layers"][0]["config"].__setitem__("layers", []),
     r"cannot rebuild layer 0 Sequential: Sequential: layers must be a non-empty list"),
    (lambda m: m["layers"][1]["config"].__setitem__("secret", 1), r"cannot rebuild layer 1 Residual: .*config keys"),
    (lambda m: m["layers"].__setitem__(0, deep(100)), r"layer 0(\.0){64} nests layers more than 64 deep"),
])
def test_nested_layer_records_are_checked_before_anything_is_built(tmp_path, change, match):
    path, arrays = saved(tmp_path, nested_net())
    meta = meta_of(arrays)
    change(meta)
    tracemalloc.start()
    try:
        refused(tampered(tmp_path, with_meta(arrays, meta), "bad.npz"), match)
        assert tracemalloc.get_traced_memory()[1] < 50 << 20
    finally:
        tracemalloc.stop()
    assert load(path).net.layers[1].body.in_dim == 3  # the sound file still loads


def test_every_exported_layer_with_parameters_reports_its_array_shapes():
    """The memory check covers every built-in layer: a layer class with parameters that left
    array_shapes to the default would let a hostile config allocate unchecked."""
    examples = {"Linear": {"in_dim": 3, "out_dim": 2}, "Conv2D": {"in_channels": 2, "out_channels": 3,
                                                                   "kernel_size": (2, 3)},
                "BatchNorm1D": {"n_features": 3}, "BatchNorm2D": {"n_channels": 3},
                "AvgPool2D": {"kernel_size": 2}}
    for name, cls in registry().items():
        if not issubclass(cls, Layer) or issubclass(cls, Composite):
            continue  # a composite's arrays are its children's (tests/layers/test_composite.py)
        config = examples.get(name)
        try:
            layer = cls(**(config or {}))
        except TypeError:
            pytest.fail(f"{name} takes arguments: add an example config to this test")
        arrays = {k: v.shape for k, v in {**layer.params, **layer.buffers}.items()}
        shapes = cls.array_shapes(**layer.get_config())
        assert shapes == (arrays or None), name


# -- records of the wrong kind ---------------------------------------------------------------------
@pytest.mark.parametrize("change, match", [
    (lambda m: m["layers"].__setitem__(2, {"class": "CrossEntropyLoss", "config": {}}),
     "layer 2 is CrossEntropyLoss, a loss, not a layer"),
    (lambda m: m.__setitem__("loss", {"class": "ReLU", "config": {}}), "the loss is ReLU, a layer, not a loss"),
    (lambda m: m["layers"].__setitem__(0, {"class": "os.system", "config": {}}), "'os.system', which this nnfs"),
    (lambda m: m["layers"].__setitem__(0, "Linear"), "damaged metadata \\(layers must be"),
    (lambda m: m["layers"].__setitem__(0, {"class": "Linear", "config": [4, 3]}), "layers must be"),
    (lambda m: m.__setitem__("layers", []), "layers must be a list of 1 to 100,000"),
    (lambda m: m.__setitem__("layers", {"0": 1}), "layers must be"),
    (lambda m: m.__setitem__("dtype", "complex128"), "dtype must be 'float32' or 'float64'"),
    (lambda m: m.__setitem__("class_names", "abc"), "class_names must be a list of strings, got 'abc'"),
    (lambda m: m.__setitem__("class_names", [1, 2]), "class_names must be"),
    (lambda m: m.__setitem__("preprocessing", [1]), "preprocessing must be null or a dict"),
    (lambda m: m.__setitem__("extra", "x"), "extra must be null or a dict"),
    (lambda m: m.__setitem__("scheduler", 3), "scheduler must be null or a dict"),
    (lambda m: m.__setitem__("optimizer", {"config": {}, "keys": [1]}), "optimizer must be"),
    (lambda m: m.__setitem__("optimizer", {"config": {}, "keys": ["ghost"]}), "optimizer state arrays missing"),
    (lambda m: m.__setitem__("version", 99), "version 99"),
    # JSON's true and 1.0 equal 1 in Python, and were read as version 1.
    (lambda m: m.__setitem__("version", True), r"damaged metadata \(version must be an integer, got True\)$"),
    (lambda m: m.__setitem__("version", 1.0), r"damaged metadata \(version must be an integer, got 1\.0\)$"),
    (lambda m: m.__setitem__("version", "1"), r"version must be an integer, got '1'"),
    (lambda m: m.__setitem__("class_names", ["cat", "cat"]), r"class_names must be distinct, got 'cat' more than"),
    (lambda m: m.__setitem__("class_names", ["cat", ""]), r"class_names must not hold an empty name, got '' as "
                                                          r"class 1"),
    (lambda m: m.__setitem__("class_names", []), r"class_names must name at least one class"),
    (lambda m: m["optimizer"]["keys"].append(m["optimizer"]["keys"][0]), r"optimizer keys must be distinct"),
    (lambda m: m.__setitem__("version", [1] * 1000), r"version must be an integer, got \[1, 1, .*~.*, 1\]"),
    (lambda m: m.__setitem__("format", "pytorch"), "is not an nnfs checkpoint"),
])
def test_metadata_of_the_wrong_form(tmp_path, change, match):
    from nnfs.optim import SGD

    net = small_net()
    optimizer = SGD(net, lr=0.1, momentum=0.9)
    net.loss(net(np.ones((2, 4), np.float32)), np.array([0, 1]))
    net.backward()
    optimizer.step()
    path, arrays = saved(tmp_path, net, class_names=["a", "b"], optimizer=optimizer)
    meta = meta_of(arrays)
    change(meta)
    refused(tampered(tmp_path, with_meta(arrays, meta)), match)


@pytest.mark.parametrize("text, match", [
    ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
    ('{"format": "nnfs-checkpoint", "version": 1, "x": ' + "[" * 100_000 + "]" * 100_000 + "}",
     "nested too deeply"),
    ("not json at all", "damaged metadata"),
    ('{"version": 1e999999}', "is not an nnfs checkpoint"),
    ('{"format": "nnfs-checkpoint", "version": ' + "9" * 5000 + "}", "damaged metadata"),
])
def test_metadata_that_is_not_sane_json(tmp_path, text, match):
    path, arrays = saved(tmp_path)
    arrays["meta"] = np.frombuffer(text.encode(), dtype=np.uint8)
    refused(tampered(tmp_path, arrays), match)


@pytest.mark.parametrize("meta, match", [
    (np.frombuffer(b"\xff\xfe{}", dtype=np.uint8), "damaged metadata"),
    (np.zeros((2, 2), dtype=np.uint8), "damaged metadata"),
    (np.zeros(3, dtype=np.float32), "damaged metadata"),
])
def test_a_meta_record_of_the_wrong_type(tmp_path, meta, match):
    path, arrays = saved(tmp_path)
    arrays["meta"] = meta
    refused(tampered(tmp_path, arrays), match)


# -- files that are not files ------------------------------------------------------------------------
@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path):
    fifo = tmp_path / "m.npz"
    os.mkfifo(fifo)
    refused(fifo, "not a regular file")  # would block forever if it were opened for reading


def test_a_folder_and_a_device_are_refused(tmp_path):
    refused(tmp_path, "a folder, not a file")
    if os.path.exists("/dev/zero"):
        with pytest.raises(CheckpointError, match="not a regular file"):
            load("/dev/zero")


@pytest.mark.parametrize("members, match", [
    ({"meta.npy": b"\x93NUMPY\x03\x00" + b"\0" * 120}, "damaged header"),
    ({"meta.npy": b"short"}, "damaged header"),
    ({"readme.txt": b"hello"}, "is not an .npy array"),
    ({"meta.npy": b"\x93NUMPY\x01\x00\xff\x7f" + b"{" * 200}, "damaged header"),
])
def test_members_that_are_not_npy_arrays(tmp_path, members, match):
    refused(write_zip(tmp_path / "m.npz", members), match)


def test_an_archive_without_a_meta_record(tmp_path):
    refused(write_zip(tmp_path / "m.npz", {"a.npy": npy_bytes(np.ones(3))}), "no 'meta' record")


# -- what load refuses in a sound file, and what it keeps --------------------------------------------
def test_non_finite_parameters_are_refused_on_save_and_load_unless_asked(tmp_path):
    net = small_net()
    path = tmp_path / "good.npz"
    save(path, net)
    before = path.read_bytes()
    net.layers[0].params["weight"][0, 0] = np.nan
    with pytest.raises(CheckpointError, match=r"0.weight holds 1 NaN or infinite value.*allow_non_finite=True"):
        save(path, net)
    assert path.read_bytes() == before  # the good model is untouched
    assert sorted(os.listdir(tmp_path)) == ["good.npz"]
    save(tmp_path / "diverged.npz", net, allow_non_finite=True)
    refused(tmp_path / "diverged.npz", "holds 1 NaN or infinite value.*diverged")
    loaded = load(tmp_path / "diverged.npz", allow_non_finite=True)
    assert np.isnan(loaded.net.state_dict()["0.weight"][0, 0])
    with pytest.raises(CheckpointError, match="NaN or infinite"):
        load_into(tmp_path / "diverged.npz", small_net())


def test_non_finite_buffers_and_optimizer_state_are_refused_too(tmp_path):
    from nnfs.optim import SGD

    net = small_net()
    net.layers[1].buffers["running_var"][1] = np.inf
    with pytest.raises(CheckpointError, match="1.running_var"):
        save(tmp_path / "m.npz", net)
    net = small_net()
    optimizer = SGD(net, lr=0.1, momentum=0.9)
    optimizer.state["0.weight"] = {"momentum_buffer": np.full((3, 4), np.inf, dtype=np.float32)}
    with pytest.raises(CheckpointError, match="optimizer/0.weight.momentum_buffer holds 12"):
        save(tmp_path / "m.npz", net, optimizer=optimizer)


def test_non_finite_optimizer_state_is_written_and_read_when_asked(tmp_path):
    # As the weights are: a diverged run saved with allow_non_finite=True is read to be inspected.
    from nnfs.optim import SGD

    net = small_net()
    optimizer = SGD(net, lr=0.1, momentum=0.9)
    optimizer.step_count = 1
    optimizer.state["0.weight"] = {"momentum_buffer": np.full((3, 4), np.nan, dtype=np.float32)}
    path = tmp_path / "diverged.npz"
    save(path, net, optimizer=optimizer, allow_non_finite=True)
    refused(path, "holds 12 NaN or infinite value.*diverged")
    for loaded in (load(path, allow_non_finite=True), load_into(path, small_net(), allow_non_finite=True)):
        assert np.isnan(loaded.optimizer_state["state"]["0.weight.momentum_buffer"]).all()


def test_a_sound_checkpoint_still_loads_with_every_layer_kind(tmp_path):
    nnfs.seed(1)
    net = Net([Conv2D(2, 3, (3, 2), padding=1), BatchNorm2D(3), ReLU(), MaxPool2D(2), Flatten(),
               Linear(3 * 2 * 2, 2)], CrossEntropyLoss())
    save(tmp_path / "m.npz", net, class_names=["a", "b"])
    loaded = load(tmp_path / "m.npz")
    for (name, a), (_, b) in zip(sorted(net.state_dict().items()), sorted(loaded.net.state_dict().items())):
        np.testing.assert_array_equal(a, b, err_msg=name)


def test_big_endian_and_fortran_order_arrays_are_read_correctly(tmp_path):
    path, arrays = saved(tmp_path)
    expected = arrays["net/0.weight"]
    arrays["net/0.weight"] = np.asfortranarray(expected.astype(">f4"))
    loaded = load(tampered(tmp_path, arrays))
    np.testing.assert_array_equal(loaded.net.state_dict()["0.weight"], expected)


def test_a_deflated_checkpoint_of_honest_sizes_loads(tmp_path):
    """Recompressing a checkpoint (zip -9) is not an attack: members of honest sizes load."""
    path, arrays = saved(tmp_path)
    members = {f"{k}.npy": npy_bytes(v) for k, v in arrays.items()}
    write_zip(tmp_path / "zipped.npz", members, zipfile.ZIP_DEFLATED)
    np.testing.assert_array_equal(load(tmp_path / "zipped.npz").net.state_dict()["0.weight"],
                                  arrays["net/0.weight"])


def test_a_broken_deflate_stream_and_an_encrypted_member(tmp_path):
    path, arrays = saved(tmp_path)
    members = {f"{k}.npy": npy_bytes(v) for k, v in arrays.items()}
    members["net/0.weight.npy"] = npy_bytes(np.random.default_rng(0).random(4000).astype(np.float32))
    write_zip(path, members, zipfile.ZIP_DEFLATED)
    data = bytearray(path.read_bytes())
    start = data.find(b"net/0.weight.npy") + len("net/0.weight.npy") + 400
    data[start:start + 200] = b"\xff" * 200
    path.write_bytes(bytes(data))
    refused(path, "damaged")
    write_zip(path, {f"{k}.npy": npy_bytes(v) for k, v in arrays.items()})
    data = bytearray(path.read_bytes())
    for signature, offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):  # set the "encrypted" flag
        start = 0
        while (start := data.find(signature, start)) >= 0:
            data[start + offset] |= 1
            start += 4
    path.write_bytes(bytes(data))
    refused(path, "is encrypted")


def test_more_layers_than_any_real_net_are_refused_before_building(tmp_path):
    path, arrays = saved(tmp_path)
    meta = meta_of(arrays)
    meta["layers"] = [{"class": "ReLU", "config": {}}] * 200_000
    refused(tampered(tmp_path, with_meta(arrays, meta)), "layers must be a list of 1 to 100,000")


@pytest.mark.parametrize("content, kind", [
    (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00", "a JPEG image"), (b"\x89PNG\r\n\x1a\n\x00\x00", "a PNG image"),
    (b"RIFF\x10\x00\x00\x00WEBPVP8 ", "a WebP image"), (b"%PDF-1.7\n", "a PDF document"), (b"", "an empty file"),
    (pickle.dumps({"weight": [1.0]}), "a Python pickle"), (b"epoch,train_loss\n1,0.5\n", "a text file"),
    ("notes: caf\u00e9 \u00e0 midi".encode(), "a text file"),
])
def test_a_file_of_another_kind_is_named_for_what_it_is(tmp_path, content, kind):
    """An image given where the checkpoint goes (two arguments swapped) is called an image, not a
    truncated archive."""
    path = tmp_path / "given.npz"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=rf"is not a readable nnfs checkpoint \({kind}, not a zip archive\)$"):
        load(path)
    # The start of a real checkpoint, cut short: damaged, not another kind of file.
    saved_path, _ = saved(tmp_path)
    path.write_bytes(saved_path.read_bytes()[:100])
    with pytest.raises(CheckpointError, match=r"\(truncated or corrupt: not a zip archive"):
        load(path)
    path.write_bytes(bytes(range(1, 40)))  # neither text nor a known kind
    with pytest.raises(CheckpointError, match=r"\(truncated or corrupt: not a zip archive"):
        load(path)


def test_a_header_declaring_a_huge_length_is_refused_before_it_is_read(tmp_path):
    """NumPy reads and parses a header of any declared length before comparing it with its
    limit (a v2 header may declare 4 GiB: a 680 KB file took 1 GB)."""
    path, arrays = saved(tmp_path)
    members = {f"{k}.npy": npy_bytes(v) for k, v in arrays.items()}
    members["optimizer/x.npy"] = b"\x93NUMPY\x02\x00" + struct.pack("<I", 64 << 20) + b" " * (64 << 20)
    write_zip(path, members, compression=zipfile.ZIP_DEFLATED)
    tracemalloc.start()
    try:
        message = refused(path, r"optimizer/x.npy' has a damaged header \(its header declares 67108864 bytes, "
                                r"more than the 10000 a plain array needs\)")
        assert tracemalloc.get_traced_memory()[1] < 16 << 20 and "allow_pickle" not in message
    finally:
        tracemalloc.stop()


def test_a_header_cut_inside_its_dict_is_a_damaged_header(tmp_path):
    """NumPy's parser raised tokenize.TokenError (a traceback) for '(2, 16X'."""
    path, arrays = saved(tmp_path)
    members = {f"{k}.npy": npy_bytes(v) for k, v in arrays.items()}
    name = next(key for key in members if b"'shape': (" in members[key][:128])
    head = members[name][:128]
    start = head.index(b"'shape': (") + len(b"'shape': (")
    end = head.index(b")", start)
    members[name] = members[name][:end] + b"X" + members[name][end + 1:]  # same length
    write_zip(path, members)
    refused(path, rf"{name}' has a damaged header")


# -- what a file holds is quoted shortened -------------------------------------------------------------
HUGE = "x" * 1_000_000


@pytest.mark.parametrize("change, match", [
    (lambda m: m["layers"].__setitem__(0, {"class": HUGE, "config": {}}), r"layer 0 is a 'xxx.*~.*xxx', which"),
    (lambda m: m["layers"][0]["config"].update(in_dim=HUGE), r"in_dim must be an int, got 'xxx.*~"),
    (lambda m: m["layers"][0]["config"].update({HUGE: 1}), r"cannot rebuild layer 0 Linear: .*~"),
    (lambda m: m["layers"][2].__setitem__("config", {HUGE: 1}), r"cannot rebuild layer 2 ReLU: .*~"),
    (lambda m: m.__setitem__("optimizer", {"config": {}, "keys": [f"{i}{HUGE}" for i in range(10)]}),
     r"arrays missing: \['0xxx.*~"),
    (lambda m: m.__setitem__("preprocessing", [HUGE]), r"preprocessing must be null or a dict, got \['xxx.*~"),
    (lambda m: m.__setitem__("version", HUGE), r"version must be an integer, got 'xxx.*~"),
])
def test_a_huge_field_is_quoted_shortened(tmp_path, change, match):
    """A record of a megabyte was echoed whole: one line of megabytes on the terminal."""
    path, arrays = saved(tmp_path)
    meta = meta_of(arrays)
    change(meta)
    message = refused(tampered(tmp_path, with_meta(arrays, meta), "bad.npz"), match)
    assert len(message) < 1000, len(message)


def test_a_huge_member_name_is_quoted_shortened(tmp_path):
    path, arrays = saved(tmp_path)
    arrays["net/0." + "w" * 60_000] = np.ones(2, np.float32)
    message = refused(tampered(tmp_path, arrays), r"net/0\.www.*~.*www is \(2,\) in the file but is not one of")
    assert len(message) < 1000, len(message)


def test_load_into_names_the_difference_shortened(tmp_path):
    path, arrays = saved(tmp_path)
    meta = meta_of(arrays)
    meta["layers"][2]["config"] = {f"key{i}": HUGE[:100_000] for i in range(20)}
    match = r"layer 2 is ReLU\(key0='xx.*~.*', \.\.\.\) in the file but ReLU\(\)"
    with pytest.raises(CheckpointError, match=match) as info:
        load_into(tampered(tmp_path, with_meta(arrays, meta)), small_net())
    assert len(str(info.value)) < 1000


# -- what a zip or JSON allows twice, and dtypes nnfs never writes ----------------------------------------
def test_a_member_stored_twice_is_refused(tmp_path):
    """A zip may hold two members of one name; which one a reader takes is up to the reader."""
    path, arrays = saved(tmp_path)
    with pytest.warns(UserWarning, match="Duplicate name"), zipfile.ZipFile(path, "w") as archive:
        for name, value in arrays.items():
            archive.writestr(f"{name}.npy", npy_bytes(value))
        archive.writestr("net/0.weight.npy", npy_bytes(arrays["net/0.weight"] * 1000))
    refused(path, r"member 'net/0\.weight\.npy' is stored twice \(which copy counts would be up to the reader\)\)$")


def test_a_key_twice_in_the_record_is_refused(tmp_path):
    path, arrays = saved(tmp_path)
    text = arrays["meta"].tobytes().decode().replace('"version": 1', '"version": 1, "version": 1', 1)
    arrays["meta"] = np.frombuffer(text.encode(), dtype=np.uint8)
    refused(tampered(tmp_path, arrays), r"damaged metadata \(the key 'version' appears twice in one object\)$")


@pytest.mark.parametrize("dtype", ["float64", "float16"])
def test_net_arrays_of_another_float_dtype_than_the_net_are_refused(tmp_path, dtype):
    """nnfs stores a net's arrays in its dtype: a float64 1e300 became inf in a float32 net."""
    path, arrays = saved(tmp_path)
    arrays["net/0.weight"] = np.full(arrays["net/0.weight"].shape, 1e300 if dtype == "float64" else 1, dtype)
    refused(tampered(tmp_path, arrays), rf"net/0\.weight holds {dtype} values; the net's parameters and buffers "
                                        r"are stored as float32, its dtype$")


def test_a_checkpoint_loads_where_os_has_no_o_nonblock_and_set_blocking_takes_pipes_only(tmp_path, monkeypatch):
    """Windows (Python 3.12 and later) has set_blocking for pipes only: on the opened checkpoint,
    a regular file, it failed, and no checkpoint could be read."""
    net = Net([Linear(3, 2)], CrossEntropyLoss(), backend="numpy")
    path = save(tmp_path / "m.npz", net)
    monkeypatch.delattr(os, "O_NONBLOCK", raising=False)

    def pipes_only(fd, blocking):
        raise OSError(22, "Invalid argument")

    monkeypatch.setattr(os, "set_blocking", pipes_only)
    loaded = load(path, backend="numpy").net
    np.testing.assert_array_equal(loaded.layers[0].params["weight"], net.layers[0].params["weight"])
