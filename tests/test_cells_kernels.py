"""The stacked rnn / lstm / gru kernels (csrc/stack.pxi, csrc/cell_*.pxi) through
charrnn._stack, against charrnn.reference's stack functions.

Every comparison is float64 unless the test says otherwise, and fails with the
labelled maximum relative difference (conftest.assert_close). Tests taking the
``build`` fixture run once per kernel build this CPU runs (portable, AVX2, AVX-512).
"""
import math

import numpy as np
import pytest
from conftest import POEM, assert_close
from test_kernels import build  # noqa: F401  (a fixture: once per kernel build)

from charrnn import _stack, reference
from charrnn._dispatch import kernels

CELLS = list(_stack.CELLS)
H, V, T = 6, 11, 5


def unflatten(flat, cell, L, hidden, vocab):
    """name -> view of ``flat``."""
    entries, _ = _stack.layout(cell, L, hidden, vocab)
    return {name: flat[o:o + int(np.prod(s))].reshape(s) for name, s, o in entries}


def problem(cell, L, B, dropout, seed=0, scale=0.5, sizes=(H, V, T)):
    """Random weights, inputs, targets, state and keep flags for one minibatch."""
    H, V, T = sizes
    rng = np.random.RandomState(seed)
    S = _stack.CELLS[cell][2]
    _, P = _stack.layout(cell, L, H, V)
    flat = rng.uniform(-scale, scale, P)
    inputs, targets = rng.randint(0, V, (B, T)), rng.randint(0, V, (B, T))
    state = rng.uniform(-0.5, 0.5, (S, L, B, H))
    keep = rng.random_sample((L, T, B, H)) >= dropout if dropout else None
    return flat, inputs, targets, state, keep


def reference_minibatch(cell, L, flat, inputs, targets, state, keep, dropout, sizes=(H, V)):
    """Mean loss, summed gradients (name -> array) and new state, stream by stream."""
    params = unflatten(flat, cell, L, *sizes)
    B = inputs.shape[0]
    loss, grads, new_state = 0.0, None, np.empty_like(state)
    for b in range(B):
        loss_b, grads_b, new_state[:, :, b] = reference.stack_lossFun(
            list(inputs[b]), list(targets[b]), state[:, :, b], params, cell,
            keep=None if keep is None else keep[:, :, b].astype(np.uint8), dropout=dropout)
        loss += loss_b / B
        grads = grads_b if grads is None else {k: grads[k] + grads_b[k] for k in grads}
    return loss, grads, new_state


@pytest.mark.parametrize("dropout", [0.0, 0.4], ids=["no-dropout", "dropout"])
@pytest.mark.parametrize("B", [1, 5], ids=lambda b: f"B{b}")
@pytest.mark.parametrize("L", [1, 2, 3], ids=lambda k: f"L{k}")
@pytest.mark.parametrize("cell", CELLS)
def test_loss_and_every_gradient_match_the_reference(cell, L, B, dropout, build):
    """Loss, each gradient and the new state agree with stack_lossFun to 1e-10."""
    flat, inputs, targets, state, keep = problem(cell, L, B, dropout)
    ws = _stack.Workspace(cell, L, H, V, T, B, np.float64, num_threads=2)
    loss, grad, new_state = _stack.loss_and_grad(ws, flat, inputs, targets, state, keep, dropout)
    want_loss, want_grads, want_state = reference_minibatch(cell, L, flat, inputs, targets,
                                                            state, keep, dropout)
    label = f"{cell} L={L} B={B} dropout={dropout}"
    assert_close(loss, want_loss, 1e-10, f"{label}: loss")
    for name, g in unflatten(grad, cell, L, H, V).items():
        assert_close(g, want_grads[name], 1e-10, f"{label}: d {name}")
    assert_close(new_state, want_state, 1e-10, f"{label}: new state")


@pytest.mark.parametrize("hidden, vocab, B", [(37, 67, 9), (64, 40, 6), (19, 33, 17),
                                              (37, 30, 33), (128, 30, 1), (200, 30, 1)])
