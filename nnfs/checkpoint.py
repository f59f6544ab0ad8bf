"""Save a trained ``Net`` with everything prediction needs to one file, and load it on any backend.

The file is an uncompressed ``.npz`` archive read with ``allow_pickle=False``:

- ``meta``: JSON text (as uint8 bytes) with the format name and version, each
  layer's class name and ``get_config()``, the loss, the dtype, the class names,
  the preprocessing record, the optimizer's config, the scheduler's state and
  any ``extra`` values;
- ``net/<layer index>.<name>``: parameters and buffers (BatchNorm running
  statistics), as in ``Net.state_dict()`` (``net/3.body.0.weight`` inside a composite layer);
- ``optimizer/<name>``: the optimizer's state arrays.

Layers are rebuilt by class name from what :mod:`nnfs.layers` and
:mod:`nnfs.activations` export in ``__all__``, so a new layer becomes
loadable by being exported there (with a ``get_config()`` that returns its
constructor arguments). Layers made of layers (``Sequential``, ``Residual``)
store their children's class names and configs inside their own config and
are rebuilt child by child through ``from_config``; a custom layer inside one
is found through ``custom_layers`` like a top-level one. Files are written atomically (:mod:`nnfs.files`), so a
crash never leaves a half-written checkpoint under the real name.
"""

import json
import os
import zipfile
from dataclasses import dataclass, field

from nnfs.backend import archive, host_rng, to_numpy, using
from nnfs.files import write_atomically
from nnfs.layers.base import Layer
from nnfs.losses import Loss
from nnfs.net import Net

FORMAT = "nnfs-checkpoint"
VERSION = 1
META = "meta"
NET_PREFIX = "net/"
OPTIMIZER_PREFIX = "optimizer/"


class CheckpointError(ValueError):
    """A checkpoint file is missing, damaged, or does not fit what it is loaded into."""


@dataclass
class Checkpoint:
    """What :func:`load` returns.

    Attributes:
        net: the rebuilt ``Net``, in eval mode, on the requested backend.
        class_names: list of class names, or None.
        preprocessing: the JSON-able preprocessing dict given to :func:`save`, or None.
        optimizer_state: ``{"config": dict, "state": {name: NumPy array}}``, or None.
        scheduler_state: the scheduler's dict, or None.
        extra: the ``extra`` dict given to :func:`save`, or None.
        path: the file it came from.
    """

    net: Net
    class_names: list = None
    preprocessing: dict = None
    optimizer_state: dict = None
    scheduler_state: dict = None
    extra: dict = None
    path: str = field(default=None, repr=False)


# -- the layer registry ------------------------------------------------------------------------
def registry(custom_layers=()):
    """``{name: class}`` of every layer and loss nnfs exports (the modules' ``__all__``),
    plus ``custom_layers``: your own ``Layer`` or ``Loss`` subclasses, known by class name.

    Raises:
        TypeError: for a custom entry that is not a Layer or Loss subclass.
        ValueError: for a custom class whose name is already taken by another class.
    """
    import nnfs.activations
    import nnfs.layers
    import nnfs.losses

    classes = {}
    for module, base in ((nnfs.layers, Layer), (nnfs.activations, Layer), (nnfs.losses, Loss)):
        for name in module.__all__:
            obj = getattr(module, name)
            if isinstance(obj, type) and issubclass(obj, base) and obj not in (Layer, Loss):
                classes[name] = obj
    for cls in custom_layers:
        if not (isinstance(cls, type) and issubclass(cls, (Layer, Loss))):
            raise TypeError(f"custom_layers takes Layer or Loss subclasses, got {cls!r}")
        if classes.get(cls.__name__, cls) is not cls:
            raise ValueError(f"custom layer name {cls.__name__!r} is already taken by {classes[cls.__name__]!r}")
        classes[cls.__name__] = cls
    return classes


