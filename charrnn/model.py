"""``CharRNN`` and ``train``: the seeds' training loop, run by one compiled kernel call."""
from __future__ import annotations

import contextlib
import logging
import math
import os
import threading
from typing import Any, Callable, Iterator, Optional, Sequence, Tuple, Union

import numpy as np

from . import _validate as check
from . import data as _data
from .core import Params, RNG, _kernels, _sample, init_params

__all__ = ["CharRNN", "History", "train"]

#: Training progress (``DEBUG`` records at ``fit``'s report points); silent unless an
#: application configures logging.
_log = logging.getLogger("charrnn")
_log.addHandler(logging.NullHandler())

#: Minibatch streams are processed in groups of this many (each group on one thread,
#: its rows sharing every load of the weights).
STREAMS_PER_GROUP = 4


def _available_cores():
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


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
    """A character-level vanilla RNN and the state of its training.

    Most users get one from :func:`charrnn.train`. The constructor builds an
    untrained model over a vocabulary; :meth:`fit` trains it.

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
        ``init_params``) and then, continuing its stream, the samples.
    activation : {"tanh", "sigmoid"}
    optimizer : {"adagrad", "sgd", "rmsprop", "adam"}
        Adagrad is the seeds' (``mem += d*d; p -= lr * d / sqrt(mem + 1e-8)``);
        RMSProp uses ``decay_rate`` and ``eps``; Adam ``beta1``, ``beta2``, ``eps``.
    clip : float or None
        Gradients are clipped to ``[-clip, clip]`` before each update; None: never.
    bptt : {"full", "none"}
        ``"none"`` is Elman's simple recurrent network (no gradient through time).
    reset_each_epoch : bool
        With the epoch schedule, whether the hidden state is zeroed at the start of
        each epoch (seed 004) or carried over (seed 002).
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
        fixed order. With ``batch_size=1`` there is one thread.

    Attributes
    ----------
    params : tuple of ndarray
        ``(Wxh, Whh, Why, bh, by)``, shapes ``(H, V) (H, H) (V, H) (H, 1) (V, 1)``. They
        are views of one buffer that training updates in place.
    chars : list of str
    char_to_ix : dict
    smooth_loss : float
    history : History
    hprev : ndarray, shape (H, 1), or (B, H) with several streams
        Hidden state carried to the next iteration.
    iteration : int
        Number of training iterations done.

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
                 activation="tanh", optimizer="adagrad", clip=5.0, bptt="full",
                 reset_each_epoch=False, dtype="float64", beta1=0.9, beta2=0.999,
                 decay_rate=0.95, eps=1e-8, batch_size=1, num_threads=None):
        chars = list(chars)
        if not chars:
            raise ValueError("chars is empty; the vocabulary needs at least one character")
        if not all(isinstance(c, str) and len(c) == 1 for c in chars):
            raise ValueError("chars must be single characters")
        if len(set(chars)) != len(chars):
            raise ValueError("chars has repeated characters")
        self.chars = chars
        self.char_to_ix = {ch: i for i, ch in enumerate(chars)}
        self.hidden_size = H = check.integer(hidden_size, "hidden_size", minimum=1)
        self.seq_length = check.integer(seq_length, "seq_length", minimum=1)
        self.learning_rate = check.real(learning_rate, "learning_rate", positive=True)
        self.seed = check.integer(seed, "seed", minimum=0)
        self.activation = activation
        self.optimizer = optimizer
        self.bptt = bptt
        check.choice(activation, "activation", check.ACTIVATIONS)
        check.choice(optimizer, "optimizer", check.OPTIMIZERS)
        check.choice(bptt, "bptt", check.BPTT)
        self.clip = None if clip is None else check.real(clip, "clip", positive=True)
        self.reset_each_epoch = bool(reset_each_epoch)
        self.dtype = np.dtype(check.dtype(dtype))
        self.beta1 = check.real(beta1, "beta1", nonnegative=True)
        self.beta2 = check.real(beta2, "beta2", nonnegative=True)
        self.decay_rate = check.real(decay_rate, "decay_rate", nonnegative=True)
        self.eps = check.real(eps, "eps", positive=True)
        for name in ("beta1", "beta2", "decay_rate"):
            if getattr(self, name) >= 1:
                raise ValueError(f"{name} must be < 1, got {getattr(self, name)}")
        self.batch_size = B = check.integer(batch_size, "batch_size", minimum=1)
        self.num_threads = num_threads

        V = len(chars)
        self.rng = np.random.RandomState(self.seed)
        weights = init_params(H, V, self.rng)
        self._flat = np.concatenate([a.ravel() for a in weights]).astype(self.dtype)
        self._m1 = np.zeros_like(self._flat)  # Adagrad/RMSProp memory, Adam's first moment
        self._m2 = np.zeros_like(self._flat)  # Adam's second moment
        self._hprev = np.zeros((B, H), self.dtype)  # one row per stream
        self.smooth_loss = -math.log(1.0 / V) * self.seq_length  # loss at iteration 0
        self.iteration = 0
        self.pointer = 0
        self.epoch = 0
        self.history = History()
        self.schedule = None  # "iterations" or "epochs", fixed by the first fit
        self._data = None
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

    # -- the parameters, as views of one flat buffer --------------------------------

    @property
    def vocab_size(self) -> int:
        return len(self.chars)

    @property
    def params(self) -> Params:
        """``(Wxh, Whh, Why, bh, by)``: views of the trained weights (seeds' shapes)."""
        H, V = self.hidden_size, self.vocab_size
        shapes = ((H, V), (H, H), (V, H), (H, 1), (V, 1))
        out, start = [], 0
        for shape in shapes:
            size = shape[0] * shape[1]
            out.append(self._flat[start:start + size].reshape(shape))
            start += size
        return tuple(out)

    @property
    def hprev(self) -> np.ndarray:
        """Carried hidden state: (H, 1), or (B, H) for ``batch_size`` B > 1."""
        return self._hprev.reshape(-1, 1) if self.batch_size == 1 else self._hprev

    @property
    def num_threads(self):
        return self._num_threads

    @num_threads.setter
    def num_threads(self, value):
        self._num_threads = (_available_cores() if value is None
                             else check.integer(value, "num_threads", minimum=1))

    def __repr__(self):
        return (f"CharRNN(vocab_size={self.vocab_size}, hidden_size={self.hidden_size}, "
                f"seq_length={self.seq_length}, optimizer={self.optimizer!r}, "
                f"iteration={self.iteration}, smooth_loss={self.smooth_loss:.4f})")

    # -- training ------------------------------------------------------------------------

    def set_text(self, text: str) -> None:
        """Encode ``text`` with this model's vocabulary as the training data."""
        if not isinstance(text, str):
            raise ValueError(f"text must be a str, got {type(text).__name__}")
        need = self.batch_size * (self.seq_length + 1)
        if len(text) < need:
            raise ValueError(
                f"text has {len(text)} characters; training needs at least "
                + (f"seq_length + 1 = {need}" if self.batch_size == 1 else
                   f"batch_size * (seq_length + 1) = {need}"))
        data = _data.encode(text, self.chars)
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
        need = self.batch_size * (self.seq_length + 1)
        if indices.size < need:
            raise ValueError(
                f"indices has {indices.size} characters; training needs at least "
                + (f"seq_length + 1 = {need}" if self.batch_size == 1 else
                   f"batch_size * (seq_length + 1) = {need}"))
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
        if self.schedule is None or self.iteration == 0:
            self.schedule = schedule
        elif schedule != self.schedule:
            raise ValueError(f"this model was trained by {self.schedule}; continue the same way")
        if epochs is not None:
            total = check.integer(epochs, "epochs", minimum=0) * self.iterations_per_epoch()
        else:
            total = check.integer(num_iterations, "num_iterations", minimum=0)
        report_every = check.integer(report_every, "report_every", minimum=1)
        if callback is not None and not callable(callback):
            raise ValueError("callback must be callable")
        reporting = callback is not None or _log.isEnabledFor(logging.DEBUG)
        self._run(total, callback, report_every if reporting else max(total, 1))

    def _run(self, total, callback, chunk):
        H, V, T, dt = self.hidden_size, self.vocab_size, self.seq_length, self.dtype
        B = self.batch_size
        G = min(B, STREAMS_PER_GROUP)  # fixed by B alone: results don't depend on threads
        NG = -(-B // G)
        grads = np.empty((NG, self._flat.size), dt)
        hs, ps = np.empty((NG, (T + 1) * G * H), dt), np.empty((NG, T * G * V), dt)
        dh, dhnext = np.empty((NG, T * G * H), dt), np.empty((NG, G * H), dt)
        WhhT, WhyT = np.empty((H, H), dt), np.empty((H, V), dt)
        window, group_loss = np.empty((NG, 2 * T * G), np.int32), np.empty(NG)
        threads = min(self.num_threads, NG)
        act = check.ACTIVATIONS[self.activation]
        opt = check.OPTIMIZERS[self.optimizer]
        full = check.BPTT[self.bptt]
        wrap = 0 if self.schedule == "iterations" else 1
        beta2 = self.decay_rate if self.optimizer == "rmsprop" else self.beta2
        clip = check.clip_value(self.clip)
        left = total
        while left > 0:
            k = min(chunk, left)
            loss_out, smooth_out = self.history._reserve(k)
            (done, self.pointer, self.iteration, self.smooth_loss, wrapped,
             status) = _kernels.train_loop(
                self._data, self._flat, self._m1, self._m2, self._hprev, grads, hs, ps, dh,
                dhnext, WhhT, WhyT, window, group_loss, loss_out, smooth_out, H, V, T, G,
                self.pointer, self.iteration, self.smooth_loss, act, opt, full, wrap,
                self.reset_each_epoch, self.learning_rate, clip, self.beta1, beta2, self.eps,
                threads)
            self.history._size += done
            self.epoch += wrapped
            left -= done
            if status == 1:
                raise FloatingPointError(
                    f"training diverged: the loss became NaN or infinite at iteration "
                    f"{self.iteration}; the parameters are left as they were before it. "
                    f"Try a lower learning_rate (now {self.learning_rate}) or a clip.")
            if status == 2:
                raise FloatingPointError(
                    f"training diverged: the update of iteration {self.iteration} made "
                    f"parameters NaN or infinite, and this model can no longer be used. "
                    f"Start again (or from a checkpoint) with a lower learning_rate "
                    f"(now {self.learning_rate}) or a clip.")
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
        missing = sorted(set(prime) - set(self.char_to_ix))
        if missing:
            raise ValueError(f"prime has characters that are not in the vocabulary: "
                             f"{''.join(missing)!r}")
        return np.array([self.char_to_ix[c] for c in prime], np.int32)

    def _start(self, prime):
        """Hidden state and first input for sampling: warmed on ``prime`` if given."""
        if not prime:
            return self._hprev[0].copy(), None
        h = np.zeros(self.hidden_size, self.dtype)
        ix = self._encode_prime(prime)
        Wxh, Whh, _, bh, _ = self.params
        if ix.size > 1:
            _kernels.advance_hidden(h, ix[:-1], Wxh, Whh, bh.reshape(-1),
                                    np.empty_like(h), np.empty((self.hidden_size,) * 2, self.dtype),
                                    check.ACTIVATIONS[self.activation])
        return h, int(ix[-1])

    def _rng(self, seed):
        return self.rng if seed is None else check.random_state(seed, "seed")

    def generate(self, n: int, prime: Optional[str] = None, temperature: float = 1.0,
                 greedy: bool = False, top_k: Optional[int] = None, seed: RNG = None,
                 chunk: int = 256) -> Iterator[str]:
        """Yield ``n`` sampled characters one at a time, as they are sampled.

        Same arguments and the same characters as :meth:`sample` (sampled in the kernel
        ``chunk`` characters at a time). The arguments are checked here, when
        ``generate`` is called, not at the first ``next()``.
        """
        n = check.integer(n, "n", minimum=0)
        chunk = check.integer(chunk, "chunk", minimum=1)
        rng = self._rng(seed)
        options = dict(activation=self.activation, temperature=temperature, greedy=greedy,
                       top_k=top_k)
        with self._using("sample from this model"):
            h, x = self._start(prime)
            _sample(h.reshape(-1, 1), x, 0, self.params, rng, **options)  # checks only
        return self._stream(h, x, n, chunk, rng, options)

    def _stream(self, h, x, n, chunk, rng, options):
        left = n
        while left > 0:
            k = min(chunk, left)
            with self._using("sample from this model"):
                ixes, h = _sample(h.reshape(-1, 1), x, k, self.params, rng, **options)
            x = int(ixes[-1])
            left -= k
            for i in ixes:
                yield self.chars[i]

    def sample(self, n: int, prime: Optional[str] = None, temperature: float = 1.0,
               greedy: bool = False, top_k: Optional[int] = None, seed: RNG = None) -> str:
        """Sample ``n`` characters.

        Parameters
        ----------
        n : int
            Number of characters, >= 0.
        prime : str, optional
            Text to warm the hidden state on: starting from a zero state, its
            characters but the last are fed through the network and the last one is
            the first input. Without it, sampling starts, as in the seeds, from the
            hidden state that training carried (``hprev``), with an all-zero first
            input (seed 002).
        temperature : float > 0
        greedy : bool
            Always the most likely character (seed 000's "why not argmax").
        top_k : int, optional
            Draw only among the k most likely characters.
        seed : None, int or RandomState
            None continues the model's own RandomState (``model.rng``).

        Returns
        -------
        str
            The ``n`` new characters (not including ``prime``).
        """
        n = check.integer(n, "n", minimum=0)
        with self._using("sample from this model"):
            h, x = self._start(prime)
            ixes, _ = _sample(h.reshape(-1, 1), x, n, self.params, self._rng(seed),
                              activation=self.activation, temperature=temperature,
                              greedy=greedy, top_k=top_k)
        return _data.decode(ixes, self.chars)

    def save(self, path: Union[str, os.PathLike[str]]) -> None:
        """Write the model and its whole training state to one ``.npz`` checkpoint.

        See :func:`charrnn.checkpoint.save`; :func:`charrnn.load` reads it back.
        """
        from .checkpoint import save

        save(self, path)

    def evaluate(self, text: str) -> float:
        """Average loss per character (nats) of predicting ``text[1:]`` from ``text[:-1]``.

        The hidden state starts at zero. Divide by ``log(2)`` for bits per character.
        """
        ix = _data.encode(text, self.chars)
        if ix.size < 2:
            raise ValueError("text needs at least two characters to evaluate a prediction")
        Wxh, Whh, Why, bh, by = self.params
        h = np.zeros(self.hidden_size, self.dtype)
        with self._using("evaluate this model"):
            total = _kernels.evaluate(ix, h, Wxh, Whh, Why, bh.reshape(-1), by.reshape(-1),
                                      np.empty_like(h), np.empty(self.vocab_size, self.dtype),
                                      np.empty((self.hidden_size,) * 2, self.dtype),
                                      np.empty((self.hidden_size, self.vocab_size),
                                               self.dtype),
                                      check.ACTIVATIONS[self.activation])
        return total / (ix.size - 1)


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
        ``activation``, ``optimizer``, ``clip``, ``bptt``, ``reset_each_epoch``,
        ``dtype``, ``beta1``, ``beta2``, ``decay_rate``, ``eps``, ``batch_size``,
        ``num_threads``: see :class:`CharRNN`.

    Returns
    -------
    CharRNN
    """
    if num_iterations is None and epochs is None:
        num_iterations = 1000
    if isinstance(text, str):
        chars = _data.vocabulary(text)
    else:
        indices, chars = _data.as_encoded(text)
    model = CharRNN(chars, hidden_size, seq_length, learning_rate, seed=seed, **options)
    if isinstance(text, str):
        model.set_text(text)
    else:
        model.set_data(indices)
    return model.fit(num_iterations, epochs=epochs, callback=callback,
                     report_every=report_every)
