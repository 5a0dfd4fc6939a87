"""Two models trained in two Python threads against the same two trained one after the other.

    python benchmarks/two_threads.py [--iterations 3000] [--hidden-size 100] [--rounds 3]

The kernels release the GIL for their whole loop, so on two free cores the threaded pair
should take about as long as one model. Each round trains the pair both ways (in
alternating order), checks that the two ways give the same parameters bit for bit, and
the script prints the median wall times and their ratio (sequential / threaded; 2.0 is a
perfect overlap). A figure for the notes, never a timed assertion in the tests.
"""
import argparse
import os
import statistics
import threading
import time

import numpy as np

import charrnn


def make_models(text, hidden_size, seeds=(1, 2)):
    chars = charrnn.data.vocabulary(text)
    models = []
    for seed in seeds:
        m = charrnn.CharRNN(chars, hidden_size, seed=seed)
        m.set_text(text)
        models.append(m)
    return models


def sequential(models, n):
    t0 = time.perf_counter()
    for m in models:
        m.fit(n)
    return time.perf_counter() - t0


def threaded(models, n):
    threads = [threading.Thread(target=m.fit, args=(n,)) for m in models]
    t0, c0 = time.perf_counter(), time.process_time()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    threaded.cores.append((time.process_time() - c0) / wall)
    return wall


threaded.cores = []  # CPU seconds per wall second of each threaded run


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=3000)
    parser.add_argument("--hidden-size", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)

    text = charrnn.default_corpus()
    charrnn.train(text[:2000], hidden_size=8, num_iterations=10)  # warm up imports
    seq_times, thr_times = [], []
    for r in range(args.rounds):
        a, b = make_models(text, args.hidden_size), make_models(text, args.hidden_size)
        if r % 2:
            thr_times.append(threaded(b, args.iterations))
            seq_times.append(sequential(a, args.iterations))
        else:
            seq_times.append(sequential(a, args.iterations))
            thr_times.append(threaded(b, args.iterations))
        for x, y in zip(a, b):
            assert np.array_equal(x._flat, y._flat), "threaded training changed the result"
    seq, thr = statistics.median(seq_times), statistics.median(thr_times)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"charrnn {charrnn.__version__}, kernels {charrnn._dispatch.variant}, {cores} cores "
          f"available; 2 models, hidden size {args.hidden_size}, {args.iterations} "
          f"iterations each, median of {args.rounds} rounds")
    print(f"one after the other: {seq:.3f} s")
    print(f"two threads:         {thr:.3f} s")
    print(f"ratio (sequential / threaded): {seq / thr:.2f}x  (2.00x = perfect overlap)")
    print(f"cores busy during the threaded runs (CPU time / wall time): "
          f"{statistics.median(threaded.cores):.2f} (near 2 when two cores are free; "
          f"lower means the machine was busy with other work)")
    print("results identical bit for bit: yes")


if __name__ == "__main__":
    main()
