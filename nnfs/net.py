"""``Net``: a sequence of layers with a loss, on one device."""

import warnings
from collections.abc import Mapping

from nnfs.backend import as_dtype, backend_of, check_real, get_array_module, get_backend, to_numpy
from nnfs.checks import boolean, number
from nnfs.layers.base import Layer, backward_through, check_gradient, forward_through
from nnfs.layers.composite import Composite, Sequential, first_repeat, layer_tree
from nnfs.losses import Loss, softmax
from nnfs.parallel import Shards
from nnfs.text import short_repr


class Net:
    """A feed-forward network: layers applied in order, then a loss.

    The training step of the original project keeps working::

        out = net(X)              # forward; X may be a NumPy or a device array
        loss = net.loss(out, y)   # a scalar on the net's device
        net.backward()            # gradients of every layer
        net.update_weights(lr)    # plain SGD

    The net lives on one backend (``NNFS_BACKEND`` by default) and dtype
    (float32 by default): :meth:`to` moves parameters, gradients and
    BatchNorm running statistics, and every batch is moved to that device
    and cast to that dtype when it comes in.

    On the CPU a large batch is cut into shards that run on all the cores at
    once, one thread each (:mod:`nnfs.parallel`: how, and how to set the number of
    threads); the results are those of the single-threaded step up to rounding.

    Args:
        layers: a non-empty list of layers, e.g. ``[Linear(2, 4), ReLU(), Linear(4, 2)]``.
        loss: a loss such as ``CrossEntropyLoss()``; may be None for inference only.
        backend: ``"numpy"``, ``"cupy"``, ``"strict"`` or a Backend; default: where the layers'
            parameters already are (``NNFS_BACKEND`` for new layers).
        dtype: ``"float32"`` or ``"float64"``; default: the layers' dtype (float32 for new layers,
            or ``NNFS_DTYPE``).

    Raises:
        TypeError: without ``backend`` (``dtype``), for layers whose parameters are on more
            than one backend (in more than one dtype): which to use is not guessed.
    """

    def __init__(self, layers, loss=None, backend=None, dtype=None):
        if isinstance(layers, Layer) and not isinstance(layers, Sequential):
            layers = [layers]  # Net(Linear(4, 3)): a list of one (a Sequential is its layers)
        if isinstance(layers, (dict, set, frozenset, str, bytes)):  # keys, no order, characters
            raise TypeError(f"Net: layers must be a list of nnfs layers, got {type(layers).__name__}")
        try:
            layers = list(layers)
        except TypeError:
            raise TypeError(f"Net: layers must be a list of nnfs layers, got {type(layers).__name__}") from None
        if not layers:
            raise ValueError("Net: needs at least one layer, got an empty list")
        for index, layer in enumerate(layers):
            if isinstance(layer, type) and issubclass(layer, Layer):  # "is a type" said not what to do
                raise TypeError(f"Net: layer {index} is the class {layer.__name__}, not a layer made from it: "
                                f"write {layer.__name__}(...)")
            if not isinstance(layer, Layer):
                raise TypeError(f"Net: layer {index} is a {type(layer).__name__}, not an nnfs layer")

        def checked_tree():  # each layer checked as it comes, before a later repeat is met
            for where, part in layer_tree(layers):
                _check_initialised(part, f"layer {where}")
                yield where, part

        repeat = first_repeat(checked_tree())
        if repeat is not None:
            part, first, second = repeat
            raise ValueError(f"Net: the same {type(part).__name__} appears twice (layers {first} and {second}); "
                             "build a separate layer for each place")
        _check_unshared(layers)
        if isinstance(loss, type) and issubclass(loss, Loss):
            raise TypeError(f"Net: loss is the class {loss.__name__}, not a loss made from it: write {loss.__name__}()")
        if loss is not None and not isinstance(loss, Loss):
            raise TypeError(f"Net: loss must be an nnfs loss, got {type(loss).__name__}")
        if loss is not None:
            _check_initialised(loss, "the loss")
        self.layers = layers
        self.loss_fn = loss
        # Without explicit arguments the net stays where its layers already are, so layers
        # built with .to("cupy") or dtype="float64" are never moved or cast behind the user's back.
        first = next((layer for layer in layers if layer.params), None)
        if backend is None and first is not None:
            backend = _one_for_all(layers, "backend", lambda value: backend_of(value).name)
        if dtype is None and first is not None:
            dtype = _one_for_all(layers, "dtype", lambda value: value.dtype.name)
        self.backend = get_backend(backend)
        self.dtype = as_dtype(dtype)
        self.training = True
        # The output of the latest forward pass and the predictions of the latest loss: backward
        # uses what the layers kept from the former, so the two must be one array.
        self._output = self._scored = None
        self._input_like = None  # the shape and dtype of the latest forward pass's input, as the layers saw it
        # Set when load_state_dict replaces the weights: the layers then hold what the forward
        # pass before it saw, the old weights' activations, and a backward would be theirs.
        self._weights_replaced = False
        self._shards = Shards()  # the replicas of the layers for the other threads, made on demand
        self.to(self.backend, self.dtype)

    # -- the training step ---------------------------------------------------------------
    def __call__(self, X):
        return self.forward(X)

    def forward(self, X):
        """Run every layer on ``X``, moved to the net's device and dtype first.

        ``X`` may hold booleans, integers or floats of any width; complex values, text and
        objects are refused with a ``TypeError`` (a cast would drop or invent numbers).

        Shape:
            - Input: ``(N, ...)`` as the first layer expects (images ``(N, C, H, W)``)
            - Output: what the last layer gives, e.g. ``(N, n_classes)`` logits
        """
        self.backend.prepare()  # once per process on the CPU: see nnfs.backend.allocator
        check_real("Net", X)
        X = self.backend.asarray(X, dtype=self.dtype)
        self._input_like = (tuple(X.shape), X.dtype)  # what backward(input_grad=True) returns the gradient of
        shards = self._shards.count(self.backend, X)
        if shards > 1:  # on the CPU a large batch runs in shards, one thread each (nnfs.parallel)
            X = self._shards.forward(self.layers, X, shards)
        else:
            with self._shards.single(self.backend):
                X = forward_through(self.layers, X)
        self._output = X
        self._weights_replaced = False
        return X

    def loss(self, out, y):
        """The loss of ``out`` against targets ``y``; a scalar on the device.

        ``y`` goes to the loss as it is: the loss checks it and moves it to the device (the
        built-in ones range-check host labels first, which on the device would cost a wait).
        """
        if self.loss_fn is None:
            raise RuntimeError("Net.loss: this net was built without a loss")
        self._scored = out
        return self.loss_fn(out, y)

    def backward(self, input_grad=False):
        """Backpropagate the last loss through every layer, storing each layer's gradients.

        Args:
            input_grad: also compute the gradient with respect to the net's input (for
                saliency maps or adversarial examples, say). Off by default: training
                never needs it, and for a first ``Conv2D`` it costs a col2im of the batch.

        Returns:
            dLoss/dInput with the input's shape when ``input_grad`` is True, else None.

        Raises:
            RuntimeError: when the last loss was not computed on the output of the latest
                forward pass (``net(X2)``, ``predict`` or ``predict_proba`` ran in between), or
                :meth:`load_state_dict` replaced the weights since that pass: the layers hold
                what that other pass saw, and the gradients would be silently wrong.
        """
        if self.loss_fn is None:
            raise RuntimeError("Net.backward: this net was built without a loss")
        if self._scored is not None and self._scored is not self._output:
            raise RuntimeError(
                "Net.backward: the last loss was not computed on the output of the latest forward "
                "pass (another forward, predict or predict_proba ran in between, or the loss was "
                "given a part or a copy of it); call net.loss(net(X), y) just before backward")
        if self._weights_replaced:
            raise RuntimeError(
                "Net.backward: the weights were loaded (load_state_dict, checkpoint.load_into) after the "
                "forward pass of the last loss, so its gradients would be those of the old weights; call "
                "net.loss(net(X), y) again before backward")
        grad = self.loss_fn.backward()
        # Named after the loss here: a loss of one's own that returns the wrong shape would
        # otherwise be reported by the last layer, or fail inside the shards' row cuts.
        if self._output is not None:
            check_gradient(f"Net.backward: {type(self.loss_fn).__name__}.backward", grad, tuple(self._output.shape),
                           self._output.dtype, backend_of(self._output), what="the gradient it returned")
        input_grad = boolean("Net.backward", "input_grad", input_grad)
        first = self.layers[0]
        first.input_grad = input_grad
        try:
            if self._shards.active:  # the forward pass ran in shards: so does this one
                grad = self._shards.backward(self.layers, grad, input_grad)
            else:
                with self._shards.single(self.backend):
                    grad = backward_through(self.layers, grad)
        finally:
            first.input_grad = True
        if not input_grad:
            return None
        # No layer after the first receives this gradient to check it: a first layer of one's
        # own that returned another shape (or dtype) handed it to the caller without a word.
        check_gradient(f"Net.backward: {type(first).__name__}.backward", grad, *self._input_like, self.backend,
                       what="the input gradient it returned", against="the net was given a batch")
        return grad

    def update_weights(self, lr):
        """One step of plain SGD: ``param -= lr * grad``, in place.

        Args:
            lr: the learning rate, a finite number >= 0, as the optimizers take it (0 is
                allowed there because a schedule may anneal to it; here it leaves the
                weights as they are).

        Raises:
            ValueError: for a negative, infinite or NaN rate (one step with it would turn
                every weight into inf or NaN).
            TypeError: for anything that is not a real number.
        """
        lr = number("Net.update_weights", "lr", lr, low=0)
        for _, param, grad in self.named_parameters():
            param -= lr * grad

    # -- inference -------------------------------------------------------------------------
    def predict_proba(self, X):
        """Class probabilities (softmax of the logits) as a NumPy array ``(N, n_classes)``.

        Runs in eval mode whatever mode the net is in (BatchNorm uses its running
        statistics and leaves them alone, Dropout is off), then restores the mode.
        """
        return to_numpy(softmax(self._infer(X)))

    def predict(self, X):
        """The most likely class index per sample as a NumPy array ``(N,)`` (eval mode, as above)."""
        return to_numpy(self._infer(X).argmax(axis=1))

    #: Samples per forward pass of :meth:`predict` and :meth:`predict_proba`: a large input
    #: goes through in slices of this many, so its activations never all exist at once ...
    INFER_BATCH = 256
    #: ... and, for images, of at most this many pixels (``H * W`` over the slice's images),
    #: since the activations grow with the pixels: 256 photos of 128x128 held 2.8 GB.
    INFER_PIXELS = 256 * 32 * 32

    @classmethod
    def inference_batch(cls, sample_shape):
        """How many samples of ``sample_shape`` go through one forward pass with nothing to
        keep for a backward pass: :data:`INFER_BATCH`, fewer for large images
        (:data:`INFER_PIXELS`); at least one.

        Shape:
            - sample_shape: ``(C, H, W)`` for images, anything else for other inputs
        """
        if len(sample_shape) != 3:
            return cls.INFER_BATCH
        pixels = max(1, int(sample_shape[1]) * int(sample_shape[2]))
        return max(1, min(cls.INFER_BATCH, cls.INFER_PIXELS // pixels))

    def _infer(self, X):
        """Eval-mode outputs of ``X``, in slices of :meth:`inference_batch` samples.

        Nothing of it is kept for a backward pass, which is refused after a prediction anyway:
        the layers' caches are emptied afterwards (8,000 images of 28x28 left 2.4 GB of
        columns and activations behind, held until the next forward pass).
        """
        check_real("Net", X)
        X = self.backend.asarray(X, dtype=self.dtype)
        # Every layer's own mode comes back, not the net's for all: a BatchNorm frozen in eval
        # mode while the rest fine-tunes stays frozen.
        was_training = self.training
        modes = [(part, part.training) for _, part in layer_tree(self.layers)]
        self.eval()
        try:
            n = X.shape[0] if X.ndim >= 2 else 0  # other ranks: the first layer names what it expected
            size = self.inference_batch(X.shape[1:])
            if n <= size:
                return self.forward(X)
            xp = get_array_module(X)
            return xp.concatenate([self.forward(X[start:start + size]) for start in range(0, n, size)], axis=0)
        finally:
            self.training = was_training
            for part, mode in modes:  # parents before their children, which a parent's train() sets
                part.train(mode)
            self._release_caches()

    def _release_caches(self):
        for _, part in layer_tree(self.layers):
            part.cache.clear()
        self._shards.release()

    @staticmethod
    def to_numpy(x):
        """Bring an output (or any array) back to the host as a NumPy array."""
        return to_numpy(x)

    # -- modes, devices, parameters ------------------------------------------------------------
    def train(self, mode=True):
        """Training mode (batch statistics in BatchNorm); returns the net."""
        self.training = boolean("Net.train", "mode", mode)  # train("eval") is not training
        for layer in self.layers:
            layer.train(mode)
        return self

    def eval(self):
        """Evaluation mode (running statistics in BatchNorm); returns the net."""
        return self.train(False)

    def to(self, backend=None, dtype=None):
        """Move every layer's parameters, gradients and buffers; returns the net.

        Args:
            backend: target backend name or Backend; None keeps the current one.
            dtype: target float dtype; None keeps the current one.
        """
        if backend is not None:
            self.backend = get_backend(backend)
        if dtype is not None:
            self.dtype = as_dtype(dtype)
        for layer in self.layers:
            layer.to(self.backend, self.dtype)
        return self

    def named_parameters(self):
        """Yield ``(name, param, grad)`` for every parameter, named ``"<layer index>.<key>"``.

        Inside a layer made of layers the key is the path to the parameter
        (``"3.body.0.weight"``, see :mod:`nnfs.layers.composite`). Names depend on the
        architecture only and stay the same when the net moves between devices, so
        optimizer state, gradient buffers and checkpoints are keyed by them.
        """
        for index, layer in enumerate(self.layers):
            for key, param in layer.params.items():
                grad = layer.grads.get(key)
                if grad is None:  # a KeyError from deep inside an optimizer named no layer
                    raise TypeError(f"Net: layer {index} ({type(layer).__name__}) has params[{key!r}] but no "
                                    f"grads[{key!r}]; make its parameters with self.init_params(dtype, "
                                    f"{key.rpartition('.')[2]}=...), which makes their gradients too")
                yield f"{index}.{key}", param, grad

    def parameters(self):
        """The parameter arrays, in layer order."""
        return [param for _, param, _ in self.named_parameters()]

    def state_dict(self):
        """Copies of the parameters and buffers as NumPy arrays, keyed ``"<layer index>.<key>"``."""
        state = {}
        for index, layer in enumerate(self.layers):
            for store in (layer.params, layer.buffers):
                for key, value in store.items():
                    # A snapshot: on NumPy to_numpy is the live parameter, which training changes.
                    state[f"{index}.{key}"] = to_numpy(value).copy()
        return state

    def load_state_dict(self, state):
        """Copy parameters and buffers from :meth:`state_dict` output into this net.

        Raises:
            ValueError: when a name is missing or unexpected, a shape differs, or a value is
                beyond the net's dtype (1e300 from a float64 state into a float32 net).
            TypeError: for a state that is not a dict.
        """
        if not isinstance(state, Mapping):  # None failed on iterating it, a list was "unexpected: [...]"
            raise TypeError(f"Net.load_state_dict: expected a dict of arrays by name (as state_dict() returns), "
                            f"got {type(state).__name__}")
        expected = {}
        for index, layer in enumerate(self.layers):
            for store in (layer.params, layer.buffers):
                for key, value in store.items():
                    expected[f"{index}.{key}"] = (store, key, value)
        missing = sorted(set(expected) - set(state))
        unexpected = sorted(set(state) - set(expected))
        if missing or unexpected:
            raise ValueError(
                "Net.load_state_dict: the saved state does not fit this architecture "
                f"(missing: {short_repr(missing) if missing else 'none'}; "
                f"unexpected: {short_repr(unexpected) if unexpected else 'none'})")
        # Every array is checked and converted before any is stored: a state refused half-way
        # would leave a net that is neither the old one nor the saved one.
        loaded = []
        for name, (store, key, value) in expected.items():
            incoming = state[name]
            if not hasattr(incoming, "shape"):
                raise ValueError(
                    f"Net.load_state_dict: {name} must be an array, got {type(incoming).__name__}")
            if tuple(incoming.shape) != tuple(value.shape):
                raise ValueError(
                    f"Net.load_state_dict: {name} has shape {tuple(incoming.shape)} in the saved "
                    f"state but {tuple(value.shape)} in this net")
            check_real(f"Net.load_state_dict: {name}", incoming, "the array")
            loaded.append((store, key, self._converted(name, incoming)))
        for store, key, array in loaded:
            store[key] = array
        self._weights_replaced = True
        return self

    def _converted(self, name, incoming):
        """``incoming`` as the net's own array (device, dtype); ValueError for finite values
        the cast would make inf (1e300 from a float64 state in a float32 net), which the cast
        itself only warns about."""
        # Copied even where asarray could return the caller's array: the net must own its
        # parameters, or training would change the saved state (and any net loaded from it).
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # "overflow encountered in cast": refused below
            converted = self.backend.asarray(incoming, dtype=self.dtype).copy()
        if incoming.dtype != self.dtype:
            lost = _non_finite(converted) - _non_finite(incoming)
            if lost:
                raise ValueError(
                    f"Net.load_state_dict: {name} holds {lost} value(s) beyond the range of "
                    f"{self.dtype}, the net's dtype (they would become inf)")
        return converted

    # -- random streams (training state, apart from the model's arrays) -------------------------
    def rng_state(self):
        """``{layer path: layer.rng_state()}`` of every layer with a random stream (Dropout's
        seed and mask count), paths as in :meth:`state_dict` (``"4"``, ``"3.body.1"``); ``{}``
        for a net without one. JSON-able; see :meth:`~nnfs.layers.Layer.rng_state` for why it
        is kept apart from :meth:`state_dict`."""
        state = {}
        for path, part in layer_tree(self.layers):
            stream = part.rng_state()
            if stream is not None:
                state[path] = stream
        return state

    def load_rng_state(self, state):
        """Continue the random streams of :meth:`rng_state` output; None changes nothing (a
        checkpoint saved before the streams were recorded, or without its optimizer).

        Raises:
            ValueError: when the layers named are not this net's layers with a random
                stream, or a layer refuses its state; no stream is changed then.
        """
        if state is None:
            return self
        previous = self.rng_state()
        layers = {path: part for path, part in layer_tree(self.layers) if path in previous}
        if not isinstance(state, dict) or set(state) != set(layers):
            got = list(state) if isinstance(state, dict) else state
            raise ValueError(f"Net.load_rng_state: expected the random streams of layers {sorted(layers)}, "
                             f"got {short_repr(got)}")
        try:
            for path, part in layers.items():
                part.load_rng_state(state[path])
        except ValueError as error:
            for other, part in layers.items():  # all or nothing
                part.load_rng_state(previous[other])
            raise ValueError(f"Net.load_rng_state: layer {path}: {error}") from None
        return self

    def draws(self):
        """True when a forward pass now draws from a random stream (a Dropout in training mode)."""
        return any(part.draws() for _, part in layer_tree(self.layers))

    def skip_batch(self):
        """What a training forward pass over an empty batch changes, without running one: each
        random stream moves on by one mask (see :meth:`~nnfs.layers.Layer.skip_batch`)."""
        for _, part in layer_tree(self.layers):
            part.skip_batch()

    def __repr__(self):
        inner = ",\n  ".join(repr(layer) for layer in self.layers)
        return (f"Net([\n  {inner}\n], loss={self.loss_fn!r}, "
                f"backend={self.backend.name!r}, dtype={self.dtype.name!r})")


def _one_for_all(layers, what, of):
    """The ``what`` (backend or dtype name, by ``of(param)``) that every parameter of ``layers``
    shares; a TypeError naming two that differ.

    Casting the others to the first layer's would silently undo a request: a float64 layer
    after a float32 one would become float32.
    """
    seen = None
    for index, layer in enumerate(layers):
        for key, value in layer.params.items():
            name, kind = f"{index}.{key}", of(value)
            if seen is None:
                seen = (name, kind)
            elif kind != seen[1]:
                on, act = ("on", "move every layer there") if what == "backend" else ("in", "cast every layer to it")
                raise TypeError(f"Net: the layers are {on} more than one {what} (parameter {seen[0]} is {seen[1]}, "
                                f"{name} is {kind}); build them {on} one, or give Net(..., {what}=...) to {act}")
    return seen[1]


def _check_unshared(layers):
    """A ValueError when two parameters are one array (``b.params["weight"] = a.params["weight"]``).

    Everything keyed by parameter name takes them for two: an optimizer keeps two states and
    updates the array twice a step (Adam's normalised steps add up), a checkpoint stores two
    copies and loads them untied, a move to another device unties them. Like a layer in two
    places (no weight sharing), it is refused when the net is built.
    """
    seen = {}
    for index, layer in enumerate(layers):
        for key, value in layer.params.items():
            name = f"{index}.{key}"
            first = seen.setdefault(id(value), name)
            if first != name:
                raise ValueError(f"Net: parameters {first} and {name} are one array (a weight shared by two layers), "
                                 "which nnfs does not support: optimizers, checkpoints and device moves would take "
                                 "it for two; give each layer its own array")


def _non_finite(array):
    """How many NaN or infinite values ``array`` (any backend, any real dtype) holds."""
    return int(get_array_module(array).count_nonzero(~get_array_module(array).isfinite(array)))


def _check_initialised(part, where):
    """A layer or loss of one's own whose ``__init__`` skipped ``super().__init__()`` has no
    ``params`` (or ``cache``), and would fail later with an AttributeError naming neither;
    parameters set by hand as lists failed in the net (an AttributeError) naming no layer. A
    layer whose gradients appear in its backward pass is let through: a net that only predicts
    needs none (an optimizer names a missing one, see :func:`~nnfs.optim.named_parameters_of`)."""
    if not all(hasattr(part, name) for name in (("cache",) if isinstance(part, Loss) else ("params", "cache"))):
        raise TypeError(f"Net: {where} ({type(part).__name__}) was never set up as an nnfs "
                        f"{'loss' if isinstance(part, Loss) else 'layer'}: its __init__ must call "
                        "super().__init__() first")
    if isinstance(part, (Loss, Composite)):  # a composite's parameters are its children's, checked as they come
        return
    for key, value in part.params.items():
        if not (hasattr(value, "shape") and hasattr(value, "dtype")):
            raise TypeError(f"Net: {where} ({type(part).__name__}) holds params[{key!r}] as a "
                            f"{type(value).__name__}, not an array; make its parameters with "
                            f"self.init_params(dtype, {key}=...), which makes their gradients too")
