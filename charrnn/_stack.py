"""Stacked rnn / lstm / gru layers with dropout: the compiled kernels, driven from Python.

The narrow interface the model uses for every model but the seeds' one-layer vanilla
RNN (which keeps ``core`` and ``train_loop``). The kernels are in ``csrc/stack.pxi``
and ``csrc/cell_*.pxi``; equations, parameter layout, state and dropout masks follow
``cells_spec.md`` (PyTorch's names and gate orders).

Nothing here validates user input: shapes and options are asserted, not explained.
The model checks everything first. Notation: L layers, H hidden units, V characters,
T steps per iteration, B streams, S state slots (2 for lstm: h and c, else 1).
"""
from __future__ import annotations

from typing import List, Optional, Tuple

import numpy as np

from . import _validate as check
from ._dispatch import kernels as _kernels
from .schedule import SCHEDULES

__all__ = ["CELLS", "LR_SCHEDULES", "Workspace", "layout", "loss_and_grad", "train",
           "advance", "logprobs", "sample"]

#: cell name -> (kernel code, gates G, state slots S). Codes shared with csrc/stack.pxi.
CELLS = {"rnn": (0, 1, 1), "lstm": (1, 4, 2), "gru": (2, 3, 1)}

#: lr_schedule name -> kernel code (csrc/optim.pxi), as charrnn.schedule defines them.
LR_SCHEDULES = SCHEDULES

#: wrap name -> kernel code: the seeds' iteration walk (001/003), or epochs (002/004).
WRAPS = {"iterations": 0, "epochs": 1}

#: Minibatch streams per group: a group runs on one thread, its rows sharing each
#: pass over the weights. Fixed by B alone, so results do not depend on threads.
#: (The seeds' minibatch kernels use 4; the stacked ones ``group_size(B)``.)
STREAMS_PER_GROUP = 4

#: Streams per group of the stacked kernels once B allows two such groups: 8 rows
#: fill smallblas.h's 8-row tiles (LSTM H=256, B=32, float32: 1.45x faster than 4);
#: from four such groups, two tiles' worth, which read each packed panel of the weights
#: twice while it is in L1 (LSTM H=256, B=32 on two threads: 1.04x faster than 8).
WIDE_GROUP = 8


def group_size(B: int) -> int:
    """Streams per group of the stacked kernels for B streams (B alone decides it)."""
    if B >= 4 * WIDE_GROUP:
        return 2 * WIDE_GROUP
    return min(B, WIDE_GROUP if B >= 2 * WIDE_GROUP else STREAMS_PER_GROUP)

#: Dropout masks are drawn for at most this many bytes of keep flags per kernel call
#: (at least one iteration's), and their uniforms at most _DRAW_BLOCK at a time.
MASK_BYTES = 4 << 20
_DRAW_BLOCK = 1 << 18

#: Steps per forward chunk in ``logprobs`` and ``advance``.
_RUN_CHUNK = 128


def layout(cell: str, num_layers: int, H: int, V: int
           ) -> Tuple[List[Tuple[str, Tuple[int, ...], int]], int]:
    """Where each parameter lies in the flat buffer, in PyTorch's order.

    Parameters
    ----------
    cell : {"rnn", "lstm", "gru"}
    num_layers, H, V : int

    Returns
    -------
    entries : list of (name, shape, offset)
        ``weight_ih_l{k}`` (G*H, V if k == 0 else H), ``weight_hh_l{k}`` (G*H, H),
        ``bias_ih_l{k}``, ``bias_hh_l{k}`` (G*H,) for each layer k, then
        ``decoder.weight`` (V, H) and ``decoder.bias`` (V,); each C-ordered.
    P : int
        Total number of parameters.
    """
    gates = CELLS[cell][1]
    shapes = []
    for k in range(num_layers):
        shapes += [(f"weight_ih_l{k}", (gates * H, V if k == 0 else H)),
                   (f"weight_hh_l{k}", (gates * H, H)),
                   (f"bias_ih_l{k}", (gates * H,)),
                   (f"bias_hh_l{k}", (gates * H,))]
    shapes += [("decoder.weight", (V, H)), ("decoder.bias", (V,))]
    entries, offset = [], 0
    for name, shape in shapes:
        entries.append((name, shape, offset))
        offset += int(np.prod(shape))
    return entries, offset


