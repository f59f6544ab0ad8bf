"""Learning-rate schedules: step decay and cosine annealing, each with an optional linear warm-up.

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

import math

__all__ = ["Schedule", "StepLR", "CosineAnnealingLR", "SCHEDULES", "make_schedule", "schedule_from_state"]


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

    fields = ()

    def __init__(self, optimizer, warmup_steps=0, warmup_start_factor=0.1):
        name = type(self).__name__
        if not hasattr(optimizer, "lr"):
            raise TypeError(f"{name}: expected an optimizer with an lr attribute, got {type(optimizer).__name__}")
        if isinstance(warmup_steps, bool) or not isinstance(warmup_steps, int) or warmup_steps < 0:
            raise ValueError(f"{name}: warmup_steps must be an int >= 0, got {warmup_steps!r}")
        if not isinstance(warmup_start_factor, (int, float)) or not 0 < warmup_start_factor <= 1:
            raise ValueError(f"{name}: warmup_start_factor must be in (0, 1], got {warmup_start_factor!r}")
        self.optimizer = optimizer
        self.warmup_steps = warmup_steps
        self.warmup_start_factor = float(warmup_start_factor)
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
        raise NotImplementedError

    def step(self):
        """Advance by one epoch or batch and set the optimizer's learning rate; returns it."""
        self.last_step += 1
        self.optimizer.lr = self.lr_at(self.last_step)
        return self.optimizer.lr

    @property
    def lr(self):
        return self.lr_at(self.last_step)

    def state_dict(self):
        """A JSON-able dict: the type, its arguments, ``base_lr`` and ``last_step``."""
        state = {"type": type(self).__name__, "base_lr": self.base_lr, "last_step": self.last_step,
                 "warmup_steps": self.warmup_steps, "warmup_start_factor": self.warmup_start_factor}
        state.update({key: getattr(self, key) for key in self.fields})
        return state

    def load_state_dict(self, state):
        """Restore :meth:`state_dict` output and set the optimizer's learning rate to match."""
        if not isinstance(state, dict) or state.get("type") != type(self).__name__:
            found = state.get("type") if isinstance(state, dict) else type(state).__name__
            raise ValueError(f"{type(self).__name__}.load_state_dict: the saved state is from {found!r}")
        for key in ("base_lr", "last_step", "warmup_steps", "warmup_start_factor") + self.fields:
            setattr(self, key, state[key])
        self.optimizer.lr = self.lr_at(self.last_step)
        return self

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.state_dict().items() if k != "type")
        return f"{type(self).__name__}({args})"


class StepLR(Schedule):
    """Multiply the learning rate by ``gamma`` every ``step_size`` steps (PyTorch's ``StepLR``).

    ``lr = base_lr * gamma ** (t // step_size)``, with t counted after the warm-up.

    Args:
        optimizer: an nnfs optimizer.
        step_size: steps between decays (positive int).
        gamma: decay factor; default 0.1.
        warmup_steps, warmup_start_factor: see :class:`Schedule`.
    """

    fields = ("step_size", "gamma")

    def __init__(self, optimizer, step_size, gamma=0.1, warmup_steps=0, warmup_start_factor=0.1):
        if isinstance(step_size, bool) or not isinstance(step_size, int) or step_size < 1:
            raise ValueError(f"StepLR: step_size must be a positive int, got {step_size!r}")
        if not isinstance(gamma, (int, float)) or not gamma > 0:
            raise ValueError(f"StepLR: gamma must be a positive number, got {gamma!r}")
        self.step_size = step_size
        self.gamma = float(gamma)
        super().__init__(optimizer, warmup_steps, warmup_start_factor)

    def decay(self, t):
        return self.base_lr * self.gamma ** (t // self.step_size)


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

    fields = ("T_max", "eta_min")

    def __init__(self, optimizer, T_max, eta_min=0.0, warmup_steps=0, warmup_start_factor=0.1):
        if isinstance(T_max, bool) or not isinstance(T_max, int) or T_max < 1:
            raise ValueError(f"CosineAnnealingLR: T_max must be a positive int, got {T_max!r}")
        if not isinstance(eta_min, (int, float)) or eta_min < 0:
            raise ValueError(f"CosineAnnealingLR: eta_min must be a number >= 0, got {eta_min!r}")
        self.T_max = T_max
        self.eta_min = float(eta_min)
        super().__init__(optimizer, warmup_steps, warmup_start_factor)

    def decay(self, t):
        t = min(t, self.T_max)
        return self.eta_min + (self.base_lr - self.eta_min) * (1 + math.cos(math.pi * t / self.T_max)) / 2


SCHEDULES = ("constant", "step", "cosine")


def make_schedule(name, optimizer, total_steps, warmup_steps=0):
    """Build a schedule by name for a run of ``total_steps`` calls of ``step()`` (e.g. epochs).

    - ``"constant"``: the optimizer's learning rate throughout (after the warm-up, if any).
    - ``"step"``: divided by 10 after each third of the steps that follow the warm-up.
    - ``"cosine"``: cosine annealing to 0 over the steps that follow the warm-up.

    Returns:
        A :class:`Schedule`, or None for ``"constant"`` without warm-up (nothing to schedule).

    Raises:
        ValueError: for an unknown name (listing the known ones), or a warm-up that is
            not shorter than the run.
    """
    key = str(name).strip().lower()
    if key not in SCHEDULES:
        raise ValueError(f"unknown schedule {name!r}; expected one of: {', '.join(SCHEDULES)}")
    if warmup_steps and warmup_steps >= total_steps:
        raise ValueError(
            f"the warm-up ({warmup_steps} steps) must be shorter than the run ({total_steps} steps)")
    after_warmup = total_steps - warmup_steps
    if key == "step":
        return StepLR(optimizer, step_size=max(1, math.ceil(after_warmup / 3)), gamma=0.1,
                      warmup_steps=warmup_steps)
    if key == "cosine":
        return CosineAnnealingLR(optimizer, T_max=after_warmup, warmup_steps=warmup_steps)
    if warmup_steps:  # constant after a warm-up: a step decay that never comes
        return StepLR(optimizer, step_size=after_warmup + 1, gamma=1.0, warmup_steps=warmup_steps)
    return None


def schedule_from_state(optimizer, state):
    """Rebuild the schedule that wrote ``state`` (its :meth:`~Schedule.state_dict`), driving ``optimizer``.

    Raises:
        ValueError: when ``state`` names no schedule of this module.
    """
    kinds = {cls.__name__: cls for cls in (StepLR, CosineAnnealingLR)}
    kind = state.get("type") if isinstance(state, dict) else None
    if kind not in kinds:
        raise ValueError(f"unknown saved schedule {kind!r}; expected one of: {', '.join(kinds)}")
    cls = kinds[kind]
    schedule = cls(optimizer, **{key: state[key] for key in cls.fields},
                   warmup_steps=state["warmup_steps"], warmup_start_factor=state["warmup_start_factor"])
    return schedule.load_state_dict(state)
