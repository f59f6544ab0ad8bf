"""What the shard threads cost: a sharded training step against the same work in separate processes.

A :class:`~nnfs.net.Net` on N threads cuts each batch into N shards and runs them on N
threads of one process (:mod:`nnfs.parallel`). They share Python's interpreter lock: each
thread holds it for its Python code between NumPy calls, and the other one, back from a
call, waits for it. Separate processes share no lock. This script measures how much the
threads lose to that, for the reference CNN of ``bench.py`` (float32, SGD), in four
ways, each in fresh processes, one after the other in every round:

- ``one``: one process training one shard's share of the batch (batch / N) on one
  thread: what a shard's work costs alone;
- ``processes``: N such processes at once, each on its own share, started together:
  the parallelism without the lock (and without the shards' meetings and the summed
  gradients, which a sharded step needs). Their time is the slowest one's: a step of
  all the shards together ends with the last;
- ``independent``: one process with N threads, each training a net of its own on its
  share, on one thread each: the lock without the meetings (nothing is shared, the
  slowest thread's time);
- ``threads``: one process training the whole batch on N threads, as a Net does.

Reported per configuration: the median over the rounds of the milliseconds per step of
each, the CPU time per step (of all threads; for ``processes``, summed over them), the
voluntary context switches per step of the threaded process (a thread that sleeps,
mostly waiting for the interpreter lock, or at the shards' meetings), and
``threads/processes``, the ratio of step times within each round (median and range),
which is what to trust on a machine shared with other work.

Usage::

    python benchmarks/bench_shards.py                        # four configurations, 3 rounds
    python benchmarks/bench_shards.py --configs 3x32x32:256 --repeat 5 --json
"""

