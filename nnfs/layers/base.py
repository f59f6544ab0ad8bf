"""The base every layer, activation and loss builds on."""

import functools
import threading

from nnfs.backend import as_dtype, backend_of, default_backend, get_backend
from nnfs.checks import boolean
from nnfs.text import short_repr


class Layer:
    """A differentiable function with optional parameters.

    Calling a layer checks its input and runs :meth:`forward`, which caches
    what :meth:`backward` needs. ``backward(dY)`` stores the parameter
    gradients in ``grads`` (overwriting the previous ones) and returns the
    gradient for the input; it first checks that ``dY`` has the shape and dtype of
    the output of the last forward pass, and afterwards that every gradient it stored
    has its parameter's shape and dtype (every subclass gets those checks: see
    ``__init_subclass__``).

    Attributes:
        params: parameter arrays by name (``"weight"``, ``"bias"``), PyTorch layouts.
        grads: gradients of the last backward pass, same keys as ``params``.
        buffers: state that is saved and moved but not trained (BatchNorm's running statistics).
        training: True in training mode (the default), False after :meth:`eval`.
        input_grad: when False, layers that can skip it (``Conv2D``, ``Linear``) return None
            from ``backward`` instead of the input gradient. ``Net.backward`` turns it off
            for its first layer, whose input (the data) needs no gradient: for a first
            ``Conv2D`` that saves the col2im of the whole batch.
    """

    input_grad = True

    def __init_subclass__(cls, **kwargs):
        # The upstream gradient must have the shape and dtype of the output it belongs to:
        # ``dY * mask`` would broadcast a wrongly shaped one without a word (a (N,) gradient
        # for a (N, 1) output gives (N, N)), and a float64 one would turn a float32 layer's
        # gradients into float64. So every forward a layer class defines records what it
        # returned, and every backward checks its gradient against that record first: one
        # check for all layers, the user's own included (PyTorch's autograd engine checks
        # the same, between the functions it chains).
        super().__init_subclass__(**kwargs)
        # The methods the class ends up with (its own, or a mixin's before a layer's in the
        # method order), each wrapped once (a method decorated with functools.wraps is not
        # taken for a wrapper: they are known by their code, which wraps does not copy).
        if getattr(cls.forward, "__code__", None) is not _RECORDING_CODE:
            cls.forward = _recording_output(cls.forward)
        if getattr(cls.backward, "__code__", None) is not _CHECKING_CODE:
            cls.backward = _checking_gradient(cls.backward)
        # local_grad(X) takes what calling the layer takes, checked the same way: unchecked,
        # Linear's gave values for another feature count without a word, BatchNorm's failed
        # inside NumPy on a broadcast, Tanh's of bools came out float16.
        if getattr(cls.local_grad, "__code__", None) is not _INPUT_CHECKING_CODE:
            cls.local_grad = _checking_input(cls.local_grad)

    def __init__(self):
        self.params = {}
        self.grads = {}
        self.buffers = {}
        self.cache = {}
        self.training = True

    # -- the forward/backward contract ------------------------------------------------
    def __call__(self, X):
        check_set_up(self)
        self.check_input(X)
        self.cache.pop(OUTPUT_RECORD, None)  # a forward that records nothing leaves no stale record
        return self.forward(X)

    def forward(self, X):
        """Compute the output for ``X`` and cache what ``backward`` needs."""
        # A message, not a bare NotImplementedError: it names the class of one's own that lacks it.
        raise NotImplementedError(f"{type(self).__name__} defines no forward(X): a layer of one's own "
                                  "needs forward(X) and backward(dY)")

    def backward(self, dY):
        """Given dLoss/dOutput, store parameter gradients and return dLoss/dInput."""
        raise NotImplementedError(f"{type(self).__name__} defines no backward(dY): a layer of one's own "
                                  "needs forward(X) and backward(dY)")

    def local_grad(self, X):
        """The layer's local derivatives at ``X`` as a dict (for inspection and teaching).

        Each entry is the piece that :meth:`backward` combines with the upstream
        gradient; training never needs to call this. ``X`` is checked as calling the
        layer checks it (:meth:`check_input`), in every subclass.
        """
        raise NotImplementedError(f"{type(self).__name__} defines no local_grad(X) (for inspection only: "
                                  "training never calls it)")

    def check_input(self, X):
        """Raise a clear error for an input this layer cannot take (overridden per layer)."""
        _check_is_array(self, X)

    def from_cache(self, *names):
        """The cached forward values, or a clear error when backward comes before forward."""
        return cached(self, names, "a forward pass; call the layer (or the net) on a batch first")

    # -- modes, devices, dtypes ---------------------------------------------------------
    def train(self, mode=True):
        """Training mode (``mode`` True, the default) or eval mode (False); returns the layer."""
        # A bool only: train("eval") or train(0.0) meant something else than bool() makes of it.
        self.training = boolean(f"{type(self).__name__}.train", "mode", mode)
        return self

    def eval(self):
        return self.train(False)

    @property
    def dtype(self):
        """The dtype of the parameters, or None for a layer without any."""
        for value in self.params.values():
            return value.dtype
        return None

    @dtype.setter
    def dtype(self, value):
        # ``self.dtype = dtype`` in an __init__ of one's own failed with "property 'dtype' of
        # 'Scale' object has no setter", which says neither what it is nor what to do instead.
        raise AttributeError(f"{type(self).__name__}.dtype is the dtype of its parameters, which cannot be set: "
                             "give the dtype to self.init_params(dtype, ...), or keep it under another name")

    @property
    def backend(self):
        """The backend holding the parameters, or None for a layer without any."""
        for value in self.params.values():
            return backend_of(value)
        return None

    @backend.setter
    def backend(self, value):
        raise AttributeError(f"{type(self).__name__}.backend is the backend holding its parameters, which cannot "
                             "be set: move the layer with .to(backend), or keep the name under another attribute")

    def to(self, backend=None, dtype=None):
        """Move parameters, gradients and buffers to ``backend`` and/or cast them to ``dtype``.

        Returns the layer itself, as PyTorch's ``Module.to`` does.
        """
        target = get_backend(backend) if backend is not None else self.backend or default_backend()
        new_dtype = as_dtype(dtype) if dtype is not None else None
        for store in (self.params, self.grads, self.buffers):
            for name, value in store.items():
                store[name] = target.asarray(value, dtype=new_dtype or value.dtype)
        self.cache = {}
        return self

    def init_params(self, dtype=None, **host_arrays):
        """Register parameters drawn on the host (float64 NumPy) on the default backend.

        Drawing on the host with one seeded generator makes the same seed give the
        same model on every device; only the final cast happens per dtype.
        """
        dtype = as_dtype(dtype)
        target = default_backend()
        for name, value in host_arrays.items():
            self.params[name] = target.asarray(value, dtype=dtype)
            self.grads[name] = target.xp.zeros_like(self.params[name])

    # -- random streams ------------------------------------------------------------------
    def rng_state(self):
        """Where the layer's random stream stands, as a JSON-able dict of ints; None for a
        layer that draws nothing (the default; Dropout has one).

        It is training state, not part of the model: it decides which elements the next
        training steps drop, never what the layer computes in eval mode, so
        ``state_dict()`` leaves it out and a checkpoint records it with the optimizer
        (see ``docs/checkpoints.md``).
        """
        return None

    def load_rng_state(self, state):
        """Put the random stream back where :meth:`rng_state` said it stood.

        Raises:
            ValueError: for a state of the wrong form (naming the layer and the value), or
                for a layer without a random stream.
        """
        raise ValueError(f"{type(self).__name__} has no random stream to load, got {short_repr(state)}")

    def draws(self):
        """True when a forward pass now draws from the layer's random stream; False here."""
        return False

    def skip_batch(self):
        """Move on as a training forward pass over an empty batch would, without running one.

        A data-parallel rank whose shard of the global batch is empty calls it (through
        :meth:`~nnfs.net.Net.skip_batch`), so that its random streams stay in step with
        the other ranks'. Nothing to do for a layer without a random stream.
        """

    def get_config(self):
        """The constructor arguments, enough to rebuild the layer (used by checkpoints)."""
        return {}

    @classmethod
    def from_config(cls, config, build=None):
        """The layer again from :meth:`get_config` output: ``cls(**config)``.

        ``build`` turns nested ``{"class", "config"}`` records into layers; only layers
        made of layers (:mod:`nnfs.layers.composite`) have such records and use it.
        """
        return cls(**config)

    @classmethod
    def array_shapes(cls, *args, **config):
        """The shape of every array (parameter or buffer) that ``cls(*args, **config)`` would
        hold, by name, worked out without building the layer.

        Checkpoint loading compares these with the arrays a file stores and refuses a file
        whose layer configs would allocate more than it holds (``Linear(10**9, 10**9)`` in a
        1 KB file) before building any layer. A layer with parameters defines it, checking
        its size arguments as its constructor does (the constructor uses it, so the shapes
        are decided in one place); the default, None, means "not known": layers without
        parameters, and your own layers, which are then trusted to hold what the file holds.
        """
        return None

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


