"""Vocabulary and encoding of texts into index arrays."""
import numpy as np

__all__ = ["vocabulary", "encode", "decode", "index_dtype", "default_corpus"]


def vocabulary(text):
    """The sorted list of distinct characters of ``text``.

    The seeds use ``list(set(data))``, whose order changes from one Python run to the
    next (string hashing is randomised); sorted order is the same everywhere, so a
    seed gives the same model on every machine.
    """
    if not isinstance(text, str):
        raise ValueError(f"text must be a str, got {type(text).__name__}")
    if not text:
        raise ValueError("text is empty; it needs at least one character")
    return sorted(set(text))


def index_dtype(vocab_size):
    """The smallest unsigned integer dtype that holds indices in [0, vocab_size)."""
    for dt in (np.uint8, np.uint16, np.uint32):
        if vocab_size - 1 <= np.iinfo(dt).max:
            return dt
    raise ValueError(f"vocabulary of {vocab_size} characters is too large")


def _codepoints(text):
    return np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)


def encode(text, chars):
    """``text`` as an array of indices into ``chars``, of the smallest dtype.

    Raises ValueError naming the characters of ``text`` that are not in ``chars``.
    """
    if not isinstance(text, str):
        raise ValueError(f"text must be a str, got {type(text).__name__}")
    table = _codepoints("".join(chars))
    order = np.argsort(table, kind="stable")
    cps = _codepoints(text)
    pos = np.minimum(np.searchsorted(table[order], cps), len(table) - 1)
    ix = order[pos]
    bad = table[ix] != cps
    if bad.any():
        missing = sorted(set(chr(c) for c in cps[bad]))
        raise ValueError(
            f"{len(missing)} character(s) are not in the vocabulary: {''.join(missing)!r}"
        )
    return ix.astype(index_dtype(len(chars)))


def decode(indices, chars):
    """The string of ``chars[i]`` for each index."""
    return "".join(chars[i] for i in indices)


def default_corpus():
    """The small text that ships with charrnn (100 kB of Shakespeare's plays)."""
    from importlib.resources import files

    return files("charrnn.corpus").joinpath("shakespeare.txt").read_text(encoding="utf-8")
