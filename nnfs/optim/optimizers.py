"""Optimizers (SGD, Adam, AdamW), with PyTorch's update rules.

The training step becomes::

    optimizer = Adam(net, lr=1e-3)
    out = net(X)
    loss = net.loss(out, y)
    net.backward()
    clip_grad_norm(net, 5.0)   # optional
    optimizer.step()           # updates every parameter in place
    optimizer.zero_grad()      # optional: nnfs layers overwrite their gradients on backward

An optimizer never holds on to parameter or gradient arrays: each step asks
the net for ``named_parameters()`` again, because ``net.to(...)`` and
``net.load_state_dict(...)`` rebind them and every backward pass makes new
gradient arrays. Its state (momentum buffers, Adam's moments) is keyed by the
parameter *name* (``"0.weight"``), which survives device moves, and follows
the parameter: an entry on another device or in another dtype is moved the
next time it is used.
"""

import math
import warnings

from nnfs.backend import backend_of, check_real, get_array_module, to_numpy
from nnfs.checks import boolean, is_integer, number
from nnfs.layers.composite import first_repeat, layer_tree
from nnfs.text import count, short_repr, shorten

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "OPTIMIZERS", "make_optimizer", "named_parameters_of",
           "not_the_nets"]


def named_parameters_of(source, owner="optimizer"):
    """``[(name, param, grad), ...]`` from a Net, one layer, or a list of layers.

    A list of layers is named like a Net (``"<index>.<key>"``); a single layer's
    parameters are named by their key alone.

    Raises:
        TypeError: for anything else (bare arrays carry no gradients to find).
        ValueError: for a list that holds one layer twice (itself, or inside a composite).
    """
    if isinstance(source, type):
        # A class has the methods but no parameters: SGD(Net) failed inside named_parameters
        # ("missing 'self'") and SGD(Linear) said "got type".
        raise TypeError(f"{owner}: got the class {source.__name__}, not a net or layer made from it: "
                        "give the net (or the layers) the optimizer is to update")
    if hasattr(source, "named_parameters"):
        return list(source.named_parameters())
    if hasattr(source, "params") and hasattr(source, "grads"):
        return [(key, param, source.grads[key]) for key, param in source.params.items()]
    if isinstance(source, (list, tuple)) and all(hasattr(s, "params") for s in source):
        # A Net refuses a layer in two places, and so does a list: its parameters would be
        # updated twice per step (twice the rate) and counted twice in a clipped norm.
        # Only layers with parameters: a ReLU listed twice updates nothing twice.
        repeat = first_repeat((path, layer) for path, layer in layer_tree(source) if layer.params)
        if repeat is not None:
            layer, first, second = repeat
            raise ValueError(f"{owner}: the same {type(layer).__name__} appears twice in the list (layers {first} "
                             f"and {second}), so its parameters would count twice (two updates a step, twice in "
                             "a norm); give each layer once")
        return [(f"{index}.{key}", param, layer.grads[key])
                for index, layer in enumerate(source) for key, param in layer.params.items()]
    raise TypeError(
        f"{owner}: expected a Net, a layer or a list of layers (something whose gradients can "
        f"be found), got {type(source).__name__}")


def not_the_nets(net, source, owner="optimizer"):
    """What is wrong with an optimizer over ``source`` (its ``params``) for ``net``, or None:
    the parameters it updates that are not ``net``'s, by identity (one made for another net of
    the same shapes, the net rebuilt and the old optimizer kept). The epoch loop and
    checkpoint saving refuse it with this sentence."""
    ours = {id(param) for _, param, _ in net.named_parameters()}
    theirs = [name for name, param, _ in named_parameters_of(source, owner) if id(param) not in ours]
    if not theirs:
        return None
    return (f"the optimizer updates {count(len(theirs), 'parameter that is', 'parameters that are')} not the "
            f"net's (the first is its {theirs[0]!r}): was it made for another net?")


