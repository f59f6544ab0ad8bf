"""The ready-made networks: the small residual network against PyTorch, sizes, the default per data kind."""

import numpy as np
import pytest

import nnfs
from nnfs.app.models import (
    MODELS, basic_block, build_model, default_model, reference_cnn, small_resnet, small_resnet_parameters)
from nnfs.backend import to_numpy
from nnfs.layers import GlobalAvgPool2D, Residual
from nnfs.optim import SGD
from tests.torchnets import twin


def n_parameters(net):
    return sum(p.size for p in net.parameters())


def test_the_residual_network_has_the_same_parameters_for_every_image_size():
    counts = {n_parameters(small_resnet(3, size, 10)) for size in (16, 64, 224, (48, 80))}
    assert counts == {78_378} == {small_resnet_parameters(3, 10)}
    for channels, classes, widths, blocks in [(1, 2, (4, 4, 8), 2), (3, 7, (8, 16, 16), 3)]:
        built = small_resnet(channels, 16, classes, widths=widths, blocks=blocks)
        assert n_parameters(built) == small_resnet_parameters(channels, classes, widths, blocks)
    assert n_parameters(reference_cnn(3, 64, 10)) > 10 * n_parameters(reference_cnn(3, 16, 10))


@pytest.mark.parametrize("size", [(4, 4), (7, 9), (28, 28), (64, 48)])
def test_the_residual_network_takes_any_size_and_gives_logits(backend, rng, size):
    net = small_resnet(1, size, 4, backend=backend)
    out = net(rng.normal(size=(2, 1) + size))
    assert out.shape == (2, 4) and out.dtype == "float32"


def test_structure_stages_downsample_and_widen():
    net = small_resnet(3, 32, 10, widths=(8, 16, 24), blocks=2)
    blocks = [layer for layer in net.layers if isinstance(layer, Residual)]
    assert len(blocks) == 6
    assert [block.body[0].stride for block in blocks] == [(1, 1), (1, 1), (2, 2), (1, 1), (2, 2), (1, 1)]
    assert [block.shortcut is None for block in blocks] == [True, True, False, True, False, True]
    assert net.layers[0].stride == (2, 2) and small_resnet(3, 32, 10, stem_stride=1).layers[0].stride == (1, 1)
    assert isinstance(net.layers[-2], GlobalAvgPool2D) and net.layers[-1].in_dim == 24
    names = [name for name, _, _ in net.named_parameters()]
    assert names[4:6] == ["3.body.0.weight", "3.body.0.bias"] and "7.shortcut.0.weight" in names


@pytest.mark.parametrize("kwargs, message", [
    ({"widths": (8, 16)}, "widths must give the channels of 3 stages"),
    ({"blocks": 0}, "blocks must be a positive int"),
    ({"stem_stride": 3}, "stem_stride must be one of 1, 2"),
    ({"image_size": 3}, "images must be at least 4x4")])
def test_bad_arguments_are_named(kwargs, message):
    arguments = {"in_channels": 3, "image_size": 16, "n_classes": 2, **kwargs}
    with pytest.raises(ValueError, match=message):
        small_resnet(**arguments)


def test_models_by_name_and_the_default_per_kind_of_data():
    assert set(MODELS) == {"cnn", "resnet"}
    assert default_model("photos") == "resnet"
    assert default_model("small") == "cnn" and default_model(None) == "cnn"
    nnfs.seed(0)
    built = build_model("cnn", 1, 28, 10)
    nnfs.seed(0)
    reference = reference_cnn(1, 28, 10)
    assert repr(built.layers) == repr(reference.layers)
    for (_, a, _), (_, b, _) in zip(built.named_parameters(), reference.named_parameters()):
        np.testing.assert_array_equal(a, b)  # the default digits run builds exactly what it did
    with pytest.raises(ValueError, match="name must be one of 'cnn', 'resnet', got 'vgg'"):
        build_model("vgg", 1, 28, 10)


def test_basic_block_uses_the_identity_only_when_the_shape_stays():
    assert basic_block(8, 8).shortcut is None
    assert basic_block(8, 8, stride=2).shortcut is not None and basic_block(4, 8).shortcut is not None


def test_training_steps_match_the_same_network_in_pytorch(backend, rng):
    torch = pytest.importorskip("torch")
    net = small_resnet(3, (12, 10), 5, widths=(4, 6, 8), backend=backend, dtype="float64")
    model = twin(net, torch)
    ours, theirs = SGD(net, lr=0.05, momentum=0.9), torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    names = [name for name, _, _ in net.named_parameters()]
    assert names == [name for name, _ in model.named_parameters()]

    def close(a, b, what):
        np.testing.assert_allclose(to_numpy(a), b.detach().numpy(), rtol=1e-9, atol=1e-11, err_msg=what)

    for step in range(3):
        X, y = rng.normal(size=(6, 3, 12, 10)), rng.integers(0, 5, size=6)
        loss = net.loss(net(X), y)
        dX = net.backward(input_grad=True)
        Xt = torch.tensor(X, requires_grad=True)
        theirs.zero_grad()
        loss_t = torch.nn.functional.cross_entropy(model(Xt), torch.tensor(y))
        loss_t.backward()
        close(loss, loss_t, f"loss, step {step}")
        close(dX, Xt.grad, f"input gradient, step {step}")
        torch_params = dict(model.named_parameters())
        for name, _, grad in net.named_parameters():
            close(grad, torch_params[name].grad, f"{name} gradient, step {step}")
        ours.step()
        theirs.step()
    torch_state = model.state_dict()
    for name, value in net.state_dict().items():
        close(value, torch_state[name], f"{name} after 3 steps")
    net.eval()
    model.eval()
    X = rng.normal(size=(4, 3, 12, 10))
    close(net(X), model(torch.tensor(X)), "eval output")
