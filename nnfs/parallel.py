"""Every CPU core in one process: each batch cut into shards, one thread per shard.

How it works
------------
On the CPU a :class:`~nnfs.net.Net` cuts every batch that is large enough into as
many contiguous shards as it has threads (:func:`get_num_threads`), and runs the
forward pass of each shard through all the layers on a thread of its own, all at
once; the backward pass goes the same way. NumPy releases the interpreter lock
inside its array loops, copies and matrix products, which is where the time of
a step goes, so the threads really run side by side on separate cores:

- **Replicas.** Shard 0 runs on the net's own layers, on the calling thread.
  Every other shard runs on a replica of the layers (:mod:`nnfs.replicas`): a copy
  that shares the parameter arrays but has its own cache, gradients and buffers
  (copied from the net's before each step), so two threads never write to the same
  array (but for an attribute that cannot be copied, a lock or an open file, which
  they share); before each step it also takes over the modes, counters and settings
  of the net's layers (numbers as they are, an array or dict assigned between steps
  as a copy). Replicas are made once and kept (the convolution's column buffers are
  reused from step to step, as without threads); one shard's worth of caches
  each, so the memory of a step is that of the whole batch, as without threads.
- **The loss is one.** The shards' outputs are concatenated and the loss is
  computed on the whole batch, exactly as without threads; the gradient that
  flows back is cut into the same rows. Each parameter gradient of the net is
  then the sum of the shards' gradients, added in shard order.
- **Layers that look at the whole batch** ask for it: BatchNorm combines its
  per-shard statistics with :func:`batch_gather` and adds up its backward sums with
  :func:`batch_sum`, so its statistics, its running averages and its backward pass
  are those of the whole batch; Dropout draws
  its shard's rows of the whole batch's mask (:func:`shard_rows`; of the global batch's,
  for a data-parallel rank's share: :func:`part_of_batch`). So a step
  gives the single-threaded results up to rounding (sums added in another
  order), with or without BatchNorm, and the same results on every run with
  the same number of threads (which is what an exact ``--resume`` needs).
- **The BLAS** (NumPy's matrix products) runs one thread inside every training
  step on the CPU, set at run time through ``threadpoolctl`` and restored after
  the step (after the last of the steps that run at once, on several threads): the
  shards are the threads. The BLAS's own threads would compete with the shards for
  the same cores, and after each call they keep spinning
  for a while, waiting for the next one: even the few unsharded steps of a run
  (the last, smaller batch of each epoch) cost the example 11 % more CPU time
  with them, so a batch too small to shard runs single-threaded through and
  through. One thread (``NNFS_NUM_THREADS=1``) is then one thread for
  everything, as ``torch.set_num_threads(1)`` is.

The interpreter lock
--------------------
The shards only run side by side while NumPy has let go of Python's interpreter
lock, which it does inside its loops, copies and matrix products, but not for every
call: ``matmul`` (``@``) keeps it for a result of at most 500 elements, however long
the sum behind each element. The weight gradient of a first convolution (16 x 27
values, each summed over the 131,072 pixels of a shard) held it for 2 ms in every
step, and BatchNorm's per-channel dot products for 0.2-0.3 ms each, while the other
thread, done with its own operation, waited to go on. So the products with a small
result and a long sum go through ``dot`` (the weight gradients of Conv2D and Linear)
and ``einsum`` (BatchNorm's row sums), which let go of the lock whatever the size of
their result; the same functions exist in CuPy. Between NumPy calls each thread holds the
lock for its Python code, and the other one, back from a call, waits for it: on small
shards (32 digits) that is about 45 waits a step, which is why two threads gain less there
than PyTorch's do (docs/speed.md, "What is left at small batches"). Against the same work in
separate processes, which share no lock, a sharded step takes 1.2-1.4x as long at every batch
size measured (``benchmarks/bench_shards.py``; docs/speed.md, "What the threads cost"). Shards
in forked worker processes were built to win that back, and measured no faster than these
threads on two cores: the workers' per-step bookkeeping and meetings across processes cost
what the lock does (docs/speed.md, "Shards in processes, built and measured").

A batch is sharded when every shard gets at least :data:`MIN_SHARD_SAMPLES`
samples and :data:`MIN_SHARD_ELEMENTS` input values: below that the threads
cost more than they save. Device backends (CuPy, and the strict stand-in for
it) never shard: a GPU is parallel already.

How many threads
----------------
All the cores this process may use, shared among the MPI ranks started on this
machine (``mpiexec -n 2`` on 2 cores: one thread each), unless the environment
variable ``NNFS_NUM_THREADS`` says otherwise; :func:`set_num_threads` changes it
at run time, like ``torch.set_num_threads``. One thread turns sharding off.
"""

