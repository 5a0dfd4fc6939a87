"""Texts to train on without a file: the shipped corpus and seed 004's synthetic sequences.

- :func:`shakespeare`: the 100 kB of Shakespeare's plays that ship with charrnn
  (``charrnn.default_corpus()`` is the same function); :func:`shakespeare_file` gives
  it as a file, for code that reads files.
- :func:`seed004`: seed 004's "ae / buu / ciii" sequences, the letter sequences
  Elman's simple recurrent network learns, made with the seed's recipe: ``size``
  symbols ``a``, of which ``b_draws`` positions drawn with replacement become ``b``
  and then ``c_draws`` positions become ``c`` (a ``c`` drawn over a ``b`` wins); then
  ``a`` is written ``ae``, ``b`` ``buu`` and ``c`` ``ciii``. With the seed's 10,000
  symbols and 3,000 draws of each, about 55% of the words are ``ae``, 19% ``buu`` and
  26% ``ciii``, about 27,100 characters. A model that has learnt them predicts every
  character but the first of each word exactly.

``SYNTHETIC`` maps the names ``charrnn train --synthetic NAME`` takes to the functions.
"""
from __future__ import annotations

import importlib.resources
import os
from typing import Callable, ContextManager, Dict, Optional, Union

import numpy as np

from . import _validate as check

__all__ = ["shakespeare", "shakespeare_file", "seed004", "SEED004_WORDS", "MAX_SYMBOLS",
           "SYNTHETIC"]

#: Seed 004's words, for the symbols 0, 1, 2 (a, b, c).
SEED004_WORDS = ("ae", "buu", "ciii")
#: Most symbols :func:`seed004` makes (up to 4 characters each: a 400 MB text).
MAX_SYMBOLS = 10**8


def _corpus():
    return importlib.resources.files("charrnn.corpus").joinpath("shakespeare.txt")


def shakespeare() -> str:
    """The small text that ships with charrnn (100 kB of Shakespeare's plays).

    Returns
    -------
    str
        The whole text (about 100,000 characters, 61 distinct), newlines as in the file.
    """
    return _corpus().read_text(encoding="utf-8")


def shakespeare_file() -> ContextManager[os.PathLike]:
    """The shipped corpus as a file on disk, for the length of a ``with`` block.

    Returns
    -------
    context manager giving a pathlib.Path
        Of the UTF-8 text file (a temporary copy if the package is not installed as
        files, e.g. from a zip).
    """
    return importlib.resources.as_file(_corpus())


def seed004(size: int = 10000, b_draws: Optional[int] = None, c_draws: Optional[int] = None,
            seed: Union[None, int, np.random.RandomState] = 0) -> str:
    """Seed 004's synthetic text: the words ``ae``, ``buu``, ``ciii`` in random order.

    The seed's recipe: an array of ``size`` symbols ``a``; ``b_draws`` positions drawn
    uniformly with replacement (``randint(0, size, b_draws)``) set to ``b``, then
    ``c_draws`` positions set to ``c``; each symbol written as its word. With the same
    RandomState (``seed=np.random.RandomState(s)``, or ``seed=s``) the text is the
    seed's own after ``np.random.seed(s)``, character for character.

    Parameters
    ----------
    size : int
        Number of words, 1 .. 10**8; the seed's 10,000.
    b_draws, c_draws : int, optional
        Positions drawn for ``b`` and for ``c`` (>= 0). Default: 30% of ``size`` each,
        the seed's 3,000, so that a larger text keeps the seed's proportions.
    seed : None, int or numpy.random.RandomState
        Source of the draws: an int seeds a new RandomState (the same text every time);
        None is numpy's global RandomState, as in the seed.

    Returns
    -------
    str
        Between ``2 * size`` and ``4 * size`` characters of ``a e b u c i``; the sorted
        vocabulary is ``['a', 'b', 'c', 'e', 'i', 'u']`` (fewer when a draw count is 0).
    """
    size = check.integer(size, "size", minimum=1)
    if size > MAX_SYMBOLS:
        raise ValueError(f"size must be <= {MAX_SYMBOLS:,} words (a text of up to 4 "
                         f"characters each), got {size:,}")
    default = size * 3 // 10
    b_draws = default if b_draws is None else check.integer(b_draws, "b_draws", minimum=0)
    c_draws = default if c_draws is None else check.integer(c_draws, "c_draws", minimum=0)
    for name, n in (("b_draws", b_draws), ("c_draws", c_draws)):
        if n > MAX_SYMBOLS:
            raise ValueError(f"{name} must be <= {MAX_SYMBOLS:,}, got {n:,}")
    rng = check.random_state(seed, "seed")
    symbols = np.zeros(size, np.uint8)
    symbols[rng.randint(0, size, b_draws)] = 1
    symbols[rng.randint(0, size, c_draws)] = 2
    # each word padded to 4 bytes with NULs, which are then dropped: one gather for all
    table = np.array([list(w.ljust(4, "\0").encode("ascii")) for w in SEED004_WORDS], np.uint8)
    letters = table[symbols].ravel()
    return letters[letters != 0].tobytes().decode("ascii")


#: ``charrnn train --synthetic NAME``: name -> the function making the text.
SYNTHETIC: Dict[str, Callable[..., str]] = {"seed004": seed004}
