"""Vocabulary and encoding of texts into index arrays.

Texts that fit in memory go through :func:`vocabulary` and :func:`encode`. Files of any
size go through :func:`scan_vocabulary` and :func:`encode_file`, which read them in
chunks with bounded memory (no ``str`` of the whole file) and can write the indices
into a ``numpy.memmap``; :func:`charrnn.train` takes the resulting :class:`EncodedText`.
Under them, :func:`read_pieces` yields a file decoded and cleaned (:func:`preprocess`)
piece by piece, :func:`scan_pieces` finds its vocabulary, length and digest, and
:func:`encode_pieces` writes its indices: the command line streams its texts this way.
Only regular files are read (:func:`open_regular`): devices and pipes may never end.
"""
import codecs
import errno
import hashlib
import itertools
import os
import stat
from typing import NamedTuple, Optional

import numpy as np

from .datasets import shakespeare as default_corpus

__all__ = ["vocabulary", "encode", "decode", "index_dtype", "default_corpus",
           "EncodedText", "scan_vocabulary", "encode_file", "as_encoded", "preprocess",
           "read_pieces", "scan_pieces", "encode_pieces", "TextScan", "DecodeError",
           "open_regular", "file_kind", "check_encoding", "SEED002_DROP_CHARS", "CLEANUPS"]

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


class DecodeError(ValueError):
    """A file that is not valid in the encoding it is read with; the message gives the
    byte offset of the first bad byte."""


def file_kind(mode):
    """What a file of this ``st_mode`` is, in words: "a regular file", "a directory", ..."""
    for test, kind in ((stat.S_ISREG, "a regular file"), (stat.S_ISDIR, "a directory"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISLNK, "a symbolic link")):
        if test(mode):
            return kind
    return "not a regular file"


def _refuse_special(path, mode):
    if stat.S_ISREG(mode):
        return
    if stat.S_ISDIR(mode):
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), os.fspath(path))
    raise ValueError(f"{os.fspath(path)} is {file_kind(mode)}, not a regular file; texts are "
                     f"read from regular files only (a device or pipe may never end)")


def open_regular(path):
    """Open a regular file for binary reading; refuse anything else before reading a byte.

    Texts are read twice (vocabulary, then indices) and must end: ``/dev/zero`` never
    does, and a FIFO can be read only once. The file is opened non-blocking, so that a
    FIFO without a writer is refused instead of waited on.

    Returns
    -------
    io.BufferedReader

    Raises
    ------
    IsADirectoryError
        If ``path`` is a directory.
    ValueError
        If it is a device, a FIFO or a socket.
    OSError
        As ``open`` (no such file, no permission).
    """
    _refuse_special(path, os.stat(path).st_mode)  # devices are not even opened
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(path, flags)
    try:
        _refuse_special(path, os.fstat(fd).st_mode)  # what was opened, if path changed since
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        f = os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
    return f


def _raw_chunks(path, chunk_bytes):
    """The bytes of a regular file, ``chunk_bytes`` at a time, never more than its size."""
    with open_regular(path) as f:
        size = os.fstat(f.fileno()).st_size
        done = 0
        while True:
            raw = f.read(chunk_bytes)
            if not raw:
                return
            done += len(raw)
            if done > size:
                raise ValueError(f"{os.fspath(path)} grew past its size of {size:,} bytes while "
                                 f"it was being read; read a file that is not being written")
            yield raw


def check_encoding(encoding):
    """Raise ValueError unless ``encoding`` names a text encoding (not e.g. 'base64')."""
    _decoder(encoding)


def _decoder(encoding):
    if not isinstance(encoding, str):
        raise ValueError(f"encoding must be a str, got {type(encoding).__name__}")
    try:
        info = codecs.lookup(encoding)
    except LookupError:
        raise ValueError(f"unknown encoding: {encoding}") from None
    # str.decode refuses these too ('base64' decodes bytes to bytes)
    if not getattr(info, "_is_text_encoding", True) or info.incrementaldecoder is None:
        raise ValueError(f"{encoding} is not a text encoding")
    return info.incrementaldecoder(errors="strict")


