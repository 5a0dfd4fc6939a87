"""The networks a :class:`~charrnn.CharRNN` can be, side by side.

A ``CharRNN`` holds one of these and never branches on the cell itself:

- :class:`SeedsNet`: the seeds' one-layer vanilla RNN (``Wxh, Whh, Why, bh, by``), the
  model of ``cell="rnn", num_layers=1, dropout=0``, trained by the seeds' kernels
  (``csrc/kernels.pxi``) and bit-exact with min-char-rnn;
- :class:`StackNet`: ``num_layers`` layers of PyTorch's ``nn.RNN`` (tanh), ``nn.LSTM``
  or ``nn.GRU`` cells under a linear decoder, with dropout between layers and before
  the decoder (``csrc/stack.pxi`` and ``csrc/cell_*.pxi``, driven by ``_stack``).

Both offer the same narrow interface: the parameter ``layout``, the carried ``state``,
``init``, a training ``Workspace`` and ``train`` (one contract: that of the seeds'
``train_loop``), and ``advance``, ``logprobs`` and ``sample`` on a single stream.
Names in :meth:`state_dict` are PyTorch's, so a model moves to ``torch.nn`` and back.
A new cell family is one more class here and one entry in :func:`make`.
"""
from __future__ import annotations

import math
from typing import Dict, List, Tuple

import numpy as np

from . import _stack
from . import _validate as check
from ._dispatch import kernels as _kernels
from .core import _check_logits, check_top_p, init_params

__all__ = ["CELLS", "SeedsNet", "StackNet", "make"]

#: The cells a model can have (``cell=``).
CELLS = tuple(_stack.CELLS)

Layout = List[Tuple[str, Tuple[int, ...], int]]

#: Batch-1 training of the seeds' model runs its recurrence on two threads (rows of
#: ``Whh`` split between them, csrc/split.h) when ``num_threads >= 2`` and ``Whh`` has
#: at least this many bytes. Private: tests lower it to split small models. Measured on
#: a 2-core AMD EPYC (Zen 5, 1 MiB L2 per core), float64, benchmarks/split.py --force:
#: 0.93-0.98x from H=128 to 320 (under 1 MiB), then 1.49x at H=384, 1.04x at H=512,
#: 1.15x at H=768 and 1.35x at H=1024, so 1 MiB (H >= 363).
_SPLIT_MIN_BYTES = 1024 * 1024
#: split.h's test_mode (tests only): 1 the helper never comes, 2 it is always late,
#: 3 the halves go to either thread at random and there is no fallback, 4 the helper
#: computes every second half.
_SPLIT_TEST = 0


def _split_rows(H: int, B: int, itemsize: int, num_threads: int) -> int:
    """The first row of the helper thread's half (a multiple of 8), or 0: one thread."""
    if B != 1 or num_threads < 2 or H * H * itemsize < _SPLIT_MIN_BYTES:
        return 0
    return H // 16 * 8


def _views(flat: np.ndarray, layout: Layout) -> Tuple[np.ndarray, ...]:
    return tuple(flat[o:o + math.prod(s)].reshape(s) for _, s, o in layout)


