"""The numpy oracle of the stacked cells (charrnn.reference) against PyTorch and against
central differences.

PyTorch is optional: the comparisons with it ``importorskip("torch")``. The numerical
gradient checks need only numpy and always run.
"""
import math

import numpy as np
import pytest
from conftest import assert_close

from charrnn import reference

CELLS = ["rnn", "lstm", "gru"]
LAYERS = [1, 2, 3]
TORCH_RTOL = 1e-10


def _state(rng, cell, L, H):
    """A nonzero state (S, L, H): h in (-1, 1), c unbounded."""
    slots = [np.tanh(rng.randn(L, H))]
    if cell == "lstm":
        slots.append(rng.randn(L, H))
    return np.array(slots)


def _case(cell, L, H, V, T, seed, dropout=0.0, gain=1.0):
    """Weights (init_stack's, times ``gain``), a chunk, a start state and keep flags."""
    rng = np.random.RandomState(seed)
    params = reference.init_stack(cell, L, H, V, rng)
    for a in params.values():
        a *= gain
    inputs = list(rng.randint(V, size=T))
    targets = list(rng.randint(V, size=T))
    state = _state(rng, cell, L, H)
    keep = None
    if dropout > 0:
        keep = (rng.random_sample((L, T, H)) >= dropout).astype(np.uint8)
    return inputs, targets, state, params, keep


# ---------------------------------------------------------------------------------------
# PyTorch, run on the same weights (float64)
# ---------------------------------------------------------------------------------------

def _torch_module(torch, cell, input_size, H, L, params, layer=None):
    """torch.nn.RNN/LSTM/GRU with the weights of ``params`` (one layer if ``layer`` given)."""
    module_class = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[cell]
    layers = range(L) if layer is None else [layer]
    module = module_class(input_size, H, num_layers=len(layers), dtype=torch.float64)
    with torch.no_grad():
        for j, k in enumerate(layers):
            for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                getattr(module, f"{kind}_l{j}").copy_(torch.from_numpy(params[f"{kind}_l{k}"]))
    return module


def torch_stack(inputs, targets, state, params, cell, keep=None, dropout=0.0):
    """PyTorch's loss, gradients by our names, new state and log-probabilities.

    Without keep flags the whole L-layer module runs at once; with them the layers run
    one at a time and the masks are applied between them (and before the decoder).
    """
    torch = pytest.importorskip("torch")
    V, H = params["decoder.weight"].shape
    L, T = state.shape[1], len(inputs)
    x = torch.zeros(T, 1, V, dtype=torch.float64)  # (T, batch 1, V) one-hot
    x[torch.arange(T), 0, torch.tensor(inputs)] = 1
    initial = [torch.from_numpy(state[s][:, None, :].copy()) for s in range(state.shape[0])]
    hidden = initial[0] if cell != "lstm" else tuple(initial)
    decoder = torch.nn.Linear(H, V, dtype=torch.float64)
    with torch.no_grad():
        decoder.weight.copy_(torch.from_numpy(params["decoder.weight"]))
        decoder.bias.copy_(torch.from_numpy(params["decoder.bias"]))
    grads_of = {"decoder.weight": decoder.weight, "decoder.bias": decoder.bias}
    if keep is None:
        module = _torch_module(torch, cell, V, H, L, params)
        out, final = module(x, hidden)
        for name, a in module.named_parameters():
            grads_of[name] = a
        finals = [final] if cell != "lstm" else list(final)
    else:
        scale = 1.0 / (1.0 - dropout)
        out, per_layer = x, []
        for k in range(L):
            module = _torch_module(torch, cell, V if k == 0 else H, H, L, params, layer=k)
            h_k = tuple(s[k:k + 1] for s in initial)
            out, final = module(out, h_k if cell == "lstm" else h_k[0])
            out = out * torch.from_numpy(keep[k] * scale)[:, None, :]
            for name, a in module.named_parameters():
                grads_of[name.replace("_l0", f"_l{k}")] = a
            per_layer.append([final] if cell != "lstm" else list(final))
        finals = [torch.cat([f[s] for f in per_layer]) for s in range(len(per_layer[0]))]
    logp = torch.log_softmax(decoder(out[:, 0]), dim=1)  # (T, V)
    loss = -logp[torch.arange(T), torch.tensor(targets)].sum()
    loss.backward()
    grads = {name: a.grad.numpy() for name, a in grads_of.items()}
    new_state = np.array([f.detach().numpy()[:, 0] for f in finals])
    return loss.item(), grads, new_state, logp.detach().numpy()


