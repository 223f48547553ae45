/* err.c: status codes, error buffers and the always-on assert. */
#include "engine/base/base.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

const char *pst_code_name(int code) {
    switch (code) {
    case PST_OK:
        return "PST_OK";
    case PST_EIO:
        return "PST_EIO";
    case PST_EFORMAT:
        return "PST_EFORMAT";
    case PST_EARG:
        return "PST_EARG";
    case PST_EAGAIN:
        return "PST_EAGAIN";
    case PST_ESOCKET:
        return "PST_ESOCKET";
    case PST_EMALFORMED:
        return "PST_EMALFORMED";
    case PST_EVERSION:
        return "PST_EVERSION";
    case PST_ESTRANGER:
        return "PST_ESTRANGER";
    case PST_EPEER:
        return "PST_EPEER";
    case PST_ESTOPPED:
        return "PST_ESTOPPED";
    case PST_EWRITE:
        return "PST_EWRITE";
    case PST_EDIVERGED:
        return "PST_EDIVERGED";
    default:
        return "PST_E?";
    }
}

int pst_exit_status(int code) {
    switch (code) {
    case PST_OK:
        return 0;
    case PST_EARG:
    case PST_EFORMAT:
    case PST_EIO:
        return 2;
    case PST_ESTOPPED:
        return PST_EXIT_STOPPED;
    default:
        return 1;
    }
}

int pst_err(char *err, size_t errlen, int code, const char *fmt, ...) {
    if (err && errlen > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return code;
}

void pst_assert_fail(const char *file, int line, const char *cond, const char *fmt, ...) {
    va_list ap;
    fprintf(stderr, "%s:%d: assertion failed: %s: ", file, line, cond);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    abort();
}
