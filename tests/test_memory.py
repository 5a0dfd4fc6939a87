"""Long sampling and training loops keep their resident memory: nothing leaks per call.

Each loop runs once to warm up (allocator pools, numpy's caches, lazily loaded code),
then for longer; the resident set size after it must be within a small bound of the
size after the warm-up. The calls are short, so that a loop makes thousands of them: a
leak of one hidden-state vector per call (800 bytes at H = 100) exceeds the bound.
"""
import os
import time

import numpy as np
import pytest

import charrnn

from conftest import POEM, under_asan

pytestmark = pytest.mark.skipif(not os.path.exists("/proc/self/statm"),
                                reason="reads resident memory from /proc/self/statm (Linux)")

PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
#: Allowed growth after the warm-up (measured: 0 to 24 kB; the loops allocate and free
#: hundreds of MB).
BOUND = 1024 * 1024


def rss():
    with open("/proc/self/statm", encoding="ascii") as f:
        return int(f.read().split()[1]) * PAGE


def growth(step, warmup_s, run_s):
    """Bytes of resident memory gained by calling ``step`` for ``run_s`` seconds after
    ``warmup_s`` seconds of the same, and the number of calls measured."""
    end = time.perf_counter() + warmup_s
    while time.perf_counter() < end:
        step()
    before = rss()
    calls = 0
    end = time.perf_counter() + run_s
    while time.perf_counter() < end or calls < 50:
        step()
        calls += 1
    return rss() - before, calls


@pytest.fixture(scope="module")
def model():
    if under_asan():
        pytest.skip("resident memory is not meaningful under AddressSanitizer")
    return charrnn.train(POEM, hidden_size=100, seq_length=25, num_iterations=200, seed=0)


def test_sampling_loop_keeps_its_memory(model):
    params, h = model.params, model.hprev
    rng = np.random.RandomState(0)

    def step():
        model.sample(20, prime="And ", temperature=0.9)
        model.sample(20, greedy=True)
        "".join(model.generate(20, top_k=5, chunk=8))
        charrnn.sample(h, 3, 20, params, rng=rng)

    grown, calls = growth(step, 0.3, 1.0)
    assert grown <= BOUND, (f"resident memory grew by {grown / 2**20:.2f} MiB over {calls} "
                            f"sampling rounds after the warm-up (bound {BOUND / 2**20:.0f} MiB)")


def test_training_loop_keeps_its_memory(model):
    text = POEM * 4
    ix = [model.char_to_ix[ch] for ch in text[:26]]
    h0 = np.zeros((model.hidden_size, 1))

    def step():
        # A fresh model each time, so its growing History is not counted: everything
        # it allocated must be given back when it goes away.
        m = charrnn.train(text, hidden_size=64, num_iterations=30, seed=1,
                          callback=lambda _: None, report_every=10)
        m.fit(10)
        charrnn.lossFun(ix[:25], ix[1:26], h0, model.params)
        m.evaluate(text[:300])

    grown, calls = growth(step, 0.3, 1.0)
    assert grown <= BOUND, (f"resident memory grew by {grown / 2**20:.2f} MiB over {calls} "
                            f"training rounds after the warm-up (bound {BOUND / 2**20:.0f} MiB)")


def test_long_fit_grows_only_its_history(model):
    """One model trained on and on: memory grows by its History (16 bytes an iteration)
    and nothing else."""
    m = charrnn.train(POEM, hidden_size=64, num_iterations=2000, seed=2)
    before, hist = rss(), m.history._loss.nbytes + m.history._smooth.nbytes
    for _ in range(10):
        m.fit(2000)
    history = m.history._loss.nbytes + m.history._smooth.nbytes - hist
    grown = rss() - before
    assert grown <= history + BOUND, (
        f"resident memory grew by {grown / 2**20:.2f} MiB over 20,000 iterations; the "
        f"history accounts for {history / 2**20:.2f} MiB (bound {BOUND / 2**20:.0f} MiB more)")
