"""nnfs.checkpoint: one pickle-free file that rebuilds the net on any backend."""

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

import nnfs
import nnfs.activations
import nnfs.layers
from nnfs.activations import LeakyReLU, ReLU
from nnfs.app.models import reference_cnn
from nnfs.app.resume import resume
from nnfs.backend import host_rng, to_numpy
from nnfs.checkpoint import CheckpointError, load, load_into, registry, save
from nnfs.data import Preprocessing
from nnfs.layers import BatchNorm2D, Conv2D, Flatten, Layer, Linear, MaxPool2D, Residual, Sequential
from nnfs.losses import CrossEntropyLoss
from nnfs.net import Net
from nnfs.optim import SGD, CosineAnnealingLR
from tests import ROOT, custom, environment
from tests.archives import rewrite_checkpoint
from tests.configs import assert_plain


def small_net(backend="numpy", dtype=None, channels=3):
    nnfs.seed(0)
    return Net([Conv2D(channels, 4, 3, padding=1), BatchNorm2D(4), LeakyReLU(0.2), MaxPool2D(2),
                Flatten(), Linear(4 * 3 * 3, 5)], CrossEntropyLoss(), backend=backend, dtype=dtype)


def trained(net, rng, steps=3):
    """A few SGD steps so that weights and BatchNorm running statistics differ from their start."""
    X = rng.standard_normal((6, net.layers[0].in_channels, 6, 6))
    y = rng.integers(0, 5, 6)
    for _ in range(steps):
        net.train()
        net.loss(net(X), y)
        net.backward()
        net.update_weights(0.1)
    return X


class FakeOptimizer:
    """Stands for any optimizer with the agreed state_dict() interface."""

    def __init__(self, backend):
        self.state = {"0.weight/momentum": backend.asarray(np.arange(6.0).reshape(2, 3)),
                      "step": np.array(7)}

    def state_dict(self):
        return {"config": {"lr": 0.05, "momentum": 0.9, "nesterov": False}, "state": self.state}


class FakeScheduler:
    def state_dict(self):
        return {"epoch": 3, "milestones": [5, 8], "gamma": 0.1}


def test_round_trip_restores_outputs_metadata_and_state(backend, tmp_path, rng):
    net = small_net(backend)
    X = trained(net, rng)
    net.eval()
    expected = to_numpy(net(X))
    path = tmp_path / "model.npz"
    save(path, net, class_names=["a", "b", "c", "d", "e"], preprocessing={"channels": 3, "mean": [0.5]},
         optimizer=FakeOptimizer(backend), scheduler=FakeScheduler(), extra={"epoch": 4, "acc": [0.5, 0.75]})
    for target in {"numpy", backend.name}:
        checkpoint = load(path, backend=target)
        restored = checkpoint.net
        assert restored.backend.name == target and not restored.training
        np.testing.assert_allclose(to_numpy(restored(X)), expected, rtol=1e-5, atol=1e-6)
        for name, value in net.state_dict().items():
            assert np.array_equal(restored.state_dict()[name], value), name
        assert checkpoint.class_names == ["a", "b", "c", "d", "e"]
        assert checkpoint.preprocessing == {"channels": 3, "mean": [0.5]}
        assert checkpoint.extra == {"epoch": 4, "acc": [0.5, 0.75]}
        assert checkpoint.scheduler_state == FakeScheduler().state_dict()
        state = checkpoint.optimizer_state
        assert state["config"] == {"lr": 0.05, "momentum": 0.9, "nesterov": False}
        assert set(state["state"]) == {"0.weight/momentum", "step"}
        assert type(state["state"]["step"]) is np.ndarray
        assert np.array_equal(state["state"]["0.weight/momentum"], np.arange(6.0).reshape(2, 3))
        assert int(state["state"]["step"]) == 7
    assert [layer.get_config() for layer in restored.layers] == [layer.get_config() for layer in net.layers]
    assert restored.layers[2].alpha == 0.2


def test_batchnorm_running_statistics_are_saved(tmp_path, rng):
    net = small_net()
    trained(net, rng)
    running = to_numpy(net.layers[1].buffers["running_var"])
    assert not np.allclose(running, 1)
    save(tmp_path / "m.npz", net)
    restored = load(tmp_path / "m.npz").net
    assert np.array_equal(to_numpy(restored.layers[1].buffers["running_var"]), running)


def test_float64_nets_stay_float64(tmp_path, rng):
    net = small_net(dtype="float64")
    trained(net, rng)
    save(tmp_path / "m.npz", net)
    restored = load(tmp_path / "m.npz").net
    assert restored.dtype == np.float64
    assert np.array_equal(restored.state_dict()["0.weight"], net.state_dict()["0.weight"])


