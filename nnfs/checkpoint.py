"""Save a trained ``Net`` with everything prediction needs to one file, and load it on any backend.

The file is an uncompressed ``.npz`` archive (read by :mod:`nnfs.backend.archive`, which
never unpickles and checks every header before reading data):

- ``meta``: JSON text (as uint8 bytes) with the format name and version, each
  layer's class name and ``get_config()``, the loss, the dtype, the class names,
  the preprocessing record, the optimizer's config, the scheduler's state and
  any ``extra`` values;
- ``rng_state`` in ``meta``, when saved with an optimizer: the layers' random streams
  (``Net.rng_state()``, Dropout's seed and mask count), training state that a weights-only
  file leaves out;
- ``net/<layer index>.<name>``: parameters and buffers (BatchNorm running
  statistics), as in ``Net.state_dict()`` (``net/3.body.0.weight`` inside a composite layer);
- ``optimizer/<name>``: the optimizer's state arrays.

Layers are rebuilt by class name from what :mod:`nnfs.layers` and
:mod:`nnfs.activations` export in ``__all__``, so a new layer becomes
loadable by being exported there (with a ``get_config()`` that returns its
constructor arguments). Layers made of layers (``Sequential``, ``Residual``)
store their children's class names and configs inside their own config and
are rebuilt child by child through ``from_config``; a custom layer inside one
is found through ``custom_layers`` like a top-level one. Files are written
atomically (:mod:`nnfs.files`), so a crash never leaves a half-written checkpoint under the real name, and a net holding
NaN or inf is refused unless asked for. Loading trusts nothing in a file: see
:func:`load` for what is refused, always as a :class:`CheckpointError` raised before
anything large is allocated.
"""

import inspect
import itertools
import json
import os
from dataclasses import dataclass, field
from types import SimpleNamespace

from nnfs.backend import archive, get_array_module, host_rng, to_numpy, using
from nnfs.checks import is_integer
from nnfs.files import write_atomically
from nnfs.layers.base import Layer
from nnfs.layers.composite import Composite
from nnfs.losses import Loss
from nnfs.net import Net
from nnfs.optim import OPTIMIZERS, Optimizer, schedule_from_state
from nnfs.optim.optimizers import named_parameters_of, not_the_nets
from nnfs.optim.schedules import SAVED_SCHEDULES
from nnfs.text import listed, short_repr, shorten

FORMAT = "nnfs-checkpoint"
VERSION = 1
META = "meta"
NET_PREFIX = "net/"
OPTIMIZER_PREFIX = "optimizer/"


class CheckpointError(ValueError):
    """A checkpoint file is missing, damaged, or does not fit what it is loaded into; or a net
    cannot be saved as asked (a layer that cannot be rebuilt, NaN or inf in its weights)."""


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
        TypeError: for ``custom_layers`` that are not a Layer or Loss subclass or a list of them.
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
    for cls in _custom_classes(custom_layers):
        if classes.get(cls.__name__, cls) is not cls:
            raise ValueError(f"custom layer name {cls.__name__!r} is already taken by {classes[cls.__name__]!r}")
        classes[cls.__name__] = cls
    return classes


def _custom_classes(custom_layers):
    """``custom_layers`` as a tuple of Layer or Loss subclasses: one class alone, or any
    iterable of them, read once here (saving and loading look the classes up several times,
    and a generator used up by the first look-up left the layers it named "not provided").

    Raises:
        TypeError: naming the option, for anything else: None, a layer object, a class's
            name (a string is not read as its characters), an entry that is not such a class.
    """
    expected = "Layer or Loss subclasses (one class, or a list of them)"
    if isinstance(custom_layers, type):  # one class alone
        custom_layers = (custom_layers,)
    if isinstance(custom_layers, (str, bytes)) or not hasattr(custom_layers, "__iter__"):
        raise TypeError(f"custom_layers takes {expected}, got {short_repr(custom_layers)}")
    classes = tuple(custom_layers)
    for cls in classes:
        if not (isinstance(cls, type) and issubclass(cls, (Layer, Loss))):
            raise TypeError(f"custom_layers takes {expected}, got {short_repr(cls)} in it")
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
        _check_rebuilds(child, f"{where}.{path}")
    return {"class": names[type(obj)], "config": _check_rebuilds(obj, where)}


def _check_rebuilds(obj, where):
    """``obj.get_config()``, or a CheckpointError when loading could not rebuild ``obj`` from
    it: values that are not JSON, or (for a class rebuilt as ``cls(**config)``) arguments its
    constructor does not take. A layer of one's own without a ``get_config`` returns ``{}``,
    and the file it made would be refused only when loaded."""
    cls, config = type(obj), obj.get_config()
    prefix = f"cannot save {where} ({cls.__name__}): its get_config() returned {short_repr(config, 80)}"
    try:
        json.dumps(config, default=_scalar)
    except (TypeError, ValueError, RecursionError) as error:
        raise CheckpointError(f"{prefix}, which is not JSON ({error}); it must return the constructor "
                              "arguments as numbers, strings, lists and dicts") from None
    if isinstance(config, dict) and (issubclass(cls, Loss) or cls.from_config.__func__ is Layer.from_config.__func__):
        try:
            signature = inspect.signature(cls)
        except (TypeError, ValueError):  # a constructor Python cannot describe: loading will tell
            return config
        try:
            signature.bind(**config)
        except TypeError as error:
            raise CheckpointError(f"{prefix}, but {cls.__name__}() {error}; get_config() must return the "
                                  "constructor arguments, which loading passes as cls(**config)") from None
    return config


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
    except RecursionError:
        raise TypeError(f"checkpoint.save: {what} must be JSON-serialisable: nested too deeply") from None