def check_set_up(part, owner=None, kind="layer", names=("params", "cache")):
    """Raise a TypeError when ``part``'s ``__init__`` skipped ``super().__init__()``: without
    the attributes it makes (``names``), the first use failed with "object has no attribute
    'cache'", naming neither the cause nor the fix. ``owner`` starts the message."""
    if not all(hasattr(part, name) for name in names):
        raise TypeError(f"{owner + ': ' if owner else ''}{type(part).__name__} was never set up as an nnfs {kind}: "
                        "its __init__ must call super().__init__() first")


def cached(owner, names, before):
    """``owner.cache[name]`` for each name (the value itself for one name), or a
    RuntimeError saying that ``owner.backward`` was called before ``before``."""
    try:
        values = tuple(owner.cache[name] for name in names)
    except KeyError:
        raise RuntimeError(f"{type(owner).__name__}.backward called before {before}") from None
    return values[0] if len(values) == 1 else values


#: The cache key under which a forward pass records the shape and dtype of its output.
OUTPUT_RECORD = "output_like"


# How deep each layer is in its own forward and backward calls, per thread (a layer called
# from two threads at once must not mix up the two counts), only while it is in one.
_calls = threading.local()


def _enter(layer, kind):
    try:
        depths = getattr(_calls, kind)
    except AttributeError:  # this thread's first call
        depths = {}
        setattr(_calls, kind, depths)
    depth = depths.get(id(layer), 0)
    depths[id(layer)] = depth + 1
    return depth