import argparse
import datetime
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)  # measure the nnfs of this checkout, installed or not
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402  (the configurations, the model and the machine's description)

WAYS = ("one", "processes", "independent", "threads")


# -- one measurement (runs in a child process) -------------------------------------------------

def child_main(args):
    """Set up, warm up, say ``ready``, wait for ``go`` on stdin, time the steps, reply in JSON.

    With ``--nets N`` (N > 1), N nets train side by side, one per thread, each on its own
    batch. Replies go to the parent through :func:`bench.reply_channel`.
    """
    import threading

    reply = bench.reply_channel()
    shape, batch = bench.parse_configs(args.configs, program="bench_shards.py")[0]
    runs = [bench.setup_nnfs(shape, batch) for _ in range(args.nets)]
    backend, shards = runs[0][3], runs[0][4]["shards"]
    for run in runs:
        bench.time_steps(run[1], backend.synchronize, args.warmup, 0)
    reply({"ready": True})
    sys.stdin.readline()  # "go": the processes of a round start their timed steps together
    walls = [0.0] * len(runs)

    def train(index):
        step, start = runs[index][1], time.perf_counter()
        for _ in range(args.steps):
            step()
        backend.synchronize()
        walls[index] = time.perf_counter() - start

    before = resource.getrusage(resource.RUSAGE_SELF)
    workers = [threading.Thread(target=train, args=(index,)) for index in range(1, len(runs))]
    for worker in workers:
        worker.start()
    train(0)
    for worker in workers:
        worker.join()
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    reply({"ms": 1e3 * max(walls) / args.steps, "cpu_ms": 1e3 * cpu / args.steps,
           "switches": (after.ru_nvcsw - before.ru_nvcsw) / args.steps, "shards": shards})


def start_child(shape, batch, threads, args, nets=1):
    """A fresh process training ``batch`` images of ``shape`` on ``threads`` threads (``nets`` nets)."""
    env = bench.child_environment(threads)
    command = [sys.executable, os.path.abspath(__file__), "--child", "--configs",
               bench.config_name(shape, batch), "--steps", str(args.steps), "--warmup", str(args.warmup),
               "--nets", str(nets)]
    errors = tempfile.TemporaryFile(mode="w+")  # a file, not a pipe: a child that writes a lot never blocks
    process = subprocess.Popen(command, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=errors, text=True)
    return process, errors


def run_together(shape, batch, threads, count, args, nets=1):
    """``count`` processes at once, each training ``batch`` images on ``threads`` threads: their replies."""
    children = [start_child(shape, batch, threads, args, nets) for _ in range(count)]

    def receive(process, errors):
        line = process.stdout.readline()
        if not line:
            process.wait()
            errors.seek(0)
            raise SystemExit(f"bench_shards.py: the run of {bench.config_name(shape, batch)} on "
                             f"{threads} thread(s) failed:\n{errors.read().strip()}")
        return json.loads(line)

    try:
        for process, errors in children:  # all set up and warmed up ...
            receive(process, errors)
        for process, _ in children:  # ... before any starts its timed steps
            try:
                process.stdin.write("go\n")
                process.stdin.flush()
            except BrokenPipeError:
                pass  # it died: receive() says why
        replies = [receive(process, errors) for process, errors in children]
        for process, _ in children:
            process.wait(timeout=60)
        return replies
    finally:
        for process, errors in children:
            if process.poll() is None:
                process.kill()
                process.wait()
            errors.close()


def measure_round(shape, batch, args):
    """One round: the four ways, one after the other, each in fresh processes."""
    share = batch // args.threads
    one, = run_together(shape, share, 1, 1, args)
    together = run_together(shape, share, 1, args.threads, args)
    independent, = run_together(shape, share, 1, 1, args, nets=args.threads)
    threaded, = run_together(shape, batch, args.threads, 1, args)
    return {"one": one,
            "processes": {"ms": max(r["ms"] for r in together), "cpu_ms": sum(r["cpu_ms"] for r in together),
                          "switches": sum(r["switches"] for r in together), "shards": 1},
            "independent": independent, "threads": threaded}


def benchmark(args):
    from nnfs.backend import default_backend

    backend = default_backend()
    if backend.is_device:
        raise SystemExit(f"bench_shards.py: shards run on the CPU only; the backend is {backend.name} "
                         f"(set NNFS_BACKEND=numpy)")
    configs = bench.parse_configs(args.configs, program="bench_shards.py")
    for shape, batch in configs:  # all of them before the first is measured
        if batch % args.threads:
            raise SystemExit(f"bench_shards.py: the batch of {bench.config_name(shape, batch)} must be a "
                             f"multiple of --threads ({args.threads}), for equal shares")
    load_before = bench.load_average()
    rows = []
    for shape, batch in configs:
        rounds = [measure_round(shape, batch, args) for _ in range(args.repeat)]
        row = {"config": bench.config_name(shape, batch), "shards": rounds[0]["threads"]["shards"],
               "ratios": [r["threads"]["ms"] / r["processes"]["ms"] for r in rounds]}
        row["ratio"] = statistics.median(row["ratios"])
        for way in WAYS:
            for key in ("ms", "cpu_ms", "switches"):
                row[f"{way}_{key}"] = statistics.median(r[way][key] for r in rounds)
        rows.append(row)
        print(f"  done {row['config']}", file=sys.stderr)
    return {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "cpu": bench.cpu_model(), "cores": bench.available_cores(), "load_before": load_before,
            "load_after": bench.load_average(), "threads": args.threads, "steps": args.steps,
            "repeat": args.repeat, "rows": rows}


def print_table(report):
    print(f"shard threads against processes, float32, {report['threads']} threads, {report['steps']} steps, "
          f"{report['repeat']} round(s), {report['date']}")
    print(f"machine: {report['cpu']}, {report['cores']} cores; "
          f"{bench.describe_load(report['load_before'], report['load_after'])}")
    print(f"{'':>13} {'':>6} {'ms per step':^40} {'':>17} {'':>11} {'cpu ms per step':^26} {'switches':>8}")
    print(f"{'config':>13} {'shards':>6} {'one':>7} {'processes':>10} {'independent':>11} {'threads':>9} "
          f"{'threads/processes':>17} {'rounds':>11} {'processes':>10} {'independent':>11} {'threads':>7} "
          f"{'threads':>8}")
    for row in report["rows"]:
        print(f"{row['config']:>13} {row['shards']:>6} {row['one_ms']:>7.2f} {row['processes_ms']:>10.2f} "
              f"{row['independent_ms']:>11.2f} {row['threads_ms']:>9.2f} {row['ratio']:>17.2f} "
              f"{min(row['ratios']):>5.2f}-{max(row['ratios']):<5.2f} {row['processes_cpu_ms']:>10.2f} "
              f"{row['independent_cpu_ms']:>11.2f} {row['threads_cpu_ms']:>7.2f} {row['threads_switches']:>8.1f}")
    print("one: one process, one thread, one shard's share of the batch; processes: as many at once\n"
          "(the slowest one's step); independent: as many threads of one process, each training its\n"
          "own net on its share; threads: the whole batch in shards on the threads of one process.\n"
          "threads/processes: the ratio of step times per round, median (rounds: lowest-highest).\n"
          "cpu ms: CPU time per step of all threads (processes: summed); switches: the threaded\n"
          "process's voluntary context switches per step.")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--configs", default=bench.DEFAULT_CONFIGS,
                        help=f"CxHxW:batch,... (default {bench.DEFAULT_CONFIGS})")
    parser.add_argument("--steps", type=int, default=100, help="timed steps per run (default 100)")
    parser.add_argument("--warmup", type=int, default=10, help="untimed steps first (default 10)")
    parser.add_argument("--threads", type=int, default=bench.available_cores(),
                        help="shards, and processes (default: every core this process may use)")
    parser.add_argument("--repeat", type=int, default=3, help="rounds per configuration (default 3)")
    parser.add_argument("--json", action="store_true", help="print one JSON document instead of a table")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--nets", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    bench.check_run_counts(parser, args)
    if args.child:
        return child_main(args)
    report = benchmark(args)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_table(report)


if __name__ == "__main__":
    main()
