"""Layers made of layers: :class:`Sequential` (one after another) and :class:`Residual`
(``y = body(x) + shortcut(x)``, the skip connection of ResNets).

How nesting fits everything that walks layers
---------------------------------------------
From the outside a composite layer is a layer like any other: ``params``, ``grads``
and ``buffers`` are dicts keyed by name. It holds no arrays of its own, though:
each of the three is a live view of its children's dicts under dotted names
(:class:`ChildStores`): ``"body.0.weight"`` is child ``body``, its child ``0``,
key ``weight``. Reading goes to the child's dict at that moment, and so does
writing. That one decision makes the code that walks a net's layers work on
nested layers unchanged, and leaves the flat case exactly as it was:

- ``Net.named_parameters`` yields ``"3.body.0.weight"``: the net's index, then the
  path inside. The name depends on the structure only, never on the arrays, so it
  survives device moves; optimizers key their state by it, checkpoints store it.
- Optimizers update ``param`` in place: the child's own array.
- ``DataParallel`` replaces ``layer.grads[key]`` by a view of its flat buffer: the
  assignment lands in the child's ``grads`` dict, exactly where the child's next
  backward pass rebinds it to a fresh array, as for a flat layer.
- ``Net.load_state_dict`` assigns ``layer.params[key]``: again the child's dict.

What a composite does itself: :meth:`~Composite.to` and :meth:`~Composite.train`
go down to every child, ``input_grad`` (turned off by ``Net.backward`` for its
first layer) goes to the children that see the composite's input, and
``get_config`` nests the children's class names and configs, from which
:meth:`~Composite.from_config` (and :mod:`nnfs.checkpoint`) rebuild the tree.
"""

import contextlib
from collections.abc import MutableMapping

from nnfs.backend import backend_of, default_backend, get_array_module, get_backend
from nnfs.checks import ArgumentTypeError
from nnfs.layers.base import OUTPUT_RECORD, Layer, backward_through, check_dtype, check_gradient
from nnfs.layers.batchnorm import BatchNorm2D
from nnfs.layers.conv import Conv2D


class ChildStores(MutableMapping):
    """One of ``params``, ``grads``, ``buffers`` of a composite: its children's, under dotted names.

    Args:
        children: ``{child name: layer}`` of the composite, in order.
        kind: ``"params"``, ``"grads"`` or ``"buffers"``.

    Keys are ``"<child name>.<the child's key>"``. Only existing entries can be
    replaced; a composite has no entries of its own to add or delete.
    """

    __slots__ = ("_children", "_kind")

    def __init__(self, children, kind):
        self._children = children
        self._kind = kind

    def _store(self, key):
        """The child's dict that holds ``key``, and the key inside it."""
        name, dot, rest = str(key).partition(".")
        child = self._children.get(name) if dot else None
        if child is None:
            raise KeyError(key)
        return getattr(child, self._kind), rest

    def __getitem__(self, key):
        store, rest = self._store(key)
        return store[rest]

    def __setitem__(self, key, value):
        store, rest = self._store(key)
        if rest not in store:
            raise KeyError(f"{key!r}: a composite layer can replace its children's "
                           f"{self._kind}, not add new ones")
        store[rest] = value

    def __delitem__(self, key):
        raise TypeError(f"a composite layer's {self._kind} cannot be deleted ({key!r})")

    def __iter__(self):
        for name, child in self._children.items():
            for key in getattr(child, self._kind):
                yield f"{name}.{key}"

    def __len__(self):
        return sum(len(getattr(child, self._kind)) for child in self._children.values())

    def items(self):
        """``[(dotted name, array), ...]`` in one walk (no lookup per key)."""
        return [(f"{name}.{key}", value) for name, child in self._children.items()
                for key, value in getattr(child, self._kind).items()]

    def values(self):
        return [value for _, value in self.items()]

    def __repr__(self):
        return f"ChildStores({self._kind}: {list(self)})"


def layer_record(layer):
    """``{"class": class name, "config": get_config()}``: how a child appears in a config."""
    return {"class": type(layer).__name__, "config": layer.get_config()}