def _from_json(text):
    """The record of JSON ``text``; a ValueError for an object that names a key twice (JSON
    allows it, and which value counts would be up to the reader: ``{1: "a", "1": "b"}`` is
    written so)."""
    return json.loads(text, object_pairs_hook=_object)


def _object(pairs):
    result = dict(pairs)
    if len(result) != len(pairs):
        repeated = next(key for index, (key, _) in enumerate(pairs) if key in dict(pairs[:index]))
        raise ValueError(f"the key {short_repr(repeated)} appears twice in one object")
    return result


# -- the record: what save writes and load reads, checked by the same rules -----------------------
def _check_record(meta):
    """Check the form of every field of a checkpoint's record (``meta``, as JSON reads it back):
    what :func:`load` refuses as damaged metadata is what :func:`save` refuses to write.

    Raises:
        TypeError: for a field of the wrong type (``"extra must be null or a dict, got [1]"``).
        ValueError: for a field of the right type that makes no sense (class names twice).
    """
    def wrong(field, expected, error=TypeError):
        raise error(f"{field} must be {expected}, got {short_repr(meta.get(field))}")

    if not is_integer(meta.get("version")):  # true and 1.0 equal 1 in Python
        wrong("version", "an integer")
    if meta.get("dtype") not in ("float32", "float64"):
        wrong("dtype", "'float32' or 'float64'", ValueError)
    layers = meta.get("layers")
    if not isinstance(layers, list) or not 0 < len(layers) <= MAX_LAYERS or not all(map(_is_record, layers)):
        wrong("layers", f"a list of 1 to {MAX_LAYERS:,} {{'class': name, 'config': dict}} records")
    if meta.get("loss") is not None and not _is_record(meta["loss"]):
        wrong("loss", "null or a {'class': name, 'config': dict} record")
    if meta.get("class_names") is not None:
        _check_class_names(meta["class_names"])
    for key in ("preprocessing", "scheduler", "extra"):
        if meta.get(key) is not None and not isinstance(meta[key], dict):
            wrong(key, "null or a dict")
    optimizer = meta.get("optimizer")
    if optimizer is not None and not (
            isinstance(optimizer, dict) and isinstance(optimizer.get("config"), dict)
            and isinstance(optimizer.get("keys"), list) and all(isinstance(k, str) for k in optimizer["keys"])):
        wrong("optimizer", "null or {'config': dict, 'keys': list of names}")
    if optimizer is not None and len(set(optimizer["keys"])) != len(optimizer["keys"]):
        raise ValueError(f"optimizer keys must be distinct, got {_repeated(optimizer['keys'])} more than once")


def _check_class_names(names):
    """Refuse class names that would label predictions wrongly or ambiguously: they must be a
    non-empty list of distinct, non-empty strings (a number would be stored as its text, and
    1 and "1" would become the same name)."""
    if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
        odd = next((name for name in names if not isinstance(name, str)), None) if isinstance(names, list) else None
        which = f" ({short_repr(odd, 40)} is not a string)" if isinstance(names, list) else ""
        raise TypeError(f"class_names must be a list of strings, got {short_repr(names)}{which}")
    if not names:
        raise ValueError("class_names must name at least one class, got []")
    if "" in names:
        raise ValueError(f"class_names must not hold an empty name, got '' as class {names.index('')}")
    if len(set(names)) != len(names):
        raise ValueError(f"class_names must be distinct, got {_repeated(names)} more than once")


def _repeated(names):
    """``'cat', 'dog'``: the names that appear more than once, as :func:`~nnfs.text.listed`
    names them (the first three, then how many more)."""
    seen, repeated = set(), []
    for name in names:
        if name in seen and name not in repeated:
            repeated.append(name)
        seen.add(name)
    return listed(repeated)


