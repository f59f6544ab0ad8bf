"""Check the gradients of a layer or loss of your own against finite differences, in float64.

:func:`check_layer` compares a layer's input gradient and every parameter gradient, and
:func:`check_loss` a loss's gradient for the predictions, with central differences::

    errors = check_layer(MyLayer(8), X)      # {'X': 1.3e-08, 'weight': 8.5e-10}, or a
                                             # GradientCheckError naming the wrong gradient

The rules, which nnfs's own tests follow too (``tests/gradcheck.py`` calls this module):

- The scalar differentiated is ``L = sum(f(X) * G)`` with ``G`` a random upstream gradient,
  never all ones: ones hide errors that cancel over the output, such as BatchNorm's input
  gradient, which sums to exactly zero along each channel.
- Central differences with step ``eps`` perturb one element at a time on the array itself,
  on the layer's own backend: the check runs on NumPy, the strict stand-in and CuPy alike.
- The error of a gradient is its largest elementwise relative error, with a floor so that
  entries tiny next to the rest do not turn rounding into a large error, and with the
  rounding noise of ``L`` allowed for (:func:`rounding_noise`): a gradient that is exactly
  zero in theory (a bias just before BatchNorm) matches finite differences that are noise.
- A layer that draws random numbers (Dropout in training mode, or a block holding one) has
  its random streams put back before every forward pass, so that each pass computes the
  same function: the one whose gradient backward gives, with the first pass's mask.
- :func:`check_layer` and :func:`check_loss` work on a float64 copy of your layer or loss:
  its dtype, cache, mode, running statistics and random stream stay as they were.
- :func:`check_layer` also runs the layer on a batch in two shards on two CPU threads, as a
  ``Net`` does by default (:func:`thread_difference`): a layer that looks at the whole batch
  without saying so (``nnfs.parallel.batch_sum``) gives other results there, which no
  gradient check can see.
"""

import copy
import itertools
import sys

from nnfs.backend import backend_of, default_backend, get_array_module, get_backend, host_generator, host_zeros, to_numpy
from nnfs.checks import ArgumentTypeError, number
from nnfs.layers.base import Layer, backward_through, check_set_up, forward_through
from nnfs.layers.composite import layer_tree
from nnfs.losses import Loss
from nnfs.parallel import Shards, in_shard
from nnfs.text import short_repr

__all__ = ["EPS", "TOLERANCE", "UPSTREAM_SEED", "THREAD_CHECK_SAMPLES", "GradientCheckError", "GradientErrors",
           "check_layer", "check_loss", "layer_errors", "loss_error", "relative_error", "numeric_gradient",
           "rounding_noise", "thread_difference"]

#: The step of the central differences: their truncation error (eps^2) and rounding error
#: (float64 epsilon / eps) both stay near 1e-10 relative.
EPS = 1e-6
#: The largest relative error a correct gradient shows in float64.
TOLERANCE = 1e-5
#: Seeds the upstream gradient when ``rng`` is not given: a stream of its own. With a plain
#: seed such as 0, an input drawn from ``default_rng(0)`` with the output's shape would be the
#: upstream gradient itself, a direction along which a normalising layer's input gradient is
#: about zero, and the check would fail on rounding alone.
UPSTREAM_SEED = (0, 0x67726164)


class GradientCheckError(AssertionError):
    """A gradient differs from finite differences by more than the tolerance."""


class GradientErrors(dict):
    """The relative error of each gradient checked, by name, and the verdict against a tolerance.

    A ``dict``: ``"X"`` is the input (the predictions, for a loss), the other keys are the
    layer's ``params`` keys.

    Attributes:
        subject: what was checked (the layer's or loss's ``repr``).
        tolerance: the largest error that passes (an error must be below it).
        threads: the line of the check on two threads (:func:`thread_difference`) where the
            layer gives other results when a batch runs in shards; None where it gives the
            same, or where that check did not run (a device backend, fewer samples than
            :data:`THREAD_CHECK_SAMPLES`).
        message: the verdict in one line, None when the layer passes: the subject, the worst
            gradient and its error against the tolerance when one is not below it, else the
            ``threads`` line.
    """

    def __init__(self, subject, errors, tolerance, threads=None):
        super().__init__(errors)
        self.subject, self.tolerance, self.threads = subject, tolerance, threads

    @property
    def message(self):
        failed = {name: error for name, error in self.items() if not error < self.tolerance}  # NaN fails
        if not failed:
            return self.threads
        worst = max(failed, key=lambda name: (failed[name] != failed[name], failed[name]))  # NaN first
        what = "the input gradient (X)" if worst == "X" else f"the gradient of params[{worst!r}]"
        others = ", ".join(f"{name} {error:.2g}" for name, error in self.items())
        return (f"{self.subject}: {what} is off from finite differences by a relative error of "
                f"{failed[worst]:.3g}, not below the tolerance {self.tolerance:g} (errors: {others})")