def test_file_is_plain_arrays_readable_without_pickle(tmp_path):
    save(tmp_path / "m.npz", small_net(), class_names=list("vwxyz"))
    with np.load(tmp_path / "m.npz", allow_pickle=False) as archive:
        assert archive["meta"].dtype == np.uint8
        assert "net/0.weight" in archive.files
        assert all(archive[name].dtype != object for name in archive.files)


def test_writes_atomically_and_leaves_no_temporary_files(tmp_path):
    path = tmp_path / "deep" / "folder" / "m.npz"
    save(path, small_net())
    save(path, small_net())  # overwrite in place
    assert os.listdir(path.parent) == ["m.npz"]


def test_a_net_built_from_numpy_sizes_saves_plain_configs_and_round_trips(tmp_path, rng):
    nnfs.seed(0)
    n = np.int64
    net = Net([Conv2D(n(3), n(4), n(3), padding=n(1)), BatchNorm2D(n(4)), LeakyReLU(np.float32(0.5)),
               MaxPool2D(n(2)), Flatten(), Linear(np.prod((4, 3, 3)), n(5))], CrossEntropyLoss())
    X = trained(net, rng)
    net.eval()
    configs = [assert_plain(layer.get_config()) for layer in net.layers]
    save(tmp_path / "m.npz", net)
    with np.load(tmp_path / "m.npz", allow_pickle=False) as archive:
        meta = json.loads(archive["meta"].tobytes())
    assert [layer["config"] for layer in meta["layers"]] == json.loads(json.dumps(configs))
    restored = load(tmp_path / "m.npz").net
    assert [layer.get_config() for layer in restored.layers] == configs
    np.testing.assert_array_equal(to_numpy(restored(X)), to_numpy(net(X)))


def test_numpy_scalars_in_metadata_become_numbers(tmp_path):
    save(tmp_path / "m.npz", small_net(), extra={"acc": np.float32(0.5), "step": np.int64(3)})
    assert load(tmp_path / "m.npz").extra == {"acc": 0.5, "step": 3}


def test_a_failed_save_keeps_the_old_file(tmp_path):
    path = tmp_path / "m.npz"
    save(path, small_net(), extra={"version": 1})
    with pytest.raises(TypeError, match="JSON"):
        save(path, small_net(), extra={"not json": object()})
    assert load(path).extra == {"version": 1}
    assert os.listdir(tmp_path) == ["m.npz"]


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty", "not a checkpoint", "a lone .npy",
                                    "missing"])
def test_damaged_or_foreign_files_get_a_clear_error(tmp_path, damage):
    path = tmp_path / "m.npz"
    save(path, small_net())
    data = path.read_bytes()
    if damage == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "garbage":
        path.write_bytes(b"hello, I am not a zip file" * 20)
    elif damage == "empty":
        path.write_bytes(b"")
    elif damage == "not a checkpoint":
        np.savez(path, weights=np.ones(3))
    elif damage == "a lone .npy":
        with open(path, "wb") as file:
            np.save(file, np.ones(3))
    else:
        path.unlink()
    with pytest.raises(CheckpointError, match="m.npz"):
        load(path)


def _saved_arrays(path):
    """Save a small net to ``path`` and return the file's arrays, to tamper with."""
    save(path, small_net())
    with np.load(path) as archive:
        return {name: archive[name] for name in archive.files}


def test_weights_that_do_not_fit_their_layers_are_an_error(tmp_path):
    path = tmp_path / "m.npz"
    arrays = _saved_arrays(path)
    arrays["net/5.weight"] = np.zeros((5, 7), dtype=np.float32)
    np.savez(path, **arrays)
    with pytest.raises(CheckpointError, match="5.weight"):
        load(path)


def test_an_unknown_layer_class_is_named(tmp_path):
    path = tmp_path / "m.npz"
    arrays = _saved_arrays(path)
    meta = arrays["meta"].tobytes().decode().replace('"LeakyReLU"', '"FancyReLU"')
    arrays["meta"] = np.frombuffer(meta.encode(), dtype=np.uint8)
    np.savez(path, **arrays)
    with pytest.raises(CheckpointError, match="FancyReLU"):
        load(path)


def test_load_into_checks_the_architecture(tmp_path, rng):
    path = tmp_path / "m.npz"
    net = small_net(channels=3)
    trained(net, rng)
    save(path, net)
    same = small_net(channels=3)
    load_into(path, same)
    assert np.array_equal(same.state_dict()["5.weight"], net.state_dict()["5.weight"])
    with pytest.raises(CheckpointError, match="different architecture: layer 0 is Conv2D"):
        load_into(path, small_net(channels=1))
    with pytest.raises(CheckpointError, match="6 layers in the file, 12 in this net"):
        load_into(path, reference_cnn(3, 8, 5))


