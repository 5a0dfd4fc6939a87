"""Encode a big generated UTF-8 file with charrnn.data.encode_file: speed and peak memory.

    python benchmarks/encode_big.py [--size-mb 500] [--out memory|memmap|both]

Writes a text of about ``--size-mb`` MB (charrnn.bench.generated_text, with some 2-, 3-
and 4-byte characters) into a temporary folder, encodes it in a fresh child process
(so that its peak RSS is the encoding's, not the generation's), checks a prefix of the
result against ``charrnn.data.encode``, prints MB/s and peak memory, and deletes the
folder. The target (issue 4): >= 50 MB/s, peak memory < 2 x the encoded array + 200 MB.

The file has just been written, so it is read from the page cache: the figures are
those of the encoder, not of the disk.
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

BLOCK_CHARS = 1 << 22
N_BLOCKS = 8  # distinct blocks, written in turn


def _blocks():
    from charrnn.bench import generated_text

    for seed in range(N_BLOCKS):
        text = generated_text(BLOCK_CHARS, seed=seed)
        # 2-, 3- and 4-byte characters in place of three of the 65 (V stays 65)
        text = text.replace("$", "é").replace("'", "’").replace("3", "🙂")
        yield text.encode("utf-8")


def generate(path, size_bytes):
    blocks = list(_blocks())
    written, i = 0, 0
    with open(path, "wb") as f:
        while written < size_bytes:
            block = blocks[i % len(blocks)][: size_bytes - written]
            # cut at a character boundary: never before a continuation byte
            while block and len(block) < len(blocks[i % len(blocks)]) and \
                    (blocks[i % len(blocks)][len(block)] & 0xC0) == 0x80:
                block = block[:-1]
            if not block:
                break
            f.write(block)
            written += len(block)
            i += 1
    return written


def _rss_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


def encode_child(path, out):
    """Runs in the child: encode, check a prefix, print one JSON line."""
    import numpy as np

    from charrnn import data

    size = os.path.getsize(path)
    rss_before = _rss_mb()
    start = time.perf_counter()
    result = data.encode_file(path, out=out)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3  # kB on Linux
    with open(path, "rb") as f:
        prefix = f.read(1 << 20).decode("utf-8", errors="ignore")[:200_000]
    np.testing.assert_array_equal(result.indices[: len(prefix)],
                                  data.encode(prefix, result.chars))
    print(json.dumps({
        "file_mb": size / 1e6, "seconds": seconds, "mb_per_s": size / 1e6 / seconds,
        "characters": int(result.indices.size), "vocab_size": len(result.chars),
        "dtype": str(result.indices.dtype), "array_mb": result.indices.nbytes / 1e6,
        "rss_before_mb": rss_before, "peak_rss_mb": peak,
        "memmap": isinstance(result.indices, np.memmap),
    }))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mb", type=float, default=500)
    parser.add_argument("--out", choices=["memory", "memmap", "both"], default="both")
    parser.add_argument("--dir", help="where to put the temporary folder (default: system)")
    parser.add_argument("--child", nargs=2, metavar=("FILE", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        path, out = args.child
        encode_child(path, None if out == "-" else out)
        return 0

    with tempfile.TemporaryDirectory(prefix="charrnn-encode-big-", dir=args.dir) as tmp:
        path = os.path.join(tmp, "big.txt")
        start = time.perf_counter()
        size = generate(path, int(args.size_mb * 1e6))
        print(f"generated {size / 1e6:.0f} MB of UTF-8 in {time.perf_counter() - start:.1f} s")
        modes = ["memory", "memmap"] if args.out == "both" else [args.out]
        for mode in modes:
            out = "-" if mode == "memory" else os.path.join(tmp, "big.npy")
            line = subprocess.run([sys.executable, __file__, "--child", path, out],
                                  check=True, capture_output=True, text=True).stdout
            r = json.loads(line)
            limit = 2 * r["array_mb"] + 200
            print(f"encode_file, out={mode}: {r['file_mb']:.0f} MB, {r['characters']:,} "
                  f"characters (V={r['vocab_size']}, {r['dtype']}) in {r['seconds']:.2f} s = "
                  f"{r['mb_per_s']:.0f} MB/s; peak RSS {r['peak_rss_mb']:.0f} MB "
                  f"(before encoding {r['rss_before_mb']:.0f} MB; limit 2 x "
                  f"{r['array_mb']:.0f} + 200 = {limit:.0f} MB)")
            if out != "-":
                os.remove(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
