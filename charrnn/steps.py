"""Seed 000's modular steps on the compiled kernels: forward, cost, backward, update.

Seed 000 cuts min-char-rnn's ``lossFun`` into functions that keep the forward
pass's activations in a dict, ``caches``, for the backward pass. They are here
with the seed's names, spelling (``propogation``; the correct spelling is an
alias), argument order, shapes and return values::

    parameters, adagrad_mem_vars = initialize_parameters(hidden_size, vocab_size)
    X, Y = get_one_hot(p, char_to_ix, data, vocab_size, seq_length)   # (T, V) one-hot rows
    caches = forward_propogation(X, parameters, seq_length, hprev)   # 'h0' .. 'hT', 'A1' .. 'AT'
    cost = compute_cost(Y, caches)
    grads = backward_propogation(X, Y, caches, parameters)           # clipped to [-5, 5]
    parameters, adagrad_mem_vars = update_parameters(parameters, grads, adagrad_mem_vars,
                                                     learning_rate)
    hprev = caches['h' + str(seq_length)]

Parameters are the tuple ``(Wxh, Whh, Why, bh, by)`` of shapes ``(H, V) (H, H)
(V, H) (H, 1) (V, 1)``, hidden states and softmax outputs ``(H, 1)`` and ``(V, 1)``
columns. Each step runs the kernels of :func:`charrnn.lossFun` and of the training
loop's update, so a loop of these steps gives the bits of :func:`charrnn.train`
(``tests/test_steps.py`` checks it); :mod:`charrnn.reference` has them in plain
numpy. The seed's ``print_sample(ht, seed_ix, n, parameters)`` is
:func:`charrnn.sample` (same arguments; it returns the indices instead of printing).
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Dict, Iterator, Optional, Sequence, Tuple

import numpy as np
import numpy.typing as npt

from . import _validate as check
from ._dispatch import kernels as _kernels
from .core import RNG, Params, init_params

__all__ = ["initialize_parameters", "get_one_hot", "forward_propogation", "compute_cost",
           "backward_propogation", "update_parameters", "forward_propagation",
           "backward_propagation", "Caches"]


class Caches(Mapping):
    """What :func:`forward_propogation` returns: seed 000's ``caches`` dict, read-only.

    Keys, in the seed's order: ``'h0'`` (the hidden state before the first input),
    then ``'A1'``, ``'h1'``, ..., ``'AT'``, ``'hT'``: the softmax output ``(V, 1)``
    and the hidden state ``(H, 1)`` after input t. ``len(caches)`` is ``2T + 1``, so
    the seed's ``len(caches) // 2`` is T. The values are read-only views of two arrays,
    also readable whole:

    Attributes
    ----------
    hs : ndarray, shape (T + 1, H)
        ``hs[t]`` is ``caches['h' + str(t)]``.
    ps : ndarray, shape (T, V)
        ``ps[t - 1]`` is ``caches['A' + str(t)]``.
    activation : str
        The hidden nonlinearity of the forward pass ("tanh" or "sigmoid").
    """

    def __init__(self, hs: np.ndarray, ps: np.ndarray, activation: str = "tanh"):
        if hs.ndim != 2 or ps.ndim != 2 or hs.shape[0] != ps.shape[0] + 1:
            raise ValueError(f"hs must be (T + 1, H) and ps (T, V), got {hs.shape} and "
                             f"{ps.shape}")
        hs.flags.writeable = False
        ps.flags.writeable = False
        self.hs, self.ps, self.activation = hs, ps, activation

    def _step(self, key):
        if isinstance(key, str) and key[:1] in ("h", "A") and key[1:].isdecimal():
            t = int(key[1:])
            if str(t) == key[1:] and (0 if key[0] == "h" else 1) <= t < self.hs.shape[0]:
                return key[0], t
        raise KeyError(key)

    def __getitem__(self, key: str) -> np.ndarray:
        kind, t = self._step(key)
        return self.hs[t, :, None] if kind == "h" else self.ps[t - 1, :, None]

    def __contains__(self, key: object) -> bool:
        try:
            self._step(key)
        except KeyError:
            return False
        return True

    def __iter__(self) -> Iterator[str]:
        yield "h0"
        for t in range(1, self.hs.shape[0]):
            yield f"A{t}"
            yield f"h{t}"

    def __len__(self) -> int:
        return 2 * self.hs.shape[0] - 1

    def __repr__(self):
        T, H = self.ps.shape[0], self.hs.shape[1]
        return f"<Caches of {T} steps: 'h0' .. 'h{T}' (H={H}), 'A1' .. 'A{T}' " \
               f"(V={self.ps.shape[1]})>"


def initialize_parameters(hidden_size: int, vocab_size: int, rng: RNG = None,
                          dtype: npt.DTypeLike = "float64") -> Tuple[Params, Params]:
    """Initial parameters and Adagrad's memories (seed 000's ``initialize_parameters``).

    Parameters
    ----------
    hidden_size, vocab_size : int
        H and V, both >= 1.
    rng : None, int or numpy.random.RandomState
        As in :func:`charrnn.init_params`: None is numpy's global RandomState (the
        seed's ``np.random.randn``).
    dtype : {"float64", "float32"}

    Returns
    -------
    parameters : tuple (Wxh, Whh, Why, bh, by)
        :func:`charrnn.init_params`: ``randn * 0.01`` weights, zero biases.
    adagrad_mem_vars : tuple (mWxh, mWhh, mWhy, mbh, mby)
        Zeros, shaped like the parameters.
    """
    Wxh, Whh, Why, bh, by = parameters = init_params(hidden_size, vocab_size, rng, dtype)
    zeros = np.zeros_like
    return parameters, (zeros(Wxh), zeros(Whh), zeros(Why), zeros(bh), zeros(by))


def get_one_hot(p: int, char_to_ix: Dict[str, int], data: str, vocab_size: int,
                seq_length: int = 25) -> Tuple[np.ndarray, np.ndarray]:
    """One-hot inputs and targets of the window at ``p`` (seed 000's ``get_one_hot``).

    The seed reads ``seq_length`` from a global; here it is an argument (default the
    seed's 25).

    Parameters
    ----------
    p : int
        Start of the window; ``p + seq_length + 1 <= len(data)``.
    char_to_ix : dict
        Character -> index in ``[0, vocab_size)``.
    data : str
    vocab_size : int
    seq_length : int

    Returns
    -------
    X, Y : ndarray, shape (seq_length, vocab_size), float64
        ``X[t]`` is the one-hot row of ``data[p + t]``, ``Y[t]`` that of ``data[p + t + 1]``.
    """
    V = check.integer(vocab_size, "vocab_size", minimum=1)
    T = check.integer(seq_length, "seq_length", minimum=1)
    p = check.integer(p, "p", minimum=0)
    if not isinstance(data, str):
        raise ValueError(f"data must be a str, got {type(data).__name__}")
    if p + T + 1 > len(data):
        raise ValueError(f"the window p + seq_length + 1 = {p + T + 1} runs past the end of "
                         f"data ({len(data)} characters)")
    try:
        ix = np.array([char_to_ix[ch] for ch in data[p:p + T + 1]], dtype=np.int64)
    except KeyError as e:
        raise ValueError(f"character {e.args[0]!r} of data is not in char_to_ix") from None
    check.indices(ix, V, "char_to_ix values")
    eye = np.eye(V)
    return eye[ix[:-1]], eye[ix[1:]]


def _one_hot_rows(X, V, T, name):
    """The index of the 1 in each of the first T rows of a one-hot (>= T, V) array."""
    try:
        X = np.asarray(X)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{name} must be an array of one-hot rows: {e}") from None
    if X.ndim != 2 or X.shape[1] != V or X.dtype.kind not in "biuf":
        raise ValueError(f"{name} must be a numeric array of one-hot rows, shape "
                         f"(seq_length, {V}); got {X.dtype} of shape {X.shape}")
    if X.shape[0] < T:
        raise ValueError(f"{name} has {X.shape[0]} rows; seq_length {T} needs at least {T}")
    X = X[:T]
    ones = X == 1
    bad = np.flatnonzero((ones.sum(axis=1) != 1) | ((X != 0) & ~ones).any(axis=1))
    if bad.size:
        raise ValueError(f"{name}[{bad[0]}] is not one-hot (a single 1, the rest 0): the "
                         f"kernels read inputs and targets as character indices")
    return np.ascontiguousarray(ones.argmax(axis=1), dtype=np.int32)


def forward_propogation(X: npt.ArrayLike, parameters: Sequence[np.ndarray], seq_length: int,
                        hprev: np.ndarray, *, activation: str = "tanh") -> Caches:
    """The forward pass over a sequence, keeping its activations (seed 000).

    ``h_t = tanh(Wxh @ x_t + Whh @ h_{t-1} + bh)`` and ``A_t = softmax(Why @ h_t + by)``
    for t = 1 .. seq_length, in one compiled call.

    Parameters
    ----------
    X : array, shape (>= seq_length, V)
        One-hot input rows (:func:`get_one_hot`); the first ``seq_length`` are used.
    parameters : tuple (Wxh, Whh, Why, bh, by)
    seq_length : int
        T >= 1.
    hprev : ndarray, shape (H, 1)
        Hidden state before the first input (not modified).
    activation : {"tanh", "sigmoid"}
        Seed 000's tanh, or seed 004's sigmoid.

    Returns
    -------
    Caches
        Seed 000's dict, read-only: ``caches['h' + str(t)]`` (H, 1) for t = 0 .. T (h0 a
        copy of hprev) and ``caches['A' + str(t)]`` (V, 1) for t = 1 .. T.
    """
    (Wxh, Whh, Why, bh, by), H, V = check.params(parameters)
    dt = Wxh.dtype.type
    T = check.integer(seq_length, "seq_length", minimum=1)
    inputs = _one_hot_rows(X, V, T, "X")
    h0 = check.hidden(hprev, H, dt)
    act = check.choice(activation, "activation", check.ACTIVATIONS)
    hs, ps = np.empty((T + 1, H), dt), np.empty((T, V), dt)
    _kernels.forward_caches(inputs, h0, Wxh, Whh, Why, bh.reshape(H), by.reshape(V), hs, ps,
                            np.empty((H, H), dt), np.empty((H, V), dt), act)
    return Caches(hs, ps, activation)


def _stacked(caches):
    """``(hs, ps)``, (T + 1, H) and (T, V): a Caches' arrays, or a dict's columns stacked."""
    if isinstance(caches, Caches):
        return caches.hs, caches.ps
    if not isinstance(caches, Mapping):
        raise ValueError(f"caches must be what forward_propogation returns (a mapping "
                         f"'h0', 'A1', 'h1', ...), got {type(caches).__name__}")
    T = len(caches) // 2
    if T < 1:
        raise ValueError(f"caches has {len(caches)} entries; one step has 3 ('h0', 'A1', 'h1')")
    try:
        hs = np.stack([np.asarray(caches[f"h{t}"]) for t in range(T + 1)])
        ps = np.stack([np.asarray(caches[f"A{t}"]) for t in range(1, T + 1)])
    except KeyError as e:
        raise ValueError(f"caches has no {e.args[0]!r}: it needs 'h0' .. 'h{T}' and "
                         f"'A1' .. 'A{T}'") from None
    except ValueError as e:
        raise ValueError(f"caches' arrays differ in shape: {e}") from None
    if hs.ndim != 3 or hs.shape[2] != 1 or ps.ndim != 3 or ps.shape[2] != 1:
        raise ValueError(f"caches must hold columns, 'h<t>' (H, 1) and 'A<t>' (V, 1); got "
                         f"{hs.shape[1:]} and {ps.shape[1:]}")
    return hs[:, :, 0], ps[:, :, 0]


def compute_cost(Y: npt.ArrayLike, caches: Mapping) -> np.floating:
    """Summed cross-entropy of the targets under the cached softmaxes (seed 000).

    Parameters
    ----------
    Y : array, shape (>= T, V)
        One-hot target rows; the first T = ``len(caches) // 2`` are used.
    caches : Caches or dict
        :func:`forward_propogation`'s, or a dict with the same keys and shapes.

    Returns
    -------
    numpy.float64
        ``sum_t -log(caches['A' + str(t)][target_t])`` in nats: the seed's
        ``np.squeeze(-sum(y * log(A)))`` for one-hot rows, without its ``0 * log(0)``
        NaN where a probability underflows to 0.
    """
    _, ps = _stacked(caches)
    ps = check.float_array(ps, "caches' A", ps.shape)
    T, V = ps.shape
    targets = _one_hot_rows(Y, V, T, "Y")
    return np.squeeze(-np.log(ps[np.arange(T), targets].astype(np.float64)).sum())


def backward_propogation(X: npt.ArrayLike, Y: npt.ArrayLike, caches: Mapping,
                         parameters: Sequence[np.ndarray], *, activation: Optional[str] = None,
                         clip: Optional[float] = 5.0) -> Params:
    """Gradients of :func:`compute_cost` from the cached forward pass (seed 000).

    Back-propagation through time over the whole sequence, in one compiled call, then
    the seed's ``np.clip(dparam, -5, 5)``.

    Parameters
    ----------
    X, Y : array, shape (>= T, V)
        The one-hot inputs and targets (T = ``len(caches) // 2``).
    caches : Caches or dict
        :func:`forward_propogation`'s (not modified).
    parameters : tuple (Wxh, Whh, Why, bh, by)
        Those of the forward pass.
    activation : {"tanh", "sigmoid"}, optional
        Default: the forward pass's (a dict of caches: "tanh").
    clip : float or None
        Every gradient is clipped to ``[-clip, clip]``; None: not at all.

    Returns
    -------
    grads : tuple (dWxh, dWhh, dWhy, dbh, dby)
        Shaped like the parameters.
    """
    (Wxh, Whh, Why, bh, by), H, V = check.params(parameters)
    dt = Wxh.dtype.type
    hs, ps = _stacked(caches)
    T = ps.shape[0]
    hs = check.float_array(hs, "caches' h", (T + 1, H), dt)
    ps = check.float_array(ps, "caches' A", (T, V), dt)
    inputs = _one_hot_rows(X, V, T, "X")
    targets = _one_hot_rows(Y, V, T, "Y")
    forward = caches.activation if isinstance(caches, Caches) else "tanh"
    if activation is None:
        activation = forward
    elif isinstance(caches, Caches) and activation != forward:
        raise ValueError(f"activation {activation!r} differs from the forward pass's "
                         f"{forward!r}")
    act = check.choice(activation, "activation", check.ACTIVATIONS)
    c = check.clip_value(clip)
    grad = np.empty(H * V + H * H + V * H + H + V, dt)
    _kernels.backward_caches(inputs, targets, hs, ps, Whh, Why, grad, np.empty((T, V), dt),
                             np.empty((T, H), dt), np.empty(H, dt), np.empty((H, H), dt),
                             act, True, c)
    dWxh, dWhh, dWhy, dbh, dby = np.split(grad, np.cumsum([H * V, H * H, V * H, H]))
    return (dWxh.reshape(H, V), dWhh.reshape(H, H), dWhy.reshape(V, H), dbh.reshape(H, 1),
            dby.reshape(V, 1))


def _updatable(a, name, shape, dt):
    """``a`` itself, if the kernels can update it in place: else ValueError."""
    if not isinstance(a, np.ndarray) or a.shape != shape or a.dtype.type is not dt:
        got = f"{a.dtype} {a.shape}" if isinstance(a, np.ndarray) else type(a).__name__
        raise ValueError(f"{name} must be a {np.dtype(dt).name} array of shape {shape}, "
                         f"got {got}")
    if not (a.flags.c_contiguous and a.flags.writeable and a.dtype.isnative):
        raise ValueError(f"{name} is updated in place: it must be C-contiguous, writeable "
                         f"and in native byte order")
    return a


def update_parameters(parameters: Params, grads: Sequence[np.ndarray],
                      adagrad_mem_vars: Params, learning_rate: float
                      ) -> Tuple[Params, Params]:
    """One Adagrad update of every parameter, in place (seed 000's ``update_parameters``).

    For each parameter: ``mem += dparam * dparam``, then ``param -= learning_rate *
    dparam / np.sqrt(mem + 1e-8)``, by the training loop's compiled update (same bits).

    Parameters
    ----------
    parameters : tuple (Wxh, Whh, Why, bh, by)
        Updated in place: C-contiguous, writeable arrays.
    grads : tuple (dWxh, dWhh, dWhy, dbh, dby)
        Shaped like the parameters (:func:`backward_propogation`, already clipped).
    adagrad_mem_vars : tuple (mWxh, mWhh, mWhy, mbh, mby)
        Sums of squared gradients, >= 0, updated in place.
    learning_rate : float > 0

    Returns
    -------
    (parameters, adagrad_mem_vars)
        The tuples given, as the seed returns them.

    Raises
    ------
    FloatingPointError
        If a parameter became infinite (a learning rate too large for float range).
    """
    _, H, V = check.params(parameters)  # shapes, dtype, finite
    dt = parameters[0].dtype.type
    shapes = ((H, V), (H, H), (V, H), (H, 1), (V, 1))
    lr = check.real(learning_rate, "learning_rate", positive=True)
    for what, seq in (("grads", grads), ("adagrad_mem_vars", adagrad_mem_vars)):
        if not isinstance(seq, (tuple, list)) or len(seq) != 5:
            raise ValueError(f"{what} must be a tuple of five arrays, shaped like "
                             f"(Wxh, Whh, Why, bh, by)")
    triples = []
    for k, (name, shape) in enumerate(zip(check.PARAM_NAMES, shapes)):
        param = _updatable(parameters[k], name, shape, dt)
        dparam = check.float_array(grads[k], "d" + name, shape, dt)
        mem = _updatable(adagrad_mem_vars[k], "m" + name, shape, dt)
        if not (mem >= 0).all():
            raise ValueError(f"m{name} must hold sums of squares: finite and >= 0")
        triples.append((param, dparam, mem))
    for name, (param, dparam, mem) in zip(check.PARAM_NAMES, triples):
        if not _kernels.adagrad_update(param.reshape(-1), dparam.reshape(-1),
                                       mem.reshape(-1), lr):
            raise FloatingPointError(f"{name} became non-finite: learning rate {lr:g} is too "
                                     f"large for these gradients")
    return parameters, adagrad_mem_vars


#: The correct spellings of seed 000's ``forward_propogation`` and ``backward_propogation``.
forward_propagation = forward_propogation
backward_propagation = backward_propogation