# -- saving ------------------------------------------------------------------------------------------
def save(path, net, *, class_names=None, preprocessing=None, optimizer=None, scheduler=None, extra=None,
         custom_layers=(), allow_non_finite=False):
    """Write ``net`` and what goes with it to ``path`` (one ``.npz`` file), atomically.

    Args:
        path: target file (str, bytes or path-like; not ending with a separator); missing
            parent folders are created.
        net: the ``Net`` to save (any backend; arrays are copied to the host).
        class_names: names of the output classes, in label order: distinct, non-empty
            strings (any iterable of them; one string alone is refused); integers are
            saved as their text (``range(10)`` as ``"0"`` to ``"9"``).
        preprocessing: a JSON-able dict (or an object with ``get_config()``) describing
            how inputs are prepared, e.g. ``nnfs.data.Preprocessing``.
        optimizer: any object whose ``state_dict()`` returns
            ``{"config": JSON-able dict, "state": {str: array}}``. A file saved with one
            holds training state, so it records the layers' random streams too
            (``net.rng_state()``: Dropout's seed and mask count), which loading puts back.
        scheduler: any object whose ``state_dict()`` returns a JSON-able dict.
        extra: a JSON-able dict of anything else (epoch, history, ...).
        custom_layers: your own Layer/Loss subclasses used in ``net`` (saved by class name;
            pass the same classes to :func:`load`).
        allow_non_finite: write the file even when a parameter, a buffer or the optimizer
            state holds NaN or inf (to inspect a diverged run). Off by default: a diverged
            net replacing a good model of the same name is how models get lost.

    Returns:
        The path written.

    Raises:
        TypeError, ValueError: for what :func:`load` would refuse: class names that are not
            distinct non-empty strings (or integers), a preprocessing, scheduler state or ``extra`` that is
            not a dict, optimizer state names that are the same as text, state arrays that
            are not plain numbers (objects, text, complex, long double).
        CheckpointError: for a layer that cannot be rebuilt from a file (a class that is not
            exported nor given as ``custom_layers``, a ``get_config()`` that is not JSON or
            not what the constructor takes), parameters or buffers not of the net's dtype, a
            layer whose arrays disagree with its own ``array_shapes``, layers nested more
            than 64 deep (more than 100,000 in all), a record of more than 256 MiB as JSON,
            non-finite values (unless ``allow_non_finite``), an optimizer made over some
            layers of the net, whose parameter names are not the net's, or an nnfs optimizer
            made for another net (of the same shapes too).
        OSError: when the file cannot be written (naming ``path``); an existing file at
            ``path`` is then left as it was.

    Nothing is written (no file, no temporary file) when anything is refused.
    """
    if not isinstance(net, Net):
        raise TypeError(f"checkpoint.save: expected a Net, got {type(net).__name__}")
    custom_layers = _custom_classes(custom_layers)
    path = os.fsdecode(path)  # str, bytes or a path-like object
    if path.endswith(tuple(filter(None, (os.sep, os.altsep)))):
        raise ValueError(f"checkpoint.save: {path} names a folder (it ends with a separator); give a file name")
    if hasattr(preprocessing, "get_config"):
        preprocessing = preprocessing.get_config()
    if class_names is not None:
        # One string would become one name per character; a generator is read once, here
        # (checking it first would have used it up).
        if isinstance(class_names, (str, bytes)):
            raise TypeError(f"checkpoint.save: class_names must be a list of strings, got {short_repr(class_names)}")
        # Integers (class indices, ``range(10)``) are saved as their text, as they always were;
        # a name given both ways (``[1, "1"]``) is then refused as twice.
        class_names = [str(int(name)) if is_integer(name) else name for name in class_names]
        try:  # checked before the net is copied to the host; _check_record checks it again
            _check_class_names(class_names)
        except (TypeError, ValueError) as error:
            raise type(error)(f"checkpoint.save: {error}") from None
    meta = {"format": FORMAT, "version": VERSION, "dtype": net.dtype.name,
            **_architecture(net, registry(custom_layers)),
            "class_names": class_names, "preprocessing": preprocessing,
            "optimizer": None, "scheduler": None, "extra": extra}
    arrays = {NET_PREFIX + name: value for name, value in net.state_dict().items()}
    for name, part in (("optimizer", optimizer), ("scheduler", scheduler)):
        if part is not None and not callable(getattr(part, "state_dict", None)):
            raise TypeError(f"checkpoint.save: {name} must be an object with a state_dict() method (an nnfs "
                            f"{'optimizer' if name == 'optimizer' else 'schedule'}), got {short_repr(part)}")
    if optimizer is not None:
        _check_optimizer_names(f"checkpoint.save: refusing to write {os.fspath(path)}", net, optimizer)
        state = optimizer.state_dict()
        if not (isinstance(state, dict) and isinstance(state.get("config"), dict)
                and isinstance(state.get("state"), dict)):
            raise TypeError("checkpoint.save: optimizer.state_dict() must return "
                            "{'config': dict, 'state': {str: array}}")
        meta["optimizer"] = {"config": state["config"], "keys": [str(k) for k in state["state"]]}
        for key, value in state["state"].items():
            arrays[OPTIMIZER_PREFIX + str(key)] = to_numpy(value)
        # Training state, like the optimizer's: where the layers' random streams stand (Dropout's
        # mask count), so that training resumed from this file drops what it would have dropped.
        meta["rng_state"] = net.rng_state() or None
    if scheduler is not None:
        meta["scheduler"] = scheduler.state_dict()
    refusing = f"checkpoint.save: refusing to write {os.fspath(path)}"
    try:
        arrays = archive.check_plain(arrays)
    except archive.ArchiveError as error:
        raise TypeError(f"{refusing}: {error}") from None
    if not allow_non_finite:
        _refuse_non_finite(arrays, refusing, "did training diverge? pass allow_non_finite=True to write it anyway")
    text = _to_json(meta, "layer configs, class_names, preprocessing, optimizer config, scheduler state and extra")
    written = _check_written(text, refusing, custom_layers, arrays)
    _check_training_state_written(refusing, written, arrays, net, allow_non_finite)
    _check_optimizer_is_the_nets(refusing, net, optimizer)
    arrays[META] = archive.json_to_array(text)
    write_atomically(path, lambda f: archive.save_npz(f, arrays))
    return path


