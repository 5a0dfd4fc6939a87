"""Pure-numpy reference of charrnn: the seeds' code, made into functions.

This is the oracle the compiled kernels are tested against and the baseline the
benchmarks compare with. It is meant to be read next to min-char-rnn: same names,
same order of operations, one-hot vectors and all. It does no input checking.

The only departures from the seeds, all documented in the README:
- the vocabulary is ``sorted(set(text))`` (``list(set(...))`` changes between runs);
- the softmax is max-shifted (seed 002 does this; the others overflow for large logits);
- the options ``activation``, ``optimizer``, ``clip``, ``bptt`` and ``epochs`` select
  the variants of seeds 000-004.

The second half (``init_stack`` onwards) is the oracle of the stacked cells: PyTorch's
``nn.RNN``, ``nn.LSTM`` and ``nn.GRU`` equations, one step of one cell at a time, L layers,
dropout between layers and before the decoder, with PyTorch's parameter names.
"""
import math
from dataclasses import dataclass, field

import numpy as np

__all__ = ["init_params", "lossFun", "sample", "top_p_filter", "filtered_choice", "train",
           "Model",
           "initialize_parameters", "forward_propogation", "compute_cost",
           "backward_propogation", "update_parameters",
           "GATES", "init_stack", "rnn_cell_forward", "rnn_cell_backward", "lstm_cell_forward",
           "lstm_cell_backward", "gru_cell_forward", "gru_cell_backward", "stack_lossFun",
           "stack_sample", "stack_logprobs", "clip_grad_norm", "lr_at", "dropout_rng",
           "stack_train", "StackModel"]


def init_params(hidden_size, vocab_size, rng=None):
    """``(Wxh, Whh, Why, bh, by)`` drawn as the seeds draw them (rng None: np.random)."""
    if rng is None:
        rng = np.random.mtrand._rand
    elif not isinstance(rng, np.random.RandomState):
        rng = np.random.RandomState(rng)
    Wxh = rng.randn(hidden_size, vocab_size) * 0.01  # input to hidden
    Whh = rng.randn(hidden_size, hidden_size) * 0.01  # hidden to hidden
    Why = rng.randn(vocab_size, hidden_size) * 0.01  # hidden to output
    bh = np.zeros((hidden_size, 1))  # hidden bias
    by = np.zeros((vocab_size, 1))  # output bias
    return Wxh, Whh, Why, bh, by


def _activation(name):
    if name == "tanh":
        return np.tanh, lambda h: 1 - h * h
    sigmoid = lambda x: 1 / (1 + np.exp(-x))  # noqa: E731 (seed 004)
    return sigmoid, lambda h: h * (1 - h)


def _softmax(y):
    e = np.exp(y - np.max(y))
    return e / np.sum(e)


def lossFun(inputs, targets, hprev, params, *, activation="tanh", bptt="full", clip=5.0):
    """Returns the loss, gradients on model parameters, and last hidden state."""
    Wxh, Whh, Why, bh, by = params
    act, act_grad = _activation(activation)
    vocab_size = Wxh.shape[1]
    xs, hs, ys, ps = {}, {}, {}, {}
    hs[-1] = np.copy(hprev)
    loss = 0
    # forward pass
    for t in range(len(inputs)):
        xs[t] = np.zeros((vocab_size, 1))  # encode in 1-of-k representation
        xs[t][inputs[t]] = 1
        hs[t] = act(np.dot(Wxh, xs[t]) + np.dot(Whh, hs[t - 1]) + bh)  # hidden state
        ys[t] = np.dot(Why, hs[t]) + by  # unnormalized log probabilities for next chars
        ps[t] = _softmax(ys[t])  # probabilities for next chars
        loss += -np.log(ps[t][targets[t], 0])  # softmax (cross-entropy loss)
    # backward pass: compute gradients going backwards
    dWxh, dWhh, dWhy = np.zeros_like(Wxh), np.zeros_like(Whh), np.zeros_like(Why)
    dbh, dby = np.zeros_like(bh), np.zeros_like(by)
    dhnext = np.zeros_like(hs[0])
    for t in reversed(range(len(inputs))):
        dy = np.copy(ps[t])
        dy[targets[t]] -= 1  # backprop into y
        dWhy += np.dot(dy, hs[t].T)
        dby += dy
        dh = np.dot(Why.T, dy) + dhnext  # backprop into h
        dhraw = act_grad(hs[t]) * dh  # backprop through the nonlinearity
        dbh += dhraw
        dWxh += np.dot(dhraw, xs[t].T)
        dWhh += np.dot(dhraw, hs[t - 1].T)
        if bptt == "full":
            dhnext = np.dot(Whh.T, dhraw)  # else Elman: hs[t-1] is a constant input
    if clip is not None:
        for dparam in [dWxh, dWhh, dWhy, dbh, dby]:
            np.clip(dparam, -clip, clip, out=dparam)  # clip to mitigate exploding gradients
    return loss, dWxh, dWhh, dWhy, dbh, dby, hs[len(inputs) - 1]