@pytest.mark.parametrize("cell", CELLS)
def test_sizes_that_use_every_vector_path_match_the_reference(cell, hidden, vocab, B, build):
    """Sizes past the vectors of every build, and not multiples of them; 2 layers,
    dropout, groups of 4, 8 and 16 streams (the products on packed panels, and their
    last columns unpacked), and one stream at sizes where W_hh is read
    untransposed (over 100 kB: gemv, and the row form's 16-vector blocks on W_hh
    itself) and weight_ih_l0's columns are gathered in place: loss and every gradient
    to 1e-10."""
    L, steps, dropout = 2, 7, 0.3
    flat, inputs, targets, state, keep = problem(cell, L, B, dropout, scale=0.2,
                                                 sizes=(hidden, vocab, steps))
    ws = _stack.Workspace(cell, L, hidden, vocab, steps, B, np.float64, num_threads=2)
    loss, grad, new_state = _stack.loss_and_grad(ws, flat, inputs, targets, state, keep, dropout)
    want_loss, want_grads, want_state = reference_minibatch(
        cell, L, flat, inputs, targets, state, keep, dropout, sizes=(hidden, vocab))
    label = f"{cell} H={hidden} V={vocab} B={B}"
    assert_close(loss, want_loss, 1e-10, f"{label}: loss")
    for name, g in unflatten(grad, cell, L, hidden, vocab).items():
        assert_close(g, want_grads[name], 1e-10, f"{label}: d {name}")
    assert_close(new_state, want_state, 1e-10, f"{label}: new state")


@pytest.mark.parametrize("cell", CELLS)
def test_gradient_matches_central_differences(cell):
    """Every parameter array, 2 layers, 2 streams, dropout: a few entries each."""
    L, B, dropout, eps = 2, 2, 0.3, 1e-6
    flat, inputs, targets, state, keep = problem(cell, L, B, dropout, seed=1)
    ws = _stack.Workspace(cell, L, H, V, T, B, np.float64)
    _, grad, _ = _stack.loss_and_grad(ws, flat, inputs, targets, state, keep, dropout)

    def total_loss(x):
        return B * _stack.loss_and_grad(ws, x, inputs, targets, state, keep, dropout)[0]

    rng = np.random.RandomState(2)
    for name, shape, offset in _stack.layout(cell, L, H, V)[0]:
        for j in offset + rng.choice(int(np.prod(shape)), 3, replace=False):
            up, down = flat.copy(), flat.copy()
            up[j] += eps
            down[j] -= eps
            numeric = (total_loss(up) - total_loss(down)) / (2 * eps)
            assert abs(numeric - grad[j]) <= 1e-6 * max(1.0, abs(numeric)), (
                f"{cell}: d {name} at flat[{j}]: analytic {grad[j]:.10g}, "
                f"numeric {numeric:.10g}")


@pytest.mark.parametrize("cell", CELLS)
def test_float32_is_close_to_float64(cell):
    L, B, dropout = 2, 5, 0.3
    flat, inputs, targets, state, keep = problem(cell, L, B, dropout)
    got = _stack.loss_and_grad(_stack.Workspace(cell, L, H, V, T, B, np.float32),
                               flat.astype(np.float32), inputs, targets,
                               state.astype(np.float32), keep, dropout)
    want = _stack.loss_and_grad(_stack.Workspace(cell, L, H, V, T, B, np.float64),
                                flat, inputs, targets, state, keep, dropout)
    assert got[1].dtype == got[2].dtype == np.float32
    for what, g, w in zip(("loss", "gradient", "new state"), got, want):
        assert_close(g, w, 1e-4, f"{cell} float32: {what}")


# ---------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------

def encoded(text=POEM):
    chars = sorted(set(text))
    return np.array([chars.index(c) for c in text], np.uint8), len(chars)


