"""Training-loop safety: stop with a clear message when the loss stops being finite.

A NaN or infinite loss poisons every weight within one step and training
then carries on silently. :func:`check_finite` catches it, naming the step.
It has to read the loss back to the host, which on a GPU waits for all the
queued work (a synchronisation). :class:`FiniteGuard` keeps that cost low: it
checks every step on the device (no transfer) and reads one flag back only
every ``every`` steps, still naming the first bad step exactly.
"""

import math

from nnfs.backend import get_array_module, to_numpy
from nnfs.checks import integer

__all__ = ["check_finite", "FiniteGuard", "NonFiniteLossError", "first_non_finite"]


class NonFiniteLossError(FloatingPointError):
    """The loss became NaN or infinite: training cannot go on from these weights.

    Attributes:
        value: the first non-finite loss (a float: nan, inf or -inf).
        step: the step that produced it.
    """

    def __init__(self, value, step):
        super().__init__(
            f"the loss became {value} at step {step}; training stopped (lower the learning rate, "
            "clip gradients with nnfs.optim.clip_grad_norm, or check the data for NaN/inf)")
        self.value, self.step = value, step


def _fail(value, step):
    raise NonFiniteLossError(value, step)


def check_finite(loss, step):
    """Raise :class:`NonFiniteLossError` (a FloatingPointError) naming ``step`` if ``loss`` is NaN or infinite.

    Reads the loss back (a GPU synchronisation); see :class:`FiniteGuard` for a cheaper check.

    Args:
        loss: the loss, a 0-d array or a number.
        step: the step number to report.

    Returns:
        The loss as a Python float.
    """
    value = float(loss)
    if not math.isfinite(value):
        _fail(value, step)
    return value


class FiniteGuard:
    """Check every loss on the device; read the verdict back every ``every`` steps.

    Call it once per step with the loss. The first non-finite loss and its step
    are recorded on the loss's device without any transfer; every ``every``-th
    call (and on :meth:`check`) the record is read back and a
    :class:`NonFiniteLossError` naming that first bad step is raised. ``every=1`` checks as
    :func:`check_finite` does; a larger value saves all but one sync in
    ``every`` and lets training run at most ``every - 1`` steps past the bad one.
    Call :meth:`check` after the loop so that the last steps are covered too.

    Args:
        every: how many calls between read-backs (positive int); default 1.

    Attributes:
        calls: how many losses were recorded.
    """

    def __init__(self, every=1):
        self.every = integer("FiniteGuard", "every", every, minimum=1)
        self.calls = 0
        self._first_step = None
        self._first_value = None

    def __call__(self, loss, step):
        """Record ``loss`` for ``step``; raise if a recorded loss was not finite (every ``every`` calls)."""
        xp = get_array_module(loss)
        loss = xp.asarray(loss)
        newly_bad = ~xp.isfinite(loss)
        if self._first_step is None:
            self._first_step = xp.where(newly_bad, step, -1)
            self._first_value = loss.copy()
        else:
            newly_bad &= self._first_step < 0
            self._first_step = xp.where(newly_bad, step, self._first_step)
            self._first_value = xp.where(newly_bad, loss, self._first_value)
        self.calls += 1
        if self.calls % self.every == 0:
            self.check()

    def check(self):
        """Read the record back now and raise if any recorded loss was not finite."""
        if self._first_step is not None and int(self._first_step) >= 0:
            _fail(float(self._first_value), int(self._first_step))


def first_non_finite(net, optimizer=None):
    """Where ``net`` (or ``optimizer``'s state) first holds a NaN or an infinity:
    ``(description, "nan" or "inf")``, or None.

    The loss can stay finite while the model is not: with a learning rate far too high,
    BatchNorm's running variance overflows to inf while training goes on, since each batch
    is normalised with its own statistics; the model saved then would be useless (in eval
    mode every output becomes the same). So a training program checks the parameters and
    buffers too, where it reads the validation loss anyway (it reads every array back: for
    the end of an epoch, not for every step).

    The optimizer's state can overflow alone too: Adam's second moment is the square of the
    gradient, inf from a gradient of 2e19, while its update (the first moment over the root of
    the second) and so the weights stay finite. A checkpoint of that state would be refused, so
    it is checked with the net, before any file of the epoch is written.

    Returns:
        e.g. ``("layer 5 (BatchNorm2D) running_var", "inf")``, for the first array in layer
        order, parameters before buffers, then the optimizer's (``("optimizer state
        0.weight.exp_avg_sq", "inf")``); None when every value is finite.
    """
    arrays = [(f"layer {index} ({type(layer).__name__}) {key}", value)
              for index, layer in enumerate(net.layers)
              for store in (layer.params, layer.buffers) for key, value in store.items()]
    arrays += [(f"optimizer state {name}.{slot}", value)
               for name, slots in getattr(optimizer, "state", {}).items() for slot, value in slots.items()]
    if not arrays:
        return None
    xp = get_array_module(arrays[0][1])
    # One flag per array on the device, read back at once: one synchronisation, not one per array.
    finite = to_numpy(xp.stack([xp.isfinite(value).all() for _, value in arrays]))
    for (name, value), ok in zip(arrays, finite):
        if not ok:
            return name, "nan" if bool(xp.isnan(value).any()) else "inf"
    return None
