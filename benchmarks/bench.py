"""Training throughput and peak memory of nnfs against PyTorch, on the current backend.

The reference network (float32, plain SGD, cross-entropy)::

    Conv2D(C, 16, 3, padding=1), BatchNorm2D(16), ReLU, MaxPool2D(2),
    Conv2D(16, 32, 3, padding=1), BatchNorm2D(32), ReLU, MaxPool2D(2),
    Flatten, Linear(32 * H/4 * W/4, 128), ReLU, Linear(128, 10)

Each configuration (input shape and batch size) runs in fresh subprocesses,
one for nnfs and one for PyTorch, so that each figure belongs to one framework
alone (no thread pool of the other spinning on the cores, no shared memory
peak). The two take turns, a burst of a few timed steps each, with a pause
before each burst, so that both see the same machine from one second to the
next however the other work on it comes and goes (:func:`measure_pair`), and
never run at once. Both get the same threads (``--threads``, all cores by default: PyTorch's
``torch.set_num_threads``, nnfs's ``NNFS_NUM_THREADS``, and the BLAS of both), the
same batch of data and the same initial weights; a step is forward, loss,
backward and the SGD update. Throughput is the batch size over the median time
of the timed steps (after warm-up steps); on a GPU the device is synchronised
before each clock reading. The ratio is
nnfs/PyTorch of one such pair of runs; with ``--repeat`` the pairs are
repeated, each in fresh processes, and the median ratio is reported, which is
what to trust on a machine shared with other work. The report says what it measured: the date, the
machine (CPU model, cores), the load average before and after, and the threads
each framework used (for nnfs: how many shards each batch ran in, see
:mod:`nnfs.parallel`).

Usage::

    python benchmarks/bench.py --repeat 5              # all four configurations, median of 5 pairs
    python benchmarks/bench.py --configs 1x28x28:64 --steps 20 --json
    python benchmarks/bench.py --profile               # per-layer forward/backward times
    NNFS_BACKEND=cupy python benchmarks/bench.py       # GPU, against PyTorch CUDA

Options: ``--configs`` (comma-separated ``CxHxW:batch``), ``--steps``,
``--warmup``, ``--threads``, ``--repeat`` (nnfs/PyTorch pairs per
configuration), ``--no-torch``, ``--json`` (one JSON document on stdout), ``--profile``.
"""

import argparse
import datetime
import importlib.util
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)  # measure the nnfs of this checkout, installed or not
DEFAULT_CONFIGS = "1x28x28:64,1x28x28:256,3x32x32:64,3x32x32:256"
LEARNING_RATE = 0.01
N_CLASSES = 10
BURST_STEPS = 5  # timed steps a framework runs before the other takes its turn
# Untimed steps first in every burst. After the pause nnfs's first two steps are 25-45 % slower
# (measured: a 2-core VM whose idle cores halt; its shard threads sleep when they wait for each
# other, where PyTorch's OpenMP threads spin), which training, one step after another, never
# sees (with the cores kept busy by other work, the slow steps are gone).
BURST_WARMUP = 2
# Before each burst: the threads of the framework that ran last stop spinning. PyTorch's
# OpenMP threads spin-wait for about 10 ms of CPU time after a burst (measured, 2-core CPU):
# none is left after 20 ms.
PAUSE_S = 0.1


# -- configurations ---------------------------------------------------------------------------

def parse_configs(text, program="bench.py"):
    """``"1x28x28:64,3x32x32:256"`` -> ``[((1, 28, 28), 64), ((3, 32, 32), 256)]``.

    A malformed item ends the program with a one-line message that ``program`` begins.
    """
    configs = []
    for item in text.split(","):
        item = item.strip()
        try:
            shape, batch = item.split(":")
            C, H, W = (int(v) for v in shape.lower().split("x"))
            batch = int(batch)
        except ValueError:
            raise SystemExit(f"{program}: a configuration is CxHxW:batch (e.g. 1x28x28:64), got {item!r}")
        if min(C, H, W, batch) < 1 or H % 4 or W % 4:
            raise SystemExit(f"{program}: {item!r}: sizes must be positive, H and W multiples of 4")
        configs.append(((C, H, W), batch))
    return configs


def available_cores():
    from nnfs.parallel import available_cores as cores
    return cores()


def config_name(shape, batch):
    return f"{'x'.join(map(str, shape))}:{batch}"


# -- the models ---------------------------------------------------------------------------------