import contextlib
import os
import queue
import threading
import weakref

from nnfs.backend import get_array_module
from nnfs.checks import integer
from nnfs.replicas import Replica, replicate

__all__ = ["ENVIRONMENT_VARIABLE", "MIN_SHARD_SAMPLES", "MIN_SHARD_ELEMENTS", "available_cores", "local_ranks",
           "usable_cores",
           "default_num_threads", "get_num_threads", "set_num_threads", "using_threads",
           "batch_sum", "batch_gather", "add_in_order", "shard_rows", "part_of_batch", "in_shard",
           "Shards"]

#: The environment variable that sets the number of threads (read once, at first use).
ENVIRONMENT_VARIABLE = "NNFS_NUM_THREADS"
#: A batch is cut into shards only when each gets at least this many samples ...
MIN_SHARD_SAMPLES = 4
#: ... and this many input values (a shard of 16 digits of 28x28 has 12,544).
MIN_SHARD_ELEMENTS = 8192

# Environment variables through which MPI launchers tell a rank how many ranks share its machine.
_LOCAL_RANKS_VARIABLES = ("MPI_LOCALNRANKS", "OMPI_COMM_WORLD_LOCAL_SIZE")

_threads = None  # None: not decided yet (the environment is read at first use)


# -- how many threads ---------------------------------------------------------------------------

def available_cores():
    """The number of CPU cores this process may run on (its affinity mask, where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def default_num_threads():
    """``NNFS_NUM_THREADS`` when set, else the available cores divided among the MPI ranks on this machine.

    Raises:
        ValueError: when ``NNFS_NUM_THREADS`` is not a positive integer.
    """
    text = os.environ.get(ENVIRONMENT_VARIABLE, "").strip()
    if text:
        try:
            value = int(text)
        except ValueError:
            value = 0
        if value < 1:
            raise ValueError(f"{ENVIRONMENT_VARIABLE} must be a positive integer (the number of CPU "
                             f"threads), got {text!r}")
        return value
    return usable_cores()


def local_ranks():
    """How many MPI ranks the launcher started on this machine (1 outside ``mpiexec``)."""
    for variable in _LOCAL_RANKS_VARIABLES:
        if os.environ.get(variable, "").isdigit():
            return max(1, int(os.environ[variable]))
    return 1


def usable_cores():
    """The cores this process may keep busy: :func:`available_cores` shared among the MPI ranks
    of this machine (at least one)."""
    return max(1, available_cores() // local_ranks())


def get_num_threads():
    """The number of threads (and so of shards) a CPU training step uses at most."""
    global _threads
    if _threads is None:
        _threads = default_num_threads()
    return _threads


def set_num_threads(count):
    """Use at most ``count`` threads from now on (1: single-threaded); None goes back to the default.

    Returns:
        The previous setting (None where it was the default), to pass back later.
    """
    global _threads
    previous = _threads
    _threads = None if count is None else integer("set_num_threads", "count", count, minimum=1)
    return previous


@contextlib.contextmanager
def using_threads(count):
    """``with using_threads(1): ...`` runs the block with ``count`` threads, then restores the setting."""
    previous = set_num_threads(count)
    try:
        yield
    finally:
        set_num_threads(previous)


# -- what layers see: the shard they run on -----------------------------------------------------

_local = threading.local()


class _Shard:
    """Where one thread's rows sit in the batch, and the group it adds its sums with."""

    __slots__ = ("index", "first", "total", "group")

    def __init__(self, index, first, total, group):
        self.index, self.first, self.total, self.group = index, first, total, group


def in_shard():
    """True on a thread that is running one shard of a batch."""
    return getattr(_local, "shard", None) is not None


