"""Batches in shards on several threads (nnfs.parallel) give the single-threaded results."""

import copy
import os
import pickle
import signal
import threading
import time
import tracemalloc

import numpy as np
import pytest

import nnfs
from nnfs import parallel, replicas
from nnfs.activations import LeakyReLU, ReLU, Sigmoid, Tanh
from nnfs.app.cli import train as program
from nnfs.backend import to_numpy, using
from nnfs.layers import (AvgPool2D, BatchNorm1D, BatchNorm2D, Conv2D, Dropout, Flatten,
                         GlobalAvgPool2D, Linear, MaxPool2D)
from nnfs.layers.base import Layer
from nnfs.losses import CrossEntropyLoss
from nnfs.net import Net
from nnfs.optim import SGD, Adam
from tests import custom
from tests.imagefolders import make_folder


@pytest.fixture
def small_shards(monkeypatch):
    """Shards of any size, so that the tests' small batches are cut too."""
    monkeypatch.setattr(parallel, "MIN_SHARD_SAMPLES", 1)
    monkeypatch.setattr(parallel, "MIN_SHARD_ELEMENTS", 1)


def conv_net(batchnorm, dropout=0.0, dtype="float64", seed=0):
    """A CNN for (N, 2, 8, 8) images on the CPU backend; BatchNorm and Dropout on request."""
    nnfs.seed(seed)
    norm2d = [BatchNorm2D(4)] if batchnorm else []
    norm1d = [BatchNorm1D(6)] if batchnorm else []
    drop = [Dropout(dropout)] if dropout else []
    layers = [Conv2D(2, 4, 3, padding=1), *norm2d, ReLU(), MaxPool2D(2),
              Conv2D(4, 3, (2, 3), padding=(1, 0)), LeakyReLU(0.1), AvgPool2D(2), Sigmoid(),
              Flatten(), Linear(3 * 2 * 1, 6), *norm1d, Tanh(), *drop, Linear(6, 3)]
    return Net(layers, CrossEntropyLoss(), backend="numpy", dtype=dtype)


def batches(count, n, seed=1):
    rng = np.random.default_rng(seed)
    return [(rng.normal(size=(n, 2, 8, 8)), rng.integers(0, 3, size=n)) for _ in range(count)]


def train(net, data, threads, optimizer=None):
    """SGD steps (or ``optimizer``'s) with ``threads`` threads; returns the losses."""
    losses = []
    with parallel.using_threads(threads):
        for X, y in data:
            losses.append(float(net.loss(net(X), y)))
            net.backward()
            if optimizer is None:
                net.update_weights(0.1)
            else:
                optimizer.step()
    return losses


def assert_states_close(got, expected, rtol):
    assert got.keys() == expected.keys()
    for name in expected:
        np.testing.assert_allclose(got[name], expected[name], rtol=rtol, atol=rtol, err_msg=name)


# -- the results are those of one thread ---------------------------------------------------------

@pytest.mark.parametrize("batchnorm", [False, True], ids=["plain", "batchnorm"])
@pytest.mark.parametrize("threads, n", [(2, 12), (3, 10), (4, 9)])
def test_sharded_training_equals_one_thread(small_shards, batchnorm, threads, n):
    data = batches(4, n)
    single, sharded = conv_net(batchnorm), conv_net(batchnorm)
    single_losses = train(single, data, threads=1)
    sharded_losses = train(sharded, data, threads=threads)
    assert sharded._shards.active and not single._shards.active
    np.testing.assert_allclose(sharded_losses, single_losses, rtol=1e-12)
    # BatchNorm's running statistics included: they come from the whole batch too.
    assert_states_close(sharded.state_dict(), single.state_dict(), rtol=1e-11)
    assert not np.allclose(sharded.state_dict()["0.weight"], conv_net(batchnorm).state_dict()["0.weight"])


def test_float32_stays_float32_and_close(small_shards):
    data = [(X.astype(np.float32), y) for X, y in batches(3, 16)]
    single, sharded = conv_net(True, dtype="float32"), conv_net(True, dtype="float32")
    train(single, data, threads=1)
    train(sharded, data, threads=2)
    for layer in sharded.layers:
        for key, grad in layer.grads.items():
            assert grad.dtype == np.float32, (layer, key)
    assert_states_close(sharded.state_dict(), single.state_dict(), rtol=2e-5)


