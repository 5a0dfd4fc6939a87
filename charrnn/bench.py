"""``charrnn bench``: charrnn against its numpy reference, side by side in one process.

Training and sampling speeds, in characters per second, of charrnn and of
:mod:`charrnn.reference` at several hidden sizes. The two are timed in turn (charrnn,
reference, charrnn, reference, ...) for several rounds, so that both see the same
machine load, and each round's ratio compares figures taken seconds apart. Medians
and the spread over rounds are reported; on a shared machine the ratios are the
figures to quote.

Each row is also set against this machine's limit (:func:`roofline`, :func:`row_model`):
small compiled probes measure one core's multiply-add peak (float64 and float32, with
the vectors of the kernel build in use) and its read bandwidth from L1, L2 and L3, a
model gives each row's flops and bytes per character, and the table shows the
achieved rate as a fraction of the bound the two give. The run notes how busy the
machine was (:class:`LoadWatch`) and warns when other processes competed for it.

Use it as ``charrnn bench [FILE]``, ``python -m charrnn.bench [FILE]``, or from Python::

    from charrnn.bench import run_bench, format_table
    result = run_bench("tinyshakespeare.txt", hidden_sizes=(100,), rounds=3)
    print(format_table(result))
"""
import argparse
import inspect
import json
import os
import platform
import statistics
import sys
import time

import numpy as np

from . import _cliutil as _util
from . import data as _data
from . import nets as _nets
from . import reference
from .core import sample as _charrnn_sample
from .model import CharRNN

__all__ = ["run_bench", "format_table", "generated_text", "machine_info", "cache_sizes",
           "roofline", "row_model", "row_bound", "LoadWatch", "add_arguments", "run", "main"]

SEQ_LENGTH = 25

#: The cells the bench can time; ``"rnn"`` is the seeds' model (its rows as before).
CELLS = ("rnn", "lstm", "gru")

#: Adam's learning rate in the LSTM and GRU rows (charrnn, reference and PyTorch alike).
CELL_LEARNING_RATE = 2e-3

#: The LSTM and GRU minibatch rows: hidden size, streams, sequence length (float32).
MINIBATCH = (256, 32, 50)

# The generated text: tinyshakespeare's 65 characters, letters at English frequencies.
_LOWER = "etaoinshrdlcumwfgypbvkjxqz"
_LOWER_FREQ = [12.7, 9.1, 8.2, 7.5, 7.0, 6.7, 6.3, 6.1, 6.0, 4.3, 4.0, 2.8, 2.8, 2.4, 2.4,
               2.2, 2.0, 2.0, 1.9, 1.5, 1.0, 0.8, 0.15, 0.15, 0.1, 0.07]
_SEPARATORS = " \n,.;:!?'-&$3"
_SEPARATOR_FREQ = [76, 8, 6, 4, 1.2, 1, 1, 1, 1, 0.5, 0.1, 0.1, 0.1]


def generated_text(n_chars, seed=0):
    """A deterministic text-like string of ``n_chars`` characters with 65 distinct ones.

    Words of letters drawn at English letter frequencies, separated mostly by spaces,
    sometimes by newlines or punctuation, capitalised after sentence ends: the
    character set of tinyshakespeare (letters, digits ``3``, ``\\n !$&',-.:;?``),
    for benchmarking without a data file. The first line holds every character once,
    so any ``n_chars >= 65`` has all 65.

    Parameters
    ----------
    n_chars : int
    seed : int
        Seed of the ``numpy.random.RandomState`` that draws it.

    Returns
    -------
    str
    """
    alphabet = "".join(sorted(set(_LOWER + _LOWER.upper() + _SEPARATORS)))
    rng = np.random.RandomState(seed)
    lower = np.frombuffer(_LOWER.encode(), np.uint8)
    seps = np.frombuffer(_SEPARATORS.encode(), np.uint8)
    p_lower = np.array(_LOWER_FREQ) / sum(_LOWER_FREQ)
    p_sep = np.array(_SEPARATOR_FREQ) / sum(_SEPARATOR_FREQ)
    n = max(int(n_chars) - len(alphabet) - 1, 0)
    codes = lower[rng.choice(lower.size, size=n, p=p_lower)]
    boundary = rng.random_sample(n) < 1 / 5.5  # mean word length 4.5
    codes[boundary] = seps[rng.choice(seps.size, size=int(boundary.sum()), p=p_sep)]
    # capitals: after ". ", "!", "?", newline, and now and then anywhere
    after_end = np.zeros(n, bool)
    after_end[1:] = np.isin(codes[:-1], np.frombuffer(b".!?\n", np.uint8))
    capital = (after_end | (rng.random_sample(n) < 0.02)) & (codes >= ord("a"))
    codes[capital] -= ord("a") - ord("A")
    return (alphabet + "\n" + codes.tobytes().decode("ascii"))[: int(n_chars)]


def machine_info():
    """CPU model, logical CPUs, and the kernel variant and threads charrnn uses.

    Returns
    -------
    dict
        ``cpu`` (str: the model name, then, where Linux reports them, the x86 family,
        model and stepping, which tell generations apart when a virtual machine
        names only the brand, e.g. "AMD EPYC"), ``cpus`` (int), ``kernel`` (the dict of
        ``charrnn.kernel_info()`` where this build has it, else ``{"variant":
        "baseline"}``), ``python``, ``numpy``, ``charrnn`` versions.
    """
    import charrnn

    fields = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if not key:  # the end of the first CPU's block
                    break
                fields.setdefault(key, value.strip())
    except OSError:
        pass
    cpu = fields.get("model name") or platform.processor() or platform.machine() or "unknown"
    if "cpu family" in fields and "model" in fields:
        cpu += f" (family {fields['cpu family']} model {fields['model']}" + (
            f" stepping {fields['stepping']})" if "stepping" in fields else ")")
    kernel_info = getattr(charrnn, "kernel_info", None)
    kernel = dict(kernel_info()) if callable(kernel_info) else {"variant": "baseline"}
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    return {"cpu": cpu, "cpus": cpus, "kernel": kernel, "python": platform.python_version(),
            "numpy": np.__version__, "charrnn": charrnn.__version__}


# -- timing ---------------------------------------------------------------------------------

#: Pause before each timed run, outside the timing, and the longest wait for this
#: process's idle threads to stop spinning (see _settle).
SETTLE_SECONDS = 0.02
SETTLE_LIMIT = 0.3


def _settle():
    """Wait, outside any timing, until no thread of this process is spinning.

    Threads of the previous contender busy-wait after its run: numpy's OpenBLAS for
    about 0.1 s after a reference call (measured here), PyTorch's and charrnn's OpenMP
    teams briefly. A run timed meanwhile shares its cores with them: on two cores
    charrnn's two-thread rows lost about 10% that way. Waits until the process uses
    less than a fifth of a core over 5 ms, at least SETTLE_SECONDS, at most
    SETTLE_LIMIT.
    """
    time.sleep(SETTLE_SECONDS)
    deadline = time.perf_counter() + SETTLE_LIMIT
    while time.perf_counter() < deadline:
        cpu, wall = time.process_time(), time.perf_counter()
        time.sleep(0.005)
        if time.process_time() - cpu < 0.2 * (time.perf_counter() - wall):
            return