def _leave(layer, kind, depth):
    depths = getattr(_calls, kind)
    if depth:
        depths[id(layer)] = depth
    else:
        del depths[id(layer)]


def _recording_output(forward):
    @functools.wraps(forward)
    def forward_and_record(self, X, *args, **kwargs):
        # Only the outermost forward of a call records (a subclass whose forward calls
        # super().forward() and reshapes the result returns what the record must say).
        depth = _enter(self, "forward")
        try:
            Y = forward(self, X, *args, **kwargs)
        finally:
            _leave(self, "forward", depth)
        if depth == 0:
            if not hasattr(Y, "shape") or not hasattr(Y, "dtype"):
                # Named here: the next layer would report an input that is not an array, and
                # name itself (a forward that forgot its return gave None).
                raise TypeError(f"{type(self).__name__}.forward: returned {type(Y).__name__}, not an "
                                "array: a layer's forward returns its output")
            given = getattr(X, "dtype", None)
            if Y.dtype != given and getattr(given, "name", None) in ("float32", "float64"):
                # Named here: the next layer would refuse its input's dtype, naming itself and
                # telling to cast that input, and a last layer gave a float32 net float64 outputs.
                raise TypeError(f"{type(self).__name__}.forward: returned {Y.dtype} for a {given} input: a layer "
                                f"keeps its input's dtype (a NumPy float64 scalar promotes a float32 array; "
                                f"use a Python number, or cast with .astype(X.dtype))")
            self.cache[OUTPUT_RECORD] = (tuple(Y.shape), Y.dtype, backend_of(Y))
        return Y
    return forward_and_record


def _checking_gradient(backward):
    @functools.wraps(backward)
    def check_and_backward(self, dY, *args, **kwargs):
        # Likewise only the outermost backward checks: the gradient a subclass hands on to
        # super().backward() is for the parent's output, which no record holds.
        depth = _enter(self, "backward")
        producer, _calls.producer = getattr(_calls, "producer", None), None  # see backward_through
        try:
            if depth == 0:
                expected = self.cache.get(OUTPUT_RECORD)
                if expected is None:
                    pass  # backward itself says that no forward pass came first
                elif producer is None:
                    check_gradient(self, dY, *expected)
                else:
                    check_gradient(f"{type(producer).__name__}.backward", dY, *expected,
                                   what=f"the gradient it returned for {type(self).__name__}")
            dX = backward(self, dY, *args, **kwargs)
            if depth == 0:
                check_parameter_grads(self)
            return dX
        finally:
            _leave(self, "backward", depth)
    return check_and_backward