@pytest.mark.parametrize("call, match", [
    (lambda path: load_into(path, [Linear(2, 2)]), r"^checkpoint\.load_into: expected a Net to load into, got list$"),
    (lambda path: save(path, Net([Linear(2, 2)]), optimizer="adam"),
     r"^checkpoint\.save: optimizer must be an object with a state_dict\(\) method \(an nnfs optimizer\), got 'adam'$"),
    (lambda path: save(path, Net([Linear(2, 2)]), scheduler=3),
     r"^checkpoint\.save: scheduler must be an object with a state_dict\(\) method \(an nnfs schedule\), got 3$"),
], ids=["load_into a list", "an optimizer's name", "a number as scheduler"])
def test_arguments_of_the_wrong_kind_are_named_in_one_line(tmp_path, call, match):
    path = tmp_path / "m.npz"
    save(path, Net([Linear(2, 2)]))
    before = path.read_bytes()
    with pytest.raises(TypeError, match=match):
        call(path)
    assert path.read_bytes() == before


def test_registry_is_built_from_the_exported_names():
    classes = registry()
    for module in (nnfs.layers, nnfs.activations):
        for name in module.__all__:
            obj = getattr(module, name)
            if isinstance(obj, type) and issubclass(obj, Layer) and obj is not Layer:
                assert classes[name] is obj
    assert classes["CrossEntropyLoss"] is CrossEntropyLoss and "Layer" not in classes


def test_layers_that_cannot_be_rebuilt_are_refused_at_save_time(tmp_path):
    class Custom(ReLU):
        pass

    net = Net([Linear(2, 2), Custom()])
    with pytest.raises(CheckpointError, match="layer 1 .Custom."):
        save(tmp_path / "m.npz", net)
    assert not (tmp_path / "m.npz").exists()


def test_loading_does_not_disturb_the_seeded_weight_generator(tmp_path):
    save(tmp_path / "m.npz", small_net())
    nnfs.seed(5)
    before = host_rng().bit_generator.state
    load(tmp_path / "m.npz")
    assert host_rng().bit_generator.state == before


def test_custom_layers_must_be_named_to_be_saved(tmp_path):
    from nnfs.layers import Linear as NnfsLinear  # the name Linear is taken by a class below

    class Identity(Layer):
        def forward(self, X):
            return X

        def backward(self, dY):
            return dY

    net = Net([NnfsLinear(2, 2), Identity()], CrossEntropyLoss(), backend="numpy")
    with pytest.raises(CheckpointError, match="custom_layers"):
        save(tmp_path / "m.npz", net)
    save(tmp_path / "m.npz", net, custom_layers=[Identity])
    with pytest.raises(CheckpointError, match="'Identity', which this nnfs does not provide"):
        load(tmp_path / "m.npz")
    assert isinstance(load(tmp_path / "m.npz", custom_layers=[Identity]).net.layers[1], Identity)
    assert isinstance(load(tmp_path / "m.npz", custom_layers=Identity).net.layers[1], Identity)  # one class alone
    with pytest.raises(TypeError, match="Layer or Loss subclasses"):
        registry([object])

    class Linear(Layer):  # a custom class may not take a built-in name
        pass

    with pytest.raises(ValueError, match="already taken"):
        registry([Linear])


def test_custom_layers_given_once_as_a_generator_serve_every_look_up(tmp_path):
    # Saving and loading look the classes up more than once: a generator used up by the
    # first made the second call the layer unknown ("cannot save" from load_into).
    net = Net([Linear(4, 3), custom.Swish(1.5)], CrossEntropyLoss(), backend="numpy")
    path = save(tmp_path / "m.npz", net, custom_layers=(cls for cls in [custom.Swish]))
    assert isinstance(load(path, custom_layers=iter([custom.Swish])).net.layers[1], custom.Swish)
    assert load_into(path, net, custom_layers=(cls for cls in [custom.Swish])).net is net


@pytest.mark.parametrize("custom_layers, shown", [
    (None, "None"), ("Swish", "'Swish'"), (42, "42"), ([custom.Swish(1.5)], "Swish() in it"),
], ids=["None", "a class's name", "a number", "a layer object"])
def test_custom_layers_of_the_wrong_kind_are_named_in_one_line(tmp_path, custom_layers, shown):
    net = Net([Linear(4, 3), custom.Swish(1.5)], CrossEntropyLoss(), backend="numpy")
    path = save(tmp_path / "m.npz", net, custom_layers=custom.Swish)
    message = rf"^custom_layers takes Layer or Loss subclasses \(one class, or a list of them\), got {re.escape(shown)}$"
    for call in (lambda: save(path, net, custom_layers=custom_layers), lambda: load(path, custom_layers=custom_layers),
                 lambda: load_into(path, net, custom_layers=custom_layers)):
        with pytest.raises(TypeError, match=message):
            call()


