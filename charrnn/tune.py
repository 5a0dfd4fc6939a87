"""Hyperparameter sweeps on Ray Tune: :func:`run` (Python) and ``charrnn tune`` (CLI).

One model of charrnn's size never needs more than one machine; the search for a good
one does. This module hands that search to Ray Tune, which runs the same sweep on a
laptop or on a Ray cluster. It needs the ``tune`` extra (``pip install
"charrnn-cython[tune]"``, which pulls ``ray[tune]``) and imports ray only when a sweep runs:
``import charrnn``, ``charrnn.cli`` and this module itself work without it.

Each trial is one :class:`~charrnn.CharRNN` over the same text, trained in chunks of
``report_every`` iterations. After each chunk it reports to Tune

- ``val_bits``: the validation loss, bits per character (the metric, minimised);
- ``chars_per_s``: training characters per second of that chunk;
- ``iteration``: the model's iteration count;
- ``restored_from``, ``restored_iteration``, ``restored_sha256``: the trial whose
  checkpoint this run of the trial started from, its iteration and the SHA-256 of
  its parameters (``""``, -1, ``""`` for a fresh start; the trial's own id after a
  pause; another trial's id after a PBT exploit);
- ``params_sha256``: SHA-256 of the parameters after the chunk (the bytes of
  ``model.params``, one array after the other),

with a checkpoint: charrnn's own ``.npz`` (:meth:`CharRNN.save`), passed through
Tune's checkpoint API. A trial that a scheduler pauses, or that Population Based
Training restarts from another trial's checkpoint with mutated hyperparameters,
loads that file and continues bit for bit as a direct ``charrnn.load`` and ``fit``
would.
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import inspect
import io
import json
import logging
import math
import numbers
import os
import shutil
import socket
import tempfile
import time
import warnings
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from . import checkpoint as _checkpoint
from . import data as _data
from .model import CharRNN, load_with_meta

__all__ = ["DEFAULT_SPACE", "OPTIONS", "MUTABLE", "SAMPLERS", "SCHEDULERS", "Sweep",
           "check_space", "run", "params_sha256", "format_table", "add_parser"]

#: What ``charrnn tune`` says when ray is missing.
NEEDS_RAY = ("charrnn tune needs Ray Tune: pip install 'charrnn-cython[tune]' "
             "(or pip install 'ray[tune]')")

#: Options a search space may set: :class:`CharRNN`'s keyword arguments (threads are
#: the sweep's ``threads``, a resource, not a hyperparameter).
OPTIONS = tuple(name for name in inspect.signature(CharRNN).parameters
                if name not in ("chars", "num_threads"))

#: Options that can change on a trained model (its settable attributes): the only
#: ones Population Based Training may mutate, since an exploited trial continues
#: from another trial's weights.
MUTABLE = ("learning_rate", "seq_length", "clip", "clip_norm", "optimizer", "bptt",
           "reset_each_epoch", "beta1", "beta2", "decay_rate", "eps", "lr_schedule",
           "warmup_iters", "decay_iters", "min_lr", "lr_decay", "decay_every", "reset_every")

#: The JSON form of a search space: an option's value is a constant, or one of these
#: as ``{"NAME": ARGUMENTS}``; ``ray.tune``'s function of the same name draws it.
SAMPLERS = {
    "choice": "a list of values, one drawn uniformly",
    "grid": "a list of values, each tried (times --num-samples)",
    "uniform": "[low, high], a float drawn uniformly",
    "loguniform": "[low, high] (both > 0), a float drawn uniformly in log space",
    "randint": "[low, high], an integer in [low, high)",
}

#: ``scheduler`` names: Ray Tune's ASHA early stopping, Population Based Training,
#: or none (every trial runs to the end).
SCHEDULERS = ("asha", "pbt", "fifo")

#: A space for a first sweep: the ``fast`` preset's family (Adam, float32, minibatches
#: of 16, a cosine schedule) over cell, size, depth, dropout and learning rate.
DEFAULT_SPACE: Dict[str, Any] = {
    "cell": {"choice": ["lstm", "gru"]},
    "hidden_size": {"choice": [128, 256]},
    "num_layers": {"choice": [1, 2]},
    "dropout": {"choice": [0.0, 0.1, 0.25]},
    "learning_rate": {"loguniform": [1e-3, 1e-2]},
    "optimizer": "adam",
    "dtype": "float32",
    "batch_size": 16,
    "seq_length": 50,
    "lr_schedule": "cosine",
}

#: A trial's checkpoint: this file in the folder handed to Tune.
CHECKPOINT_FILE = "model.npz"

# Options whose values only size the model: checked as integers, never by building one.
_SIZES = ("hidden_size", "num_layers", "batch_size", "seq_length")


# -- the search space -----------------------------------------------------------------------

def _check_value(name, value):
    """Check one value of an option as :class:`CharRNN` would (ValueError if not)."""
    if name in _SIZES:
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
            raise ValueError(f"must be an integer >= 1, got {value!r}")
        return
    options = {name: value}
    if name == "lr_schedule" and value == "cosine":
        options["decay_iters"] = 1  # the sweep fills it in (the trials' iterations)
    CharRNN(["a", "b"], 1, **options)  # its own checks, on a 1-unit model


def _check_sampler(name, kind, args):
    """Check ``{kind: args}`` for option ``name``; returns it in canonical form."""
    if kind in ("choice", "grid"):
        if not isinstance(args, (list, tuple)) or not args:
            raise ValueError(f"{kind} takes a non-empty list of values, got {args!r}")
        for value in args:
            _check_value(name, value)
        return {kind: list(args)}
    if not (isinstance(args, (list, tuple)) and len(args) == 2 and all(
            isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v)
            for v in args) and args[0] < args[1]):
        raise ValueError(f"{kind} takes [low, high], two finite numbers with low < high, "
                         f"got {args!r}")
    if kind == "loguniform" and args[0] <= 0:
        raise ValueError(f"loguniform needs low > 0, got {args!r}")
    if kind == "randint":
        if not all(isinstance(v, numbers.Integral) for v in args):
            raise ValueError(f"randint takes two integers, got {args!r}")
        _check_value(name, args[0])
        _check_value(name, args[1] - 1)
    else:
        _check_value(name, args[0])
        _check_value(name, args[1])
    return {kind: list(args)}


def _is_ray_domain(value):
    """A ``ray.tune`` sampler (``tune.choice(...)``), without importing ray."""
    return any(c.__module__.startswith("ray.tune") and c.__name__ == "Domain"
               for c in type(value).__mro__)


def check_space(space: Union[Mapping[str, Any], str, None]) -> Dict[str, Any]:
    """Check a search space; returns it as a dict (a copy).

    Parameters
    ----------
    space : mapping, str or None
        ``{option: value}`` for options of :class:`CharRNN` (see :data:`OPTIONS`).
        A value is a constant (the same in every trial), one of the :data:`SAMPLERS`
        as a one-entry dict (``{"loguniform": [1e-3, 1e-2]}``), Ray Tune's
        ``{"grid_search": [...]}``, or a ``ray.tune`` sampler object
        (``tune.loguniform(1e-3, 1e-2)``; these are passed on unchecked). A str is
        the same as JSON text, or the path of a ``.json`` file holding it. None:
        :data:`DEFAULT_SPACE`.

    Returns
    -------
    dict
        Constants and :data:`SAMPLERS` entries checked value by value (each value as
        the :class:`CharRNN` constructor checks it).

    Raises
    ------
    ValueError
        Naming the option and what was expected.
    """
    if space is None:
        space = DEFAULT_SPACE
    if isinstance(space, str):
        space = _read_space(space)
    if not isinstance(space, Mapping):
        raise ValueError(f"the search space must be a mapping of option names to values, "
                         f"got {type(space).__name__}")
    out = {}
    for name, value in space.items():
        if name not in OPTIONS:
            raise ValueError(f"the search space has {name!r}, which is not an option of "
                             f"charrnn.CharRNN; expected some of {', '.join(OPTIONS)}")
        try:
            if _is_ray_domain(value):
                out[name] = value
            elif isinstance(value, Mapping):
                if len(value) != 1:
                    raise ValueError(f"a sampler is one entry {{NAME: ARGUMENTS}}, got "
                                     f"{dict(value)!r}")
                (kind, args), = value.items()
                kind = "grid" if kind == "grid_search" else kind
                if kind not in SAMPLERS:
                    raise ValueError(f"unknown sampler {kind!r}; expected one of "
                                     f"{', '.join(SAMPLERS)}")
                out[name] = _check_sampler(name, kind, args)
            else:
                _check_value(name, value)
                out[name] = value
        except ValueError as e:
            raise ValueError(f"search space {name}: {e}") from None
    return out


def _read_space(text):
    """A space from JSON text, or from the JSON file ``text`` names."""
    stripped = text.lstrip()
    if not stripped.startswith("{"):
        try:
            with _data.open_regular(text) as f:
                text = f.read(1 << 20).decode("utf-8")
        except FileNotFoundError:
            raise ValueError(f"the search space {text!r} is neither JSON (an object in "
                             f"braces) nor an existing .json file") from None
        except UnicodeDecodeError:
            raise ValueError(f"{text}: the search space file is not UTF-8 text") from None
        except OSError as e:
            raise ValueError(f"cannot read the search space file {text}: "
                             f"{e.strerror or e}") from None
    try:
        return json.loads(text)
    except ValueError as e:
        raise ValueError(f"the search space is not valid JSON: {e}") from None


def _varying(space):
    """The options of a checked space that differ between trials."""
    return [name for name, value in space.items()
            if _is_ray_domain(value) or isinstance(value, Mapping)]


def _to_ray(space):
    """A checked space as Ray Tune's ``param_space``."""
    from ray import tune
    make = {"choice": tune.choice, "grid": tune.grid_search,
            "uniform": lambda a: tune.uniform(*a), "loguniform": lambda a: tune.loguniform(*a),
            "randint": lambda a: tune.randint(*a)}
    out = {}
    for name, value in space.items():
        if isinstance(value, Mapping):
            (kind, args), = value.items()
            value = make[kind](args)
        out[name] = value
    return out


