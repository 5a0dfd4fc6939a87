/* Run-time CPU feature check for choosing between the kernel builds. */
#ifndef CHARRNN_CPU_H
#define CHARRNN_CPU_H

static inline int charrnn_cpu_has_avx2_fma(void)
{
#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
    __builtin_cpu_init();
    /* libgcc also checks that the OS saves the AVX registers (XGETBV) */
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
    return 0;
#endif
}

#endif