def _describe(obj, where, classes):
    names = {cls: name for name, cls in classes.items()}
    if type(obj) not in names:
        raise CheckpointError(
            f"cannot save {where} ({type(obj).__name__}): only layers and losses exported by "
            "nnfs.layers, nnfs.activations or nnfs.losses, or given as custom_layers, can be "
            "rebuilt from a checkpoint")
    # A composite's config names its children by class name: each must be one we can rebuild.
    for path, child in getattr(obj, "named_layers", tuple)():
        if classes.get(type(child).__name__) is not type(child):
            raise CheckpointError(
                f"cannot save {where}.{path} ({type(child).__name__}) inside {type(obj).__name__}: "
                "only layers exported by nnfs.layers or nnfs.activations, or given as "
                "custom_layers, can be rebuilt from a checkpoint")
    return {"class": names[type(obj)], "config": obj.get_config()}


def _architecture(net, classes):
    return {"layers": [_describe(layer, f"layer {i}", classes) for i, layer in enumerate(net.layers)],
            "loss": None if net.loss_fn is None else _describe(net.loss_fn, "the loss", classes)}


def _scalar(value):
    """NumPy/CuPy scalars and 0-d arrays (an accuracy, a step count) become Python numbers."""
    if getattr(value, "ndim", None) == 0 and hasattr(value, "item"):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")


def _to_json(value, what):
    try:
        return json.dumps(value, default=_scalar)
    except (TypeError, ValueError) as error:
        raise TypeError(f"checkpoint.save: {what} must be JSON-serialisable: {error}") from None


# -- saving ------------------------------------------------------------------------------------------
def save(path, net, *, class_names=None, preprocessing=None, optimizer=None, scheduler=None, extra=None,
         custom_layers=()):
    """Write ``net`` and what goes with it to ``path`` (one ``.npz`` file), atomically.

    Args:
        path: target file; missing parent folders are created.
        net: the ``Net`` to save (any backend; arrays are copied to the host).
        class_names: names of the output classes, in label order.
        preprocessing: a JSON-able dict (or an object with ``get_config()``) describing
            how inputs are prepared, e.g. ``nnfs.data.Preprocessing``.
        optimizer: any object whose ``state_dict()`` returns
            ``{"config": JSON-able dict, "state": {str: array}}``.
        scheduler: any object whose ``state_dict()`` returns a JSON-able dict.
        extra: a JSON-able dict of anything else (epoch, history, ...).
        custom_layers: your own Layer/Loss subclasses used in ``net`` (saved by class name;
            pass the same classes to :func:`load`).

    Returns:
        The path written.
    """
    if not isinstance(net, Net):
        raise TypeError(f"checkpoint.save: expected a Net, got {type(net).__name__}")
    if hasattr(preprocessing, "get_config"):
        preprocessing = preprocessing.get_config()
    if class_names is not None:
        class_names = [str(name) for name in class_names]
    meta = {"format": FORMAT, "version": VERSION, "dtype": net.dtype.name,
            **_architecture(net, registry(custom_layers)),
            "class_names": class_names, "preprocessing": preprocessing,
            "optimizer": None, "scheduler": None, "extra": extra}
    arrays = {NET_PREFIX + name: value for name, value in net.state_dict().items()}
    if optimizer is not None:
        state = optimizer.state_dict()
        if not (isinstance(state, dict) and isinstance(state.get("config"), dict)
                and isinstance(state.get("state"), dict)):
            raise TypeError("checkpoint.save: optimizer.state_dict() must return "
                            "{'config': dict, 'state': {str: array}}")
        meta["optimizer"] = {"config": state["config"], "keys": [str(k) for k in state["state"]]}
        for key, value in state["state"].items():
            arrays[OPTIMIZER_PREFIX + str(key)] = to_numpy(value)
    if scheduler is not None:
        meta["scheduler"] = scheduler.state_dict()
    arrays[META] = archive.json_to_array(_to_json(
        meta, "layer configs, class_names, preprocessing, optimizer config, scheduler state and extra"))
    write_atomically(path, lambda f: archive.save_npz(f, arrays))
    return path


