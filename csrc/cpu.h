/* Run-time CPU feature checks for choosing between the kernel builds. */
#ifndef CHARRNN_CPU_H
#define CHARRNN_CPU_H

#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#define CHARRNN_CPU_X86 1
#endif

static inline int charrnn_cpu_has_avx2_fma(void)
{
#ifdef CHARRNN_CPU_X86
    __builtin_cpu_init();
    /* libgcc also checks that the OS saves the AVX registers (XGETBV) */
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
    return 0;
#endif
}

/* What the AVX-512 build is compiled for: AVX-512 F, DQ, VL on top of AVX2 and FMA */
static inline int charrnn_cpu_has_avx512(void)
{
#ifdef CHARRNN_CPU_X86
    __builtin_cpu_init();
    /* libgcc reports avx512* only when the OS also saves the ZMM registers */
    return charrnn_cpu_has_avx2_fma() && __builtin_cpu_supports("avx512f")
           && __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
#else
    return 0;
#endif
}

#endif
