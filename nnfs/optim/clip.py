"""Gradient clipping by the global norm."""

from nnfs.backend import get_array_module
from nnfs.checks import number
from nnfs.optim.optimizers import named_parameters_of

__all__ = ["clip_grad_norm"]


def clip_grad_norm(params, max_norm):
    """Scale all gradients in place so that their global L2 norm is at most ``max_norm``.

    As ``torch.nn.utils.clip_grad_norm_``: the factor is
    ``min(1, max_norm / (norm + 1e-6))``. Everything stays on the device: the
    norm is never read back, so there is no host synchronisation.

    Args:
        params: a Net, a layer or a list of layers.
        max_norm: the largest allowed norm (positive).

    Returns:
        The norm before clipping, a 0-d array on the gradients' device.
    """
    max_norm = number("clip_grad_norm", "max_norm", max_norm, low=0, low_open=True)
    grads = [grad for _, _, grad in named_parameters_of(params, "clip_grad_norm")]
    if not grads:
        raise ValueError("clip_grad_norm: there are no parameters to clip")
    xp = get_array_module(grads[0])
    norm = xp.sqrt(sum((grad * grad).sum() for grad in grads))
    scale = xp.minimum(max_norm / (norm + 1e-6), 1.0)
    for grad in grads:
        grad *= scale
    return xp.asarray(norm)