def _check_written(text, refusing, custom_layers, arrays):
    """Refuse to write a record that :func:`load` would refuse: the JSON ``text`` is read back
    as load reads it and checked by load's rules (its size, its fields, the layers' nesting),
    and the net's ``arrays`` against it as load checks a file's (their dtype, and the shapes
    of each layer's ``array_shapes``: a layer of one's own that disagrees with its own
    ``array_shapes`` would write a file no one can load)."""
    size = len(text.encode("utf-8"))
    if size > MAX_META_BYTES:
        raise CheckpointError(
            f"{refusing}: its record (layer configs, class names, preprocessing, optimizer config, "
            f"scheduler state and extra) takes {archive.format_size(size)} as JSON, more than the "
            f"{archive.format_size(MAX_META_BYTES)} a checkpoint may hold")
    try:
        meta = _from_json(text)
        _check_record(meta)
    except RecursionError:
        raise TypeError(f"{refusing}: its record is nested too deeply to be read back") from None
    except (TypeError, ValueError) as error:
        raise type(error)(f"{refusing}: {error}") from None
    layer_plans, _ = _classes(refusing, meta, custom_layers)  # nesting and layer count, as loading counts them
    _check_net_arrays(refusing, meta["dtype"], layer_plans, arrays, "in the net")
    return meta


def _check_optimizer_names(refusing, net, optimizer):
    """Refuse an optimizer that updates parameters of ``net`` under other names than the net's.

    One made over a layer or a list of layers (to train some layers only) names parameters
    by their place there (``"weight"``, ``"0.weight"``); the file keys the state by those
    names, so loading would give one layer's moments to another of the same shape, or to
    none. Optimizers of one's own (not nnfs's) are taken at their word.
    """
    if not isinstance(optimizer, Optimizer):  # one of the user's own: its params may be anything
        return
    source = optimizer.params
    ours = {id(param): name for name, param, _ in net.named_parameters()}
    for name, param, _ in named_parameters_of(source, "checkpoint.save"):
        if ours.get(id(param), name) != name:
            raise CheckpointError(
                f"{refusing}: the optimizer names the net's parameter {ours[id(param)]} {name!r} (it was "
                "made over a layer or a list of layers), so its state would load into another parameter "
                "or none; make it over the net to save it, or save without optimizer=")


def _check_optimizer_is_the_nets(refusing, net, optimizer):
    """Refuse an nnfs optimizer that updates parameters that are not ``net``'s, by identity as
    the epoch loop checks it: one made for another net of the same shapes (the net rebuilt,
    the old optimizer kept) has state that loads into this net without a word, the moments
    of weights the file does not hold. (One of other shapes is refused before, by its state.)"""
    if not isinstance(optimizer, Optimizer):  # one of the user's own: its params may be anything
        return
    problem = not_the_nets(net, optimizer.params, "checkpoint.save")
    if problem:
        raise CheckpointError(f"{refusing}: {problem} Make it over this net, or save without optimizer=")


def _check_training_state_written(refusing, meta, arrays, net, allow_non_finite):
    """Refuse an optimizer state or a schedule that loading would refuse for ``net``, by
    load's own check (:func:`_training_state_problem`) on what the file would hold: an
    optimizer made for another net saves fine but its state fits no parameter of this one."""
    problem = _training_state_problem(_optimizer_state(meta, arrays), meta.get("scheduler"), net, allow_non_finite)
    if problem is not None:
        part, reason = problem
        hint = "; was the optimizer made for another net?" if part == "optimizer state" else ""
        raise CheckpointError(f"{refusing}: its {part} would not load into this net ({reason}){hint}")


def _refuse_non_finite(arrays, what, hint):
    bad = {name: archive.count_non_finite(value) for name, value in arrays.items()}
    bad = {name: count for name, count in bad.items() if count}
    if bad:
        name, count = next(iter(bad.items()))
        others = f" and {len(bad) - 1} more array(s)" if len(bad) > 1 else ""
        raise CheckpointError(
            f"{what}: {shorten(name, 120)} holds {count} NaN or infinite value(s){others}; {hint}")