@pytest.mark.parametrize("dropout", [0.0, 0.4], ids=["no-dropout", "dropout"])
@pytest.mark.parametrize("L", LAYERS, ids=lambda L: f"L{L}")
@pytest.mark.parametrize("cell", CELLS)
def test_stack_lossfun_matches_torch(cell, L, dropout):
    H, V, T = 7, 11, 9
    inputs, targets, state, params, keep = _case(cell, L, H, V, T, seed=L, dropout=dropout,
                                                 gain=1.5)
    loss, grads, new_state = reference.stack_lossFun(inputs, targets, state, params, cell,
                                                     keep=keep, dropout=dropout)
    want_loss, want_grads, want_state, _ = torch_stack(inputs, targets, state, params, cell,
                                                       keep, dropout)
    assert_close(loss, want_loss, TORCH_RTOL, f"{cell} L={L} loss")
    assert list(grads) == list(params)
    assert sorted(want_grads) == sorted(params)
    for name in params:
        assert_close(grads[name], want_grads[name], TORCH_RTOL, f"{cell} L={L} d{name}")
    assert_close(new_state, want_state, TORCH_RTOL, f"{cell} L={L} new state")


@pytest.mark.parametrize("cell", CELLS)
def test_cells_match_torch_cells(cell):
    """One step of each cell, forward and backward (dx, dh, dc too), against nn.*Cell."""
    torch = pytest.importorskip("torch")
    rng = np.random.RandomState(5)
    In, H, G = 6, 5, reference.GATES[cell]
    W_ih, W_hh = rng.randn(G * H, In), rng.randn(G * H, H) * 0.7
    b_ih, b_hh = rng.randn(G * H), rng.randn(G * H)
    x, h, c = rng.randn(In), np.tanh(rng.randn(H)), rng.randn(H)
    dh_next, dc_next = rng.randn(H), rng.randn(H)
    forward, backward = reference.CELLS[cell]

    module = {"rnn": torch.nn.RNNCell, "lstm": torch.nn.LSTMCell,
              "gru": torch.nn.GRUCell}[cell](In, H, dtype=torch.float64)
    with torch.no_grad():
        for name, a in (("weight_ih", W_ih), ("weight_hh", W_hh), ("bias_ih", b_ih),
                        ("bias_hh", b_hh)):
            getattr(module, name).copy_(torch.from_numpy(a))
    tx, th, tc = (torch.tensor(a[None, :], requires_grad=True) for a in (x, h, c))
    if cell == "lstm":
        h_next, c_next, cache = forward(x, h, c, W_ih, W_hh, b_ih, b_hh)
        dx, dh, dc, *dweights = backward(dh_next, dc_next, cache)
        th_next, tc_next = module(tx, (th, tc))
        torch.autograd.backward([th_next, tc_next], [torch.from_numpy(dh_next[None, :]),
                                                     torch.from_numpy(dc_next[None, :])])
        assert_close(c_next, tc_next.detach().numpy()[0], TORCH_RTOL, "lstm c_next")
        assert_close(dc, tc.grad.numpy()[0], TORCH_RTOL, "lstm dc")
    else:
        h_next, cache = forward(x, h, W_ih, W_hh, b_ih, b_hh)
        dx, dh, *dweights = backward(dh_next, cache)
        th_next = module(tx, th)
        th_next.backward(torch.from_numpy(dh_next[None, :]))
    assert_close(h_next, th_next.detach().numpy()[0], TORCH_RTOL, f"{cell} h_next")
    assert_close(dx, tx.grad.numpy()[0], TORCH_RTOL, f"{cell} dx")
    assert_close(dh, th.grad.numpy()[0], TORCH_RTOL, f"{cell} dh")
    for name, d in zip(("weight_ih", "weight_hh", "bias_ih", "bias_hh"), dweights):
        assert_close(d, getattr(module, name).grad.numpy(), TORCH_RTOL, f"{cell} d{name}")