def _largest(space, name, default):
    """The largest value an integer option takes in a checked space (ray samplers: its
    default, unchecked)."""
    value = space.get(name, default)
    if _is_ray_domain(value):
        return default
    if isinstance(value, Mapping):
        (kind, args), = value.items()
        return max(args) - (kind == "randint")
    return value


def _mutations(space):
    """PBT's ``hyperparam_mutations``: the varying options a trained model can change."""
    out = {}
    for name in _varying(space):
        if name not in MUTABLE:
            continue
        value = space[name]
        if isinstance(value, Mapping):
            (kind, args), = value.items()
            value = list(args) if kind in ("choice", "grid") else _to_ray({name: value})[name]
        out[name] = value
    return out


# -- one trial ------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class _Plan:
    """What every trial of a sweep shares (sent once to Ray's object store)."""

    chars: List[str]
    train: np.ndarray      # indices of the training text
    val: np.ndarray        # indices of the validation text
    iterations: int        # each trial's target
    report_every: int
    threads: int
    meta: Dict[str, Any]   # stored in every checkpoint


def _resolved(config, iterations):
    """A trial's CharRNN options: its config, a cosine's decay_iters filled in."""
    options = dict(config)
    if options.get("lr_schedule") == "cosine" and options.get("decay_iters") is None:
        options["decay_iters"] = iterations  # as charrnn.train: decay over the run
    return options