class Optimizer:
    """Base class: walks the parameters, keeps per-parameter state, saves and restores it.

    Subclasses implement :meth:`update` for one parameter and :meth:`get_config`
    (their constructor arguments, as layers do).

    Args:
        params: a Net (or anything with ``named_parameters()``), a layer, or a list of layers.
        lr: learning rate; a plain attribute that schedules change between steps.

    Attributes:
        lr: the learning rate used by the next :meth:`step`.
        step_count: number of steps taken (Adam's bias correction uses it).
        state: ``{parameter name: {slot: array}}`` on the parameters' device.
    """

    def __init__(self, params, lr):
        if not named_parameters_of(params, type(self).__name__):  # fail now, not at the first step
            raise ValueError(f"{type(self).__name__}: there are no parameters to optimize (a net of "
                             "activations and pooling only?)")
        self.params = params
        self.lr = number(type(self).__name__, "lr", lr, low=0)
        self.step_count = 0
        self.state = {}

    #: The arrays the optimizer keeps per parameter (its state's slots), all made at once at the
    #: parameter's first step: a loaded state must hold exactly these for a parameter, or none.
    SLOTS = frozenset()
    #: The slots that are running averages of squares, never negative (their square root is taken).
    NON_NEGATIVE_SLOTS = frozenset()

    def step(self):
        """Update every parameter in place from its current gradient."""
        # Checked at every step: schedules and users set it between steps, and one NaN or
        # negative rate would turn every weight into NaN or walk up the loss.
        lr = number(f"{type(self).__name__}.step", "lr", self.lr, low=0)
        params = named_parameters_of(self.params, f"{type(self).__name__}.step")
        for name, param, _ in params:  # all checked before any weight changes
            self._check_state_shape(name, param)
        self.step_count += 1
        for name, param, grad in params:
            self.update(name, param, grad, self._state_for(name, param), lr)

    def _check_state_shape(self, name, param):
        """A ValueError when the state kept for ``name`` is not of ``param``'s shape: a layer
        replaced by one of another size since its first step (a new head for more classes)
        failed inside NumPy on a broadcast, half-way through the step. Only the slots of
        :data:`SLOTS`, which hold one value per weight: a subclass of one's own may keep others
        of any shape."""
        for slot, value in self.state.get(name, {}).items():
            if slot in type(self).SLOTS and tuple(value.shape) != tuple(param.shape):
                raise ValueError(
                    f"{type(self).__name__}.step: its {slot} for {name} has shape {tuple(value.shape)}, but the "
                    f"parameter is now {tuple(param.shape)} (was its layer replaced?); make a new optimizer, or "
                    f"drop that parameter's state with del optimizer.state[{name!r}]")

    def update(self, name, param, grad, state, lr):
        """Update one parameter in place; ``state`` is its (mutable) dict of arrays."""
        raise NotImplementedError(f"{type(self).__name__} defines no update(name, param, grad, state, lr): "
                                  "an optimizer of one's own updates each parameter there")

    def zero_grad(self):
        """Set every gradient to zero in place."""
        for _, _, grad in named_parameters_of(self.params, f"{type(self).__name__}.zero_grad"):
            grad.fill(0)

    def _state_for(self, name, param):
        """The state of ``name``, moved to ``param``'s device and dtype where it is elsewhere."""
        state = self.state.setdefault(name, {})
        device = backend_of(param)
        for slot, value in state.items():
            if backend_of(value) != device or value.dtype != param.dtype:
                state[slot] = device.asarray(value, dtype=param.dtype)
        return state

    # -- configs and checkpoints -------------------------------------------------------------
    def get_config(self):
        """The constructor arguments except the parameters: ``lr`` and the hyperparameters."""
        return {"lr": float(self.lr)}

    def state_dict(self):
        """``{"config": JSON-able dict, "state": {"<param name>.<slot>": NumPy array}}``.

        The config is the type, :meth:`get_config` and the step count.
        """
        # Copies: on the CPU to_numpy hands back the live buffer, which later steps change.
        state = {f"{name}.{slot}": to_numpy(value).copy()
                 for name, slots in self.state.items() for slot, value in slots.items()}
        config = {"type": type(self).__name__, "step_count": self.step_count}
        config.update({key: list(value) if isinstance(value, tuple) else value
                       for key, value in self.get_config().items()})
        return {"config": config, "state": state}

    def load_state_dict(self, state_dict):
        """Restore hyperparameters, learning rate, step count and state from :meth:`state_dict`.

        Arrays go straight to the device and dtype of the parameter they belong to.

        Everything is checked before anything changes: a refused state leaves the optimizer
        as it was.

        A parameter without saved arrays starts its state at its next step, as one added
        to the net during a run does; Adam's bias correction counts the optimizer's steps,
        not the parameter's (there is one ``step_count``, so no per-parameter counts can
        disagree).

        Raises:
            ValueError: when the saved optimizer is of another type, names a parameter
                that the optimized net does not have, lacks a slot or holds a foreign one,
                or holds values no run makes, which would turn the weights into NaN steps
                later: NaN or inf (a value beyond the parameter's dtype, 1e300 in float32,
                included) or a negative running average of squares (Adam's ``exp_avg_sq``);
                or arrays with a ``step_count`` of 0 (state is made at a parameter's first
                step, so no run has it before one: Adam's next step would multiply its
                moments tenfold and more).
        """
        saved, step_count, state = self._checked_state(state_dict, on_device=True)
        for key in self.get_config():
            setattr(self, key, getattr(saved, key))
        self.step_count = int(step_count)
        self.state = state
        return self

    def check_state_dict(self, state_dict):
        """Raise what :meth:`load_state_dict` would raise for ``state_dict``, with the same
        message, changing nothing: the arrays are checked where they are, in the parameters'
        dtypes, never copied to the parameters' device (a checkpoint's state is checked on the
        host, each time one is written or read).
        """
        self._checked_state(state_dict, on_device=False)

    def _checked_state(self, state_dict, on_device):
        """``(an optimizer with the saved config, step_count, {name: {slot: array}})`` of
        ``state_dict``, every check of :meth:`load_state_dict` passed; each array in its
        parameter's dtype, a copy on the parameter's device with ``on_device``, else in its
        own array module. Errors name load_state_dict, whichever method asked."""
        owner = f"{type(self).__name__}.load_state_dict"
        if not isinstance(state_dict, dict) or set(state_dict) != {"config", "state"}:
            raise ValueError(f"{owner}: expected a dict with keys 'config' and 'state', got {short_repr(state_dict)}")
        config = state_dict["config"]
        if not isinstance(config, dict) or config.get("type") != type(self).__name__:
            found = config.get("type") if isinstance(config, dict) else config
            raise ValueError(f"{owner}: the saved state is from a {short_repr(found)} optimizer")
        # The saved arguments go through the constructor's checks, so a damaged config is
        # refused here, not at the first step.
        try:
            saved = type(self)(self.params, **{key: config[key] for key in self.get_config()})
        except KeyError as error:
            raise ValueError(f"{owner}: the saved config lacks {error}") from None
        step_count = config.get("step_count")
        if not is_integer(step_count) or step_count < 0:
            raise ValueError(f"{owner}: the saved step_count must be an int >= 0, got {short_repr(step_count)}")
        params = {name: param for name, param, _ in named_parameters_of(self.params)}
        state = {}
        if not isinstance(state_dict["state"], dict):
            raise ValueError(f"{owner}: the saved state must be a dict of arrays")
        for key, value in state_dict["state"].items():
            name, _, slot = str(key).rpartition(".")
            if name not in params:
                raise ValueError(
                    f"{owner}: the saved state has {short_repr(key)}, but the net has no parameter {short_repr(name)} "
                    f"(its parameters: {sorted(params)})")
            param = params[name]
            if not hasattr(value, "shape") or tuple(value.shape) != tuple(param.shape):
                raise ValueError(
                    f"{owner}: {shorten(str(key), 120)} has shape {getattr(value, 'shape', None)} in the saved state, but the "
                    f"parameter {name} has shape {tuple(param.shape)}")
            check_real(f"{owner}: {short_repr(key)}", value, "the saved array")
            with warnings.catch_warnings():
                # A value beyond the parameter's dtype becomes inf, refused below by name;
                # NumPy's own warning about it would be a second, vaguer message.
                warnings.simplefilter("ignore", RuntimeWarning)
                if on_device:  # a copy, so that stepping never writes into the caller's arrays
                    value = backend_of(param).asarray(value, dtype=param.dtype).copy()
                else:
                    value = get_array_module(value).asarray(value, dtype=param.dtype)
                state.setdefault(name, {})[slot] = value
        for name, slots in state.items():  # a slot missing or foreign would fail at the first step
            if set(slots) != type(self).SLOTS:
                raise ValueError(f"{owner}: the saved state of {name} has {short_repr(sorted(slots))}, but "
                                 f"{type(self).__name__} keeps {sorted(type(self).SLOTS)}")
            for slot, value in slots.items():
                problem = self._slot_problem(slot, value)
                if problem:
                    raise ValueError(f"{owner}: the saved {name}.{slot} {problem}")
        if step_count == 0 and state:
            # Every optimizer here makes a parameter's state at its first step, after counting
            # it: arrays beside no step are no run's. Adam's first step would divide such
            # moments by 1 - beta1 and 1 - beta2 (10 and 1000 times what they hold), SGD's
            # would add a momentum buffer it otherwise starts from the gradient.
            names = sorted(state)
            raise ValueError(f"{owner}: the saved state holds arrays for {short_repr(names)} but a step_count "
                             f"of 0; {type(self).__name__} makes them at a parameter's first step, so a state "
                             "that has taken no step holds none")
        return saved, step_count, state

    def _slot_problem(self, slot, value):
        """What makes a loaded slot (in its parameter's dtype) state that no run makes, or
        None: one read of the array for each check, when state is loaded or checked only."""
        xp = get_array_module(value)
        bad = int(xp.count_nonzero(~xp.isfinite(value)))
        if bad:
            return (f"holds {bad} NaN or infinite value(s) in {value.dtype} (the parameter's dtype); "
                    "the step after them would make the weights NaN")
        if slot in self.NON_NEGATIVE_SLOTS:
            negative = int(xp.count_nonzero(value < 0))
            if negative:
                return (f"holds {negative} negative value(s); it is a running average of squares, and "
                        "its square root would make the weights NaN")
        return None

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class SGD(Optimizer):
    """Stochastic gradient descent with optional momentum, Nesterov momentum and L2 weight decay.

    PyTorch's rule (with dampening 0): ``g = grad + weight_decay * param``;
    with momentum, ``buf = momentum * buf + g`` (``buf = g`` at the first
    step) and ``g = buf``, or ``g = g + momentum * buf`` with Nesterov;
    then ``param -= lr * g``. Without momentum or weight decay this is
    ``net.update_weights(lr)``.

    Args:
        params: a Net, a layer or a list of layers.
        lr: learning rate.
        momentum: momentum factor in [0, 1]; default 0.
        nesterov: use Nesterov momentum (needs momentum > 0); default False.
        weight_decay: L2 penalty added to the gradient; default 0.

    Attributes:
        state[name]["momentum_buffer"]: the velocity, shaped like the parameter (momentum > 0 only).
    """

    SLOTS = frozenset({"momentum_buffer"})

    def __init__(self, params, lr, momentum=0.0, nesterov=False, weight_decay=0.0):
        super().__init__(params, lr)
        self.momentum = number("SGD", "momentum", momentum, low=0, high=1)
        self.weight_decay = number("SGD", "weight_decay", weight_decay, low=0)
        self.nesterov = boolean("SGD", "nesterov", nesterov)
        if self.nesterov and self.momentum == 0:
            raise ValueError("SGD: Nesterov momentum needs momentum > 0")

    def get_config(self):
        return {"lr": float(self.lr), "momentum": self.momentum, "nesterov": self.nesterov,
                "weight_decay": self.weight_decay}

    def update(self, name, param, grad, state, lr):
        if self.weight_decay:
            grad = grad + self.weight_decay * param
        if self.momentum:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = grad.copy()
            else:
                buf *= self.momentum
                buf += grad
            grad = grad + self.momentum * buf if self.nesterov else buf
        param -= lr * grad