def _decoded(raw_chunks, decoder, path, encoding):
    """Decoded pieces of the chunks, in order.

    A multi-byte character split between two reads is kept by the incremental decoder
    until its last byte arrives. Invalid input raises DecodeError with the byte offset
    in the file.
    """
    start = 0  # file offset of the next chunk
    for raw in itertools.chain(raw_chunks, [None]):
        final = raw is None
        raw = b"" if final else raw
        pending = len(decoder.getstate()[0])  # bytes kept from the last chunk
        try:
            piece = decoder.decode(raw, final=final)
        except UnicodeDecodeError as e:
            # e.object is the kept bytes followed by this chunk
            offset = start - pending + e.start
            raise DecodeError(
                f"{os.fspath(path)} is not valid {encoding}: byte "
                f"0x{e.object[e.start:e.start + 1].hex()} at byte offset {offset} "
                f"({e.reason})") from None
        if piece:
            yield piece
        start += len(raw)


#: The characters seed 002 removes after lower-casing and removing digits: brackets and
#: punctuation, the byte-order mark U+FEFF a file saved by Windows tools starts with, and
#: ``é``.
SEED002_DROP_CHARS = "][&=%)-@\ufeff;_\u00e9$("

#: Named clean-ups (``charrnn train --clean NAME``): name -> :func:`preprocess` options.
CLEANUPS = {
    "seed002": dict(lower=True, strip_digits=True, drop_chars=SEED002_DROP_CHARS),
}


def preprocess(text, lower=False, strip_digits=False, drop_chars=""):
    """Clean a text: lower-case it, remove digits, remove characters (seed 002's clean-up).

    Seed 002 cleans with ``preprocess(text, **CLEANUPS["seed002"])``, that is
    ``lower=True, strip_digits=True, drop_chars=SEED002_DROP_CHARS``, in that order.

    Parameters
    ----------
    text : str or bytes
        Bytes are cleaned as bytes: ASCII letters and digits only, and ``drop_chars``
        as its ``os.fsencode`` bytes.
    lower : bool
        ``str.lower()`` (``bytes.lower()``).
    strip_digits : bool
        Remove every character whose ``isdigit()`` is true (``"²"`` and other
        Unicode digits too, as seed 002's ``str.isdigit``).
    drop_chars : str
        Characters to remove.

    Returns
    -------
    str or bytes
        The cleaned text, of the type of ``text``.

    Examples
    --------
    >>> preprocess("Rome, 44 BC [sic]", lower=True, strip_digits=True, drop_chars="[]")
    'rome,  bc sic'
    """
    if isinstance(text, bytes):
        text = text.lower() if lower else text
        if strip_digits:
            text = text.translate(None, b"0123456789")
        if drop_chars:
            text = text.translate(None, os.fsencode(drop_chars))
        return text
    if lower:
        text = text.lower()
    if strip_digits:
        digits = {ord(c): None for c in set(text) if c.isdigit()}
        text = text.translate(digits) if digits else text
    if drop_chars:
        text = text.translate(dict.fromkeys(map(ord, drop_chars)))
    return text


# Case classes of a character for str.lower's one rule with context, Final_Sigma:
# capital sigma lowers to final sigma when a cased letter precedes it and none follows,
# case-ignorable characters (accents, apostrophes, ...) skipped on both sides.
_SIGMA = "\u03a3"
_IGNORABLE, _CASED, _NEITHER = range(3)


def _case_class(c, known={}):  # noqa: B006 (a cache, on purpose)
    if c not in known:
        # str.lower itself tells: "A" + c + SIGMA ends in a final sigma unless c stops the
        # backward scan without being cased; " " + c + SIGMA does if c stops it, cased
        if ("A" + c + _SIGMA).lower()[-1] == "\u03c3":
            known[c] = _NEITHER
        elif (" " + c + _SIGMA).lower()[-1] == "\u03c2":
            known[c] = _CASED
        else:
            known[c] = _IGNORABLE
    return known[c]