def top_p_filter(p, top_p):
    """``p`` with zeros outside the nucleus of mass ``top_p`` (0 < top_p < 1).

    Characters are ranked by probability, largest first and the lower index first
    among equal ones; the nucleus is the shortest prefix of that ranking whose
    float64 cumulative sum reaches ``top_p`` times the whole sum, the character that
    crosses it included. The result is not renormalised (the draw divides by its sum).
    """
    p = np.asarray(p).ravel()
    order = np.argsort(-p, kind="stable")  # most likely first; ties: lower index first
    cdf = np.cumsum(p[order].astype(np.float64))
    last = min(int(np.searchsorted(cdf, top_p * cdf[-1], side="left")), p.size - 1)
    kept = order[:last + 1]
    q = np.zeros_like(p)
    q[kept] = p[kept]
    return q


def filtered_choice(y, rng, temperature=1.0, top_k=None, top_p=None):
    """One character drawn from logits ``y`` with HF transformers' order of filters:
    divide by ``temperature``, keep the ``top_k`` largest logits (ties with the k-th
    kept), softmax, keep the nucleus of ``top_p`` (:func:`top_p_filter`), then numpy's
    draw ``searchsorted(cumsum(p) / cumsum(p)[-1], rng.random_sample(), 'right')``."""
    y = np.ravel(y) / temperature
    if top_k is not None and top_k < y.size:
        y = np.where(y < np.sort(y)[-top_k], -np.inf, y)
    p = _softmax(y)
    if top_p is not None and top_p < 1:
        p = top_p_filter(p, top_p)
    cdf = np.cumsum(p)
    return int(np.searchsorted(cdf / cdf[-1], rng.random_sample(), side="right"))


def sample(h, seed_ix, n, params, rng=None, *, activation="tanh", temperature=1.0,
           top_k=None, top_p=None):
    """Sample a sequence of integers from the model; seed_ix None: all-zero first input.

    Without ``temperature``, ``top_k`` and ``top_p`` it is the seeds' loop; with them
    each draw is :func:`filtered_choice`'s (the same stream: one uniform per draw).
    """
    filtered = temperature != 1.0 or top_k is not None or top_p is not None
    if rng is None:
        rng = np.random.mtrand._rand
    elif not isinstance(rng, np.random.RandomState):
        rng = np.random.RandomState(rng)
    Wxh, Whh, Why, bh, by = params
    act, _ = _activation(activation)
    vocab_size = Wxh.shape[1]
    x = np.zeros((vocab_size, 1))
    if seed_ix is not None:
        x[seed_ix] = 1
    ixes = []
    for t in range(n):
        h = act(np.dot(Wxh, x) + np.dot(Whh, h) + bh)
        y = np.dot(Why, h) + by
        if filtered:
            ix = filtered_choice(y, rng, temperature, top_k, top_p)
        else:
            p = _softmax(y)
            ix = rng.choice(range(vocab_size), p=p.ravel())
        x = np.zeros((vocab_size, 1))
        x[ix] = 1
        ixes.append(int(ix))
    return ixes


def update(params, grads, mems, optimizer, learning_rate, step,
           beta1=0.9, beta2=0.999, decay_rate=0.95, eps=1e-8):
    """One parameter update in place; ``mems`` holds one or two lists of state arrays."""
    for i, (param, dparam) in enumerate(zip(params, grads)):
        if optimizer == "adagrad":
            mem = mems[0][i]
            mem += dparam * dparam
            param += -learning_rate * dparam / np.sqrt(mem + 1e-8)  # adagrad update
        elif optimizer == "sgd":
            param += -learning_rate * dparam
        elif optimizer == "rmsprop":  # char-rnn's
            cache = mems[0][i]
            cache[...] = decay_rate * cache + (1 - decay_rate) * dparam * dparam
            param += -learning_rate * dparam / (np.sqrt(cache) + eps)
        elif optimizer == "adam":  # torch-rnn's, with bias correction
            m, v = mems[0][i], mems[1][i]
            m[...] = beta1 * m + (1 - beta1) * dparam
            v[...] = beta2 * v + (1 - beta2) * dparam * dparam
            mhat = m / (1 - beta1 ** step)
            vhat = v / (1 - beta2 ** step)
            param += -learning_rate * mhat / (np.sqrt(vhat) + eps)
        else:
            raise ValueError(f"unknown optimizer {optimizer!r}")


# ---------------------------------------------------------------------------------------
# Seed 000's modular steps: lossFun cut into forward, cost, backward and update, with the
# forward pass's activations kept in a dict of (H, 1) and (V, 1) columns. X and Y are
# one-hot rows, (T, V), as seed 000's get_one_hot makes them.
# ---------------------------------------------------------------------------------------