def test_optimizers_see_the_summed_gradients(small_shards):
    data = batches(3, 12)
    # Without BatchNorm: Adam divides by the gradients' size, so the conv bias that BatchNorm
    # makes irrelevant (a gradient of rounding noise) would step by lr either way.
    single, sharded = conv_net(False), conv_net(False)
    train(single, data, threads=1, optimizer=Adam(single, lr=0.01))
    train(sharded, data, threads=2, optimizer=Adam(sharded, lr=0.01))
    assert_states_close(sharded.state_dict(), single.state_dict(), rtol=1e-10)
    one, two = conv_net(True), conv_net(True)
    train(one, data, threads=1, optimizer=SGD(one, lr=0.05, momentum=0.9))
    train(two, data, threads=2, optimizer=SGD(two, lr=0.05, momentum=0.9))
    assert_states_close(two.state_dict(), one.state_dict(), rtol=1e-11)


def test_dropout_draws_the_whole_batch_mask(small_shards):
    data = batches(3, 10)
    single, sharded = conv_net(True, dropout=0.5), conv_net(True, dropout=0.5)
    single_losses = train(single, data, threads=1)
    sharded_losses = train(sharded, data, threads=3)
    np.testing.assert_allclose(sharded_losses, single_losses, rtol=1e-12)
    assert_states_close(sharded.state_dict(), single.state_dict(), rtol=1e-11)
    drop = [layer for layer in sharded.layers if isinstance(layer, Dropout)][0]
    assert drop.calls == 3  # one mask per step, not one per shard


def test_input_gradient_and_eval_mode_match(small_shards):
    (X, y), = batches(1, 11)
    outputs = {}
    for threads in (1, 2):
        net = conv_net(True)
        with parallel.using_threads(threads):
            net.loss(net(X), y)
            grad = net.backward(input_grad=True)
            outputs[threads] = (grad, net.predict_proba(X), {k: v.copy() for k, v in
                                                            net.state_dict().items()})
    np.testing.assert_allclose(outputs[2][0], outputs[1][0], rtol=1e-11, atol=1e-14)
    assert outputs[2][0].shape == X.shape
    np.testing.assert_allclose(outputs[2][1], outputs[1][1], rtol=1e-12)
    assert_states_close(outputs[2][2], outputs[1][2], rtol=1e-12)


def test_a_sharded_run_repeats_bit_for_bit(small_shards):
    data = [(X.astype(np.float32), y) for X, y in batches(3, 13)]
    first, second = conv_net(True, dropout=0.2, dtype="float32"), conv_net(True, dropout=0.2, dtype="float32")
    train(first, data, threads=2)
    train(second, data, threads=2)
    for name, value in first.state_dict().items():
        np.testing.assert_array_equal(second.state_dict()[name], value, err_msg=name)


def test_layer_changes_between_steps_reach_the_replicas(small_shards):
    """Modes, reloaded weights and a changed list of layers are taken over on the next step."""
    (X, y), = batches(1, 12)
    net, reference = conv_net(True), conv_net(True, seed=5)
    with parallel.using_threads(2):
        net(X)
        net.load_state_dict(reference.state_dict())  # rebinds every parameter and buffer
        net.eval()
        np.testing.assert_allclose(net(X), reference.eval()(X), rtol=1e-12)
        net.layers.append(ReLU())
        assert np.all(to_numpy(net(X)) >= 0)


class Chain(Layer):
    """A layer made of layers, held in a tuple as Sequential holds them, its parameters the
    children's arrays under dotted names: what the replicas must copy child by child."""

    def __init__(self, *layers):
        super().__init__()
        self.layers = tuple(layers)
        for index, layer in enumerate(layers):
            for key, value in layer.params.items():
                self.params[f"{index}.{key}"] = value
                self.grads[f"{index}.{key}"] = layer.grads[key]

    def forward(self, X):
        for layer in self.layers:
            X = layer(X)
        return X

    def backward(self, dY):
        for layer in reversed(self.layers):
            dY = layer.backward(dY)
        for index, layer in enumerate(self.layers):
            for key, value in layer.grads.items():
                self.grads[f"{index}.{key}"] = value
        return dY

    def train(self, mode=True):
        for layer in self.layers:
            layer.train(mode)
        return super().train(mode)