def _checking_input(local_grad):
    @functools.wraps(local_grad)
    def check_and_local_grad(self, X, *args, **kwargs):
        # Only the outermost call checks (Residual's calls its parent's with the same X).
        depth = _enter(self, "local_grad")
        try:
            if depth == 0:
                self.check_input(X)
            return local_grad(self, X, *args, **kwargs)
        finally:
            _leave(self, "local_grad", depth)
    return check_and_local_grad


_RECORDING_CODE = _recording_output(None).__code__
_CHECKING_CODE = _checking_gradient(None).__code__
_INPUT_CHECKING_CODE = _checking_input(None).__code__


def forward_through(layers, X):
    """``X`` forward through ``layers``, the first first; returns what the last returns.

    A ``ValueError`` or ``TypeError`` of a layer says where the layer stands and what the
    net was given, at the end of its own message: "Linear: expected 1568 input features,
    got shape (4, 2048)" alone does not tell that the images are 32x32 where the net was
    made for 28x28. The error itself is raised (its type, traceback and attributes), with
    that text added to its message.
    """
    batch = X  # what the net was given: its shape goes into a message only
    for index, layer in enumerate(layers):
        try:
            X = layer(X)
        except (ValueError, TypeError) as error:
            if len(layers) > 1 and error.args and isinstance(error.args[0], str) \
                    and not getattr(error, "_nnfs_placed", False):
                shape = getattr(batch, "shape", None)
                given = f"; the net was given a batch of shape {tuple(shape)}" if shape is not None and index else ""
                try:
                    error._nnfs_placed = True  # once, however many nets it passes through
                except AttributeError:  # an exception class of one's own with __slots__: left as it is
                    pass
                else:
                    error.args = (f"{error.args[0]} (layer {index} of the net{given})",) + error.args[1:]
            raise
    return X


def backward_through(layers, dY):
    """``dY`` backward through ``layers``, the last first; returns what the first returns.

    Each gradient is checked as it passes from a layer to the one before it and named
    after the layer that returned it: a layer of one's own whose backward returns the
    wrong shape is the one the message names, not the layer that receives it.
    """
    producer = None
    for layer in reversed(layers):
        # Each layer's backward checks its gradient once (its wrapper); told here who returned
        # that gradient, it names that layer rather than itself.
        _calls.producer = producer
        try:
            dY = layer.backward(dY)
        finally:
            _calls.producer = None  # read by that wrapper, or by none (a method replaced on the layer)
        producer = layer
    return dY


def check_parameter_grads(layer):
    """Raise a clear error naming the layer when one of its ``grads`` is not an array of its
    parameter's shape, dtype and backend.

    Checked as its backward pass returns, where the layer is known: a gradient of the
    wrong shape failed in ``param -= lr * grad`` (update_weights, every optimizer) as NumPy's
    "non-broadcastable output operand", naming no layer; one that broadcasts, or one in
    float64 for a float32 parameter, went through without a word.
    """
    grads = layer.grads
    for key, param in layer.params.items():
        grad = grads.get(key)
        if grad is None:  # none at all: Net.named_parameters names it, a net that only predicts needs none
            continue
        if type(grad) is type(param) and grad.shape == param.shape and grad.dtype == param.dtype:
            continue  # the common case, decided without a backend lookup
        check_gradient(f"{type(layer).__name__}.backward", grad, tuple(param.shape), param.dtype,
                       backend_of(param), what=f"grads[{key!r}]", against=f"params[{key!r}] is an array")


