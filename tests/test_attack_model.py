"""Issue 9, item 1: a model's public attributes cannot put the kernels out of step.

Each case changes a freshly trained model the way an attacker or a careless user
would and must end in a clear exception or a correct result. The cases run in a
child interpreter, so that a crash (SIGSEGV, an abort from a double free) fails
the case that caused it instead of killing pytest; after a crash the remaining
cases run in a new child.
"""
import json
import os
import subprocess
import sys

import pytest
from conftest import under_asan

import charrnn
from charrnn import model as model_module

TIMEOUT = 120

# Runs the cases given as JSON [[name, code], ...], one fresh model each, and prints
# 'START "name"' before and 'END ["name", "outcome"]' after each one (JSON).
RUNNER = r"""
import json, sys
import numpy as np
import charrnn

TEXT = "hello world, hello charrnn! " * 20
for name, code in json.loads(sys.stdin.read()):
    print("START", json.dumps(name), flush=True)
    m = charrnn.train(TEXT, hidden_size=10, num_iterations=5)
    try:
        exec(code, {"m": m, "np": np, "charrnn": charrnn, "TEXT": TEXT})
    except Exception as e:
        outcome = f"{type(e).__name__}: {e}"
    else:
        outcome = "ok"
    print("END", json.dumps([name, outcome]), flush=True)
"""

CALLS = {
    "fit": "m.fit(5)",
    "sample": "m.sample(20)",
    "sample with a prime": "m.sample(20, prime='hello')",
    "generate": "g = m.generate(40, chunk=8); next(g); list(g)",
    "evaluate": "m.evaluate(TEXT[:100])",
}

CASES = {}


def case(name, code, expected):
    """``expected``: "ok", or the start of "ExceptionType: message"."""
    assert name not in CASES
    CASES[name] = (code, expected)


# -- the reports of issue 9 -------------------------------------------------------------------

case("seq_length = 10**6, then fit", "m.seq_length = 10**6; m.fit(5)",
     "ValueError: the training data has 560 characters; training needs at least "
     "seq_length + 1 = 1000001")
case("chars.append, then fit", "m.chars.append('Z'); m.fit(5)",
     "TypeError: a CharRNN's chars cannot change")
case("chars = chars[:3], then sample", "m.chars = m.chars[:3]; m.sample(5)",
     "AttributeError: chars cannot be set")
case("hidden_size = 500, then fit", "m.hidden_size = 500; m.fit(5)",
     "AttributeError: hidden_size cannot be set: the weights have that shape; build a new "
     "CharRNN(..., hidden_size=...)")
case("batch_size = 64, then fit", "m.batch_size = 64; m.fit(5)",
     "AttributeError: batch_size cannot be set")
case("pointer = -10**9, then fit", "m.pointer = -10**9; m.fit(5)",
     "AttributeError: pointer cannot be set")

# -- every other read-only attribute: assigning even its own value is refused --------------

READ_ONLY = ("chars", "char_to_ix", "vocab_size", "hidden_size", "batch_size", "dtype",
             "activation", "seed", "iteration", "pointer", "epoch", "schedule", "smooth_loss",
             "history", "params", "hprev", "cell", "num_layers", "dropout", "default_start")
for attr in READ_ONLY:
    case(f"{attr} = itself", f"m.{attr} = m.{attr}", f"AttributeError: {attr} cannot be set")
case("iteration = -1", "m.iteration = -1", "AttributeError: iteration cannot be set")
case("smooth_loss = nan", "m.smooth_loss = float('nan')",
     "AttributeError: smooth_loss cannot be set")
case("history = None", "m.history = None", "AttributeError: history cannot be set")
case("params = other arrays", "m.params = tuple(a[:1] for a in m.params)",
     "AttributeError: params cannot be set: write into its arrays in place")
for change in ("m.chars[0] = 'q'", "del m.chars[0]", "m.chars += ['Z']", "m.chars.sort()",
               "m.chars.extend('xyz')", "m.chars.pop()", "m.chars.clear()"):
    case(change, change + "; m.fit(5)", "TypeError: a CharRNN's chars cannot change")