def initialize_parameters(hidden_size, vocab_size, rng=None):
    """``((Wxh, Whh, Why, bh, by), (mWxh, mWhh, mWhy, mbh, mby))``: weights drawn as
    :func:`init_params` draws them, and Adagrad's memories, zeros of the same shapes."""
    params = init_params(hidden_size, vocab_size, rng)
    return params, tuple(np.zeros_like(a) for a in params)


def forward_propogation(X, parameters, seq_length, hprev, *, activation="tanh"):
    """Caches of the forward pass: ``'h0'`` = hprev, ``'h<t>'`` and ``'A<t>'`` (the
    softmax) after input t, for t = 1 .. seq_length."""
    Wxh, Whh, Why, bh, by = parameters
    act, _ = _activation(activation)
    caches = {"h0": np.copy(hprev)}
    for t in range(1, seq_length + 1):
        x = X[t - 1].reshape(-1, 1)
        h = act(np.dot(Wxh, x) + np.dot(Whh, caches[f"h{t - 1}"]) + bh)
        caches[f"A{t}"] = _softmax(np.dot(Why, h) + by)  # the seed's order: A, then h
        caches[f"h{t}"] = h
    return caches


def compute_cost(Y, caches):
    """Cross-entropy of the one-hot targets ``Y`` under the cached softmaxes, summed."""
    T = len(caches) // 2
    return np.squeeze(sum(-np.sum(Y[t - 1].reshape(-1, 1) * np.log(caches[f"A{t}"]))
                          for t in range(1, T + 1)))