def check_layer(layer, X, *, rng=None, backend=None, eps=EPS, tolerance=TOLERANCE, raise_error=True):
    """Compare a layer's input gradient and every parameter gradient with finite differences.

    The check runs on a float64 copy of ``layer`` (in its mode, train or eval); the layer
    itself is left as it was.

    Args:
        layer: the layer to check (any :class:`~nnfs.layers.Layer`).
        X: an input batch (NumPy or device array); it is copied to float64.
        rng: a NumPy ``Generator`` or a seed for the random upstream gradient (default
            :data:`UPSTREAM_SEED`, a stream of its own).
        backend: where to run (a name or a ``Backend``); default the backend of the
            layer's parameters, else the input's device, else the default backend.
        eps: the finite-difference step.
        tolerance: the largest relative error that passes (an error must be below it).
        raise_error: raise :class:`GradientCheckError` when a gradient fails; when False,
            return the errors and let ``errors.message`` say what failed.

    Shape:
        - X: whatever the layer takes.

    Returns:
        :class:`GradientErrors`: ``{"X": error, <param key>: error, ...}``; its ``threads``
        is None, or the line saying how the layer's results on two CPU threads differ
        (:func:`thread_difference`).

    Raises:
        GradientCheckError: naming the layer, the worst gradient and its error, or saying
            that the layer gives other results on two CPU threads than on one (with
            ``raise_error``).
        ValueError: for a gradient of the wrong shape, a missing one, or no input gradient,
            and for an ``eps`` or ``tolerance`` that is not a finite number > 0.
        TypeError: for a ``layer`` that is not an nnfs layer.
    """
    _check_arguments("check_layer", layer, Layer, eps, tolerance)
    generator = _upstream_generator("check_layer", rng)
    target = _backend(backend, layer.backend, X)
    probe = copy.deepcopy(layer).to(target, "float64")
    X = target.asarray(X, dtype="float64").copy()  # perturbed in place: never the caller's array
    G = target.asarray(generator.normal(size=probe(X).shape))
    threads = thread_difference(probe, X, G, tolerance)
    return _verdict(GradientErrors(repr(layer), layer_errors(probe, X, G, eps), tolerance, threads), raise_error)


#: The fewest samples a batch needs for :func:`thread_difference` (two shards of two).
THREAD_CHECK_SAMPLES = 4


def thread_difference(layer, X, G, tolerance=TOLERANCE):
    """What differs when ``layer`` runs a batch in two shards on two CPU threads, as a ``Net``
    does by default (:mod:`nnfs.parallel`), from one thread: a line saying so, or None.

    Each shard sees only its rows, so a layer that looks at the whole batch (a mean over N)
    gives other outputs and gradients there, silently, unless it passes its statistics through
    :func:`~nnfs.parallel.batch_sum` or :func:`~nnfs.parallel.batch_gather` (as BatchNorm
    does). The outputs, the input gradients along ``G``, the parameter gradients and the
    buffers (running statistics) of two copies of ``layer`` are compared by
    :func:`relative_error`. None too where there is
    nothing to compare: a device backend (it never shards), or fewer than
    :data:`THREAD_CHECK_SAMPLES` samples.
    """
    if in_shard():  # a check inside a step's shard: the threads are that step's
        return None
    if backend_of(X).is_device or getattr(X, "ndim", 0) == 0 or X.shape[0] < THREAD_CHECK_SAMPLES:
        return None
    one, two = copy.deepcopy(layer), copy.deepcopy(layer)
    alone = {"output": forward_through([one], X)}
    alone["X"] = backward_through([one], G)
    shards = Shards()
    try:
        together = {"output": shards.forward([two], X, 2)}
        together["X"] = shards.backward([two], G, True)
    except Exception as error:  # noqa: BLE001  (what one thread does not raise: the finding itself)
        return f"{layer!r}: on two CPU threads it fails where one thread does not: {error}"
    finally:
        shards.release()
    for results, copied in ((alone, one), (together, two)):
        results.update({f"the gradient of params[{name!r}]": value for name, value in copied.grads.items()})
        results.update({f"its buffer {name!r}": value for name, value in copied.buffers.items()})
    differences = {name: relative_error(together[name], value) for name, value in alone.items()
                   if value is not None and together.get(name) is not None}
    worst = max(differences, key=differences.get, default=None)
    if worst is None or differences[worst] < tolerance:
        return None
    what = {"output": "its output", "X": "its input gradient"}.get(worst, worst)
    return (f"{layer!r}: on two CPU threads (a batch in two shards, as a Net runs it) {what} differs from one "
            f"thread's by a relative {differences[worst]:.3g}: it looks at the whole batch, so pass its "
            "statistics through nnfs.parallel.batch_sum or batch_gather (docs/layers.md, Threads)")