# -- loading ------------------------------------------------------------------------------------------
# Reading a file trusts nothing in it. Everything that decides how much memory loading takes
# (the array headers, the layer configs) is checked against everything else before a single
# large array is allocated; only then are the arrays read and the layers built.
# The JSON record: configs, names, history, and what the caller adds (the training program
# records which files trained the model: about 40 bytes an image, so 256 MiB holds the split
# of some 5 million images). The cap bounds what a hostile file makes the loader parse.
MAX_META_BYTES = 256 << 20
MAX_LAYERS = 100_000  # more than any real net; each layer is a Python object before any check
MAX_DEPTH = 64  # layers inside layers inside ...; real nets nest two or three deep


def _open(path):
    """``(path, open ArchiveReader)``; a CheckpointError for anything that is not a readable archive."""
    path = os.fspath(path)
    try:
        return path, archive.ArchiveReader(path)
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint not found: {path}") from None
    except archive.ArchiveError as error:
        raise CheckpointError(f"{path} is not a readable nnfs checkpoint ({error})") from None
    except OSError as error:
        raise CheckpointError(f"{path} cannot be read: {error.strerror or error}") from None


def _metadata(path, reader):
    """The ``meta`` record, every field checked for its form."""
    member = reader.members.get(META)
    if member is None:
        raise CheckpointError(f"{path} is not an nnfs checkpoint (no '{META}' record)")
    if member.dtype.name != "uint8" or len(member.shape) != 1:
        raise CheckpointError(f"{path}: damaged metadata (a {member.dtype} array of shape {member.shape})")
    if member.nbytes > MAX_META_BYTES:
        raise CheckpointError(f"{path}: damaged metadata (a record of {archive.format_size(member.nbytes)}, more "
                              f"than the {archive.format_size(MAX_META_BYTES)} a checkpoint may hold)")
    try:
        meta = _from_json(archive.array_to_json(reader.read(META)))
    except RecursionError:
        raise CheckpointError(f"{path}: damaged metadata (JSON nested too deeply)") from None
    except (UnicodeDecodeError, ValueError) as error:  # ArchiveError is a ValueError too
        raise CheckpointError(f"{path}: damaged metadata ({error})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not an nnfs checkpoint")
    if is_integer(meta.get("version")) and meta["version"] != VERSION:
        raise CheckpointError(
            f"{path} has checkpoint format version {short_repr(meta['version'])}; this nnfs reads version {VERSION}")
    try:
        _check_record(meta)
    except (TypeError, ValueError) as error:
        raise CheckpointError(f"{path}: damaged metadata ({error})") from None
    return meta


def _is_record(record):
    return (isinstance(record, dict) and isinstance(record.get("class"), str)
            and isinstance(record.get("config", {}), dict))


@dataclass
class _Plan:
    """A layer (or loss) record with its class resolved and checked, and the plans of its
    children when it is a composite layer: what loading checks and then builds."""

    cls: type
    record: dict
    where: str
    children: dict = field(default_factory=dict)

    @property
    def config(self):
        return self.record.get("config", {})


def _planner(path, custom_layers):
    """``plan(record, where, base)``: the :class:`_Plan` of a record, children included, or a
    CheckpointError for an unknown class, a class of the wrong kind, a damaged child record,
    or a tree deeper than MAX_DEPTH or larger than MAX_LAYERS."""
    classes = registry(custom_layers)
    count = [0]

    def plan(record, where, base, depth=0):
        cls = classes.get(record["class"])
        if cls is None:
            raise CheckpointError(
                f"{path}: {where} is a {short_repr(record['class'])}, which this nnfs does not provide "
                f"(known: {', '.join(sorted(classes))}); give a class of your own as custom_layers=[...]")
        if not issubclass(cls, base):
            kind = "loss" if issubclass(cls, Loss) else "layer"
            raise CheckpointError(f"{path}: {where} is {record['class']}, a {kind}, not a {base.__name__.lower()}")
        result = _Plan(cls, record, where)
        if issubclass(cls, Composite):
            if depth >= MAX_DEPTH:
                raise CheckpointError(f"{path}: {where} nests layers more than {MAX_DEPTH} deep")
            try:
                children = cls.child_records(result.config)
            except (TypeError, ValueError, KeyError) as error:
                raise CheckpointError(f"{path}: cannot rebuild {where} {cls.__name__}: "
                                      f"{shorten(str(error), 300)}") from None
            for name, child in children.items():
                if not _is_record(child):
                    raise CheckpointError(f"{path}: damaged metadata ({where}.{name} must be a "
                                          f"{{'class': name, 'config': dict}} record, got {short_repr(child)})")
                count[0] += 1
                if count[0] > MAX_LAYERS:
                    raise CheckpointError(f"{path}: damaged metadata (more than {MAX_LAYERS:,} layers)")
                result.children[name] = plan(child, f"{where}.{name}", Layer, depth + 1)
        return result

    return plan


def _classes(path, meta, custom_layers):
    """The plan of every layer and of the loss: a layer must name a Layer, the loss a Loss."""
    plan = _planner(path, custom_layers)
    layers = [plan(record, f"layer {i}", Layer) for i, record in enumerate(meta["layers"])]
    loss = None if meta.get("loss") is None else plan(meta["loss"], "the loss", Loss)
    return layers, loss


