"""Batch-1 training of the seeds' model on one thread and on two (the recurrence's rows
split between two cores, csrc/split.h), with and without a competing process.

    python benchmarks/split.py [--hidden-sizes 128,256,512] [--rounds 5] [--seconds 0.5]
                               [--dtype float64] [--busy] [--force]

Each round times ``fit`` on a model with ``num_threads=1`` and on one with
``num_threads=2`` (in alternating order), and checks that the two give the same
parameters bit for bit. It prints the median microseconds per character of each, their
ratio, and the kernel's split statistics of the last round (halves the helper computed,
halves the calling thread took over, the step it fell back to one thread at).

``--busy`` runs a process that spins on one core for the whole measurement: the two-
thread model then should fall back to one thread and be no more than a few percent
slower than the one-thread model (issue 13). ``--force`` splits at every size where the
kernel can (Whh over 56 kB), to find the size from which the split gains. A figure for
the notes, never a timed assertion in the tests: the load average at the start and end
is printed, and figures taken on a busy machine say little.
"""
import argparse
import multiprocessing
import os
import statistics
import time

import numpy as np

import charrnn
from charrnn import bench, nets

T = 25


def spin(stop):
    """Burn one core until ``stop`` is set."""
    x = 0
    while not stop.is_set():
        for _ in range(100000):
            x += 1


def make(text, chars, H, dtype, threads):
    m = charrnn.CharRNN(chars, H, T, seed=0, dtype=dtype, num_threads=threads)
    m.set_text(text)
    m.fit(2)  # warm: first-touch of the buffers, the helper thread's first start
    return m


def timed_fit(model, n, record):
    """Seconds for ``fit(n)``; ``record`` gets the split statistics of its kernel call."""
    train = nets.SeedsNet.train

    def recording(self, ws, *args, **kwargs):
        out = train(self, ws, *args, **kwargs)
        record[:] = ws.split_stats.tolist()
        return out

    nets.SeedsNet.train = recording
    try:
        t0 = time.perf_counter()
        model.fit(n)
        return time.perf_counter() - t0
    finally:
        nets.SeedsNet.train = train


def measure(text, chars, H, dtype, rounds, seconds):
    one, two = make(text, chars, H, dtype, 1), make(text, chars, H, dtype, 2)
    stats = [0, 0, 0, -1]
    n = max(2, int(seconds / max(timed_fit(one, 5, stats) / 5, 1e-6)))
    two.fit(5)                  # the same iterations as one, to compare the bits
    times = {1: [], 2: []}
    for r in range(rounds):
        order = (one, two) if r % 2 == 0 else (two, one)
        for m in order:
            times[m.num_threads].append(timed_fit(m, n, stats) / (n * T) * 1e6)
    assert np.array_equal(one._flat, two._flat), "one and two threads differ"
    return statistics.median(times[1]), statistics.median(times[2]), stats


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hidden-sizes", default="128,256,512")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=0.5)
    parser.add_argument("--dtype", default="float64")
    parser.add_argument("--busy", action="store_true", help="a process spins on one core")
    parser.add_argument("--force", action="store_true", help="split at every size it can")
    args = parser.parse_args(argv)
    if args.force:
        nets._SPLIT_MIN_BYTES = 0
    text = bench.generated_text(200_000)
    chars = charrnn.data.vocabulary(text)
    stop = multiprocessing.Event()
    spinner = multiprocessing.Process(target=spin, args=(stop,)) if args.busy else None
    if spinner:
        spinner.start()
    try:
        print(f"load average at start {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs; "
              f"{'a process spinning on one core' if spinner else 'no competing process'}")
        print(f"{'H':>5} {'dtype':>8} {'1 thread us/char':>17} {'2 threads':>10} "
              f"{'ratio':>6}  split stats (steps, helper, taken over, fell back at)")
        for H in (int(h) for h in args.hidden_sizes.split(",")):
            t1, t2, stats = measure(text, chars, H, args.dtype, args.rounds, args.seconds)
            print(f"{H:>5} {args.dtype:>8} {t1:>17.2f} {t2:>10.2f} {t1 / t2:>6.2f}  {stats}")
        print(f"load average at end {os.getloadavg()[0]:.2f}")
    finally:
        if spinner:
            stop.set()
            spinner.join()


if __name__ == "__main__":
    main()