def _seconds(fn, n):
    _settle()
    start = time.perf_counter()
    fn(n)
    return time.perf_counter() - start


def _calibrate(fn, target, n_max=10**9):
    """The number of units (iterations, characters) for which ``fn(n)`` takes ~``target`` s.

    ``fn(n)`` must return the seconds taken; counts grow from 1 until a run is long
    enough to extrapolate from (a quarter of the target).
    """
    n = 1
    while True:
        t = fn(n)
        if t >= target / 4 or n >= n_max:
            break
        n = min(n_max, n * min(100, max(2, int(target / 4 / max(t, 1e-6)) + 1)))
    return int(min(n_max, max(1, round(n * target / max(t, 1e-9)))))


# -- the roofline: this core's limits, and what each row needs ------------------------------

#: Cache sizes assumed where the OS does not report them (bytes, per core but L3).
ASSUMED_CACHES = {"L1": 32 << 10, "L2": 512 << 10, "L3": 8 << 20}

#: A level of the hierarchy holds a working set up to this fraction of its size (the
#: rest goes to the other data of a step and to the set-associative misfit).
CACHE_FILL = 0.75

#: Cells' gate counts: rows of a layer's stacked weights are gates * H.
_GATES = {"rnn": 1, "lstm": 4, "gru": 3}

#: Passes over the P parameters per update: Adagrad reads the parameter, gradient and
#: memory and writes two of them back; Adam reads and writes one memory more.
_OPTIMIZER_PASSES = {"adagrad": 5, "sgd": 3, "rmsprop": 5, "adam": 7}


_SIZE_UNITS = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}  # as sysfs writes sizes: "48K"


def cache_sizes(base="/sys/devices/system/cpu/cpu0/cache"):
    """One core's L1 data cache and L2, and the L3, in bytes.

    Read from Linux's sysfs (``base``: the first CPU's cache directory); where a level
    is not reported, :data:`ASSUMED_CACHES` stands in for it.

    Returns
    -------
    dict
        ``L1``, ``L2``, ``L3`` (int bytes) and ``source``: ``"sysfs"``, or
        ``"assumed"`` when any of the three was not reported.
    """
    found = {}
    try:
        entries = sorted(os.listdir(base))
    except OSError:
        entries = []
    for entry in entries:
        if not entry.startswith("index"):
            continue
        try:
            with open(os.path.join(base, entry, "level")) as f:
                level = int(f.read())
            with open(os.path.join(base, entry, "type")) as f:
                kind = f.read().strip()
            with open(os.path.join(base, entry, "size")) as f:
                size = f.read().strip()
        except (OSError, ValueError):
            continue
        try:
            nbytes = int(size[:-1]) * _SIZE_UNITS[size[-1]] if size[-1] in _SIZE_UNITS \
                else int(size)
        except (ValueError, IndexError):
            continue
        if kind in ("Data", "Unified") and 1 <= level <= 3 and nbytes > 0:
            found[f"L{level}"] = nbytes
    sizes = {level: found.get(level, ASSUMED_CACHES[level]) for level in ASSUMED_CACHES}
    sizes["source"] = "sysfs" if len(found) == len(ASSUMED_CACHES) else "assumed"
    return sizes


