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
    from nnfs.layers import Linear
    from nnfs.losses import MeanSquareLoss
    from nnfs.net import Net

    net = Net([Linear(4, 3)], MeanSquareLoss())
    batches = [(np.zeros((8, 4), np.float32), np.eye(3, dtype=np.float32)[[0] * 8])]
    for loop, owner in ((lambda: train_epoch(net, batches, lr=0.1), "train_epoch"),
                        (lambda: evaluate(net, batches), "evaluate")):
        with pytest.raises(TypeError, match=rf"^{owner}: the epoch loop counts accuracy against the class targets "
                                            r"a loss keeps as `target` \(CrossEntropyLoss does\), and "
                                            r"MeanSquareLoss keeps none; train it with a loop of your own$"):
            loop()


def test_a_classification_loss_of_ones_own_trains_in_the_epoch_loop_once_it_keeps_its_targets(rng):
    """The "Write your own loss" example of docs/layers.md: refused as "no classification loss"
    until it kept a target; one set in __init__ counts as one defined on the class."""
    from nnfs.layers import Linear
    from nnfs.losses import CrossEntropyLoss, Loss
    from nnfs.net import Net
    from tests.test_docs import loss_class

    X, y = rng.normal(size=(12, 4)).astype(np.float32), rng.integers(0, 3, 12)
    batches = [(X[:8], y[:8]), (X[8:], y[8:])]
    nnfs.seed(0)
    net = Net([Linear(4, 3)], loss_class()(0.0))  # no smoothing: cross-entropy itself
    nnfs.seed(0)
    reference = Net([Linear(4, 3)], CrossEntropyLoss())
    (trained, scored), (trained_ce, scored_ce) = ((train_epoch(model, batches, lr=0.1), evaluate(model, batches))
                                                  for model in (net, reference))
    assert (trained.accuracy, scored.accuracy) == (trained_ce.accuracy, scored_ce.accuracy)
    assert scored.loss == pytest.approx(scored_ce.loss, rel=1e-6)

    class KeepsTarget(Loss):
        def __init__(self):
            super().__init__()
            self.inner, self.target = CrossEntropyLoss(), None

        def forward(self, prediction, target):
            loss = self.inner(prediction, target)
            self.target = self.inner.target
            return loss

        def backward(self):
            return self.inner.backward()

    assert evaluate(Net([Linear(4, 3)], KeepsTarget()), batches).samples == 12


def _tiny(rng, n=8):
    images, labels = blobs(rng, n=n)
    pre = Preprocessing.fit(images, range(n), (8, 8), 1)
    return reference_cnn(1, 8, 2, hidden=4), DataLoader(images, labels, range(n), 4, pre)


@pytest.mark.parametrize("batches", [[], [(np.zeros((0, 1, 8, 8), np.float32), np.zeros(0, np.int64))] * 2])
def test_an_epoch_over_no_samples_is_refused_not_scored_zero(rng, batches):
    """An empty loader was evaluated at loss 0 and accuracy 0, as if the model had scored 0 %."""
    net, _ = _tiny(rng)
    before = net.state_dict()["0.weight"].copy()
    described = f"{len(batches)} batch{'es' * (len(batches) != 1)}"
    with pytest.raises(ValueError, match=rf"^evaluate: the loader gave no samples \({described}\): "
                                         r"nothing to evaluate$"):
        evaluate(net, batches)
    with pytest.raises(ValueError, match=rf"^train_epoch: the loader gave no samples \({described}\): "
                                         r"nothing to train on$"):
        train_epoch(net, batches, lr=0.1)
    assert np.array_equal(net.state_dict()["0.weight"], before)


def test_a_loader_that_does_not_yield_pairs_is_named_not_unpacked(rng):
    """A triple failed with "too many values to unpack" from inside the loop; a bare batch of two
    images was unpacked into X and y, one image each."""
    net, loader = _tiny(rng)
    X, y = next(iter(loader))
    for loop in (lambda batches: train_epoch(net, batches, lr=0.1), lambda batches: evaluate(net, batches)):
        with pytest.raises(TypeError, match=r"^(train_epoch|evaluate): the loader must yield \(X, y\) pairs, got a "
                                            r"tuple of 3 as batch 1$"):
            loop([(X, y), (X, y, None)])
        with pytest.raises(TypeError, match=r"the loader must yield \(X, y\) pairs, got a ndarray as batch 0$"):
            loop([X[:2]])