def test_layers_made_of_layers_get_replicas_of_their_children(small_shards):
    data = [(X.reshape(len(X), -1)[:, :10], y) for X, y in batches(3, 12)]

    def build():
        nnfs.seed(2)
        f64 = "float64"  # made where they stay: Chain shares its children's arrays, moves none
        with using("numpy"):
            return Net([Chain(Linear(10, 6, dtype=f64), BatchNorm1D(6, dtype=f64), ReLU()),
                        Chain(Linear(6, 6, dtype=f64), Tanh()), Linear(6, 3, dtype=f64)],
                       CrossEntropyLoss(), backend="numpy", dtype=f64)

    one, two = build(), build()
    train(one, data, threads=1)
    train(two, data, threads=2)
    assert two._shards.active
    assert_states_close(two.state_dict(), one.state_dict(), rtol=1e-11)


def test_nested_composite_layers_shard(small_shards):
    composite = pytest.importorskip("nnfs.layers.composite")
    data = batches(3, 12)

    def build():
        nnfs.seed(2)
        body = composite.Sequential(Conv2D(4, 4, 3, padding=1), BatchNorm2D(4), ReLU(),
                                    Conv2D(4, 4, 3, padding=1), BatchNorm2D(4))
        return Net([Conv2D(2, 4, 3, padding=1), BatchNorm2D(4), ReLU(), composite.Residual(body), ReLU(),
                    GlobalAvgPool2D(), Dropout(0.3), Linear(4, 3)], CrossEntropyLoss(), backend="numpy",
                   dtype="float64")

    one, two = build(), build()
    train(one, data, threads=1)
    train(two, data, threads=3)
    assert two._shards.active
    assert_states_close(two.state_dict(), one.state_dict(), rtol=1e-11)


# -- when it shards ----------------------------------------------------------------------------

def test_when_a_batch_is_sharded(monkeypatch, backend):
    X = backend.asarray(np.zeros((64, 1, 28, 28)), dtype="float32")
    with parallel.using_threads(2):
        expected = 1 if backend.is_device else 2  # a GPU (or the strict stand-in) never shards
        assert parallel.Shards.count(backend, X) == expected
        assert parallel.Shards.count(backend, X[:parallel.MIN_SHARD_SAMPLES]) == 1  # too few samples
        assert parallel.Shards.count(backend, X[:, :, :2, :2]) == 1  # too little work per shard
    with parallel.using_threads(1):
        assert parallel.Shards.count(backend, X) == 1


def test_the_strict_backend_runs_unsharded_and_agrees(small_shards):
    data = [(X.astype(np.float32), y) for X, y in batches(2, 12)]
    host, strict = conv_net(True, dtype="float32"), conv_net(True, dtype="float32").to("strict")
    train(host, data, threads=2)
    train(strict, data, threads=2)
    assert host._shards.active and not strict._shards.active
    assert_states_close(strict.state_dict(), host.state_dict(), rtol=2e-5)


def test_blas_runs_one_thread_in_every_step(small_shards):
    threadpoolctl = pytest.importorskip("threadpoolctl")

    def blas_threads():
        return max([info["num_threads"] for info in threadpoolctl.threadpool_info()
                    if info["user_api"] == "blas"], default=None)

    seen = []

    class Probe(Layer):
        def forward(self, X):
            seen.append(blas_threads())
            return X

    outside = blas_threads()
    if outside is None:
        pytest.skip("NumPy uses no BLAS that threadpoolctl knows")
    net = Net([Flatten(), Probe(), Linear(128, 3)], CrossEntropyLoss(), backend="numpy")
    X = np.zeros((8, 2, 8, 8), dtype=np.float32)
    with parallel.using_threads(2):
        net(X)  # two shards
        net(X[:1])  # too small to shard
    with parallel.using_threads(1):
        net(X)  # single-threaded through and through
    assert seen == [1, 1, 1, 1]
    assert blas_threads() == outside  # restored afterwards