def backward_propogation(X, Y, caches, parameters, *, activation="tanh", clip=5.0):
    """``(dWxh, dWhh, dWhy, dbh, dby)`` of :func:`compute_cost`, each clipped to
    ``[-clip, clip]``: lossFun's backward pass on the cached activations."""
    Wxh, Whh, Why, bh, by = parameters
    _, act_grad = _activation(activation)
    grads = [np.zeros_like(a) for a in (Wxh, Whh, Why, bh, by)]
    dWxh, dWhh, dWhy, dbh, dby = grads
    dhnext = np.zeros_like(caches["h0"])
    for t in range(len(caches) // 2, 0, -1):
        dy = caches[f"A{t}"] - Y[t - 1].reshape(-1, 1)  # backprop into y
        dWhy += np.dot(dy, caches[f"h{t}"].T)
        dby += dy
        dh = np.dot(Why.T, dy) + dhnext  # backprop into h
        dhraw = act_grad(caches[f"h{t}"]) * dh
        dbh += dhraw
        dWxh += np.dot(dhraw, X[t - 1].reshape(1, -1))
        dWhh += np.dot(dhraw, caches[f"h{t - 1}"].T)
        dhnext = np.dot(Whh.T, dhraw)
    for dparam in grads:
        np.clip(dparam, -clip, clip, out=dparam)
    return tuple(grads)


def update_parameters(parameters, grads, adagrad_mem_vars, learning_rate):
    """Adagrad on every parameter, in place; returns ``(parameters, adagrad_mem_vars)``."""
    update(parameters, grads, [adagrad_mem_vars], "adagrad", learning_rate, 1)
    return parameters, adagrad_mem_vars


@dataclass
class Model:
    """What ``train`` returns: the trained parameters and the loop's state."""
    params: tuple
    chars: list
    char_to_ix: dict
    hidden_size: int
    seq_length: int
    smooth_loss: float
    hprev: np.ndarray
    p: int
    n: int
    mems: list
    loss_history: np.ndarray = field(repr=False)
    smooth_loss_history: np.ndarray = field(repr=False)


def train(text, hidden_size=100, seq_length=25, learning_rate=0.1, num_iterations=None, seed=0,
          *, epochs=None, activation="tanh", optimizer="adagrad", clip=5.0, bptt="full",
          reset_each_epoch=False, beta1=0.9, beta2=0.999, decay_rate=0.95, eps=1e-8,
          batch_size=1):
    """The seeds' main loop.

    With ``num_iterations`` (001/003): the pointer wraps, and hprev resets, when
    ``p + seq_length + 1 >= len(text)`` or on the first iteration. With ``epochs``
    (002/004): consecutive chunks of ``seq_length`` while they fit
    (``p + seq_length + 1 <= len(text)``); hprev carries across chunks and, at the start
    of each epoch, resets only if ``reset_each_epoch``.

    With ``batch_size`` B > 1 (char-rnn's minibatches) the text is cut into B streams
    of ``len(text) // B`` characters, each with its own hprev, walked as above; an
    iteration sums the B streams' gradients (clipped after the sum) and records their
    mean loss.
    """
    chars = sorted(set(text))
    vocab_size = len(chars)
    char_to_ix = {ch: i for i, ch in enumerate(chars)}
    data = [char_to_ix[ch] for ch in text]
    L = len(data) // batch_size  # characters per stream
    streams = [data[b * L:(b + 1) * L] for b in range(batch_size)]
    params = init_params(hidden_size, vocab_size, np.random.RandomState(seed))
    mems = [[np.zeros_like(a) for a in params] for _ in range(2)]
    if epochs is not None:
        num_iterations = epochs * ((L - 1) // seq_length)
    smooth_loss = -np.log(1.0 / vocab_size) * seq_length  # loss at iteration 0
    losses, smooth_losses = np.empty(num_iterations), np.empty(num_iterations)
    hprevs = [np.zeros((hidden_size, 1)) for _ in range(batch_size)]
    n, p = 0, 0
    while n < num_iterations:
        if epochs is None:
            if p + seq_length + 1 >= L or n == 0:
                hprevs = [np.zeros((hidden_size, 1)) for _ in range(batch_size)]  # reset
                p = 0  # go from start of data
        elif p + seq_length + 1 > L:
            p = 0
            if reset_each_epoch:
                hprevs = [np.zeros((hidden_size, 1)) for _ in range(batch_size)]
        loss, grads = 0.0, [np.zeros_like(a) for a in params]
        for b, stream in enumerate(streams):
            inputs = stream[p:p + seq_length]
            targets = stream[p + 1:p + seq_length + 1]
            loss_b, *grads_b, hprevs[b] = lossFun(
                inputs, targets, hprevs[b], params, activation=activation, bptt=bptt,
                clip=None)
            loss += loss_b / batch_size
            for g, g_b in zip(grads, grads_b):
                g += g_b
        if clip is not None:
            for dparam in grads:
                np.clip(dparam, -clip, clip, out=dparam)  # clip to mitigate exploding gradients
        smooth_loss = smooth_loss * 0.999 + loss * 0.001
        update(params, grads, mems, optimizer, learning_rate, n + 1,
               beta1=beta1, beta2=beta2, decay_rate=decay_rate, eps=eps)
        losses[n], smooth_losses[n] = loss, smooth_loss
        p += seq_length  # move data pointer
        n += 1  # iteration counter
    hprev = hprevs[0] if batch_size == 1 else np.hstack(hprevs).T
    return Model(params, chars, char_to_ix, hidden_size, seq_length, smooth_loss, hprev, p, n,
                 mems, losses, smooth_losses)


# ---------------------------------------------------------------------------------------
# Stacked cells (issue 10): PyTorch's nn.RNN (tanh), nn.LSTM and nn.GRU, L layers, dropout
# between layers and before the decoder. Read next to torch/nn/modules/rnn.py and the shared
# specification: one step of one cell on 1-D vectors, then a loop over time and layers.
# Names are PyTorch's: weight_ih_l{k} (G*H, In_k), weight_hh_l{k} (G*H, H),
# bias_ih_l{k}, bias_hh_l{k} (G*H,), decoder.weight (V, H), decoder.bias (V,).
# ---------------------------------------------------------------------------------------

#: Gates per cell: the weight matrices of a layer have G*H rows.
GATES = {"rnn": 1, "lstm": 4, "gru": 3}
#: State slots per layer: h, and c for the LSTM.
STATE_SLOTS = {"rnn": 1, "lstm": 2, "gru": 1}


def _sigmoid(x):
    """1 / (1 + exp(-x)), without overflowing exp for large negative x."""
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


def init_stack(cell, num_layers, hidden_size, vocab_size, rng=None):
    """Weights of an L-layer stack and its decoder, drawn as the specification says.

    Parameters
    ----------
    cell : {"rnn", "lstm", "gru"}
    num_layers, hidden_size, vocab_size : int
        L, H and V.
    rng : numpy.random.RandomState, int or None
        Every array is ``rng.uniform(-s, s, size=shape)`` with ``s = 1 / sqrt(H)``, drawn
        in the order below. None: numpy's global stream (as the seeds); an int: a seed.

    Returns
    -------
    dict
        name -> float64 array, in the layout order: for each layer k ``weight_ih_l{k}``
        (G*H, V if k == 0 else H), ``weight_hh_l{k}`` (G*H, H), ``bias_ih_l{k}`` (G*H,),
        ``bias_hh_l{k}`` (G*H,); then ``decoder.weight`` (V, H) and ``decoder.bias`` (V,).
    """
    if rng is None:
        rng = np.random.mtrand._rand
    elif not isinstance(rng, np.random.RandomState):
        rng = np.random.RandomState(rng)
    H, V, G = hidden_size, vocab_size, GATES[cell]
    shapes = {}
    for k in range(num_layers):
        shapes[f"weight_ih_l{k}"] = (G * H, V if k == 0 else H)
        shapes[f"weight_hh_l{k}"] = (G * H, H)
        shapes[f"bias_ih_l{k}"] = (G * H,)
        shapes[f"bias_hh_l{k}"] = (G * H,)
    shapes["decoder.weight"] = (V, H)
    shapes["decoder.bias"] = (V,)
    s = 1.0 / np.sqrt(H)
    return {name: rng.uniform(-s, s, size=shape) for name, shape in shapes.items()}


def rnn_cell_forward(x, h, W_ih, W_hh, b_ih, b_hh):
    """One step of nn.RNN (tanh): h' = tanh(W_ih x + b_ih + W_hh h + b_hh).

    x (In,), h (H,), W_ih (H, In), W_hh (H, H), b_ih, b_hh (H,). Returns h' (H,) and the
    cache that ``rnn_cell_backward`` needs.
    """
    h_next = np.tanh(np.dot(W_ih, x) + b_ih + np.dot(W_hh, h) + b_hh)
    return h_next, (x, h, W_ih, W_hh, h_next)


def rnn_cell_backward(dh_next, cache):
    """Gradients of one ``rnn_cell_forward`` step given dL/dh' (H,).

    Returns dx (In,), dh (H,), dW_ih, dW_hh, db_ih, db_hh (the shapes of the weights).
    """
    x, h, W_ih, W_hh, h_next = cache
    dhraw = (1 - h_next * h_next) * dh_next  # backprop through tanh
    dx = np.dot(W_ih.T, dhraw)
    dh = np.dot(W_hh.T, dhraw)
    return dx, dh, np.outer(dhraw, x), np.outer(dhraw, h), dhraw, dhraw.copy()


def lstm_cell_forward(x, h, c, W_ih, W_hh, b_ih, b_hh):
    """One step of nn.LSTM: gates i, f, g, o; c' = f*c + i*g; h' = o*tanh(c').

    x (In,), h, c (H,), W_ih (4H, In), W_hh (4H, H), b_ih, b_hh (4H,). Returns h' (H,),
    c' (H,) and the cache that ``lstm_cell_backward`` needs.
    """
    H = h.shape[0]
    gates = np.dot(W_ih, x) + b_ih + np.dot(W_hh, h) + b_hh
    i = _sigmoid(gates[0:H])  # input gate
    f = _sigmoid(gates[H:2 * H])  # forget gate
    g = np.tanh(gates[2 * H:3 * H])  # cell candidate
    o = _sigmoid(gates[3 * H:4 * H])  # output gate
    c_next = f * c + i * g
    tanh_c = np.tanh(c_next)
    h_next = o * tanh_c
    return h_next, c_next, (x, h, c, W_ih, W_hh, i, f, g, o, tanh_c)


def lstm_cell_backward(dh_next, dc_next, cache):
    """Gradients of one ``lstm_cell_forward`` step given dL/dh' and dL/dc' (H,) each.

    dc_next is the gradient reaching c' from the next step only; the part through
    h' = o*tanh(c') is added here. Returns dx (In,), dh (H,), dc (H,), dW_ih, dW_hh,
    db_ih, db_hh (the shapes of the weights).
    """
    x, h, c, W_ih, W_hh, i, f, g, o, tanh_c = cache
    do = dh_next * tanh_c
    dc_total = dc_next + dh_next * o * (1 - tanh_c * tanh_c)
    di = dc_total * g
    df = dc_total * c
    dg = dc_total * i
    dc = dc_total * f
    # back through the nonlinearities into the pre-activations, in the order i, f, g, o
    dgates = np.concatenate([di * i * (1 - i), df * f * (1 - f), dg * (1 - g * g),
                             do * o * (1 - o)])
    dx = np.dot(W_ih.T, dgates)
    dh = np.dot(W_hh.T, dgates)
    return dx, dh, dc, np.outer(dgates, x), np.outer(dgates, h), dgates, dgates.copy()


def gru_cell_forward(x, h, W_ih, W_hh, b_ih, b_hh):
    """One step of nn.GRU: gates r, z, n; n = tanh(gi_n + r * gh_n); h' = (1-z)*n + z*h.

    x (In,), h (H,), W_ih (3H, In), W_hh (3H, H), b_ih, b_hh (3H,). gi = W_ih x + b_ih and
    gh = W_hh h + b_hh are kept apart because the reset gate multiplies gh_n (bias
    included), as in PyTorch. Returns h' (H,) and the cache for ``gru_cell_backward``.
    """
    H = h.shape[0]
    gi = np.dot(W_ih, x) + b_ih
    gh = np.dot(W_hh, h) + b_hh
    r = _sigmoid(gi[0:H] + gh[0:H])  # reset gate
    z = _sigmoid(gi[H:2 * H] + gh[H:2 * H])  # update gate
    n = np.tanh(gi[2 * H:3 * H] + r * gh[2 * H:3 * H])  # candidate
    h_next = (1 - z) * n + z * h
    return h_next, (x, h, W_ih, W_hh, gh, r, z, n)


def gru_cell_backward(dh_next, cache):
    """Gradients of one ``gru_cell_forward`` step given dL/dh' (H,).

    Returns dx (In,), dh (H,), dW_ih, dW_hh, db_ih, db_hh (the shapes of the weights).
    """
    x, h, W_ih, W_hh, gh, r, z, n = cache
    H = h.shape[0]
    dn = dh_next * (1 - z)
    dz = dh_next * (h - n)
    dnraw = dn * (1 - n * n)  # into gi_n + r * gh_n
    dr = dnraw * gh[2 * H:3 * H]
    drraw = dr * r * (1 - r)
    dzraw = dz * z * (1 - z)
    dgi = np.concatenate([drraw, dzraw, dnraw])
    dgh = np.concatenate([drraw, dzraw, dnraw * r])
    dx = np.dot(W_ih.T, dgi)
    dh = dh_next * z + np.dot(W_hh.T, dgh)
    return dx, dh, np.outer(dgi, x), np.outer(dgh, h), dgi, dgh


#: The cells by name: (forward, backward). A forward takes (x, *state slots, W_ih, W_hh,
#: b_ih, b_hh) and returns (*new state slots, cache); a backward takes (*gradients on the
#: new state slots, cache) and returns (dx, *gradients on the old slots, dW_ih, dW_hh,
#: db_ih, db_hh).
CELLS = {
    "rnn": (rnn_cell_forward, rnn_cell_backward),
    "lstm": (lstm_cell_forward, lstm_cell_backward),
    "gru": (gru_cell_forward, gru_cell_backward),
}


def _num_layers(params):
    return sum(1 for name in params if name.startswith("weight_ih_l"))


def _layer_weights(params, k):
    return (params[f"weight_ih_l{k}"], params[f"weight_hh_l{k}"],
            params[f"bias_ih_l{k}"], params[f"bias_hh_l{k}"])


def _one_hot(ix, vocab_size):
    x = np.zeros(vocab_size)
    if ix is not None:
        x[ix] = 1
    return x


def _stack_step(x, state, params, cell, keep_t=None, scale=1.0):
    """One time step up the stack: returns the decoder's input, the new state and caches.

    x (V,) one-hot, state (S, L, H). keep_t (L, H) keep flags or None: layer k's output
    is multiplied by ``keep_t[k] * scale`` before it goes up (to layer k+1 or the decoder).
    """
    forward = CELLS[cell][0]
    new_state = np.empty_like(state)
    caches = []
    for k in range(state.shape[1]):
        *slots, cache = forward(x, *state[:, k], *_layer_weights(params, k))
        new_state[:, k] = slots
        caches.append(cache)
        x = slots[0]  # h of layer k feeds the layer above
        if keep_t is not None:
            x = x * (keep_t[k] * scale)  # dropout: on the way up, never on the recurrence
    return x, new_state, caches


def stack_lossFun(inputs, targets, state, params, cell, *, keep=None, dropout=0.0):
    """Loss and gradients of one chunk of one stream through an L-layer stack.

    Parameters
    ----------
    inputs, targets : sequence of int, length T
        Character indices; targets[t] is the character after inputs[t].
    state : ndarray (S, L, H)
        The state before the chunk (h, and c for the LSTM); a constant (full BPTT over
        the chunk only).
    params : dict
        As ``init_stack`` returns.
    cell : {"rnn", "lstm", "gru"}
    keep : ndarray (L, T, H) of uint8, or None
        Dropout keep flags: keep[k, t] for the output of layer k at step t (k < L-1: fed to
        layer k+1; k = L-1: fed to the decoder). None: no dropout.
    dropout : float
        p; kept values are multiplied by ``1.0 / (1.0 - p)``.

    Returns
    -------
    loss : float
        Summed cross-entropy in nats.
    grads : dict
        name -> gradient array, the names and shapes of ``params``. Not clipped.
    new_state : ndarray (S, L, H)
        The state after step T.
    """
    backward = CELLS[cell][1]
    W_dec, b_dec = params["decoder.weight"], params["decoder.bias"]
    vocab_size = W_dec.shape[0]
    L = state.shape[1]
    scale = 1.0 / (1.0 - dropout)
    states, tops, caches, ps = {}, {}, {}, {}
    states[-1] = np.copy(state)
    loss = 0.0
    # forward pass
    for t in range(len(inputs)):
        x = _one_hot(inputs[t], vocab_size)
        keep_t = None if keep is None else keep[:, t]
        tops[t], states[t], caches[t] = _stack_step(x, states[t - 1], params, cell, keep_t, scale)
        y = np.dot(W_dec, tops[t]) + b_dec  # unnormalized log probabilities for next chars
        ps[t] = _softmax(y)
        loss += -np.log(ps[t][targets[t]])
    # backward pass: through time, and at each step down the stack
    grads = {name: np.zeros_like(a) for name, a in params.items()}
    dstate_next = np.zeros_like(state)  # gradient reaching each layer's state from step t+1
    for t in reversed(range(len(inputs))):
        dy = np.copy(ps[t])
        dy[targets[t]] -= 1  # backprop into y
        grads["decoder.weight"] += np.outer(dy, tops[t])
        grads["decoder.bias"] += dy
        dx = np.dot(W_dec.T, dy)  # into the decoder's input
        for k in reversed(range(L)):
            if keep is not None:
                dx = dx * (keep[k, t] * scale)  # through the dropout above layer k
            dslots = dstate_next[:, k].copy()
            dslots[0] += dx  # h of layer k feeds both the layer above and step t+1
            dx, *dslots_prev, dW_ih, dW_hh, db_ih, db_hh = backward(*dslots, caches[t][k])
            dstate_next[:, k] = dslots_prev
            grads[f"weight_ih_l{k}"] += dW_ih
            grads[f"weight_hh_l{k}"] += dW_hh
            grads[f"bias_ih_l{k}"] += db_ih
            grads[f"bias_hh_l{k}"] += db_hh
    return loss, grads, states[len(inputs) - 1]


def stack_sample(state, seed_ix, n, params, cell, rng=None, *, temperature=1.0, top_k=None,
                 top_p=None):
    """Sample ``n`` character indices from a stack (no dropout), as the seeds' ``sample``.

    state (S, L, H) is the state before the first input; seed_ix None: an all-zero first
    input (as seed 002). One ``rng.choice`` per character with the softmax of the logits
    divided by ``temperature``; with ``top_k`` or ``top_p``, :func:`filtered_choice`.
    """
    if rng is None:
        rng = np.random.mtrand._rand
    elif not isinstance(rng, np.random.RandomState):
        rng = np.random.RandomState(rng)
    W_dec, b_dec = params["decoder.weight"], params["decoder.bias"]
    vocab_size = W_dec.shape[0]
    x = _one_hot(seed_ix, vocab_size)
    ixes = []
    for t in range(n):
        top, state, _ = _stack_step(x, state, params, cell)
        y = np.dot(W_dec, top) + b_dec
        if top_k is not None or top_p is not None:
            ix = filtered_choice(y, rng, temperature, top_k, top_p)
        else:
            p = _softmax(y / temperature)
            ix = rng.choice(range(vocab_size), p=p)
        x = _one_hot(ix, vocab_size)
        ixes.append(int(ix))
    return ixes


def stack_logprobs(indices, params, cell, state=None):
    """Natural-log probability of each ``indices[t + 1]`` given ``indices[:t + 1]``.

    Starts from ``state`` (S, L, H), zero if None; no dropout. Returns a float64 array of
    ``len(indices) - 1`` values; their negated sum is ``stack_lossFun``'s loss on the
    same chunk.
    """
    W_dec, b_dec = params["decoder.weight"], params["decoder.bias"]
    vocab_size, hidden_size = W_dec.shape
    if state is None:
        state = np.zeros((STATE_SLOTS[cell], _num_layers(params), hidden_size))
    logprobs = np.empty(max(len(indices) - 1, 0))
    for t in range(len(logprobs)):
        top, state, _ = _stack_step(_one_hot(indices[t], vocab_size), state, params, cell)
        p = _softmax(np.dot(W_dec, top) + b_dec)
        logprobs[t] = np.log(p[indices[t + 1]])
    return logprobs


def clip_grad_norm(grads, max_norm):
    """Scale all gradients in place so that their global norm is at most ``max_norm``.

    As ``torch.nn.utils.clip_grad_norm_``: total = sqrt(sum of the squares of every entry
    of every array); if ``max_norm / (total + 1e-6)`` is below 1, every entry is multiplied
    by it. ``grads`` is a dict of arrays. Returns the total norm before clipping.
    """
    sum_of_squares = 0.0
    for g in grads.values():
        sum_of_squares += float(np.sum(g * g))
    total = math.sqrt(sum_of_squares)
    coef = max_norm / (total + 1e-6)
    if coef < 1:
        for g in grads.values():
            g *= coef
    return total


def lr_at(n, learning_rate, lr_schedule="constant", warmup_iters=0, decay_iters=None,
          min_lr=None, lr_decay=0.97, decay_every=1):
    """The learning rate of update ``n`` (0-based: the number of updates done before it).

    Linear warmup over the first ``warmup_iters`` updates (nanoGPT's), then "constant";
    "cosine" from ``learning_rate`` down to ``min_lr`` (default learning_rate / 10) at
    ``decay_iters`` and ``min_lr`` after it (nanoGPT's); or "step": times ``lr_decay``
    every ``decay_every`` updates (char-rnn's learning_rate_decay). The operations are
    the specification's, in its order, so that the kernels give the same doubles.
    """
    lr, W = learning_rate, warmup_iters
    if n < W:
        return lr * (n + 1) / (W + 1)
    if lr_schedule == "constant":
        return lr
    if lr_schedule == "cosine":
        if decay_iters is None:
            raise ValueError("lr_schedule 'cosine' needs decay_iters (the update where the "
                             "decay ends), got None")
        if min_lr is None:
            min_lr = lr / 10
        if n >= decay_iters:
            return min_lr
        ratio = (n - W) / (decay_iters - W)
        return min_lr + 0.5 * (1.0 + math.cos(math.pi * ratio)) * (lr - min_lr)
    if lr_schedule == "step":
        return lr * math.pow(lr_decay, math.floor((n - W) / decay_every))
    raise ValueError(f"unknown lr_schedule {lr_schedule!r}: expected 'constant', 'cosine' "
                     f"or 'step'")


def dropout_rng(seed):
    """The dropout mask stream of a model whose weights were drawn with ``seed``."""
    return np.random.RandomState([seed, 1])


@dataclass
class StackModel:
    """What ``stack_train`` returns: the trained weights and the loop's state."""
    params: dict
    chars: list
    char_to_ix: dict
    cell: str
    num_layers: int
    hidden_size: int
    seq_length: int
    smooth_loss: float
    state: np.ndarray  # (S, L, B, H)
    p: int
    n: int
    mems: list
    loss_history: np.ndarray = field(repr=False)
    smooth_loss_history: np.ndarray = field(repr=False)


def stack_train(text, cell="lstm", num_layers=1, hidden_size=100, seq_length=25,
                learning_rate=2e-3, num_iterations=None, seed=0, *, epochs=None,
                optimizer="adam", clip=5.0, clip_norm=None, dropout=0.0, batch_size=1,
                reset_each_epoch=False, beta1=0.9, beta2=0.999, decay_rate=0.95, eps=1e-8,
                lr_schedule="constant", warmup_iters=0, decay_iters=None, min_lr=None,
                lr_decay=0.97, decay_every=1, keep=None):
    """``train``'s loop for a stack of cells: same walk of the text, same streams.

    Weights from ``init_stack(cell, L, H, V, RandomState(seed))``. With ``dropout`` p > 0,
    each iteration draws its keep flags ``random_sample((L, T, B, H)) >= p`` from
    ``dropout_rng(seed)``, or takes the next array of ``keep`` (an iterable of (L, T, B, H)
    arrays, one per iteration) when given. Each iteration sums the streams' gradients, clips
    them element-wise (``clip``), then by global norm (``clip_norm``), and updates with
    ``update`` at learning rate ``lr_at(n, ...)``. ``decay_iters`` defaults to the run's
    number of iterations.
    """
    chars = sorted(set(text))
    vocab_size = len(chars)
    char_to_ix = {ch: i for i, ch in enumerate(chars)}
    data = [char_to_ix[ch] for ch in text]
    per_stream = len(data) // batch_size
    streams = [data[b * per_stream:(b + 1) * per_stream] for b in range(batch_size)]
    params = init_stack(cell, num_layers, hidden_size, vocab_size, np.random.RandomState(seed))
    mems = [[np.zeros_like(a) for a in params.values()] for _ in range(2)]
    if epochs is not None:
        num_iterations = epochs * ((per_stream - 1) // seq_length)
    if decay_iters is None:
        decay_iters = num_iterations
    if keep is None and dropout > 0:
        masks = dropout_rng(seed)
        shape = (num_layers, seq_length, batch_size, hidden_size)
        keep = (masks.random_sample(shape) >= dropout for _ in range(num_iterations))
    keep = None if keep is None else iter(keep)
    smooth_loss = -np.log(1.0 / vocab_size) * seq_length  # loss at iteration 0
    losses, smooth_losses = np.empty(num_iterations), np.empty(num_iterations)
    state_shape = (STATE_SLOTS[cell], num_layers, batch_size, hidden_size)
    state = np.zeros(state_shape)
    n, p = 0, 0
    while n < num_iterations:
        if epochs is None:
            if p + seq_length + 1 >= per_stream or n == 0:
                state = np.zeros(state_shape)  # reset
                p = 0  # go from start of data
        elif p + seq_length + 1 > per_stream:
            p = 0
            if reset_each_epoch:
                state = np.zeros(state_shape)
        keep_n = None if keep is None else next(keep)
        loss, grads = 0.0, {name: np.zeros_like(a) for name, a in params.items()}
        for b, stream in enumerate(streams):
            inputs = stream[p:p + seq_length]
            targets = stream[p + 1:p + seq_length + 1]
            keep_b = None if keep_n is None else keep_n[:, :, b]
            loss_b, grads_b, state[:, :, b] = stack_lossFun(
                inputs, targets, state[:, :, b], params, cell, keep=keep_b, dropout=dropout)
            loss += loss_b / batch_size
            for name in grads:
                grads[name] += grads_b[name]
        if clip is not None:
            for dparam in grads.values():
                np.clip(dparam, -clip, clip, out=dparam)
        if clip_norm is not None:
            clip_grad_norm(grads, clip_norm)
        smooth_loss = smooth_loss * 0.999 + loss * 0.001
        lr = lr_at(n, learning_rate, lr_schedule, warmup_iters, decay_iters, min_lr,
                   lr_decay, decay_every)
        update(list(params.values()), list(grads.values()), mems, optimizer, lr, n + 1,
               beta1=beta1, beta2=beta2, decay_rate=decay_rate, eps=eps)
        losses[n], smooth_losses[n] = loss, smooth_loss
        p += seq_length  # move data pointer
        n += 1  # iteration counter
    return StackModel(params, chars, char_to_ix, cell, num_layers, hidden_size, seq_length,
                      smooth_loss, state, p, n, mems, losses, smooth_losses)