def check_loss(loss, out, y, *, backend=None, eps=EPS, tolerance=TOLERANCE, raise_error=True):
    """Compare a loss's gradient for the predictions with finite differences.

    The check runs on a copy of ``loss`` and of the predictions, in float64.

    Args:
        loss: the loss to check (any :class:`~nnfs.losses.Loss`).
        out: the predictions (NumPy or device array).
        y: the targets, handed to the loss as they are (as ``Net.loss`` does).
        backend: where to run; default the predictions' device, else the default backend.
        eps, tolerance, raise_error: as for :func:`check_layer`.

    Shape:
        - out: whatever the loss takes; y: the targets that go with it.

    Returns:
        :class:`GradientErrors`: ``{"X": error}``.

    Raises:
        GradientCheckError: naming the loss and the error (with ``raise_error``).
        ValueError: for a gradient of the wrong shape, and for an ``eps`` or ``tolerance``
            that is not a finite number > 0.
        TypeError: for a ``loss`` that is not an nnfs loss.
    """
    _check_arguments("check_loss", loss, Loss, eps, tolerance)
    target = _backend(backend, None, out)
    prediction = target.asarray(out, dtype="float64").copy()
    error = loss_error(copy.deepcopy(loss), prediction, y, eps)
    return _verdict(GradientErrors(repr(loss), {"X": error}, tolerance), raise_error)


def layer_errors(layer, X, G, eps=EPS):
    """The relative errors of a float64 layer's gradients along the upstream gradient ``G``.

    The building block of :func:`check_layer`, for a layer already in float64 on the backend
    of ``X`` and ``G``: it runs on the layer itself, which is left holding the gradients of
    ``backward(G)``.

    Returns:
        ``{"X": error, <param key>: error, ...}`` as plain floats.
    """
    # A layer that draws random numbers (Dropout in training mode, or a block holding one)
    # is another function at each forward pass; every pass here draws what the first draws.
    streams = _random_streams(layer)

    def scalar():
        _replay(streams)
        return float((layer.forward(X) * G).sum())

    noise = rounding_noise(float(abs(layer(X) * G).sum()), eps)  # this forward is backward's too
    dX = layer.backward(G)
    if dX is None:
        raise ValueError(f"{layer!r}: backward returned no input gradient (is input_grad off?)")
    missing = [name for name in layer.params if name not in layer.grads]
    if missing:
        raise ValueError(f"{layer!r}: backward stored no gradient for params {missing}")
    # Copies: a layer may reuse its arrays in the forward passes that follow.
    analytic = {"X": to_numpy(dX).copy()}
    analytic.update({name: to_numpy(layer.grads[name]).copy() for name in layer.params})
    arrays = {"X": X, **layer.params}
    for name, array in arrays.items():
        _check_shape(layer, "the input" if name == "X" else f"params[{name!r}]", analytic[name], array)
    return {name: relative_error(analytic[name], numeric_gradient(scalar, array, eps), noise)
            for name, array in arrays.items()}


def _random_streams(layer):
    """``[(part, its rng_state())]`` for ``layer`` and each layer inside it with a random stream."""
    streams = ((part, part.rng_state()) for _, part in layer_tree([layer]))
    return [(part, state) for part, state in streams if state is not None]


def _replay(streams):
    """Put each random stream back where :func:`_random_streams` found it."""
    for part, state in streams:
        part.load_rng_state(state)


def loss_error(loss, prediction, target, eps=EPS):
    """The relative error of a loss's gradient at float64 ``prediction`` (changed and restored
    in place), the building block of :func:`check_loss`."""
    loss(prediction, target)
    analytic = to_numpy(loss.backward()).copy()
    _check_shape(loss, "the predictions", analytic, prediction)
    return relative_error(analytic, numeric_gradient(lambda: float(loss(prediction, target)), prediction, eps))