def params_sha256(model: CharRNN) -> str:
    """SHA-256 (hex) of a model's parameters: the bytes of ``model.params`` in order."""
    digest = hashlib.sha256()
    for p in model.params:
        digest.update(np.ascontiguousarray(p).tobytes())
    return digest.hexdigest()


def _restore(path, options):
    """A trial's model from checkpoint ``path``, with the config's options applied.

    Options that a trained model can change (:data:`MUTABLE`) are set; any other must
    equal the checkpoint's, which PBT guarantees by mutating only the former.
    """
    model, meta = load_with_meta(path)
    for name, value in options.items():
        if name in MUTABLE:
            setattr(model, name, value)
            continue
        have = model.dtype.name if name == "dtype" else getattr(model, name)
        if have != value:
            raise ValueError(f"checkpoint {path} has {name} = {have!r}, but the trial's "
                             f"config has {value!r}; only {', '.join(MUTABLE)} can change "
                             f"on a trained model")
    return model, meta.get("tune", {})


def _trial(config, plan):
    """Ray Tune's function trainable: train one model, reporting every chunk."""
    from ray import tune
    trial_id = tune.get_context().get_trial_id()
    options = _resolved(config, plan.iterations)
    checkpoint = tune.get_checkpoint()
    if checkpoint is None:
        model = CharRNN(plan.chars, **options)
        source, source_iteration, source_sha = "", -1, ""
    else:
        with checkpoint.as_directory() as folder:
            model, origin = _restore(os.path.join(folder, CHECKPOINT_FILE), options)
        source, source_iteration = origin.get("trial_id", ""), model.iteration
        source_sha = params_sha256(model)
    model.num_threads = plan.threads
    model.set_data(plan.train)
    chars_per_iteration = model.seq_length * model.batch_size
    meta = dict(plan.meta, tune={"trial_id": trial_id, "config": _jsonable(config)})

    def report(rate):
        val_bits = model.evaluate(plan.val) / math.log(2)
        if not model.history.val_iteration.size or \
                model.history.val_iteration[-1] != model.iteration:
            model.history.add_val_loss(model.iteration, val_bits)
        metrics = dict(val_bits=val_bits, chars_per_s=rate, iteration=model.iteration,
                       restored_from=source, restored_iteration=source_iteration,
                       restored_sha256=source_sha, params_sha256=params_sha256(model),
                       diverged=False)
        with tempfile.TemporaryDirectory(prefix="charrnn-tune-") as folder:
            _checkpoint.save(model, os.path.join(folder, CHECKPOINT_FILE), meta=meta)
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(folder))

    if model.iteration >= plan.iterations:
        report(0.0)  # PBT restarted this trial from a finished one: report where it is
    while model.iteration < plan.iterations:
        # chunks end on multiples of report_every, whatever a restore started from
        n = min(plan.report_every - model.iteration % plan.report_every,
                plan.iterations - model.iteration)
        t0 = time.perf_counter()
        try:
            model.fit(n)
        except FloatingPointError:
            tune.report(dict(val_bits=math.inf, chars_per_s=0.0, iteration=model.iteration,
                             restored_from=source, restored_iteration=source_iteration,
                             restored_sha256=source_sha, params_sha256="", diverged=True))
            return
        report(n * chars_per_iteration / max(time.perf_counter() - t0, 1e-9))