case("char_to_ix['Z'] = 13", "m.char_to_ix['Z'] = 13; m.fit(5)",
     "TypeError: 'mappingproxy' object does not support item assignment")
case("copies of chars are plain lists",
     "import copy\n"
     "c = copy.deepcopy(m.chars); c.append('Z'); s = m.chars[:3]; s.append('Z')\n"
     "assert type(c) is list and m.chars == sorted(set(TEXT)) and len(m.chars) == 13",
     "ok")

# -- the attributes that can be set: a bad value is refused, good ones train ---------------

for attr, value, message in (
        ("seq_length", "0", "seq_length must be >= 1"),
        ("seq_length", "2.5", "seq_length must be an integer"),
        ("seq_length", "560", "the training data has 560 characters"),
        ("learning_rate", "-1.0", "learning_rate must be > 0"),
        ("learning_rate", "float('nan')", "learning_rate must be finite"),
        ("clip", "0", "clip must be > 0"),
        ("optimizer", "'lbfgs'", "optimizer must be one of"),
        ("bptt", "'truncated'", "bptt must be one of"),
        ("beta1", "1.0", "beta1 must be < 1"),
        ("beta2", "-0.5", "beta2 must be >= 0"),
        ("decay_rate", "2", "decay_rate must be < 1"),
        ("eps", "0.0", "eps must be > 0"),
        ("num_threads", "0", "num_threads must be >= 1"),
        ("reset_every", "-1", "reset_every must be >= 0"),
        ("reset_every", "2**62 + 1", "reset_every = 4611686018427387905 is out of range"),
        ("rng", "np.random.default_rng(0)",
         "rng must be a numpy.random.RandomState (the samples are drawn from its stream), "
         "got Generator"),
        ("rng", "None", "rng must be a numpy.random.RandomState"),
        ("rng", "42", "rng must be a numpy.random.RandomState")):
    case(f"{attr} = {value}", f"m.{attr} = {value}; m.fit(5); m.sample(5)",
         f"ValueError: {message}")
case("every settable attribute changed, then fit and sample",
     "m.seq_length = 7; m.learning_rate = 0.05; m.clip = None; m.optimizer = 'adam'\n"
     "m.bptt = 'none'; m.reset_each_epoch = True; m.beta1 = 0.8; m.beta2 = 0.99\n"
     "m.decay_rate = 0.9; m.eps = 1e-6; m.num_threads = 1; m.rng = np.random.RandomState(3)\n"
     "m.reset_every = 3\n"
     "m.fit(20)\n"
     "assert m.iteration == 25 and len(m.history) == 25 and m.pointer <= 560\n"
     "assert np.isfinite(m.history.loss).all() and len(m.sample(30)) == 30",
     "ok")
case("seq_length set before the data is given",
     "n = charrnn.CharRNN(m.chars, hidden_size=4); n.seq_length = 10**6; n.set_text(TEXT)",
     "ValueError: text has 560 characters; training needs at least seq_length + 1 = 1000001")
case("the callback shrinks the data under a running fit",
     "def shrink(model):\n"
     "    model.seq_length = 2\n"
     "    model.set_text(TEXT[:10])\n"
     "m.fit(50, callback=shrink, report_every=10)",
     "ValueError: the training data has 10 characters; training needs at least "
     "seq_length + 1 = 26")

# -- values written in place: allowed, and checked where a kernel would trust them --------

case("weights edited in place, then fit and sample",
     "m.params[0][...] = 0.05; m.params[4][:] = 0\n"
     "m.fit(3); assert np.isfinite(m._flat).all() and len(m.sample(10)) == 10", "ok")
case("a NaN weight, then sample", "m.params[1][0, 0] = np.nan; m.sample(5)",
     "ValueError: Whh contains NaN or infinite values")
case("a NaN weight, then fit", "m.params[0][0, 0] = np.nan; m.fit(5)",
     "FloatingPointError: training diverged")
case("weights too large to sample from", "m.params[2][...] = 1e307; m.sample(5)",
     "ValueError: the logits Why @ h + by can reach")
