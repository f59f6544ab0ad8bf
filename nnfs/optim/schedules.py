"""Learning-rate schedules: constant, step decay (every few steps or at given milestones) and cosine
annealing, each with an optional linear warm-up.

A schedule sets ``optimizer.lr`` from its base learning rate (the optimizer's
``lr`` when the schedule is made) and a counter that :meth:`~Schedule.step`
advances. Whether the counter counts epochs or batches is up to the caller:
call ``scheduler.step()`` once per epoch for an epoch schedule, once per
batch for a per-step one (then ``step_size``, ``T_max`` and ``warmup_steps``
are in batches)::

    optimizer = SGD(net, lr=0.1, momentum=0.9)
    scheduler = CosineAnnealingLR(optimizer, T_max=epochs - 2, warmup_steps=2)
    for epoch in range(epochs):
        ...                  # optimizer.step() for every batch
        scheduler.step()

The learning rate is a closed form of the counter (``lr_at(t)``), so a
restored schedule continues exactly where it stopped.
"""

import bisect
import inspect
import math

from nnfs.checks import integer, number
from nnfs.text import short_repr

__all__ = ["Schedule", "ConstantLR", "StepLR", "MultiStepLR", "CosineAnnealingLR", "SCHEDULES",
           "make_schedule", "step_milestones", "schedule_from_state"]


class Schedule:
    """Base class: linear warm-up, then the decay that a subclass defines in :meth:`decay`.

    During the first ``warmup_steps`` steps the factor on the base learning rate
    rises linearly from ``warmup_start_factor`` (at t = 0) towards 1 (PyTorch's
    ``LinearLR``); from t = ``warmup_steps`` on the decay runs with its own
    counter starting at 0 (as ``SequentialLR`` chains the two).

    Args:
        optimizer: an nnfs optimizer (anything with a float attribute ``lr``).
        warmup_steps: length of the warm-up; default 0 (none).
        warmup_start_factor: factor at t = 0, in (0, 1]; default 0.1.

    Attributes:
        base_lr: the learning rate the schedule scales.
        last_step: how many times :meth:`step` was called.
    """

    def __init__(self, optimizer, warmup_steps=0, warmup_start_factor=0.1):
        name = type(self).__name__
        if not hasattr(optimizer, "lr"):
            raise TypeError(f"{name}: expected an optimizer with an lr attribute, got {type(optimizer).__name__}")
        self.optimizer = optimizer
        self.warmup_steps = integer(name, "warmup_steps", warmup_steps, minimum=0)
        self.warmup_start_factor = number(name, "warmup_start_factor", warmup_start_factor,
                                          low=0, high=1, low_open=True)
        self.base_lr = float(optimizer.lr)
        self.last_step = 0
        optimizer.lr = self.lr_at(0)

    def lr_at(self, t):
        """The learning rate after ``t`` calls of :meth:`step`."""
        if t < self.warmup_steps:
            start = self.warmup_start_factor
            return self.base_lr * (start + (1 - start) * t / self.warmup_steps)
        return self.decay(t - self.warmup_steps)

    def decay(self, t):
        """The learning rate ``t`` steps after the warm-up."""
        raise NotImplementedError(f"{type(self).__name__} defines no decay(t): a schedule of one's own gives "
                                  "the learning rate t steps after the warm-up there")

    def step(self):
        """Advance by one epoch or batch and set the optimizer's learning rate; returns it."""
        self.last_step += 1
        self.optimizer.lr = self.lr_at(self.last_step)
        return self.optimizer.lr

    @property
    def lr(self):
        return self.lr_at(self.last_step)

    # -- configs and checkpoints -------------------------------------------------------------
    def get_config(self):
        """The constructor arguments except the optimizer."""
        return {"warmup_steps": self.warmup_steps, "warmup_start_factor": self.warmup_start_factor}

    def state_dict(self):
        """A JSON-able dict: the type, :meth:`get_config`, ``base_lr`` and ``last_step``."""
        return {"type": type(self).__name__, **self.get_config(),
                "base_lr": self.base_lr, "last_step": self.last_step}

    def load_state_dict(self, state):
        """Restore :meth:`state_dict` output and set the optimizer's learning rate to match.

        Raises:
            TypeError: for a state that is not a dict.
            ValueError: for a state of another schedule, or values that do not make one.
        """
        owner = f"{type(self).__name__}.load_state_dict"
        if not isinstance(state, dict) or state.get("type") != type(self).__name__:
            if not isinstance(state, dict):
                raise TypeError(f"{owner}: expected the dict of a schedule's state_dict(), got {short_repr(state)}")
            raise ValueError(f"{owner}: the saved state is from {short_repr(state.get('type'))}")
        # Everything is checked before anything changes: a refused state leaves the schedule and
        # the optimizer's rate as they were (the constructor below sets that rate).
        lr = self.optimizer.lr
        try:  # the saved arguments go through the constructor's checks
            saved = type(self)(self.optimizer, **{key: state[key] for key in self.get_config()})
            base_lr = number(owner, "base_lr", state["base_lr"], low=0)
            last_step = integer(owner, "last_step", state["last_step"], minimum=0)
        except KeyError as error:
            raise ValueError(f"{owner}: the saved state lacks {error}") from None
        finally:
            self.optimizer.lr = lr
        for key in self.get_config():
            setattr(self, key, getattr(saved, key))
        self.base_lr, self.last_step = base_lr, last_step
        self.optimizer.lr = self.lr_at(self.last_step)
        return self

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.state_dict().items() if k != "type")
        return f"{type(self).__name__}({args})"


