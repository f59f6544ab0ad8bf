"""Dropout: mask statistics, scaling, eval identity, identical masks on every backend."""

import numpy as np
import pytest

import nnfs
from nnfs.backend import to_numpy
from nnfs.layers import Dropout, Linear
from nnfs.layers.dropout import random_bits
from tests.gradcheck import assert_layer_gradients


def make(p, seed=0):
    nnfs.seed(seed)
    return Dropout(p)


@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_mask_statistics_and_scaling(backend, p):
    layer = make(p)
    X = backend.asarray(np.ones((400, 500), dtype=np.float32))
    Y = to_numpy(layer(X))
    assert Y.dtype == np.float32
    dropped = (Y == 0).mean()
    # 200,000 Bernoulli draws: the standard error is below 0.0012.
    assert abs(dropped - p) < 0.006
    np.testing.assert_array_equal(np.unique(Y), np.array([0, 1 / (1 - p)], dtype=np.float32))
    assert abs(Y.mean() - 1) < 0.03  # inverted dropout keeps the expected value
    # Neither rows nor columns are favoured.
    assert np.abs((Y == 0).mean(axis=0) - p).max() < 0.12
    assert np.abs((Y == 0).mean(axis=1) - p).max() < 0.12


def test_backward_uses_the_forward_mask(backend, rng):
    layer = make(0.5)
    X = backend.asarray(rng.normal(size=(8, 6)), dtype="float64")
    Y = to_numpy(layer(X))
    dY = rng.normal(size=(8, 6))
    dX = to_numpy(layer.backward(backend.asarray(dY)))
    mask = Y / to_numpy(X)
    np.testing.assert_allclose(dX, dY * mask, rtol=1e-15)
    np.testing.assert_array_equal(to_numpy(layer.local_grad(X)["X"]), mask)


def test_eval_mode_and_p_zero_are_the_identity(backend, rng):
    X = backend.asarray(rng.normal(size=(5, 4)), dtype="float32")
    for layer in (make(0.5).eval(), make(0.0)):
        np.testing.assert_array_equal(to_numpy(layer(X)), to_numpy(X))
        dY = backend.asarray(rng.normal(size=(5, 4)), dtype="float32")
        np.testing.assert_array_equal(to_numpy(layer.backward(dY)), to_numpy(dY))
    assert make(0.5).eval().calls == 0


def test_local_grad_is_ones_in_eval_mode_and_the_pending_or_next_mask_in_training(backend, rng):
    """Ones in eval mode even after a training pass (the stale training mask came back); in
    training, the mask of a pending forward pass of X's shape, else the next mask, left undrawn
    (another shape's mask came back as it was, and before any forward pass the error named
    backward, inside a Sequential or Residual too, whose local_grad gives fresh caches)."""
    from nnfs.layers import Residual, Sequential

    X = backend.asarray(rng.normal(size=(4, 6)), dtype="float32")
    layer = make(0.5)
    np.testing.assert_array_equal(to_numpy(layer.local_grad(X)["X"]), to_numpy(make(0.5).mask(X)))
    assert layer.calls == 0
    Y = to_numpy(layer(X))
    pending = Y / to_numpy(X)
    np.testing.assert_array_equal(to_numpy(layer.local_grad(X)["X"]), pending)
    following = to_numpy(layer.local_grad(X[:2, :3])["X"])
    assert layer.calls == 1
    np.testing.assert_array_equal(to_numpy(layer(X[:2, :3])) != 0, following != 0)
    layer.eval()
    np.testing.assert_array_equal(to_numpy(layer.local_grad(X[:2, :3])["X"]), np.ones((2, 3), np.float32))
    assert to_numpy(layer.local_grad(X)["X"]).dtype == np.float32
    np.testing.assert_array_equal(to_numpy(make(0.0).local_grad(X)["X"]), np.ones((4, 6), np.float32))
    for block, key in ((Sequential(Linear(6, 6), make(0.5, seed=3)), "1.X"), (Residual(make(0.5, seed=3)), "body.X")):
        expected = to_numpy(make(0.5, seed=3).mask(X))
        np.testing.assert_array_equal(to_numpy(block.to(backend).local_grad(X)[key]), expected)


def test_p_one_drops_everything(backend):
    layer = make(1.0)
    Y = layer(backend.asarray(np.ones((3, 3))))
    assert not to_numpy(Y).any()


