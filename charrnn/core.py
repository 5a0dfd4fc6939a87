"""The seeds' three functions, ``init_params``, ``lossFun`` and ``sample``, on compiled kernels.

Names and return values are those of min-char-rnn: parameters are the tuple
``(Wxh, Whh, Why, bh, by)`` with shapes ``(H, V) (H, H) (V, H) (H, 1) (V, 1)``,
hidden states are ``(H, 1)`` columns.
"""
from __future__ import annotations

from typing import Optional, Sequence, Tuple, Union

import numpy as np
import numpy.typing as npt

from . import _validate as check

from ._dispatch import kernels as _kernels

__all__ = ["init_params", "lossFun", "sample"]

#: ``(Wxh, Whh, Why, bh, by)``.
Params = Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]
#: What every ``rng`` argument takes: None (numpy's global RandomState), a seed, a RandomState.
RNG = Union[None, int, np.random.RandomState]


def init_params(hidden_size: int, vocab_size: int, rng: RNG = None,
                dtype: npt.DTypeLike = "float64") -> Params:
    """Initial parameters, drawn as the seeds draw them.

    Parameters
    ----------
    hidden_size, vocab_size : int
        H and V, both >= 1.
    rng : None, int or numpy.random.RandomState
        Source of the weights. ``None`` uses numpy's global RandomState, so that after
        ``np.random.seed(s)`` the numbers equal the seeds'; an int is a seed for a new
        RandomState.
    dtype : {"float64", "float32"}
        The weights are drawn in float64 and then cast.

    Returns
    -------
    (Wxh, Whh, Why, bh, by) : tuple of ndarray
        Shapes ``(H, V) (H, H) (V, H) (H, 1) (V, 1)``: ``rng.randn(...) * 0.01`` drawn
        in the order Wxh, Whh, Why; the biases are zeros.
    """
    H = check.integer(hidden_size, "hidden_size", minimum=1)
    V = check.integer(vocab_size, "vocab_size", minimum=1)
    dt = check.dtype(dtype)
    rng = check.random_state(rng)
    Wxh = rng.randn(H, V) * 0.01  # input to hidden
    Whh = rng.randn(H, H) * 0.01  # hidden to hidden
    Why = rng.randn(V, H) * 0.01  # hidden to output
    bh = np.zeros((H, 1))
    by = np.zeros((V, 1))
    Wxh, Whh, Why, bh, by = (np.ascontiguousarray(a, dtype=dt) for a in (Wxh, Whh, Why, bh, by))
    return Wxh, Whh, Why, bh, by


def lossFun(inputs: npt.ArrayLike, targets: npt.ArrayLike, hprev: npt.ArrayLike,
            params: Sequence[npt.ArrayLike], *, activation: str = "tanh", bptt: str = "full",
            clip: Optional[float] = 5.0
            ) -> Tuple[float, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray,
                       np.ndarray]:
    """Loss, gradients and last hidden state of one sequence (the seeds' ``lossFun``).

    Parameters
    ----------
    inputs, targets : sequence of int or 1-D integer array, length T >= 1
        Character indices in ``[0, V)``; ``targets[t]`` is the character after ``inputs[t]``.
    hprev : ndarray, shape (H, 1)
        Hidden state before ``inputs[0]``.
    params : tuple (Wxh, Whh, Why, bh, by)
        float64 (or float32) arrays of shapes ``(H, V) (H, H) (V, H) (H, 1) (V, 1)``.
    activation : {"tanh", "sigmoid"}
        Hidden nonlinearity: tanh (seeds 000-003) or sigmoid (seed 004).
    bptt : {"full", "none"}
        ``"full"`` back-propagates through the whole sequence; ``"none"`` is Elman's
        simple recurrent network, where the previous hidden state is a constant input.
    clip : float or None
        Every gradient is clipped to ``[-clip, clip]`` (the seeds use 5); None: no clip.

    Returns
    -------
    loss : float
        Summed cross-entropy ``sum_t -log p_t[targets[t]]`` in nats.
    dWxh, dWhh, dWhy, dbh, dby : ndarray
        Gradients, shaped like the parameters.
    h_last : ndarray, shape (H, 1)
        Hidden state after the last input.
    """
    (Wxh, Whh, Why, bh, by), H, V = check.params(params)
    dt = Wxh.dtype.type
    inputs = check.indices(inputs, V, "inputs")
    targets = check.indices(targets, V, "targets")
    if inputs.shape != targets.shape:
        raise ValueError(
            f"inputs and targets must have the same length, got {inputs.size} and {targets.size}"
        )
    h0 = check.hidden(hprev, H, dt)
    act = check.choice(activation, "activation", check.ACTIVATIONS)
    full = check.choice(bptt, "bptt", check.BPTT)
    c = check.clip_value(clip)
    T = inputs.size
    dWxh, dWhh, dWhy = np.empty_like(Wxh), np.empty_like(Whh), np.empty_like(Why)
    dbh, dby = np.empty((H,), dt), np.empty((V,), dt)
    hs = np.empty((T + 1, H), dt)
    ps = np.empty((T, V), dt)
    dh = np.empty((T, H), dt)
    dhnext = np.empty((H,), dt)
    loss = _kernels.lossfun(inputs, targets, h0, Wxh, Whh, Why, bh.reshape(H), by.reshape(V),
                            dWxh, dWhh, dWhy, dbh, dby, hs, ps, dh, dhnext,
                            np.empty((H, H), dt), np.empty((H, V), dt), act, full, c)
    return (loss, dWxh, dWhh, dWhy, dbh.reshape(H, 1), dby.reshape(V, 1),
            hs[T].reshape(H, 1).copy())