def check_gradient(owner, dY, shape, dtype, backend=None, what="the gradient",
                   against="the last forward pass gave an output"):
    """Raise a clear error when ``dY`` is not an array of ``shape`` and ``dtype`` (on
    ``backend``, where given).

    ``owner`` is the layer (or loss) the message names, ``what`` how it calls ``dY``, and
    ``against`` what ``shape`` and ``dtype`` are those of.
    """
    name = owner if isinstance(owner, str) else f"{type(owner).__name__}.backward"
    if not hasattr(dY, "shape") or not hasattr(dY, "dtype"):
        raise TypeError(f"{name}: expected {what} as an array of shape {shape}, got {type(dY).__name__}")
    if tuple(dY.shape) != shape:
        raise ValueError(f"{name}: {what} has shape {tuple(dY.shape)}, but {against} of shape {shape}: "
                         "a gradient has the shape of what it is the gradient of")
    if dY.dtype != dtype:
        raise TypeError(f"{name}: {what} is {dY.dtype}, but {against} of dtype {dtype}: cast it with "
                        f".astype({str(dtype)!r})")
    if backend is not None and backend_of(dY) is not backend:  # a type test and a dict lookup
        raise TypeError(f"{name}: {what} is on the {backend_of(dY).name} backend, but {against} on "
                        f"{backend.name}: move it with get_backend({backend.name!r}).asarray(dY)")


def _check_is_array(layer, X):
    if not hasattr(X, "shape") or not hasattr(X, "dtype"):
        raise TypeError(
            f"{type(layer).__name__}: expected an array, got {type(X).__name__}; "
            "convert with numpy.asarray or call the layer through Net")


def check_rank(layer, X, rank, layout):
    """Raise a ValueError naming the layer when ``X`` is not a ``rank``-d array."""
    _check_is_array(layer, X)
    if X.ndim != rank:
        raise ValueError(
            f"{type(layer).__name__}: expected a {rank}-d input {layout}, got shape {tuple(X.shape)}")


def check_rank_at_least(layer, X, rank, layout):
    """Raise a ValueError naming the layer when ``X`` has fewer than ``rank`` axes."""
    _check_is_array(layer, X)
    if X.ndim < rank:
        raise ValueError(f"{type(layer).__name__}: expected an input {layout}, got a {X.ndim}-d array")


def check_window_fits(layer, X, window):
    """Raise a ValueError naming the layer when its ``window`` (``"kernel"``, ``"window"``) with
    its padding does not fit once in the spatial size of ``X``: the output would be empty."""
    _, _, OH, OW = layer.output_shape(X.shape)
    if OH < 1 or OW < 1:
        raise ValueError(f"{type(layer).__name__}: input of spatial size {tuple(X.shape[2:])} is smaller than "
                         f"the {window} {layer.kernel_size} with padding {layer.padding}")


def check_float(layer, X):
    """Raise a TypeError naming the layer when ``X`` is not float32 or float64, the dtypes
    nnfs computes in, for layers without parameters to compare it with: on integers or bools
    their output would come in another dtype (float64 from an average, float16 from
    ``tanh`` of bools), or one no gradient of the loss has."""
    _check_is_array(layer, X)
    if X.dtype.name not in ("float32", "float64"):
        raise TypeError(f"{type(layer).__name__}: expected a float32 or float64 input, got dtype {X.dtype}; "
                        "cast it with .astype('float32') (a Net casts its input itself)")


def check_dtype(layer, X):
    """Parameters and inputs must share a device and a float dtype: nothing is moved or
    promoted silently (and a host array meeting device parameters fails deep inside the
    array library, naming its function instead of the layer)."""
    param = next(iter(layer.params.values()), None)
    # The same array type is the same backend: the common case, decided without a lookup.
    here, there = (None, None) if param is None or type(X) is type(param) else (backend_of(X), backend_of(param))
    if here is not there:
        raise TypeError(
            f"{type(layer).__name__}: the input is on the {here.name} backend but the parameters are "
            f"on {there.name}; move the input with get_backend({there.name!r}).asarray(X), or the "
            f"layer with .to({here.name!r}) (a Net moves its input itself)")
    if X.dtype != layer.dtype:
        # Moving the layer only helps for the other float dtype: parameters are float32 or float64.
        move = (f" or move the layer with .to(dtype={str(X.dtype)!r})"
                if str(X.dtype) in ("float32", "float64") else " (a Net casts its input itself)")
        raise TypeError(
            f"{type(layer).__name__}: input dtype {X.dtype} does not match the parameters' "
            f"{layer.dtype}; cast the input with .astype({str(layer.dtype)!r}){move}")
