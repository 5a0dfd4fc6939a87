"""Pure-numpy reference of charrnn: the seeds' code, made into functions.

This is the oracle the compiled kernels are tested against and the baseline the
benchmarks compare with. It is meant to be read next to min-char-rnn: same names,
same order of operations, one-hot vectors and all. It does no input checking.

The only departures from the seeds, all documented in the README:
- the vocabulary is ``sorted(set(text))`` (``list(set(...))`` changes between runs);
- the softmax is max-shifted (seed 002 does this; the others overflow for large logits);
- the options ``activation``, ``optimizer``, ``clip``, ``bptt`` and ``epochs`` select
  the variants of seeds 000-004.
"""
from dataclasses import dataclass, field

import numpy as np

__all__ = ["init_params", "lossFun", "sample", "train", "Model"]


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


def sample(h, seed_ix, n, params, rng=None, *, activation="tanh"):
    """Sample a sequence of integers from the model; seed_ix None: all-zero first input."""
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