class Workspace:
    """All the scratch of the stacked kernels for one model shape, allocated once.

    Parameters
    ----------
    cell : {"rnn", "lstm", "gru"}
    num_layers, H, V, T, B : int
        Layers, hidden size, vocabulary size, steps per iteration, streams.
    dtype : {"float32", "float64"} or numpy dtype
    num_threads : int
        Threads sharing the stream groups (at most the number of groups is used).

    Attributes
    ----------
    P : int
        Number of parameters.
    group : int
        Streams per group (``group_size(B)``); ``groups`` of them.
    """

    def __init__(self, cell, num_layers, H, V, T, B, dtype, num_threads=1):
        self.cell = cell
        self.code, self.gates, self.S = CELLS[cell]
        self.L, self.H, self.V, self.T, self.B = num_layers, H, V, T, B
        self.dtype = np.dtype(dtype)
        assert self.dtype in (np.float32, np.float64) and min(num_layers, H, V, T, B) >= 1
        self.group = G = group_size(B)
        self.groups = NG = -(-B // G)
        self.P, size, wt_size = _kernels.stack_sizes(self.code, num_layers, H, V, T, G)
        assert self.P == layout(cell, num_layers, H, V)[1]
        self.grads = np.empty(NG * self.P, self.dtype)
        self.scratch = np.empty(NG * size, self.dtype)
        self.WT = np.empty(wt_size, self.dtype)   # transposed weights, then their panels
        self.window = np.empty(NG * 2 * T * G, np.int32)
        self.group_loss = np.empty(NG)
        self.num_threads = max(1, min(int(num_threads), NG))

    @property
    def sizes(self):
        """``(code, L, H, V, T, B, G)``: the kernels' size arguments."""
        return self.code, self.L, self.H, self.V, self.T, self.B, self.group

    def check_state(self, state, B):
        """Assert that ``state`` is this model's (S, L, B, H) state, C-contiguous."""
        assert state.dtype == self.dtype and state.flags.c_contiguous, state.dtype
        assert state.size == self.S * self.L * B * self.H, state.shape

    def __repr__(self):
        return (f"Workspace({self.cell!r}, L={self.L}, H={self.H}, V={self.V}, T={self.T}, "
                f"B={self.B}, {self.dtype.name}, groups={self.groups}x{self.group})")


def _flat_keep(keep, shape):
    """Dropout masks as the kernels take them: a flat uint8 array (empty: none)."""
    if keep is None:
        return np.empty(0, np.uint8)
    keep = np.asarray(keep)
    assert keep.shape == shape, (keep.shape, shape)
    if keep.dtype == np.bool_:
        return np.ascontiguousarray(keep).view(np.uint8).reshape(-1)  # no copy
    return np.ascontiguousarray(keep, np.uint8).reshape(-1)


def loss_and_grad(ws: Workspace, flat: np.ndarray, inputs: np.ndarray, targets: np.ndarray,
                  state: np.ndarray, keep: Optional[np.ndarray] = None, dropout: float = 0.0
                  ) -> Tuple[float, np.ndarray, np.ndarray]:
    """Loss and gradient of one minibatch, without clipping (for tests and tools).

    Parameters
    ----------
    ws : Workspace
    flat : ndarray, shape (P,)
        The parameters in ``layout`` order, of ``ws.dtype``.
    inputs, targets : array of int, shape (B, T)
    state : ndarray, shape (S, L, B, H)
        State before ``inputs[:, 0]`` (not modified).
    keep : array of bool or uint8, shape (L, T, B, H), optional
        Dropout keep flags (``None``: no dropout).
    dropout : float
        The dropout probability p the masks were drawn with (kept values are scaled
        by ``1 / (1 - p)``).

    Returns
    -------
    loss : float
        Mean over the B streams of each stream's summed loss (nats).
    grad : ndarray, shape (P,)
        Gradient of the *sum* of the streams' losses.
    new_state : ndarray, shape (S, L, B, H)
        State after step T.
    """
    code, L, H, V, T, B, G = ws.sizes
    inputs = np.asarray(inputs, np.int32)
    targets = np.asarray(targets, np.int32)
    assert inputs.shape == targets.shape == (B, T), (inputs.shape, (B, T))
    assert flat.dtype == ws.dtype and flat.shape == (ws.P,)
    ws.check_state(state, B)
    window = ws.window.reshape(ws.groups, 2, T * G)
    for grp in range(ws.groups):
        rows = slice(grp * G, min(B, grp * G + G))
        n = T * (rows.stop - rows.start)
        window[grp, 0, :n] = inputs[rows].T.ravel()   # (T, G): row t * G + g
        window[grp, 1, :n] = targets[rows].T.ravel()
    new_state = np.array(state, copy=True, order="C")
    keep = _flat_keep(keep, (L, T, B, H))
    loss = _kernels.stack_loss_and_grad(flat, new_state.reshape(-1), ws.grads, ws.scratch,
                                        ws.WT, ws.window, ws.group_loss, keep, code, L, H, V,
                                        T, B, G, float(dropout) if keep.size else 0.0,
                                        ws.num_threads)
    return loss, ws.grads[:ws.P].copy(), new_state


def draw_masks(rng: np.random.RandomState, dropout: float, out: np.ndarray) -> np.ndarray:
    """``out[:] = rng.random_sample(out.shape) >= dropout``, a block of uniforms at a time.

    The same stream as one call (``random_sample(n)`` is n single draws), without
    holding all the doubles at once. ``out`` is a flat bool array; returns it.
    """
    for start in range(0, out.size, _DRAW_BLOCK):
        stop = min(out.size, start + _DRAW_BLOCK)
        np.greater_equal(rng.random_sample(stop - start), dropout, out=out[start:stop])
    return out


def _skip_uniforms(rng, count):
    """Advance ``rng`` by ``count`` uniforms, a block at a time."""
    while count > 0:
        k = min(count, _DRAW_BLOCK)
        rng.random_sample(k)
        count -= k


def train(ws: Workspace, data: np.ndarray, flat: np.ndarray, m1: np.ndarray, m2: np.ndarray,
          state: np.ndarray, loss_out: np.ndarray, smooth_out: np.ndarray, *, p: int, n: int,
          smooth_loss: float, optimizer: str = "adagrad", learning_rate: float = 0.1,
          lr_schedule: str = "constant", warmup_iters: int = 0, decay_iters: int = 0,
          min_lr: float = 0.0, lr_decay: float = 1.0, decay_every: int = 1,
          clip: Optional[float] = None, clip_norm: Optional[float] = None,
          beta1: float = 0.9, beta2: float = 0.999, decay_rate: float = 0.95,
          eps: float = 1e-8, wrap: str = "iterations", reset_each_epoch: bool = False,
          dropout: float = 0.0, dropout_rng: Optional[np.random.RandomState] = None,
          keep: Optional[np.ndarray] = None) -> Tuple[int, int, int, float, int, int]:
    """Run ``len(loss_out)`` training iterations of the stacked model, in place.

    The contract of the seeds' ``train_loop``: the text ``data`` is cut into B
    streams of ``len(data) // B`` characters walked together from pointer ``p``
    (``wrap`` as the seeds' iteration or epoch walk); each iteration sums the
    streams' gradients, clips (element-wise, then the global norm), takes the
    learning rate of update ``n`` from the schedule and updates ``flat``, ``m1``,
    ``m2``; ``state`` carries each stream's state; ``loss_out[k]`` and
    ``smooth_out[k]`` record the mean loss over streams and the smoothed loss.

    Parameters
    ----------
    ws : Workspace
    data : ndarray of uint8, uint16 or uint32, shape (N,)
    flat, m1, m2 : ndarray, shape (P,)
        Parameters and optimizer state, updated.
    state : ndarray, shape (S, L, B, H)
        Carried state, updated.
    loss_out, smooth_out : ndarray of float64, shape (n_iter,)
    p, n, smooth_loss
        Data pointer, updates done so far (the schedule's and Adam's step count), and
        the smoothed loss.
    optimizer, learning_rate, clip, beta1, beta2, decay_rate, eps
        As the seeds' model (``decay_rate`` is RMSProp's, ``beta2`` Adam's).
    lr_schedule, warmup_iters, decay_iters, min_lr, lr_decay, decay_every
        The learning-rate schedule (``cells_spec.md``; the model fills in defaults).
    clip_norm : float, optional
        Global-norm clip after the element-wise ``clip``.
    wrap : {"iterations", "epochs"}
    reset_each_epoch : bool
    dropout : float in [0, 1)
    dropout_rng : numpy.random.RandomState, optional
        Stream of the masks (needed when ``dropout > 0`` and ``keep`` is None): for
        each iteration ``random_sample((L, T, B, H)) >= dropout``. Masks are drawn a
        few MB at a time; the stream consumed depends only on the iterations done.
    keep : array, shape (n_iter, L, T, B, H), optional
        Instead of ``dropout_rng``: the masks of every iteration.

    Returns
    -------
    (iterations_done, p, n, smooth_loss, epochs_wrapped, status)
        ``status`` 0: all done; 1: a non-finite loss stopped it before that update;
        2: an update made a parameter non-finite.
    """
    code, L, H, V, T, B, G = ws.sizes
    n_iter = loss_out.shape[0]
    assert flat.dtype == m1.dtype == m2.dtype == ws.dtype
    assert flat.shape == m1.shape == m2.shape == (ws.P,)
    assert smooth_out.shape == (n_iter,) and data.size >= B * (T + 1)
    ws.check_state(state, B)
    per_iter = L * T * B * H
    if dropout > 0 and keep is None:
        assert dropout_rng is not None, "dropout needs dropout_rng or keep"
        chunk = max(1, MASK_BYTES // per_iter)
        masks = np.empty(min(chunk, n_iter) * per_iter, np.bool_)
    else:
        chunk = max(n_iter, 1)
        keep = None if dropout == 0 else _flat_keep(keep, (n_iter, L, T, B, H))
    options = (code, L, H, V, T, B, G)
    rates = (check.OPTIMIZERS[optimizer], learning_rate, LR_SCHEDULES[lr_schedule],
             warmup_iters, decay_iters, min_lr, lr_decay, decay_every,
             -1.0 if clip is None else clip, -1.0 if clip_norm is None else clip_norm,
             beta1, decay_rate if optimizer == "rmsprop" else beta2, eps, dropout)
    done = wrapped = status = 0
    state_flat = state.reshape(-1)
    while done < n_iter and status == 0:
        k = min(chunk, n_iter - done)
        if dropout == 0:
            flags = np.empty(0, np.uint8)
        elif keep is not None:
            flags = keep[done * per_iter:(done + k) * per_iter]
        else:
            assert dropout_rng is not None
            saved = dropout_rng.get_state()
            flags = draw_masks(dropout_rng, dropout, masks[:k * per_iter]).view(np.uint8)
        got, p, n, smooth_loss, w, status = _kernels.stack_train(
            data, flat, m1, m2, state_flat, ws.grads, ws.scratch, ws.WT, ws.window,
            ws.group_loss, flags, loss_out[done:done + k], smooth_out[done:done + k],
            *options, p, n, smooth_loss, WRAPS[wrap], bool(reset_each_epoch), *rates,
            ws.num_threads)
        if got < k and dropout > 0 and keep is None and dropout_rng is not None:
            # stopped early: consume only the masks of the iterations done
            dropout_rng.set_state(saved)
            _skip_uniforms(dropout_rng, got * per_iter)
        done += got
        wrapped += w
    return done, p, n, smooth_loss, wrapped, status


# ---------------------------------------------------------------------------
# Inference: one stream, no dropout
# ---------------------------------------------------------------------------

def _vocab_size(cell, flat, state):
    """V from the number of parameters, given the cell and the state's (S, L, H)."""
    gates, S = CELLS[cell][1:]
    L, H = state.shape[1], state.shape[-1]
    assert state.size == S * L * H, state.shape
    GH = gates * H
    rest = flat.size - GH * (H + 2) - (L - 1) * GH * (2 * H + 2)
    V, left = divmod(rest, GH + H + 1)
    assert left == 0 and V >= 1, "flat does not fit this cell and state"
    return L, H, V


def _one_stream(cell, flat, state, T):
    L, H, V = _vocab_size(cell, flat, state)
    assert state.dtype == flat.dtype and state.flags.c_contiguous
    return Workspace(cell, L, H, V, T, 1, flat.dtype), state.reshape(-1)


def advance(ws: Optional[Workspace], flat: np.ndarray, state: np.ndarray,
            inputs: np.ndarray, *, cell: Optional[str] = None) -> None:
    """Feed ``inputs`` through the layers (no decoder), warming ``state`` on a prime.

    Parameters
    ----------
    ws : Workspace or None
        A batch-1 workspace of this model (its T is the chunk length), or None to
        make one (then ``cell`` is needed).
    flat : ndarray, shape (P,)
    state : ndarray, shape (S, L, H) or (S, L, 1, H)
        Updated in place to the state after the last input.
    inputs : array of int, shape (N,)
    cell : str, optional
        The cell, when ``ws`` is None.
    """
    if ws is None:
        ws, state_flat = _one_stream(cell, flat, state, _RUN_CHUNK)
    else:
        ws.check_state(state, 1)
        state_flat = state.reshape(-1)
    inputs = np.ascontiguousarray(inputs, np.int32)
    if inputs.size:
        _kernels.stack_run(inputs, np.empty(0, np.int32), np.empty(0), flat, state_flat,
                           ws.scratch, ws.WT, ws.code, ws.L, ws.H, ws.V, ws.T)


def logprobs(flat: np.ndarray, state: np.ndarray, indices: np.ndarray, *, cell: str
             ) -> np.ndarray:
    """Natural-log probability of each ``indices[t+1]`` given ``indices[:t+1]``.

    Parameters
    ----------
    flat : ndarray, shape (P,)
    state : ndarray, shape (S, L, H) or (S, L, 1, H)
        State before ``indices[0]``; updated in place to the state after
        ``indices[-2]`` (the last input).
    indices : array of int, shape (N,), N >= 1
    cell : {"rnn", "lstm", "gru"}

    Returns
    -------
    ndarray of float64, shape (N - 1,)
    """
    indices = np.ascontiguousarray(indices, np.int32)
    out = np.empty(max(indices.size - 1, 0))
    if out.size:
        ws, state_flat = _one_stream(cell, flat, state, min(_RUN_CHUNK, out.size))
        _kernels.stack_run(indices[:-1], indices[1:], out, flat, state_flat, ws.scratch,
                           ws.WT, ws.code, ws.L, ws.H, ws.V, ws.T)
    return out


def sample(flat: np.ndarray, state: np.ndarray, seed_ix: Optional[int],
           uniforms: np.ndarray, out: np.ndarray, temperature: float = 1.0,
           greedy: bool = False, top_k: int = 0, top_p: float = 1.0, *,
           cell: str) -> np.ndarray:
    """Sample ``len(out)`` indices, one uniform per character (the seeds' draw).

    Each character is ``searchsorted(cumsum(p) / cumsum(p)[-1], u, 'right')`` of the
    softmax of the logits divided by ``temperature`` (only the ``top_k`` largest
    when ``0 < top_k < V``; then only the nucleus of mass ``top_p`` when
    ``top_p < 1``); ``greedy`` takes the argmax and uses no uniform.

    Parameters
    ----------
    flat : ndarray, shape (P,)
    state : ndarray, shape (S, L, H) or (S, L, 1, H)
        Updated in place to the state after the last character fed.
    seed_ix : int or None
        The first input; None: an all-zero input vector.
    uniforms : ndarray of float64, shape (n,)
    out : ndarray of int64, shape (n,)
        Filled with the sampled indices; returned.
    cell : {"rnn", "lstm", "gru"}
    """
    ws, state_flat = _one_stream(cell, flat, state, 1)
    assert out.dtype == np.int64 and uniforms.shape == out.shape
    _kernels.stack_sample(flat, state_flat, -1 if seed_ix is None else int(seed_ix),
                          np.ascontiguousarray(uniforms, np.float64), out,
                          np.empty(2 * ws.V, ws.dtype), ws.scratch, ws.WT, ws.code, ws.L, ws.H,
                          ws.V, float(temperature), bool(greedy), int(top_k), float(top_p))
    return out
