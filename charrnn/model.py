"""``CharRNN`` and ``train``: the seeds' training loop, run by one compiled kernel call.

The network itself (the seeds' vanilla RNN, or stacked RNN/LSTM/GRU layers) is one of
:mod:`charrnn.nets`; this module holds what every model has: the vocabulary, the
buffers, the options, the walk of the text, the history, the threads' rules.
"""
from __future__ import annotations

import contextlib
import logging
import math
import os
import threading
import types
from typing import (IO, Any, Callable, Dict, Iterable, Iterator, List, Mapping, Optional,
                    Sequence, Tuple, Union)

import numpy as np

from ._dispatch import available_cores as _available_cores

from . import _validate as check
from . import checkpoint as _checkpoint
from . import data as _data
from . import nets as _nets
from .core import RNG
from .schedule import SCHEDULES, Schedule

__all__ = ["CharRNN", "History", "train", "fine_tune", "load", "load_with_meta"]

#: Training progress (``DEBUG`` records at ``fit``'s report points); silent unless an
#: application configures logging.
_log = logging.getLogger("charrnn")
_log.addHandler(logging.NullHandler())

#: Characters each ``evaluate`` kernel call scores (its log-probabilities are summed
#: chunk by chunk, so memory does not grow with the text).
_EVAL_CHUNK = 1 << 16


#: The states a text can be scored or sampled from (``start=``): the state training
#: carried (the first stream's), or zeros.
STARTS = ("carried", "zero")

#: Rows ``History.to_csv`` formats at a time (its memory does not grow with the history).
_CSV_ROWS = 1 << 14

#: ``fit`` refuses to run past this many iterations: the kernels count them in an int64
#: (and Adam raises its betas to that power), which must never wrap.
MAX_ITERATIONS = 2**62

#: What a model is, as opposed to how it trains: fine-tuning (:meth:`CharRNN.init_from`)
#: takes them from the model it starts from.
SHAPE_OPTIONS = ("hidden_size", "cell", "num_layers", "dropout", "activation", "dtype")

#: What the read-only attributes' errors suggest instead.
_REBUILD = "; build a new CharRNN"
_TRAINING = "it records where training stands, and only fit (or charrnn.load) moves it"


def _read_only(name, doc, instead):
    """A property of ``self._<name>`` whose assignment raises AttributeError: ``instead``."""
    private = "_" + name

    def get(self):
        return getattr(self, private)

    def refuse(self, value):
        raise AttributeError(f"{name} cannot be set: {instead}")

    return property(get, refuse, doc=doc)


def _option(name, doc, convert):
    """A property of ``self._<name>`` whose setter stores ``convert(value)`` (which checks it)."""
    private = "_" + name

    def get(self):
        return getattr(self, private)

    def put(self, value):
        setattr(self, private, convert(value))

    return property(get, put, doc=doc)


def _name(value, name, options):
    check.choice(value, name, options)
    return value


def _below_one(value, name):
    value = check.real(value, name, nonnegative=True)
    if value >= 1:
        raise ValueError(f"{name} must be < 1, got {value}")
    return value


def _counter(value, name):
    value = check.integer(value, name, minimum=0)
    if value > MAX_ITERATIONS:
        raise ValueError(f"{name} = {value} is out of range [0, 2**62]")
    return value


class _Vocabulary(list):
    """``CharRNN.chars``: a list that refuses changes (copies and slices are plain lists)."""

    __slots__ = ()

    def _refuse(self, *args, **kwargs):
        raise TypeError("a CharRNN's chars cannot change: its weights have a row per "
                        "character; build a new CharRNN with the new chars")

    append = extend = insert = remove = pop = clear = sort = reverse = _refuse
    __setitem__ = __delitem__ = __iadd__ = __imul__ = _refuse

    def __reduce__(self):
        return list, (list(self),)


class History:
    """Per-iteration record of a training run, as numpy arrays.

    Attributes
    ----------
    iteration : ndarray of int64
        Iteration number of each entry (0-based, counted over every ``fit``).
    loss : ndarray of float64
        Loss of the sequence of that iteration (summed over its characters, nats).
    smooth_loss : ndarray of float64
        The seeds' ``smooth_loss = smooth_loss * 0.999 + loss * 0.001`` after it.
    val_iteration : ndarray of int64
        Iterations (number done) at which a validation loss was recorded.
    val_loss : ndarray of float64
        Validation loss at those iterations, in bits per character (see
        :meth:`add_val_loss`).
    """

    def __init__(self):
        self._loss = np.empty(0)
        self._smooth = np.empty(0)
        self._size = 0
        self._val_iteration = []
        self._val_loss = []

    def __len__(self):
        return self._size

    @property
    def loss(self) -> np.ndarray:
        return self._loss[: self._size]

    @property
    def smooth_loss(self) -> np.ndarray:
        return self._smooth[: self._size]

    @property
    def iteration(self) -> np.ndarray:
        return np.arange(self._size, dtype=np.int64)

    @property
    def val_iteration(self) -> np.ndarray:
        return np.array(self._val_iteration, dtype=np.int64)

    @property
    def val_loss(self) -> np.ndarray:
        return np.array(self._val_loss, dtype=np.float64)

    def add_val_loss(self, iteration: int, bits_per_char: float) -> None:
        """Record a validation loss (bits per character) measured after ``iteration``."""
        self._val_iteration.append(check.integer(iteration, "iteration", minimum=0))
        self._val_loss.append(check.real(bits_per_char, "bits_per_char", nonnegative=True))

    def to_csv(self, file: Union[str, os.PathLike[str], IO[str]]) -> None:
        """Write the history as CSV, with a header ``iteration,loss,smooth_loss,val_loss``.

        One row per training iteration: ``iteration`` counts the iterations done (1 for
        the first, as :attr:`val_iteration` counts them), ``loss`` and ``smooth_loss``
        are in nats per sequence (as the seeds print them), and ``val_loss``, in bits
        per character, is on the row of the iteration after which it was measured and
        empty on the others. A validation loss with no iteration of its own (measured
        before any training, or a second one after the same iteration) gets a row
        with empty ``loss`` and ``smooth_loss``. Numbers are written so that they read
        back exactly (Python's ``repr``).

        Parameters
        ----------
        file : str, os.PathLike or text file
            A path (the file is created, or replaced) or a file open for writing text
            (written to, not closed).
        """
        if isinstance(file, (str, os.PathLike)):
            with open(file, "w", encoding="ascii", newline="") as f:
                self._write_csv(f)
        elif callable(getattr(file, "write", None)):
            self._write_csv(file)
        else:
            raise ValueError(f"file must be a path or a text file open for writing, got "
                             f"{type(file).__name__}")

    def _write_csv(self, f):
        order = np.argsort(self.val_iteration, kind="stable")
        val = list(zip(self.val_iteration[order].tolist(), self.val_loss[order].tolist()))
        f.write("iteration,loss,smooth_loss,val_loss\n")
        j = 0
        for a in range(0, self._size, _CSV_ROWS):
            rows = []
            b = min(a + _CSV_ROWS, self._size)
            for it, loss, smooth in zip(range(a + 1, b + 1), self._loss[a:b].tolist(),
                                        self._smooth[a:b].tolist()):
                while j < len(val) and val[j][0] < it:
                    rows.append(f"{val[j][0]},,,{val[j][1]!r}\n")
                    j += 1
                v = ""
                if j < len(val) and val[j][0] == it:
                    v = repr(val[j][1])
                    j += 1
                rows.append(f"{it},{loss!r},{smooth!r},{v}\n")
            f.write("".join(rows))
        f.write("".join(f"{it},,,{v!r}\n" for it, v in val[j:]))

    def _reserve(self, extra):
        """Views of the next ``extra`` slots, growing the buffers geometrically."""
        need = self._size + extra
        if need > self._loss.size:
            cap = max(need, 2 * self._loss.size, 1024)
            for name in ("_loss", "_smooth"):
                grown = np.empty(cap)
                grown[: self._size] = getattr(self, name)[: self._size]
                setattr(self, name, grown)
        return self._loss[self._size:need], self._smooth[self._size:need]

    def __repr__(self):
        return f"History({self._size} iterations)"