# -- loading ------------------------------------------------------------------------------------------
def _read(path):
    path = os.fspath(path)
    if not os.path.exists(path):
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        arrays = archive.load_npz(path)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, KeyError) as error:
        raise CheckpointError(
            f"{path} is not a readable nnfs checkpoint (truncated or corrupt: {error})") from None
    if META not in arrays:
        raise CheckpointError(f"{path} is not an nnfs checkpoint (no '{META}' record)")
    try:
        meta = json.loads(archive.array_to_json(arrays.pop(META)))
    except (UnicodeDecodeError, ValueError) as error:
        raise CheckpointError(f"{path}: damaged metadata ({error})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not an nnfs checkpoint")
    if meta.get("version") != VERSION:
        raise CheckpointError(
            f"{path} has checkpoint format version {meta.get('version')!r}; "
            f"this nnfs reads version {VERSION}")
    return path, meta, arrays


def _build(record, where, classes, path):
    """The layer or loss of one ``{"class", "config"}`` record; nested records (the
    children of a composite layer) are built the same way, named ``where.child``."""
    try:
        cls = classes[record["class"]]
    except KeyError:
        raise CheckpointError(
            f"{path}: {where} is a {record.get('class')!r}, which this nnfs does not provide "
            f"(known: {', '.join(sorted(classes))})") from None

    def build_child(child, name):
        return _build(child, f"{where}.{name}", classes, path)

    try:
        config = record.get("config", {})
        if issubclass(cls, Layer):
            return cls.from_config(config, build=build_child)
        return cls(**config)  # a loss
    except CheckpointError:
        raise  # a child's error, which already names the child
    except (TypeError, ValueError) as error:
        raise CheckpointError(f"{path}: cannot rebuild {where} {record['class']}: {error}") from None


def build_layer(record, custom_layers=()):
    """A layer from a ``{"class": name, "config": get_config()}`` record, nested ones included:
    what a checkpoint does for each layer, outside a checkpoint (e.g. to copy a block).

    Raises:
        CheckpointError: for a class nnfs does not provide (and ``custom_layers`` do not),
            or a config its constructor refuses.
    """
    return _build(record, "the layer", registry(custom_layers), "build_layer")


def _build_net(path, meta, backend, custom_layers):
    classes = registry(custom_layers)
    # Building layers draws initial weights from the seeded host generator; they are
    # overwritten at once, so put the generator back where it was.
    rng = host_rng()
    rng_state = rng.bit_generator.state
    try:
        # Built straight on the target backend: the default one may be unusable here
        # (NNFS_BACKEND=cupy on a machine without a GPU, loading with backend="numpy").
        with using(backend):  # None: the default backend
            layers = [_build(rec, f"layer {i}", classes, path) for i, rec in enumerate(meta["layers"])]
        loss = None if meta.get("loss") is None else _build(meta["loss"], "the loss", classes, path)
    except (KeyError, TypeError, AttributeError) as error:
        raise CheckpointError(f"{path}: damaged architecture record ({error!r})") from None
    finally:
        rng.bit_generator.state = rng_state
    try:
        dtype = meta.get("dtype")
        if dtype not in ("float32", "float64"):
            raise ValueError(f"dtype {dtype!r}")
    except ValueError as error:
        raise CheckpointError(f"{path}: damaged metadata ({error})") from None
    return Net(layers, loss, backend=backend, dtype=dtype)


def _restore(path, meta, arrays, net):
    state = {name[len(NET_PREFIX):]: value for name, value in arrays.items() if name.startswith(NET_PREFIX)}
    try:
        net.load_state_dict(state)
    except ValueError as error:
        raise CheckpointError(f"{path}: {error}") from None
    net.eval()
    optimizer_state = None
    if meta.get("optimizer") is not None:
        keys = meta["optimizer"].get("keys", [])
        missing = [k for k in keys if OPTIMIZER_PREFIX + k not in arrays]
        if missing:
            raise CheckpointError(f"{path}: optimizer state arrays missing: {missing}")
        optimizer_state = {"config": meta["optimizer"]["config"],
                           "state": {k: arrays[OPTIMIZER_PREFIX + k] for k in keys}}
    return Checkpoint(net=net, class_names=meta.get("class_names"),
                      preprocessing=meta.get("preprocessing"), optimizer_state=optimizer_state,
                      scheduler_state=meta.get("scheduler"), extra=meta.get("extra"), path=path)