def relative_error(analytic, numeric, noise=0.0):
    """The largest elementwise ``|a - n| / max(|a|, |n|, floor)`` between two gradients.

    The floor (1e-3 of the largest numeric entry, at least 1e-8, at least ``noise``) keeps
    entries that are tiny next to the rest of the gradient from turning finite-difference
    noise into a large relative error. ``noise`` is how large finite differences of a
    gradient that is zero come out (:func:`rounding_noise`): two gradients both within it
    are equal, 0. Shapes must agree exactly: a gradient of the wrong shape is never
    broadcast.

    Raises:
        ValueError: when the shapes differ.
    """
    analytic, numeric = to_numpy(analytic), to_numpy(numeric)
    xp = get_array_module(numeric)  # host arrays: one error per gradient, read once
    analytic, numeric = xp.asarray(analytic, dtype="float64"), xp.asarray(numeric, dtype="float64")
    if analytic.shape != numeric.shape:
        raise ValueError(f"gradient of shape {analytic.shape} for an array of shape {numeric.shape}")
    if analytic.size == 0 or max(float(xp.abs(analytic).max()), float(xp.abs(numeric).max())) <= noise:
        return 0.0
    floor = max(1e-8, 1e-3 * float(xp.abs(numeric).max()), noise)
    scale = xp.maximum(xp.maximum(xp.abs(analytic), xp.abs(numeric)), floor)
    return float((xp.abs(analytic - numeric) / scale).max())


def numeric_gradient(scalar_fn, array, eps=EPS):
    """dL/d(array) by central differences, as a float64 host array.

    ``array`` is a float64 array of any backend, changed one element at a time in place and
    restored exactly; ``scalar_fn()`` returns L as a Python float.
    """
    host = to_numpy(array).copy()
    grad = host_zeros(host.shape)
    for index in itertools.product(*(range(n) for n in host.shape)):
        original = host[index]
        array[index] = original + eps
        plus = scalar_fn()
        array[index] = original - eps
        minus = scalar_fn()
        array[index] = original
        grad[index] = (plus - minus) / (2 * eps)
    return grad


def rounding_noise(magnitude, eps=EPS):
    """How large a central difference of a function of this ``magnitude`` (the sum of its
    terms' sizes) comes out from rounding alone, with a margin of 10 (100 hid a wrong
    gradient of 4e-7 that finite differences still measure): float64's epsilon over the step."""
    return 10 * sys.float_info.epsilon * magnitude / eps


def _backend(backend, owner, data):
    """The explicit backend, else the owner's (the layer's parameters'), else the data's
    device, else the default backend (host data goes where new layers go)."""
    if backend is not None:
        return get_backend(backend)
    if owner is not None:
        return owner
    device = backend_of(data)
    return device if device.is_device else default_backend()


def _check_arguments(owner, subject, kind, eps, tolerance):
    """A one-line error for a subject that is not a ``kind`` (a plain function has no
    ``backward`` to check) or a step or tolerance that is not a finite number > 0."""
    if not isinstance(subject, kind):
        raise TypeError(f"{owner}: expected an nnfs {kind.__name__} (an instance, with a backward to "
                        f"check), got {short_repr(subject)}")
    names = ("params", "cache") if kind is Layer else ("cache",)
    check_set_up(subject, owner, kind.__name__.lower(), names)
    number(owner, "eps", eps, low=0, low_open=True)
    number(owner, "tolerance", tolerance, low=0, low_open=True)


def _upstream_generator(owner, rng):
    """The generator of the upstream gradient: ``rng`` itself, or one seeded with it (None:
    :data:`UPSTREAM_SEED`); a one-line error for what NumPy refuses deep inside its seeding
    (a text, a negative or fractional number) and for a bool, which it would take as 0 or 1."""
    if not isinstance(rng, bool):
        try:
            return host_generator(UPSTREAM_SEED if rng is None else rng)
        except (TypeError, ValueError):
            pass
    raise ArgumentTypeError(f"{owner}: rng must be a NumPy Generator or a seed (an int >= 0, or a sequence of them), "
                            f"got {short_repr(rng)}")


def _check_shape(owner, what, grad, array):
    if tuple(grad.shape) != tuple(array.shape):
        raise ValueError(f"{owner!r}: the gradient for {what} has shape {tuple(grad.shape)}, "
                         f"expected {tuple(array.shape)}")


def _verdict(errors, raise_error):
    if raise_error and errors.message is not None:
        raise GradientCheckError(errors.message)
    return errors
