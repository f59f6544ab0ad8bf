"""A residual block against the same block in PyTorch, in float64 with the weights copied."""

import numpy as np
import pytest

from nnfs.app.models import basic_block
from nnfs.backend import to_numpy
from tests.torchnets import twin

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.torch


def _close(ours, theirs, what):
    np.testing.assert_allclose(to_numpy(ours), theirs.detach().numpy(), rtol=1e-10, atol=1e-12, err_msg=what)


@pytest.mark.parametrize("in_channels, out_channels, stride", [(4, 4, 1), (3, 5, 1), (3, 5, 2)],
                         ids=["identity", "projection", "projection-stride2"])
def test_basic_block_matches_pytorch_in_training_and_eval(backend, rng, in_channels, out_channels, stride):
    ours = basic_block(in_channels, out_channels, stride).to(backend, "float64")
    theirs = twin(ours, torch)
    assert (ours.shortcut is None) == (theirs.shortcut is None)
    for mode in ("train", "train", "eval"):  # two steps move the running statistics first
        ours.train(mode == "train")
        theirs.train(mode == "train")
        theirs.zero_grad()
        X = rng.normal(loc=0.3, scale=1.5, size=(3, in_channels, 7, 6))
        Y = ours(backend.asarray(X))
        G = rng.normal(size=Y.shape)
        dX = ours.backward(backend.asarray(G))
        Xt = torch.tensor(X, requires_grad=True)
        Yt = theirs(Xt)
        Yt.backward(torch.tensor(G))
        _close(Y, Yt, f"{mode}: output")
        _close(dX, Xt.grad, f"{mode}: input gradient")
        torch_params = dict(theirs.named_parameters())
        assert set(torch_params) == set(ours.params)
        for name, grad in ours.grads.items():
            _close(grad, torch_params[name].grad, f"{mode}: {name} gradient")
        torch_buffers = dict(theirs.named_buffers())
        for name, value in ours.buffers.items():
            _close(value, torch_buffers[name], f"{mode}: {name}")