class SeedsNet:
    """The seeds' vanilla RNN: ``h = act(Wxh x + Whh h + bh)``, ``y = Why h + by``.

    Parameters
    ----------
    H, V : int
    activation : {"tanh", "sigmoid"}
    """

    cell = "rnn"
    num_layers = 1
    state_slots = 1

    def __init__(self, H: int, V: int, activation: str = "tanh"):
        self.H, self.V = H, V
        self.activation = activation
        self.act = check.ACTIVATIONS[activation]
        shapes = (("Wxh", (H, V)), ("Whh", (H, H)), ("Why", (V, H)), ("bh", (H, 1)),
                  ("by", (V, 1)))
        self.layout: Layout = []
        offset = 0
        for name, shape in shapes:
            self.layout.append((name, shape, offset))
            offset += shape[0] * shape[1]
        self.P = offset

    def state_shape(self, B: int) -> Tuple[int, ...]:
        """The carried state of B streams: ``hprev``, one row per stream."""
        return (B, self.H)

    def stream_state(self, state: np.ndarray, b: int = 0) -> np.ndarray:
        """A copy of stream ``b``'s state, as the single-stream functions take it."""
        return state[b].copy()

    def zero_stream_state(self, dtype) -> np.ndarray:
        return np.zeros(self.H, dtype)

    def init(self, rng: np.random.RandomState) -> np.ndarray:
        """The seeds' weights (``init_params``), end to end, float64."""
        return np.concatenate([a.ravel() for a in init_params(self.H, self.V, rng)])

    def params(self, flat: np.ndarray) -> Tuple[np.ndarray, ...]:
        return _views(flat, self.layout)

    def state_dict(self, flat: np.ndarray) -> Dict[str, np.ndarray]:
        """PyTorch's ``nn.RNN`` + ``nn.Linear`` names: ``bh`` is ``bias_ih_l0``."""
        Wxh, Whh, Why, bh, by = self.params(flat)
        return {"weight_ih_l0": Wxh.copy(), "weight_hh_l0": Whh.copy(),
                "bias_ih_l0": bh.ravel().copy(), "bias_hh_l0": np.zeros(self.H, flat.dtype),
                "decoder.weight": Why.copy(), "decoder.bias": by.ravel().copy()}

    def from_state_dict(self, arrays: Dict[str, np.ndarray]) -> np.ndarray:
        """The flat buffer of checked ``arrays`` (``bias_hh_l0`` is folded into ``bh``)."""
        bh = arrays["bias_ih_l0"] + arrays["bias_hh_l0"]
        return np.concatenate([arrays["weight_ih_l0"].ravel(), arrays["weight_hh_l0"].ravel(),
                               arrays["decoder.weight"].ravel(), bh, arrays["decoder.bias"]])

    def torch_shapes(self) -> Layout:
        return _stack.layout("rnn", 1, self.H, self.V)[0]

    # -- training -------------------------------------------------------------------

    def workspace(self, T: int, B: int, dtype, num_threads: int):
        return _SeedsWorkspace(self.H, self.V, self.P, T, B, dtype, num_threads)

    def train(self, ws, data, flat, m1, m2, state, loss_out, smooth_out, *, p, n,
              smooth_loss, optimizer, learning_rate, lr_schedule, warmup_iters, decay_iters,
              min_lr, lr_decay, decay_every, clip, clip_norm, beta1, beta2, decay_rate, eps,
              wrap, reset_each_epoch, bptt="full", dropout=0.0, dropout_rng=None):
        """``len(loss_out)`` iterations of the seeds' loop; ``_stack.train``'s contract."""
        assert dropout == 0
        return _kernels.train_loop(
            data, flat, m1, m2, state, ws.grads, ws.hs, ws.ps, ws.dh, ws.dhnext, ws.WhhT,
            ws.WhyT, ws.window, ws.group_loss, loss_out, smooth_out, self.H, self.V, ws.T,
            ws.G, p, n, smooth_loss, self.act, check.OPTIMIZERS[optimizer],
            check.BPTT[bptt], _stack.WRAPS[wrap], reset_each_epoch, learning_rate,
            check.clip_value(clip), beta1, decay_rate if optimizer == "rmsprop" else beta2,
            eps, ws.threads, lr_schedule=_stack.LR_SCHEDULES[lr_schedule],
            warmup_iters=warmup_iters, decay_iters=decay_iters or 0, min_lr=min_lr or 0.0,
            lr_decay=lr_decay, decay_every=decay_every,
            clip_norm=-1.0 if clip_norm is None else clip_norm,
            split_rows=ws.split_rows, split_test=_SPLIT_TEST, split_stats=ws.split_stats)

    # -- one stream ------------------------------------------------------------------

    def advance(self, flat, h, inputs):
        """Feed ``inputs`` through the recurrence, updating ``h`` (H,) in place."""
        if inputs.size:
            Wxh, Whh, _, bh, _ = self.params(flat)
            _kernels.advance_hidden(h, inputs, Wxh, Whh, bh.reshape(-1), np.empty_like(h),
                                    np.empty((self.H, self.H), flat.dtype), self.act)

    def logprobs(self, flat, h, indices) -> np.ndarray:
        """log p(indices[t+1] | indices[:t+1]) from ``h`` (updated), float64 (N-1,)."""
        H, V, dt = self.H, self.V, flat.dtype
        out = np.empty(max(indices.size - 1, 0))
        if out.size:
            Wxh, Whh, Why, bh, by = self.params(flat)
            _kernels.evaluate(np.asarray(indices, np.uint32), h, Wxh, Whh, Why, bh.reshape(-1), by.reshape(-1),
                              np.empty_like(h), np.empty(V, dt), np.empty((H, H), dt),
                              np.empty((H, V), dt), self.act, out)
        return out

    def decoder(self, flat) -> Tuple[np.ndarray, np.ndarray]:
        _, _, Why, _, by = self.params(flat)
        return Why, by.reshape(-1)

    def sample(self, flat, h, seed_ix, uniforms, out, temperature, greedy, top_k,
               top_p=1.0):
        """Fill ``out`` with sampled indices (one uniform each), updating ``h``."""
        H, V, dt = self.H, self.V, flat.dtype
        Wxh, Whh, Why, bh, by = self.params(flat)
        _kernels.sample(h, -1 if seed_ix is None else seed_ix, uniforms, Wxh, Whh, Why,
                        bh.reshape(H), by.reshape(V), np.empty(H, dt), np.empty(V, dt),
                        np.empty((H, H), dt), np.empty((H, V), dt), np.empty(V, dt), out,
                        self.act, temperature, greedy, top_k, top_p)


