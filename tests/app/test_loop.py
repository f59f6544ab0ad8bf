"""The epoch loop (train_epoch, evaluate): learning, metrics, optimizers, label layouts and checks.

Data-parallel epochs are compared with these in tests/distributed/test_threads.py.
"""

import numpy as np
import pytest

import nnfs
from nnfs.app.loop import evaluate, train_epoch
from nnfs.app.models import reference_cnn
from nnfs.data import DataLoader, Preprocessing


def blobs(rng, n=48, size=8):
    """Two classes of images: a bright left half or a bright right half, plus noise."""
    labels = rng.integers(0, 2, n)
    images = rng.integers(0, 60, (n, 1, size, size))
    for i, label in enumerate(labels):
        half = slice(0, size // 2) if label == 0 else slice(size // 2, size)
        images[i, 0, :, half] += 180
    return images.astype(np.uint8), labels.astype(np.int64)


def test_training_learns_and_metrics_match_a_host_recount(backend, rng):
    images, labels = blobs(rng)
    pre = Preprocessing.fit(images, range(len(images)), (8, 8), 1)
    loader = DataLoader(images, labels, range(len(images)), 10, pre, shuffle=True, seed=0)
    nnfs.seed(0)
    net = reference_cnn(1, 8, 2, hidden=16, backend=backend)
    first = evaluate(net, loader)
    for _ in range(4):
        result = train_epoch(net, loader, lr=0.05)
    assert result.samples == 48 and result.seconds > 0
    final = evaluate(net, loader)
    assert final.loss < first.loss and final.accuracy >= 0.9
    assert not net.training
    # The device-side running sums agree with a plain recount on the host.
    predictions = net.predict(pre.apply(images))
    assert final.accuracy == pytest.approx(float((predictions == labels).mean()))
    assert isinstance(final.loss, float) and isinstance(final.accuracy, float)


def test_train_epoch_uses_an_optimizer_when_given(rng):
    images, labels = blobs(rng, n=8)
    pre = Preprocessing.fit(images, range(8), (8, 8), 1)
    loader = DataLoader(images, labels, range(8), 4, pre)
    net = reference_cnn(1, 8, 2, hidden=4)

    class Counting:
        steps = 0

        def step(self):
            Counting.steps += 1

    before = net.state_dict()["0.weight"].copy()
    train_epoch(net, loader, optimizer=Counting())
    assert Counting.steps == 2
    assert np.array_equal(net.state_dict()["0.weight"], before)  # only the optimizer updates
    with pytest.raises(ValueError, match="lr"):
        train_epoch(net, loader)


def test_accuracy_is_the_same_for_every_label_layout(backend, rng):
    nnfs.seed(0)
    net = reference_cnn(1, 8, 3, hidden=8, backend=backend)
    X = rng.normal(size=(5, 1, 8, 8)).astype(np.float32)
    labels = rng.integers(0, 3, 5)
    layouts = {"(N,)": labels, "(N, 1)": labels[:, None], "one-hot": np.eye(3)[labels]}
    results = {name: evaluate(net, [(X, y)]) for name, y in layouts.items()}
    expected = float((net.predict(X) == labels).mean())
    for name, result in results.items():
        assert result.accuracy == pytest.approx(expected), name
        assert result.loss == pytest.approx(results["(N,)"].loss, rel=1e-5), name


def test_out_of_range_labels_are_caught_on_every_backend(backend, rng):
    # CuPy wraps out-of-range indices around instead of raising: the labels must be
    # checked while they are still host arrays, whatever the net's device.
    images, labels = blobs(rng, n=8)
    labels[3] = 2  # a net with 2 classes
    pre = Preprocessing.fit(images, range(8), (8, 8), 1)
    net = reference_cnn(1, 8, 2, hidden=4, backend=backend)
    with pytest.raises(ValueError, match=r"labels must be in \[0, 2\)"):
        train_epoch(net, DataLoader(images, labels, range(8), 4, pre), lr=0.01)
    with pytest.raises(ValueError, match=r"labels must be in \[0, 2\)"):
        evaluate(net, DataLoader(images, labels, range(8), 4, pre))


def test_the_epoch_loop_needs_a_classification_loss():
    """It counts accuracy against class targets: a MeanSquareLoss net was a raw AttributeError."""
    import numpy as np

    from nnfs.app.loop import train_epoch
    from nnfs.layers import Linear
    from nnfs.losses import MeanSquareLoss
    from nnfs.net import Net

    net = Net([Linear(4, 3)], MeanSquareLoss())
    with pytest.raises(TypeError, match=r"^the epoch loop counts accuracy, so it needs a classification loss "
                                        r"\(CrossEntropyLoss\), got MeanSquareLoss$"):
        train_epoch(net, [(np.zeros((8, 4), np.float32), np.eye(3, dtype=np.float32)[[0] * 8])], lr=0.1)