class Composite(Layer):
    """The base of layers made of other layers (the children), each a :class:`Layer`.

    Subclasses define :meth:`forward`, :meth:`backward`, the ``input_grad`` setter
    (which children see the composite's input), :meth:`child_inputs`,
    :meth:`get_config` and :meth:`from_config`.

    Args:
        children: ``{name: layer}``; names must not contain dots. The structure is fixed
            once built: names, and so parameter names, never change. Subclasses check
            their arguments with :func:`require_layer` first.

    Raises:
        ValueError: when one layer appears twice in the tree (weights are not shared).
    """

    def __init__(self, children):
        super().__init__()
        self._children = dict(children)
        self._check_no_repeats()
        self.params = ChildStores(self._children, "params")
        self.grads = ChildStores(self._children, "grads")
        self.buffers = ChildStores(self._children, "buffers")
        self._input_grad = True

    # -- the layer ---------------------------------------------------------------------------
    def check_input(self, X):
        """An array in the children's dtype; each child checks the rest (rank, sizes) itself."""
        super().check_input(X)
        if self.params:
            check_dtype(self, X)

    def __call__(self, X):
        self.check_input(X)
        self.cache.pop(OUTPUT_RECORD, None)  # as Layer.__call__ does
        # Remembered so that a backward pass before any forward pass is named after this layer.
        self.cache["input_shape"] = X.shape
        return self.forward(X)

    def _check_no_repeats(self):
        repeat = first_repeat(self.named_layers())
        if repeat is not None:
            layer, first, second = repeat
            raise ValueError(f"{type(self).__name__}: the same {type(layer).__name__} appears twice "
                             f"(at {first} and {second}); build a separate layer for each place")

    # -- the tree -------------------------------------------------------------------------
    def children(self):
        """``{name: layer}`` of the direct children, in order (a copy)."""
        return dict(self._children)

    def named_layers(self, prefix=""):
        """Yield ``(dotted path, layer)`` for every layer below this one, depth first."""
        for name, child in self._children.items():
            path = f"{prefix}{name}"
            yield path, child
            if isinstance(child, Composite):
                yield from child.named_layers(path + ".")

    # -- modes and devices ------------------------------------------------------------------
    def train(self, mode=True):
        super().train(mode)
        for child in self._children.values():
            child.train(mode)
        return self

    def to(self, backend=None, dtype=None):
        """Move every child (parameters, gradients, buffers) to one backend and/or dtype."""
        target = get_backend(backend) if backend is not None else self.backend or default_backend()
        for child in self._children.values():
            child.to(target, dtype)
        self.cache = {}
        return self

    @property
    def input_grad(self):
        """When False, the children that read this layer's input skip its gradient (see
        :class:`Layer`) and :meth:`backward` returns None."""
        return self._input_grad

    @input_grad.setter
    def input_grad(self, value):
        self._input_grad = bool(value)
        for child in self.input_children():
            child.input_grad = self._input_grad

    def input_children(self):
        """The children whose input is this layer's input."""
        raise NotImplementedError

    # -- inspection --------------------------------------------------------------------------
    def child_inputs(self, X):
        """``{child name: the input that child gets}`` in a forward pass on ``X``."""
        raise NotImplementedError

    def local_grad(self, X):
        """Every child's :meth:`~Layer.local_grad` at the input it sees, keyed ``"<child>.<key>"``.

        The forward pass that finds the children's inputs leaves no trace: caches,
        running statistics and other state (Dropout's mask counter) are put back, so a
        pending backward pass still works and training is unaffected.
        """
        grads = {}
        with preserved_state(self):
            for name, child_input in self.child_inputs(X).items():
                for key, value in self._children[name].local_grad(child_input).items():
                    grads[f"{name}.{key}"] = value
        return grads

    # -- configs -------------------------------------------------------------------------------
    @classmethod
    def child_records(cls, config):
        """``{child name: {"class", "config"} record}`` in a :meth:`get_config` output, read
        without building anything (checkpoint loading checks the children first).

        Raises:
            TypeError, ValueError: for a config of the wrong form.
        """
        raise NotImplementedError

    @classmethod
    def from_config(cls, config, build=None):
        """Rebuild from :meth:`get_config` output: each child from its record, then the composite.

        Args:
            config: the nested config; each child is a ``{"class", "config"}`` record.
            build: ``build(record, child name) -> layer``; :mod:`nnfs.checkpoint` passes one
                that knows the classes nnfs exports and your ``custom_layers``
                (:func:`nnfs.checkpoint.build_layer` does the same outside a checkpoint).
        """
        if build is None:
            raise TypeError(f"{cls.__name__}.from_config needs build=, a function that turns a "
                            "{'class', 'config'} record into a layer (e.g. nnfs.checkpoint.build_layer)")
        return cls.from_children({name: build(record, name) for name, record in cls.child_records(config).items()})

    @classmethod
    def from_children(cls, children):
        """The composite again from its built children, by name (the inverse of :meth:`children`)."""
        raise NotImplementedError