def batch_gather(*partials):
    """Per-shard values (arrays or numbers) of every shard of the batch, in shard order.

    The meeting point behind :func:`batch_sum`, for a statistic that is not a plain
    sum (BatchNorm's variance combines each shard's mean and spread): inside a
    sharded step every shard waits for the others and gets the same lists back, so a
    formula applied to them in order gives identical results on every thread; outside
    one each list holds this call's value alone. Every shard must call it (or
    :func:`batch_sum`) the same number of times. The values are shared between the
    threads: read them, never write to them.

    Returns:
        A list of the shards' values, or a tuple of such lists for several partials.
    """
    shard = getattr(_local, "shard", None)
    rows = [partials] if shard is None else shard.group.gather(shard.index, partials)
    columns = tuple(list(column) for column in zip(*rows))
    return columns[0] if len(columns) == 1 else columns


def batch_sum(*partials):
    """Per-shard sums (arrays or numbers) added up over every shard of the batch.

    A layer that needs a statistic of the whole batch computes it on its own rows,
    then passes it here: inside a sharded step every shard waits for the others and
    gets the same totals back (added in shard order, so they are identical on every
    thread); outside one the values come back as they are. Every shard must call it
    (or :func:`batch_gather`) the same number of times. The totals are shared between
    the threads: read them, never write to them.

    Returns:
        The total, or a tuple of totals for several partials.
    """
    shard = getattr(_local, "shard", None)
    totals = partials if shard is None else shard.group.sum(shard.index, partials)
    return totals[0] if len(totals) == 1 else totals


def shard_rows(rows):
    """``(first, total)``: this shard's ``rows`` start at row ``first`` of a batch of ``total`` rows.

    The batch is the whole one: a thread's shard of a data-parallel rank's share starts at
    the share's first row plus the shard's (see :func:`part_of_batch`). ``(0, rows)``
    outside a sharded step and a share. Dropout uses it to draw the rows of the whole
    batch's mask that belong to its shard.
    """
    shard = getattr(_local, "shard", None)
    if shard is not None:
        return shard.first, shard.total
    part = getattr(_local, "part", None)
    return (0, rows) if part is None else part


@contextlib.contextmanager
def part_of_batch(first, total):
    """``with part_of_batch(first, total): net(X)`` runs ``X`` as rows ``first, first + 1, ...``
    of a batch of ``total`` rows, for :func:`shard_rows`.

    A data-parallel rank's forward pass on its share of the global batch runs in it
    (:class:`~nnfs.distributed.DataParallel`), so its Dropout draws the share's rows of
    the global batch's mask, and so do the thread shards the share is cut into. Only
    the calling thread sees it (another thread training another net does not).
    """
    previous = getattr(_local, "part", None)
    _local.part = (first, total)
    try:
        yield
    finally:
        _local.part = previous


class _Stopped(RuntimeError):
    """Raised in a shard that waited for the sums of a shard that failed."""


class _Group:
    """The shards of one step, and the meeting point where :func:`batch_gather` and
    :func:`batch_sum` hand their values around."""

    def __init__(self, count):
        self.count = count
        self.slots = [None] * count
        self.result = None
        self.arrived = 0
        self.round = 0
        self.failed = False
        self.condition = threading.Condition()

    def gather(self, index, partials):
        """Every shard's ``partials``, in shard order (a fresh list each round)."""
        return self._meet(index, partials, list)

    def sum(self, index, partials):
        """The ``partials`` added up over the shards, in shard order."""
        return self._meet(index, partials, lambda rows: tuple(add_in_order(column) for column in zip(*rows)))

    def _meet(self, index, partials, combine):
        with self.condition:
            if self.failed:
                raise _Stopped("another shard of this batch failed")
            self.slots[index] = partials
            self.arrived += 1
            this_round = self.round
            if self.arrived == self.count:  # the last to arrive combines them, in shard order
                self.result = combine(self.slots)
                self.slots = [None] * self.count
                self.arrived, self.round = 0, self.round + 1
                self.condition.notify_all()
            else:
                # Nobody can post the next round's sums before every thread has read these:
                # that round needs every thread again.
                while self.round == this_round and not self.failed:
                    self.condition.wait()
                if self.round == this_round:
                    raise _Stopped("another shard of this batch failed")
            return self.result

    def abort(self):
        """One shard failed: the others stop at their next sum instead of waiting for it forever.

        A round that every shard reached is complete whatever happens afterwards.
        """
        with self.condition:
            self.failed = True
            self.condition.notify_all()


