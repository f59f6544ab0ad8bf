"""The ready-made networks: the reference CNN's shapes and arguments, the small residual network
(sizes, structure, against the same network in PyTorch), and the default per kind of data."""

import numpy as np
import pytest

import nnfs
from nnfs.app.models import (
    MODELS, basic_block, build_model, default_model, reference_cnn, small_resnet, small_resnet_parameters)
from nnfs.backend import to_numpy
from nnfs.checks import ArgumentTypeError
from nnfs.layers import GlobalAvgPool2D, Residual
from nnfs.optim import SGD
from tests.configs import assert_plain
from tests.torchnets import twin


def test_reference_cnn_shapes_follow_channels_size_and_classes():
    net = reference_cnn(3, (13, 22), 7)
    assert net.layers[9].in_dim == 32 * 3 * 5
    assert net.layers[-1].out_dim == 7 and net.layers[0].in_channels == 3
    assert net(np.zeros((2, 3, 13, 22), np.float32)).shape == (2, 7)
    with pytest.raises(ValueError, match="at least 4x4"):
        reference_cnn(1, 3, 2)


def test_numpy_integers_build_the_same_net_with_plain_configs():
    ours = reference_cnn(np.int64(3), (np.int64(13), np.int32(22)), np.int64(7), hidden=np.prod((4, 4)))
    plain = reference_cnn(3, (13, 22), 7, hidden=16)
    configs = assert_plain([layer.get_config() for layer in ours.layers])
    assert configs == [layer.get_config() for layer in plain.layers]
    assert reference_cnn(1, np.int64(8), 2).layers[9].in_dim == 32 * 2 * 2
    with pytest.raises(ArgumentTypeError, match="reference_cnn: image_size"):
        reference_cnn(1, True, 2)


def test_reference_network_matches_pytorch_over_three_steps(backend, rng, torch):
    from torch import nn

    net = reference_cnn(3, 8, 10, backend=backend)
    model = nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(128, 128), nn.ReLU(), nn.Linear(128, 10))
    state = net.state_dict()
    with torch.no_grad():
        for index, module in enumerate(model):
            for key, tensor in list(module.named_parameters()) + list(module.named_buffers()):
                if f"{index}.{key}" in state:
                    tensor.copy_(torch.from_numpy(state[f"{index}.{key}"]))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    for _ in range(3):
        X = rng.normal(size=(16, 3, 8, 8)).astype(np.float32)
        y = rng.integers(0, 10, size=16)
        loss = net.loss(net(X), y)
        dX = net.backward(input_grad=True)
        net.update_weights(0.05)
        Xt = torch.from_numpy(X).requires_grad_(True)
        optimizer.zero_grad()
        loss_t = nn.functional.cross_entropy(model(Xt), torch.from_numpy(y))
        loss_t.backward()
        optimizer.step()
        assert abs(float(loss) - loss_t.item()) < 1e-4
        np.testing.assert_allclose(to_numpy(dX), Xt.grad.numpy(), rtol=1e-3, atol=1e-5)
    for index, module in enumerate(model):
        for key, tensor in list(module.named_parameters()) + list(module.named_buffers()):
            name = f"{index}.{key}"
            if name in state:
                np.testing.assert_allclose(net.state_dict()[name], tensor.detach().numpy(),
                                           rtol=1e-3, atol=1e-5, err_msg=name)


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
        np.testing.assert_array_equal(to_numpy(a), to_numpy(b))  # the default digits run builds exactly what it did
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
