"""Vocabulary and encoding of texts into index arrays.

Texts that fit in memory go through :func:`vocabulary` and :func:`encode`. Files of any
size go through :func:`scan_vocabulary` and :func:`encode_file`, which read them in
chunks with bounded memory (no ``str`` of the whole file) and can write the indices
into a ``numpy.memmap``; :func:`charrnn.train` takes the resulting :class:`EncodedText`.
"""
import codecs
import os
from typing import NamedTuple

import numpy as np

__all__ = ["vocabulary", "encode", "decode", "index_dtype", "default_corpus",
           "EncodedText", "scan_vocabulary", "encode_file", "as_encoded"]

#: Bytes read per chunk by the file functions: large enough that numpy's per-call
#: overhead vanishes, small enough that a chunk's temporaries (about 13 bytes per
#: character: its str, UTF-32 code points, bincount's intp copy) are reused by the
#: allocator instead of being mapped afresh. On a 100 MB file: 1 MiB chunks 275 MB/s,
#: 4 MiB 137 MB/s, 8 MiB 108 MB/s (the difference is page-fault time).
CHUNK_BYTES = 1 << 20

_N_CODEPOINTS = 0x110000  # every Unicode code point, U+0000 .. U+10FFFF


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
    chars = list(chars)
    if not chars:
        raise ValueError("chars is empty; the vocabulary needs at least one character")
    if not all(isinstance(c, str) and len(c) == 1 for c in chars):
        raise ValueError("chars must be single characters")
    table = _codepoints("".join(chars))
    cps = _codepoints(text)
    # a lookup table over code points (at most 0x110000 entries): one gather per character
    top = max(int(table.max()), int(cps.max()) if cps.size else 0)
    lut = np.full(top + 1, -1, np.int64)
    lut[table] = np.arange(len(table))
    ix = lut[cps]
    bad = ix < 0
    if bad.any():
        missing = sorted(set(chr(c) for c in cps[bad]))
        raise ValueError(
            f"{len(missing)} character(s) are not in the vocabulary: {''.join(missing)!r}"
        )
    return ix.astype(index_dtype(len(chars)))


def decode(indices, chars):
    """The string of ``chars[i]`` for each index (IndexError outside ``[0, len(chars))``)."""
    ix = np.asarray(indices)
    if ix.size == 0:
        return ""
    if ix.ndim != 1 or ix.dtype.kind not in "iu":
        raise ValueError(f"indices must be a 1-D sequence of integers, got {ix.dtype} "
                         f"of shape {ix.shape}")
    V = len(chars)
    bad = np.flatnonzero((ix < 0) | (ix >= V))  # a negative index would count from the end
    if bad.size:
        k = int(bad[0])
        raise IndexError(f"indices[{k}] = {ix[k]} is outside the vocabulary [0, {V})")
    return "".join([chars[i] for i in ix.tolist()])


class EncodedText(NamedTuple):
    """A text as indices into its vocabulary: what :func:`encode_file` returns.

    :func:`charrnn.train` takes one instead of a ``str``; so does any ``(indices,
    chars)`` pair.

    Attributes
    ----------
    indices : ndarray or numpy.memmap, shape (N,), dtype uint8, uint16 or uint32
        ``indices[i]`` is the index in ``chars`` of the text's i-th character.
    chars : list of str
        The vocabulary, one character each.
    """
    indices: np.ndarray
    chars: list


def as_encoded(encoded):
    """``(indices, chars)`` checked: a 1-D unsigned index array and a list of characters.

    The array is returned as it is (a ``numpy.memmap`` stays one, nothing is copied);
    the range of the indices is checked by :meth:`CharRNN.set_data`.
    """
    if not isinstance(encoded, tuple) or len(encoded) != 2:
        raise ValueError(
            f"text must be a str, or an encoded text: an EncodedText or an (indices, chars) "
            f"pair; got {type(encoded).__name__}")
    indices, chars = encoded
    if not isinstance(indices, np.ndarray):
        raise ValueError(f"indices must be a numpy array, got {type(indices).__name__}")
    if isinstance(chars, str):
        chars = list(chars)
    return EncodedText(indices, list(chars))


def _read_chunks(path, encoding, chunk_bytes):
    """Decoded pieces of the file, in order, without ever holding all of it.

    A multi-byte character split between two reads is kept by the incremental
    decoder until its last byte arrives. Invalid input raises ValueError with the
    byte offset in the file.
    """
    chunk_bytes = int(chunk_bytes)
    if chunk_bytes < 1:
        raise ValueError(f"chunk_bytes must be >= 1, got {chunk_bytes}")
    decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
    start = 0  # file offset of the next read
    with open(path, "rb") as f:
        while True:
            raw = f.read(chunk_bytes)
            final = not raw
            pending = len(decoder.getstate()[0])  # bytes kept from the last read
            try:
                piece = decoder.decode(raw, final=final)
            except UnicodeDecodeError as e:
                # e.object is the kept bytes followed by this read
                offset = start - pending + e.start
                raise ValueError(
                    f"{os.fspath(path)} is not valid {encoding}: {e.reason} at byte offset "
                    f"{offset} (byte {e.object[e.start:e.start + 1].hex()})") from None
            if piece:
                yield piece
            if final:
                return
            start += len(raw)


def _code_points(piece):
    # surrogatepass: a decoder that lets lone surrogates through (utf-8 does not)
    return np.frombuffer(piece.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)