# ---------------------------------------------------------------------------------------
# Central differences (no torch needed)
# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("L", LAYERS, ids=lambda L: f"L{L}")
@pytest.mark.parametrize("cell", CELLS)
def test_stack_lossfun_numerical_gradient(cell, L):
    """Every gradient entry against (f(w + e) - f(w - e)) / 2e, with a dropout mask."""
    H, V, T, dropout, eps = 3, 4, 5, 0.3, 1e-5  # small: 2 losses per weight
    inputs, targets, state, params, keep = _case(cell, L, H, V, T, seed=10 + L,
                                                 dropout=dropout, gain=1.5)
    assert 0 < keep.sum() < keep.size
    _, grads, _ = reference.stack_lossFun(inputs, targets, state, params, cell,
                                          keep=keep, dropout=dropout)

    def loss_at():
        return reference.stack_lossFun(inputs, targets, state, params, cell,
                                       keep=keep, dropout=dropout)[0]

    for name, a in params.items():
        numerical = np.zeros_like(a)
        for i in np.ndindex(a.shape):
            old = a[i]
            a[i] = old + eps
            plus = loss_at()
            a[i] = old - eps
            minus = loss_at()
            a[i] = old
            numerical[i] = (plus - minus) / (2 * eps)
        # central differences carry a rounding error of about 1e-16 * loss / eps ~ 1e-10
        # in absolute terms, which dominates for the smallest gradients (deep layer 0)
        error = np.max(np.abs(grads[name] - numerical))
        bound = 1e-6 * np.max(np.abs(numerical)) + 2e-9
        assert error <= bound, (f"{cell} L={L} d{name}: max difference {error:.3e} from the "
                                f"numerical gradient > {bound:.3e}")


# ---------------------------------------------------------------------------------------
# Scoring and sampling
# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("L", [1, 3], ids=lambda L: f"L{L}")
@pytest.mark.parametrize("cell", CELLS)
def test_stack_logprobs_sum_is_the_loss(cell, L):
    H, V, T = 6, 9, 12
    inputs, targets, state, params, _ = _case(cell, L, H, V, T, seed=20 + L)
    indices = inputs + [targets[-1]]
    targets = indices[1:]  # the chunk that scores indices: each next character
    logprobs = reference.stack_logprobs(indices, params, cell, state)
    loss, _, _ = reference.stack_lossFun(indices[:-1], targets, state, params, cell)
    assert logprobs.dtype == np.float64 and logprobs.shape == (T,)
    assert np.all(logprobs < 0)
    assert_close(-np.sum(logprobs), loss, 1e-13, f"{cell} L={L} -sum(logprobs) vs loss")
    # from the zero state when no state is given
    zero = np.zeros_like(state)
    assert np.array_equal(reference.stack_logprobs(indices, params, cell),
                          reference.stack_logprobs(indices, params, cell, zero))
    assert reference.stack_logprobs(indices[:1], params, cell).shape == (0,)


@pytest.mark.parametrize("L", LAYERS, ids=lambda L: f"L{L}")
@pytest.mark.parametrize("cell", CELLS)
def test_stack_logprobs_match_torch(cell, L):
    H, V, T = 8, 13, 15
    inputs, targets, state, params, _ = _case(cell, L, H, V, T, seed=30 + L, gain=1.5)
    indices = inputs + [targets[-1]]
    logprobs = reference.stack_logprobs(indices, params, cell, state)
    _, _, _, logp = torch_stack(indices[:-1], indices[1:], state, params, cell)
    want = logp[np.arange(T), indices[1:]]
    assert_close(logprobs, want, TORCH_RTOL, f"{cell} L={L} log-probabilities")


