/* layout.c: building and fingerprinting the parameter layout table. */
#include "engine/layout.h"

#include "engine/base/base.h"

#include <stdio.h>
#include <string.h>

int eng_layout_add(eng_layout *lay, const char *name, int ndim, const int *shape) {
    PST_ASSERT(lay->n < ENG_MAX_TENSORS, "layout full at %d tensors", lay->n);
    PST_ASSERT(ndim >= 1 && ndim <= ENG_MAX_DIMS, "ndim %d", ndim);
    PST_ASSERT(strlen(name) < ENG_NAME_MAX, "tensor name '%s' too long", name);
    eng_tensor_info *t = &lay->tensors[lay->n];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->ndim = ndim;
    t->count = 1;
    for (int i = 0; i < ndim; i++) {
        PST_ASSERT(shape[i] > 0, "tensor '%s' dim %d is %d", name, i, shape[i]);
        t->shape[i] = shape[i];
        t->count *= (size_t)shape[i];
    }
    t->offset = lay->total;
    lay->total += t->count;
    return lay->n++;
}

int eng_layout_find(const eng_layout *lay, const char *name) {
    for (int i = 0; i < lay->n; i++)
        if (strcmp(lay->tensors[i].name, name) == 0)
            return i;
    return -1;
}

static uint64_t fnv1a(uint64_t h, const void *data, size_t len) {
    const unsigned char *p = data;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 0x100000001B3ull;
    }
    return h;
}

uint64_t eng_layout_checksum(const eng_layout *lay) {
    uint64_t h = 0xCBF29CE484222325ull;
    for (int i = 0; i < lay->n; i++) {
        const eng_tensor_info *t = &lay->tensors[i];
        /* Fixed-width fields so the checksum is independent of struct padding. */
        uint64_t fields[2 + ENG_MAX_DIMS] = {(uint64_t)t->offset, (uint64_t)t->ndim};
        for (int d = 0; d < t->ndim; d++)
            fields[2 + d] = (uint64_t)t->shape[d];
        h = fnv1a(h, t->name, strlen(t->name) + 1);
        h = fnv1a(h, fields, sizeof fields);
    }
    return fnv1a(h, &lay->total, sizeof lay->total);
}

char *eng_shape_str(char *buf, size_t len, int ndim, const int *shape) {
    size_t used = (size_t)snprintf(buf, len, "(");
    for (int i = 0; i < ndim && used < len; i++)
        used += (size_t)snprintf(buf + used, len - used, i ? ", %d" : "%d", shape[i]);
    if (used < len)
        snprintf(buf + used, len - used, "%s)", ndim == 1 ? "," : "");
    return buf;
}
