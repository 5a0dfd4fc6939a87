"""charrnn: character-level RNN language models (min-char-rnn, LSTM, GRU) on compiled kernels.

The API follows Karpathy's min-char-rnn:

- :func:`init_params`, :func:`lossFun`, :func:`sample`: the seeds' functions;
- :mod:`charrnn.steps`: seed 000's modular steps (``forward_propogation``,
  ``compute_cost``, ``backward_propogation``, ``update_parameters``, ...);
- :mod:`charrnn.datasets`: the shipped corpus (:func:`default_corpus`) and seed 004's
  synthetic sequences; :func:`preprocess`: seed 002's clean-up of a text;
- :func:`train`: the seeds' main loop, returning a :class:`CharRNN` (the seeds' vanilla
  RNN, or with ``cell="lstm" | "gru"``, ``num_layers``, ``dropout``, stacked layers);
  :func:`fine_tune`: the same from a trained model's weights, on a new text;
- :meth:`CharRNN.save` and :func:`load`: checkpoints (one ``.npz``, never unpickled);
- :mod:`charrnn.reference`: the same in plain numpy, the oracle of the tests;
- :func:`kernel_info`: which build of the kernels runs (AVX2 or portable, OpenMP).
"""
from ._dispatch import kernel_info
from ._version import __version__
from .core import init_params, lossFun, sample
from . import datasets, steps
from .data import default_corpus, preprocess
from .model import CharRNN, History, fine_tune, load, load_with_meta, train

__all__ = ["__version__", "init_params", "lossFun", "sample", "train", "fine_tune", "CharRNN",
           "History", "default_corpus", "preprocess", "datasets", "steps", "load",
           "load_with_meta", "kernel_info"]