def custom_net():
    """Layers and a loss of one's own (tests/custom.py), one of them inside a Residual."""
    return Net([Linear(4, 8), custom.LayerNorm(8), custom.Swish(1.5),
                Residual(Sequential(Linear(8, 8), custom.InPlaceScale(8))), custom.RunningMean(8),
                Linear(8, 3)], custom.FocalLoss(1.0), backend="numpy", dtype="float64")


def test_layers_and_a_loss_of_ones_own_train_and_round_trip_with_the_optimizer(tmp_path, rng):
    net = custom_net()
    optimizer = SGD(net, lr=0.1, momentum=0.9)
    X, y = rng.normal(size=(16, 4)), rng.integers(0, 3, 16)
    for _ in range(3):
        net.loss(net(X), y)
        net.backward()
        optimizer.step()
    save(tmp_path / "m.npz", net, optimizer=optimizer, custom_layers=custom.CUSTOM)
    loaded = load(tmp_path / "m.npz", backend="numpy", custom_layers=custom.CUSTOM)
    assert repr(loaded.net) == repr(net)  # the loss's gamma included
    np.testing.assert_array_equal(loaded.net.predict_proba(X), net.predict_proba(X))
    assert loaded.net.state_dict().keys() == net.state_dict().keys()  # RunningMean's buffer too
    with pytest.raises(CheckpointError, match=r"layer 3\.body\.1 is a 'InPlaceScale'.*custom_layers=\[\.\.\.\]"):
        load(tmp_path / "m.npz", custom_layers=[c for c in custom.CUSTOM if c is not custom.InPlaceScale])


class Unconfigured(Layer):
    """A layer of one's own that forgot get_config: the default says {}."""

    def __init__(self, n_features):
        super().__init__()
        self.n_features = n_features

    def forward(self, X):
        return X

    def backward(self, dY):
        return dY


class ArrayConfigured(Unconfigured):
    def get_config(self):
        return {"n_features": np.arange(3)}


@pytest.mark.parametrize("inside", [False, True], ids=["top", "in-a-sequential"])
@pytest.mark.parametrize("layer, message", [
    (Unconfigured(3), r"get_config\(\) returned \{\}, but Unconfigured\(\) missing a required argument: 'n_features'"),
    (ArrayConfigured(3), r"get_config\(\) returned .*, which is not JSON \(ndarray"),
], ids=["no-get-config", "array-in-config"])
def test_a_layer_whose_config_cannot_rebuild_it_is_refused_when_saved(tmp_path, layer, message, inside):
    # The file was written, and only loading it said that Unconfigured() needs n_features
    # (or saving named no layer for the array: "layer configs, class_names, ... must be JSON").
    where = "layer 1.0" if inside else "layer 1"
    net = Net([Linear(3, 3), Sequential(layer) if inside else layer], backend="numpy")
    with pytest.raises(CheckpointError, match=rf"^cannot save {re.escape(where)} \({type(layer).__name__}\): its {message}"):
        save(tmp_path / "m.npz", net, custom_layers=[type(layer)])
    assert not os.listdir(tmp_path)


def test_a_custom_layer_whose_constructor_changed_is_named_when_loaded(tmp_path):
    save(tmp_path / "m.npz", Net([Linear(4, 8), custom.LayerNorm(8)], backend="numpy"),
         custom_layers=[custom.LayerNorm])

    class LayerNorm(custom.LayerNorm):  # since renamed: epsilon became eps
        def __init__(self, n_features, eps=1e-5, dtype=None):
            super().__init__(n_features, eps, dtype)

    with pytest.raises(CheckpointError, match=r"cannot rebuild layer 1 LayerNorm: .*unexpected keyword argument 'epsilon'"):
        load(tmp_path / "m.npz", custom_layers=[LayerNorm])