def _lowered(pieces):
    """``piece.lower()`` of each piece, exactly as ``"".join(pieces).lower()`` would be.

    A capital sigma's lower case depends on its neighbours, which may lie in another
    piece. What precedes a piece is summed up by one flag (whether the last
    character that is not case-ignorable is cased), passed on as a one-letter prefix;
    a sigma followed only by case-ignorable characters up to the end of its piece
    waits, with them, for the next piece.
    """
    cased_before = False
    carry = ""
    for piece in itertools.chain(pieces, [None]):
        final = piece is None
        text = carry + ("" if final else piece)
        cut = len(text)
        while not final:
            i = text.rfind(_SIGMA, 0, cut)
            j = i + 1
            while 0 <= i and j < cut and _case_class(text[j]) == _IGNORABLE:
                j += 1
            if i < 0 or j < cut:
                break  # every sigma before cut sees the character that decides it
            cut = i
        head, carry = text[:cut], text[cut:]
        if head:
            yield (("A" if cased_before else " ") + head).lower()[1:]
            for c in reversed(head):
                kind = _case_class(c)
                if kind != _IGNORABLE:
                    cased_before = kind == _CASED
                    break


def read_pieces(path, encoding="utf-8", *, bytes_mode=False, lower=False,
                strip_digits=False, drop_chars="", chunk_bytes=CHUNK_BYTES):
    """A text file as decoded and cleaned str pieces, in order, never all of it at once.

    ``"".join(read_pieces(path, encoding, **options))`` equals
    ``preprocess(open(path, encoding=encoding, newline="").read(), **options)``
    (newlines are kept as they are in the file), chunk boundaries included: a character
    split between two reads is decoded whole, and ``lower`` treats a capital sigma at
    a boundary as the whole text's ``str.lower`` does. The arguments are checked when
    it is called; the file is opened at the first ``next()``.

    Parameters
    ----------
    path : str or os.PathLike
        A regular file (see :func:`open_regular`).
    encoding : str
        Any text encoding with an incremental decoder.
    bytes_mode : bool
        Each byte is one character, decoded as latin-1 (``encoding`` is not used), and
        the clean-up works on bytes as in :func:`preprocess`.
    lower, strip_digits, drop_chars
        See :func:`preprocess`.
    chunk_bytes : int
        Bytes read at a time.

    Yields
    ------
    str

    Raises
    ------
    ValueError
        For an unknown or non-text encoding, a special file, a file that grows while
        read; :class:`DecodeError` for bytes not valid in ``encoding``.
    """
    chunk_bytes = int(chunk_bytes)
    if chunk_bytes < 1:
        raise ValueError(f"chunk_bytes must be >= 1, got {chunk_bytes}")
    if not isinstance(drop_chars, str):
        raise ValueError(f"drop_chars must be a str, got {type(drop_chars).__name__}")
    if bytes_mode:
        os.fsencode(drop_chars)  # a lone surrogate has no bytes: fail now, not mid-file
        return (preprocess(raw, lower, strip_digits, drop_chars).decode("latin-1")
                for raw in _raw_chunks(path, chunk_bytes))
    decoded = _decoded(_raw_chunks(path, chunk_bytes), _decoder(encoding), path, encoding)
    if lower:
        decoded = _lowered(decoded)
    return (preprocess(piece, False, strip_digits, drop_chars) for piece in decoded)


class TextScan(NamedTuple):
    """What one pass over a text found: see :func:`scan_pieces`.

    Attributes
    ----------
    chars : list of str
        Its distinct characters, sorted (:func:`vocabulary` of the whole text).
    length : int
        Its number of characters.
    sha256 : str or None
        Hex SHA-256 of its UTF-8 bytes (lone surrogates passed through), if asked for.
    """
    chars: list
    length: int
    sha256: Optional[str]


def _utf8(piece):
    return piece.encode("utf-8", "surrogatepass")