def _check_keys(owner, config, required, optional=()):
    if not isinstance(config, dict):
        raise TypeError(f"{owner}: the config must be a dict, got {type(config).__name__}")
    missing = sorted(set(required) - set(config))
    unexpected = sorted(set(config) - set(required) - set(optional))
    if missing or unexpected:
        raise TypeError(f"{owner}: config keys {sorted(config)}; expected {sorted(required)}"
                        + (f" and optionally {sorted(optional)}" if optional else ""))


@contextlib.contextmanager
def preserved_state(root):
    """Run a block on ``root``'s layers and put back their state (caches, buffers, counters).

    Each layer's attributes are restored as they were, with fresh caches during the
    block (so scratch buffers a pending backward pass still needs are not refilled),
    and buffers are copied back in place.
    """
    layers = [root] + [layer for _, layer in root.named_layers()]
    saved = []
    for layer in layers:
        attributes = dict(vars(layer))
        buffers = {} if isinstance(layer, Composite) else {k: v.copy() for k, v in layer.buffers.items()}
        saved.append((layer, attributes, buffers))
        layer.cache = {}
    try:
        yield
    finally:
        for layer, attributes, buffers in saved:
            vars(layer).clear()
            vars(layer).update(attributes)
            for key, value in buffers.items():
                layer.buffers[key][...] = value


class Sequential(Composite):
    """Layers applied one after another, as one layer (PyTorch's ``nn.Sequential``).

    Its parameters are named ``"<index>.<key>"`` (``"0.weight"``), and nested
    composites continue the path (``"1.body.0.weight"``).

    Args:
        *layers: the layers in order (or one list of them); at least one.

    Shape:
        - Input: what the first layer takes
        - Output: what the last layer gives

    Attributes:
        layers: the layers, a tuple.
    """

    def __init__(self, *layers):
        if len(layers) == 1 and isinstance(layers[0], (list, tuple)):
            layers = tuple(layers[0])
        if not layers:
            raise ValueError("Sequential: needs at least one layer")
        for index, layer in enumerate(layers):
            require_layer("Sequential", "layers", layer, f" at position {index}")
        super().__init__({str(index): layer for index, layer in enumerate(layers)})
        self.layers = tuple(layers)

    def forward(self, X):
        for layer in self.layers:
            X = layer(X)
        return X

    def backward(self, dY):
        self.from_cache("input_shape")  # a clear error when no forward came first
        # With input_grad off, the first layer may return None: so does the Sequential.
        return backward_through(self.layers, dY)

    def input_children(self):
        return self.layers[:1]

    def child_inputs(self, X):
        inputs = {}
        for name, layer in self._children.items():
            inputs[name] = X
            X = layer(X)
        return inputs

    def __len__(self):
        return len(self.layers)

    def __getitem__(self, index):
        return self.layers[index]

    def get_config(self):
        return {"layers": [layer_record(layer) for layer in self.layers]}

    @classmethod
    def child_records(cls, config):
        _check_keys("Sequential", config, ("layers",))
        layers = config["layers"]
        if not isinstance(layers, list) or not layers:
            raise ValueError(f"Sequential: layers must be a non-empty list of records, got {type(layers).__name__}")
        return {str(index): record for index, record in enumerate(layers)}

    @classmethod
    def from_children(cls, children):
        return cls(*children.values())

    def __repr__(self):
        inner = ", ".join(repr(layer) for layer in self.layers)
        return f"Sequential({inner})"