def test_a_running_result_of_no_samples_is_not_a_score():
    from nnfs.app.loop import RunningMetrics

    result = RunningMetrics().result()
    assert result.samples == 0 and np.isnan(result.loss) and np.isnan(result.accuracy)


def test_lr_and_an_optimizer_together_are_refused(rng):
    """The optimizer's own rate ruled and lr was dropped without a word."""
    from nnfs.optim import SGD

    net, loader = _tiny(rng)
    optimizer = SGD(net, lr=0.01)
    with pytest.raises(ValueError, match=r"^train_epoch: give lr or an optimizer, not both: the optimizer steps "
                                         r"at its own rate \(0.01\), so lr=0.5 would be ignored$"):
        train_epoch(net, loader, lr=0.5, optimizer=optimizer)
    assert optimizer.step_count == 0
    train_epoch(net, loader, optimizer=optimizer)
    assert optimizer.step_count == 2


def test_an_optimizer_of_another_net_is_refused_and_one_of_some_layers_is_taken(rng):
    """It updated the other net from stale gradients and left this one untouched."""
    from nnfs.optim import SGD

    net, loader = _tiny(rng)
    other = reference_cnn(1, 8, 2, hidden=4)
    with pytest.raises(ValueError, match=r"^train_epoch: the optimizer updates \d+ parameters that are not the "
                                         r"net's \(the first is its '0.weight'\): was it made for another net\?$"):
        train_epoch(net, loader, optimizer=SGD(other, lr=0.1))
    last = net.layers[-1]
    head = SGD([last], lr=0.1)  # fine-tuning the last layer only: its parameters are the net's
    first = net.state_dict()["0.weight"].copy()
    train_epoch(net, loader, optimizer=head)
    assert head.step_count == 2 and np.array_equal(net.state_dict()["0.weight"], first)


@pytest.mark.parametrize("call, message", [
    (lambda net, loader: train_epoch(net, loader, lr=float("nan")), r"^train_epoch: lr must be a finite number >= 0, got nan$"),
    (lambda net, loader: train_epoch(net, loader, lr="0.1"), r"^train_epoch: lr must be a number, got '0.1'$"),
    (lambda net, loader: train_epoch(net, loader, lr=-0.1), r"^train_epoch: lr must be a finite number >= 0"),
    (lambda net, loader: train_epoch(net, loader, optimizer=0.1),
     r"^train_epoch: optimizer must be an optimizer \(with step\), got float$"),
    (lambda net, loader: train_epoch(net, loader, lr=0.1, progress=True),
     r"^train_epoch: progress must be a ProgressBar or None \(with due, update, close\), got bool$"),
    (lambda net, loader: evaluate(net, loader, progress="bar"),
     r"^evaluate: progress must be a ProgressBar or None \(with due, update, close\), got str$"),
    (lambda net, loader: train_epoch(net, loader, lr=0.1, guard=25),
     r"^train_epoch: guard must be a FiniteGuard or None \(with __call__, check\), got int$"),
    (lambda net, loader: evaluate(loader, net), r"^evaluate: model must be a Net \(or a DataParallel around one\), "
                                               r"got DataLoader$"),
])
def test_wrong_arguments_are_one_line_before_any_batch(rng, call, message):
    """Each was an AttributeError from inside the loop, or a rate refused after the first forward pass."""
    net, loader = _tiny(rng)
    before = net.state_dict()["0.weight"].copy()
    with pytest.raises((TypeError, ValueError), match=message):
        call(net, loader)
    assert loader.passes == 0 and np.array_equal(net.state_dict()["0.weight"], before)


def test_a_loss_of_ones_own_whose_target_property_reads_its_cache_trains():
    """The loop looks the attribute up without reading it: before the first batch a property
    reading the cache would raise. A net without a loss is said to have none."""
    from nnfs.layers import Linear
    from nnfs.losses import CrossEntropyLoss, Loss
    from nnfs.net import Net

    class Wrapped(Loss):
        def __init__(self):
            super().__init__()
            self.inner = CrossEntropyLoss()

        def forward(self, prediction, target):
            value = self.inner(prediction, target)
            self.cache["target"] = self.inner.target
            return value

        def backward(self):
            return self.inner.backward()

        @property
        def target(self):
            return self.from_cache("target")

    X = np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32)
    y = np.array([0, 1, 2, 1])
    assert evaluate(Net([Linear(3, 3)], Wrapped()), [(X, y)]).samples == 4
    with pytest.raises(TypeError, match=r"^evaluate: the net has no loss; give it one"):
        evaluate(Net([Linear(3, 3)]), [(X, y)])