def test_two_nets_stepping_at_once_keep_the_blas_on_one_thread_until_both_are_done():
    """Two threads' steps overlapping (entered A, B; left A, B): the BLAS stays on one thread
    until the last leaves, then gets its setting back."""
    threadpoolctl = pytest.importorskip("threadpoolctl")

    def blas_threads():
        return max([info["num_threads"] for info in threadpoolctl.threadpool_info()
                    if info["user_api"] == "blas"], default=None)

    outside = blas_threads()
    if outside is None or outside < 2:
        pytest.skip("NumPy's BLAS runs one thread here already")
    first, second = parallel._one_blas_thread(), parallel._one_blas_thread()
    first.__enter__()
    second.__enter__()
    first.__exit__(None, None, None)
    inside = blas_threads()
    second.__exit__(None, None, None)
    assert (inside, blas_threads()) == (1, outside)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_process_forked_during_another_threads_step_runs_steps_of_its_own(small_shards):
    """fork copies the locks held by the parent's other threads, never to be released in the
    child: the child of a process forked while another thread trained waited forever."""
    threadpoolctl = pytest.importorskip("threadpoolctl")

    def blas_threads():
        return max([info["num_threads"] for info in threadpoolctl.threadpool_info()
                    if info["user_api"] == "blas"], default=None)

    outside = blas_threads()
    X, y = np.ones((8, 5)), np.zeros(8, dtype=int)
    net = Net([Linear(5, 4), Linear(4, 2)], CrossEntropyLoss(), backend="numpy", dtype="float64")
    stepping, release = threading.Event(), threading.Event()

    class Stall(Layer):
        def forward(self, X):
            stepping.set()
            release.wait(10)
            return X

    other = Net([Stall(), Linear(5, 2)], backend="numpy", dtype="float64")
    with parallel.using_threads(2):
        thread = threading.Thread(target=other, args=(X,))
        thread.start()
        stepping.wait(10)
        pid = os.fork()
        if pid == 0:  # the child: one step, then out, whatever happens
            code = 1
            try:
                net.loss(net(X), y)
                net.backward()
                # The BLAS got back the setting of before the parent's step (it inherited one
                # thread, with nobody left to lift the limit).
                code = 0 if net._shards.active and blas_threads() == outside else 2
            finally:
                os._exit(code)
        release.set()
        thread.join()
        for _ in range(200):
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            time.sleep(0.05)
        else:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            pytest.fail("the forked child hung in its first step")
    assert os.waitstatus_to_exitcode(status) == 0


# -- errors and memory ------------------------------------------------------------------------------

def test_an_error_in_a_shard_reads_as_without_threads(small_shards):
    def build():
        nnfs.seed(4)
        return Net([Linear(5, 4), BatchNorm1D(4), ReLU(), Linear(3, 2)], CrossEntropyLoss(),
                   backend="numpy")

    net, twin = build(), build()
    X = np.random.default_rng(0).normal(size=(10, 5)).astype(np.float32)
    with parallel.using_threads(2), pytest.raises(ValueError) as sharded:
        net(X)
    with parallel.using_threads(1), pytest.raises(ValueError) as single:
        twin(X)
    assert str(sharded.value) == str(single.value) == ("Linear: expected 3 input features, got shape (10, 4) "
                                                       "(layer 3 of the net; the net was given a batch of shape (10, 5))")
    # The failed step updated the running statistics once, as the single-threaded one did.
    np.testing.assert_allclose(net.state_dict()["1.running_var"], twin.state_dict()["1.running_var"],
                               rtol=1e-6)
    with parallel.using_threads(2):  # and the net still trains afterwards
        ok = Net([Linear(5, 4), ReLU(), Linear(4, 2)], CrossEntropyLoss(), backend="numpy")
        ok.loss(ok(X), np.zeros(10, dtype=int))
        ok.backward()


class ShortGradient(Layer):
    """The identity, whose backward drops the last feature of its gradient: a shape error."""

    def forward(self, X):
        return X

    def backward(self, dY):
        return dY[:, :-1]


def test_an_error_in_a_shards_backward_reads_as_without_threads(small_shards):
    """The message names the whole batch's shapes, as the single-threaded step's does, and the
    net trains again once the layer is fixed."""
    X = np.random.default_rng(0).normal(size=(10, 5))
    y = np.zeros(10, dtype=int)
    messages = []
    for threads in (1, 2):
        nnfs.seed(4)
        net = Net([Linear(5, 4), BatchNorm1D(4), ShortGradient(), Linear(4, 2)], CrossEntropyLoss(),
                  backend="numpy", dtype="float64")
        with parallel.using_threads(threads):
            net.loss(net(X), y)
            with pytest.raises(ValueError) as error:
                net.backward()
            messages.append(str(error.value))
            net.layers[2] = ReLU()
            net.loss(net(X), y)
            net.backward()
            assert net._shards.active == (threads > 1)
    assert messages[1] == messages[0]
    assert "has shape (10, 3), but the last forward pass gave an output of shape (10, 4)" in messages[0]


