/* blas.h: which OpenBLAS the engine runs on. Its kernel (Haswell, Zen, SkylakeX, Cooperlake...)
 * is chosen per CPU at load time, or forced by OPENBLAS_CORETYPE, and it moves every figure a
 * run reports: sgemm runs nearly twice as fast under an AVX-512 kernel as under Haswell on the
 * same CPU, and results may differ in their last bits between kernels. So runs and benchmarks
 * say which kernel they ran on. */
#ifndef PSTRAIN_ENGINE_BLAS_H
#define PSTRAIN_ENGINE_BLAS_H

#include <stddef.h>

/* The kernel's name as OpenBLAS reports it (openblas_get_corename), e.g. "Haswell". A static
 * string: do not free. */
const char *eng_blas_kernel(void);

/* One line for people, into buf (len bytes): the kernel, and why it is the one: "OpenBLAS
 * 0.3.21 kernel Haswell (OPENBLAS_CORETYPE=Haswell)" or "... (chosen for this CPU)".
 * Returns buf. */
const char *eng_blas_describe(char *buf, size_t len);

#endif