class _SeedsWorkspace:
    """Scratch of the seeds' training loop, allocated once per ``fit``."""

    def __init__(self, H, V, P, T, B, dtype, num_threads):
        G = min(B, _stack.STREAMS_PER_GROUP)  # fixed by B alone: results don't depend
        NG = -(-B // G)                       # on the number of threads
        self.T, self.G = T, G
        self.grads = np.empty((NG, P), dtype)
        self.hs, self.ps = np.empty((NG, (T + 1) * G * H), dtype), np.empty((NG, T * G * V), dtype)
        self.dh, self.dhnext = np.empty((NG, T * G * H), dtype), np.empty((NG, G * H), dtype)
        self.WhhT, self.WhyT = np.empty((H, H), dtype), np.empty((H, V), dtype)
        self.window, self.group_loss = np.empty((NG, 2 * T * G), np.int32), np.empty(NG)
        self.threads = min(num_threads, NG)
        self.split_rows = _split_rows(H, B, np.dtype(dtype).itemsize, num_threads)
        self.split_stats = np.zeros(7, np.int64)   # see train_loop


class StackNet:
    """``num_layers`` layers of PyTorch's RNN, LSTM or GRU cells and a linear decoder.

    Parameters
    ----------
    cell : {"rnn", "lstm", "gru"}
    num_layers, H, V : int
    """

    def __init__(self, cell: str, num_layers: int, H: int, V: int):
        self.cell, self.num_layers, self.H, self.V = cell, num_layers, H, V
        self.state_slots = _stack.CELLS[cell][2]
        self.layout, self.P = _stack.layout(cell, num_layers, H, V)

    def state_shape(self, B: int) -> Tuple[int, ...]:
        """``(S, L, B, H)``: ``h_n`` (then ``c_n`` for lstm) in PyTorch's layout."""
        return (self.state_slots, self.num_layers, B, self.H)

    def stream_state(self, state: np.ndarray, b: int = 0) -> np.ndarray:
        """A copy of stream ``b``'s state (S, L, H): a view of one stream would be
        contiguous, and using it would move the carried state."""
        return state[:, :, b, :].copy()

    def zero_stream_state(self, dtype) -> np.ndarray:
        return np.zeros((self.state_slots, self.num_layers, self.H), dtype)

    def init(self, rng: np.random.RandomState) -> np.ndarray:
        """PyTorch's default: every array ``uniform(-1/sqrt(H), 1/sqrt(H))``, in order."""
        s = 1.0 / math.sqrt(self.H)
        return np.concatenate([rng.uniform(-s, s, size=shape).ravel()
                               for _, shape, _ in self.layout])

    def params(self, flat: np.ndarray) -> Tuple[np.ndarray, ...]:
        return _views(flat, self.layout)

    def state_dict(self, flat: np.ndarray) -> Dict[str, np.ndarray]:
        return {name: a.copy() for (name, _, _), a in zip(self.layout, self.params(flat))}

    def from_state_dict(self, arrays: Dict[str, np.ndarray]) -> np.ndarray:
        return np.concatenate([arrays[name].ravel() for name, _, _ in self.layout])

    def torch_shapes(self) -> Layout:
        return self.layout

    # -- training -------------------------------------------------------------------

    def workspace(self, T: int, B: int, dtype, num_threads: int):
        return _stack.Workspace(self.cell, self.num_layers, self.H, self.V, T, B, dtype,
                                num_threads)

    def train(self, ws, data, flat, m1, m2, state, loss_out, smooth_out, *, bptt="full",
              **options):
        assert bptt == "full"
        options["decay_iters"] = options["decay_iters"] or 0
        options["min_lr"] = options["min_lr"] or 0.0
        return _stack.train(ws, data, flat, m1, m2, state, loss_out, smooth_out, **options)

    # -- one stream ------------------------------------------------------------------

    def advance(self, flat, state, inputs):
        _stack.advance(None, flat, state, inputs, cell=self.cell)

    def logprobs(self, flat, state, indices) -> np.ndarray:
        return _stack.logprobs(flat, state, indices, cell=self.cell)

    def decoder(self, flat) -> Tuple[np.ndarray, np.ndarray]:
        *_, W, b = self.params(flat)
        return W, b

    def sample(self, flat, state, seed_ix, uniforms, out, temperature, greedy, top_k,
               top_p=1.0):
        _stack.sample(flat, state, seed_ix, uniforms, out, temperature, greedy, top_k,
                      top_p, cell=self.cell)


def make(cell: str, num_layers: int, H: int, V: int, *, dropout: float = 0.0,
         activation: str = "tanh", bptt: str = "full"):
    """The network of a model: the seeds' for ``rnn``, one layer, no dropout."""
    if cell == "rnn" and num_layers == 1 and dropout == 0:
        return SeedsNet(H, V, activation)
    if activation != "tanh":
        raise ValueError(f"activation={activation!r} is the seeds' one-layer vanilla RNN's "
                         f"option; {cell} cells with {num_layers} layers and dropout "
                         f"{dropout} use PyTorch's equations (tanh)")
    if bptt != "full":
        raise ValueError(f"bptt={bptt!r} (Elman's network) is the seeds' one-layer vanilla "
                         f"RNN's option; stacked cells back-propagate through time")
    return StackNet(cell, num_layers, H, V)


def check_sampling(flat, net, temperature, greedy, top_k,
                   top_p=None) -> Tuple[float, int, float]:
    """Checked ``temperature``, ``top_k`` (0: all) and ``top_p`` (1: all) for sampling
    ``net``'s weights."""
    temperature = check.real(temperature, "temperature", positive=True)
    k = 0 if top_k is None else min(check.integer(top_k, "top_k", minimum=1), net.V)
    top_p = check_top_p(top_p)
    if not greedy:
        W, b = net.decoder(flat)
        _check_logits(W, b.reshape(-1, 1), temperature)
    return temperature, k, top_p