def _scan(path, encoding, chunk_bytes):
    """Which code points the file holds, and how many characters it has."""
    present = np.zeros(_N_CODEPOINTS, dtype=bool)
    n = 0
    for piece in _read_chunks(path, encoding, chunk_bytes):
        counts = np.bincount(_code_points(piece))
        present[: counts.size] |= counts > 0
        n += len(piece)
    return present, n


def scan_vocabulary(path, encoding="utf-8", chunk_bytes=CHUNK_BYTES):
    """The sorted list of distinct characters of a text file, read in chunks.

    Same result as ``vocabulary(open(path, encoding=encoding, newline="").read())``
    with memory bounded by the chunk size, whatever the size of the file.

    Parameters
    ----------
    path : str or os.PathLike
    encoding : str
        Any encoding with an incremental decoder; byte offsets in error messages are
        exact for UTF-8.
    chunk_bytes : int
        Bytes read at a time.

    Returns
    -------
    list of str

    Raises
    ------
    ValueError
        If the file is empty, or not valid in ``encoding`` (the message gives the
        byte offset of the first bad byte).
    """
    present, n = _scan(path, encoding, chunk_bytes)
    if n == 0:
        raise ValueError(f"{os.fspath(path)} is empty; it needs at least one character")
    return [chr(c) for c in np.flatnonzero(present)]


def _output(out, n, dt):
    """The array the indices are written to: given, created as a memmap, or in memory."""
    if out is None:
        return np.empty(n, dtype=dt)
    if isinstance(out, (str, os.PathLike)):
        return np.lib.format.open_memmap(out, mode="w+", dtype=dt, shape=(n,))
    if not isinstance(out, np.ndarray):
        raise ValueError(f"out must be None, a path or a numpy array, got {type(out).__name__}")
    if out.shape != (n,):
        raise ValueError(f"out must have shape ({n},) for this file, got {out.shape}")
    if out.dtype.kind != "u" or out.dtype.itemsize < np.dtype(dt).itemsize:
        raise ValueError(f"out must have an unsigned dtype holding {np.dtype(dt).name} "
                         f"indices, got {out.dtype}")
    if not out.flags.c_contiguous or not out.flags.writeable:
        raise ValueError("out must be C-contiguous and writeable")
    return out


def encode_file(path, chars=None, out=None, encoding="utf-8", chunk_bytes=CHUNK_BYTES):
    """Encode a text file of any size into character indices, in chunks.

    The file is read twice, ``chunk_bytes`` at a time: once to find its length and
    characters, once to write the indices. Newlines are kept as they are in the file
    (as ``open(..., newline="")`` reads them). Memory beyond the output array is a few
    times the chunk size.

    Parameters
    ----------
    path : str or os.PathLike
        The text file.
    chars : sequence of str, optional
        The vocabulary; default ``scan_vocabulary(path)``, the file's sorted distinct
        characters.
    out : None, str, os.PathLike or ndarray, optional
        Where the indices go. None: a new array in memory. A path: a new ``.npy`` file
        opened as a ``numpy.memmap`` (``np.load(path, mmap_mode="r")`` opens it again).
        An array (e.g. a ``numpy.memmap``): 1-D, C-contiguous, writeable, of the file's
        length in characters and an unsigned dtype wide enough.
    encoding : str
    chunk_bytes : int

    Returns
    -------
    EncodedText
        ``(indices, chars)``: indices of shape (N,) and dtype ``index_dtype(len(chars))``
        (or ``out``'s), ready for :func:`charrnn.train`.

    Raises
    ------
    ValueError
        If the file is empty or not valid in ``encoding`` (with the byte offset), or
        has characters that are not in ``chars``.
    """
    present, n = _scan(path, encoding, chunk_bytes)
    if n == 0:
        raise ValueError(f"{os.fspath(path)} is empty; it needs at least one character")
    if chars is None:
        chars = [chr(c) for c in np.flatnonzero(present)]
    else:
        chars = list(chars)
        if not chars or not all(isinstance(c, str) and len(c) == 1 for c in chars):
            raise ValueError("chars must be a non-empty sequence of single characters")
        known = np.zeros(_N_CODEPOINTS, dtype=bool)
        known[[ord(c) for c in chars]] = True
        missing = np.flatnonzero(present & ~known)
        if missing.size:
            shown = "".join(chr(c) for c in missing[:50])
            raise ValueError(f"{missing.size} character(s) of {os.fspath(path)} are not in "
                             f"the vocabulary: {shown!r}")
    dt = index_dtype(len(chars))
    indices = _output(out, n, dt)
    lut = np.zeros(_N_CODEPOINTS, dtype=indices.dtype)  # code point -> index
    lut[[ord(c) for c in chars]] = np.arange(len(chars), dtype=indices.dtype)
    pos = 0
    for piece in _read_chunks(path, encoding, chunk_bytes):
        cps = _code_points(piece)
        if pos + cps.size > n:
            raise ValueError(f"{os.fspath(path)} changed while it was being encoded")
        # code points are < 0x110000 by construction, so clip never clips (and unlike
        # mode="raise" it writes straight into out, unbuffered)
        np.take(lut, cps, out=indices[pos:pos + cps.size], mode="clip")
        pos += cps.size
    if pos != n:
        raise ValueError(f"{os.fspath(path)} changed while it was being encoded")
    if isinstance(indices, np.memmap):
        indices.flush()
    return EncodedText(indices, chars)


def default_corpus() -> str:
    """The small text that ships with charrnn (100 kB of Shakespeare's plays)."""
    from importlib.resources import files

    return files("charrnn.corpus").joinpath("shakespeare.txt").read_text(encoding="utf-8")
