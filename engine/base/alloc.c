/* alloc.c: allocation with one policy: out of memory is one line and an abort. */
#include "engine/base/base.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static _Noreturn void out_of_memory(size_t bytes) {
    fprintf(stderr, "pstrain: out of memory: cannot allocate %zu bytes\n", bytes);
    abort();
}

void *pst_alloc(size_t bytes) {
    const size_t rounded = bytes ? (bytes + 63) & ~(size_t)63 : 64;
    if (rounded < bytes)
        out_of_memory(bytes);
    void *p = aligned_alloc(64, rounded);
    if (!p)
        out_of_memory(bytes);
    memset(p, 0, rounded);
    return p;
}

void pst_free(void *p) { free(p); }

void *pst_malloc(size_t bytes) {
    void *p = malloc(bytes ? bytes : 1);
    if (!p)
        out_of_memory(bytes);
    return p;
}

void *pst_calloc(size_t n, size_t size) {
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p)
        out_of_memory(n * size);
    return p;
}

void *pst_realloc(void *p, size_t bytes) {
    void *q = realloc(p, bytes ? bytes : 1);
    if (!q)
        out_of_memory(bytes);
    return q;
}

char *pst_strdup(const char *s) {
    const size_t n = strlen(s) + 1;
    return memcpy(pst_malloc(n), s, n);
}
