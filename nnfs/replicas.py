"""Replicas: the copies of a net's layers that the shards after the first run on.

A batch cut into shards (:mod:`nnfs.parallel`) runs shard 0 on the net's own layers and
every other shard on a :class:`Replica` of them, on a thread of its own. A replica

- **shares the parameter arrays** (one set of weights, updated once);
- **has its own caches, gradients and buffers** (two threads never write to the same
  array; the gradients are summed over the shards afterwards, the buffers copied from the
  net's before every step);
- **takes over the layers' settings before every step**: numbers, strings, flags and tuples
  of them as they are (nothing can change them in place), and any other object (an array,
  a dict) that the net's layer was assigned *between* steps as a copy of its own. What a
  layer assigns itself during a pass (``self.X = X`` in ``forward``) each shard assigns its
  own, so it is not copied: the replica records what the net's layers hold after every pass
  (:meth:`Replica.note`) and copies only what differs from that at the next step. An object
  changed in place (``layer.mask[3] = 0``) is not seen; ``buffers`` are, every step;
- **shares what cannot be copied** (a lock, an open file), as the layers of one thread do.

Child layers (the insides of a ``Sequential`` or ``Residual``) are replicas of their own,
and the views that tie a composite's stores to its children's are copied once, whole.
"""

import copy
import numbers
import weakref

__all__ = ["Replica", "replicate"]

# Values taken over as they are: nothing can change them in place (NumPy's numbers included).
_SCALARS = (bool, numbers.Number, str, bytes, type(None))
_BUILTIN_SCALARS = frozenset((bool, int, float, complex, str, bytes, type(None)))
# The stores every layer has, which a replica handles one by one (see Replica.refresh).
_STORES = frozenset(("params", "grads", "buffers", "cache"))


def _is_plain(value):
    """True for a number, string, flag or None, or a tuple or frozenset of them."""
    kind = type(value)
    if kind in _BUILTIN_SCALARS:  # most attributes: answered without the ABC's isinstance
        return True
    if isinstance(value, (tuple, frozenset)):
        return all(_is_plain(item) for item in value)
    return isinstance(value, _SCALARS)


def _items(value):
    """The items of a dict, list or tuple; ``(value,)`` for anything else."""
    if isinstance(value, dict):
        return value.values()
    return value if isinstance(value, (list, tuple)) else (value,)


def _is_layers(value):
    """True for a layer, or a list, tuple or dict holding one: the structure, not state."""
    from nnfs.layers.base import Layer  # not at the top: the layers import nnfs.parallel

    return any(isinstance(item, Layer) for item in _items(value))


def _is_setting(name, value):
    """True for an attribute that a replica copies when it changes between steps."""
    return name not in _STORES and not _is_plain(value) and not _is_layers(value)


def _reference(value):
    """What tells later whether an attribute still holds ``value``: a weak reference where the
    object has them (an array: no copy of the user's kept alive), else the object itself."""
    try:
        return weakref.ref(value)
    except TypeError:  # dicts, lists, tuples
        return lambda: value


def _never_copied():
    """The reference of an attribute the replica has no record of: it holds nothing."""


def sublayers(layers):
    """Every layer in ``layers`` and inside them (children of layers made of layers), once each."""
    from nnfs.layers.base import Layer

    found, seen = [], set()

    def visit(layer):
        if id(layer) in seen:
            return
        seen.add(id(layer))
        found.append(layer)
        for value in vars(layer).values():
            for item in _items(value):
                if isinstance(item, Layer):
                    visit(item)

    for layer in layers:
        visit(layer)
    return found


class _Memo(dict):
    """``copy.deepcopy``'s memo, recording the entries each copy adds, so that a copy that
    fails can take its half-made entries out again (without copying the whole memo first)."""

    def __init__(self):
        super().__init__()
        self.added = []

    def __setitem__(self, key, value):
        self.added.append(key)
        super().__setitem__(key, value)