def add_in_order(values):
    """``values[0] + values[1] + ...``, left to right: per-shard partials (arrays or numbers)
    combined in shard order, so every thread that combines them gets the same bits; one value
    comes back as it is (no copy, no promotion)."""
    total = values[0]
    for value in values[1:]:
        total = total + value
    return total


# -- the threads --------------------------------------------------------------------------------

class _Pool:
    """Worker threads for shards 1, 2, ...; shard 0 runs on the calling thread.

    One step runs at a time: a second thread that trains a net of its own meanwhile
    waits for the lock (the shards of one step must all run at once, or the meeting point in
    :func:`batch_sum` would wait forever).
    """

    def __init__(self):
        self.lock = threading.Lock()
        self.inboxes = []

    def forked(self):
        """In a forked child: none of the parent's threads, and a lock that another of them
        may have held at the fork, which nobody would ever release."""
        self.lock, self.inboxes = threading.Lock(), []

    def _workers(self, count):
        while len(self.inboxes) < count:
            inbox = queue.SimpleQueue()
            threading.Thread(target=_work, args=(inbox,), name=f"nnfs-shard-{len(self.inboxes) + 1}",
                             daemon=True).start()
            self.inboxes.append(inbox)
        return self.inboxes[:count]

    def run(self, tasks, group):
        """Run ``tasks`` (callables, one per shard) at once; their results, or the first error.

        A task that fails aborts ``group`` itself (the others may be waiting for its sums);
        the workers are always waited for, so that no shard of this step is still running
        when the next one starts, even after an interrupt.
        """
        results, errors = [None] * len(tasks), {}
        with self.lock:
            done = queue.SimpleQueue()
            for index, (inbox, task) in enumerate(zip(self._workers(len(tasks) - 1), tasks[1:]), 1):
                inbox.put((index, task, done))
            try:
                results[0] = tasks[0]()
            except BaseException as error:  # noqa: BLE001  (re-raised below, after the others)
                errors[0] = error
            for _ in tasks[1:]:
                index, result, error = done.get()
                results[index] = result
                if error is not None:
                    errors[index] = error
        if errors:
            # The first shard in order that failed; _Stopped only says that a shard was stopped.
            real = [errors[i] for i in sorted(errors) if not isinstance(errors[i], _Stopped)]
            raise (real or [errors[min(errors)]])[0]
        return results


def _work(inbox):
    while True:
        index, task, done = inbox.get()
        try:
            done.put((index, task(), None))
        except BaseException as error:  # noqa: BLE001  (handed to the calling thread)
            done.put((index, None, error))


_pool = _Pool()
_blas = None
# The steps now running (on any thread) that want the BLAS on one thread, and the limiter that
# puts back the setting from before the first of them: only the last to finish restores it.
_blas_lock = threading.Lock()
_blas_steps = 0
_blas_limiter = None


def _after_fork_in_child():
    """The child of a fork starts with no step running (see :meth:`_Pool.forked`), and with the
    BLAS setting from before the steps its parent's threads were in (kept at one thread for
    good, had it inherited that limit with nobody left to lift it)."""
    global _blas_lock, _blas_steps, _blas_limiter
    _pool.forked()
    limiter = _blas_limiter
    _blas_lock, _blas_steps, _blas_limiter = threading.Lock(), 0, None
    if limiter is not None:
        limiter.restore_original_limits()


if hasattr(os, "register_at_fork"):  # POSIX
    os.register_at_fork(after_in_child=_after_fork_in_child)