@pytest.mark.parametrize("seed_ix", [None, 3], ids=["zero-input", "seed-ix"])
@pytest.mark.parametrize("cell", CELLS)
def test_stack_sample_draws_from_torch_probabilities(cell, seed_ix):
    """Each draw is one rng.choice over softmax(logits / temperature), logits from torch
    run over the sampled sequence itself (first input all zero when seed_ix is None)."""
    torch = pytest.importorskip("torch")
    H, V, L, n, temperature = 6, 7, 2, 30, 0.8
    _, _, state, params, _ = _case(cell, L, H, V, 1, seed=40, gain=2.0)
    ixes = reference.stack_sample(state, seed_ix, n, params, cell, np.random.RandomState(1),
                                  temperature=temperature)
    assert len(ixes) == n and all(isinstance(ix, int) and 0 <= ix < V for ix in ixes)

    x = torch.zeros(n, 1, V, dtype=torch.float64)  # inputs: seed (or nothing), then ixes
    if seed_ix is not None:
        x[0, 0, seed_ix] = 1
    x[torch.arange(1, n), 0, torch.tensor(ixes[:-1])] = 1
    module = _torch_module(torch, cell, V, H, L, params)
    initial = tuple(torch.from_numpy(s[:, None, :].copy()) for s in state)
    with torch.no_grad():
        out, _ = module(x, initial if cell == "lstm" else initial[0])
        logits = out[:, 0] @ torch.from_numpy(params["decoder.weight"]).T
        logits = logits + torch.from_numpy(params["decoder.bias"])
        probs = torch.softmax(logits / temperature, dim=1).numpy()
    rng = np.random.RandomState(1)
    want = [int(rng.choice(range(V), p=p)) for p in probs]
    assert ixes == want


# ---------------------------------------------------------------------------------------
# Gradient clipping by global norm, learning-rate schedules, the mask stream
# ---------------------------------------------------------------------------------------

def test_clip_grad_norm_by_hand():
    grads = {"a": np.array([3.0]), "b": np.array([[0.0, 4.0]])}
    total = reference.clip_grad_norm(grads, 1.0)
    coef = 1.0 / (5.0 + 1e-6)
    assert total == 5.0
    assert grads["a"][0] == 3.0 * coef and grads["b"][0, 1] == 4.0 * coef
    # max_norm equal to the norm still scales (by max_norm / (norm + 1e-6) < 1), as torch
    grads = {"a": np.array([3.0]), "b": np.array([4.0])}
    reference.clip_grad_norm(grads, 5.0)
    assert grads["a"][0] == 3.0 * (5.0 / (5.0 + 1e-6))
    # above the norm: untouched, bit for bit
    grads = {"a": np.array([3.0]), "b": np.array([4.0])}
    assert reference.clip_grad_norm(grads, 5.1) == 5.0
    assert grads["a"][0] == 3.0 and grads["b"][0] == 4.0


@pytest.mark.parametrize("max_norm", [0.5, 3.0, 1e3])
def test_clip_grad_norm_matches_torch(max_norm):
    torch = pytest.importorskip("torch")
    rng = np.random.RandomState(7)
    grads = {"w": rng.randn(12, 5), "u": rng.randn(12, 4), "b": rng.randn(12), "d": rng.randn(3)}
    tensors = [torch.zeros(a.shape, dtype=torch.float64, requires_grad=True)
               for a in grads.values()]
    for t, a in zip(tensors, grads.values()):
        t.grad = torch.from_numpy(a.copy())
    want_total = torch.nn.utils.clip_grad_norm_(tensors, max_norm).item()
    total = reference.clip_grad_norm(grads, max_norm)
    assert_close(total, want_total, 1e-14, "total norm")
    for (name, a), t in zip(grads.items(), tensors):
        assert_close(a, t.grad.numpy(), 1e-14, f"clipped {name}")


def test_lr_constant_without_warmup_is_exactly_the_lr():
    for lr in (0.1, 2e-3, 1.0 / 3):
        assert all(reference.lr_at(n, lr) == lr for n in (0, 1, 7, 10**6))
        assert reference.lr_at(5, lr, "constant", warmup_iters=0) == lr