def sample(h: npt.ArrayLike, seed_ix: Optional[int], n: int, params: Sequence[npt.ArrayLike],
           rng: RNG = None, *, activation: str = "tanh", temperature: float = 1.0,
           greedy: bool = False, top_k: Optional[int] = None,
           top_p: Optional[float] = None) -> list[int]:
    """Sample ``n`` character indices from the model (the seeds' ``sample``).

    Parameters
    ----------
    h : ndarray, shape (H, 1)
        Hidden state to start from (not modified).
    seed_ix : int or None
        Input character of the first step; ``None`` feeds an all-zero input vector,
        as seed 002 does.
    n : int
        Number of characters, >= 0.
    params : tuple (Wxh, Whh, Why, bh, by)
    rng : None, int or numpy.random.RandomState
        ``None`` is numpy's global RandomState, as in the seeds. One uniform is drawn
        per character, so with the same RandomState the result equals the seeds'
        ``np.random.choice(range(vocab_size), p=p.ravel())`` loop, and the stream
        stays in step.
    activation : {"tanh", "sigmoid"}
    temperature : float > 0
        Logits are divided by it before the softmax. A temperature so small (or
        weights so large) that the scaled logits could overflow raises ValueError;
        ``greedy=True`` is the limit of small temperatures.
    greedy : bool
        Take the most likely character instead of drawing (draws no uniforms).
    top_k : int or None
        Draw only among the ``top_k`` most likely characters (``top_k >= V``: all).
    top_p : float in (0, 1] or None
        Nucleus sampling: draw only among the smallest set of most likely characters
        whose probabilities (after ``temperature`` and ``top_k``) sum to at least
        ``top_p``, renormalised. Characters are ranked by probability, the lower index
        first among equal ones, and the one whose probability crosses ``top_p`` is
        included (:func:`charrnn.reference.top_p_filter`). ``None`` or 1: all.

    Returns
    -------
    list of int
    """
    ixes, _ = _sample(h, seed_ix, n, params, rng, activation=activation,
                      temperature=temperature, greedy=greedy, top_k=top_k, top_p=top_p)
    return ixes.tolist()


def _check_logits(Why, by, temperature):
    """Refuse weights and temperatures whose scaled logits could overflow.

    The hidden state is in [-1, 1], so ``|Why @ h + by| <= max_v(sum_j |Why[v, j]| +
    |by[v]|)``; divided by the temperature, past the dtype's range it would become
    inf, the softmax NaN, and every draw silently the last character.
    """
    with np.errstate(over="ignore"):
        bound = float(np.max(np.abs(Why).sum(axis=1, dtype=np.float64)
                             + np.abs(by[:, 0]).astype(np.float64)))
    limit = float(np.finfo(Why.dtype).max) / 4
    if bound > limit * temperature:
        if bound > limit:
            raise ValueError(f"the logits Why @ h + by can reach {bound:.3g} and overflow "
                             f"{Why.dtype}: the weights are too large to sample from")
        raise ValueError(f"temperature {temperature:.3g} is too small for these weights: "
                         f"the logits divided by it could overflow {Why.dtype}; use "
                         f"greedy=True for the limit of small temperatures")


def check_top_p(top_p) -> float:
    """``top_p`` checked, as a float in (0, 1]; None is 1 (no nucleus)."""
    if top_p is None:
        return 1.0
    top_p = check.real(top_p, "top_p", positive=True)
    if top_p > 1:
        raise ValueError(f"top_p must be in (0, 1] (a probability mass), got {top_p}")
    return top_p


def _sample(h, seed_ix, n, params, rng, *, activation, temperature, greedy, top_k,
            top_p=None):
    """Checked sampling; returns the index array and the last hidden state (H,)."""
    (Wxh, Whh, Why, bh, by), H, V = check.params(params)
    dt = Wxh.dtype.type
    h = check.hidden(h, H, dt, name="h")
    x = -1 if seed_ix is None else check.index(seed_ix, V, "seed_ix")
    n = check.integer(n, "n", minimum=0)
    rng = check.random_state(rng)
    act = check.choice(activation, "activation", check.ACTIVATIONS)
    temperature = check.real(temperature, "temperature", positive=True)
    k = 0 if top_k is None else min(check.integer(top_k, "top_k", minimum=1), V)
    top_p = check_top_p(top_p)
    if not greedy:
        _check_logits(Why, by, temperature)
    out = np.empty(n, np.int64)
    if n == 0:
        return out, h
    uniforms = np.zeros(n) if greedy else rng.random_sample(n)
    _kernels.sample(h, x, uniforms, Wxh, Whh, Why, bh.reshape(H), by.reshape(V),
                    np.empty(H, dt), np.empty(V, dt), np.empty((H, H), dt), np.empty((H, V), dt),
                    np.empty(V, dt), out, act, temperature, bool(greedy), k, top_p)
    return out, h