def _jsonable(config):
    """A config for a checkpoint's JSON meta (numpy scalars as Python numbers)."""
    return {k: v.item() if isinstance(v, np.generic) else v for k, v in config.items()}


# -- the sweep ------------------------------------------------------------------------------

@dataclasses.dataclass
class Sweep:
    """What :func:`run` returns.

    Attributes
    ----------
    path : str
        The experiment's folder: Ray Tune's records (``result.json``,
        ``progress.csv``, ``params.json`` and the checkpoints of each trial).
    best_path : str or None
        ``OUTPUT/best.npz``, the checkpoint with the lowest validation loss of the
        sweep (None if no trial reported one).
    best_val_bits : float
        Its validation loss, bits per character.
    best_trial : str
        The trial that reported it.
    best_config : dict
        That trial's config when it did.
    trials : list of dict
        One row per trial, best first: ``trial``, ``status`` (``done``, ``stopped``
        by the scheduler or the time budget, ``diverged``, ``error``), ``iteration``,
        ``val_bits`` (its best), ``chars_per_s`` (of its last chunk), ``config``.
    varying : list of str
        The options that differ between trials (the table's columns).
    wall_time : float
        Seconds from the start of the sweep to its end.
    results : ray.tune.ResultGrid
        Ray Tune's own result object.
    """

    path: str
    best_path: Optional[str]
    best_val_bits: float
    best_trial: str
    best_config: Dict[str, Any]
    trials: List[Dict[str, Any]]
    varying: List[str]
    wall_time: float
    results: Any = dataclasses.field(repr=False)

    def table(self) -> str:
        """The trials as a text table, best first."""
        return format_table(self.trials, self.varying)


def _cell(value):
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def format_table(trials: Sequence[Mapping[str, Any]], varying: Sequence[str]) -> str:
    """Rows of :attr:`Sweep.trials` as aligned text, one line each."""
    head = ["trial", "status", "iter", "best bits/char", "chars/s"] + list(varying)
    rows = [[t["trial"], t["status"], str(t["iteration"]),
             "-" if not math.isfinite(t["val_bits"]) else f"{t['val_bits']:.4f}",
             f"{t['chars_per_s']:,.0f}"] + [_cell(t["config"].get(k)) for k in varying]
            for t in trials]
    widths = [max(len(r[i]) for r in [head] + rows) for i in range(len(head))]
    right = {2, 3, 4}
    return "\n".join("  ".join(c.rjust(w) if i in right else c.ljust(w)
                               for i, (c, w) in enumerate(zip(r, widths))).rstrip()
                     for r in [head] + rows)


def _summary(results, iterations):
    """Rows of the trials, and the best (val_bits, checkpoint, trial, config)."""
    rows, best = [], (math.inf, None, "", {})
    for result in results:
        frame = result.metrics_dataframe
        if frame is None or frame.empty or "val_bits" not in frame:
            # no report (PBT's copy of another trial's last result is not this trial's)
            last, reported = {}, []
        else:
            last = frame.iloc[-1].to_dict()
            reported = [v for v in frame["val_bits"].tolist() if not math.isnan(v)]
        # Ray's logs of a trial that was paused may miss results; its checkpoints do not
        reported += [at["val_bits"] for _, at in result.best_checkpoints or []
                     if "val_bits" in at]
        trial = last.get("trial_id") or os.path.basename(result.path.rstrip("/"))
        iteration = int(last.get("iteration", 0))
        if result.error is not None:
            status = "error"
        elif last.get("diverged"):
            status = "diverged"
        else:
            status = "done" if iteration >= iterations else "stopped"
        rows.append(dict(trial=trial, status=status, iteration=iteration,
                         val_bits=min(reported, default=math.inf),
                         chars_per_s=float(last.get("chars_per_s", 0.0)),
                         config=dict(result.config or {}),
                         error=None if result.error is None else str(result.error)))
        for checkpoint, at in result.best_checkpoints or []:
            if at.get("val_bits", math.inf) < best[0]:
                best = (at["val_bits"], checkpoint, at.get("trial_id", trial),
                        dict(at.get("config") or {}))
    rows.sort(key=lambda r: (r["val_bits"], r["trial"]))
    return rows, best


def _copy_best(checkpoint, path):
    """Copy a checkpoint's ``.npz`` to ``path`` atomically (a temporary file, renamed)."""
    with checkpoint.as_directory() as folder:
        fd, tmp = tempfile.mkstemp(prefix=".best-", suffix=".npz", dir=os.path.dirname(path))
        try:
            with os.fdopen(fd, "wb") as out, open(os.path.join(folder, CHECKPOINT_FILE),
                                                   "rb") as src:
                shutil.copyfileobj(src, out)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise


def _split(text, val_frac):
    """``(chars, train indices, validation indices)`` of a text and a fraction."""
    if isinstance(text, str):
        chars = _data.vocabulary(text)
        indices = _data.encode(text, chars)
    else:
        indices, chars = _data.as_encoded(text)
    if not (isinstance(val_frac, numbers.Real) and 0 < val_frac < 1):
        raise ValueError(f"val_frac must be in (0, 1): a sweep compares trials by their "
                         f"validation loss; got {val_frac!r}")
    n_val = int(round(indices.size * val_frac))
    if n_val < 2:
        raise ValueError(f"val_frac {val_frac} holds out {n_val} of {indices.size} "
                         f"characters; validation needs at least 2 (a larger fraction "
                         f"or a longer text)")
    cut = indices.size - n_val
    train = np.ascontiguousarray(indices[:cut])
    val = np.ascontiguousarray(indices[cut:])
    return list(chars), train, val


def _check_reachable(address):
    """Refuse a ``HOST:PORT`` nothing listens on: Ray would keep trying for minutes."""
    if address is None or "://" in address or ":" not in address:
        return  # "auto", "local", a ray:// client address: Ray's own checks
    host, _, port = address.rpartition(":")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=10).close()
    except ValueError:
        raise ValueError(f"address {address!r} is not HOST:PORT (or 'auto')") from None
    except OSError as e:
        raise ConnectionError(f"cannot reach a Ray cluster at {address}: "
                              f"{e.strerror or e}") from None


def _positive(value, name):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return int(value)