@contextlib.contextmanager
def _one_blas_thread():
    """A context in which NumPy's BLAS uses one thread, for as long as any thread is in one.

    Two nets training on two threads enter and leave in any order: had each restored the
    setting it found, the first to leave would give the BLAS its threads back in the middle of
    the other's step, or the last would restore the other's one thread for good. threadpoolctl
    finds the BLAS among the loaded libraries once; a lower setting of the user's
    (``OPENBLAS_NUM_THREADS=1``, say) is kept.
    """
    global _blas, _blas_steps, _blas_limiter
    with _blas_lock:
        if _blas is None:
            from threadpoolctl import ThreadpoolController
            _blas = ThreadpoolController().select(user_api="blas")
        if _blas_steps == 0 and any(library.num_threads > 1 for library in _blas.lib_controllers):
            _blas_limiter = _blas.limit(limits=1)
        _blas_steps += 1
    try:
        yield
    finally:
        with _blas_lock:
            # Never below 0: a process forked inside a step leaves it with no step counted.
            _blas_steps = max(_blas_steps - 1, 0)
            if _blas_steps == 0 and _blas_limiter is not None:
                _blas_limiter.restore_original_limits()
                _blas_limiter = None


# -- the replay of a failed step ---------------------------------------------------------------

def _forward_through(layers, X):
    """``X`` forward through ``layers``: what each shard runs (and the replay of a failed step)."""
    from nnfs.layers.base import forward_through  # not at the top: the layers import this module
    return forward_through(layers, X)


def _backward_through(layers, dY):
    """``dY`` backward through ``layers`` (see :func:`nnfs.layers.base.backward_through`)."""
    from nnfs.layers.base import backward_through  # not at the top: the layers import this module
    return backward_through(layers, dY)


def _backward_after_forward(layers, X, dY):
    """Forward ``X`` through ``layers``, then ``dY`` back: a whole step, on one thread; only the
    backward pass's errors come out (the forward pass already ran in shards without one)."""
    try:
        _forward_through(layers, X)
    except Exception:  # noqa: BLE001  (the caller raises the shard's error instead)
        return None
    return _backward_through(layers, dY)


def _raise_as_single_threaded(layers, replay, failure):
    """Raise what the single-threaded step raises after a shard failed with ``failure``:
    ``replay(copies)`` on a throwaway copy of ``layers`` and the whole batch, so that its
    message names the whole batch's shapes (a shard's would name its own rows) and the net's
    state is not changed twice.

    Returns (for the caller to raise the shard's error) when the replay does not fail, or
    fails otherwise (a replay out of memory says nothing about the shard's ValueError).
    """
    try:
        replay(replicate(layers)[0])
    except Exception as error:
        if type(error) is type(failure):
            raise error from None


def _bounds(total, count):
    """``[(first, stop), ...]``: ``total`` rows cut into ``count`` contiguous shards, the first ones larger."""
    size, extra = divmod(total, count)
    bounds, first = [], 0
    for index in range(count):
        stop = first + size + (index < extra)
        bounds.append((first, stop))
        first = stop
    return bounds


