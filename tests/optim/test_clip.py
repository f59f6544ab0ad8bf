"""clip_grad_norm: against PyTorch, on the device, in the parameters' dtype."""

import numpy as np
import pytest

from nnfs.backend import to_numpy
from nnfs.optim import clip_grad_norm
from tests.nets import mlp as small_net, random_grads, set_grads


def test_a_list_that_holds_one_layer_twice_is_refused():
    """Its gradients counted twice in the norm (sqrt(2) times too large)."""
    from nnfs.layers import Linear

    layer = Linear(3, 2)
    with pytest.raises(ValueError, match=r"^clip_grad_norm: the same Linear appears twice in the list \(layers 0 "
                                         r"and 2\)"):
        clip_grad_norm([layer, Linear(2, 2), layer], 1.0)


@pytest.mark.parametrize("max_norm", [0.5, 1e3])
def test_clip_grad_norm_matches_pytorch(backend, rng, max_norm, torch):
    net = small_net(backend)
    grads = random_grads(net, rng)
    set_grads(net, grads, backend)
    tensors = [torch.zeros(g.shape, dtype=torch.float64, requires_grad=True) for g in grads.values()]
    for tensor, g in zip(tensors, grads.values()):
        tensor.grad = torch.tensor(g)
    expected_norm = torch.nn.utils.clip_grad_norm_(tensors, max_norm)
    norm = clip_grad_norm(net, max_norm)
    assert backend.is_array(norm) and norm.ndim == 0  # stays on the device: no sync
    np.testing.assert_allclose(to_numpy(norm), expected_norm.numpy(), rtol=1e-12)
    for (_, _, grad), tensor in zip(net.named_parameters(), tensors):
        np.testing.assert_allclose(to_numpy(grad), tensor.grad.numpy(), rtol=1e-12)
    clipped = np.sqrt(sum((to_numpy(g) ** 2).sum() for _, _, g in net.named_parameters()))
    assert clipped <= max_norm * (1 + 1e-9)


def test_clip_grad_norm_keeps_float32(rng):
    net = small_net("numpy", dtype="float32")
    set_grads(net, random_grads(net, rng), net.backend)
    norm = clip_grad_norm(net, 0.1)
    assert norm.dtype == np.float32
    assert all(g.dtype == np.float32 for _, _, g in net.named_parameters())


@pytest.mark.parametrize("max_norm", [0.0, -1.0, float("nan"), float("inf"), True, "1"])
def test_max_norm_must_be_a_positive_finite_number(max_norm):
    with pytest.raises(ValueError, match="clip_grad_norm: max_norm"):
        clip_grad_norm(small_net("numpy"), max_norm)


def test_max_norm_may_be_a_numpy_number(rng):
    net = small_net("numpy")
    set_grads(net, random_grads(net, rng), net.backend)
    norm = float(clip_grad_norm(net, np.int64(1)))
    clipped = np.sqrt(sum((to_numpy(g) ** 2).sum() for _, _, g in net.named_parameters()))
    assert norm > 1 and clipped == pytest.approx(1.0)