def test_a_failing_shard_does_not_leave_the_others_waiting(small_shards):
    """A shard that fails before a BatchNorm releases the shards waiting there for its sums."""

    class FailOnSecondShard(Layer):
        def forward(self, X):
            if parallel.shard_rows(X.shape[0])[0] > 0:
                raise RuntimeError("boom")
            return X

    net = Net([FailOnSecondShard(), Linear(3, 4), BatchNorm1D(4)], backend="numpy")
    with parallel.using_threads(2), pytest.raises(RuntimeError, match="boom"):
        net(np.ones((8, 3)))
    assert threading.active_count() < 20


def test_memory_is_one_batch_of_activations(small_shards):
    """The shards' caches together hold about what the single-threaded step holds, at the
    peak of a step and between steps."""
    X = np.random.default_rng(0).normal(size=(64, 2, 16, 16)).astype(np.float32)
    y = np.zeros(64, dtype=int)
    peak, held = {}, {}
    for threads in (1, 2, 4):
        net = Net([Conv2D(2, 8, 3, padding=1), BatchNorm2D(8), ReLU(), MaxPool2D(2), Flatten(),
                   Linear(8 * 8 * 8, 3)], CrossEntropyLoss(), backend="numpy", dtype="float32")
        with parallel.using_threads(threads):
            tracemalloc.start()
            for _ in range(3):  # after the first step: caches and reused buffers replaced, not added
                net.loss(net(X), y)
                net.backward()
            held[threads], peak[threads] = tracemalloc.get_traced_memory()
            tracemalloc.stop()
    for threads in (2, 4):
        assert held[threads] < 1.15 * held[1] and peak[threads] < 1.15 * peak[1], (held, peak)


# -- the number of threads ---------------------------------------------------------------------------

def test_the_number_of_threads(monkeypatch):
    monkeypatch.setattr(parallel, "_threads", None)
    monkeypatch.setenv("NNFS_NUM_THREADS", "3")
    assert parallel.get_num_threads() == 3
    with parallel.using_threads(1):
        assert parallel.get_num_threads() == 1
    assert parallel.get_num_threads() == 3
    monkeypatch.delenv("NNFS_NUM_THREADS")
    monkeypatch.setattr(parallel, "available_cores", lambda: 8)
    monkeypatch.setenv("MPI_LOCALNRANKS", "2")  # two ranks on this machine share its cores
    assert parallel.default_num_threads() == 4
    monkeypatch.delenv("MPI_LOCALNRANKS")
    assert parallel.default_num_threads() == 8


def test_the_usable_cores_are_this_processs_share(monkeypatch):
    """What the training program compares --threads with: the affinity mask's cores, shared among
    the ranks of this machine, never below one."""
    monkeypatch.delenv("MPI_LOCALNRANKS", raising=False)
    monkeypatch.delenv("OMPI_COMM_WORLD_LOCAL_SIZE", raising=False)
    monkeypatch.setattr(parallel, "available_cores", lambda: 3)
    assert (parallel.local_ranks(), parallel.usable_cores()) == (1, 3)
    monkeypatch.setenv("OMPI_COMM_WORLD_LOCAL_SIZE", "4")
    assert (parallel.local_ranks(), parallel.usable_cores()) == (4, 1)


@pytest.mark.parametrize("value", ["0", "two", "-1"])
def test_a_bad_thread_count_is_one_clear_error(monkeypatch, value):
    monkeypatch.setenv("NNFS_NUM_THREADS", value)
    with pytest.raises(ValueError, match=f"NNFS_NUM_THREADS must be a positive integer.*{value!r}"):
        parallel.default_num_threads()
    with pytest.raises(ValueError, match="set_num_threads"):
        parallel.set_num_threads(0)