def _shapes(plan):
    """``{key: shape}`` of every array the planned layer will hold (``Layer.array_shapes``;
    a composite's are its children's under their names), or None where a layer does not say."""
    if not issubclass(plan.cls, Composite):
        return plan.cls.array_shapes(**plan.config)
    shapes = {}
    for name, child in plan.children.items():
        inner = _shapes(child)
        if inner is None:
            return None
        shapes.update({f"{name}.{key}": shape for key, shape in inner.items()})
    return shapes


def _check_net_arrays(path, dtype, layer_plans, arrays, where):
    """The rule that :func:`save` writes by and :func:`load` reads by for the ``net/...`` arrays:
    each is of the net's ``dtype``, and a layer whose config determines its arrays
    (``Layer.array_shapes``) holds exactly those, by name and shape.

    Args:
        path: what a message starts with (the file, or what save refuses to write).
        dtype: the net's dtype name (``"float32"``, ``"float64"``).
        layer_plans: the :class:`_Plan` of each layer.
        arrays: ``{name: array or archive member}``, anything with ``shape`` and ``dtype``;
            the members not named ``net/...`` are not looked at.
        where: where the arrays are, for a message (``"in the file"``, ``"in the net"``).
    """
    stored = {}
    for name, member in arrays.items():
        if name.startswith(NET_PREFIX):
            index, _, key = name[len(NET_PREFIX):].partition(".")
            stored.setdefault(index, {})[key] = member
            if member.dtype.name != dtype:  # a float64 1e300 would be inf in a float32 net
                raise CheckpointError(f"{path}: {shorten(name, 120)} holds {member.dtype} values; the "
                                      f"net's parameters and buffers are stored as {dtype}, its dtype")
    for index, plan in enumerate(layer_plans):
        cls, config = plan.cls, plan.config
        try:
            needed = _shapes(plan)
        except (TypeError, ValueError, OverflowError) as error:
            raise CheckpointError(f"{path}: cannot rebuild layer {index} {cls.__name__}: "
                                  f"{shorten(str(error), 300)}") from None
        if needed is None:
            continue
        held = {key: tuple(member.shape) for key, member in stored.get(str(index), {}).items()}
        for key in sorted(set(needed) | set(held)):
            want, have = (tuple(needed[key]) if key in needed else None), held.get(key)
            if want != have:
                wanted = "is not one of its arrays" if want is None else f"must be {want}"
                found = f"is missing {where}" if have is None else f"is {have} {where}"
                raise CheckpointError(
                    f"{path}: layer {index} {cls.__name__}{_arguments(config)}: "
                    f"{shorten(f'{NET_PREFIX}{index}.{key}', 120)} {found} but {wanted}")


def _check_arrays(path, meta, reader, layer_plans):
    """Check what the file stores against what its layers need, before reading any data.

    Every array of a layer whose shapes its config determines (``Layer.array_shapes``)
    must be stored with exactly those shapes; parameters and buffers must be floats; and
    the whole, read and built, must fit in this machine's memory.
    """
    _check_net_arrays(path, meta["dtype"], layer_plans, reader.members, "in the file")
    itemsize = 8 if meta["dtype"] == "float64" else 4
    in_net = sum(m.size for name, m in reader.members.items() if name.startswith(NET_PREFIX))
    # The arrays as read, then the net's own copies of them and its gradients.
    needed_bytes = sum(m.nbytes for m in reader.members.values()) + 2 * in_net * itemsize
    available = _memory_bytes()
    if available is not None and needed_bytes > available:
        raise CheckpointError(
            f"{path}: loading it would take {archive.format_size(needed_bytes)}, more than this "
            f"machine's {archive.format_size(available)} of memory")


def _arguments(config, shown=10):
    """``(key=value, ...)`` of a layer config for a message: its first ``shown`` arguments,
    each shortened (a config read from a file may hold anything, at any length)."""
    arguments = [f"{shorten(str(k), 20)}={short_repr(v, 20)}" for k, v in itertools.islice(config.items(), shown)]
    return "(" + ", ".join(arguments + ["..."] * (len(config) > shown)) + ")"


def _memory_bytes():
    """The machine's physical memory in bytes, or None where it cannot be told."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


def _read(path, custom_layers, allow_non_finite):
    """Open, check and read a checkpoint: ``(path, meta, arrays, layer plans, loss plan)``."""
    path, reader = _open(path)
    with reader:
        meta = _metadata(path, reader)
        layer_plans, loss_plan = _classes(path, meta, custom_layers)
        _check_arrays(path, meta, reader, layer_plans)
        try:
            arrays = {name: reader.read(name) for name in reader.members if name != META}
        except archive.ArchiveError as error:
            raise CheckpointError(f"{path} is not a readable nnfs checkpoint ({error})") from None
        except OSError as error:
            raise CheckpointError(f"{path} cannot be read: {error.strerror or error}") from None
    if not allow_non_finite:
        _refuse_non_finite(arrays, path, "the run that wrote it had diverged; load it with "
                           "allow_non_finite=True to inspect it")
    return path, meta, arrays, layer_plans, loss_plan


def _build(plan, path):
    """The layer (or loss) of a checked plan; a composite's children are built the same way."""
    def build_child(record, name):
        return _build(plan.children[name], path)

    try:
        if issubclass(plan.cls, Layer):
            return plan.cls.from_config(plan.config, build=build_child)
        return plan.cls(**plan.config)
    except CheckpointError:
        raise  # a child's error, which already names the child
    except (TypeError, ValueError, KeyError, AttributeError, ArithmeticError) as error:
        raise CheckpointError(f"{path}: cannot rebuild {plan.where} {plan.record['class']}: "
                              f"{shorten(str(error), 300)}") from None