class Run:
    """A model's training state and its calls of _stack.train."""

    def __init__(self, cell, L, hidden, B, dtype=np.float64, threads=1, seed=0, T=10,
                 **options):
        self.data, self.V = encoded()
        params = reference.init_stack(cell, L, hidden, self.V, np.random.RandomState(seed))
        entries, P = _stack.layout(cell, L, hidden, self.V)
        self.flat = np.concatenate([params[n].ravel() for n, _, _ in entries]).astype(dtype)
        self.m1, self.m2 = np.zeros_like(self.flat), np.zeros_like(self.flat)
        self.state = np.zeros((_stack.CELLS[cell][2], L, B, hidden), dtype)
        self.ws = _stack.Workspace(cell, L, hidden, self.V, T, B, dtype, threads)
        self.p, self.n, self.smooth = 0, 0, -math.log(1.0 / self.V) * T
        self.losses, self.smooths = [], []
        self.options = options
        if options.get("dropout", 0) > 0:
            self.options.setdefault("dropout_rng", reference.dropout_rng(seed))
        self.cell, self.L, self.hidden = cell, L, hidden

    def train(self, iterations, **more):
        loss, smooth = np.empty(iterations), np.empty(iterations)
        done, self.p, self.n, self.smooth, _, status = _stack.train(
            self.ws, self.data, self.flat, self.m1, self.m2, self.state, loss, smooth,
            p=self.p, n=self.n, smooth_loss=self.smooth, **self.options, **more)
        self.losses += list(loss[:done])
        self.smooths += list(smooth[:done])
        return done, status

    def params(self):
        return unflatten(self.flat, self.cell, self.L, self.hidden, self.V)


ADAM = dict(optimizer="adam", learning_rate=2e-3, clip=5.0)


@pytest.mark.parametrize("B, hidden", [(9, 8), (17, 8), (33, 8), (9, 160)],
                         ids=["B9", "B17", "B33", "B9-H160"])
@pytest.mark.parametrize("cell", CELLS)
def test_one_and_two_threads_give_the_same_bits(cell, B, hidden, build):
    """9 streams = groups of 4, 4 and 1; 17 = 8, 8 and 1; 33 = 16, 16 and 1 (panels
    read in two 8-row tiles, then one stream alone); at H=160 the update runs on the
    threads too (over 65536 parameters); dropout on; 3 iterations of 6 steps."""
    ws = _stack.Workspace(cell, 2, hidden, 20, 6, B, np.float64)
    assert ws.group == {9: 4, 17: 8, 33: 16}[B]
    assert (ws.P >= 65536) == (hidden == 160)
    runs = [Run(cell, 2, hidden, B, threads=k, dropout=0.3, T=6, **ADAM) for k in (1, 2)]
    for run in runs:
        assert run.train(3) == (3, 0)
    one, two = runs
    assert two.ws.num_threads == 2
    assert np.array_equal(one.flat, two.flat), f"{cell}: parameters differ"
    assert np.array_equal(one.state, two.state), f"{cell}: state differs"
    assert one.losses == two.losses and one.smooths == two.smooths


@pytest.mark.parametrize("cell", CELLS)
def test_split_training_equals_one_call(cell, monkeypatch, build):
    """2N iterations in one call, N + N, and with masks drawn a few iterations per
    kernel call: the same bits, and the mask stream left in the same place."""
    options = dict(dropout=0.25, lr_schedule="cosine", warmup_iters=2, decay_iters=8,
                   min_lr=2e-4, clip_norm=1.0, **ADAM)
    whole = Run(cell, 2, 8, 3, **options)
    whole.train(8)
    halves = Run(cell, 2, 8, 3, **options)
    halves.train(4)
    halves.train(4)
    small = Run(cell, 2, 8, 3, **options)
    monkeypatch.setattr(_stack, "MASK_BYTES", 3 * 2 * 10 * 3 * 8)  # 3 iterations a call
    small.train(8)
    for run, how in ((halves, "4 + 4"), (small, "3 iterations of masks per call")):
        assert np.array_equal(whole.flat, run.flat), f"{cell}: parameters differ ({how})"
        assert np.array_equal(whole.state, run.state), f"{cell}: state differs ({how})"
        assert whole.losses == run.losses, f"{cell}: losses differ ({how})"
        assert (str(whole.options["dropout_rng"].get_state())
                == str(run.options["dropout_rng"].get_state())), f"{cell}: mask stream ({how})"