def test_global_average_pooling_and_a_gap_net(small_shards):
    """A net that ends in GlobalAvgPool2D: no Flatten, outputs concatenated all the same."""
    data = batches(2, 9)

    def build():
        nnfs.seed(3)
        return Net([Conv2D(2, 3, 3), BatchNorm2D(3), ReLU(), GlobalAvgPool2D()], CrossEntropyLoss(),
                   backend="numpy", dtype="float64")

    one, two = build(), build()
    train(one, data, threads=1)
    train(two, data, threads=2)
    assert_states_close(two.state_dict(), one.state_dict(), rtol=1e-11)


# -- the training program -----------------------------------------------------------------------------

def test_resume_through_the_example_is_exact_with_threads(tmp_path, small_shards, monkeypatch, capsys):
    """The training program with --threads 2, its batches in shards: a run stopped after one
    epoch and resumed ends bit for bit where the uninterrupted run does."""
    folder = make_folder(tmp_path / "shapes", ["circle", "square", "star"], per_class=8, mode="RGB",
                         size=(12, 12))
    sharded = []
    forward = parallel.Shards.forward
    monkeypatch.setattr(parallel.Shards, "forward",
                        lambda self, *args: sharded.append(args[-1]) or forward(self, *args))

    def run(save, epochs, *extra):
        with using("numpy"):  # the CPU backend, the one that shards
            assert program.main(["--dataset", str(folder), "--batch_size", "8", "--threads", "2",
                                 "--epochs", str(epochs), "--seed", "3", "--save", str(save),
                                 *map(str, extra)]) == 0
        return capsys.readouterr().out

    whole = run(tmp_path / "whole" / "m.npz", 3)
    assert "on 2 CPU thread(s)" in whole and sharded and set(sharded) == {2}
    run(tmp_path / "part" / "m.npz", 1)
    resumed = run(tmp_path / "part" / "m.npz", 3, "--resume", tmp_path / "part" / "m_last.npz")
    assert "after epoch 1" in resumed

    def epochs(text):  # the numbers, without the timings
        return [line.split("  ")[:4] for line in text.splitlines() if line.startswith("epoch ")]

    assert epochs(resumed) == epochs(whole)[1:]
    a, b = np.load(tmp_path / "whole" / "m_last.npz"), np.load(tmp_path / "part" / "m_last.npz")
    arrays = [key for key in a.files if key.startswith(("net/", "optimizer/"))]
    assert any(key.startswith("net/") and "running_var" in key for key in arrays)
    for key in arrays:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def test_a_bad_thread_count_stops_the_program_in_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(parallel, "_threads", None)
    monkeypatch.setenv("NNFS_NUM_THREADS", "many")
    assert program.main(["--epochs", "1", "--save", str(tmp_path / "m.npz")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: NNFS_NUM_THREADS must be a positive integer") and err.count("\n") == 1


@pytest.mark.parametrize("threads", [1, 3])
def test_a_part_of_a_larger_batch_draws_its_rows_of_the_larger_batch_mask(small_shards, threads):
    """A data-parallel rank's share (nnfs.distributed): rows 5..10 of a batch of 20, in shards or not."""
    X = np.ones((20, 3, 4))
    nnfs.seed(0)
    whole = Net([Dropout(0.5)], backend="numpy", dtype="float64")
    expected = whole(X)[5:11]
    nnfs.seed(0)
    part = Net([Dropout(0.5)], backend="numpy", dtype="float64")
    with parallel.using_threads(threads), parallel.part_of_batch(5, 20):
        assert parallel.shard_rows(6) == (5, 20)
        got = part(X[5:11])
    assert part._shards.active == (threads > 1)
    np.testing.assert_array_equal(got, expected)
    assert parallel.shard_rows(6) == (0, 6)  # only inside the block


# -- layers of one's own ------------------------------------------------------------------------------

def custom_net(layer, seed=0):
    nnfs.seed(seed)
    return Net([Linear(10, 6), layer, Linear(6, 3)], CrossEntropyLoss(), backend="numpy", dtype="float64")


@pytest.mark.parametrize("make, threads", [
    # Replicas shared the net's gradient arrays: both shards wrote into one, and the sum held
    # the last shard's gradient twice.
    (lambda: custom.InPlaceScale(6), 2),
    # As docs/layers.md says: a buffer computed from the whole batch goes through batch_sum.
    (lambda: custom.RunningMean(6), 3),
], ids=["a layer writing its gradient in place", "a batch statistic summed over the shards"])
def test_layers_of_ones_own_shard_as_the_docs_say(small_shards, make, threads):
    data = [(X.reshape(len(X), -1)[:, :10], y) for X, y in batches(3, 12)]
    one, two = custom_net(make()), custom_net(make())
    train(one, data, threads=1)
    train(two, data, threads=threads)
    assert two._shards.active
    assert_states_close(two.state_dict(), one.state_dict(), rtol=1e-11)


def test_a_layer_writing_its_gradient_in_place_shards_after_the_net_moves_to_another_dtype(small_shards):
    # The replicas made their own gradient arrays once: after .to(dtype=...) a backward writing
    # in place cast the replica's share to the old dtype.
    data = [(X.reshape(len(X), -1)[:, :10], y) for X, y in batches(4, 12)]
    runs = []
    for threads in (1, 2):
        net = custom_net(custom.InPlaceScale(6)).to(dtype="float32")
        train(net, [(X.astype(np.float32), y) for X, y in data[:2]], threads=2)  # the replicas made
        net.to(dtype="float64")
        train(net, data[2:], threads=threads)
        runs.append(net)
    assert runs[1]._shards.active
    assert_states_close(runs[1].state_dict(), runs[0].state_dict(), rtol=1e-11)


class Gated(Layer):
    """``Y = X * gate * scale``, set from outside between steps: ``gate`` an array, ``scale`` a
    NumPy number, ``options`` a dict (a layer annealed or masked by its training script)."""

    def __init__(self, n_features):
        super().__init__()
        self.gate = np.ones(n_features)
        self.scale = np.float32(1.0)
        self.options = {"sign": 1.0}

    def factor(self):
        return self.gate * self.scale * self.options["sign"]

    def forward(self, X):
        return X * self.factor()

    def backward(self, dY):
        return dY * self.factor()


@pytest.mark.parametrize("change", [
    lambda layer, step: setattr(layer, "gate", np.linspace(0.5, 2.0, 6) * step),
    lambda layer, step: setattr(layer, "scale", np.float32(1.0 + step)),
    lambda layer, step: setattr(layer, "options", {"sign": -1.0 if step % 2 else 1.0}),
], ids=["an array", "a NumPy number", "a dict"])
def test_attributes_assigned_between_steps_reach_the_replicas(small_shards, change):
    data = [(X.reshape(len(X), -1)[:, :10], y) for X, y in batches(3, 12)]
    runs = []
    for threads in (1, 2):
        net = custom_net(Gated(6))
        for step, batch in enumerate(data):
            change(net.layers[1], step)
            train(net, [batch], threads=threads)
        runs.append(net)
    assert runs[1]._shards.active
    assert_states_close(runs[1].state_dict(), runs[0].state_dict(), rtol=1e-11)


class Logged(Layer):
    """The identity, counting the rows it sees under a lock: an attribute no copy can be made of."""

    def __init__(self):
        super().__init__()
        self.lock, self.rows = threading.Lock(), [0]

    def forward(self, X):
        with self.lock:
            self.rows[0] += X.shape[0]
        return X

    def backward(self, dY):
        return dY


def test_an_attribute_that_cannot_be_copied_is_shared_by_the_replicas(small_shards):
    data = [(X.reshape(len(X), -1)[:, :10], y) for X, y in batches(2, 12)]
    one, two = custom_net(Logged()), custom_net(Logged())
    train(one, data, threads=1)
    train(two, data, threads=2)
    assert two._shards.active
    assert_states_close(two.state_dict(), one.state_dict(), rtol=1e-11)
    replica = two._shards.replicas[0].layers[1]
    assert replica.lock is two.layers[1].lock and replica.rows is not two.layers[1].rows


def test_a_net_pickles_and_copies_after_a_sharded_step(small_shards):
    """The copies train on as the net does, a copy made between forward and backward included
    (the replicas' record of what they copied is made of weak references, which do not pickle)."""
    data = [(X.reshape(len(X), -1)[:, :10], y) for X, y in batches(3, 12)]
    net = custom_net(Gated(6))
    train(net, data[:1], threads=2)
    copies = [pickle.loads(pickle.dumps(net)), copy.deepcopy(net)]
    with parallel.using_threads(2):
        X, y = data[1]
        net.loss(net(X), y)
        pending = pickle.loads(pickle.dumps(net))
        net.backward()
        net.update_weights(0.1)
        pending.backward()
        pending.update_weights(0.1)
    for other in copies:
        train(other, data[1:2], threads=2)
    for other in [pending, *copies]:
        train(other, data[2:], threads=2)
        assert other._shards.active
    train(net, data[2:], threads=2)
    for other in [pending, *copies]:
        assert_states_close(other.state_dict(), net.state_dict(), rtol=1e-12)


class Remembering(Layer):
    """The identity that keeps its last input and output gradient as attributes, as much
    from-scratch code does (``self.X = X``), instead of in its cache."""

    def forward(self, X):
        self.X = X
        return X

    def backward(self, dY):
        self.dY = dY
        return dY


def test_what_a_layer_assigns_itself_in_a_step_is_not_copied_to_the_replicas(small_shards, monkeypatch):
    """Each shard assigns its own: copying the net's layer's activations to every replica
    before each step would cost a copy of each of them per step, for nothing."""
    data = [(X.reshape(len(X), -1)[:, :10], y) for X, y in batches(4, 12)]
    one, two = custom_net(Remembering()), custom_net(Remembering())
    train(one, data[:1], threads=1)
    train(two, data[:1], threads=2)
    copies = []
    real = replicas._copied
    monkeypatch.setattr(replicas, "_copied", lambda value, memo: (copies.append(value), real(value, memo))[1])
    small = [(X[:1], y[:1]) for X, y in data[1:2]]  # one row: a single-threaded step between them
    train(one, data[1:2] + small + data[2:], threads=1)
    train(two, data[1:2] + small + data[2:], threads=2)
    assert two._shards.active and copies == []
    assert_states_close(two.state_dict(), one.state_dict(), rtol=1e-11)
    replica = two._shards.replicas[0].layers[1]
    assert replica.X.shape[0] == 6 and replica.X is not two.layers[1].X


class Holding(Layer):
    """The identity that holds a tuple from its forward pass to its backward pass, then drops it."""

    def forward(self, X):
        self.saved = (X.copy(),)
        return X

    def backward(self, dY):
        del self.saved
        return dY


def test_the_replicas_record_holds_nothing_a_layer_dropped(small_shards):
    import weakref

    net = custom_net(Holding())
    X, y = [(X.reshape(len(X), -1)[:, :10], y) for X, y in batches(1, 12)][0]
    with parallel.using_threads(2):
        net.loss(net(X), y)
        probe = weakref.ref(net.layers[1].saved[0])
        assert net._shards.active
        net.backward()
    assert probe() is None


class BrokenCopy:
    """A setting whose own __deepcopy__ has a bug."""

    def __deepcopy__(self, memo):
        return self.missing  # AttributeError


class Configured(Layer):
    def __init__(self):
        super().__init__()
        self.setting = BrokenCopy()

    def forward(self, X):
        return X

    def backward(self, dY):
        return dY


def test_a_bug_in_a_settings_own_copy_is_raised_not_shared(small_shards):
    """Only what cannot be copied at all (TypeError: a lock, a file) is shared: another error
    is a bug of the user's, which sharing the object between threads would hide."""
    net = custom_net(Configured())
    X, y = [(X.reshape(len(X), -1)[:, :10], y) for X, y in batches(1, 12)][0]
    with parallel.using_threads(2), pytest.raises(AttributeError, match="missing"):
        net(X)


class ShardOnlyError(Layer):
    """Fails in backward: with a ValueError in a shard, with another error outside one (a replay
    that fails otherwise, as one out of memory would)."""

    def forward(self, X):
        return X

    def backward(self, dY):
        if parallel.in_shard():
            raise ValueError("ShardOnlyError: the shard's own error")
        raise MemoryError("the replay ran out of memory")


def test_a_replay_failing_otherwise_leaves_the_shards_error(small_shards):
    net = custom_net(ShardOnlyError())
    X, y = [(X.reshape(len(X), -1)[:, :10], y) for X, y in batches(1, 12)][0]
    with parallel.using_threads(2):
        net.loss(net(X), y)
        with pytest.raises(ValueError, match="the shard's own error"):
            net.backward()