class Adam(Optimizer):
    """Adam with bias correction; weight decay is an L2 term added to the gradient (PyTorch's Adam).

    Per step t (from 1): ``g = grad + weight_decay * param``,
    ``m = beta1 * m + (1 - beta1) * g``, ``v = beta2 * v + (1 - beta2) * g**2``,
    ``param -= lr / (1 - beta1**t) * m / (sqrt(v) / sqrt(1 - beta2**t) + eps)``.

    Args:
        params: a Net, a layer or a list of layers.
        lr: learning rate; default 1e-3.
        betas: decay rates ``(beta1, beta2)`` of the two moment averages; default (0.9, 0.999).
        eps: added to the denominator; default 1e-8.
        weight_decay: L2 penalty added to the gradient; default 0.

    Attributes:
        state[name]["exp_avg"], state[name]["exp_avg_sq"]: the moments m and v.
    """

    SLOTS = frozenset({"exp_avg", "exp_avg_sq"})
    NON_NEGATIVE_SLOTS = frozenset({"exp_avg_sq"})

    decoupled = False

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        super().__init__(params, lr)
        owner = type(self).__name__
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise TypeError(f"{owner}: betas must be a pair (beta1, beta2), got {short_repr(betas)}")
        self.betas = tuple(number(owner, "betas", b, low=0, high=1, high_open=True) for b in betas)
        self.eps = number(owner, "eps", eps, low=0)
        self.weight_decay = number(owner, "weight_decay", weight_decay, low=0)

    def get_config(self):
        return {"lr": float(self.lr), "betas": self.betas, "eps": self.eps,
                "weight_decay": self.weight_decay}

    def update(self, name, param, grad, state, lr):
        beta1, beta2 = self.betas
        if self.weight_decay:
            if self.decoupled:
                param *= 1 - lr * self.weight_decay
            else:
                grad = grad + self.weight_decay * param
        if "exp_avg" not in state:
            xp = get_array_module(param)
            state["exp_avg"] = xp.zeros_like(param)
            state["exp_avg_sq"] = xp.zeros_like(param)
        m, v = state["exp_avg"], state["exp_avg_sq"]
        m *= beta1
        m += (1 - beta1) * grad
        v *= beta2
        v += (1 - beta2) * (grad * grad)
        t = self.step_count
        # Python floats throughout: the update keeps the parameters' dtype.
        step_size = lr / (1 - beta1 ** t)
        denom = get_array_module(v).sqrt(v) / math.sqrt(1 - beta2 ** t) + self.eps
        param -= step_size * (m / denom)


class AdamW(Adam):
    """Adam with decoupled weight decay (PyTorch's AdamW): ``param *= 1 - lr * weight_decay`` first.

    Args:
        params: a Net, a layer or a list of layers.
        lr: learning rate; default 1e-3.
        betas: default (0.9, 0.999).
        eps: default 1e-8.
        weight_decay: decoupled decay rate; default 1e-2, as in PyTorch.
    """

    decoupled = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2):
        super().__init__(params, lr, betas, eps, weight_decay)


OPTIMIZERS = {"sgd": SGD, "adam": Adam, "adamw": AdamW}


def make_optimizer(name, params, lr, **kwargs):
    """Build an optimizer by name (``"sgd"``, ``"adam"``, ``"adamw"``, any case), e.g. from a command line.

    The ``"type"`` in a saved ``state_dict()["config"]`` is such a name, so a run resumes with
    ``make_optimizer(saved["config"]["type"], net, saved["config"]["lr"]).load_state_dict(saved)``.

    Raises:
        ValueError: for an unknown name, listing the known ones.
    """
    key = str(name).strip().lower()
    if key not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {short_repr(name)}; expected one of: {', '.join(OPTIMIZERS)}")
    return OPTIMIZERS[key](params, lr=lr, **kwargs)