def test_a_checkpoint_loads_on_a_named_backend_when_the_default_is_unusable(tmp_path):
    # NNFS_BACKEND=cupy on a machine without a GPU must not stop loading onto NumPy.
    script = (
        "import numpy as np, nnfs\n"
        "from nnfs.checkpoint import save, load\n"
        "from nnfs.net import Net\n"
        "from nnfs.layers import Linear\n"
        "from nnfs.backend import using\n"
        "with using('numpy'):\n"
        "    net = Net([Linear(2, 3)])\n"
        f"save({str(tmp_path / 'm.npz')!r}, net)\n"
        f"print(load({str(tmp_path / 'm.npz')!r}, backend='numpy').net.backend.name)\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            env=environment(NNFS_BACKEND="cupy"), timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "numpy"


# -- files written by earlier versions -----------------------------------------------------------------

# Written by nnfs before the package layout change (tests/fixtures/make_checkpoint_v1.py says how),
# with the outputs that version computed stored in its extra["fixture"].
CHECKPOINT_V1 = ROOT / "tests" / "fixtures" / "checkpoint_v1.npz"
LAYERS_V1 = ["Conv2D", "BatchNorm2D", "ReLU", "MaxPool2D", "Conv2D", "LeakyReLU", "AvgPool2D", "Dropout",
             "GlobalAvgPool2D", "Flatten", "Linear", "BatchNorm1D", "Sigmoid", "Linear", "Tanh", "Linear"]


def test_a_version_1_checkpoint_loads_and_predicts_as_it_did(backend):
    checkpoint = load(CHECKPOINT_V1, backend=backend)
    fixture = checkpoint.extra["fixture"]
    net = checkpoint.net
    assert [type(layer).__name__ for layer in net.layers] == LAYERS_V1
    assert net.backend == backend and net.dtype == np.float32 and not net.training
    assert checkpoint.class_names == ["circle", "square", "star"]
    for index in (1, 11):  # both BatchNorms were trained: their running statistics are not the initial ones
        assert not np.allclose(to_numpy(net.layers[index].buffers["running_var"]), 1.0)
    pre = Preprocessing.from_config(checkpoint.preprocessing)
    # Version 1 stored no resize mode: its models were trained on stretched images.
    assert pre.get_config() == dict(checkpoint.preprocessing, resize="stretch")
    assert (pre.image_size, pre.channels) == ((8, 8), 3)
    X = pre.apply(np.array(fixture["images"], dtype=np.uint8))
    np.testing.assert_allclose(to_numpy(net(X)), fixture["logits"], rtol=1e-5, atol=1e-6)


def test_a_version_1_checkpoint_resumes_its_optimizer_schedule_and_run(backend):
    checkpoint = load(CHECKPOINT_V1, backend=backend)
    probe = checkpoint.extra["fixture"]["probe"]
    net = checkpoint.net
    optimizer, scheduler, run = resume(checkpoint, net, 5)
    assert type(optimizer) is SGD and optimizer.step_count == 6
    assert optimizer.get_config() == {"lr": probe["lr"], "momentum": 0.9, "nesterov": True, "weight_decay": 1e-4}
    assert type(scheduler) is CosineAnnealingLR and (scheduler.T_max, scheduler.warmup_steps) == (4, 1)
    assert scheduler.last_step == 2 and scheduler.base_lr == 0.1
    assert (run.epoch, run.epochs, run.best_epoch, run.schedule) == (2, 5, 1, "cosine")
    assert run.loader == {"seed": 0, "passes": 2} and len(run.history["val_loss"]) == 2
    saved = checkpoint.optimizer_state["state"]
    assert set(saved) == {f"{name}.momentum_buffer" for name, _, _ in net.named_parameters()}
    for name, slots in optimizer.state.items():
        assert backend.is_array(slots["momentum_buffer"])
        np.testing.assert_array_equal(to_numpy(slots["momentum_buffer"]), saved[f"{name}.momentum_buffer"])
    # One more step on the gradients the old version used: the same parameters and rates as then.
    for index, layer in enumerate(net.layers):
        for key in layer.params:
            layer.grads[key] = backend.asarray(np.array(probe["grads"][f"{index}.{key}"]), dtype="float32")
    optimizer.step()
    for name, param, _ in net.named_parameters():
        np.testing.assert_allclose(to_numpy(param), probe["params"][name], rtol=1e-6, atol=1e-7, err_msg=name)
    assert scheduler.step() == pytest.approx(probe["next_lr"], rel=1e-12)


@pytest.mark.parametrize("class_names", ["cats", b"cats", ["cat", None]], ids=["str", "bytes", "None"])
def test_class_names_that_would_be_stored_wrong_are_refused(tmp_path, class_names):
    with pytest.raises(TypeError, match="class_names must be a list of strings"):
        save(tmp_path / "m.npz", Net([Linear(2, 2)]), class_names=class_names)
    assert not (tmp_path / "m.npz").exists()


def test_a_path_ending_with_a_separator_is_refused_and_bytes_paths_are_taken(tmp_path):
    with pytest.raises(ValueError, match="names a folder"):
        save(f"{tmp_path}/sv/", Net([Linear(2, 2)]))
    assert not (tmp_path / "sv").exists()
    save(os.fsencode(tmp_path / "b.npz"), Net([Linear(2, 2)]), class_names=["0", "1"])
    assert load(tmp_path / "b.npz").class_names == ["0", "1"]


def test_class_names_may_be_any_iterable_of_names(tmp_path):
    """A generator was used up by the check for None and saved as no names at all."""
    from nnfs.checkpoint import load, save
    from nnfs.layers import Linear
    from nnfs.net import Net

    save(tmp_path / "m.npz", Net([Linear(3, 2)]), class_names=(name for name in "ab"))
    assert load(tmp_path / "m.npz").class_names == ["a", "b"]


# -- the layers' random streams (training state) --------------------------------------------------------

def dropout_net():
    from nnfs.layers import Dropout, Sequential
    nnfs.seed(0)
    return Net([Linear(4, 8), Dropout(0.5), Sequential(Linear(8, 8), Dropout(0.3)), Linear(8, 3)],
               CrossEntropyLoss(), backend="numpy")


def _masks_drawn(net, steps=3):
    net.train()
    X, y = np.ones((6, 4)), np.arange(6) % 3
    for _ in range(steps):
        net.loss(net(X), y)
        net.backward()
        net.update_weights(0.1)


def test_a_training_checkpoint_records_the_random_streams_and_loading_puts_them_back(tmp_path):
    net = dropout_net()
    _masks_drawn(net)
    streams = net.rng_state()
    assert [stream["calls"] for stream in streams.values()] == [3, 3]
    save(tmp_path / "run.npz", net, optimizer=SGD(net, lr=0.1))
    nnfs.seed(5)  # a net built otherwise: its streams come from the file
    assert load(tmp_path / "run.npz").net.rng_state() == streams
    other = dropout_net()
    assert other.rng_state() != streams
    assert load_into(tmp_path / "run.npz", other).net.rng_state() == streams


def test_a_weights_only_file_holds_no_random_stream_and_loads_as_before(tmp_path):
    net = dropout_net()
    _masks_drawn(net)
    save(tmp_path / "model.npz", net)
    with np.load(tmp_path / "model.npz") as archive:
        meta = json.loads(archive["meta"].tobytes().decode())
        assert "rng_state" not in meta and all(name.startswith("net/") or name == "meta" for name in archive.files)
    fresh = dropout_net()
    assert load_into(tmp_path / "model.npz", fresh).net.rng_state() == dropout_net().rng_state()  # its own
    assert all(stream["calls"] == 0 for stream in load(tmp_path / "model.npz").net.rng_state().values())


def test_a_version_1_training_checkpoint_without_random_streams_loads_as_before():
    """Files written before the streams were recorded: each Dropout starts from its first mask."""
    net = load(CHECKPOINT_V1).net
    assert [stream["calls"] for stream in net.rng_state().values()] == [0]


@pytest.mark.parametrize("record, match", [
    ("not a dict", r"expected the random streams of layers \['1', '2.1'\], got 'not a dict'"),
    ({"1": {"seed": 1, "calls": 0}}, r"expected the random streams of layers \['1', '2.1'\], got \['1'\]"),
    ({"1": {"seed": 1, "calls": 0}, "2.1": {"seed": "x", "calls": 0}}, r"layer 2.1: Dropout: rng state's seed"),
    # The layer that refused is named, not the last one put back.
    ({"1": {"seed": "x", "calls": 0}, "2.1": {"seed": 1, "calls": 0}}, r"layer 1: Dropout: rng state's seed"),
])
def test_a_damaged_random_stream_record_is_refused_in_one_line(tmp_path, record, match):
    path = tmp_path / "run.npz"
    net = dropout_net()
    save(path, net, optimizer=SGD(net, lr=0.1))
    rewrite_checkpoint(path, lambda meta: meta.update(rng_state=record))
    for loading in (lambda: load(path), lambda: load_into(path, dropout_net())):
        with pytest.raises(CheckpointError, match=f"^{re.escape(str(path))}: Net.load_rng_state: " + match) as error:
            loading()
        assert "\n" not in str(error.value)


# -- save refuses what load would refuse: a model that trained fine must load ------------------------
@pytest.mark.parametrize("class_names, error, match", [
    (["cat", "cat"], ValueError, r"class_names must be distinct, got 'cat' more than once$"),
    (["a", "b", "a", "b", "c"], ValueError, r"got 'a', 'b' more than once$"),
    ([""], ValueError, r"class_names must not hold an empty name, got '' as class 0$"),
    ([], ValueError, r"class_names must name at least one class"),
    ([0.5, 1.5], TypeError, r"class_names must be a list of strings, got \[0\.5, 1\.5\] \(0\.5 is not a string\)$"),
    ([None, "cat"], TypeError, r"\(None is not a string\)$"),
    (["1", 1], ValueError, r"class_names must be distinct, got '1' more than once$"),
], ids=["twice", "several twice", "empty name", "no names", "floats", "None", "a number beside its text"])
def test_class_names_that_would_label_predictions_ambiguously_are_refused(tmp_path, class_names, error, match):
    """["cat", "cat"] or [""] were written, and predicted labels no one could tell apart."""
    with pytest.raises(error, match=r"^checkpoint\.save: .*" + match):
        save(tmp_path / "m.npz", Net([Linear(2, 2)]), class_names=class_names)
    assert os.listdir(tmp_path) == []


def test_integer_class_names_are_saved_as_their_text(tmp_path):
    """class_names=range(10) (class indices as names) was refused as "not a string"."""
    save(tmp_path / "m.npz", Net([Linear(2, 3)]), class_names=range(3))
    assert load(tmp_path / "m.npz").class_names == ["0", "1", "2"]
    save(tmp_path / "n.npz", Net([Linear(2, 2)]), class_names=np.arange(2))
    assert load(tmp_path / "n.npz").class_names == ["0", "1"]


def nested(levels):
    layer = ReLU()
    for _ in range(levels):
        layer = Sequential(layer)
    return Net([layer, Linear(2, 2)])


def test_a_net_nested_deeper_than_load_reads_is_refused_before_anything_is_written(tmp_path):
    """A model nested 65 deep trained fine, was saved, and could never be loaded."""
    save(tmp_path / "ok.npz", nested(64))
    assert isinstance(load(tmp_path / "ok.npz").net.layers[0], Sequential)
    with pytest.raises(CheckpointError, match=r"^checkpoint\.save: refusing to write .*deep\.npz: "
                                              r"layer 0(\.0){64} nests layers more than 64 deep$"):
        save(tmp_path / "deep.npz", nested(65))
    assert os.listdir(tmp_path) == ["ok.npz"]  # no file, no temporary


def nested_list(levels):
    value = []
    for _ in range(levels):
        value = [value]
    return value


class StateOf:
    """An optimizer stand-in with the state_dict() interface and any state."""

    def __init__(self, state):
        self.state = state

    def state_dict(self):
        return {"config": {"lr": 0.1}, "state": self.state}


@pytest.mark.parametrize("arguments, error, match", [
    (dict(extra=[1, 2]), TypeError, r"extra must be null or a dict, got \[1, 2\]$"),
    (dict(preprocessing=["mean", 0.5]), TypeError, r"preprocessing must be null or a dict"),
    (dict(scheduler=type("Odd", (), {"state_dict": lambda self: [3]})()), TypeError,
     r"scheduler must be null or a dict, got \[3\]$"),
    (dict(extra={1: "one", "1": "one as text"}), ValueError, r"the key '1' appears twice in one object$"),
    (dict(extra={"history": "x" * (17 << 20)}), CheckpointError, r"takes 17\.0 MiB as JSON, more than the 16\.0 MiB"),
    (dict(extra={"deep": nested_list(5000)}), TypeError, r"extra must be JSON-serialisable: nested too deeply$"),
    (dict(optimizer=StateOf({1: np.ones(2), "1": np.ones(2)})), ValueError,
     r"optimizer keys must be distinct, got '1' more than once$"),
    (dict(optimizer=StateOf({"a": np.ones(2, np.complex64)})), TypeError, r"optimizer/a holds complex64 data"),
    pytest.param(dict(optimizer=StateOf({"a": np.ones(2, np.longdouble)})), TypeError,
                 r"optimizer/a holds float(128|96)",
                 marks=pytest.mark.skipif(np.dtype(np.longdouble).itemsize <= 8, reason="long double is float64 here")),
    (dict(optimizer=StateOf({"a": ["one", "two"]})), TypeError, r"optimizer/a holds <U3 data"),
    (dict(optimizer=StateOf({"a": np.array([{}], dtype=object)})), TypeError, r"optimizer/a holds Python objects"),
], ids=["extra a list", "preprocessing a list", "scheduler state a list", "a key twice", "a huge record",
        "deep json", "optimizer keys alike as text", "complex state", "long double state", "text state",
        "object state"])
def test_what_load_would_refuse_is_never_written(tmp_path, monkeypatch, arguments, error, match):
    import nnfs.checkpoint
    monkeypatch.setattr(nnfs.checkpoint, "MAX_META_BYTES", 16 << 20)  # "a huge record" in 17 MiB, not 257
    path = tmp_path / "m.npz"
    save(path, Net([Linear(2, 2)]))
    before = path.read_bytes()
    with pytest.raises(error, match=match) as info:
        save(path, Net([Linear(2, 2)]), **arguments)
    assert str(info.value).startswith("checkpoint.save: ") and "\n" not in str(info.value)
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["m.npz"]


@pytest.mark.parametrize("part", ["layer", "list"])
def test_an_optimizer_over_some_layers_of_the_net_is_refused_where_its_names_are_not_the_nets(tmp_path, rng, part):
    # Training the head alone (a frozen body): the optimizer names the head's parameters by
    # their place in what it was given ("weight", "0.weight"), and "0.weight" here is the
    # net's first layer, of the same shape: the file would give the head's moments to it.
    net = Net([Linear(4, 4), ReLU(), Linear(4, 4)], CrossEntropyLoss())
    optimizer = SGD(net.layers[2] if part == "layer" else [net.layers[2]], lr=0.1, momentum=0.9)
    net.loss(net(rng.normal(size=(6, 4))), rng.integers(0, 4, 6))
    net.backward()
    optimizer.step()
    path = tmp_path / "m.npz"
    name = "weight" if part == "layer" else "0.weight"
    with pytest.raises(CheckpointError, match=rf"^checkpoint\.save: refusing to write .*m\.npz: the optimizer "
                                              rf"names the net's parameter 2\.weight {name!r} .*over the net.*$") as info:
        save(path, net, optimizer=optimizer)
    assert "\n" not in str(info.value) and os.listdir(tmp_path) == []
    save(path, net, optimizer=SGD(net, lr=0.1))  # an optimizer over the net names them as it does


def test_an_optimizer_of_ones_own_holding_its_arrays_in_params_is_saved(tmp_path):
    # A from-scratch optimizer keeps the net's arrays in .params, as much such code does: only
    # nnfs's optimizers are held to the net's parameter names.
    net = Net([Linear(4, 3)], CrossEntropyLoss())

    class MySGD:
        def __init__(self, net, lr):
            self.params, self.lr = [param for _, param, _ in net.named_parameters()], lr

        def state_dict(self):
            return {"config": {"lr": self.lr}, "state": {}}

    save(tmp_path / "m.npz", net, optimizer=MySGD(net, 0.1))
    assert load(tmp_path / "m.npz").net.state_dict().keys() == net.state_dict().keys()


def test_an_optimizer_made_for_another_net_is_refused_before_anything_is_written(tmp_path, rng):
    # Its state names this net's parameters ("0.weight") with other shapes: load refuses such
    # a file, so save must not write it (the model would be lost behind a file that never loads).
    other = Net([Linear(4, 5), Linear(5, 3)], CrossEntropyLoss())
    optimizer = SGD(other, lr=0.1, momentum=0.9)
    other.loss(other(rng.normal(size=(6, 4))), rng.integers(0, 3, 6))
    other.backward()
    optimizer.step()
    path = tmp_path / "m.npz"
    with pytest.raises(CheckpointError, match=r"^checkpoint\.save: refusing to write .*m\.npz: its optimizer state "
                                              r"would not load into this net \(SGD\.load_state_dict: "
                                              r"0\.weight\.momentum_buffer has shape \(5, 4\) .*made for another net\?$"):
        save(path, Net([Linear(4, 3)], CrossEntropyLoss()), optimizer=optimizer)
    assert os.listdir(tmp_path) == []
    save(path, other, optimizer=optimizer)  # its own net
    assert load(path).optimizer_state["config"]["step_count"] == 1


def test_an_optimizer_made_for_another_net_of_the_same_shapes_is_refused(tmp_path, rng):
    # Its state fits this net's parameters, so loading would take it: the file would hold the
    # moments of another net's weights beside these (the net rebuilt, the old optimizer kept).
    X, y = rng.normal(size=(6, 4)), rng.integers(0, 3, 6)
    old, net = (Net([Linear(4, 5), Linear(5, 3)], CrossEntropyLoss(), backend="numpy") for _ in range(2))
    optimizer = SGD(old, lr=0.1, momentum=0.9)
    old.loss(old(X), y)
    old.backward()
    optimizer.step()
    path = tmp_path / "m.npz"
    with pytest.raises(CheckpointError, match=r"^checkpoint\.save: refusing to write .*m\.npz: the optimizer updates "
                                              r"4 parameters that are not the net's \(the first is its '0\.weight'\): "
                                              r"was it made for another net\? Make it over this net, or save without "
                                              r"optimizer=$"):
        save(path, net, optimizer=optimizer)
    assert os.listdir(tmp_path) == []
    save(path, net, optimizer=SGD(net.layers[:1], lr=0.1))  # some layers of this net, named as the net names them