def test_lr_warmup():
    lr, W = 3e-3, 10
    for schedule in ("constant", "cosine", "step"):
        options = dict(warmup_iters=W, decay_iters=100)
        assert reference.lr_at(0, lr, schedule, **options) == lr * 1 / 11
        assert reference.lr_at(9, lr, schedule, **options) == lr * 10 / 11
    assert reference.lr_at(10, lr, "constant", warmup_iters=W) == lr
    assert reference.lr_at(10, lr, "step", warmup_iters=W, decay_every=5) == lr


def test_lr_cosine():
    lr, W, D = 1e-2, 10, 110

    def at(n, **kw):
        return reference.lr_at(n, lr, "cosine", warmup_iters=W, decay_iters=D, **kw)
    assert at(W) == pytest.approx(lr, rel=1e-15)  # the top, right after the warmup
    assert at(60) == pytest.approx((lr + lr / 10) / 2, rel=1e-15)  # halfway; min_lr = lr/10
    want = lr / 10 + 0.5 * (1.0 + math.cos(math.pi * 99 / 100)) * (lr - lr / 10)
    assert at(D - 1) == want and at(D - 1) > lr / 10
    assert at(D) == lr / 10 and at(D + 1000) == lr / 10  # the end, and after it
    assert at(D, min_lr=0.0) == 0.0 and at(60, min_lr=0.0) == pytest.approx(lr / 2, rel=1e-15)
    values = [at(n) for n in range(W, D + 1)]
    assert all(a > b for a, b in zip(values, values[1:]))  # strictly decreasing


def test_lr_step():
    lr = 0.5

    def at(n, **kw):
        return reference.lr_at(n, lr, "step", lr_decay=0.5, **kw)
    assert at(0) == 0.5 and at(1) == 0.25 and at(3) == 0.0625  # decay_every 1: each update
    assert at(99, decay_every=100) == 0.5 and at(100, decay_every=100) == 0.25
    assert at(250, decay_every=100) == 0.125
    assert at(14, warmup_iters=5, decay_every=10) == 0.5  # counted from the warmup's end
    assert at(15, warmup_iters=5, decay_every=10) == 0.25
    assert reference.lr_at(7, 2e-3, "step") == 2e-3 * math.pow(0.97, 7)  # char-rnn's 0.97


def test_lr_errors():
    with pytest.raises(ValueError, match="decay_iters"):
        reference.lr_at(0, 1e-3, "cosine")
    with pytest.raises(ValueError, match="unknown lr_schedule 'linear'"):
        reference.lr_at(0, 1e-3, "linear")


def test_dropout_rng_is_its_own_stream():
    masks = reference.dropout_rng(3).random_sample(5)
    assert np.array_equal(masks, np.random.RandomState([3, 1]).random_sample(5))
    assert not np.array_equal(masks, np.random.RandomState(3).random_sample(5))


# ---------------------------------------------------------------------------------------
# The training loop
# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("cell", CELLS)
def test_stack_train_runs(cell, poem):
    L, H, B, T, n = 2, 8, 2, 10, 6
    model = reference.stack_train(poem, cell, L, H, T, num_iterations=n, seed=1, dropout=0.25,
                                  batch_size=B, clip_norm=1.0, lr_schedule="cosine",
                                  warmup_iters=2)
    S, V = reference.STATE_SLOTS[cell], len(set(poem))
    assert model.state.shape == (S, L, B, H) and model.n == n and model.p == n * T
    assert list(model.params) == list(reference.init_stack(cell, L, H, V, 0))
    assert np.all(np.isfinite(model.loss_history)) and model.loss_history.shape == (n,)
    assert model.smooth_loss == model.smooth_loss_history[-1]


@pytest.mark.parametrize("cell", CELLS)
def test_stack_train_learns(cell, poem):
    model = reference.stack_train(poem, cell, 1, 32, 16, learning_rate=1e-2,
                                  num_iterations=150, seed=0)
    first, last = model.loss_history[:10].mean(), model.loss_history[-10:].mean()
    assert last < 0.7 * first, f"{cell}: loss {first:.2f} -> {last:.2f}"