@pytest.mark.parametrize("lr, done", [(1e307, 1), (1e306, 2), (1e-3, 0)])
def test_a_stop_consumes_only_the_masks_of_the_iterations_done(lr, done):
    """Runs whose loss overflows after one or two absurd updates, or whose weights
    are not finite from the start: the mask stream moves by the iterations done."""
    run = Run("lstm", 1, 8, 2, dropout=0.5, optimizer="sgd", learning_rate=lr, clip=None)
    if done == 0:
        run.flat[-1] = np.inf  # a decoder bias: the first loss is NaN
    assert run.train(3) == (done, 1)
    fresh = reference.dropout_rng(0)
    fresh.random_sample(done * 1 * 10 * 2 * 8)
    assert run.options["dropout_rng"].random_sample() == fresh.random_sample()


@pytest.mark.parametrize("optimizer", ["adam", "adagrad"])
@pytest.mark.parametrize("cell", CELLS)
def test_short_training_matches_stack_train(cell, optimizer, build):
    """5 iterations, 2 layers, 3 streams, dropout, clip_norm and a schedule: parameters,
    state and losses agree with reference.stack_train to 1e-8."""
    lr = 2e-3 if optimizer == "adam" else 0.05
    options = dict(optimizer=optimizer, learning_rate=lr, clip=5.0, clip_norm=2.0,
                   dropout=0.2, lr_schedule="step", warmup_iters=1, lr_decay=0.5,
                   decay_every=2)
    run = Run(cell, 2, 12, 3, T=10, **options)
    assert run.train(5) == (5, 0)
    want = reference.stack_train(POEM, cell, 2, 12, 10, num_iterations=5, batch_size=3,
                                 **options)
    got = run.params()
    for name, w in want.params.items():
        assert_close(got[name], w, 1e-8, f"{cell} {optimizer}: {name} after 5 iterations")
    assert_close(run.state, want.state, 1e-8, f"{cell} {optimizer}: state")
    assert_close(run.losses, want.loss_history, 1e-10, f"{cell} {optimizer}: losses")
    assert_close(run.smooth, want.smooth_loss, 1e-10, f"{cell} {optimizer}: smooth loss")
    assert run.p == want.p and run.n == want.n == 5