class ConstantLR(Schedule):
    """The base learning rate throughout, after an optional warm-up.

    Args:
        optimizer: an nnfs optimizer.
        warmup_steps, warmup_start_factor: see :class:`Schedule`.
    """

    def decay(self, t):
        return self.base_lr


class StepLR(Schedule):
    """Multiply the learning rate by ``gamma`` every ``step_size`` steps (PyTorch's ``StepLR``).

    ``lr = base_lr * gamma ** (t // step_size)``, with t counted after the warm-up.

    Args:
        optimizer: an nnfs optimizer.
        step_size: steps between decays (positive int).
        gamma: decay factor; default 0.1.
        warmup_steps, warmup_start_factor: see :class:`Schedule`.
    """

    def __init__(self, optimizer, step_size, gamma=0.1, warmup_steps=0, warmup_start_factor=0.1):
        self.step_size = integer("StepLR", "step_size", step_size, minimum=1)
        self.gamma = number("StepLR", "gamma", gamma, low=0, low_open=True)
        super().__init__(optimizer, warmup_steps, warmup_start_factor)

    def get_config(self):
        return {"step_size": self.step_size, "gamma": self.gamma, **super().get_config()}

    def decay(self, t):
        return self.base_lr * self.gamma ** (t // self.step_size)


class MultiStepLR(Schedule):
    """Multiply the learning rate by ``gamma`` at each milestone (PyTorch's ``MultiStepLR``).

    ``lr = base_lr * gamma ** m``, where m is the number of milestones <= t, with t counted
    after the warm-up: with milestones ``[2, 3]`` the rate is ``base_lr`` for t = 0 and 1,
    ``base_lr * gamma`` for t = 2, and ``base_lr * gamma ** 2`` from t = 3 on.

    Args:
        optimizer: an nnfs optimizer.
        milestones: strictly increasing positive ints (a list, tuple or 1-d array; empty: no decay).
        gamma: decay factor; default 0.1.
        warmup_steps, warmup_start_factor: see :class:`Schedule`.
    """

    def __init__(self, optimizer, milestones, gamma=0.1, warmup_steps=0, warmup_start_factor=0.1):
        if isinstance(milestones, (str, bytes)) or not hasattr(milestones, "__len__"):
            raise TypeError(f"MultiStepLR: milestones must be a list of positive ints, got {short_repr(milestones)}")
        self.milestones = [integer("MultiStepLR", "milestones", m, minimum=1) for m in milestones]
        if any(a >= b for a, b in zip(self.milestones, self.milestones[1:])):
            # PyTorch counts a repeated milestone twice; a list out of order is almost always a slip
            raise ValueError(f"MultiStepLR: milestones must be strictly increasing, got {short_repr(list(milestones))}")
        self.gamma = number("MultiStepLR", "gamma", gamma, low=0, low_open=True)
        super().__init__(optimizer, warmup_steps, warmup_start_factor)

    def get_config(self):
        return {"milestones": list(self.milestones), "gamma": self.gamma, **super().get_config()}

    def decay(self, t):
        return self.base_lr * self.gamma ** bisect.bisect_right(self.milestones, t)


class CosineAnnealingLR(Schedule):
    """Cosine decay from the base learning rate to ``eta_min`` over ``T_max`` steps.

    ``lr = eta_min + (base_lr - eta_min) * (1 + cos(pi * t / T_max)) / 2`` for
    t (counted after the warm-up) up to ``T_max``, as PyTorch's
    ``CosineAnnealingLR``; after ``T_max`` the rate stays at ``eta_min``
    (PyTorch's would rise again along the cosine).

    Args:
        optimizer: an nnfs optimizer.
        T_max: steps from the base rate down to ``eta_min`` (positive int).
        eta_min: the final learning rate; default 0.
        warmup_steps, warmup_start_factor: see :class:`Schedule`.
    """

    def __init__(self, optimizer, T_max, eta_min=0.0, warmup_steps=0, warmup_start_factor=0.1):
        self.T_max = integer("CosineAnnealingLR", "T_max", T_max, minimum=1)
        self.eta_min = number("CosineAnnealingLR", "eta_min", eta_min, low=0)
        super().__init__(optimizer, warmup_steps, warmup_start_factor)

    def get_config(self):
        return {"T_max": self.T_max, "eta_min": self.eta_min, **super().get_config()}

    def decay(self, t):
        t = min(t, self.T_max)
        return self.eta_min + (self.base_lr - self.eta_min) * (1 + math.cos(math.pi * t / self.T_max)) / 2


#: The schedules by the names :func:`make_schedule` and the example's ``--schedule`` take.
SCHEDULES = {"constant": ConstantLR, "step": MultiStepLR, "cosine": CosineAnnealingLR}

#: Every schedule a saved state may name: a run saved before "step" meant milestones continues
#: with the StepLR it saved.
SAVED_SCHEDULES = {cls.__name__: cls for cls in (ConstantLR, StepLR, MultiStepLR, CosineAnnealingLR)}


def step_milestones(steps, parts=3):
    """Where the "step" schedule divides the rate: ``steps`` cut into ``parts`` runs of steps
    as even as possible, the earlier ones longer by one where it does not divide.

    The milestones are ``ceil(k * steps / parts)`` for k = 1 .. parts - 1; a run of fewer steps
    than parts has one part per step. For 3 parts: 1 step: ``[]`` (no decay), 2: ``[1]``,
    3: ``[1, 2]``, 4: ``[2, 3]``, 5: ``[2, 4]``, 7: ``[3, 5]``, 10: ``[4, 7]``.

    Args:
        steps: the steps after the warm-up (positive int).
        parts: how many runs of steps, each at a tenth of the rate of the one before (positive int).
    """
    steps = integer("step_milestones", "steps", steps, minimum=1)
    parts = min(integer("step_milestones", "parts", parts, minimum=1), steps)
    return [-(-k * steps // parts) for k in range(1, parts)]  # exact integer ceilings


def make_schedule(name, optimizer, total_steps, warmup_steps=0):
    """Build a schedule by name for a run of ``total_steps`` calls of ``step()`` (e.g. epochs).

    - ``"constant"``: the optimizer's learning rate throughout (after the warm-up, if any).
    - ``"step"``: the steps after the warm-up cut into three parts as even as possible (the
      earlier ones longer by one where they do not divide: 7 epochs train 3, 2 and 2 epochs),
      the rate divided by 10 at the start of the second and the third
      (:func:`step_milestones`, a :class:`MultiStepLR`); a run of one or two steps after the
      warm-up has as many parts as steps.
    - ``"cosine"``: cosine annealing to 0 over the steps that follow the warm-up.

    Returns:
        A :class:`Schedule`, or None for ``"constant"`` without warm-up (nothing to schedule).

    Raises:
        ValueError: for an unknown name (listing the known ones), or a warm-up that is
            not shorter than the run.
        TypeError: for an optimizer without an ``lr``.
    """
    key = str(name).strip().lower()
    if key not in SCHEDULES:
        raise ValueError(f"make_schedule: unknown schedule {short_repr(name)}; expected one of: {', '.join(SCHEDULES)}")
    total_steps = integer("make_schedule", "total_steps", total_steps, minimum=1)
    warmup_steps = integer("make_schedule", "warmup_steps", warmup_steps, minimum=0)
    if warmup_steps and warmup_steps >= total_steps:
        raise ValueError(
            f"make_schedule: the warm-up ({warmup_steps} steps) must be shorter than the run ({total_steps} steps)")
    if not hasattr(optimizer, "lr"):  # checked here too: a constant rate returns no schedule to check it
        raise TypeError(f"make_schedule: expected an optimizer with an lr attribute, got {type(optimizer).__name__}")
    after_warmup = total_steps - warmup_steps
    if key == "step":
        return MultiStepLR(optimizer, step_milestones(after_warmup), gamma=0.1, warmup_steps=warmup_steps)
    if key == "cosine":
        return CosineAnnealingLR(optimizer, T_max=after_warmup, warmup_steps=warmup_steps)
    return ConstantLR(optimizer, warmup_steps=warmup_steps) if warmup_steps else None


def schedule_from_state(optimizer, state):
    """Rebuild the schedule that wrote ``state`` (its :meth:`~Schedule.state_dict`), driving ``optimizer``.

    Raises:
        ValueError: when ``state`` names no schedule of this module.
    """
    kind = state.get("type") if isinstance(state, dict) else None
    if kind not in SAVED_SCHEDULES:
        raise ValueError(f"schedule_from_state: unknown saved schedule {short_repr(kind)}; expected one of: "
                         f"{', '.join(SAVED_SCHEDULES)}")
    cls = SAVED_SCHEDULES[kind]
    arguments = list(inspect.signature(cls).parameters)[1:]  # all but the optimizer
    try:
        schedule = cls(optimizer, **{key: state[key] for key in arguments if key in state})
    except TypeError as error:  # a required argument is missing from the saved state
        raise ValueError(f"schedule_from_state: damaged saved schedule {kind}: {error}") from None
    return schedule.load_state_dict(state)