class CharRNN:
    """A character-level recurrent network and the state of its training.

    Most users get one from :func:`charrnn.train`. The constructor builds an
    untrained model over a vocabulary; :meth:`fit` trains it. With the defaults
    (``cell="rnn", num_layers=1, dropout=0``) it is the seeds' vanilla RNN, exactly;
    ``cell="lstm"`` or ``"gru"``, more layers or dropout give PyTorch's stacked
    ``nn.RNN``/``nn.LSTM``/``nn.GRU`` with a linear decoder (see :meth:`state_dict`).

    Parameters
    ----------
    chars : sequence of str
        The vocabulary, one character each (``train`` uses ``sorted(set(text))``).
    hidden_size : int
        H, the number of hidden units.
    seq_length : int
        T, the number of steps to unroll the RNN for.
    learning_rate : float
    seed : int
        Seed of the ``numpy.random.RandomState`` that draws the weights (as
        ``init_params``) and then, continuing its stream, the samples. Dropout masks
        come from a stream of their own, ``RandomState([seed, 1])``.
    cell : {"rnn", "lstm", "gru"}
        PyTorch's equations: ``nn.RNN`` (tanh), ``nn.LSTM`` (gates i, f, g, o),
        ``nn.GRU`` (gates r, z, n). ``"rnn"`` with one layer and no dropout is the
        seeds' model (``Wxh, Whh, Why, bh, by``, one bias); otherwise every layer has
        PyTorch's two biases and weights drawn as PyTorch draws them
        (``uniform(-1/sqrt(H), 1/sqrt(H))``).
    num_layers : int
        L, stacked layers; layer 0 reads the character (a column of its input
        weights), each higher layer the one below.
    dropout : float in [0, 1)
        Probability of zeroing an output of a layer on its way to the next layer and
        to the decoder, in training only (char-rnn, Zaremba et al. 2014); never on the
        recurrent connections. Kept values are scaled by ``1 / (1 - dropout)``.
    activation : {"tanh", "sigmoid"}
        The seeds' model only (stacked cells use PyTorch's nonlinearities).
    optimizer : {"adagrad", "sgd", "rmsprop", "adam"}
        Adagrad is the seeds' (``mem += d*d; p -= lr * d / sqrt(mem + 1e-8)``);
        RMSProp uses ``decay_rate`` and ``eps``; Adam ``beta1``, ``beta2``, ``eps``.
    clip : float or None
        Gradients are clipped to ``[-clip, clip]`` before each update; None: never.
    clip_norm : float or None
        Then the gradient is scaled down to this global norm if it is longer
        (``torch.nn.utils.clip_grad_norm_``); None: never.
    lr_schedule : {"constant", "cosine", "step"}
        The learning rate of each update, with ``warmup_iters``, ``decay_iters``,
        ``min_lr`` (cosine, as nanoGPT), ``lr_decay`` and ``decay_every`` (step, as
        char-rnn's ``learning_rate_decay``); see :mod:`charrnn.schedule`. It depends
        only on the iteration number, so it is exact across ``fit`` calls and resumes.
    bptt : {"full", "none"}
        ``"none"`` is Elman's simple recurrent network (no gradient through time); the
        seeds' model only.
    reset_each_epoch : bool
        With the epoch schedule, whether the hidden state is zeroed at the start of
        each epoch (seed 004) or carried over (seed 002).
    reset_every : int
        N > 0: the carried state of every stream is zeroed before each iteration whose
        number is a multiple of N, so that training regularly starts from a zero state
        (then :meth:`evaluate`, :meth:`score` and a primed :meth:`sample` start from zero
        by default, see ``start`` there). 0 (default): never, the seeds' loop, which
        zeroes the state only when the pointer wraps to the start of the text. It
        depends only on the iteration number, so it is exact across ``fit`` calls and
        resumes.
    dtype : {"float64", "float32"}
        float32 models train about twice as fast; the reference is float64.
    batch_size : int
        B, the number of minibatch streams (char-rnn and torch-rnn's batches): the text
        is split into B contiguous streams, each with its own hidden state; an iteration
        advances every stream by ``seq_length`` and makes one update with the gradient
        *summed* over streams (so ``batch_size=1`` is exactly the seeds' step). The
        loss recorded in ``history`` is the mean over streams.
    num_threads : int, optional
        Threads that share the streams of a minibatch (default: the cores this process
        may use). Results do not depend on it: the streams' gradients are summed in a
        fixed order. With ``batch_size=1``, the seeds' model (``cell="rnn"``, one layer)
        and ``Whh`` of 1 MiB or more (H >= 363 in float64, 512 in float32), two threads
        share the rows of each recurrence step, with the same bits as one; when the
        second core is busy elsewhere it falls back to one thread for the rest of the
        ``fit`` call. Otherwise batch 1 runs on one thread.

    Attributes
    ----------
    params : tuple of ndarray
        The seeds' model: ``(Wxh, Whh, Why, bh, by)``, shapes ``(H, V) (H, H) (V, H)
        (H, 1) (V, 1)``. Stacked cells: the arrays of :meth:`state_dict`, in its order.
        They are views of one buffer that training updates in place.
    chars : list of str
        The vocabulary (a list that refuses changes).
    char_to_ix : mapping
        ``{char: index}``, read-only.
    vocab_size, hidden_size, batch_size : int
    dtype : numpy.dtype
    smooth_loss : float
    history : History
    hprev : ndarray
        State carried to the next iteration: the seeds' model (H, 1), or (B, H) with
        several streams; stacked cells (S, L, B, H), PyTorch's ``h_n`` (then ``c_n``
        for lstm: S = 2).
    cell, num_layers, dropout
        As given (read-only).
    iteration : int
        Number of training iterations done (at most ``MAX_ITERATIONS``).
    pointer : int
        Position of the next chunk in the training text (in each stream).
    epoch : int
        Times the pointer wrapped to the start of the text.
    schedule : {None, "iterations", "epochs"}
        How the text is walked, fixed by the first ``fit``.
    rng : numpy.random.RandomState
        The stream that :meth:`sample` and :meth:`generate` draw from by default.
    default_start : {"carried", "zero"}
        The state that :meth:`evaluate`, :meth:`score` and a primed :meth:`sample`
        start from by default: ``"zero"`` when ``reset_every`` > 0, else ``"carried"``.

    Attributes you can change
    -------------------------
    One rule: an attribute can be assigned only if every value its setter accepts
    leaves the model consistent with its buffers. The setter checks the value as the
    constructor does; the new value applies from the next ``fit`` (or sample).

    - How training goes on: ``seq_length`` (the training data must hold at least
      ``batch_size * (seq_length + 1)`` characters), ``learning_rate``, ``clip``,
      ``clip_norm``, the schedule (``lr_schedule``, ``warmup_iters``, ``decay_iters``,
      ``min_lr``, ``lr_decay``, ``decay_every``; checked together at the next
      ``fit``), ``optimizer`` (its state ``m1``, ``m2`` is kept as it is), ``bptt``,
      ``reset_each_epoch``, ``reset_every``, ``beta1``, ``beta2``, ``decay_rate``,
      ``eps``, ``num_threads``.
    - ``rng``: any ``numpy.random.RandomState``.
    - Values, in place: the arrays of ``params`` and ``hprev`` are views of the
      model's buffers; write into them (``model.params[0][...] = new_Wxh``) to edit
      the weights or reset the carried state.

    Everything else raises AttributeError (a change to ``chars`` or ``char_to_ix``,
    TypeError) saying what to do instead: what the model is (``chars``,
    ``char_to_ix``, ``vocab_size``, ``hidden_size``, ``batch_size``, ``dtype``,
    ``activation``, ``seed``, ``cell``, ``num_layers``, ``dropout``: build a new
    CharRNN) and where its training stands
    (``iteration``, ``pointer``, ``epoch``, ``schedule``, ``smooth_loss``,
    ``history``: only ``fit`` and :func:`charrnn.load` move them), and
    ``default_start``, which follows ``reset_every``. As a second line
    of defence, every call that runs a kernel (``fit``, ``sample``, ``generate``,
    ``evaluate``) first checks the model's buffers against its sizes and raises
    RuntimeError if they disagree.

    Notes
    -----
    Threads: the kernels release the GIL, so different models train (and sample) in
    parallel in different threads, with the same results as one after the other. One
    model is trained by one thread at a time: while a thread is inside ``fit``,
    another thread's ``fit``, ``sample``, ``generate``, ``evaluate``, ``save``,
    ``set_text`` or ``set_data`` on the same model raises RuntimeError (the training
    thread itself may call them from fit's callback), and ``fit`` refuses to start
    while another thread samples, saves or evaluates the model. Sampling one model
    from several threads at once is fine (with ``seed=...``; the model's own
    RandomState is shared, so concurrent draws from it interleave).
    """

    def __init__(self, chars, hidden_size=100, seq_length=25, learning_rate=0.1, *, seed=0,
                 cell="rnn", num_layers=1, dropout=0.0,
                 activation="tanh", optimizer="adagrad", clip=5.0, clip_norm=None,
                 bptt="full", reset_each_epoch=False, dtype="float64", beta1=0.9,
                 beta2=0.999, decay_rate=0.95, eps=1e-8, batch_size=1, num_threads=None,
                 lr_schedule="constant", warmup_iters=0, decay_iters=None, min_lr=None,
                 lr_decay=0.97, decay_every=1000, reset_every=0):
        chars = list(chars)
        if not chars:
            raise ValueError("chars is empty; the vocabulary needs at least one character")
        if not all(isinstance(c, str) and len(c) == 1 for c in chars):
            raise ValueError("chars must be single characters")
        if len(set(chars)) != len(chars):
            raise ValueError("chars has repeated characters")
        self._chars = _Vocabulary(chars)
        self._vocab_size = V = len(chars)
        self._char_to_ix = types.MappingProxyType({ch: i for i, ch in enumerate(chars)})
        self._hidden_size = H = check.integer(hidden_size, "hidden_size", minimum=1)
        self._data = None
        self.seq_length = seq_length
        self.learning_rate = learning_rate
        self._seed = check.integer(seed, "seed", minimum=0)
        self._activation = activation
        check.choice(activation, "activation", check.ACTIVATIONS)
        self._cell = _name(cell, "cell", dict.fromkeys(_nets.CELLS))
        self._num_layers = check.integer(num_layers, "num_layers", minimum=1)
        self._dropout = check.real(dropout, "dropout", nonnegative=True)
        if self._dropout >= 1:
            raise ValueError(f"dropout must be < 1 (the probability of dropping a unit), "
                             f"got {self._dropout}")
        self._net = _nets.make(self._cell, self._num_layers, H, V, dropout=self._dropout,
                               activation=activation, bptt=bptt)
        self.optimizer = optimizer
        self.bptt = bptt
        self.clip = clip
        self.clip_norm = clip_norm
        self.lr_schedule = lr_schedule
        self.warmup_iters = warmup_iters
        self.decay_iters = decay_iters
        self.min_lr = min_lr
        self.lr_decay = lr_decay
        self.decay_every = decay_every
        self._lr_plan()  # the schedule's options, checked together
        self.reset_each_epoch = reset_each_epoch
        self.reset_every = reset_every
        self._dtype = np.dtype(check.dtype(dtype))
        self.beta1 = beta1
        self.beta2 = beta2
        self.decay_rate = decay_rate
        self.eps = eps
        self._batch_size = B = check.integer(batch_size, "batch_size", minimum=1)
        self.num_threads = num_threads

        self.rng = np.random.RandomState(self._seed)
        self._flat = self._net.init(self._random_state).astype(self._dtype)
        self._m1 = np.zeros_like(self._flat)  # Adagrad/RMSProp memory, Adam's first moment
        self._m2 = np.zeros_like(self._flat)  # Adam's second moment
        self._state = np.zeros(self._net.state_shape(B), self._dtype)  # carried state
        self._dropout_rng = np.random.RandomState([self._seed, 1])  # the masks' stream
        self._smooth_loss = -math.log(1.0 / V) * self._seq_length  # loss at iteration 0
        self._iteration = 0
        self._pointer = 0
        self._epoch = 0
        self._history = History()
        self._schedule = None  # "iterations" or "epochs", fixed by the first fit
        # One thread trains a model at a time (fit holds _lock, never blocking); while
        # it does, other threads may not read or change the model: the kernel updates
        # the parameters in place. _guard protects _trainer and _readers.
        self._lock = threading.Lock()
        self._guard = threading.Lock()
        self._trainer = None  # ident of the thread inside fit
        self._readers = 0     # other threads sampling, saving or evaluating

    @contextlib.contextmanager
    def _using(self, what):
        """Refuse ``what`` while another thread trains this model; fit waits for us.

        The training thread itself may (from fit's callback, between compiled chunks,
        where the model is consistent).
        """
        me = threading.get_ident()
        with self._guard:
            if self._trainer == me:
                counted = False
            elif self._lock.locked():
                raise RuntimeError(
                    f"cannot {what}: another thread is training this model; wait until its "
                    f"fit returns, or do it from fit's callback")
            else:
                self._readers += 1
                counted = True
        try:
            yield
        finally:
            if counted:
                with self._guard:
                    self._readers -= 1

    # -- attributes: what the model is and where its training stands are read-only ------

    chars = _read_only("chars", "The vocabulary (a list that refuses changes).",
                       "the weights have a row per character" + _REBUILD + " with the new chars")
    char_to_ix = _read_only("char_to_ix", "``{char: index}`` (read-only).",
                            "it follows chars, which is fixed" + _REBUILD + " with the new chars")
    vocab_size = _read_only("vocab_size", "V, the number of characters.",
                            "it is len(chars), which is fixed" + _REBUILD + " with the new chars")
    hidden_size = _read_only("hidden_size", "H, the number of hidden units.",
                             "the weights have that shape" + _REBUILD + "(..., hidden_size=...)")
    batch_size = _read_only("batch_size", "B, the number of minibatch streams.",
                            "hprev has a row per stream" + _REBUILD + "(..., batch_size=...)")
    dtype = _read_only("dtype", "The number type of the weights and every buffer.",
                       "every buffer has that type" + _REBUILD + "(..., dtype=...)")
    activation = _read_only("activation", "The hidden nonlinearity.",
                            "the weights were trained for it" + _REBUILD + "(..., activation=...)")
    cell = _read_only("cell", "``'rnn'``, ``'lstm'`` or ``'gru'``.",
                      "the weights were made for it" + _REBUILD + "(..., cell=...) or "
                      "CharRNN.from_state_dict")
    num_layers = _read_only("num_layers", "L, the number of stacked layers.",
                            "the weights have that many layers" + _REBUILD
                            + "(..., num_layers=...)")
    dropout = _read_only("dropout", "Probability of dropping a layer's output in training.",
                         "dropout 0 and above 0 are different networks for the 'rnn' cell"
                         + _REBUILD + "(..., dropout=...)")
    seed = _read_only("seed", "The seed the weights were drawn with.",
                      "the weights were drawn with it" + _REBUILD + "(..., seed=...); to reseed "
                      "the samples use model.rng.seed(s) or sample(..., seed=s)")
    iteration = _read_only("iteration", "Training iterations done.", _TRAINING)
    pointer = _read_only("pointer", "Position of the next chunk in each stream of the text.",
                         _TRAINING + "; it wraps to the start of new data by itself")
    epoch = _read_only("epoch", "Times the pointer wrapped to the start of the text.", _TRAINING)
    schedule = _read_only("schedule", "``'iterations'`` or ``'epochs'``, fixed by the first "
                          "fit (None before).", _TRAINING)
    smooth_loss = _read_only("smooth_loss", "The seeds' smoothed loss.", _TRAINING)
    history = _read_only("history", "Per-iteration record of training (:class:`History`).",
                         _TRAINING)

    @property
    def params(self) -> Tuple[np.ndarray, ...]:
        """Views of the trained weights: ``(Wxh, Whh, Why, bh, by)`` for the seeds'
        model, the arrays of :meth:`state_dict` (in its order) for stacked cells."""
        return self._net.params(self._flat)

    @params.setter
    def params(self, value):
        raise AttributeError("params cannot be set: write into its arrays in place "
                             "(model.params[0][...] = new_Wxh); their shapes are fixed")

    @property
    def hprev(self) -> np.ndarray:
        """Carried state: (H, 1), or (B, H) for ``batch_size`` B > 1, for the seeds'
        model; (S, L, B, H) for stacked cells (``h_n``, then ``c_n`` for lstm)."""
        if isinstance(self._net, _nets.SeedsNet) and self._batch_size == 1:
            return self._state.reshape(-1, 1)
        return self._state

    @hprev.setter
    def hprev(self, value):
        raise AttributeError("hprev cannot be set: write into it in place "
                             "(model.hprev[...] = 0 resets the carried state)")

    # -- attributes: how training and sampling go on can be set, checked -----------------

    @property
    def seq_length(self) -> int:
        """T, the number of steps to unroll the RNN for."""
        return self._seq_length

    @seq_length.setter
    def seq_length(self, value):
        T = check.integer(value, "seq_length", minimum=1)
        if self._data is not None:
            self._check_length(self._data.size, T, "the training data")
        self._seq_length = T

    learning_rate = _option("learning_rate", "Step size of the updates.",
                            lambda v: check.real(v, "learning_rate", positive=True))
    clip = _option("clip", "Gradients are clipped to ``[-clip, clip]``; None: never.",
                   lambda v: None if v is None else check.real(v, "clip", positive=True))
    clip_norm = _option("clip_norm", "Then scaled to at most this global norm; None: never.",
                        lambda v: None if v is None
                        else check.real(v, "clip_norm", positive=True))
    lr_schedule = _option("lr_schedule", "``'constant'``, ``'cosine'`` or ``'step'``.",
                          lambda v: _name(v, "lr_schedule", SCHEDULES))
    warmup_iters = _option("warmup_iters", "Updates of linear warmup at the start.",
                           lambda v: check.integer(v, "warmup_iters", minimum=0))
    decay_iters = _option("decay_iters", "Cosine: the update at which the rate is min_lr.",
                          lambda v: None if v is None
                          else check.integer(v, "decay_iters", minimum=1))
    min_lr = _option("min_lr", "Cosine: the final rate (None: learning_rate / 10).",
                     lambda v: None if v is None
                     else check.real(v, "min_lr", nonnegative=True))
    lr_decay = _option("lr_decay", "Step: the factor applied every decay_every updates.",
                       lambda v: check.real(v, "lr_decay", positive=True))
    decay_every = _option("decay_every", "Step: updates between two decays.",
                          lambda v: check.integer(v, "decay_every", minimum=1))
    optimizer = _option("optimizer", "The update rule; its state (m1, m2) is kept on a change.",
                        lambda v: _name(v, "optimizer", check.OPTIMIZERS))
    @property
    def bptt(self) -> str:
        """``'full'``, or ``'none'`` for Elman's network (the seeds' model only)."""
        return self._bptt

    @bptt.setter
    def bptt(self, value):
        _name(value, "bptt", check.BPTT)
        if value != "full" and not isinstance(self._net, _nets.SeedsNet):
            raise ValueError(f"bptt={value!r} (Elman's network) is the seeds' one-layer "
                             f"vanilla RNN's option; stacked cells back-propagate through time")
        self._bptt = value
    reset_each_epoch = _option("reset_each_epoch", "Zero hprev at each epoch's start.", bool)
    reset_every = _option("reset_every", "Zero every stream's state before each iteration "
                          "whose number is a multiple of it (0: never).",
                          lambda v: _counter(v, "reset_every"))
    beta1 = _option("beta1", "Adam's first-moment decay, in [0, 1).",
                    lambda v: _below_one(v, "beta1"))
    beta2 = _option("beta2", "Adam's second-moment decay, in [0, 1).",
                    lambda v: _below_one(v, "beta2"))
    decay_rate = _option("decay_rate", "RMSProp's decay, in [0, 1).",
                         lambda v: _below_one(v, "decay_rate"))
    eps = _option("eps", "RMSProp's and Adam's epsilon, > 0.",
                  lambda v: check.real(v, "eps", positive=True))
    num_threads = _option("num_threads", "Threads that share a minibatch's streams, or "
                          "a large batch-1 model's recurrence (setting None: the cores "
                          "this process may use).",
                          lambda v: _available_cores() if v is None
                          else check.integer(v, "num_threads", minimum=1))

    @property
    def rng(self) -> np.random.RandomState:
        """The RandomState that sampling draws from by default."""
        return self._random_state

    @rng.setter
    def rng(self, value):
        if not isinstance(value, np.random.RandomState):
            raise ValueError(f"rng must be a numpy.random.RandomState (the samples are "
                             f"drawn from its stream), got {type(value).__name__}; use "
                             f"numpy.random.RandomState(seed)")
        self._random_state = value

    def __repr__(self):
        cell = ("" if isinstance(self._net, _nets.SeedsNet) else
                f"cell={self._cell!r}, num_layers={self._num_layers}, "
                f"dropout={self._dropout}, ")
        return (f"CharRNN({cell}vocab_size={self.vocab_size}, hidden_size={self.hidden_size}, "
                f"seq_length={self.seq_length}, optimizer={self.optimizer!r}, "
                f"iteration={self.iteration}, smooth_loss={self.smooth_loss:.4f})")

    def _lr_plan(self) -> Schedule:
        """The schedule's options, checked together (a cosine needs decay_iters)."""
        return Schedule(self.learning_rate, self.lr_schedule, self.warmup_iters,
                        self.decay_iters,
                        self.min_lr, self.lr_decay, self.decay_every)

    # -- the kernels' arguments, checked against the buffers they describe ---------------

    def _restore(self, *, iteration, pointer, epoch, schedule, smooth_loss):
        """Set where training stands, all checked first (for :mod:`charrnn.checkpoint`)."""
        state = (_counter(iteration, "iteration"), _counter(pointer, "pointer"),
                 _counter(epoch, "epoch"), check.real(smooth_loss, "smooth_loss"))
        if schedule not in (None, "iterations", "epochs"):
            raise ValueError(f"unknown schedule {schedule!r}; expected None, 'iterations' "
                             f"or 'epochs'")
        self._iteration, self._pointer, self._epoch, self._smooth_loss = state
        self._schedule = schedule

    def _check_length(self, size, T, what):
        need = self._batch_size * (T + 1)
        if size < need:
            raise ValueError(
                f"{what} has {size} characters; training needs at least "
                + (f"seq_length + 1 = {need}" if self._batch_size == 1 else
                   f"batch_size * (seq_length + 1) = {need}"))

    def _check_buffers(self):
        """Refuse to run a kernel on buffers out of step with the model's sizes.

        The kernels index without bounds checks: a buffer of another size, type or
        layout than the sizes say (which no public attribute can cause) would be a
        crash or silent garbage. O(1): no values are read.
        """
        H, V, B, dt = self._hidden_size, self._vocab_size, self._batch_size, self._dtype
        P, S = self._net.P, self._net.state_shape(B)
        if len(self._chars) != V:
            raise RuntimeError(f"this model's chars has {len(self._chars)} characters but "
                               f"its weights are for {V}; the model is corrupted")
        for name, shape in (("_flat", (P,)), ("_m1", (P,)), ("_m2", (P,)), ("_state", S)):
            a = getattr(self, name)
            if not (isinstance(a, np.ndarray) and a.shape == shape and a.dtype == dt
                    and a.flags.c_contiguous and a.flags.writeable):
                got = (type(a).__name__ if not isinstance(a, np.ndarray) else
                       " ".join([f"{a.dtype} {a.shape}"]
                                + ["read-only"] * (not a.flags.writeable)
                                + ["strided"] * (not a.flags.c_contiguous)))
                raise RuntimeError(
                    f"this model's {name[1:]} buffer is {got}, but hidden size {H}, "
                    f"{V} characters and batch size {B} need a writeable C-contiguous "
                    f"{dt} {shape}; the model is corrupted")
        for name in ("_random_state", "_dropout_rng"):
            rng = getattr(self, name)
            if not isinstance(rng, np.random.RandomState):
                raise RuntimeError(f"this model's {name.strip('_')} is a "
                                   f"{type(rng).__name__}, not a numpy.random.RandomState")

    def _check_training(self, T):
        """_check_buffers, and the data and counters the training kernel is given."""
        self._check_buffers()
        self._need_data()
        data = self._data
        if not (isinstance(data, np.ndarray) and data.ndim == 1 and data.flags.c_contiguous
                and data.dtype in (np.uint8, np.uint16, np.uint32)):
            raise RuntimeError("this model's training data is not a C-contiguous 1-D "
                               "uint8, uint16 or uint32 array; give it again with "
                               "set_text or set_data")
        self._check_length(data.size, T, "the training data")
        for name in ("iteration", "pointer", "epoch"):
            value = getattr(self, "_" + name)
            if not (isinstance(value, int) and 0 <= value <= MAX_ITERATIONS):
                raise RuntimeError(f"this model's {name} = {value!r} is outside "
                                   f"[0, 2**62]; the model is corrupted")

    # -- training ------------------------------------------------------------------------

    def set_text(self, text: str) -> None:
        """Encode ``text`` with this model's vocabulary as the training data."""
        if not isinstance(text, str):
            raise ValueError(f"text must be a str, got {type(text).__name__}")
        self._check_length(len(text), self._seq_length, "text")
        data = _data.encode(text, self._chars)
        data.flags.writeable = False  # the model's own copy, checked once
        with self._using("change the training text"):
            self._data = data

    def set_data(self, indices: np.ndarray) -> None:
        """Use an encoded text as the training data, without copying it.

        Parameters
        ----------
        indices : ndarray or numpy.memmap, shape (N,), dtype uint8, uint16 or uint32
            Indices into ``chars``, C-contiguous, ``N >= seq_length + 1``: e.g. the
            ``indices`` of :func:`charrnn.data.encode_file`. The model keeps a reference
            to the array itself (a memmap stays on disk), so it must not be changed
            while the model trains on it.

        Raises
        ------
        ValueError
            If the array is not of that form, or holds an index ``>= vocab_size``.
        """
        if not isinstance(indices, np.ndarray):
            raise ValueError(f"indices must be a numpy array, got {type(indices).__name__}")
        if indices.ndim != 1:
            raise ValueError(f"indices must be one-dimensional, got shape {indices.shape}")
        if indices.dtype not in (np.uint8, np.uint16, np.uint32):
            raise ValueError(f"indices must have dtype uint8, uint16 or uint32, got "
                             f"{indices.dtype}")
        if not indices.flags.c_contiguous:
            raise ValueError("indices must be C-contiguous (np.ascontiguousarray makes a copy)")
        self._check_length(indices.size, self._seq_length, "indices")
        top = int(indices.max())  # the kernel indexes without bounds checks
        if top >= self.vocab_size:
            k = int(np.argmax(indices >= self.vocab_size))
            raise ValueError(f"indices[{k}] = {indices[k]} is outside the vocabulary "
                             f"[0, {self.vocab_size})")
        with self._using("change the training data"):
            self._data = indices

    def iterations_per_epoch(self) -> int:
        """Chunks of ``seq_length`` in one pass of the epoch schedule (per stream)."""
        self._need_data()
        return (self._data.size // self.batch_size - 1) // self.seq_length

    def _need_data(self):
        if self._data is None:
            raise ValueError("this model has no training text: call set_text(text), "
                             "set_data(indices) or train()")

    def fit(self, num_iterations: Optional[int] = None, *, epochs: Optional[int] = None,
            callback: Optional[Callable[[CharRNN], Any]] = None, report_every: int = 1000,
            schedule: Optional[str] = None) -> CharRNN:
        """Train for more iterations, continuing exactly where the last call stopped.

        Parameters
        ----------
        num_iterations : int, optional
            Iterations of the seeds' loop (pointer wraps when ``p + T + 1 >= N``).
        epochs : int, optional
            Instead: passes of consecutive ``seq_length`` chunks (seeds 002/004). A model
            keeps the schedule it was first trained with.
        callback : callable, optional
            Called as ``callback(model)`` every ``report_every`` iterations and at the end.
        report_every : int
            How often the compiled loop returns to Python for ``callback``.
        schedule : {"iterations", "epochs"}, optional
            The walk of the text. Default: ``"epochs"`` when ``epochs`` is given, else
            ``"iterations"``. ``fit(n, schedule="epochs")`` runs ``n`` iterations of the
            epoch walk, to stop or continue in the middle of an epoch.

        Returns
        -------
        self

        Raises
        ------
        FloatingPointError
            If the loss becomes NaN or infinite; the parameters are those before that
            iteration.
        RuntimeError
            If another thread is training this model, or sampling, saving or
            evaluating it, at the same time. (Training different models in different
            threads is fine: the kernels release the GIL.)

        Notes
        -----
        With ``logging.getLogger("charrnn")`` enabled for ``DEBUG``, each report point
        also logs a record with ``iteration``, ``loss`` and ``smooth_loss`` attributes.
        """
        me = threading.get_ident()
        if self._trainer == me:
            raise RuntimeError("fit was called from inside its own fit (from its callback); "
                               "a model trains one fit at a time")
        if not self._lock.acquire(blocking=False):
            raise RuntimeError("this model is being trained by another thread")
        try:
            with self._guard:
                if self._readers:
                    raise RuntimeError(
                        "this model is being sampled, saved or evaluated by another thread; "
                        "train it when that is done")
                self._trainer = me
            try:
                self._fit(num_iterations, epochs, callback, report_every, schedule)
            finally:
                with self._guard:
                    self._trainer = None
        finally:
            self._lock.release()
        return self

    def _fit(self, num_iterations, epochs, callback, report_every, schedule):
        self._need_data()
        if (num_iterations is None) == (epochs is None):
            raise ValueError("give exactly one of num_iterations and epochs")
        if schedule is None:
            schedule = "iterations" if epochs is None else "epochs"
        elif schedule not in ("iterations", "epochs"):
            raise ValueError(f"schedule must be 'iterations' or 'epochs', got {schedule!r}")
        elif epochs is not None and schedule != "epochs":
            raise ValueError("epochs needs schedule='epochs'")
        if self._schedule is None or self._iteration == 0:
            self._schedule = schedule
        elif schedule != self._schedule:
            raise ValueError(f"this model was trained by {self.schedule}; continue the same way")
        if epochs is not None:
            total = check.integer(epochs, "epochs", minimum=0) * self.iterations_per_epoch()
        else:
            total = check.integer(num_iterations, "num_iterations", minimum=0)
        if self._iteration + total > MAX_ITERATIONS:
            raise ValueError(
                f"fit would take the iteration counter from {self._iteration} to "
                f"{self._iteration + total}, past its limit 2**62 = {MAX_ITERATIONS}")
        report_every = check.integer(report_every, "report_every", minimum=1)
        if callback is not None and not callable(callback):
            raise ValueError("callback must be callable")
        reporting = callback is not None or _log.isEnabledFor(logging.DEBUG)
        self._run(total, callback, report_every if reporting else max(total, 1))

    def _run(self, total, callback, chunk):
        """``total`` iterations, calling ``callback`` after every ``chunk`` of them.

        The kernel runs up to a report point, or with ``reset_every`` up to the next
        iteration whose number is a multiple of it (the state is zeroed before it).
        """
        T, B = self._seq_length, self._batch_size
        plan = self._lr_plan()
        ws = self._net.workspace(T, B, self._dtype, self.num_threads)
        left, to_report = total, chunk
        while left > 0:
            k = min(to_report, left)
            self._check_training(T)  # at each call: the callback may have set new data
            if self.reset_every:
                since = self._iteration % self.reset_every
                if since == 0:
                    self._state[...] = 0  # every stream starts this iteration from zero
                k = min(k, self.reset_every - since)
            loss_out, smooth_out = self._history._reserve(k)
            (done, self._pointer, self._iteration, self._smooth_loss, wrapped,
             status) = self._net.train(
                ws, self._data, self._flat, self._m1, self._m2, self._state, loss_out,
                smooth_out, p=self._pointer, n=self._iteration, smooth_loss=self._smooth_loss,
                optimizer=self.optimizer, learning_rate=plan.learning_rate,
                lr_schedule=plan.lr_schedule, warmup_iters=plan.warmup_iters,
                decay_iters=plan.decay_iters, min_lr=plan.min_lr, lr_decay=plan.lr_decay,
                decay_every=plan.decay_every, clip=self.clip, clip_norm=self.clip_norm,
                beta1=self.beta1, beta2=self.beta2, decay_rate=self.decay_rate, eps=self.eps,
                wrap=self._schedule, reset_each_epoch=self.reset_each_epoch, bptt=self._bptt,
                dropout=self._dropout, dropout_rng=self._dropout_rng)
            self._history._size += done
            self._epoch += wrapped
            left -= done
            to_report -= done
            if status == 1:
                raise FloatingPointError(
                    f"training diverged: the loss became NaN or infinite at iteration "
                    f"{self.iteration}; the parameters are left as they were before it. "
                    f"Try a lower learning_rate (now {self.learning_rate}) or a clip.")
            if status == 3:
                raise ValueError(
                    f"the training data holds an index outside the vocabulary [0, "
                    f"{self._vocab_size}) at pointer {self._pointer}: the array given to "
                    f"set_data was changed after it was checked; give it again with "
                    f"set_data (the model is as it was before iteration {self.iteration})")
            if status == 2:
                raise FloatingPointError(
                    f"training diverged: the update of iteration {self.iteration} made "
                    f"parameters NaN or infinite, and this model can no longer be used. "
                    f"Start again (or from a checkpoint) with a lower learning_rate "
                    f"(now {self.learning_rate}) or a clip.")
            if to_report > 0 and left > 0:
                continue  # stopped only for a reset
            to_report = chunk
            if _log.isEnabledFor(logging.DEBUG) and len(self.history):
                loss = float(self.history.loss[-1])
                _log.debug("iteration %d: loss %.4f, smooth loss %.4f", self.iteration, loss,
                           self.smooth_loss, extra={"iteration": self.iteration, "loss": loss,
                                                    "smooth_loss": self.smooth_loss})
            if callback is not None:
                callback(self)

    # -- using the model ------------------------------------------------------------------

    def _encode_prime(self, prime):
        if not isinstance(prime, str):
            raise ValueError(f"prime must be a str, got {type(prime).__name__}")
        missing = sorted(set(prime) - set(self._char_to_ix))
        if missing:
            raise ValueError(f"prime has characters that are not in the vocabulary: "
                             f"{''.join(missing)!r}")
        return np.array([self._char_to_ix[c] for c in prime], np.int32)

    @property
    def default_start(self) -> str:
        """The state ``start=None`` means: ``'zero'`` when the model trains with zero-state
        resets (``reset_every`` > 0), else ``'carried'`` (see :meth:`evaluate`)."""
        return "zero" if self.reset_every else "carried"

    @default_start.setter
    def default_start(self, value):
        raise AttributeError("default_start cannot be set: it follows reset_every; pass "
                             "start='carried' or 'zero' to evaluate, score or sample instead")

    def _start_state(self, start):
        """A single-stream copy of the state ``start`` names (None: the default)."""
        start = self.default_start if start is None else start
        check.choice(start, "start", dict.fromkeys(STARTS))
        if start == "zero":
            return self._net.zero_stream_state(self._dtype)
        return self._net.stream_state(self._state)

    def _start_index(self, start_char):
        if not (isinstance(start_char, str) and len(start_char) == 1):
            raise ValueError(f"start_char must be one character (a str of length 1), got "
                             f"{start_char!r}")
        if start_char not in self._char_to_ix:
            raise ValueError(f"start_char {start_char!r} is not in the vocabulary")
        return self._char_to_ix[start_char]

    def _start(self, prime, start, start_char):
        """Single-stream state and first input for sampling (see :meth:`sample`)."""
        self._check_buffers()
        if prime and start_char is not None:
            raise ValueError("give prime or start_char, not both: start_char is the first "
                             "input after the state, prime the text that leads to it")
        if start is None and not prime:
            start = "carried"  # the seeds' sample, and their training-time samples
        state = self._start_state(start)
        if start_char is not None:
            return state, self._start_index(start_char)
        if not prime:
            return state, None
        ix = self._encode_prime(prime)
        self._net.advance(self._flat, state, ix[:-1])
        return state, int(ix[-1])

    def _rng(self, seed):
        return self._random_state if seed is None else check.random_state(seed, "seed")

    def _draw(self, state, x, n, rng, temperature, greedy, top_k, top_p=1.0):
        """``n`` sampled indices from ``state`` (updated) and first input ``x``."""
        out = np.empty(n, np.int64)
        named = [(name, a) for (name, _, _), a in zip(self._net.layout, self.params)]
        for name, a in named + [("h", state)]:  # O(P) per call, as the seeds' sample checks
            if not np.isfinite(a).all():
                raise ValueError(f"{name} contains NaN or infinite values")
        if n:
            uniforms = np.zeros(n) if greedy else rng.random_sample(n)
            self._net.sample(self._flat, state, x, uniforms, out, temperature, bool(greedy),
                             top_k, top_p)
        return out

    def generate(self, n: int, prime: Optional[str] = None, temperature: float = 1.0,
                 greedy: bool = False, top_k: Optional[int] = None, seed: RNG = None,
                 chunk: int = 256, *, start: Optional[str] = None,
                 start_char: Optional[str] = None,
                 top_p: Optional[float] = None) -> Iterator[str]:
        """Yield ``n`` sampled characters one at a time, as they are sampled.

        Same arguments and the same characters as :meth:`sample` (sampled in the kernel
        ``chunk`` characters at a time). The arguments are checked here, when
        ``generate`` is called, not at the first ``next()``.
        """
        n = check.integer(n, "n", minimum=0)
        chunk = check.integer(chunk, "chunk", minimum=1)
        rng = self._rng(seed)
        with self._using("sample from this model"):
            state, x = self._start(prime, start, start_char)
            options = _nets.check_sampling(self._flat, self._net, temperature, greedy, top_k,
                                           top_p)
        return self._stream(state, x, n, chunk, rng, bool(greedy), options)

    def _stream(self, state, x, n, chunk, rng, greedy, options):
        temperature, top_k, top_p = options
        left = n
        while left > 0:
            k = min(chunk, left)
            with self._using("sample from this model"):
                self._check_buffers()
                ixes = self._draw(state, x, k, rng, temperature, greedy, top_k, top_p)
            x = int(ixes[-1])
            left -= k
            for i in ixes:
                yield self._chars[i]

    def sample(self, n: int, prime: Optional[str] = None, temperature: float = 1.0,
               greedy: bool = False, top_k: Optional[int] = None, seed: RNG = None, *,
               start: Optional[str] = None, start_char: Optional[str] = None,
               top_p: Optional[float] = None) -> str:
        """Sample ``n`` characters.

        Parameters
        ----------
        n : int
            Number of characters, >= 0.
        prime : str, optional
            Text to warm the hidden state on: starting from the state ``start`` names,
            its characters but the last are fed through the network and the last one
            is the first input. Without it (and without ``start_char``), sampling
            starts, as in the seeds, from the state that training carried (``hprev``,
            the first stream's), with an all-zero first input (seed 002).
        temperature : float > 0
            Logits are divided by it before the softmax. A temperature so small (or
            weights so large) that the scaled logits could overflow raises ValueError.
        greedy : bool
            Always the most likely character (seed 000's "why not argmax").
        top_k : int, optional
            Draw only among the k most likely characters.
        seed : None, int or RandomState
            None continues the model's own RandomState (``model.rng``).
        start : {None, "carried", "zero"}
            The state sampling starts from (before ``prime``): ``"carried"``, a copy of
            the state training carried (the first stream's; zeros for a model that was
            never trained), or ``"zero"``. None: with a ``prime``, the model's
            :attr:`default_start` (``"carried"``, or ``"zero"`` when it trains with
            ``reset_every``); without one, ``"carried"``, as the seeds sample.
        start_char : str, optional
            One character of the vocabulary, the first input; instead of ``prime``.
            With ``start`` None, sampling continues from the carried state, as the
            seeds' training-time samples do (``sample(hprev, inputs[0], 200)``).
        top_p : float in (0, 1], optional
            Nucleus sampling: draw only among the smallest set of most likely
            characters whose probabilities reach ``top_p``, renormalised (see
            :func:`charrnn.sample`). Applied after ``temperature`` and ``top_k``, as
            HF transformers does.

        Returns
        -------
        str
            The ``n`` new characters (not including ``prime`` or ``start_char``).

        Raises
        ------
        ValueError
            For a ``prime`` or ``start_char`` outside the vocabulary, both of them at
            once, an unknown ``start``, and the sampling options' own checks.
        """
        n = check.integer(n, "n", minimum=0)
        rng = self._rng(seed)
        with self._using("sample from this model"):
            state, x = self._start(prime, start, start_char)
            temperature, k, top_p = _nets.check_sampling(self._flat, self._net, temperature,
                                                         greedy, top_k, top_p)
            ixes = self._draw(state, x, n, rng, temperature, greedy, k, top_p)
        return _data.decode(ixes, self._chars)

    def samples(self, num_samples: int, n: int, prime: Optional[str] = None, *,
                seed: RNG = None, **options: Any) -> List[str]:
        """``num_samples`` independent samples of ``n`` characters from the same start.

        Each starts where :meth:`sample` would (warmed on ``prime``, or from the carried
        state), and they draw one after the other from one random stream: the result
        is ``[sample(n, prime, seed=rng, **options) for _ in range(num_samples)]`` with
        ``rng`` the RandomState of ``seed`` (nanoGPT's ``num_samples``).

        Parameters
        ----------
        num_samples : int
            >= 0.
        n, prime, seed
            As in :meth:`sample`.
        **options
            ``temperature``, ``greedy``, ``top_k``, ``top_p``: as in :meth:`sample`.

        Returns
        -------
        list of str
        """
        num_samples = check.integer(num_samples, "num_samples", minimum=0)
        rng = self._rng(seed)
        return [self.sample(n, prime, seed=rng, **options) for _ in range(num_samples)]

    def save(self, path: Union[str, os.PathLike[str]]) -> None:
        """Write the model and its whole training state to one ``.npz`` checkpoint.

        See :func:`charrnn.checkpoint.save`; :func:`charrnn.load` reads it back.
        """
        _checkpoint.save(self, path)

    @classmethod
    def _from_checkpoint(cls, c, arrays) -> "CharRNN":
        """The model of a checkpoint's checked config ``c`` and members ``arrays``."""
        model = cls([chr(code) for code in arrays["chars"].tolist()],
                    **{k: c[k] for k in _checkpoint.INIT_FIELDS})
        model._restore(smooth_loss=float(arrays["smooth_loss"]),
                       **{k: c[k] for k in _checkpoint.STATE_FIELDS})
        for key, target in (("params", "_flat"), ("m1", "_m1"), ("m2", "_m2")):
            setattr(model, target, np.ascontiguousarray(arrays[key]))
        model._state = np.ascontiguousarray(arrays["hprev"]).reshape(
            model._net.state_shape(model._batch_size))
        for prefix, rng in (("", model._random_state), ("dropout_", model._dropout_rng)):
            if prefix + "rng_keys" in arrays:  # format 1 has no dropout stream (no dropout)
                rng.set_state(("MT19937", arrays[prefix + "rng_keys"],
                               int(arrays[prefix + "rng_pos"]),
                               int(arrays[prefix + "rng_has_gauss"]),
                               float(arrays[prefix + "rng_gauss"])))
        h = model._history
        h._loss = arrays["history_loss"]  # native float64 already; fit grows a copy
        h._smooth = arrays["history_smooth_loss"]
        h._size = h._loss.size
        h._val_iteration = arrays["history_val_iteration"].tolist()
        h._val_loss = arrays["history_val_loss"].tolist()
        return model

    def _indices(self, text, name):
        """``text`` (a str, or indices into ``chars``) as a 1-D index array, checked."""
        if isinstance(text, str):
            return _data.encode(text, self._chars)
        if not isinstance(text, np.ndarray) or text.ndim != 1 or text.dtype.kind not in "iu":
            raise ValueError(f"{name} must be a str or a 1-D integer array of indices into "
                             f"chars, got {type(text).__name__}")
        if text.size and (int(text.min()) < 0 or int(text.max()) >= self._vocab_size):
            bad = int(np.argmax((text < 0) | (text >= self._vocab_size)))
            raise IndexError(f"{name}[{bad}] = {text[bad]} is outside the vocabulary "
                             f"[0, {self._vocab_size})")
        return np.ascontiguousarray(text)

    def score(self, text: Union[str, np.ndarray], prime: Optional[str] = None, *,
              start: Optional[str] = None) -> np.ndarray:
        """Log-probability of each character of ``text[1:]`` given what precedes it.

        Parameters
        ----------
        text : str or 1-D integer array
            At least one character (or index into ``chars``).
        prime : str, optional
            Fed through the network first, from the ``start`` state.
        start : {None, "carried", "zero"}
            The state before ``prime`` (or ``text[0]``), as in :meth:`evaluate`: a copy
            of the state training carried, or zeros; None: :attr:`default_start`.

        Returns
        -------
        ndarray of float64, shape (len(text) - 1,)
            Natural logarithms; ``-score(text).mean()`` is :meth:`evaluate`'s loss.
        """
        ix = self._indices(text, "text")
        if ix.size < 1:
            raise ValueError("text is empty; it needs at least one character")
        pre = None if not prime else self._encode_prime(prime)
        with self._using("score text with this model"):
            self._check_buffers()
            state = self._start_state(start)
            if pre is not None:
                self._net.advance(self._flat, state, pre)
            return self._net.logprobs(self._flat, state, np.asarray(ix, np.int32))

    def evaluate(self, text: Union[str, np.ndarray], *, start: Optional[str] = None) -> float:
        """Average loss per character (nats) of predicting ``text[1:]`` from ``text[:-1]``.

        Divide by ``log(2)`` for bits per character.

        Parameters
        ----------
        text : str or 1-D integer array
            At least two characters, or indices into ``chars`` (e.g.
            :func:`charrnn.data.encode_file`'s, or a memmap): scored a chunk at a time,
            in constant memory.
        start : {None, "carried", "zero"}
            The state before ``text[0]``. ``"carried"``: a copy of the state training
            carried (the first stream's ``hprev``; zeros for a model never trained, or
            one from :meth:`from_state_dict`), the kind of state training has visited.
            ``"zero"``: zeros, so the number does not depend on where training stopped;
            a model trained with the seeds' loop has seen a zero state only at the
            start and after each pass over the text, and early in training it can
            predict very badly from it. None (default): :attr:`default_start`, which is
            ``"zero"`` for models that train with zero-state resets (``reset_every``)
            and ``"carried"`` otherwise.

        Returns
        -------
        float
        """
        ix = self._indices(text, "text")
        if ix.size < 2:
            raise ValueError("text needs at least two characters to evaluate a prediction")
        total = 0.0
        with self._using("evaluate this model"):
            self._check_buffers()
            state = self._start_state(start)
            for a in range(0, ix.size - 1, _EVAL_CHUNK):
                piece = np.asarray(ix[a:a + _EVAL_CHUNK + 1], np.int32)
                total -= math.fsum(self._net.logprobs(self._flat, state, piece))
        return total / (ix.size - 1)

    # -- moving weights to and from PyTorch --------------------------------------------

    def state_dict(self) -> Dict[str, np.ndarray]:
        """The weights as numpy arrays named and shaped as PyTorch's (copies).

        ``weight_ih_l{k}`` (G*H, V for k = 0 else H), ``weight_hh_l{k}`` (G*H, H),
        ``bias_ih_l{k}``, ``bias_hh_l{k}`` (G*H,) for each layer, then
        ``decoder.weight`` (V, H) and ``decoder.bias`` (V,); G = 1, 4, 3 for rnn,
        lstm, gru. They load into ``torch.nn.RNN/LSTM/GRU(V, H, num_layers)`` (the
        ``decoder.*`` entries into a ``torch.nn.Linear(H, V)``), which then gives the
        same log-probabilities for one-hot inputs. For the seeds' model
        ``weight_ih_l0`` is ``Wxh``, ``bias_ih_l0`` is ``bh``, ``bias_hh_l0`` zeros.
        """
        with self._using("read this model's weights"):
            return self._net.state_dict(self._flat)

    @classmethod
    def from_state_dict(cls, chars: Sequence[str], state_dict: Mapping[str, Any], *,
                        cell: str = "rnn", **options: Any) -> "CharRNN":
        """A model with the weights of ``state_dict`` (numpy arrays or torch tensors).

        Parameters
        ----------
        chars : sequence of str
            The vocabulary, V characters (the order of the input and output rows).
        state_dict : mapping
            PyTorch's names and shapes, as :meth:`state_dict` returns them (a
            ``torch.nn.LSTM``'s ``state_dict()`` with ``decoder.weight`` and
            ``decoder.bias`` added). The number of layers and H are read from it.
        cell : {"rnn", "lstm", "gru"}
        **options
            Any other :class:`CharRNN` option (``dropout``, ``dtype``, ``optimizer``, ...).
            With ``cell="rnn"``, one layer and no dropout the model is the seeds'
            (``bias_hh_l0`` is added into ``bh``).
        """
        if not isinstance(state_dict, Mapping):
            raise ValueError(f"state_dict must be a mapping of names to arrays, got "
                             f"{type(state_dict).__name__}")
        for key in ("hidden_size", "num_layers"):
            if key in options:
                raise ValueError(f"{key} is read from the state_dict; leave it out")
        arrays = {}
        for name, value in state_dict.items():
            if hasattr(value, "detach"):  # a torch tensor
                value = value.detach().cpu().numpy()
            arrays[name] = np.asarray(value, dtype=np.float64)
        if "weight_hh_l0" not in arrays or arrays["weight_hh_l0"].ndim != 2:
            raise ValueError("state_dict has no 2-D weight_hh_l0 (PyTorch's names are needed)")
        H = arrays["weight_hh_l0"].shape[1]
        L = 0
        while f"weight_hh_l{L}" in arrays:
            L += 1
        model = cls(chars, H, cell=cell, num_layers=L, **options)
        expected = model._net.torch_shapes()
        names = {name for name, _, _ in expected}
        extra = sorted(set(arrays) - names)
        if extra:
            raise ValueError(f"state_dict has entries a {L}-layer {cell} model does not: "
                             f"{extra}")
        for name, shape, _ in expected:
            if name not in arrays:
                raise ValueError(f"state_dict lacks {name} (shape {shape})")
            if arrays[name].shape != tuple(shape):
                raise ValueError(f"state_dict[{name!r}] has shape {arrays[name].shape}; a "
                                 f"{cell} model of hidden size {H} over {len(model.chars)} "
                                 f"characters needs {tuple(shape)}")
            if not np.isfinite(arrays[name]).all():
                raise ValueError(f"state_dict[{name!r}] holds NaN or infinite values")
        model._flat[...] = model._net.from_state_dict(arrays)
        return model

    # -- fine-tuning -------------------------------------------------------------------

    @classmethod
    def init_from(cls, source: Union["CharRNN", str, os.PathLike[str]],
                  chars: Optional[Iterable[str]] = None, *, extend_vocab: bool = False,
                  keep_optimizer: bool = False, **options: Any) -> "CharRNN":
        """A model to fine-tune: the weights of ``source``, training started afresh.

        What the model is (``hidden_size``, ``cell``, ``num_layers``, ``dropout``,
        ``activation``, ``dtype`` and the vocabulary) comes from ``source``, and so do its
        weights, bit for bit. Where training stands starts fresh: iteration 0, empty
        history, pointer 0, zero carried state, the initial ``smooth_loss``, and zero
        optimizer state ``m1``, ``m2`` unless ``keep_optimizer``. The random streams
        (samples, dropout) start from ``seed`` as in a new model.

        Parameters
        ----------
        source : CharRNN, str or os.PathLike
            A model, or the path of a checkpoint (read with :func:`charrnn.load`).
        chars : iterable of str, optional
            The characters of the text to fine-tune on (e.g. the text itself). Any that
            the vocabulary of ``source`` lacks raise ValueError naming them, unless
            ``extend_vocab``.
        extend_vocab : bool
            Add the missing characters to the vocabulary, which stays sorted (the old
            characters' weights move with them; nothing else changes). The new input
            columns (``Wxh``, ``weight_ih_l0``), decoder rows (``Why``,
            ``decoder.weight``) and output biases are those a new model of the larger
            vocabulary draws with ``seed`` (``randn * 0.01`` and zero biases for the
            seeds' model, PyTorch's uniform for stacked cells).
        keep_optimizer : bool
            Keep the optimizer state ``m1``, ``m2`` of ``source`` (zero for added
            characters). The iteration counter starts at 0 all the same, so Adam's
            bias correction starts again.
        **options
            Training options, each defaulting to that of ``source``: ``seq_length``,
            ``learning_rate``, ``seed``, ``optimizer``, ``clip``, ``clip_norm``, ``bptt``,
            ``reset_each_epoch``, ``beta1``, ``beta2``, ``decay_rate``, ``eps``,
            ``batch_size``, ``lr_schedule``, ``warmup_iters``, ``decay_iters``,
            ``min_lr``, ``lr_decay``, ``decay_every``; and ``num_threads`` (default:
            the cores available). A model option may be given only with the value of
            ``source`` (else ValueError).

        Returns
        -------
        CharRNN
        """
        if not isinstance(source, CharRNN):
            source = load(source)
        with source._using("read this model's weights"):
            source._check_buffers()
            settings = {name: getattr(source, name) for name in _checkpoint.INIT_FIELDS}
            settings["dtype"] = source.dtype.name
            for name, value in options.items():
                if name in SHAPE_OPTIONS:
                    same = (np.dtype(check.dtype(value)) == source.dtype if name == "dtype"
                            else value == settings[name])
                    if not same:
                        raise ValueError(
                            f"{name}={value!r} differs from the model fine-tuned "
                            f"({name}={settings[name]!r}); a fine-tuned model keeps its shape: "
                            f"leave {name} out")
                elif name not in settings and name != "num_threads":
                    raise TypeError(f"init_from() got an unexpected option {name!r}")
            settings.update((k, v) for k, v in options.items() if k not in SHAPE_OPTIONS)
            vocab = list(source.chars)
            if chars is not None:
                wanted = set(chars)
                if not all(isinstance(c, str) and len(c) == 1 for c in wanted):
                    raise ValueError("chars must be single characters")
                missing = sorted(wanted - set(vocab))
                if missing and not extend_vocab:
                    raise ValueError(
                        f"{len(missing)} character(s) are not in the vocabulary of the model "
                        f"fine-tuned: {''.join(missing[:50])!r}; extend_vocab=True adds them")
                if missing:
                    vocab = sorted(set(vocab) | wanted)
            model = cls(vocab, **settings)
            positions = np.array([model._char_to_ix[c] for c in source.chars], np.intp)
            pairs = [(source._flat, model._flat)]
            if keep_optimizer:
                pairs += [(source._m1, model._m1), (source._m2, model._m2)]
            for old, new in pairs:
                _copy_weights(source._net.params(old), model._net.params(new), positions)
        return model

def _copy_weights(old, new, positions):
    """Each array of ``old`` into its counterpart in ``new``: the same layout, over the
    same vocabulary or one with more characters. Along the one axis whose size grew
    (V), entry ``i`` of ``old`` goes to entry ``positions[i]`` of ``new``; arrays of
    the same shape are copied as they are."""
    for a, b in zip(old, new):
        grown = [k for k, (m, n) in enumerate(zip(a.shape, b.shape)) if m != n]
        if grown:
            np.moveaxis(b, grown[0], 0)[positions] = np.moveaxis(a, grown[0], 0)
        else:
            b[...] = a


def train(text: Union[str, Tuple[np.ndarray, Sequence[str]]], hidden_size: int = 100,
          seq_length: int = 25, learning_rate: float = 0.1, num_iterations: Optional[int] = None,
          seed: int = 0, *, epochs: Optional[int] = None,
          callback: Optional[Callable[[CharRNN], Any]] = None, report_every: int = 1000,
          **options: Any) -> CharRNN:
    """Train a character-level RNN on ``text`` with the seeds' main loop.

    The vocabulary is ``sorted(set(text))`` (the seeds' ``list(set(...))`` order
    changes between Python runs; sorted order is deterministic), the weights are
    ``init_params(H, V, rng=RandomState(seed))``, and each iteration feeds
    ``text[p:p+seq_length]`` with targets shifted by one, updates with Adagrad
    (eps 1e-8 inside the sqrt) after clipping gradients to [-5, 5], and moves the
    pointer by ``seq_length``. ``hprev`` and the pointer reset when
    ``p + seq_length + 1 >= len(text)`` and on the first iteration.

    Parameters
    ----------
    text : str or EncodedText
        At least ``seq_length + 1`` characters. Or, for texts too big for a ``str``, an
        already encoded text: :func:`charrnn.data.encode_file`'s ``EncodedText`` or any
        ``(indices, chars)`` pair, whose ``chars`` is then the vocabulary and whose
        indices (an array or ``numpy.memmap``) are trained on without a copy (see
        :meth:`CharRNN.set_data`).
    hidden_size, seq_length, learning_rate, seed
        As in the seeds (100, 25, 0.1) and the weights' seed.
    num_iterations : int, optional
        Iterations to run; default 1000 when ``epochs`` is not given.
    epochs : int, optional
        Instead of ``num_iterations``: passes of consecutive chunks (seeds 002/004).
    callback, report_every
        See :meth:`CharRNN.fit`.
    **options
        ``cell``, ``num_layers``, ``dropout``, ``activation``, ``optimizer``, ``clip``,
        ``clip_norm``, ``bptt``, ``reset_each_epoch``, ``dtype``, ``beta1``, ``beta2``,
        ``decay_rate``, ``eps``, ``batch_size``, ``num_threads``, ``lr_schedule``,
        ``warmup_iters``, ``decay_iters``, ``min_lr``, ``lr_decay``, ``decay_every``,
        ``reset_every``: see :class:`CharRNN`. A ``cosine`` schedule without
        ``decay_iters`` decays over this run (``num_iterations``, or the iterations of
        ``epochs``).

    Returns
    -------
    CharRNN
    """
    if num_iterations is None and epochs is None:
        num_iterations = 1000
    if isinstance(text, str):
        chars, size = _data.vocabulary(text), len(text)
    else:
        indices, chars = _data.as_encoded(text)
        size = indices.size
    if options.get("lr_schedule") == "cosine" and options.get("decay_iters") is None:
        options["decay_iters"] = _run_length(num_iterations, epochs, size, seq_length,
                                             options.get("batch_size", 1))
    model = CharRNN(chars, hidden_size, seq_length, learning_rate, seed=seed, **options)
    if isinstance(text, str):
        model.set_text(text)
    else:
        model.set_data(indices)
    return model.fit(num_iterations, epochs=epochs, callback=callback,
                     report_every=report_every)


def _run_length(num_iterations, epochs, size, seq_length, batch_size):
    """The iterations of a run of ``num_iterations``, or of ``epochs`` over ``size``
    characters: what a cosine schedule without ``decay_iters`` decays over. None for
    options that are not valid (the model then says what is wrong with them)."""
    if num_iterations is not None:
        return num_iterations
    if isinstance(epochs, int) and isinstance(seq_length, int) and seq_length > 0:
        B = batch_size
        per_epoch = (size // B - 1) // seq_length if isinstance(B, int) and B > 0 else 0
        return max(1, epochs * per_epoch)
    return None


def fine_tune(source: Union[CharRNN, str, os.PathLike[str]],
              text: Union[str, Tuple[np.ndarray, Sequence[str]]],
              num_iterations: Optional[int] = None, *, epochs: Optional[int] = None,
              extend_vocab: bool = False, keep_optimizer: bool = False,
              callback: Optional[Callable[[CharRNN], Any]] = None, report_every: int = 1000,
              **options: Any) -> CharRNN:
    """Fine-tune a trained model on a new text (char-rnn's and torch-rnn's ``-init_from``).

    :meth:`CharRNN.init_from` ``(source, chars of text, ...)`` trained on ``text`` as
    :func:`train` trains; ``source`` is not changed.

    Parameters
    ----------
    source : CharRNN, str or os.PathLike
        The model, or the path of its checkpoint.
    text : str or EncodedText
        As in :func:`train`; its characters must be in the vocabulary of ``source``
        unless ``extend_vocab``.
    num_iterations, epochs, callback, report_every
        As in :func:`train` (default 1000 iterations).
    extend_vocab, keep_optimizer
        See :meth:`CharRNN.init_from`.
    **options
        Training options (``learning_rate``, ``seq_length``, ``batch_size``, ...), each
        defaulting to that of ``source``, except ``decay_iters``: a cosine schedule
        without it decays over this run, as in :func:`train`.

    Returns
    -------
    CharRNN
        The fine-tuned model, a new one: iteration, history and pointer count from
        this run.
    """
    if num_iterations is None and epochs is None:
        num_iterations = 1000
    if not isinstance(source, CharRNN):
        source = load(source)
    if isinstance(text, str):
        chars: Iterable[str] = set(text)
        size = len(text)
    else:
        indices, encoded_chars = _data.as_encoded(text)
        chars, size = encoded_chars, indices.size
    if options.get("lr_schedule", source.lr_schedule) == "cosine" \
            and options.get("decay_iters") is None:
        options["decay_iters"] = _run_length(num_iterations, epochs, size,
                                             options.get("seq_length", source.seq_length),
                                             options.get("batch_size", source.batch_size))
    model = CharRNN.init_from(source, chars, extend_vocab=extend_vocab,
                              keep_optimizer=keep_optimizer, **options)
    if isinstance(text, str):
        model.set_text(text)
    else:
        if encoded_chars != model.chars:  # the vocabulary grew: indices into it (a copy)
            V = len(encoded_chars)
            if indices.size and int(indices.max()) >= V:
                bad = int(np.argmax(indices >= V))
                raise IndexError(f"indices[{bad}] = {indices[bad]} is outside the text's "
                                 f"vocabulary [0, {V})")
            lookup = np.array([model.char_to_ix[c] for c in encoded_chars],
                              _data.index_dtype(model.vocab_size))
            indices = lookup[indices]
        model.set_data(indices)
    return model.fit(num_iterations, epochs=epochs, callback=callback,
                     report_every=report_every)


def load(path: Union[str, os.PathLike[str]]) -> CharRNN:
    """Read a checkpoint written by :meth:`CharRNN.save` (or :func:`charrnn.checkpoint.save`).

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    CharRNN
        With its parameters, optimizer state, carried state, pointer, iteration,
        random states and history as saved. The training text is not in the
        checkpoint: call ``model.set_text(text)`` before ``model.fit(...)``.

    Raises
    ------
    charrnn.checkpoint.CheckpointError (a ValueError)
        For any content that is not a valid charrnn checkpoint (see
        :func:`charrnn.checkpoint.read`): nothing in it is unpickled, and memory is
        bounded before anything is allocated.
    OSError
        If the file cannot be opened.
    """
    return load_with_meta(path)[0]


def load_with_meta(path: Union[str, os.PathLike[str]]) -> Tuple[CharRNN, Dict[str, Any]]:
    """Like :func:`load`, and also return the ``meta`` dict given to ``checkpoint.save``."""
    config, arrays, meta = _checkpoint.read(path)
    try:
        return CharRNN._from_checkpoint(config, arrays), meta
    except (ValueError, TypeError, MemoryError) as e:  # checked already: a safety net
        raise _checkpoint.CheckpointError(f"{os.fspath(path)}: {e}") from None