def run(text: Union[str, Tuple[np.ndarray, Sequence[str]]],
        space: Union[Mapping[str, Any], str, None] = None, *, num_samples: int = 8,
        iterations: int = 2000, report_every: int = 200, val_frac: float = 0.05,
        scheduler: str = "asha", time_budget: Optional[float] = None, threads: int = 1,
        address: Optional[str] = None, num_cpus: Optional[int] = None,
        output: Union[str, os.PathLike[str]] = "charrnn-tune", name: Optional[str] = None,
        keep_checkpoints: Optional[int] = None, perturbation_interval: Optional[int] = None,
        meta: Optional[Mapping[str, Any]] = None,
        progress: Optional[Callable[[Dict[str, Any]], Any]] = None, verbose: int = 0) -> Sweep:
    """Search hyperparameters with Ray Tune; copy the best checkpoint to ``OUTPUT/best.npz``.

    Parameters
    ----------
    text : str or EncodedText
        As :func:`charrnn.train`'s: a str, or ``(indices, chars)``. Its last
        ``val_frac`` is held out for validation, as ``charrnn train --val-frac``.
    space : mapping, str or None
        The search space, see :func:`check_space` (default :data:`DEFAULT_SPACE`).
    num_samples : int
        Trials drawn from the space (each grid point this many times).
    iterations : int
        Each trial's training iterations (the most a trial runs).
    report_every : int
        Iterations per chunk: a trial reports, checkpoints and can be stopped,
        paused or exploited after each.
    val_frac : float in (0, 1)
    scheduler : {"asha", "pbt", "fifo"}
        ``"asha"``: stop poor trials early (``grace_period`` a quarter of the
        reports, ``reduction_factor`` 2); ``"pbt"``: Population Based Training, every
        ``perturbation_interval`` reports the worst quarter continues from the best
        quarter's checkpoints with mutated hyperparameters (only options in
        :data:`MUTABLE` that vary in the space are mutated); ``"fifo"``: every trial
        runs to the end.
    time_budget : float, optional
        Wall-clock seconds for the whole sweep; then running trials are stopped.
    threads : int
        Threads each trial trains on, and the CPUs it asks Ray for, so that trials
        never oversubscribe the cores.
    address : str, optional
        A running Ray cluster to join (``"auto"``, or ``"HOST:PORT"``). Default: a
        local Ray instance, started and stopped here (unless this process has
        already called ``ray.init``, which is then used).
    num_cpus : int, optional
        CPUs of the local instance (default: every core); not with ``address``.
    output : path
        Ray Tune's storage path (on a cluster: a folder every node mounts); the
        experiment is ``OUTPUT/NAME`` and the best checkpoint ``OUTPUT/best.npz``.
    name : str, optional
        The experiment's name (default ``sweep-YYYYmmdd-HHMMSS``).
    keep_checkpoints : int, optional
        Checkpoints kept per trial, the best by validation loss (Ray keeps the latest
        as well). Default: all with ``"pbt"`` (an exploit copies a checkpoint another
        trial may have moved past), 1 otherwise.
    perturbation_interval : int, optional
        PBT: reports between perturbations (default: a fifth of the reports, at
        least 1).
    meta : mapping, optional
        JSON-serialisable; stored in every checkpoint's ``meta`` (``charrnn tune``
        keeps the text options there, as ``charrnn train`` does).
    progress : callable, optional
        Called in this process as ``progress(result)`` with each result a trial
        reports (``trial_id``, ``iteration``, ``val_bits``, ``chars_per_s``,
        ``restored_from``, ...; see the module's description).
    verbose : int
        Ray Tune's own progress output: 0 (none), 1, 2.

    Returns
    -------
    Sweep

    Raises
    ------
    ImportError
        If ray is not installed (``pip install "charrnn-cython[tune]"``).
    ValueError
        For a bad argument or search space, before anything starts.
    RuntimeError
        If no trial reported a validation loss (the first trial error is quoted).
    """
    space = check_space(space)
    num_samples = _positive(num_samples, "num_samples")
    iterations = _positive(iterations, "iterations")
    report_every = _positive(report_every, "report_every")
    threads = _positive(threads, "threads")
    if scheduler not in SCHEDULERS:
        raise ValueError(f"scheduler must be one of {', '.join(SCHEDULERS)}, got {scheduler!r}")
    if time_budget is not None and not (isinstance(time_budget, numbers.Real)
                                        and math.isfinite(time_budget) and time_budget > 0):
        raise ValueError(f"time_budget must be a finite number of seconds > 0, got "
                         f"{time_budget!r}")
    if num_cpus is not None:
        num_cpus = _positive(num_cpus, "num_cpus")
        if address is not None:
            raise ValueError("num_cpus sizes a local Ray instance; a cluster (address) "
                             "has its own")
    if keep_checkpoints is not None:
        keep_checkpoints = _positive(keep_checkpoints, "keep_checkpoints")
    reports = -(-iterations // report_every)
    if perturbation_interval is None:
        perturbation_interval = max(1, reports // 5)
    perturbation_interval = _positive(perturbation_interval, "perturbation_interval")
    if scheduler == "pbt" and not _mutations_possible(space):
        raise ValueError(f"PBT mutates options that vary in the search space and that a "
                         f"trained model can change ({', '.join(MUTABLE)}); the space "
                         f"varies none of them")
    meta = dict(meta or {})
    json.dumps(meta)  # refuses what a checkpoint could not hold, before any trial runs
    chars, train, val = _split(text, val_frac)
    B, T = _largest(space, "batch_size", 1), _largest(space, "seq_length", 25)
    if train.size < B * (T + 1):
        raise ValueError(f"the training text has {train.size:,} characters (after the "
                         f"validation split); the space's batch_size {B} and seq_length "
                         f"{T} need at least batch_size * (seq_length + 1) = {B * (T + 1)}")
    output = os.path.abspath(os.fspath(output))
    os.makedirs(output, exist_ok=True)
    best_path = os.path.join(output, "best.npz")
    name = name or time.strftime("sweep-%Y%m%d-%H%M%S")
    meta = dict(meta, val_frac=float(val_frac), eval_every=report_every,
                target={"iterations": iterations})

    import ray
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler, PopulationBasedTraining

    if scheduler == "asha":
        chosen = ASHAScheduler(time_attr="training_iteration", max_t=reports,
                               grace_period=max(1, reports // 4), reduction_factor=2)
    elif scheduler == "pbt":
        chosen = PopulationBasedTraining(time_attr="training_iteration",
                                         perturbation_interval=perturbation_interval,
                                         hyperparam_mutations=_mutations(space))
    else:
        chosen = None
    if keep_checkpoints is None and scheduler != "pbt":
        keep_checkpoints = 1
    started = not ray.is_initialized()
    t_start = time.perf_counter()
    if started:
        _check_reachable(address)
        ray.init(address=address, num_cpus=num_cpus, include_dashboard=False,
                 logging_level=logging.WARNING if verbose else logging.ERROR,
                 log_to_driver=verbose > 0)
    try:
        plan = _Plan(chars=chars, train=train, val=val, iterations=iterations,
                     report_every=report_every, threads=threads, meta=meta)
        trainable = tune.with_resources(tune.with_parameters(_trial, plan=plan),
                                        {"cpu": threads})
        tuner = tune.Tuner(
            trainable, param_space=_to_ray(space),
            tune_config=tune.TuneConfig(metric="val_bits", mode="min", scheduler=chosen,
                                        num_samples=num_samples, time_budget_s=time_budget),
            run_config=tune.RunConfig(
                name=name, storage_path=output, verbose=verbose,
                stop={"iteration": iterations},  # before PBT can restart a finished trial
                callbacks=[] if progress is None else [_progress_callback(progress)],
                checkpoint_config=tune.CheckpointConfig(
                    num_to_keep=keep_checkpoints, checkpoint_score_attribute="val_bits",
                    checkpoint_score_order="min")))
        with _quiet_ray(verbose):
            results = tuner.fit()
        rows, (best_bits, best_checkpoint, best_trial, best_config) = \
            _summary(results, iterations)
        if best_checkpoint is None:
            errors = [r["error"] for r in rows if r["error"]]
            diverged = sum(r["status"] == "diverged" for r in rows)
            raise RuntimeError("no trial reported a validation loss" + (
                f"; the first error: {errors[0].strip().splitlines()[-1]}" if errors else
                f"; {diverged} of {len(rows)} trials diverged (try lower learning rates, "
                f"or clip)" if diverged else ""))
        _copy_best(best_checkpoint, best_path)
    finally:
        if started:
            ray.shutdown()
    return Sweep(path=os.path.join(output, name), best_path=best_path,
                 best_val_bits=best_bits, best_trial=best_trial, best_config=best_config,
                 trials=rows, varying=_varying(space),
                 wall_time=time.perf_counter() - t_start, results=results)


def _progress_callback(progress):
    """A Ray Tune callback that hands each reported result to ``progress``."""
    from ray import tune

    class Progress(tune.Callback):
        def __init__(self, progress):
            self.progress = progress

        def on_trial_result(self, iteration, trials, trial, result, **info):
            if self.progress is not None:
                self.progress(dict(result, trial_id=trial.trial_id))

        def __getstate__(self):
            # Ray Tune pickles its callbacks with the experiment (tuner.pkl); the
            # function (a terminal, a closure) stays in this process
            return {"progress": None}

    return Progress(progress)


class _NoiseFilter(logging.Filter):
    """Ray Tune's warnings that say nothing about a charrnn sweep."""

    NOISE = ("Experiment state snapshotting",  # every report keeps only the best checkpoint
             "Remote file not found")  # a restored trial's log, not yet synced: it continues

    def filter(self, record):
        return not str(record.msg).startswith(self.NOISE)


@contextlib.contextmanager
def _quiet_ray(verbose):
    """Ray Tune's run without its noise; with ``verbose=0`` without its printing too
    (it prints the experiment's configuration whatever its verbosity)."""
    loggers = [logging.getLogger(name) for name in ("ray.tune.execution.experiment_state",
                                                    "ray.tune.logger.logger")]
    noise = _NoiseFilter()
    with contextlib.ExitStack() as stack:
        for logger in loggers:
            logger.addFilter(noise)
            stack.callback(logger.removeFilter, noise)
        if not verbose:
            stack.enter_context(contextlib.redirect_stdout(io.StringIO()))
        # a function trainable has no reset_config; a restart costs little beside a chunk
        stack.enter_context(warnings.catch_warnings())
        warnings.filterwarnings("ignore", "Consider boosting PBT performance")
        yield


def _mutations_possible(space):
    return any(name in MUTABLE for name in _varying(space))


# -- charrnn tune ---------------------------------------------------------------------------

def add_parser(sub):
    """Add the ``tune`` command to the subparsers ``sub`` of ``charrnn``'s parser."""
    from ._cliutil import argument, text_file_argument
    positive = argument(int, "an integer", lambda v: v >= 1, ">= 1")
    seconds = argument(float, "a number", lambda v: math.isfinite(v) and v > 0,
                       "a finite number > 0")
    fraction = argument(float, "a number", lambda v: 0 < v < 1, "in (0, 1)")
    p = sub.add_parser(
        "tune", help="search hyperparameters with Ray Tune (needs charrnn-cython[tune])",
        description="Search hyperparameters on Ray Tune: trials drawn from a search space "
                    "train on FILE in chunks, report their validation loss (bits/char) "
                    "and checkpoint through Tune, so ASHA stops poor trials and PBT "
                    "copies good ones exactly. Prints a table of the trials and copies "
                    "the best checkpoint to OUTPUT/best.npz. Runs on a local Ray "
                    "instance, or on a cluster with --address. Needs Ray Tune: pip "
                    "install 'charrnn-cython[tune]'. Defaults in [brackets].")
    text_file_argument(p)
    s = p.add_argument_group("the search")
    s.add_argument("--space", metavar="JSON",
                   help="search space: JSON, or a .json file, mapping options of charrnn "
                        "train (Python names: hidden_size, learning_rate, cell, ...) to a "
                        "constant or to one of " + "; ".join(
                            f'{{"{k}": {v}}}' for k, v in SAMPLERS.items())
                        + " [" + json.dumps(DEFAULT_SPACE) + "]")
    s.add_argument("--num-samples", metavar="N", type=positive, default=8,
                   help="trials drawn from the space [%(default)s]")
    s.add_argument("--scheduler", choices=SCHEDULERS, default="asha",
                   help="asha: stop poor trials early; pbt: Population Based Training "
                        "(mutates the varying options a trained model can change, e.g. "
                        "learning_rate); fifo: run every trial to the end [%(default)s]")
    s.add_argument("--iterations", metavar="N", type=positive, default=2000,
                   help="training iterations of each trial [%(default)s]")
    s.add_argument("--report-every", metavar="N", type=positive, default=200,
                   help="iterations between a trial's reports and checkpoints [%(default)s]")
    s.add_argument("--perturbation-interval", metavar="N", type=positive,
                   help="pbt: reports between perturbations [a fifth of the reports]")
    s.add_argument("--time-budget", metavar="SECONDS", type=seconds,
                   help="stop the whole sweep after this wall-clock time [none]")
    s.add_argument("--val-frac", metavar="FRAC", type=fraction, default=0.05,
                   help="hold out this fraction of the end of the text for validation "
                        "[%(default)s]")
    r = p.add_argument_group("where it runs")
    r.add_argument("--threads", metavar="N", type=positive, default=1,
                   help="threads per trial, and the CPUs it asks Ray for [%(default)s]")
    r.add_argument("--address", metavar="ADDR",
                   help="join a running Ray cluster ('auto' on a node of it, or HOST:PORT) "
                        "[start a local instance]")
    r.add_argument("--num-cpus", metavar="N", type=positive,
                   help="CPUs of the local instance [every core]")
    r.add_argument("--output", metavar="DIR", default="charrnn-tune",
                   help="Ray Tune's storage path, on a cluster a folder every node mounts; "
                        "DIR/best.npz is the best checkpoint [%(default)s]")
    r.add_argument("--name", help="the experiment's folder in DIR [sweep-DATE-TIME]")
    r.add_argument("--quiet", action="store_true", help="print nothing but errors")
    t = p.add_argument_group("text")
    t.add_argument("--encoding", metavar="ENC", help="encoding of FILE [utf-8]")
    t.add_argument("--bytes", action="store_const", const=True,
                   help="train on raw bytes: the vocabulary is byte values")
    t.add_argument("--lower", action="store_const", const=True, help="lower-case the text")
    t.add_argument("--strip-digits", action="store_const", const=True, help="remove digits")
    t.add_argument("--drop-chars", metavar="CHARS", help="remove these characters")
    p.set_defaults(func=_cmd_tune)


def _cmd_tune(args):
    from . import cli
    from ._cliutil import CLIError, check_output
    from ._version import __version__
    try:
        from ray import tune
    except ImportError:
        raise CLIError(NEEDS_RAY) from None
    console = cli.Console(args.quiet)
    if args.num_cpus is not None and args.address is not None:
        raise CLIError("--num-cpus sizes a local Ray instance; leave it out with --address "
                       "(a cluster has the CPUs of its nodes)")
    space = check_space(args.space)
    options = cli._text_options(args)
    output = os.path.abspath(args.output)
    if os.path.lexists(output) and not os.path.isdir(output):
        raise CLIError(f"--output {args.output} is not a folder")
    with contextlib.ExitStack() as stack:
        if args.file is None:
            path, name = os.fspath(stack.enter_context(cli._corpus())), "the shipped corpus"
        else:
            path = name = args.file
        if os.path.isdir(output):
            check_output(os.path.join(output, "best.npz"), "checkpoint",
                         [("the training text", path)])
        scan = cli.scan_text(path, options, name)
        if scan.length == 0:
            raise CLIError("the text is empty (after preprocessing)")
        cli.validation_size(scan.length, args.val_frac)
        indices = cli.encode_text(path, options, name, scan.chars, scan)
    meta = dict(options, text_sha256=scan.sha256, version=__version__,
                source=None if args.file is None else os.path.abspath(args.file))
    t_start = time.perf_counter()
    best = [math.inf, ""]

    def progress(result):
        trial, val = result["trial_id"], result["val_bits"]
        if val < best[0]:
            best[:] = val, trial
        came = result.get("restored_from")
        came = f" | from {came} at {result['restored_iteration']}" \
            if came and came != trial else ""
        shown = "diverged" if result.get("diverged") else f"val {val:.4f} bits/char"
        console.progress(
            f"{trial} iter {result['iteration']}/{args.iterations} | {shown} | "
            f"{result['chars_per_s']:,.0f} chars/s{came} | best {best[0]:.4f} ({best[1]}) | "
            f"{cli._clock(time.perf_counter() - t_start)}")

    try:
        sweep = run((indices, scan.chars), space, num_samples=args.num_samples,
                    iterations=args.iterations, report_every=args.report_every,
                    val_frac=args.val_frac, scheduler=args.scheduler,
                    time_budget=args.time_budget, threads=args.threads, address=args.address,
                    num_cpus=args.num_cpus, output=output, name=args.name,
                    perturbation_interval=args.perturbation_interval, meta=meta,
                    progress=progress)
    except (RuntimeError, tune.TuneError) as e:
        raise CLIError(f"the sweep failed: {e}") from None
    console.end_line()
    console.print(f"{len(sweep.trials)} trials in {sweep.wall_time:.1f} s ({args.scheduler}), "
                  f"Ray Tune's records in {sweep.path}")
    console.print(sweep.table())
    console.print(f"best: trial {sweep.best_trial}, {sweep.best_val_bits:.4f} bits/char; "
                  f"saved {sweep.best_path}")
    return 0