class Residual(Composite):
    """A skip connection: ``Y = body(X) + shortcut(X)``, the block ResNets are made of.

    The shortcut is the identity (``shortcut=None``: the body must keep the shape) or
    a layer that brings ``X`` to the body's output shape, typically
    :func:`projection` (a 1x1 convolution with the body's stride, then BatchNorm,
    as in ResNet). In the backward pass the upstream gradient goes to both paths and
    their input gradients add up. Any activation after the sum (ResNet's ReLU) is the
    next layer, not part of the block.

    Args:
        body: the residual function f, any layer (usually a :class:`Sequential`).
        shortcut: a layer, or None for the identity.

    Shape:
        - Input: ``(N, ...)`` as ``body`` takes
        - Output: the body's output shape, which the shortcut's must equal

    Attributes:
        body, shortcut: the two paths (``shortcut`` is None for the identity); parameters
            are named ``"body.<key>"`` and ``"shortcut.<key>"``.
    """

    def __init__(self, body, shortcut=None):
        require_layer("Residual", "body", body)
        if shortcut is not None:
            require_layer("Residual", "shortcut", shortcut)
        children = {"body": body}
        if shortcut is not None:
            children["shortcut"] = shortcut
        super().__init__(children)
        self.body = body
        self.shortcut = shortcut

    def forward(self, X):
        Y = self.body(X)
        S = X if self.shortcut is None else self.shortcut(X)
        if Y.shape != S.shape:
            kind = "the input (identity shortcut)" if self.shortcut is None else "the shortcut's output"
            raise ValueError(
                f"Residual: the body gives shape {tuple(Y.shape)} but {kind} has shape "
                f"{tuple(S.shape)}; use a shortcut that matches, e.g. "
                "projection(in_channels, out_channels, stride)")
        # A new array, not Y += S: Y may be what the body's last layer cached for its backward.
        return Y + S

    def backward(self, dY):
        shape = self.from_cache("input_shape")  # a clear error when no forward came first
        dX = self.body.backward(dY)
        dS = dY if self.shortcut is None else self.shortcut.backward(dY)
        if not self._input_grad:
            return None
        # dX + dS would broadcast a wrongly shaped gradient of a layer of one's own silently.
        for part, grad in (("body", dX), ("shortcut", dS)):
            check_gradient(f"Residual: the {part}'s backward ({type(getattr(self, part)).__name__})", grad,
                           tuple(shape), dY.dtype, backend_of(dY), what="the gradient it returned",
                           against="the Residual's input was")
        return dX + dS

    def input_children(self):
        return list(self._children.values())

    def child_inputs(self, X):
        return {name: X for name in self._children}

    def local_grad(self, X):
        """The body's and shortcut's local derivatives (``"body.<key>"``, ``"shortcut.<key>"``);
        an identity shortcut adds ``"shortcut.X"``, ones: its dY/dX."""
        grads = super().local_grad(X)
        if self.shortcut is None:
            grads["shortcut.X"] = get_array_module(X).ones_like(X)
        return grads

    def get_config(self):
        return {"body": layer_record(self.body),
                "shortcut": None if self.shortcut is None else layer_record(self.shortcut)}

    @classmethod
    def child_records(cls, config):
        _check_keys("Residual", config, ("body",), ("shortcut",))
        records = {"body": config["body"]}
        if config.get("shortcut") is not None:
            records["shortcut"] = config["shortcut"]
        return records

    @classmethod
    def from_children(cls, children):
        return cls(children["body"], children.get("shortcut"))

    def __repr__(self):
        return f"Residual(body={self.body!r}, shortcut={self.shortcut!r})"


def layer_tree(layers):
    """``(path, layer)`` for every layer of ``layers`` and every layer inside them (composite
    layers' children, by :meth:`Composite.named_layers`), depth first: ``"3"``,
    ``"3.body.0"``, ..."""
    for index, layer in enumerate(layers):
        yield f"{index}", layer
        for path, child in getattr(layer, "named_layers", tuple)():
            yield f"{index}.{path}", child


def first_repeat(tree):
    """The first layer met twice among ``(path, layer)`` pairs, as ``(layer, first path, second
    path)``, or None. One object in two places would share its cache (backward would use the
    second place's input for both) and be updated twice per step: no weight sharing here."""
    seen = {}
    for path, layer in tree:
        if id(layer) in seen:
            return layer, seen[id(layer)], path
        seen[id(layer)] = path
    return None


def require_layer(owner, argument, value, where=""):
    """``value`` if it is an nnfs layer, else an ArgumentTypeError naming ``owner`` and ``argument``."""
    if not isinstance(value, Layer):
        raise ArgumentTypeError(f"{owner}: {argument} must be nnfs layers, got {value!r}{where}"
                                if argument == "layers" else
                                f"{owner}: {argument} must be an nnfs layer, got {value!r}")
    return value


def projection(in_channels, out_channels, stride=1, batchnorm=True, dtype=None):
    """The shortcut of a ResNet block that changes the shape: a 1x1 convolution with
    ``stride`` (``Conv2D(in, out, 1, stride)``), followed by ``BatchNorm2D(out)`` unless
    ``batchnorm=False``. Returns a :class:`Sequential` (or the bare ``Conv2D``)."""
    conv = Conv2D(in_channels, out_channels, 1, stride=stride, dtype=dtype)
    return Sequential(conv, BatchNorm2D(out_channels, dtype=dtype)) if batchnorm else conv


__all__ = ["ChildStores", "Composite", "Sequential", "Residual", "projection", "require_layer", "layer_record",
           "layer_tree", "first_repeat", "preserved_state"]