def load(path, backend=None, custom_layers=()):
    """Rebuild the net saved in ``path`` and return it with its metadata.

    Args:
        path: a file written by :func:`save`.
        backend: where to put the net (``"numpy"``, ``"cupy"``, ...); default ``NNFS_BACKEND``.
        custom_layers: your own Layer/Loss subclasses that the file names; each is rebuilt
            as ``cls(**get_config())``.

    Returns:
        A :class:`Checkpoint`; its net is in eval mode (call ``net.train()`` to train on).

    Raises:
        CheckpointError: missing, truncated or corrupt file, another format version,
            a layer this nnfs does not provide, or weights that do not fit the layers.
    """
    path, meta, arrays = _read(path)
    return _restore(path, meta, arrays, _build_net(path, meta, backend, custom_layers))


def metadata(path):
    """The checkpoint's JSON record without building its net: ``"layers"``, ``"class_names"``,
    ``"preprocessing"``, ``"extra"`` and so on (see the module docstring).

    Raises:
        CheckpointError: as :func:`load`, for a missing, damaged or foreign file.
    """
    return _read(path)[1]


def load_into(path, net, custom_layers=()):
    """Load the weights saved in ``path`` into an existing ``net`` of the same architecture.

    ``custom_layers`` names your own classes in ``net``, as for :func:`load`.

    Returns:
        A :class:`Checkpoint` whose ``net`` is ``net`` (now in eval mode).

    Raises:
        CheckpointError: as :func:`load`, and when the file holds another architecture.
    """
    path, meta, arrays = _read(path)
    saved = {"layers": meta.get("layers"), "loss": meta.get("loss")}
    # Compare through JSON so that tuples and lists in configs count as equal.
    ours = json.loads(json.dumps(_architecture(net, registry(custom_layers))))
    if ours["layers"] != saved["layers"]:
        raise CheckpointError(
            f"{path} holds a different architecture: {_first_difference(saved['layers'], ours['layers'])}")
    return _restore(path, meta, arrays, net)


def _is_record(value):
    return isinstance(value, dict) and set(value) == {"class", "config"}


def _nested(value):
    """The child records in one config value of a composite layer: a record, or a list of them."""
    if _is_record(value):
        return [value]
    if isinstance(value, list) and value and all(map(_is_record, value)):
        return value
    return []


def _show(record):
    if record is None:
        return "nothing"
    config = record.get("config", {})
    if any(_nested(value) for value in config.values()):
        return f"a {record.get('class')}"  # its children would fill the screen
    args = ", ".join(f"{k}={tuple(v) if isinstance(v, list) else v!r}" for k, v in config.items())
    return f"{record.get('class')}({args})"


def _record_difference(where, a, b):
    """Where two layer records first differ, following the children of composite layers."""
    if a is not None and b is not None and a.get("class") == b.get("class"):
        config_a, config_b = a.get("config", {}), b.get("config", {})
        for key in config_a:
            x, y = config_a.get(key), config_b.get(key)
            if x == y or not (_nested(x) and _nested(y)):
                continue
            if _is_record(x) and _is_record(y):
                return _record_difference(f"{where}.{key}", x, y)
            if len(x) != len(y):
                return f"{where} has {len(x)} layers in the file, {len(y)} in this net"
            for index, (p, q) in enumerate(zip(x, y)):
                if p != q:
                    return _record_difference(f"{where}.{index}", p, q)
    return f"{where} is {_show(a)} in the file but {_show(b)} in this net"


def _first_difference(saved, ours):
    saved = saved or []
    if len(saved) != len(ours):
        return f"{len(saved)} layers in the file, {len(ours)} in this net"
    for index, (a, b) in enumerate(zip(saved, ours)):
        if a != b:
            return _record_difference(f"layer {index}", a, b)
    return "the layers differ"


__all__ = ["save", "load", "load_into", "metadata", "build_layer", "Checkpoint", "CheckpointError", "registry", "FORMAT", "VERSION"]
