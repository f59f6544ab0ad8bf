"""reference_cnn: its shapes, its arguments, and three training steps against the same net in PyTorch."""

import numpy as np
import pytest

from nnfs.app.models import reference_cnn
from nnfs.backend import to_numpy
from nnfs.checks import ArgumentTypeError
from tests.configs import assert_plain


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