case("hprev = nan in place, then sample", "m.hprev[...] = np.nan; m.sample(5)",
     "ValueError: h contains NaN or infinite values")
case("hprev reset in place", "m.hprev[...] = 0; m.fit(2); assert len(m.sample(5)) == 5", "ok")
case("history values overwritten", "m.history.loss[:] = np.nan; m.fit(2)\n"
     "assert len(m.history) == 7 and np.isfinite(m.history.loss[-2:]).all()", "ok")
case("history add_val_loss(-1)", "m.history.add_val_loss(-1, 0.5)",
     "ValueError: iteration must be >= 0")

# -- training data --------------------------------------------------------------------------

case("set_data with an index past the vocabulary", "m.set_data(np.full(600, 200, np.uint8))",
     "ValueError: indices[0] = 200 is outside the vocabulary [0, 13)")
case("set_data too short", "m.set_data(np.zeros(10, np.uint8))",
     "ValueError: indices has 10 characters; training needs at least")
case("set_data of int64", "m.set_data(np.zeros(600, np.int64))",
     "ValueError: indices must have dtype uint8, uint16 or uint32")
case("set_data of a strided view", "m.set_data(np.zeros(1200, np.uint8)[::2])",
     "ValueError: indices must be C-contiguous")
case("set_text's copy cannot be written", "m._data[0] = 200",
     "ValueError: assignment destination is read-only")

# -- the iteration counter never wraps ------------------------------------------------------

LIMIT = "m._restore(iteration=2**62 - 3, pointer=0, epoch=0, schedule='iterations', " \
        "smooth_loss=60.0)\n"
case("fit up to 2**62 iterations", LIMIT + "m.fit(3); assert m.iteration == 2**62", "ok")
case("fit past 2**62 iterations", LIMIT + "m.fit(4)",
     "ValueError: fit would take the iteration counter from 4611686018427387901 to "
     "4611686018427387905, past its limit 2**62")
case("fit(2**62)", "m.fit(2**62)", "ValueError: fit would take the iteration counter")
case("fit(epochs=2**62)", "m = charrnn.CharRNN(m.chars, hidden_size=4); m.set_text(TEXT)\n"
     "m.fit(epochs=2**62)", "ValueError: fit would take the iteration counter")
case("a checkpoint with an iteration near 2**63",
     "import json, os, tempfile\n"
     "path = os.path.join(tempfile.mkdtemp(), 'm.npz'); m.save(path)\n"
     "with np.load(path) as f: a = dict(f)\n"
     "config = json.loads(str(a['config'])); config['iteration'] = 2**63 - 10\n"
     "a['config'] = np.array(json.dumps(config)); np.savez(path, **a)\n"
     "charrnn.load(path)",
     "CheckpointError: ")
case("restore with smooth_loss = nan",
     "m._restore(iteration=1, pointer=0, epoch=0, schedule=None, smooth_loss=float('nan'))",
     "ValueError: smooth_loss must be finite")

# -- the second line of defence: private buffers out of step are refused, not run ---------

CORRUPT = {
    "a short _flat": "m._flat = m._flat[:-1].copy()",
    "a float32 _m1": "m._m1 = m._m1.astype(np.float32)",
    "a big-endian _flat": "m._flat = m._flat.astype('>f8')",
    "a read-only _flat": "m._flat.flags.writeable = False",
    "a strided _m2": "m._m2 = np.repeat(m._m2, 2)[::2]",
    "a _state of two streams": "m._state = np.zeros((2, 10))",
    "chars grown behind the refusal": "list.append(m.chars, 'Z')",
    "an rng that is not a RandomState": "m._random_state = np.random.default_rng(0)",
}
for what, corruption in CORRUPT.items():
    for call, code in CALLS.items():
        case(f"{what}, then {call}", f"{corruption}\n{code}", "RuntimeError: this model's")
for what, corruption in {"pointer = -10**9": "m._pointer = -10**9",
                         "iteration = -1": "m._iteration = -1",
                         "data of int64": "m._data = np.zeros(560, np.int64)",
                         "a strided view as data": "m._data = np.zeros(1200, np.uint8)[::2]"
                         }.items():
    case(f"private {what}, then fit", f"{corruption}\nm.fit(5)", "RuntimeError: this model's")
