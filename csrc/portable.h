/* What charrnn's C needs from the compiler, in one place, for GCC, clang and MSVC.
 *
 * CHARRNN_PORTABLE_C  1: smallblas.h computes on plain C arrays of lanes, in loops the
 *                     compiler vectorises; 0: on GCC vector extensions. Compilers
 *                     other than GCC and clang (MSVC) get 1 by default; setup.py
 *                     defines it to 1 on GCC and clang with CHARRNN_PORTABLE_C=1 in the
 *                     environment, so that CI runs the test suite on this path.
 *                     Both paths compute the same sums in the same order.
 * CHARRNN_RESTRICT    the C99 `restrict` qualifier: `restrict` in C99 and later,
 *                     `__restrict` on MSVC (which takes `restrict` only with /std:c11),
 *                     GCC's `__restrict__` in C89 mode, nothing in C++.
 * CHARRNN_PRAGMA(x)   _Pragma(#x) for the `omp simd` hints where they mean something
 *                     (-fopenmp-simd or -fopenmp on GCC and clang), else nothing: MSVC
 *                     knows `omp simd` only under /openmp:experimental, and its
 *                     vectoriser needs no hint for these loops.
 * CHARRNN_NOINLINE    keeps a function out of line: a streaming loop inlined into a
 *                     large kernel loses its pointers to the stack and reloads them
 *                     at every iteration (measured: the matrix-vector product of the
 *                     LSTM's recurrence at half its out-of-line speed).
 */
#ifndef CHARRNN_PORTABLE_H
#define CHARRNN_PORTABLE_H

#ifndef CHARRNN_PORTABLE_C
#if defined(__GNUC__) || defined(__clang__)
#define CHARRNN_PORTABLE_C 0
#else
#define CHARRNN_PORTABLE_C 1
#endif
#endif

#if defined(__cplusplus)
#define CHARRNN_RESTRICT
#elif defined(_MSC_VER)
#define CHARRNN_RESTRICT __restrict
#elif defined(__STDC_VERSION__) && __STDC_VERSION__ >= 199901L
#define CHARRNN_RESTRICT restrict
#elif defined(__GNUC__)
#define CHARRNN_RESTRICT __restrict__
#else
#define CHARRNN_RESTRICT
#endif

#if defined(_MSC_VER)
#define CHARRNN_NOINLINE __declspec(noinline)
#elif defined(__GNUC__) || defined(__clang__)
#define CHARRNN_NOINLINE __attribute__((noinline))
#else
#define CHARRNN_NOINLINE
#endif

#if !defined(_MSC_VER) && (defined(_OPENMP) || defined(CHARRNN_OMP_SIMD))
#define CHARRNN_PRAGMA(x) _Pragma(#x)
#else
#define CHARRNN_PRAGMA(x)
#endif

#endif
