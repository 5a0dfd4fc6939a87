# How this build of the kernels was compiled, for tests and charrnn.kernel_info: the
# C path of smallblas.h (csrc/portable.h) and its vector width. Included by each
# _kernels*.pyx.

cdef extern from "smallblas.h":
    int CHARRNN_PORTABLE_C
    int CHARRNN_VBYTES


def portable_c():
    """Whether the small matrix products run on plain C loops (CHARRNN_PORTABLE_C, the
    path MSVC builds) rather than on GCC vector extensions; the sums are the same."""
    return bool(CHARRNN_PORTABLE_C)


def vector_bytes():
    """The width in bytes of the vectors the small matrix products work on: 16, 32
    (AVX) or 64 (AVX-512)."""
    return CHARRNN_VBYTES