def _copied(value, memo):
    """A deep copy of ``value`` made with ``memo``; ``value`` itself where it cannot be copied
    (a lock, an open file, a generator: what the shards can only share, as one thread does)."""
    start = len(memo.added)
    try:
        return copy.deepcopy(value, memo)
    except (TypeError, copy.Error):  # "cannot pickle '_thread.lock' object"; other errors are bugs
        # The entry under the memo's own id keeps alive what earlier copies made: it stays.
        for key in set(memo.added[start:]) - {id(memo)}:
            memo.pop(key, None)
        del memo.added[start:]
        memo[id(value)] = value
        return value


def _memo_for(layers, pairs=()):
    """A memo that maps every parameter array of ``layers`` to itself (the replicas share them)
    and each of ``pairs``' layers to its replica."""
    memo = _Memo()
    for layer, twin in pairs:
        memo[id(layer)] = twin
    for layer in layers:
        for value in layer.params.values():
            memo[id(value)] = value
    return memo


def replicate(layers):
    """Copies of ``layers`` that share their parameter arrays; returns (copies, [(layer, copy), ...]).

    A deep copy whose memo maps every parameter array to itself and every cache to a new
    empty dict: everything else, children of composite layers and the views that tie them
    together included, is copied once here. The gradients are copied too: a layer's
    ``backward`` may write into the array ``grads`` holds (``grads["weight"][...] = ...``)
    instead of binding a new one, and two shards writing into one array would leave
    the last one's gradient twice in the sum.
    """
    originals = sublayers(layers)
    memo = _memo_for(layers)
    for layer in originals:
        memo[id(layer.cache)] = {}
    for layer in originals:  # each setting first, so that one that cannot be copied is shared
        for name, value in vars(layer).items():
            if _is_setting(name, value):
                _copied(value, memo)
    copies = copy.deepcopy(list(layers), memo)
    return copies, [(layer, memo[id(layer)]) for layer in originals]


class Replica:
    """The layers one shard after the first runs on (see the module docstring)."""

    def __init__(self, layers):
        self.layers, self.pairs = replicate(layers)
        self.seen = []  # per pair: what the net's layer's settings held at the last look
        self.note()

    def refresh(self, layers):
        """Take over the net's current parameters, buffers, modes, counters and settings."""
        memo = None
        for (layer, twin), seen in zip(self.pairs, self.seen):
            for name, value in vars(layer).items():
                if _is_plain(value):
                    twin.__dict__[name] = value
                elif seen.get(name, _never_copied)() is not value and _is_setting(name, value):
                    memo = memo if memo is not None else _memo_for(layers, self.pairs)
                    twin.__dict__[name] = _copied(value, memo)
                    seen[name] = _reference(value)
        # The top-level stores reach every child's too (a composite's are views of them).
        for layer, twin in zip(layers, self.layers):
            for key, value in layer.params.items():
                if twin.params[key] is not value:  # rebound by .to() or load_state_dict
                    twin.params[key] = value
            for key, value in layer.buffers.items():
                twin.buffers[key] = value.copy()
            for key, value in layer.grads.items():  # its own arrays (see replicate), of today's kind
                mine = twin.grads.get(key)
                if mine is None or mine.shape != value.shape or mine.dtype != value.dtype \
                        or type(mine) is not type(value):  # the net moved: .to(backend, dtype)
                    twin.grads[key] = value.copy()

    def note(self):
        """Record what the net's layers' settings hold now, after a pass (sharded or not): what a
        layer assigned itself in it, each shard assigns its own, so the next :meth:`refresh`
        copies only what changes between steps (else a copy of an activation per layer and step).
        Made anew each time, so that an attribute the layer deleted is no longer held here."""
        self.seen = [{name: _reference(value) for name, value in vars(layer).items() if _is_setting(name, value)}
                     for layer, _ in self.pairs]

    def __getstate__(self):
        """For pickle and deepcopy: the record is not kept (weak references do not pickle), so
        the copy's first step takes over every setting anew."""
        state = dict(vars(self))
        state["seen"] = [{} for _ in self.pairs]
        return state

    def release(self):
        """Drop the cached activations (when the net runs single-threaded for a while)."""
        for _, twin in self.pairs:
            twin.cache.clear()