def test_masks_are_identical_on_every_backend_and_dtype(backend):
    reference_layer = make(0.4, seed=7)
    X_host = np.ones((6, 3, 5, 5))
    reference = [to_numpy(reference_layer(X_host)) for _ in range(3)]
    assert not np.array_equal(reference[0], reference[1])  # a new mask each call
    layer = make(0.4, seed=7)
    for expected in reference:
        Y = to_numpy(layer(backend.asarray(X_host, dtype="float32")))
        np.testing.assert_array_equal(Y != 0, expected != 0)


def test_seed_comes_from_nnfs_seed():
    assert make(0.5, seed=3).seed == make(0.5, seed=3).seed
    assert make(0.5, seed=3).seed != make(0.5, seed=4).seed


def test_random_bits_is_splitmix64_on_every_backend(backend):
    """Each element is SplitMix64's output for its index: checked against plain Python ints."""
    mask = (1 << 64) - 1

    def mix(z):
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
        return z ^ (z >> 31)

    bits = to_numpy(random_bits(backend.xp, (2, 3), seed=11, counter=4))
    state = mix((11 + mix(4 * 0x9E3779B97F4A7C15 + 1)) & mask)
    expected = [mix((state + (i + 1) * 0x9E3779B97F4A7C15) & mask) for i in range(6)]
    assert bits.dtype == np.uint64 and [int(b) for b in bits.reshape(-1)] == expected


class FixedMaskDropout(Dropout):
    """Dropout whose mask is drawn once, so finite differences see the same function."""

    def mask(self, X):
        if not hasattr(self, "fixed"):
            self.fixed = super().mask(X)
        return self.fixed


def test_gradient_check_with_a_fixed_mask(backend, rng):
    nnfs.seed(0)
    assert_layer_gradients(FixedMaskDropout(0.3), rng.normal(size=(4, 7)), backend, rng, tolerance=1e-7)


@pytest.mark.parametrize("p", [-0.1, 1.5, "half", True])
def test_bad_p_raises(p):
    with pytest.raises(ValueError, match="Dropout"):
        Dropout(p)


def test_config_and_export():
    import nnfs.layers
    assert Dropout(0.25).get_config() == {"p": 0.25}
    assert "Dropout" in nnfs.layers.__all__
    assert repr(Dropout(0.25)) == "Dropout(p=0.25)"


def test_a_0d_input_is_refused_in_one_line():
    """The mask is drawn per row of the batch: a 0-d array has none (it was an IndexError)."""
    with pytest.raises(ValueError, match=r"^Dropout: expected an input \(N, \.\.\.\), got a 0-d array$"):
        Dropout(0.5)(np.array(1.0, np.float32))


def test_the_rng_state_continues_the_masks(backend):
    """A layer given another's rng state draws the masks the other would draw next."""
    X = backend.asarray(np.ones((5, 8)), dtype="float32")
    layer = make(0.5, seed=1)
    layer(X)
    state = layer.rng_state()
    assert state == {"seed": layer.seed, "calls": 1}
    twin = make(0.5, seed=2)
    twin.load_rng_state(state)
    np.testing.assert_array_equal(to_numpy(twin(X)), to_numpy(layer(X)))
    assert twin.rng_state() == layer.rng_state() == {"seed": layer.seed, "calls": 2}


@pytest.mark.parametrize("state, message", [
    ([1, 2], r"rng state must be \{'seed': int, 'calls': int\}, got \[1, 2\]"),
    ({"seed": 1}, r"rng state must be"),
    ({"seed": 1, "calls": 0, "p": 0.5}, r"rng state must be"),
    ({"seed": -1, "calls": 0}, r"rng state's seed must be"),
    ({"seed": 2 ** 63, "calls": 0}, r"rng state's seed must be"),
    ({"seed": 1, "calls": 1.5}, r"rng state's calls must be an int, got 1.5"),
    ({"seed": 1, "calls": True}, r"rng state's calls must be an int"),
])
def test_a_bad_rng_state_is_refused_in_one_line_and_changes_nothing(state, message):
    layer = make(0.5)
    before = layer.rng_state()
    with pytest.raises(ValueError, match=r"^Dropout: " + message) as error:
        layer.load_rng_state(state)
    assert "\n" not in str(error.value)
    assert layer.rng_state() == before


def test_skip_batch_counts_the_mask_a_forward_pass_would_draw(backend):
    """What a data-parallel rank with an empty shard does: its next mask is the other ranks'."""
    layer = make(0.5)
    empty = backend.asarray(np.ones((0, 3)), dtype="float32")
    layer(empty)
    skipped = make(0.5)
    skipped.skip_batch()
    assert layer.calls == skipped.calls == 1
    for quiet in (make(0.0), make(0.5).eval()):  # a forward pass of these draws nothing either
        quiet.skip_batch()
        assert quiet.calls == 0
