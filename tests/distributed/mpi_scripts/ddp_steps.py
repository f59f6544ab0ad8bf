"""A few data-parallel training steps; run as ``mpiexec -n K python ddp_steps.py --out DIR``.

Every rank saves its parameters and buffers (``rank<r>.npz``) and the
metrics reduced over the ranks (``rank<r>.json``) into DIR. The ranks start
from *different* seeds on purpose: DataParallel's broadcast must make them
equal. The same file also holds the single-process oracle the test compares
against (:func:`reference`), which uses no nnfs.distributed code.
"""

import argparse
import json
import pathlib

import numpy as np

import nnfs
from nnfs.activations import ReLU
from nnfs.layers import BatchNorm2D, Conv2D, Dropout, Flatten, Linear, MaxPool2D
from nnfs.losses import CrossEntropyLoss
from nnfs.net import Net

SEED = 7
LR = 0.1
EPOCHS = 2
# Global batches of 8, 8, 8, 7 and 1 samples: with 2 ranks the shards are 4+4, 4+3 and 1+0,
# so uneven and empty shards are part of every run.
BATCH_BOUNDS = [(0, 8), (8, 16), (16, 24), (24, 31), (31, 32)]


def build_net(batchnorm, dtype, dropout=False):
    layers = [Conv2D(1, 4, 3, padding=1, dtype=dtype)]
    if batchnorm:
        layers.append(BatchNorm2D(4, dtype=dtype))
    layers += [ReLU(), MaxPool2D(2)]
    if dropout:  # on (N, 4, 4, 4): each rank must draw its own rows of the global batch's mask
        layers.append(Dropout(0.5))
    layers += [Flatten(), Linear(4 * 4 * 4, 3, dtype=dtype)]
    return Net(layers, CrossEntropyLoss(), dtype=dtype)


def make_data():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((44, 1, 8, 8))
    y = rng.integers(0, 3, size=44)
    return (X[:32], y[:32]), (X[32:], y[32:])


def validation_totals(net, X, y):
    """Summed loss, correct count and count of ``net`` (in eval mode) on X, y."""
    if len(X) == 0:
        return {"loss_sum": 0.0, "correct": 0.0, "count": 0.0}
    out = net(X)
    loss = float(net.loss(out, y))
    correct = float((net.to_numpy(out.argmax(axis=1)) == y).sum())
    return {"loss_sum": loss * len(X), "correct": correct, "count": float(len(X))}


def reference(batchnorm, dtype, replicas, dropout=False):
    """One process simulating ``replicas`` ranks: shards by ``numpy.array_split``, averaged grads.

    With ``replicas=1`` this is plain single-process training on the global batches (with
    Dropout: its masks drawn for the whole global batch).
    Returns the state dict (buffers averaged over replicas) and the validation totals.
    """
    (X, y), (X_val, y_val) = make_data()
    nets = []
    for _ in range(replicas):
        nnfs.seed(SEED)
        nets.append(build_net(batchnorm, dtype, dropout))
    for _ in range(EPOCHS):
        for start, stop in BATCH_BOUNDS:
            parts = np.array_split(np.arange(start, stop), replicas)
            total = None
            for net, part in zip(nets, parts):
                if len(part) == 0:
                    continue
                net.loss(net(X[part]), y[part])
                net.backward()
                weighted = [len(part) * grad for _, _, grad in net.named_parameters()]
                total = weighted if total is None else [t + w for t, w in zip(total, weighted)]
            for net in nets:
                for layer_grad_slot, summed in zip(_grad_slots(net), total):
                    store, key = layer_grad_slot
                    store[key] = summed / (stop - start)
                net.update_weights(LR)
    state = nets[0].state_dict()
    for name in state:
        if "running" in name:
            state[name] = np.mean([net.state_dict()[name] for net in nets], axis=0)
    nets[0].load_state_dict(state)
    nets[0].eval()
    return state, validation_totals(nets[0], X_val, y_val)


def _grad_slots(net):
    return [(layer.grads, key) for layer in net.layers for key in layer.params]


def train_replica(world, net):
    """Data-parallel training of ``net`` as rank ``world.rank``; returns (state dict, report)."""
    from nnfs import distributed as dist

    ddp = dist.DataParallel(net, world)
    (X, y), (X_val, y_val) = make_data()
    for _ in range(EPOCHS):
        for start, stop in BATCH_BOUNDS:
            X_shard, y_shard = ddp.shard(X[start:stop], y[start:stop])
            if len(X_shard):
                ddp.loss(ddp(X_shard), y_shard)
                ddp.backward()
            else:
                ddp.average_gradients(n_samples=0)
            net.update_weights(LR)
    ddp.eval()  # averages the BatchNorm running statistics
    part = dist.shard(np.arange(len(X_val)), world)
    totals = ddp.reduce_metrics(**validation_totals(net, X_val[part], y_val[part]))
    report = {"rank": world.rank, "size": world.size, "transport": world.transport,
              "totals": totals, "replica_difference": ddp.replica_difference(),
              "rng_state": net.rng_state()}
    return ddp.state_dict(), report


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    parser.add_argument("--batchnorm", action="store_true")
    parser.add_argument("--dtype", default="float64")
    parser.add_argument("--dropout", action="store_true")
    args = parser.parse_args()

    from nnfs import distributed as dist

    world = dist.init()
    nnfs.seed(SEED + world.rank)  # different on purpose: the broadcast must fix it
    state, report = train_replica(world, build_net(args.batchnorm, args.dtype, args.dropout))
    out = pathlib.Path(args.out)
    np.savez(out / f"rank{world.rank}.npz", **state)
    (out / f"rank{world.rank}.json").write_text(json.dumps(report))


if __name__ == "__main__":
    main()