def build_layer(record, custom_layers=()):
    """A layer from a ``{"class": name, "config": get_config()}`` record, nested ones included:
    what a checkpoint does for each layer, outside a checkpoint (e.g. to copy a block).

    Raises:
        CheckpointError: for a class nnfs does not provide (and ``custom_layers`` do not),
            or a config its constructor refuses.
    """
    if not _is_record(record):
        raise CheckpointError(
            f"build_layer: expected a {{'class': name, 'config': dict}} record, got {short_repr(record)}")
    return _build(_planner("build_layer", custom_layers)(record, "the layer", Layer), "build_layer")


def _build_net(path, meta, backend, layer_plans, loss_plan):
    # Building layers draws initial weights from the seeded host generator; they are
    # overwritten at once, so put the generator back where it was.
    rng = host_rng()
    rng_state = rng.bit_generator.state
    try:
        # Built straight on the target backend: the default one may be unusable here
        # (NNFS_BACKEND=cupy on a machine without a GPU, loading with backend="numpy").
        with using(backend):  # None: the default backend
            layers = [_build(plan, path) for plan in layer_plans]
        loss = None if loss_plan is None else _build(loss_plan, path)
    finally:
        rng.bit_generator.state = rng_state
    return Net(layers, loss, backend=backend, dtype=meta["dtype"])


def _restore(path, meta, arrays, net, allow_non_finite):
    """Put the file's weights, buffers and random streams into ``net``, all or nothing, and
    return them with the rest of the file as a :class:`Checkpoint`.

    Every part is checked before the net changes (the optimizer state and the schedule
    too, though they only come back in the Checkpoint: a file refused by the optimizer
    loading it must not have loaded its weights first); of the two changes, the streams
    go in first and are put back when the weights are refused.
    """
    if meta.get("optimizer") is not None:
        missing = [k for k in meta["optimizer"]["keys"] if OPTIMIZER_PREFIX + k not in arrays]
        if missing:
            raise CheckpointError(f"{path}: optimizer state arrays missing: {short_repr(missing)}")
    optimizer_state = _optimizer_state(meta, arrays)
    problem = _training_state_problem(optimizer_state, meta.get("scheduler"), net, allow_non_finite)
    if problem is not None:
        part, reason = problem
        what = "damaged optimizer state" if part == "optimizer state" else "cannot restore its schedule"
        raise CheckpointError(f"{path}: {what} ({reason})")
    state = {name[len(NET_PREFIX):]: value for name, value in arrays.items() if name.startswith(NET_PREFIX)}
    streams = net.rng_state()
    try:
        net.load_rng_state(meta.get("rng_state"))  # absent from older files and weights-only ones
        try:
            net.load_state_dict(state)  # checks every array before it stores one
        except BaseException:
            net.load_rng_state(streams)
            raise
    except ValueError as error:
        raise CheckpointError(f"{path}: {error}") from None
    net.eval()
    return Checkpoint(net=net, class_names=meta.get("class_names"),
                      preprocessing=meta.get("preprocessing"), optimizer_state=optimizer_state,
                      scheduler_state=meta.get("scheduler"), extra=meta.get("extra"), path=path)


def _optimizer_state(meta, arrays):
    """``{"config": ..., "state": {name: array}}`` as the record ``meta`` and ``arrays`` hold
    it (what :class:`Checkpoint` hands back), or None for a file without one."""
    if meta.get("optimizer") is None:
        return None
    return {"config": meta["optimizer"]["config"],
            "state": {k: arrays[OPTIMIZER_PREFIX + k] for k in meta["optimizer"]["keys"]}}


def _training_state_problem(optimizer_state, scheduler_state, net, allow_non_finite=False):
    """``("optimizer state" or "scheduler state", reason)`` for an optimizer state or a
    schedule that the nnfs optimizer or schedule it names would refuse for ``net``, else None.

    They are checked by stand-ins that change nothing: a fresh optimizer of that type over
    ``net`` (:meth:`~nnfs.optim.Optimizer.check_state_dict`: the arrays are checked where they
    are, never copied to the net's device) and a schedule driving a bare learning rate. Types
    nnfs does not make (an optimizer of one's own saved by its ``state_dict()``) are left to
    whoever loads them. With
    ``allow_non_finite`` NaN and inf in the state are let through (the stand-in sees zeros
    there), as they are in the weights: a diverged run's file is read to be inspected.
    """
    config = optimizer_state["config"] if optimizer_state is not None else {}
    cls = {cls.__name__: cls for cls in OPTIMIZERS.values()}.get(config.get("type"))
    if cls is not None:
        if allow_non_finite:
            optimizer_state = {"config": config,
                               "state": {k: _finite(v) for k, v in optimizer_state["state"].items()}}
        try:
            cls(net, lr=config["lr"]).check_state_dict(optimizer_state)
        except (KeyError, TypeError, ValueError) as error:
            return "optimizer state", f"missing {error}" if isinstance(error, KeyError) else str(error)
    if scheduler_state is not None and scheduler_state.get("type") in SAVED_SCHEDULES:
        try:
            schedule_from_state(SimpleNamespace(lr=0.0), scheduler_state)
        except (KeyError, TypeError, ValueError) as error:
            return "scheduler state", f"missing {error}" if isinstance(error, KeyError) else str(error)
    return None


