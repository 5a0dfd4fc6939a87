"""Embedding in threaded programs: the kernels release the GIL, results do not depend on
threads, a model refuses to be used by a second thread while one trains it, and the
library prints nothing (progress goes through callbacks and the ``charrnn`` logger)."""
import ast
import logging
import pathlib
import threading
import time

import numpy as np
import pytest

import charrnn
from conftest import POEM

TEXT = POEM * 4
OPTIONS = {
    "adagrad": dict(),
    "adam-float32": dict(optimizer="adam", dtype="float32"),
    "sgd-epochs-srn": dict(optimizer="sgd", clip=None, bptt="none", learning_rate=0.05),
}


def fresh(seed, **options):
    model = charrnn.CharRNN(charrnn.data.vocabulary(TEXT), 32, 16, seed=seed, **options)
    model.set_text(TEXT)
    return model


def run_in_threads(*targets):
    """Run each callable in its own thread; re-raise the first exception."""
    errors = []

    def wrap(f):
        def run():
            try:
                f()
            except BaseException as e:  # noqa: BLE001 - handed to the test thread
                errors.append(e)
        return run

    threads = [threading.Thread(target=wrap(f)) for f in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
        assert not t.is_alive(), "a thread hung"
    if errors:
        raise errors[0]


@pytest.mark.parametrize("options", OPTIONS.values(), ids=OPTIONS.keys())
def test_two_models_in_two_threads_equal_one_after_the_other(options):
    one, two = fresh(1, **options), fresh(2, **options)
    one.fit(600)
    two.fit(600)
    a, b = fresh(1, **options), fresh(2, **options)
    run_in_threads(lambda: a.fit(600, callback=lambda m: None, report_every=7),
                   lambda: b.fit(600))
    for want, got, name in ((one, a, "model 1"), (two, b, "model 2")):
        assert np.array_equal(got._flat, want._flat), f"{name}: parameters differ"
        assert np.array_equal(got._m1, want._m1), f"{name}: optimizer state differs"
        assert np.array_equal(got._state, want._state), f"{name}: hidden state differs"
        assert np.array_equal(got.history.loss, want.history.loss), f"{name}: history"
        assert got.sample(50, seed=3) == want.sample(50, seed=3), f"{name}: samples differ"


def test_many_threads_sampling_one_model_while_another_trains():
    trained = charrnn.train(TEXT, hidden_size=32, num_iterations=300, seed=4)
    want = [trained.sample(300, seed=s, temperature=0.8) for s in range(6)]
    want_prime = trained.sample(100, prime="And ", seed=9)
    busy, ref = fresh(5), fresh(5)
    ref.fit(3000)
    got = [None] * 6
    got_prime = []

    def sampler(s):
        def run():
            got[s] = trained.sample(300, seed=s, temperature=0.8)
        return run

    run_in_threads(lambda: busy.fit(3000), *(sampler(s) for s in range(6)),
                   lambda: got_prime.append(trained.sample(100, prime="And ", seed=9)))
    assert got == want, "samples drawn in threads differ from samples drawn alone"
    assert got_prime == [want_prime]
    assert np.array_equal(busy._flat, ref._flat), "training next to samplers changed it"


def test_the_kernels_release_the_gil():
    """A pure-Python thread keeps running while another thread is inside a long fit."""
    model = fresh(0)
    ticks = []
    stop = threading.Event()

    def counter():
        while not stop.is_set():
            ticks.append(None)
            time.sleep(0.001)

    t = threading.Thread(target=counter)
    t.start()
    try:
        n0 = len(ticks)
        t0 = time.perf_counter()
        model.fit(20000)  # one kernel call (no callback), tens of milliseconds or more
        elapsed = time.perf_counter() - t0
        during = len(ticks) - n0
    finally:
        stop.set()
        t.join()
    if elapsed > 0.05:
        # with the GIL held for the whole call, the counter could not tick at all
        assert during >= 3, f"the other thread ticked {during} times in {elapsed:.3f} s"


# -- one model, two threads ------------------------------------------------------------------

class Paused:
    """A model trained in a background thread, held inside fit (in its callback)."""

    def __init__(self, model):
        self.model = model
        self.inside = threading.Event()
        self.go = threading.Event()
        self.error = None
        self.thread = threading.Thread(target=self._train)

    def _callback(self, model):
        self.inside.set()
        assert self.go.wait(30)

    def _train(self):
        try:
            self.model.fit(50, callback=self._callback, report_every=10)
        except BaseException as e:  # noqa: BLE001
            self.error = e

    def __enter__(self):
        self.thread.start()
        assert self.inside.wait(30), "training did not start"
        return self.model

    def __exit__(self, *exc):
        self.go.set()
        self.thread.join(30)
        assert not self.thread.is_alive()
        if self.error is not None:
            raise self.error


def test_second_thread_cannot_train_a_model_being_trained():
    model = fresh(0)
    with Paused(model):
        with pytest.raises(RuntimeError, match="being trained by another thread"):
            model.fit(10)
    assert model.iteration == 50, "the first thread's training was disturbed"
    model.fit(10)  # free again once the first fit returns


@pytest.mark.parametrize("use", [
    pytest.param(lambda m, tmp: m.sample(10), id="sample"),
    pytest.param(lambda m, tmp: "".join(m.generate(10)), id="generate"),
    pytest.param(lambda m, tmp: m.sample(10, prime="And ", seed=1), id="sample-prime"),
    pytest.param(lambda m, tmp: m.evaluate(TEXT[:100]), id="evaluate"),
    pytest.param(lambda m, tmp: m.save(tmp / "m.npz"), id="save"),
    pytest.param(lambda m, tmp: m.set_text(TEXT), id="set_text"),
])
def test_other_uses_of_a_model_being_trained_are_refused(tmp_path, use):
    model = fresh(0)
    with Paused(model):
        with pytest.raises(RuntimeError, match="another thread is training this model"):
            use(model, tmp_path)
    assert not (tmp_path / "m.npz").exists()
    use(model, tmp_path)  # and allowed once training is over


def test_the_training_thread_may_sample_and_save_from_its_callback(tmp_path):
    seen = []

    def callback(m):
        m.save(tmp_path / f"at{m.iteration}.npz")
        seen.append(m.sample(5, seed=0))

    model = fresh(0)
    model.fit(30, callback=callback, report_every=10)
    assert len(seen) == 3
    again = charrnn.load(tmp_path / "at20.npz")
    ref = fresh(0).fit(20)
    assert np.array_equal(again._flat, ref._flat)


def test_fit_from_its_own_callback_is_refused():
    model = fresh(0)

    def callback(m):
        m.fit(1)

    with pytest.raises(RuntimeError, match="inside its own fit"):
        model.fit(5, callback=callback, report_every=1)
    model.fit(1)


def test_failed_fit_releases_the_model():
    model = fresh(0)

    def callback(m):
        raise KeyError("from the callback")

    with pytest.raises(KeyError):
        model.fit(5, callback=callback, report_every=1)
    model.fit(5)
    model.sample(5)


# -- the library prints nothing ----------------------------------------------------------------

PACKAGE = pathlib.Path(charrnn.__file__).parent
MAY_PRINT = {"cli.py", "bench.py", "__main__.py"}


def _writes_to_terminal(tree):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
                and node.func.id in ("print", "input", "breakpoint"):
            yield node.lineno, node.func.id
        if isinstance(node, ast.Attribute) and node.attr in ("stdout", "stderr", "__stdout__",
                                                              "__stderr__"):
            yield node.lineno, node.attr
        if isinstance(node, ast.Attribute) and node.attr in ("warn", "showwarning") \
                and isinstance(node.value, ast.Name) and node.value.id == "warnings":
            yield node.lineno, "warnings.warn"


@pytest.mark.parametrize("path", sorted(p.name for p in PACKAGE.glob("*.py")
                                         if p.name not in MAY_PRINT))
def test_library_modules_do_not_print(path):
    tree = ast.parse((PACKAGE / path).read_text(encoding="utf-8"))
    found = list(_writes_to_terminal(tree))
    assert not found, f"charrnn/{path} writes to the terminal: {found}"


def test_nothing_reaches_the_terminal_while_using_the_api(tmp_path, capfd):
    model = charrnn.train(TEXT, hidden_size=16, num_iterations=200, report_every=50,
                          callback=lambda m: None)
    model.sample(50)
    model.sample(20, prime="And", temperature=0.5, top_k=3)
    model.save(tmp_path / "m.npz")
    charrnn.load(tmp_path / "m.npz").evaluate(TEXT[:200])
    with pytest.raises(FloatingPointError):
        charrnn.train(TEXT, hidden_size=16, num_iterations=50, learning_rate=1e308,
                      optimizer="sgd", clip=None)
    out, err = capfd.readouterr()
    assert out == "" and err == "", f"the library wrote {out!r} {err!r}"


def test_progress_goes_to_the_charrnn_logger(caplog):
    with caplog.at_level(logging.DEBUG, logger="charrnn"):
        model = charrnn.train(TEXT, hidden_size=16, num_iterations=250, report_every=100)
    records = [r for r in caplog.records if r.name.startswith("charrnn")]
    progress = [r for r in records if "iteration" in r.getMessage()]
    assert [r.iteration for r in progress] == [100, 200, 250], [r.getMessage() for r in records]
    assert progress[-1].smooth_loss == model.smooth_loss
    # and logging at report points does not change the result
    ref = charrnn.train(TEXT, hidden_size=16, num_iterations=250)
    assert np.array_equal(model._flat, ref._flat)


def test_no_log_records_unless_debug_is_enabled(caplog):
    with caplog.at_level(logging.INFO, logger="charrnn"):
        charrnn.train(TEXT, hidden_size=16, num_iterations=100, report_every=10)
    assert not [r for r in caplog.records if r.name.startswith("charrnn")]