@pytest.mark.parametrize("wrap", ["iterations", "epochs"])
def test_the_walk_wraps_as_stack_train(wrap):
    """Three passes over the text (rnn, one stream, sgd): the pointer wraps twice."""
    iterations = 3 * ((len(POEM) - 1) // 10)
    run = Run("rnn", 1, 5, 1, T=10, optimizer="sgd", learning_rate=0.01, wrap=wrap)
    run.train(iterations)
    walk = dict(num_iterations=iterations) if wrap == "iterations" else dict(epochs=3)
    want = reference.stack_train(POEM, "rnn", 1, 5, 10, learning_rate=0.01, optimizer="sgd",
                                 clip=None, **walk)
    assert run.n == want.n and run.p == want.p
    assert_close(run.losses, want.loss_history, 1e-8, f"{wrap}: losses")


# ---------------------------------------------------------------------------
# Clip, schedules, and the seeds' loop with them
# ---------------------------------------------------------------------------

SCHEDULES = {
    "constant": dict(lr_schedule="constant"),
    "warmup": dict(lr_schedule="constant", warmup_iters=7),
    "cosine": dict(lr_schedule="cosine", warmup_iters=5, decay_iters=60, min_lr=1e-4),
    "cosine-no-warmup": dict(lr_schedule="cosine", decay_iters=33, min_lr=3e-3),
    "step": dict(lr_schedule="step", warmup_iters=3, lr_decay=0.97, decay_every=4),
}


@pytest.mark.parametrize("name", list(SCHEDULES))
def test_lr_at_gives_the_reference_doubles(name):
    options = dict(warmup_iters=0, decay_iters=1, min_lr=0.0, lr_decay=1.0, decay_every=1)
    options.update(SCHEDULES[name])
    code = _stack.LR_SCHEDULES[options.pop("lr_schedule")]
    for n in range(80):
        got = kernels._lr_at(n, 2e-3, code, *options.values())
        want = reference.lr_at(n, 2e-3, SCHEDULES[name]["lr_schedule"], **options)
        assert got == want, f"{name}: lr_at({n}) = {got!r}, reference {want!r}"


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("max_norm", [0.5, 100.0])
def test_clip_grad_norm_matches_the_reference(dtype, max_norm):
    rng = np.random.RandomState(4)
    arrays = {"a": rng.randn(13, 7), "b": rng.randn(1001)}
    flat = np.concatenate([a.ravel() for a in arrays.values()]).astype(dtype)
    want_total = reference.clip_grad_norm(arrays, max_norm)
    got_total = kernels._clip_grad_norm(flat, max_norm)
    assert_close(got_total, want_total, 1e-6 if dtype == np.float32 else 1e-14, "total norm")
    want = np.concatenate([a.ravel() for a in arrays.values()])
    assert_close(flat, want, 1e-6 if dtype == np.float32 else 1e-14, "clipped gradient")


def test_the_seeds_loop_takes_the_schedule_and_clip_norm():
    """train_loop with a cosine schedule, clip and clip_norm equals the seeds' loop
    written with the reference's lossFun, clip_grad_norm, lr_at and update."""
    data, vocab = encoded()
    hidden, T_, iterations, lr = 8, 10, 6, 5e-3
    schedule = dict(lr_schedule="cosine", warmup_iters=2, decay_iters=5, min_lr=1e-4)
    params = reference.init_params(hidden, vocab, np.random.RandomState(0))
    flat = np.concatenate([a.ravel() for a in params])
    m1, m2, hprev = np.zeros_like(flat), np.zeros_like(flat), np.zeros((1, hidden))
    loss = np.empty(iterations)
    smooth0 = -math.log(1.0 / vocab) * T_
    done, *_, status = kernels.train_loop(
        data, flat, m1, m2, hprev, np.empty((1, flat.size)), np.empty((1, (T_ + 1) * hidden)),
        np.empty((1, T_ * vocab)), np.empty((1, T_ * hidden)), np.empty((1, hidden)),
        np.empty((hidden, hidden)), np.empty((hidden, vocab)), np.empty((1, 2 * T_), np.int32),
        np.empty(1), loss, np.empty(iterations), hidden, vocab, T_, 1, 0, 0, smooth0,
        0, 3, True, 0, False, lr, 0.5, 0.9, 0.999, 1e-8, 1,
        lr_schedule=_stack.LR_SCHEDULES["cosine"], warmup_iters=2, decay_iters=5,
        min_lr=1e-4, clip_norm=0.3)
    assert (done, status) == (iterations, 0)
    mems = [[np.zeros_like(a) for a in params] for _ in range(2)]
    h = np.zeros((hidden, 1))
    for n in range(iterations):  # the seeds' loop (no wrap in 6 iterations)
        inputs, targets = data[n * T_:(n + 1) * T_], data[n * T_ + 1:(n + 1) * T_ + 1]
        want, *grads, h = reference.lossFun(inputs, targets, h, params, clip=0.5)
        reference.clip_grad_norm(dict(enumerate(grads)), 0.3)
        reference.update(params, grads, mems, "adam",
                         reference.lr_at(n, lr, **schedule), n + 1)
        assert_close(loss[n], want, 1e-10, f"loss of iteration {n}")
    assert_close(flat, np.concatenate([a.ravel() for a in params]), 1e-10, "parameters")


# ---------------------------------------------------------------------------
# Inference
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("cell", CELLS)
def test_logprobs_and_advance_match_the_reference(cell):
    L = 2
    flat = problem(cell, L, 1, 0.0, seed=5, scale=1.0)[0]
    params = unflatten(flat, cell, L, H, V)
    text = np.random.RandomState(6).randint(0, V, 300)  # > one chunk of the kernel
    state = np.zeros((_stack.CELLS[cell][2], L, H))
    got = _stack.logprobs(flat, state.copy(), text, cell=cell)
    want = reference.stack_logprobs(list(text), params, cell)
    assert got.dtype == np.float64 and got.shape == (299,)
    assert_close(got, want, 1e-10, f"{cell}: log-probabilities")
    warmed = state.copy()
    _stack.advance(None, flat, warmed, text[:99], cell=cell)
    tail = _stack.logprobs(flat, warmed, text[99:], cell=cell)
    assert_close(tail, got[99:], 1e-12, f"{cell}: log-probabilities after advance")


@pytest.mark.parametrize("cell", CELLS)
def test_sample_draws_as_the_reference(cell):
    L, n = 2, 200
    flat = problem(cell, L, 1, 0.0, seed=7, scale=1.5)[0]
    params = unflatten(flat, cell, L, H, V)
    state = np.random.RandomState(8).uniform(-0.5, 0.5, (_stack.CELLS[cell][2], L, H))
    want = reference.stack_sample(state, 3, n, params, cell, np.random.RandomState(9),
                                  temperature=0.8)
    uniforms = np.random.RandomState(9).random_sample(n)
    got = _stack.sample(flat, state.copy(), 3, uniforms, np.empty(n, np.int64), 0.8,
                        cell=cell)
    assert got.tolist() == want
    greedy = _stack.sample(flat, state.copy(), None, np.zeros(5), np.empty(5, np.int64),
                           greedy=True, cell=cell)
    probe, x = state.copy(), None
    for t in range(5):  # argmax of the reference's probabilities, step by step
        top, probe, _ = reference._stack_step(reference._one_hot(x, V), probe, params, cell)
        x = int(np.argmax(params["decoder.weight"] @ top + params["decoder.bias"]))
        assert greedy[t] == x, f"{cell}: greedy step {t}"


def test_top_k_draws_only_among_the_k_most_likely():
    cell, L, n = "gru", 1, 300
    flat = problem(cell, L, 1, 0.0, seed=10, scale=2.0)[0]
    state = np.zeros((1, L, H))
    uniforms = np.random.RandomState(11).random_sample(n)
    got = _stack.sample(flat, state.copy(), 0, uniforms, np.empty(n, np.int64), top_k=2,
                        cell=cell)
    params = unflatten(flat, cell, L, H, V)
    probe, x = state.copy(), 0
    for t in range(n):
        top, probe, _ = reference._stack_step(reference._one_hot(x, V), probe, params, cell)
        y = params["decoder.weight"] @ top + params["decoder.bias"]
        assert got[t] in np.argsort(y)[-2:], f"step {t}: {got[t]} is not among the top 2"
        x = int(got[t])


# ---------------------------------------------------------------------------
# PyTorch (skipped without it): the equations are nn.RNN / LSTM / GRU's
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("cell", CELLS)
def test_loss_and_gradient_match_pytorch(cell):
    torch = pytest.importorskip("torch")
    L, B, dropout = 2, 3, 0.3
    flat, inputs, targets, state, keep = problem(cell, L, B, dropout, seed=12)
    ws = _stack.Workspace(cell, L, H, V, T, B, np.float64)
    loss, grad, new_state = _stack.loss_and_grad(ws, flat, inputs, targets, state, keep, dropout)
    params = {name: torch.tensor(a, requires_grad=True)
              for name, a in unflatten(flat.copy(), cell, L, H, V).items()}
    module = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[cell]
    x = torch.nn.functional.one_hot(torch.tensor(inputs.T), V).double()  # (T, B, V)
    last = []
    for k in range(L):
        layer = module(V if k == 0 else H, H, dtype=torch.float64)
        names = [f"weight_ih_l{k}", f"weight_hh_l{k}", f"bias_ih_l{k}", f"bias_hh_l{k}"]
        h0 = torch.tensor(state[:, k:k + 1])
        out, hn = torch.func.functional_call(
            layer, {n.replace(f"l{k}", "l0"): params[n] for n in names},
            (x, (h0[0], h0[1]) if cell == "lstm" else h0[0]))
        last.append(torch.cat(hn) if cell == "lstm" else hn)
        x = out * torch.tensor(keep[k].astype(np.float64) / (1 - dropout))
    y = x @ params["decoder.weight"].T + params["decoder.bias"]
    total = torch.nn.functional.cross_entropy(y.reshape(-1, V), torch.tensor(targets.T).reshape(-1),
                                              reduction="sum")
    total.backward()
    assert_close(loss, total.item() / B, 1e-12, f"{cell}: loss against torch")
    for name, g in unflatten(grad, cell, L, H, V).items():
        assert_close(g, params[name].grad.numpy(), 1e-12, f"{cell}: d {name} against torch")
    want_state = torch.stack(last, 1).detach().numpy()  # (S, L, B, H)
    assert_close(new_state, want_state, 1e-12, f"{cell}: state against torch")
