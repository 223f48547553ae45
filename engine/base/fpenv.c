/* fpenv.c: the floating-point environment pstrain computes in. */
#include "engine/base/base.h"

#if defined(__SSE__) || defined(__x86_64__)
#include <xmmintrin.h>
#endif

void pst_flush_denormals(void) {
#if defined(__SSE__) || defined(__x86_64__)
    /* MXCSR's FTZ (bit 15: results below FLT_MIN become 0) and DAZ (bit 6: such inputs
     * read as 0). */
    _mm_setcsr(_mm_getcsr() | 0x8040u);
#elif defined(__aarch64__)
    unsigned long fpcr;
    __asm__ volatile("mrs %0, fpcr" : "=r"(fpcr));
    __asm__ volatile("msr fpcr, %0" : : "r"(fpcr | (1ul << 24))); /* FZ */
#endif
}