def _finite(array):
    """``array`` with its NaN and infinities as zeros (floats only: nothing else holds them)."""
    if getattr(array, "dtype", None) is None or array.dtype.kind != "f":
        return array
    xp = get_array_module(array)
    return xp.where(xp.isfinite(array), array, 0)


def load(path, backend=None, custom_layers=(), allow_non_finite=False):
    """Rebuild the net saved in ``path`` and return it with its metadata.

    Args:
        path: a file written by :func:`save`.
        backend: where to put the net (``"numpy"``, ``"cupy"``, ...); default ``NNFS_BACKEND``.
        custom_layers: your own Layer/Loss subclasses that the file names; each is rebuilt
            as ``cls(**get_config())``.
        allow_non_finite: load parameters, buffers or optimizer state holding NaN or inf
            (a diverged run saved with ``save(..., allow_non_finite=True)``) instead of
            refusing them.

    Returns:
        A :class:`Checkpoint`; its net is in eval mode (call ``net.train()`` to train on),
        its random streams where the file's record left them; a file without one (saved
        without an optimizer, or by an older nnfs) leaves each Dropout the seed it was
        built with and its masks start from the first.

    Raises:
        CheckpointError: for anything but a sound checkpoint: a missing file, or one that is
            not a regular file, truncated, corrupt, of another format version, with a member
            stored twice; metadata of the wrong form (what :func:`save` refuses to write:
            class names twice or empty, a version of ``true`` or ``1.0``, a key twice in one
            object, ...); a layer this nnfs does not provide, or a loss where a layer goes;
            arrays that are not plain numbers, net arrays not of the net's dtype, arrays that
            do not fit the layers' configs, that would not fit in memory, or that hold NaN or
            inf; an optimizer state or schedule that the nnfs optimizer or schedule it names
            would refuse for this net. Nothing large is allocated before the sizes are checked.
    """
    custom_layers = _custom_classes(custom_layers)
    path, meta, arrays, layer_plans, loss_plan = _read(path, custom_layers, allow_non_finite)
    return _restore(path, meta, arrays, _build_net(path, meta, backend, layer_plans, loss_plan), allow_non_finite)


def metadata(path):
    """The checkpoint's JSON record, checked for its form, without reading its arrays or building
    its net: ``"layers"``, ``"class_names"``, ``"preprocessing"``, ``"extra"`` and so on.

    Raises:
        CheckpointError: as :func:`load`, for a missing, damaged or foreign file.
    """
    path, reader = _open(path)
    with reader:
        return _metadata(path, reader)


def load_into(path, net, custom_layers=(), allow_non_finite=False):
    """Load the weights saved in ``path`` into an existing ``net`` of the same architecture.

    ``custom_layers`` and ``allow_non_finite`` are as for :func:`load`.

    Returns:
        A :class:`Checkpoint` whose ``net`` is ``net`` (now in eval mode), with its random
        streams continued from the file's record where it has one (else left as they are).

    Raises:
        CheckpointError: as :func:`load`, and when the file holds another architecture.
            Every part of the file (weights, buffers, random streams, and the optimizer
            state and schedule it hands back) is checked before ``net`` changes: a refused
            file leaves its arrays, streams and modes as they were.
    """
    if not isinstance(net, Net):
        raise TypeError(f"checkpoint.load_into: expected a Net to load into, got {type(net).__name__}")
    custom_layers = _custom_classes(custom_layers)
    path, meta, arrays, _, _ = _read(path, custom_layers, allow_non_finite)
    saved = {"layers": meta.get("layers"), "loss": meta.get("loss")}
    # Compare through JSON so that tuples and lists in configs count as equal.
    ours = json.loads(json.dumps(_architecture(net, registry(custom_layers))))
    if ours["layers"] != saved["layers"]:
        raise CheckpointError(
            f"{path} holds a different architecture: {_first_difference(saved['layers'], ours['layers'])}")
    return _restore(path, meta, arrays, net, allow_non_finite)


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
        return f"a {shorten(str(record.get('class')), 40)}"  # its children would fill the screen
    args = _arguments({k: tuple(v) if isinstance(v, list) else v for k, v in config.items()})
    return f"{shorten(str(record.get('class')), 40)}{args}"


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