def test_stack_train_explicit_keep_equals_the_mask_stream(poem):
    L, H, B, T, n, p, seed = 2, 5, 3, 8, 4, 0.3, 11
    options = dict(num_iterations=n, seed=seed, dropout=p, batch_size=B)
    drawn = reference.stack_train(poem, "gru", L, H, T, **options)
    masks = reference.dropout_rng(seed)
    keep = [(masks.random_sample((L, T, B, H)) >= p).astype(np.uint8) for _ in range(n)]
    given = reference.stack_train(poem, "gru", L, H, T, keep=keep, **options)
    for name in drawn.params:
        assert np.array_equal(drawn.params[name], given.params[name]), name
    assert np.array_equal(drawn.state, given.state)
    other = [(masks.random_sample((L, T, B, H)) >= p).astype(np.uint8) for _ in range(n)]
    changed = reference.stack_train(poem, "gru", L, H, T, keep=other, **options)
    assert not np.array_equal(changed.params["decoder.weight"], drawn.params["decoder.weight"])


@pytest.mark.parametrize("optimizer", ["adam", "adagrad", "rmsprop", "sgd"])
def test_stack_train_iterations_as_the_specification_orders_them(optimizer, poem):
    """Three iterations composed by hand: streams summed, clip, clip_norm, lr_at(n), update."""
    cell, L, H, B, T, p, seed, lr = "lstm", 2, 4, 2, 6, 0.2, 4, 0.05
    options = dict(clip=0.05, clip_norm=0.3, lr_schedule="step", warmup_iters=1,
                   lr_decay=0.5, decay_every=1)
    model = reference.stack_train(poem, cell, L, H, T, lr, 3, seed, optimizer=optimizer,
                                  dropout=p, batch_size=B, **options)

    chars = sorted(set(poem))
    data = [chars.index(ch) for ch in poem]
    per_stream = len(data) // B
    params = reference.init_stack(cell, L, H, len(chars), np.random.RandomState(seed))
    mems = [[np.zeros_like(a) for a in params.values()] for _ in range(2)]
    masks = reference.dropout_rng(seed)
    state = np.zeros((2, L, B, H))
    for n in range(3):
        keep = masks.random_sample((L, T, B, H)) >= p
        grads = {name: np.zeros_like(a) for name, a in params.items()}
        for b in range(B):
            stream = data[b * per_stream:(b + 1) * per_stream]
            _, grads_b, state[:, :, b] = reference.stack_lossFun(
                stream[n * T:n * T + T], stream[n * T + 1:n * T + T + 1], state[:, :, b],
                params, cell, keep=keep[:, :, b], dropout=p)
            for name in grads:
                grads[name] += grads_b[name]
        for g in grads.values():
            np.clip(g, -0.05, 0.05, out=g)
        reference.clip_grad_norm(grads, 0.3)
        rate = reference.lr_at(n, lr, "step", warmup_iters=1, lr_decay=0.5)
        reference.update(list(params.values()), list(grads.values()), mems, optimizer, rate,
                         n + 1)
    for name in params:
        assert np.array_equal(model.params[name], params[name]), name
    assert np.array_equal(model.state, state)


@pytest.mark.parametrize("schedule", [
    dict(num_iterations=40), dict(epochs=3), dict(epochs=2, reset_each_epoch=True)],
    ids=["iterations", "epochs", "epochs-reset"])
@pytest.mark.parametrize("batch_size", [1, 3])
def test_stack_train_walks_the_text_as_train(schedule, batch_size, poem):
    """The data pointer and iteration count follow the seeds' walk (the weights differ)."""
    text = poem[:150]
    seeds = reference.train(text, 3, 7, batch_size=batch_size, **schedule)
    stack = reference.stack_train(text, "rnn", 1, 3, 7, batch_size=batch_size, **schedule)
    assert (stack.p, stack.n) == (seeds.p, seeds.n)
    assert stack.smooth_loss_history.shape == seeds.smooth_loss_history.shape