class Shards:
    """Runs a net's layers over the shards of a batch, one thread each (see the module docstring).

    One per :class:`~nnfs.net.Net`, which asks :meth:`count` how many shards a batch gets
    and then calls :meth:`forward` and :meth:`backward` instead of its own loops.

    Attributes:
        active: True when the last forward pass was sharded (its backward must be too).
    """

    def __init__(self):
        self.replicas = []
        self.active = False
        self._bounds = None
        self._input = None  # the batch of a sharded forward pass, until its backward pass is done
        self._layers = []

    @staticmethod
    def count(backend, X):
        """How many shards ``X`` gets: 1 (no threads) on device backends, for small batches,
        with one thread, or on a thread that already runs a shard."""
        threads = get_num_threads()
        if threads < 2 or backend.is_device or getattr(X, "ndim", 0) == 0 or in_shard():
            return 1
        rows = X.shape[0]
        return max(1, min(threads, rows // MIN_SHARD_SAMPLES, X.size // MIN_SHARD_ELEMENTS))

    def release(self):
        """Drop the replicas' cached activations (after a prediction: no backward follows)."""
        self._input = None
        for replica in self.replicas:
            replica.release()

    def single(self, backend):
        """The context for a batch that runs unsharded, on the calling thread.

        The replicas' caches would only hold memory now, so they are dropped. On the CPU
        the BLAS runs one thread here too (see the module docstring for why).
        """
        self.active, self._input = False, None
        if backend.is_device:  # the replicas would only keep the host parameters alive
            self.replicas, self._layers = [], []
        for replica in self.replicas:
            replica.release()
        if backend.is_device or in_shard():  # a net inside a shard leaves the BLAS to the step
            return contextlib.nullcontext()
        return self._unsharded()

    @contextlib.contextmanager
    def _unsharded(self):
        with _one_blas_thread():
            yield
        self._note(len(self.replicas) + 1)  # what the layers assigned themselves is theirs here too

    def forward(self, layers, X, count):
        """``X`` through ``layers`` in ``count`` shards; the outputs concatenated."""
        self._prepare(layers, count)
        stacks = [layers] + [replica.layers for replica in self.replicas[:count - 1]]
        bounds = _bounds(X.shape[0], count)

        try:
            outputs = self._run(stacks, bounds, X, _forward_through)
        except Exception as failure:
            self.active, self._input = False, None
            self.release()  # the replicas' half-made caches: memory for the replay instead
            _raise_as_single_threaded(layers, lambda copies: _forward_through(copies, X), failure)
            raise
        self._note(count)
        # The batch, for the error of a failing backward pass: weakly, so that the step holds
        # no more than the single-threaded one (a batch cast to the net's dtype is the net's
        # own, and freed after forward as without threads).
        self.active, self._bounds, self._input = True, bounds, weakref.ref(X)
        return get_array_module(outputs[0]).concatenate(outputs, axis=0)

    def backward(self, layers, grad, input_grad):
        """Backward through every shard; each parameter gradient of ``layers`` becomes the
        sum over the shards. Returns the input gradient when ``input_grad``, else None."""
        if not self.active:
            raise RuntimeError("Shards.backward called without a sharded forward pass")
        stacks = [layers] + [replica.layers for replica in self.replicas[:len(self._bounds) - 1]]
        for stack in stacks[1:]:
            stack[0].input_grad = bool(input_grad)

        try:
            grads = self._run(stacks, self._bounds, grad, _backward_through)
        except Exception as failure:
            X = self._input() if self._input is not None else None
            self._input = None
            self.release()
            if X is not None:
                _raise_as_single_threaded(layers, lambda copies: _backward_after_forward(copies, X, grad), failure)
            raise
        finally:
            for stack in stacks[1:]:
                stack[0].input_grad = True
        self._note(len(self._bounds))
        self._input = None
        for index, layer in enumerate(layers):
            for key in layer.params:
                layer.grads[key] = add_in_order([stack[index].grads[key] for stack in stacks])
        if not input_grad:
            return None
        return get_array_module(grads[0]).concatenate(grads, axis=0)

    def __getstate__(self):
        """For pickle and deepcopy: without the weak reference to the batch (a copy made between
        forward and backward reports a failing backward pass with a shard's shapes)."""
        state = dict(vars(self))
        state["_input"] = None
        return state

    def _note(self, count):
        for replica in self.replicas[:count - 1]:
            replica.note()

    def _prepare(self, layers, count):
        """Replicas for shards 1 .. count-1, made for these very layers, refreshed."""
        if len(self._layers) != len(layers) or any(a is not b for a, b in zip(self._layers, layers)):
            self.replicas, self._layers = [], list(layers)  # a new net, or its list of layers changed
        while len(self.replicas) < count - 1:
            self.replicas.append(Replica(layers))
        for replica in self.replicas[:count - 1]:
            replica.refresh(layers)
        for replica in self.replicas[count - 1:]:  # fewer shards this time (a smaller batch)
            replica.release()

    @staticmethod
    def _run(stacks, bounds, data, run_shard):
        group = _Group(len(bounds))
        # Where this batch sits in a larger one (a rank's share), read on the calling thread.
        offset, total = shard_rows(bounds[-1][1])

        def task(index):
            first, stop = bounds[index]

            def run():
                _local.shard = _Shard(index, offset + first, total, group)
                try:
                    return run_shard(stacks[index], data[first:stop])
                except BaseException:
                    group.abort()  # the others may be waiting for this one's sums
                    raise
                finally:
                    _local.shard = None
            return run

        with _one_blas_thread():  # one per shard: the shards are the threads now
            return _pool.run([task(index) for index in range(len(bounds))], group)