def build_nnfs(shape):
    """The library's reference CNN for images of ``shape``, from seed 0, in float32."""
    import nnfs
    from nnfs.app.models import reference_cnn

    C, H, W = shape
    nnfs.seed(0)
    return reference_cnn(C, (H, W), N_CLASSES, dtype="float32")


def build_torch(shape, device):
    """The same network in PyTorch (written out: it is the oracle), with the nnfs one's initial weights."""
    import torch
    from torch import nn

    C, H, W = shape
    model = nn.Sequential(
        nn.Conv2d(C, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(32 * (H // 4) * (W // 4), 128), nn.ReLU(), nn.Linear(128, N_CLASSES))
    reference = build_nnfs(shape).state_dict()
    with torch.no_grad():
        for index, module in enumerate(model):
            for key, tensor in list(module.named_parameters()) + list(module.named_buffers()):
                name = f"{index}.{key}"
                if name in reference:
                    tensor.copy_(torch.from_numpy(reference[name]))
    return model.to(device)


def make_data(shape, batch):
    """One fixed batch (host NumPy, float32 images and int64 labels), the same for both frameworks."""
    from nnfs.backend import host_rng, seed

    seed(1)
    rng = host_rng()
    X = rng.standard_normal((batch, *shape)).astype("float32")
    y = rng.integers(0, N_CLASSES, size=batch)
    return X, y


# -- one measurement (runs in a child process) --------------------------------------------------

def rss_mib():
    """The current resident set size of this process in MiB (Linux), or 0 where unknown."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return 0.0


def peak_rss_mib():
    """The peak resident set size of this process in MiB.

    Linux's VmHWM belongs to this program alone; ``ru_maxrss`` would also count the
    parent's memory at the time of the fork (it survives ``exec``), so it is only the
    fallback elsewhere.
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024  # bytes on macOS, KiB on Linux


def time_steps(step, synchronize, warmup, steps):
    """Per-step wall times in seconds after ``warmup`` untimed steps."""
    for _ in range(warmup):
        step()
    synchronize()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        synchronize()
        times.append(time.perf_counter() - start)
    return times


def add_profiler(net, synchronize):
    """Wrap every layer's forward/backward (and the loss, and the update) in timers.

    Returns ``{name: {"forward": [seconds...], "backward": [...], "forward_cpu": [...],
    "backward_cpu": [...]}}`` filled as the net runs: wall-clock times, and the CPU time of
    the calling thread (on a busy machine that one barely moves, while the wall clock also
    counts the time other programs held the core). Each timer synchronises the device, so
    profiled steps are a little slower than plain ones.
    """
    timings = {}

    def timed(name, phase, function):
        records = timings.setdefault(name, {"forward": [], "backward": [], "forward_cpu": [],
                                            "backward_cpu": []})
        wall, cpu = records[phase], records[phase + "_cpu"]

        def wrapper(*args):
            synchronize()
            start, cpu_start = time.perf_counter(), time.thread_time()
            result = function(*args)
            synchronize()
            wall.append(time.perf_counter() - start)
            cpu.append(time.thread_time() - cpu_start)
            return result
        return wrapper

    for index, layer in enumerate(net.layers):
        name = f"{index:2d} {type(layer).__name__}"
        layer.forward = timed(name, "forward", layer.forward)
        layer.backward = timed(name, "backward", layer.backward)
    loss = net.loss_fn
    loss.forward = timed(f"{len(net.layers):2d} {type(loss).__name__}", "forward", loss.forward)
    loss.backward = timed(f"{len(net.layers):2d} {type(loss).__name__}", "backward", loss.backward)
    net.update_weights = timed(f"{len(net.layers) + 1:2d} SGD update", "backward", net.update_weights)
    return timings


def setup_nnfs(shape, batch):
    """The nnfs model and a training-step function on the default backend."""
    from nnfs.backend import default_backend

    backend = default_backend()
    X_host, y_host = make_data(shape, batch)
    net = build_nnfs(shape)
    # The batch lives on the device before the clock starts, as it does for PyTorch.
    X, y = backend.asarray(X_host, dtype="float32"), backend.asarray(y_host)
    # The BLAS allocates its thread buffers on the first product: count them in the baseline.
    (X[:2].reshape(2, -1) @ X[:2].reshape(-1, 2)).sum()

    def step():
        out = net(X)
        net.loss(out, y)
        net.backward()
        net.update_weights(LEARNING_RATE)

    def final_loss():
        return float(net.loss(net(X), y))

    from nnfs.parallel import Shards, get_num_threads
    threads = {"threads": get_num_threads(), "shards": Shards.count(backend, X)}
    return net, step, final_loss, backend, threads


def setup_torch(shape, batch, threads, device_name):
    """The PyTorch model and its training step; None when the device is missing."""
    import torch

    torch.set_num_threads(threads)
    device = torch.device("cuda" if device_name == "cupy" else "cpu")
    if device.type == "cuda" and not torch.cuda.is_available():
        return None
    X_host, y_host = make_data(shape, batch)
    model = build_torch(shape, device)
    optimizer = torch.optim.SGD(model.parameters(), lr=LEARNING_RATE)
    loss_fn = torch.nn.CrossEntropyLoss()
    X = torch.from_numpy(X_host).to(device)
    y = torch.from_numpy(y_host).to(device)
    (X[:2].reshape(2, -1) @ X[:2].reshape(-1, 2)).sum()

    def step():
        optimizer.zero_grad(set_to_none=True)
        loss_fn(model(X), y).backward()
        optimizer.step()

    def final_loss():
        with torch.no_grad():
            return float(loss_fn(model(X), y))

    def synchronize():
        if device.type == "cuda":
            torch.cuda.synchronize()

    def peak_device_bytes():
        # The same measure as CupyBackend.measure_peak_memory: bytes held by live tensors
        # at the peak of two training steps, not what the caching allocator reserves.
        if device.type != "cuda":
            return None
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        step()
        step()
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated()

    threads = {"threads": torch.get_num_threads(), "interop_threads": torch.get_num_interop_threads()}
    return step, final_loss, synchronize, peak_device_bytes, threads


def reply_channel():
    """In a child: a function that sends the parent one JSON line, on a private copy of stdout.

    The process's own stdout goes to stderr from here on, so that no library's print can
    garble a reply.
    """
    replies = os.fdopen(os.dup(sys.stdout.fileno()), "w")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())

    def reply(message):
        replies.write(json.dumps(message) + "\n")
        replies.flush()
    return reply


def child_environment(threads):
    """This environment with every thread setting at ``threads`` (the BLAS's, OpenMP's and
    nnfs's), and this checkout first on the path: what a measuring child runs with."""
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NNFS_NUM_THREADS"):
        env[var] = str(threads)
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    return env


def child_main(args):
    """Measure one framework on one configuration in this process, a burst of steps at a time.

    The parent drives it through stdin, one command a line, and reads one JSON line back for
    each (on a private copy of stdout: the process's own stdout goes to stderr, so that no
    library's print can garble a reply):

    - after setup and the warm-up steps: ``{"ready": true}`` (or ``{"skipped": why}``);
    - ``steps N``: :data:`BURST_WARMUP` untimed steps, then N timed ones, ``{"times": [seconds, ...]}``;
    - ``finish``: the result (throughput over all timed steps, loss, threads, memory, the
      profile), and the process ends.
    """
    reply = reply_channel()
    shape, batch = parse_configs(args.configs)[0]
    if args.child == "nnfs":
        net, step, final_loss, backend, threads = setup_nnfs(shape, batch)
        synchronize = backend.synchronize

        def peak_device():  # after the timed steps: the memory hook costs time per allocation
            return backend.measure_peak_memory(lambda: (step(), step()))
    else:
        found = setup_torch(shape, batch, args.threads, args.device)
        if found is None:
            reply({"skipped": "this PyTorch build sees no CUDA device"})
            return
        step, final_loss, synchronize, peak_device, threads = found
    baseline = rss_mib()
    time_steps(step, synchronize, args.warmup, 0)
    reply({"ready": True})
    times = []
    for line in sys.stdin:
        command = line.split()
        if command[:1] == ["steps"]:
            burst = time_steps(step, synchronize, BURST_WARMUP, int(command[1]))
            times += burst
            reply({"times": burst})
        else:  # "finish", the only other command
            break
    median = statistics.median(times)
    result = {"img_s": batch / median, "median_ms": 1e3 * median, "loss": final_loss(), **threads}
    if args.child == "nnfs" and not backend.is_device:  # a GPU's products are not NumPy's BLAS
        result["blas"] = blas_kernels()
    peak = peak_device()
    if peak is not None:
        result["peak_mib"] = peak / 2**20
    else:
        result["peak_mib"] = peak_rss_mib()
        result["train_mib"] = result["peak_mib"] - baseline
    if args.profile and args.child == "nnfs":
        # Only the net's own layers are timed: with threads, those of shard 0, which the other
        # shards keep pace with (their replicas were made in the steps above, unwrapped).
        timings = add_profiler(net, synchronize)
        time_steps(step, synchronize, 1, max(5, args.steps // 2))
        result["profile"] = {
            name: {phase: 1e3 * statistics.median(values) if values else 0.0
                   for phase, values in phases.items()}
            for name, phases in timings.items()}
    reply(result)


def blas_kernels():
    """Which BLAS NumPy runs, and which of its kernels: ``"openblas 0.3.31, SkylakeX kernels"``.

    OpenBLAS picks its kernels from the CPU when it loads, unless ``OPENBLAS_CORETYPE`` names
    them; on a CPU with AVX-512 its AVX2 (Haswell) kernels multiply float32 matrices about half
    as fast, so a table is only comparable with the kernels it names.
    """
    from threadpoolctl import threadpool_info  # nnfs's own CPU threads need it; not asked on a GPU

    for library in threadpool_info():
        if library.get("user_api") == "blas":
            kernels = library.get("architecture")
            return f"{library.get('internal_api')} {library.get('version')}" + (
                f", {kernels} kernels" if kernels else "")
    return "unknown"


# -- the parent: fresh child processes per configuration ----------------------------------------

class Child:
    """A fresh process measuring one framework on one configuration (:func:`child_main`)."""

    def __init__(self, kind, shape, batch, args, device_name, profile=False):
        env = child_environment(args.threads)
        command = [sys.executable, os.path.abspath(__file__), "--child", kind,
                   "--configs", config_name(shape, batch), "--steps", str(args.steps),
                   "--warmup", str(args.warmup), "--threads", str(args.threads), "--device", device_name]
        if profile:
            command.append("--profile")
        self.kind, self.name = kind, f"the {kind} run of {config_name(shape, batch)}"
        # stderr to a file, not a pipe: a child that writes a lot to it never blocks.
        self.errors = tempfile.TemporaryFile(mode="w+")
        self.process = subprocess.Popen(command, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=self.errors, text=True)

    def receive(self):
        """The child's next JSON reply; SystemExit with its error output if it died instead."""
        line = self.process.stdout.readline()
        if not line:
            self.process.wait()
            self.errors.seek(0)
            raise SystemExit(f"bench.py: {self.name} failed:\n{self.errors.read().strip()}")
        return json.loads(line)

    def send(self, command):
        try:
            self.process.stdin.write(command + "\n")
            self.process.stdin.flush()
        except BrokenPipeError:
            pass  # it died: receive() reports why

    def steps(self, count):
        self.send(f"steps {count}")
        return self.receive()["times"]

    def finish(self):
        self.send("finish")
        result = self.receive()
        self.process.wait()
        return result

    def close(self):
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.errors.close()


def bursts(steps, size=BURST_STEPS):
    """``steps`` cut into bursts of ``size`` steps (the last one shorter): 12 by 5 -> [5, 5, 2]."""
    return [size] * (steps // size) + ([steps % size] if steps % size else [])


def measure_pair(shape, batch, args, device_name, use_torch, profile):
    """One nnfs run and, with ``use_torch``, one PyTorch run, their timed steps interleaved.

    Both processes are set up and warmed up first; then they take turns, a burst of
    :data:`BURST_STEPS` timed steps each (after :data:`BURST_WARMUP` untimed ones; who goes
    first alternating), with a pause of :data:`PAUSE_S` before each burst. So both see the
    same machine, to within a second, however the other work on it comes and goes, and never
    run at once: a burst only starts once the other framework's last one has ended and its
    threads have stopped spinning.
    Both hold their memory all along: on a GPU, the two frameworks' arrays must fit at once.
    Returns ``(nnfs result, torch result or None or {"skipped": why})``.
    """
    children = [Child("nnfs", shape, batch, args, device_name, profile=profile)]
    try:
        if use_torch:
            children.append(Child("torch", shape, batch, args, device_name))
        ready = [child.receive() for child in children]
        skipped = ready[-1] if "skipped" in ready[-1] else None
        if skipped:
            children.pop().close()  # it has ended already
        for turn, count in enumerate(bursts(args.steps)):
            for child in (children if turn % 2 == 0 else children[::-1]):
                time.sleep(PAUSE_S)
                child.steps(count)
        # PyTorch ends first, so that nnfs's profile and memory steps run alone.
        torch_result = children.pop().finish() if len(children) == 2 else skipped
        return children[0].finish(), torch_result
    finally:
        for child in children:
            child.close()


def torch_available():
    # Not imported here: the parent stays small, and the children measure memory alone.
    return importlib.util.find_spec("torch") is not None


def benchmark(args):
    from nnfs.backend import default_backend

    try:
        device_name = default_backend().name
    except (RuntimeError, ValueError) as error:  # an unknown NNFS_BACKEND, or CuPy without a GPU
        raise SystemExit(f"bench.py: {error}") from None
    use_torch = not args.no_torch and torch_available()
    load_before = load_average()
    rows = []
    for shape, batch in parse_configs(args.configs):
        nnfs_runs, torch_runs = [], []
        for repeat in range(args.repeat):
            nnfs_result, torch_result = measure_pair(shape, batch, args, device_name, use_torch,
                                                     profile=args.profile and repeat == 0)
            nnfs_runs.append(nnfs_result)
            if torch_result is not None and "skipped" in torch_result:
                print(f"bench.py: PyTorch not measured: {torch_result['skipped']}", file=sys.stderr)
                use_torch = False
            elif torch_result is not None:
                torch_runs.append(torch_result)
        nnfs_run = median_run(nnfs_runs)
        row = {"config": config_name(shape, batch), "input": list(shape), "batch": batch,
               "nnfs_img_s": nnfs_run["img_s"], "nnfs_loss": nnfs_run["loss"],
               "nnfs_peak_mib": max(r["peak_mib"] for r in nnfs_runs),
               "nnfs_train_mib": nnfs_run.get("train_mib"),
               "nnfs_threads": nnfs_run["threads"], "nnfs_shards": nnfs_run["shards"],
               "nnfs_blas": nnfs_run.get("blas"),
               "torch_img_s": None, "torch_peak_mib": None, "torch_train_mib": None, "ratio": None,
               "ratios": None,
               "torch_threads": None}
        if use_torch:
            torch_run = median_run(torch_runs)
            ratios = sorted(n["img_s"] / t["img_s"] for n, t in zip(nnfs_runs, torch_runs))
            row.update(torch_img_s=torch_run["img_s"], torch_loss=torch_run["loss"],
                       torch_peak_mib=max(r["peak_mib"] for r in torch_runs),
                       torch_train_mib=torch_run.get("train_mib"),
                       torch_threads=torch_run["threads"], ratio=statistics.median(ratios),
                       ratios=ratios)
        if args.profile:
            row["profile"] = nnfs_runs[0]["profile"]
        rows.append(row)
        if not args.json:
            print(f"  done {row['config']}", file=sys.stderr, flush=True)
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "backend": device_name, "threads": args.threads, "cpu_count": os.cpu_count(),
        "machine": cpu_model(), "load_average": {"before": load_before, "after": load_average()},
        "python": platform.python_version(), "steps": args.steps, "warmup": args.warmup,
        "repeat": args.repeat, "torch": use_torch, "rows": rows}


def cpu_model():
    """The CPU's model name (Linux's /proc/cpuinfo), else what the platform module knows."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def load_average():
    """The 1, 5 and 15 minute load averages, or None where the OS has none: the other work
    on the machine, which the figures depend on."""
    try:
        return [round(value, 2) for value in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def median_run(runs):
    """The run with the median throughput (the lower middle one for an even count)."""
    return sorted(runs, key=lambda r: r["img_s"])[(len(runs) - 1) // 2]


def _fmt(value, spec):
    """``value`` formatted by ``spec``, or a dash of the same width when it is missing."""
    return format(value, spec) if value is not None else "-".rjust(int(spec.split(".")[0]))


def describe_load(before, after):
    """``load average 0.60 before, 1.50 after (1 min)`` from two :func:`load_average` readings
    (``load average unknown`` where the OS has none): this script's and bench_shards.py's."""
    if before is None or after is None:
        return "load average unknown"
    return f"load average {before[0]:.2f} before, {after[0]:.2f} after (1 min)"


def print_table(report):
    print(f"nnfs training throughput, float32, backend {report['backend']}, {report['threads']} threads, "
          f"median of {report['steps']} steps, {report['repeat']} run pair(s), {report['date']}")
    load = report["load_average"]
    print(f"machine: {report['machine']}, {report['cpu_count']} cores; {describe_load(load['before'], load['after'])}")
    blas = sorted({row["nnfs_blas"] for row in report["rows"] if row.get("nnfs_blas")})
    pinned = os.environ.get("OPENBLAS_CORETYPE")
    if blas:  # the CPU backend's products (a GPU's are the device's own)
        print(f"NumPy's BLAS: {'; '.join(blas)}"
              + (f" (OPENBLAS_CORETYPE={pinned} in the environment)" if pinned else ""))
    print(f"{'config':>13} {'nnfs img/s':>11} {'torch img/s':>12} {'ratio':>6} {'pairs':>10} {'threads':>8} "
          f"{'shards':>6} "
          f"{'nnfs MiB':>9} {'torch MiB':>10} {'nnfs +MiB':>10} {'torch +MiB':>11}")
    for row in report["rows"]:
        threads = f"{row['nnfs_threads']}/{'-' if row['torch_threads'] is None else row['torch_threads']}"
        print(f"{row['config']:>13} {_fmt(row['nnfs_img_s'], '11.0f')} {_fmt(row['torch_img_s'], '12.0f')} "
              f"{_fmt(row['ratio'], '6.2f')} {pair_range(row['ratios']):>10} {threads:>8} "
              f"{row['nnfs_shards']:>6} {_fmt(row['nnfs_peak_mib'], '9.0f')} "
              f"{_fmt(row['torch_peak_mib'], '10.0f')} {_fmt(row['nnfs_train_mib'], '10.0f')} "
              f"{_fmt(row['torch_train_mib'], '11.0f')}")
    print("ratio: nnfs img/s / PyTorch img/s, median over the --repeat pairs; pairs: the lowest and highest\n"
          "pair's ratio. threads: nnfs/PyTorch; shards: the threads "
          "nnfs ran each batch on (nnfs.parallel).\nMiB: peak resident memory of the process "
          "(GPU: peak device memory held by arrays during two training steps, CuPy's pool used bytes and\n"
          "torch.cuda.max_memory_allocated, cached free blocks excluded); +MiB: its growth while training,\n"
          "above the imports, the model and the data.")


def pair_range(ratios):
    """``"0.91-1.27"``: the lowest and highest ratio of a row's pairs (one pair: its ratio; none: a dash)."""
    if not ratios:
        return "-"
    low, high = min(ratios), max(ratios)
    return f"{low:.2f}" if len(ratios) == 1 else f"{low:.2f}-{high:.2f}"


def print_profile(report):
    for row in report["rows"]:
        profile = row.get("profile")
        if not profile:
            continue
        total = sum(p["forward"] + p["backward"] for p in profile.values())
        cpu = sum(p["forward_cpu"] + p["backward_cpu"] for p in profile.values())
        print(f"\nper-layer time, nnfs {row['config']} (median ms per step; total {total:.2f} ms wall, "
              f"{cpu:.2f} ms CPU of the calling thread)")
        print(f"{'layer':<22} {'forward':>8} {'backward':>9} {'share':>6} {'cpu':>8}")
        for name, phases in profile.items():
            both = phases["forward"] + phases["backward"]
            print(f"{name:<22} {phases['forward']:8.2f} {phases['backward']:9.2f} {100 * both / total:5.1f}% "
                  f"{phases['forward_cpu'] + phases['backward_cpu']:8.2f}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--configs", default=DEFAULT_CONFIGS, help=f"CxHxW:batch,... (default {DEFAULT_CONFIGS})")
    parser.add_argument("--steps", type=int, default=50, help="timed steps per run (default 50)")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps first (default 5)")
    parser.add_argument("--threads", type=int, default=available_cores(),
                        help="CPU threads for both frameworks (default: every core this process may use)")
    parser.add_argument("--repeat", type=int, default=1,
                        help="nnfs/PyTorch run pairs per config; the median ratio is kept (default 1)")
    parser.add_argument("--no-torch", action="store_true", help="measure nnfs only")
    parser.add_argument("--json", action="store_true", help="print one JSON document instead of a table")
    parser.add_argument("--profile", action="store_true", help="add a per-layer time breakdown for nnfs")
    parser.add_argument("--child", choices=("nnfs", "torch"), help=argparse.SUPPRESS)
    parser.add_argument("--device", default="numpy", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    check_run_counts(parser, args)
    if args.child:
        return child_main(args)
    report = benchmark(args)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_table(report)
        print_profile(report)


def check_run_counts(parser, args):
    """Stop with argparse's one-line usage error unless a run's counts make sense (this script's
    and bench_shards.py's options)."""
    if args.steps < 1 or args.warmup < 0 or args.threads < 1 or args.repeat < 1:
        parser.error("--steps, --threads and --repeat must be positive, --warmup not negative")


if __name__ == "__main__":
    main()