def _probe_sizes(caches):
    """The bytes the read probe streams for each level: half of L1, half of L2, and four
    times L2 (but at most half of L3) for the L3."""
    def whole_pages(n):
        return max(4096, int(n) // 4096 * 4096)
    return {"L1": whole_pages(caches["L1"] / 2), "L2": whole_pages(caches["L2"] / 2),
            "L3": whole_pages(min(4 * caches["L2"], max(caches["L3"] / 2, caches["L2"])))}


def _aligned_doubles(nbytes, align=64):
    """A float64 array of ``nbytes`` bytes (filled with ones) whose data starts on an
    ``align``-byte boundary, as the kernels' weights would on a cache line."""
    raw = np.ones(nbytes // 8 + align // 8, np.float64)
    start = (-raw.ctypes.data % align) // 8
    return raw[start:start + nbytes // 8]


def _best_rate(run, work_per_unit, seconds, repeats):
    """Best of ``repeats`` rates ``work_per_unit * n / time`` of ``run(n)``, with n
    calibrated so that a run takes about ``seconds``. The best, not the median: another
    process can only slow a probe down."""
    def timed(n):
        start = time.perf_counter()
        run(n)
        return time.perf_counter() - start
    n = _calibrate(timed, seconds)
    return max(work_per_unit * n / max(timed(n), 1e-9) for _ in range(repeats))


def roofline(seconds=0.004, repeats=5, kernels=None):
    """Measure one core's multiply-add peak and read bandwidths with compiled probes.

    The probes are in ``csrc/roofline.pxi`` and run in the kernel build in use (or
    ``kernels``), without the GIL and without allocating:

    - the FMA probe runs 12 independent chains ``c = c * m + a`` on vectors of the
      build's width (64 bytes with AVX-512, 32 with AVX2, 16 in the portable build,
      which has no fused multiply-add: a multiply and an add), counting 2 flops per
      lane;
    - the read probe sums a buffer of doubles with the same vectors, 8 sums at once,
      over and over: half of L1, half of L2, and 4 times L2 (in L3) as reported by
      :func:`cache_sizes`.

    Each is timed ``repeats`` times for about ``seconds``; the best rate counts.

    Parameters
    ----------
    seconds : float
        Aimed duration of one timed probe.
    repeats : int
    kernels : module, optional
        A compiled kernel module (default: the one ``charrnn`` uses).

    Returns
    -------
    dict
        ``variant`` (the build), ``vector_bytes``, ``fma_gflops`` (``float64``,
        ``float32``: GFLOP/s of one core), ``caches`` (:func:`cache_sizes`),
        ``probe_bytes`` and ``bandwidth_gbs`` (``L1``, ``L2``, ``L3``: GB/s read by
        one core).
    """
    from . import _dispatch
    variant = _dispatch.variant if kernels is None else getattr(kernels, "__name__", "?")
    kernels = _dispatch.kernels if kernels is None else kernels
    layout = kernels._roofline_layout()
    vbytes = layout["vector_bytes"]
    fma = {}
    for name, single, size in (("float64", False, 8), ("float32", True, 4)):
        flops = 2 * layout["fma_chains"] * (vbytes // size)
        fma[name] = _best_rate(lambda n, single=single: kernels._roofline_fma(single, n),
                               flops, seconds, repeats) / 1e9
    caches = cache_sizes()
    probes = _probe_sizes(caches)
    bandwidth = {}
    for level, nbytes in probes.items():
        buf = _aligned_doubles(nbytes)
        kernels._roofline_read(buf, 1)  # into the cache first
        bandwidth[level] = _best_rate(lambda n, buf=buf: kernels._roofline_read(buf, n),
                                      buf.nbytes, seconds, repeats) / 1e9
    return {"variant": variant, "vector_bytes": vbytes, "fma_gflops": fma, "caches": caches,
            "probe_bytes": probes, "bandwidth_gbs": bandwidth}


def _better_roofline(a, b):
    """The higher of each peak and bandwidth of two :func:`roofline` results."""
    better = dict(a)
    for key in ("fma_gflops", "bandwidth_gbs"):
        better[key] = {k: max(a[key][k], b[key][k]) for k in a[key]}
    return better


def _parameters(cell, H, V):
    if cell == "rnn":  # the seeds' model: Wxh, Whh, Why, bh, by
        return H * V + H * H + V * H + H + V
    gates = _GATES[cell]
    return gates * H * (V + H + 2) + V * H + V


def row_model(task, hidden_size, vocab_size, cell="rnn", dtype="float64", batch_size=1,
              threads=1, seq_length=SEQ_LENGTH, optimizer="adagrad"):
    """Flops and bytes per character of a bench row, in phases that run one after another.

    With ``W = gates * H * H`` (``W_hh``: gates = 1 for the seeds' rnn, 4 for lstm, 3 for
    gru), ``D = V * H`` (the decoder ``Why``), ``P`` parameters, ``s`` bytes per number
    (8 for float64, 4 for float32), ``B`` streams on ``n`` threads, ``T`` characters per
    stream and update:

    - **training, recurrence** (step after step: no reuse of a weight between
      characters of a stream): ``W_hh @ h`` forward and ``W_hh.T @ dh`` backward,
      ``4 W`` flops; each thread reads both copies of ``W_hh`` (the kernels keep a
      transposed one) once per step for its ``B / n`` streams: ``2 s W / (B / n)``
      bytes. Its working set, ``2 s W``, sets the cache level it streams from.
    - **training, off the recurrence** (products over all T rows of a thread's streams
      at once: ``dW_hh``, the decoder forward, ``dWhy`` and ``Why.T @ dy``): ``2 W + 6 D``
      flops, each thread reading those weights once per update, and the optimizer's
      passes over the P parameters (5 for Adagrad, 7 for Adam):
      ``s ((W + 3 D) n + passes * P) / (T B)`` bytes; working set ``passes * s * P``.
    - **sampling** (everything step by step): ``2 (W + D)`` flops and ``s (W + D)``
      bytes, working set ``s (W + D)``.

    The one-hot input products (a column gather), the nonlinearities, the softmax and the
    optimizer's square roots and divisions are not counted: the bound (:func:`row_bound`)
    is optimistic where they matter (small H).

    Returns
    -------
    dict
        ``phases``: a list of ``{"name", "flops", "bytes", "working_set"}`` per
        character (the first two per character of all streams together);
        ``flops`` and ``bytes``: their sums; ``threads``.
    """
    if task not in ("train", "sample"):
        raise ValueError(f"task must be 'train' or 'sample', got {task!r}")
    if cell not in _GATES:
        raise ValueError(f"cell must be one of {', '.join(_GATES)}, got {cell!r}")
    if optimizer not in _OPTIMIZER_PASSES:
        raise ValueError(f"optimizer must be one of {', '.join(_OPTIMIZER_PASSES)}, got "
                         f"{optimizer!r}")
    H, V, s = int(hidden_size), int(vocab_size), np.dtype(dtype).itemsize
    W, D = _GATES[cell] * H * H, V * H
    threads = max(1, min(int(threads), int(batch_size)))
    if task == "sample":
        phases = [{"name": "step", "flops": 2 * (W + D), "bytes": s * (W + D),
                   "working_set": s * (W + D)}]
    else:
        P = _parameters(cell, H, V)
        passes = _OPTIMIZER_PASSES[optimizer]
        rows = seq_length * batch_size
        phases = [{"name": "recurrence", "flops": 4 * W,
                   "bytes": 2 * s * W * threads / batch_size, "working_set": 2 * s * W},
                  {"name": "off-recurrence", "flops": 2 * W + 6 * D,
                   "bytes": s * ((W + 3 * D) * threads + passes * P) / rows,
                   "working_set": passes * s * P}]
    return {"phases": phases, "flops": sum(p["flops"] for p in phases),
            "bytes": sum(p["bytes"] for p in phases), "threads": threads,
            "dtype": np.dtype(dtype).name}


def _level(working_set, caches):
    for level in ("L1", "L2"):
        if working_set <= CACHE_FILL * caches[level]:
            return level
    return "L3"


def row_bound(model, roof):
    """The most characters per second a row can reach on this machine, and what sets it.

    Each phase of ``model`` (:func:`row_model`) takes at least the longer of its flops at
    the FMA peak and its bytes at the read bandwidth of the level its working set fits
    in (L1 or L2 at up to :data:`CACHE_FILL` of their size, else L3), both times the
    row's threads (each core has its own L1 and L2, and the peaks were measured on
    one); the phases run one after another, so their times add up.

    Returns
    -------
    dict
        ``bound`` (characters per second), ``limit`` (``"FMA"`` or the cache level of
        the phase that takes the most time at its limit), ``peak_gflops`` (the FMA peak
        of the row's dtype and threads).
    """
    n = model["threads"]
    peak = roof["fma_gflops"][model["dtype"]] * 1e9 * n
    seconds, limits = 0.0, {}
    for phase in model["phases"]:
        level = _level(phase["working_set"], roof["caches"])
        compute = phase["flops"] / peak
        memory = phase["bytes"] / (roof["bandwidth_gbs"][level] * 1e9 * n)
        name = "FMA" if compute >= memory else level
        limits[name] = limits.get(name, 0.0) + max(compute, memory)
        seconds += max(compute, memory)
    return {"bound": 1 / seconds, "limit": max(limits, key=limits.get),
            "peak_gflops": peak / 1e9}


class LoadWatch:
    """How busy the machine was between :meth:`start` and :meth:`stop`.

    Other processes' CPU time is the machine's busy time (Linux ``/proc/stat``) less
    this process's (``time.process_time``, all its threads); ``steal`` is time the
    hypervisor gave the virtual CPUs to other guests. Load averages are read at both
    ends. The machine counts as busy when other processes used more than
    ``busy_fraction`` of its CPUs on average, steal took more than that, or the 1-minute
    load average before the run was at least its CPU count minus one half.
    """

    def __init__(self, busy_fraction=0.1):
        self.busy_fraction = busy_fraction
        self._start = None

    @staticmethod
    def _machine_seconds():
        """(busy, steal) CPU seconds of the whole machine so far, or None off Linux."""
        try:
            with open("/proc/stat") as f:
                fields = f.readline().split()
            ticks = [int(x) for x in fields[1:]]
            per_second = os.sysconf("SC_CLK_TCK")
        except (OSError, ValueError, AttributeError):
            return None
        if fields[:1] != ["cpu"] or len(ticks) < 8:
            return None
        # user nice system idle iowait irq softirq steal (guest is inside user)
        busy = ticks[0] + ticks[1] + ticks[2] + ticks[5] + ticks[6]
        return busy / per_second, ticks[7] / per_second

    @staticmethod
    def _loadavg():
        try:
            return os.getloadavg()[0]
        except (OSError, AttributeError):
            return None

    def start(self):
        """Take the readings at the start; returns self."""
        self._start = (time.perf_counter(), time.process_time(), self._machine_seconds(),
                       self._loadavg())
        return self

    def stop(self):
        """The readings since :meth:`start`.

        Returns
        -------
        dict
            ``seconds`` (wall), ``cpus`` (the machine's), ``loadavg_before``,
            ``loadavg_after`` (1-minute, or None), ``own_cpus`` (this process's CPU
            time / wall), ``other_cpus`` and ``steal_cpus`` (the same for other
            processes and for the hypervisor, None where not measurable), ``busy``
            (bool) and ``reasons`` (list of str: why it counts as busy).
        """
        if self._start is None:
            raise RuntimeError("LoadWatch.stop() called before start()")
        wall0, own0, machine0, load0 = self._start
        wall = max(time.perf_counter() - wall0, 1e-9)
        own = (time.process_time() - own0) / wall
        machine1, load1 = self._machine_seconds(), self._loadavg()
        cpus = os.cpu_count() or 1
        other = steal = None
        if machine0 is not None and machine1 is not None:
            other = max(0.0, (machine1[0] - machine0[0]) / wall - own)
            steal = max(0.0, (machine1[1] - machine0[1]) / wall)
        limit = self.busy_fraction * cpus
        reasons = []
        if other is not None and other > limit:
            reasons.append(f"other processes used {other:.2f} of the {cpus} CPUs on average")
        if steal is not None and steal > limit:
            reasons.append(f"the hypervisor took {steal:.2f} CPUs (steal time)")
        if load0 is not None and load0 >= cpus - 0.5:
            reasons.append(f"the load average was {load0:.2f} on {cpus} CPUs at the start")
        return {"seconds": wall, "cpus": cpus, "loadavg_before": load0, "loadavg_after": load1,
                "own_cpus": own, "other_cpus": other, "steal_cpus": steal,
                "busy": bool(reasons), "reasons": reasons}


class _ReferenceTrainer:
    """Times the reference's training loop for ``n`` iterations, its set-up subtracted.

    ``reference.train`` (the seeds' model, ``cell=None``) or ``reference.stack_train``
    (``cell="lstm"`` or ``"gru"``, Adam as the charrnn rows use) builds the vocabulary
    and a list of indices before its loop; it runs on a slice just long enough for the
    iterations (the full vocabulary written first, so V is the full text's), and the
    time of the same call with ``num_iterations=0`` (best of 3) is taken off.
    """

    def __init__(self, text, chars, hidden_size, cell=None):
        self.text, self.prefix, self.hidden_size = text, "".join(chars), hidden_size
        self.cell = cell
        self._setup = {}

    def _slice(self, n):
        length = n * SEQ_LENGTH + SEQ_LENGTH + 2
        return self.prefix + self.text[:length]

    def _train(self, text, n):
        _settle()
        start = time.perf_counter()
        if self.cell is None:
            reference.train(text, hidden_size=self.hidden_size, seq_length=SEQ_LENGTH,
                            num_iterations=n)
        else:
            reference.stack_train(text, cell=self.cell, hidden_size=self.hidden_size,
                                  seq_length=SEQ_LENGTH, num_iterations=n,
                                  learning_rate=CELL_LEARNING_RATE, optimizer="adam")
        return time.perf_counter() - start

    def __call__(self, n):
        text = self._slice(n)
        if n not in self._setup:
            self._setup[n] = min(self._train(text, 0) for _ in range(3))
        return max(self._train(text, n) - self._setup[n], 1e-9)


def _import_torch():
    """``torch``, or None where it cannot be imported (it is never a dependency)."""
    try:
        import torch
    except ImportError:
        return None
    return torch


class _TorchTrainer:
    """Times ``n`` training steps of the same network in PyTorch on the CPU.

    ``nn.LSTM`` or ``nn.GRU`` (V inputs, H units) and an ``nn.Linear`` decoder in
    ``dtype``, fed one-hot rows of an identity matrix (an embedding of the identity:
    one gather, no dense product with a one-hot built each step); the text cut into
    B streams walked T characters at a time, state carried between steps and reset
    where charrnn resets it. A step is everything charrnn's iteration does: forward,
    summed cross-entropy, backward, ``clip_grad_value_`` at ``clip``, Adam's update.
    ``torch.set_num_threads(threads)`` around each timed run (then restored).
    """

    def __init__(self, torch, codes, cell, H, V, B, T, dtype, threads, clip=5.0):
        self.torch, self.threads, self.clip = torch, threads, clip
        self.B, self.T, self.V = B, T, V
        dtype = getattr(torch, np.dtype(dtype).name)
        per_stream = len(codes) // B
        streams = np.asarray(codes[:B * per_stream], np.int64).reshape(B, per_stream)
        self.data = torch.from_numpy(np.ascontiguousarray(streams.T))  # (per_stream, B)
        self.eye = torch.eye(V, dtype=dtype)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            self.rnn = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[cell](V, H).to(dtype)
            self.decoder = torch.nn.Linear(H, V).to(dtype)
        self.params = list(self.rnn.parameters()) + list(self.decoder.parameters())
        self.optimizer = torch.optim.Adam(self.params, lr=CELL_LEARNING_RATE)
        self.state, self.p = None, 0
        self(2)  # PyTorch's first steps are many times slower than the rest: not timed

    def _step(self):
        torch, T = self.torch, self.T
        if self.p + T + 1 >= self.data.shape[0]:
            self.state, self.p = None, 0  # as charrnn: back to the start, state zeroed
        inputs = self.eye[self.data[self.p:self.p + T]]  # (T, B, V) one-hot
        targets = self.data[self.p + 1:self.p + T + 1]
        out, state = self.rnn(inputs, self.state)
        self.state = tuple(s.detach() for s in state) if isinstance(state, tuple) \
            else state.detach()
        logits = self.decoder(out)
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, self.V),
                                                 targets.reshape(-1), reduction="sum")
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_value_(self.params, self.clip)
        self.optimizer.step()
        self.p += T

    def _steps(self, n):
        for _ in range(n):
            self._step()

    def __call__(self, n):
        before = self.torch.get_num_threads()
        if before != self.threads:
            self.torch.set_num_threads(self.threads)
        try:
            return _seconds(self._steps, n)
        finally:
            if before != self.threads:
                self.torch.set_num_threads(before)


class _Task:
    """One row of the table: a charrnn timing, the reference timing it is compared with,
    and optionally PyTorch's."""

    def __init__(self, task, hidden_size, config, run_charrnn, run_reference, chars_per_unit,
                 reference_row=None, cell="rnn", run_torch=None, model=None):
        self.task, self.hidden_size, self.config = task, hidden_size, config
        self.cell = cell
        self.model = model                    # row_model(...): flops and bytes per character
        self.run_charrnn, self.run_reference = run_charrnn, run_reference
        self.run_torch = run_torch
        self.chars_per_unit = chars_per_unit  # characters per iteration (or per sample)
        self.reference_row = reference_row    # share another row's reference figure
        self.n_charrnn = self.n_reference = self.n_torch = None
        self.charrnn, self.reference, self.torch = [], [], []

    def name(self):
        return f"{self.task} H={self.hidden_size} {self.config}"


def _summary(values):
    return {"median": statistics.median(values), "min": min(values), "max": max(values),
            "rounds": list(values)}


def _charrnn_supports(**options):
    """Whether this build's CharRNN takes these keyword arguments."""
    try:
        accepted = inspect.signature(CharRNN).parameters
    except (TypeError, ValueError):
        return False
    return all(name in accepted for name in options)


def _fit_timer(model):
    def fit(n):
        return _seconds(model.fit, n)
    return fit


def _seed_tasks(text, chars, hidden_sizes, extras, threads):
    """The seeds' model: training and sampling at each size, then the float32 / minibatch
    extras at H=100."""
    tasks = []
    ref_train = {}
    for H in hidden_sizes:
        # one thread, as row_model assumes: from W_hh of 1 MiB on, batch-1 training
        # splits each step's rows between two threads where it may (the next row)
        model = CharRNN(chars, H, SEQ_LENGTH, seed=0, num_threads=1)
        model.set_text(text)
        trainer = _ReferenceTrainer(text, chars, H)
        row = _Task("train", H, "float64", _fit_timer(model), trainer, SEQ_LENGTH,
                    model=row_model("train", H, len(chars)))
        ref_train[H] = row
        tasks.append(row)
        if threads >= 2 and _nets._split_rows(H, 1, 8, 2):
            split = CharRNN(chars, H, SEQ_LENGTH, seed=0, num_threads=2)
            split.set_text(text)
            tasks.append(_Task("train", H, "float64 split 2 threads", _fit_timer(split),
                               None, SEQ_LENGTH, reference_row=row))

        # sampling with weights trained a little, so that the distribution is not flat
        model.fit(20)
        params = tuple(np.array(a) for a in model.params)
        h = np.zeros((H, 1))

        def sample_charrnn(n, params=params, h=h):
            rng = np.random.RandomState(1)
            return _seconds(lambda k: _charrnn_sample(h, 0, k, params, rng), n)

        def sample_reference(n, params=params, h=h):
            rng = np.random.RandomState(1)
            return _seconds(lambda k: reference.sample(h, 0, k, params, rng), n)

        tasks.append(_Task("sample", H, "float64", sample_charrnn, sample_reference, 1,
                           model=row_model("sample", H, len(chars))))

    if not extras:
        return tasks
    H = 100
    variants = [("float32", dict(dtype="float32")),
                ("float32 B=50 2 threads",
                 dict(dtype="float32", batch_size=50, num_threads=2))]
    for config, options in variants:
        if not _charrnn_supports(**options):
            continue
        try:
            model = CharRNN(chars, H, SEQ_LENGTH, seed=0, **options)
            model.set_text(text)
            model.fit(1)
        except (TypeError, ValueError, NotImplementedError):
            continue  # accepted by the signature but not by this build
        batch = int(getattr(model, "batch_size", options.get("batch_size", 1)))
        base = ref_train.get(H)
        run_reference = None if base else _ReferenceTrainer(text, chars, H)
        shape = row_model("train", H, len(chars), dtype=options["dtype"], batch_size=batch,
                          threads=min(threads, options.get("num_threads", 1)))
        tasks.append(_Task("train", H, config, _fit_timer(model), run_reference,
                           SEQ_LENGTH * batch, reference_row=base, model=shape))
    return tasks


def _cell_tasks(text, chars, cell, hidden_sizes, minibatch, threads, torch):
    """LSTM or GRU training: batch 1 float64 at each size against the reference, then
    (``minibatch`` (H, B, T), unless None) float32 minibatches on ``threads`` threads
    against the reference's batch-1 rate at H and, with ``torch``, PyTorch's."""
    def model(H, T, **options):
        m = CharRNN(chars, H, T, CELL_LEARNING_RATE, seed=0, cell=cell, optimizer="adam",
                    **options)
        m.set_text(text)
        return m

    tasks, ref_train = [], {}
    for H in hidden_sizes:
        row = _Task("train", H, f"{cell} float64", _fit_timer(model(H, SEQ_LENGTH)),
                    _ReferenceTrainer(text, chars, H, cell), SEQ_LENGTH, cell=cell,
                    model=row_model("train", H, len(chars), cell, optimizer="adam"))
        ref_train[H] = row
        tasks.append(row)
    if minibatch is None:
        return tasks
    H, B, T = minibatch
    base = ref_train.get(H)
    run_reference = None if base else _ReferenceTrainer(text, chars, H, cell)
    run_torch = None
    if torch is not None:
        char_to_ix = {ch: i for i, ch in enumerate(chars)}
        codes = np.fromiter((char_to_ix[ch] for ch in text), np.int64, len(text))
        run_torch = _TorchTrainer(torch, codes, cell, H, len(chars), B, T, "float32", threads)
    fit = _fit_timer(model(H, T, dtype="float32", batch_size=B, num_threads=threads))
    tasks.append(_Task("train", H, f"{cell} float32 B={B} T={T} {_threads(threads)}", fit,
                       run_reference, T * B, reference_row=base, cell=cell,
                       run_torch=run_torch,
                       model=row_model("train", H, len(chars), cell, "float32", B, threads, T,
                                       "adam")))
    return tasks


#: Rounds of a row whose fastest is more than this many times its slowest make the run
#: count as busy.
SPREAD_LIMIT = 1.25


def _row_roofline(task, roof):
    """A row's ``roofline`` entry: its model, bound, and charrnn's rounds against it."""
    model = task.model
    bound = row_bound(model, roof)
    median = statistics.median(task.charrnn)
    return {"flops_per_char": model["flops"], "bytes_per_char": model["bytes"],
            "threads": model["threads"], "bound": bound["bound"], "limit": bound["limit"],
            "of_bound": _summary([c / bound["bound"] for c in task.charrnn]),
            "gflops": median * model["flops"] / 1e9,
            "of_peak": median * model["flops"] / 1e9 / bound["peak_gflops"]}


def _threads(n):
    return f"{n} thread" if n == 1 else f"{n} threads"


def run_bench(path=None, hidden_sizes=(32, 100, 256, 512), rounds=5, target_seconds=0.4,
              text_length=1_000_000, extras=True, progress=None, cells=CELLS,
              minibatch=MINIBATCH, probe_seconds=0.004):
    """Time charrnn against ``charrnn.reference`` (and PyTorch), interleaved, over rounds.

    The seeds' model (``"rnn"`` in ``cells``), at each hidden size H: training
    (``CharRNN.fit``, set-up excluded, against the loop of ``reference.train``) and
    sampling (``charrnn.sample`` against ``reference.sample`` with the same float64
    weights), at ``seq_length`` 25. Where this build of charrnn supports them, two more
    training rows at H=100: float32, and minibatch ``batch_size=50, dtype="float32",
    num_threads=2``, both compared with the reference's batch-1 float64 rate of the same
    round.

    ``"lstm"`` and ``"gru"`` in ``cells``: training at each H, batch 1, float64, Adam,
    against ``reference.stack_train``; then (with ``extras``) a minibatch row
    ``minibatch = (H, B, T)``, float32, on the threads charrnn uses by default
    (``kernel_info()["threads"]``), compared with the reference's batch-1 rate at that H
    (the reference steps streams one by one: its rate per character does not depend on
    B) and, where ``import torch`` works, with PyTorch on the CPU at the same thread
    count (the same network, T, B, dtype, clip and optimizer; see ``_TorchTrainer``).

    Each round times every row, charrnn then reference (then PyTorch); each row's
    iteration counts are chosen once, beforehand, so that a timed run takes about
    ``target_seconds``.

    Before the rows and again after them, :func:`roofline` measures this core's limits
    (each probe for about ``probe_seconds``; the better of the two figures counts, as
    another process can only lower them), and every row is set against the bound :func:`row_bound` gives
    for its :func:`row_model`. A :class:`LoadWatch` runs from start to end: the result
    says how busy the machine was, and why it counts as busy (other processes, steal
    time, the load average, or rounds of a row that spread by more than
    :data:`SPREAD_LIMIT`).

    Parameters
    ----------
    path : str or os.PathLike, optional
        A UTF-8 text (e.g. tinyshakespeare). Default: :func:`generated_text`.
    hidden_sizes : sequence of int
    rounds : int
    target_seconds : float
        Aimed duration of each timed run, for charrnn, the reference and PyTorch.
    text_length : int
        Length of the generated text when ``path`` is None.
    extras : bool
        Whether to add the float32 and minibatch rows (when supported).
    progress : callable, optional
        Called with a short str before each stage (the CLI prints it to stderr).
    cells : sequence of {"rnn", "lstm", "gru"}
        The cells to time, in this order.
    minibatch : tuple of int (H, B, T)
        The LSTM and GRU minibatch rows' hidden size, streams and sequence length.
    probe_seconds : float
        Aimed duration of each timed roofline probe.

    Returns
    -------
    dict
        ``machine`` (see :func:`machine_info`), ``text`` (source, characters,
        vocabulary size), ``settings`` (with ``torch``, where there are LSTM or GRU
        minibatch rows: PyTorch's version, or None where it is not importable), and
        ``rows``: one dict per row with ``task`` ("train" or "sample"), ``cell``,
        ``hidden_size``, ``config``, ``charrnn`` and
        ``reference`` (characters per second: ``median``, ``min``, ``max``,
        ``rounds``), ``ratio`` (the same over the per-round ratios charrnn /
        reference), and the units timed per run (``charrnn_units``,
        ``reference_units``: iterations for training, characters for sampling). Rows
        timed against PyTorch also have ``torch``, ``torch_ratio`` (charrnn / PyTorch)
        and ``torch_units``. Every row has ``roofline``: ``flops_per_char``,
        ``bytes_per_char``, ``threads``, ``bound`` (characters per second), ``limit``
        (``"FMA"``, ``"L1"``, ``"L2"`` or ``"L3"``), ``of_bound`` (charrnn / bound, the
        summary over rounds), ``gflops`` (median) and ``of_peak`` (the median's share
        of the FMA peak at the row's dtype and threads). Also ``roofline`` (see
        :func:`roofline`) and ``load`` (see :meth:`LoadWatch.stop`, with ``spread``:
        the largest max / min of a row's charrnn rounds).
    """
    note = progress or (lambda message: None)
    rounds = int(rounds)
    if rounds < 1:
        raise ValueError(f"rounds must be >= 1, got {rounds}")
    target_seconds = float(target_seconds)
    if not 0 < target_seconds < float("inf"):
        raise ValueError(f"target_seconds must be a finite number > 0, got {target_seconds}")
    cells = tuple(cells)
    unknown = [c for c in cells if c not in CELLS]
    if unknown or not cells or len(set(cells)) != len(cells):
        raise ValueError(f"cells must be distinct names among {', '.join(CELLS)}, got "
                         f"{', '.join(map(str, cells)) or 'none'}")
    H_mb, B_mb, T_mb = (int(x) for x in minibatch)
    if min(H_mb, B_mb, T_mb) < 1:
        raise ValueError(f"minibatch (H, B, T) must be positive integers, got {minibatch}")
    if path is None:
        text = generated_text(text_length)
        source = "generated text (charrnn.bench.generated_text)"
    else:
        text = "".join(_data.read_pieces(path))  # a regular file only: /dev/zero never ends
        source = os.fspath(path)
    chars = _data.vocabulary(text)
    if len(text) < 2 * SEQ_LENGTH + 2:
        raise ValueError(f"the text has {len(text)} characters; the benchmark needs at least "
                         f"{2 * SEQ_LENGTH + 2}")
    cell_minibatch = (H_mb, B_mb, T_mb) if extras else None
    if cell_minibatch and set(cells) - {"rnn"} and len(text) < B_mb * (T_mb + 2):
        raise ValueError(f"the text has {len(text)} characters; the minibatch rows (B={B_mb}, "
                         f"T={T_mb}) need at least {B_mb * (T_mb + 2)}: a smaller minibatch, "
                         f"or no extras")

    probe_seconds = float(probe_seconds)
    if not 0 < probe_seconds < float("inf"):
        raise ValueError(f"probe_seconds must be a finite number > 0, got {probe_seconds}")

    watch = LoadWatch().start()
    machine = machine_info()
    threads = int(machine["kernel"].get("threads", 1))
    note("measuring the roofline")
    roof = roofline(probe_seconds)
    torch = _import_torch() if cell_minibatch else None
    tasks = []
    for cell in cells:
        if cell == "rnn":
            tasks += _seed_tasks(text, chars, hidden_sizes, extras, threads)
        else:
            tasks += _cell_tasks(text, chars, cell, hidden_sizes, cell_minibatch, threads,
                                 torch)
    # reference training runs on a slice of the text: at most this many iterations
    max_ref_iterations = max(1, (len(text) - SEQ_LENGTH - 2) // SEQ_LENGTH)
    for task in tasks:
        note(f"calibrating {task.name()}")
        task.n_charrnn = _calibrate(task.run_charrnn, target_seconds)
        if task.run_reference is not None:
            n_max = max_ref_iterations if task.task == "train" else 10**9
            task.n_reference = _calibrate(task.run_reference, target_seconds, n_max)
        if task.run_torch is not None:
            task.n_torch = _calibrate(task.run_torch, target_seconds)

    for r in range(rounds):
        note(f"round {r + 1} of {rounds}")
        for task in tasks:
            task.charrnn.append(task.n_charrnn * task.chars_per_unit
                                / task.run_charrnn(task.n_charrnn))
            if task.run_reference is not None:
                scale = SEQ_LENGTH if task.task == "train" else 1
                task.reference.append(task.n_reference * scale
                                      / task.run_reference(task.n_reference))
            if task.run_torch is not None:
                task.torch.append(task.n_torch * task.chars_per_unit
                                  / task.run_torch(task.n_torch))
    note("measuring the roofline again")
    roof = _better_roofline(roof, roofline(probe_seconds))

    rows = []
    for task in tasks:
        base = task.reference_row or task
        ratios = [c / b for c, b in zip(task.charrnn, base.reference)]
        row = {
            "task": task.task, "cell": task.cell, "hidden_size": task.hidden_size,
            "config": task.config, "charrnn": _summary(task.charrnn),
            "reference": _summary(base.reference), "ratio": _summary(ratios),
            "charrnn_units": task.n_charrnn, "reference_units": base.n_reference,
        }
        if task.run_torch is not None:
            row["torch"] = _summary(task.torch)
            row["torch_ratio"] = _summary([c / t for c, t in zip(task.charrnn, task.torch)])
            row["torch_units"] = task.n_torch
        if task.model is not None:  # no model of the split batch-1 rows
            row["roofline"] = _row_roofline(task, roof)
        rows.append(row)
    load = watch.stop()
    load["spread"] = max(r["charrnn"]["max"] / r["charrnn"]["min"] for r in rows) \
        if rows and rounds > 1 else 1.0
    spread = [f"{task.name()} by {row['charrnn']['max'] / row['charrnn']['min'] - 1:.0%}"
              for task, row in zip(tasks, rows)
              if rounds > 1 and row["charrnn"]["max"] > SPREAD_LIMIT * row["charrnn"]["min"]]
    if spread:
        load["reasons"].append("rounds spread (max / min): " + ", ".join(spread))
        load["busy"] = True
    result = {
        "machine": machine,
        "roofline": roof,
        "load": load,
        "text": {"source": source, "characters": len(text), "vocab_size": len(chars)},
        "settings": {"seq_length": SEQ_LENGTH, "rounds": rounds,
                     "target_seconds": target_seconds, "cells": list(cells),
                     "minibatch": list(cell_minibatch) if cell_minibatch else None,
                     "threads": threads,
                     "reference": "charrnn.reference (numpy), batch 1, float64"},
        "rows": rows,
    }
    if cell_minibatch and set(cells) - {"rnn"}:  # rows that PyTorch could run
        result["settings"]["torch"] = torch.__version__ if torch is not None else None
    return result


def _rate(x):
    if x >= 1e6:
        return f"{x / 1e6:.2f}M"
    if x >= 1e3:
        return f"{x / 1e3:.1f}k"
    return f"{x:.0f}"


def _cell(summary, fmt):
    return f"{fmt(summary['median'])} ({fmt(summary['min'])}-{fmt(summary['max'])})"


def _bytes(n):
    for unit, size in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:g} {unit}"
    return f"{n} B"


def _roofline_lines(roof):
    fma, bw, probes = roof["fma_gflops"], roof["bandwidth_gbs"], roof["probe_bytes"]
    caches = roof["caches"]
    sizes = ", ".join(f"{level} {_bytes(caches[level])}" for level in ("L1", "L2", "L3"))
    assumed = " (assumed: not reported by the OS)" if caches["source"] != "sysfs" else ""
    return [
        f"roofline, one core ({roof['variant']} build, {roof['vector_bytes']}-byte vectors): "
        f"FMA peak {fma['float64']:.1f} GFLOP/s float64, {fma['float32']:.1f} float32; "
        "read " + ", ".join(f"{level} {bw[level]:.0f} GB/s ({_bytes(probes[level])})"
                            for level in ("L1", "L2", "L3")),
        f"caches: {sizes}{assumed} (L1 and L2 per core); of limit = median charrnn rate / "
        f"the row's bound (charrnn.bench.row_model), and what sets the bound",
    ]


def _load_lines(load):
    def num(x):
        return "?" if x is None else f"{x:.2f}"
    lines = [f"load: other processes {num(load['other_cpus'])} CPUs, steal "
             f"{num(load['steal_cpus'])}, this process {num(load['own_cpus'])}, of "
             f"{load['cpus']}, on average over {load['seconds']:.0f} s; load average "
             f"{num(load['loadavg_before'])} before, {num(load['loadavg_after'])} after"]
    if load["busy"]:
        lines.append("WARNING: the machine was busy during the run ("
                     + "; ".join(load["reasons"]) + "): rates are low and spread, ratios "
                     "less so; rerun on an idle machine for figures to quote")
    return lines


def _of_limit(row):
    r = row["roofline"]
    return f"{r['of_bound']['median']:.0%} {r['limit']}"


def format_table(result):
    """The result of :func:`run_bench` as a text table (str), with a header of the machine,
    its roofline and how busy it was."""
    m, t, s = result["machine"], result["text"], result["settings"]
    kernel = m["kernel"]
    threads = kernel.get("threads", 1)
    extra = "".join(f", {k} {v}" for k, v in kernel.items() if k not in ("variant", "threads"))
    lines = [
        f"CPU: {m['cpu']}, {m['cpus']} logical CPUs available",
        f"charrnn {m['charrnn']}: kernels {kernel.get('variant', 'baseline')}, "
        f"threads {threads}{extra}; numpy {m['numpy']}, Python {m['python']}",
    ]
    if "roofline" in result:
        lines += _roofline_lines(result["roofline"])
    if "load" in result:
        lines += _load_lines(result["load"])
    lines += [
        f"text: {t['source']}, {t['characters']:,} characters, V={t['vocab_size']}; "
        f"seq_length {s['seq_length']}; {s['rounds']} rounds, charrnn and reference "
        f"interleaved",
        "characters per second, median (min-max) over rounds; ratio = median of the "
        "per-round ratios to the reference",
    ]
    with_torch = any("torch" in row for row in result["rows"])
    if "torch" in s and s["torch"] is None:
        lines.append("PyTorch: not importable here, so no torch column")
    elif "torch" in s:
        lines.append(f"torch: PyTorch {s['torch']} on the CPU at the row's threads, the same "
                     f"network, T, B, dtype, clip 5 and Adam (one-hot inputs); vs torch = "
                     f"median of the per-round ratios to it")
    lines.append("")
    columns = [("charrnn", "charrnn", _rate), ("reference", "reference", _rate),
               ("ratio", "ratio", _times)]
    if with_torch:
        columns += [("torch", "torch", _rate), ("torch_ratio", "vs torch", _times)]
    header = f"{'task':<7}{'H':>5}  {'config':<33}" + "".join(
        f" {title:>21}" for _, title, _ in columns[:3]) + f" {'of limit':>9}" + "".join(
        f" {title:>21}" for _, title, _ in columns[3:])
    lines += [header, "-" * len(header)]
    for row in result["rows"]:
        cells = [f" {_cell(row[key], fmt) if key in row else '-':>21}" for key, _, fmt in columns]
        limit = f" {_of_limit(row) if 'roofline' in row else '-':>9}"
        lines.append(f"{row['task']:<7}{row['hidden_size']:>5}  {row['config']:<33}"
                     + "".join(cells[:3]) + limit + "".join(cells[3:]))
    return "\n".join(lines)


def _times(x):
    return f"{x:.1f}x"


#: Longest timed run ``--seconds`` asks for, and most ``--rounds``.
MAX_SECONDS = 60.0
MAX_ROUNDS = 1000

_seconds_argument = _util.argument(float, "a number", lambda v: 0 < v <= MAX_SECONDS,
                                   f"a number > 0 and <= {MAX_SECONDS:g}")
_rounds_argument = _util.argument(int, "an integer", lambda v: 1 <= v <= MAX_ROUNDS,
                                  f">= 1 and <= {MAX_ROUNDS}")


def add_arguments(parser):
    """Add the ``bench`` options to an ``argparse`` parser (``charrnn bench``)."""
    parser.add_argument("file", nargs="?",
                        help="UTF-8 text to train on, e.g. tinyshakespeare.txt "
                             "(default: a generated text with 65 distinct characters)")
    parser.add_argument("--hidden-sizes", default="32,100,256,512",
                        help="comma-separated hidden sizes (default: %(default)s)")
    parser.add_argument("--rounds", type=_rounds_argument, default=5,
                        help="timed rounds; medians and spreads are over them "
                             "(default: %(default)s)")
    parser.add_argument("--seconds", type=_seconds_argument, default=0.4,
                        help=f"aimed duration of each timed run, at most {MAX_SECONDS:g} "
                             f"(default: %(default)s)")
    parser.add_argument("--cells", default=",".join(CELLS),
                        help="comma-separated cells to time, among "
                             f"{', '.join(CELLS)}; rnn is the seeds' model "
                             "(default: %(default)s)")
    parser.add_argument("--minibatch", default=",".join(map(str, MINIBATCH)), metavar="H,B,T",
                        help="hidden size, streams and sequence length of the LSTM and GRU "
                             "float32 minibatch rows, timed against the reference and "
                             "PyTorch when it is importable (default: %(default)s)")
    parser.add_argument("--no-extras", action="store_true",
                        help="skip the float32 and minibatch rows")
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    parser.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    return parser


def _bench_memory(H, V, cells=("rnn",), minibatch=None):
    """Bytes of the largest row of the benchmark at hidden size H: charrnn, then the
    reference (or a minibatch row, ``minibatch`` = (H, B, T), float32).

    The reference holds its parameters, optimizer memory, gradients and their
    temporaries in float64: about 5 copies of the parameters.
    """
    need = 0
    for cell in cells:
        gates = {"rnn": 1, "lstm": 4, "gru": 3}[cell]
        P = gates * H * (V + H + 2) + V * H + V
        need = max(need, _util.training_memory(H, V, SEQ_LENGTH, 1, np.float64, cell=cell)
                   + 5 * 8 * P)
        if minibatch is not None and cell != "rnn":
            Hm, B, T = minibatch
            need = max(need, _util.training_memory(Hm, V, T, B, np.float32, cell=cell))
    return need


def _integers(value, option):
    try:
        numbers = tuple(int(x) for x in str(value).split(",") if x.strip())
    except ValueError:
        numbers = ()
    if not numbers or min(numbers) < 1:
        raise ValueError(f"{option} must be comma-separated positive integers, got {value!r}")
    return numbers


def run(args):
    """Run the benchmark from parsed ``args`` (see :func:`add_arguments`); print the table."""
    sizes = _integers(args.hidden_sizes, "--hidden-sizes")
    minibatch = _integers(args.minibatch, "--minibatch")
    if len(minibatch) != 3:
        raise ValueError(f"--minibatch must be three integers H,B,T, got {args.minibatch!r}")
    cells = tuple(c.strip() for c in str(args.cells).split(",") if c.strip())
    if not cells or any(c not in CELLS for c in cells) or len(set(cells)) != len(cells):
        raise ValueError(f"--cells must be distinct names among {','.join(CELLS)}, got "
                         f"{args.cells!r}")
    if not (0 < args.seconds <= MAX_SECONDS) or not 1 <= args.rounds <= MAX_ROUNDS:
        raise ValueError(f"--seconds must be in (0, {MAX_SECONDS:g}] and --rounds in "
                         f"[1, {MAX_ROUNDS}], got {args.seconds} and {args.rounds}")
    V = 65
    if args.file is not None:
        with _util.reading(args.file, "file", "a text file"):
            V = len(_data.scan_vocabulary(args.file))
    H = max(sizes)
    extras = not args.no_extras
    _util.check_memory(_bench_memory(H, V, cells, minibatch if extras else None),
                      f"the benchmark at hidden size {H} ({V} characters)")
    if args.json:
        _util.check_output(args.json, "JSON", [("the text", args.file)])

    def progress(message):
        print(f"bench: {message}", file=sys.stderr, flush=True)

    result = run_bench(args.file, hidden_sizes=sizes, rounds=args.rounds,
                       target_seconds=args.seconds, extras=extras,
                       progress=None if args.quiet else progress, cells=cells,
                       minibatch=minibatch)
    print(format_table(result))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
            f.write("\n")
    return 0


def main(argv=None):
    """``python -m charrnn.bench``: the same as ``charrnn bench``."""
    parser = add_arguments(argparse.ArgumentParser(
        prog="charrnn bench",
        description="Training and sampling speed of charrnn against charrnn.reference."))
    args = parser.parse_args(argv)
    try:
        return run(args)
    except _util.EXPECTED as e:
        print(f"charrnn bench: error: {_util.describe(e)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
