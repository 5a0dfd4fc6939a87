/* Vectorisable exp, tanh and sigmoid over arrays, accurate to ~2 ulp in double.
 *
 * libm's scalar exp/tanh cost more than the matrix products of a small RNN step, and
 * glibc's vector versions (libmvec) are not in the old glibc a portable wheel links
 * against. These are branch-free loops that gcc vectorises for SSE2 and AVX2 alike
 * (with -fno-trapping-math): Cody-Waite range reduction, a Taylor polynomial for exp,
 * and for small tanh Cephes' rational approximation (S. L. Moshier's coefficients).
 * Checked against numpy in tests/test_kernels.py.
 */
#ifndef CHARRNN_VECMATH_H
#define CHARRNN_VECMATH_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "portable.h"   /* CHARRNN_RESTRICT, CHARRNN_PRAGMA */

/* exp(x) for x in about [-708, 709]; x is clamped to that range first.
 * x = n ln2 + r (Cody-Waite), |r| <= ln2 / 2, exp(r) by its Taylor polynomial of
 * degree 13 (truncation error < 1e-17): no division, 13 multiply-adds, ~1 ulp. */
static inline double charrnn_exp(double x)
{
    const double LOG2E = 1.4426950408889634073599;
    const double C1 = 6.93145751953125E-1, C2 = 1.42860682030941723212E-6;
    const double SHIFTER = 6755399441055744.0;         /* 0x1.8p52: rounds to integer */
    double t, n, r, p;
    int64_t bits;
    x = x < -708.0 ? -708.0 : x;
    x = x > 709.0 ? 709.0 : x;
    t = x * LOG2E + SHIFTER;                            /* n = round(x / ln 2) */
    n = t - SHIFTER;
    r = x - n * C1 - n * C2;
    p = 1.0 / 6227020800.0;                             /* 1 / 13! */
    p = p * r + 1.0 / 479001600.0;
    p = p * r + 1.0 / 39916800.0;
    p = p * r + 1.0 / 3628800.0;
    p = p * r + 1.0 / 362880.0;
    p = p * r + 1.0 / 40320.0;
    p = p * r + 1.0 / 5040.0;
    p = p * r + 1.0 / 720.0;
    p = p * r + 1.0 / 120.0;
    p = p * r + 1.0 / 24.0;
    p = p * r + 1.0 / 6.0;
    p = p * r + 0.5;
    p = p * r + 1.0;
    p = p * r + 1.0;                                    /* exp(r) */
    memcpy(&bits, &t, sizeof bits);                     /* low bits of t hold n */
    bits = (bits + 1023) << 52;                         /* 2^n (n >= -1022 here) */
    memcpy(&t, &bits, sizeof t);
    return p * t;
}

/* tanh(x) with one division: for |x| < 0.625, x + x^3 P(x^2) / Q(x^2) (Cephes);
 * otherwise sign(x) (e - 1) / (e + 1) with e = exp(2|x|). */
static inline double charrnn_tanh(double x)
{
    double ax = x < 0 ? -x : x;
    double z = x * x;
    double p = (-9.64399179425052238628E-1 * z - 9.92877231001918586564E1) * z
               - 1.61468768441708447952E3;
    double q = ((z + 1.12811678491632931402E2) * z + 2.23548839060100448583E3) * z
               + 4.84406305325125486048E3;
    double e = charrnn_exp(2.0 * (ax < 0.625 ? 0.625 : ax));
    int small = ax < 0.625;
    double r = (small ? x * z * p : e - 1.0) / (small ? q : e + 1.0);
    return small ? x + r : (x < 0 ? -r : r);
}

static inline double charrnn_sigmoid(double x)
{
    return 1.0 / (1.0 + charrnn_exp(-x));
}

/* float versions, in float arithmetic (twice the lanes of double): Cephes' expf
 * and tanhf polynomials (S. L. Moshier), ~1 ulp of float. */
static inline float charrnn_expf(float x)
{
    const float LOG2E = 1.44269504088896341f;
    const float C1 = 0.693359375f, C2 = -2.12194440e-4f;
    const float SHIFTER = 12582912.0f;                  /* 0x1.8p23 */
    float t, n, r, z, p;
    int32_t bits;
    x = x < -87.0f ? -87.0f : x;
    x = x > 88.0f ? 88.0f : x;
    t = x * LOG2E + SHIFTER;
    n = t - SHIFTER;
    r = x - n * C1 - n * C2;
    z = r * r;
    p = ((((1.9875691500E-4f * r + 1.3981999507E-3f) * r + 8.3334519073E-3f) * r
          + 4.1665795894E-2f) * r + 1.6666665459E-1f) * r + 5.0000001201E-1f;
    p = p * z + r + 1.0f;
    memcpy(&bits, &t, sizeof bits);
    bits = (bits + 127) << 23;                          /* the low bits of t hold n */
    memcpy(&t, &bits, sizeof t);
    return p * t;
}

static inline float charrnn_tanhf(float x)
{
    float ax = x < 0 ? -x : x;
    float z = x * x;
    float small = ((((-5.70498872745E-3f * z + 2.06390887954E-2f) * z - 5.37397155531E-2f) * z
                    + 1.33314422036E-1f) * z - 3.33332819422E-1f) * z * x + x;
    float e = charrnn_expf(2.0f * (ax < 0.625f ? 0.625f : ax));
    float big = 1.0f - 2.0f / (e + 1.0f);
    big = x < 0 ? -big : big;
    return ax < 0.625f ? small : big;
}

static inline float charrnn_sigmoidf(float x)
{
    return 1.0f / (1.0f + charrnn_expf(-x));
}

/* the same names for both types, for the macro below */
#define charrnn_exp_d charrnn_exp
#define charrnn_tanh_d charrnn_tanh
#define charrnn_sigmoid_d charrnn_sigmoid
#define charrnn_exp_f charrnn_expf
#define charrnn_tanh_f charrnn_tanhf
#define charrnn_sigmoid_f charrnn_sigmoidf

#define CHARRNN_DEFINE_VECMATH(T, S)                                             \
/* x = tanh(x) */                                                                \
static inline void tanh_inplace_##S(T *CHARRNN_RESTRICT x, ptrdiff_t n)          \
{                                                                                \
    CHARRNN_PRAGMA(omp simd)                                                     \
    for (ptrdiff_t k = 0; k < n; k++) x[k] = charrnn_tanh_##S(x[k]);             \
}                                                                                \
/* x = 1 / (1 + exp(-x)) */                                                      \
static inline void sigmoid_inplace_##S(T *CHARRNN_RESTRICT x, ptrdiff_t n)       \
{                                                                                \
    CHARRNN_PRAGMA(omp simd)                                                     \
    for (ptrdiff_t k = 0; k < n; k++) x[k] = charrnn_sigmoid_##S(x[k]);          \
}                                                                                \
/* x = exp(x - m); returns the sum of the new x */                               \
static inline T exp_shift_sum_##S(T *CHARRNN_RESTRICT x, T m, ptrdiff_t n)       \
{                                                                                \
    T s = 0;                                                                     \
    CHARRNN_PRAGMA(omp simd reduction(+:s))                                      \
    for (ptrdiff_t k = 0; k < n; k++) {                                          \
        x[k] = charrnn_exp_##S(x[k] - m);                                        \
        s += x[k];                                                               \
    }                                                                            \
    return s;                                                                    \
}

CHARRNN_DEFINE_VECMATH(double, d)
CHARRNN_DEFINE_VECMATH(float, f)

#endif
