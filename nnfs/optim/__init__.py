"""Training a net: optimizers, gradient clipping and learning-rate schedules.

- :mod:`nnfs.optim.optimizers`: ``SGD``, ``Adam``, ``AdamW`` (PyTorch's update rules).
- :mod:`nnfs.optim.clip`: ``clip_grad_norm``.
- :mod:`nnfs.optim.schedules`: ``ConstantLR``, ``StepLR``, ``MultiStepLR``, ``CosineAnnealingLR``, each
  with a warm-up.

Everything is importable from here::

    from nnfs.optim import SGD, CosineAnnealingLR, clip_grad_norm
"""

from nnfs.optim.clip import clip_grad_norm
from nnfs.optim.optimizers import OPTIMIZERS, SGD, Adam, AdamW, Optimizer, make_optimizer, named_parameters_of
from nnfs.optim.schedules import (
    SCHEDULES, ConstantLR, CosineAnnealingLR, MultiStepLR, Schedule, StepLR, make_schedule, schedule_from_state,
    step_milestones)

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "OPTIMIZERS", "make_optimizer", "named_parameters_of",
           "clip_grad_norm", "Schedule", "ConstantLR", "StepLR", "MultiStepLR", "CosineAnnealingLR",
           "SCHEDULES", "make_schedule", "step_milestones", "schedule_from_state"]