def scan_pieces(pieces, digest=False):
    """Vocabulary, length and (with ``digest``) SHA-256 of a text given in pieces.

    Memory is bounded by the largest piece. The digest of the pieces is that of their
    concatenation, ``hashlib.sha256("".join(pieces).encode("utf-8", "surrogatepass"))``.

    Returns
    -------
    TextScan
    """
    present = np.zeros(_N_CODEPOINTS, dtype=bool)
    n = 0
    sha = hashlib.sha256() if digest else None
    for piece in pieces:
        counts = np.bincount(_codepoints(piece))
        present[: counts.size] |= counts > 0
        n += len(piece)
        if sha is not None:
            sha.update(_utf8(piece))
    chars = [chr(c) for c in np.flatnonzero(present)]
    return TextScan(chars, n, None if sha is None else sha.hexdigest())


def encode_pieces(pieces, chars, length, out=None, sha256=None, name="the text"):
    """A text given in pieces as indices into ``chars``, written piece by piece.

    Parameters
    ----------
    pieces : iterable of str
    chars : sequence of str
        The vocabulary; a character of the text that is not in it raises ValueError.
    length : int
        The text's length in characters (as :func:`scan_pieces` found it): the
        size of the output.
    out : None, str, os.PathLike or ndarray
        As in :func:`encode_file`.
    sha256 : str, optional
        The digest :func:`scan_pieces` found: the pieces must hash to it again (a file
        read twice must not have changed in between).
    name : str
        The text, in error messages.

    Returns
    -------
    ndarray, shape (length,), dtype ``index_dtype(len(chars))`` (or ``out``'s)
    """
    chars = list(chars)
    if not chars or not all(isinstance(c, str) and len(c) == 1 for c in chars):
        raise ValueError("chars must be a non-empty sequence of single characters")
    V = len(chars)
    indices = _output(out, length, index_dtype(V))
    lut = np.full(_N_CODEPOINTS, V, dtype=np.uint32)  # code point -> index; V: unknown
    lut[[ord(c) for c in chars]] = np.arange(V, dtype=np.uint32)
    sha = hashlib.sha256() if sha256 is not None else None
    changed = ValueError(f"{name} changed while it was being read (was it written to?)")
    pos = 0
    for piece in pieces:
        ix = lut[_codepoints(piece)]
        if ix.size and int(ix.max()) == V:
            missing = sorted(set(piece) - set(chars))
            raise ValueError(f"{len(missing)} character(s) of {name} are not in the "
                             f"vocabulary: {''.join(missing[:50])!r}")
        if pos + ix.size > length:
            raise changed
        indices[pos:pos + ix.size] = ix
        pos += ix.size
        if sha is not None:
            sha.update(_utf8(piece))
    if pos != length or (sha is not None and sha.hexdigest() != sha256):
        raise changed
    if isinstance(indices, np.memmap):
        indices.flush()
    return indices


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
    scan = scan_pieces(read_pieces(path, encoding, chunk_bytes=chunk_bytes))
    if scan.length == 0:
        raise ValueError(f"{os.fspath(path)} is empty; it needs at least one character")
    return scan.chars


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
    scan = scan_pieces(read_pieces(path, encoding, chunk_bytes=chunk_bytes))
    if scan.length == 0:
        raise ValueError(f"{os.fspath(path)} is empty; it needs at least one character")
    if chars is None:
        chars = scan.chars
    else:
        chars = list(chars)
        if not chars or not all(isinstance(c, str) and len(c) == 1 for c in chars):
            raise ValueError("chars must be a non-empty sequence of single characters")
        missing = sorted(set(scan.chars) - set(chars))
        if missing:
            shown = "".join(missing[:50])
            raise ValueError(f"{len(missing)} character(s) of {os.fspath(path)} are not in "
                             f"the vocabulary: {shown!r}")
    indices = encode_pieces(read_pieces(path, encoding, chunk_bytes=chunk_bytes), chars,
                            scan.length, out, name=os.fspath(path))
    return EncodedText(indices, chars)
