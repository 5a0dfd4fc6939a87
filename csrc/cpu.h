/* Run-time CPU feature checks for choosing between the kernel builds.
 *
 * Straight from CPUID and XGETBV, the same code for GCC, clang and MSVC (no
 * __builtin_cpu_supports, which MSVC lacks): a build may run only when the CPU has
 * its instructions *and* the operating system saves their registers on a context
 * switch, which XCR0 says (read with XGETBV once CPUID reports OSXSAVE).
 *
 *   AVX2 + FMA:   CPUID.1:ECX bits 12 (FMA), 27 (OSXSAVE), 28 (AVX); CPUID.7.0:EBX bit 5
 *                 (AVX2); XCR0 bits 1, 2 (XMM and YMM state)
 *   AVX-512:      the above, and CPUID.7.0:EBX bits 16 (F), 17 (DQ), 31 (VL); XCR0 bits
 *                 5, 6, 7 (opmask, upper halves of ZMM0-15, ZMM16-31)
 *
 * macOS enables the AVX-512 state lazily, on a process's first AVX-512 instruction,
 * so XCR0 may not show it there: such a Mac runs the AVX2 build, never a build its
 * OS is not ready for. Other CPUs (arm64, ...) run the portable build.
 */
#ifndef CHARRNN_CPU_H
#define CHARRNN_CPU_H

#include <stdint.h>

#if defined(_MSC_VER) && (defined(_M_X64) || defined(_M_IX86)) && !defined(__clang__)
#include <intrin.h>      /* __cpuidex, _xgetbv */
#define CHARRNN_CPU_X86 1
#elif (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>       /* __get_cpuid_max, __cpuid_count */
#define CHARRNN_CPU_X86 1
#endif

#ifdef CHARRNN_CPU_X86
/* regs = {EAX, EBX, ECX, EDX} of CPUID leaf `leaf`, subleaf `sub`; zeros past the
 * highest leaf the CPU has */
static inline void charrnn_cpuid(uint32_t leaf, uint32_t sub, uint32_t regs[4])
{
#if defined(_MSC_VER) && !defined(__clang__)
    int r[4];
    __cpuid(r, 0);
    if ((uint32_t)r[0] < leaf) {
        regs[0] = regs[1] = regs[2] = regs[3] = 0;
        return;
    }
    __cpuidex(r, (int)leaf, (int)sub);
    regs[0] = (uint32_t)r[0]; regs[1] = (uint32_t)r[1];
    regs[2] = (uint32_t)r[2]; regs[3] = (uint32_t)r[3];
#else
    unsigned int a, b, c, d;
    if ((uint32_t)__get_cpuid_max(0, 0) < leaf) {   /* int in clang, unsigned in GCC */
        regs[0] = regs[1] = regs[2] = regs[3] = 0;
        return;
    }
    __cpuid_count(leaf, sub, a, b, c, d);
    regs[0] = a; regs[1] = b; regs[2] = c; regs[3] = d;
#endif
}

/* XCR0, the register states the OS saves; call only when CPUID.1:ECX.OSXSAVE is set
 * (XGETBV faults otherwise) */
static inline uint64_t charrnn_xcr0(void)
{
#if defined(_MSC_VER) && !defined(__clang__)
    return (uint64_t)_xgetbv(0);
#else
    uint32_t lo, hi;
    /* the instruction's bytes, for assemblers that predate its mnemonic */
    __asm__ volatile(".byte 0x0f, 0x01, 0xd0" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
#endif
}

#define CHARRNN_BIT(x, n) (((x) >> (n)) & 1u)
#endif

static inline int charrnn_cpu_has_avx2_fma(void)
{
#ifdef CHARRNN_CPU_X86
    uint32_t r1[4], r7[4];
    charrnn_cpuid(1, 0, r1);
    if (!(CHARRNN_BIT(r1[2], 12) && CHARRNN_BIT(r1[2], 27) && CHARRNN_BIT(r1[2], 28)))
        return 0;
    if ((charrnn_xcr0() & 0x6) != 0x6)
        return 0;
    charrnn_cpuid(7, 0, r7);
    return (int)CHARRNN_BIT(r7[1], 5);
#else
    return 0;
#endif
}

/* What the AVX-512 build is compiled for: AVX-512 F, DQ, VL on top of AVX2 and FMA */
static inline int charrnn_cpu_has_avx512(void)
{
#ifdef CHARRNN_CPU_X86
    uint32_t r7[4];
    if (!charrnn_cpu_has_avx2_fma() || (charrnn_xcr0() & 0xe6) != 0xe6)
        return 0;
    charrnn_cpuid(7, 0, r7);
    return CHARRNN_BIT(r7[1], 16) && CHARRNN_BIT(r7[1], 17) && CHARRNN_BIT(r7[1], 31);
#else
    return 0;
#endif
}

#endif
