"""Learning-rate schedules: ``constant``, ``cosine`` (nanoGPT's) and ``step`` (char-rnn's).

The compiled training loops compute the learning rate of each update from its iteration
number alone (``lr_at`` in ``csrc/optim.pxi``), so a schedule is exact across ``fit``
calls, checkpoints and resumes. :func:`lr_at` here is the same formula in Python, with
the same operations in the same order (``math.cos`` and ``math.pow`` are the C library's
``cos`` and ``pow``), for the CLI's progress lines and for the tests.

For update ``n`` (0-based: the number of updates made before it):

- warmup, ``n < warmup_iters``: ``lr * (n + 1) / (warmup_iters + 1)``;
- ``constant``: ``lr``;
- ``cosine``: from ``lr`` down to ``min_lr`` along half a cosine between ``warmup_iters``
  and ``decay_iters``, then ``min_lr``;
- ``step``: ``lr * lr_decay ** floor((n - warmup_iters) / decay_every)``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

from . import _validate as check

__all__ = ["SCHEDULES", "Schedule", "lr_at"]

#: Codes shared with csrc/optim.pxi.
SCHEDULES = {"constant": 0, "cosine": 1, "step": 2}


@dataclass(frozen=True)
class Schedule:
    """A checked learning-rate schedule (see the module docstring).

    Parameters
    ----------
    learning_rate : float > 0
    lr_schedule : {"constant", "cosine", "step"}
    warmup_iters : int >= 0
    decay_iters : int, optional
        ``cosine`` only: the update at which the rate reaches ``min_lr``; must be
        greater than ``warmup_iters``. Required for ``cosine``.
    min_lr : float >= 0, optional
        ``cosine`` only: the final rate (default ``learning_rate / 10``, as nanoGPT).
    lr_decay : float in (0, 1]
        ``step`` only: the factor applied every ``decay_every`` updates (char-rnn: 0.97).
    decay_every : int >= 1
        ``step`` only.
    """

    learning_rate: float
    lr_schedule: str = "constant"
    warmup_iters: int = 0
    decay_iters: Optional[int] = None
    min_lr: Optional[float] = None
    lr_decay: float = 0.97
    decay_every: int = 1000

    def __post_init__(self):
        set_ = object.__setattr__
        set_(self, "learning_rate", check.real(self.learning_rate, "learning_rate",
                                               positive=True))
        check.choice(self.lr_schedule, "lr_schedule", SCHEDULES)
        set_(self, "warmup_iters", check.integer(self.warmup_iters, "warmup_iters", minimum=0))
        set_(self, "lr_decay", check.real(self.lr_decay, "lr_decay", positive=True))
        if self.lr_decay > 1:
            raise ValueError(f"lr_decay must be in (0, 1], got {self.lr_decay}")
        set_(self, "decay_every", check.integer(self.decay_every, "decay_every", minimum=1))
        if self.min_lr is not None:
            set_(self, "min_lr", check.real(self.min_lr, "min_lr", nonnegative=True))
        if self.decay_iters is not None:
            set_(self, "decay_iters", check.integer(self.decay_iters, "decay_iters", minimum=1))
        if self.lr_schedule == "cosine":
            if self.decay_iters is None:
                raise ValueError("lr_schedule='cosine' needs decay_iters (the update at which "
                                 "the rate reaches min_lr; train() uses num_iterations)")
            if self.decay_iters <= self.warmup_iters:
                raise ValueError(f"decay_iters ({self.decay_iters}) must be greater than "
                                 f"warmup_iters ({self.warmup_iters})")
            if self.min_lr is None:
                set_(self, "min_lr", self.learning_rate / 10)
            if self.min_lr > self.learning_rate:
                raise ValueError(f"min_lr ({self.min_lr}) must not exceed learning_rate "
                                 f"({self.learning_rate})")


def lr_at(n: int, learning_rate: float, lr_schedule: str = "constant", warmup_iters: int = 0,
          decay_iters: Optional[int] = None, min_lr: Optional[float] = None,
          lr_decay: float = 0.97, decay_every: int = 1000) -> float:
    """The learning rate of update ``n``, exactly as the compiled loops compute it."""
    lr = float(learning_rate)
    if n < warmup_iters:
        return lr * (n + 1) / (warmup_iters + 1)
    if lr_schedule == "constant":
        return lr
    if lr_schedule == "cosine":
        if decay_iters is None:
            raise ValueError("lr_schedule='cosine' needs decay_iters")
        low = lr / 10 if min_lr is None else float(min_lr)
        if n >= decay_iters:
            return low
        ratio = (n - warmup_iters) / (decay_iters - warmup_iters)
        return low + 0.5 * (1.0 + math.cos(math.pi * ratio)) * (lr - low)
    if lr_schedule == "step":
        return lr * math.pow(lr_decay, (n - warmup_iters) // decay_every)
    raise ValueError(f"lr_schedule must be one of {sorted(SCHEDULES)}, got {lr_schedule!r}")