case("generate's later chunks check the buffers",
     "g = m.generate(100, chunk=10); next(g); m._flat = m._flat[:-1].copy(); list(g)",
     "RuntimeError: this model's flat buffer is")


def run_cases(names):
    """Outcome of each case: its "ExceptionType: message", "ok", or how the child died."""
    outcomes = {}
    while len(outcomes) < len(names):
        todo = [n for n in names if n not in outcomes]
        payload = json.dumps([[n, CASES[n][0]] for n in todo])
        # from the tests' folder: "python -c" puts its folder first on sys.path, and a
        # source checkout's charrnn/ (without the compiled kernels) must not shadow the
        # installed package
        p = subprocess.run([sys.executable, "-c", RUNNER], input=payload, capture_output=True,
                           text=True, timeout=TIMEOUT, cwd=os.path.dirname(__file__))
        started = None
        for line in p.stdout.splitlines():
            word, _, rest = line.partition(" ")
            if word == "START":
                started = json.loads(rest)
            elif word == "END":
                name, outcome = json.loads(rest)
                outcomes[name] = outcome
                started = None
        if started is not None:  # the child died inside this case
            outcomes[started] = (f"the interpreter died (exit status {p.returncode}): "
                                 f"{p.stderr[-1500:]}")
        elif len(outcomes) < len(names):
            raise AssertionError(f"the runner stopped (exit status {p.returncode}): "
                                 f"{p.stderr[-1500:]}")
    return outcomes


@pytest.fixture(scope="module")
def outcomes():
    return run_cases(list(CASES))


@pytest.mark.parametrize("name", list(CASES))
def test_attack_ends_in_a_clear_error_or_a_correct_result(outcomes, name):
    expected = CASES[name][1]
    got = outcomes[name]
    if expected == "ok":
        assert got == "ok", f"{name}: {got}"
    else:
        assert got.startswith(expected), f"{name}: expected {expected!r}..., got {got!r}"


def test_a_crash_shows_as_a_failed_case_and_the_rest_still_run(monkeypatch):
    monkeypatch.setitem(CASES, "crash", ("import os, signal; os.kill(os.getpid(), "
                                         "signal.SIGSEGV)", "ok"))
    got = run_cases(["hidden_size = 500, then fit", "crash", "pointer = -10**9, then fit"])
    died = got["crash"]
    if under_asan():  # its SIGSEGV handler prints a report and exits with status 1
        assert died.startswith("the interpreter died") and "AddressSanitizer" in died, died
    else:
        assert died.startswith("the interpreter died (exit status -11)"), died
    assert got["hidden_size = 500, then fit"].startswith("AttributeError")
    assert got["pointer = -10**9, then fit"].startswith("AttributeError")


def test_every_public_attribute_follows_the_documented_rule():
    """Each public attribute is read-only or has a checking setter, as the class
    docstring lists them; none is a plain attribute."""
    m = charrnn.train("hello world, hello charrnn! " * 20, hidden_size=10, num_iterations=5)
    assert [k for k in vars(m) if not k.startswith("_")] == []
    settable = {"seq_length", "learning_rate", "clip", "optimizer", "bptt", "reset_each_epoch",
                "beta1", "beta2", "decay_rate", "eps", "num_threads", "rng", "clip_norm",
                "lr_schedule", "warmup_iters", "decay_iters", "min_lr", "lr_decay",
                "decay_every", "reset_every"}
    properties = {k for k in dir(charrnn.CharRNN)
                  if not k.startswith("_") and isinstance(getattr(charrnn.CharRNN, k), property)}
    assert properties == settable | set(READ_ONLY)
    doc = charrnn.CharRNN.__doc__
    for name in properties:
        assert f"``{name}``" in doc, f"{name} is not in the class docstring's rule"
    for name in settable:
        setattr(m, name, getattr(m, name))  # its own value is accepted
    assert model_module.MAX_ITERATIONS == 2**62
