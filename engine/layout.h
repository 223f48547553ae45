/* layout.h: the parameter layout table, the one truth about a model's parameters.
 *
 * All parameters of a model live in one flat float vector; gradients and optimizer state
 * use the same layout. Each entry names a tensor with its Keras weight name
 * ("conv2d/kernel"), its shape (Keras layouts: conv kernels (kh, kw, in, out), dense
 * kernels (in, out)) and its offset in the vector, in the stable order layers add them.
 * Servers shard the vector by offset; checkpoints store it by name; every process
 * compares eng_layout_checksum at start. */
#ifndef PSTRAIN_ENGINE_LAYOUT_H
#define PSTRAIN_ENGINE_LAYOUT_H

#include <stddef.h>
#include <stdint.h>

#define ENG_NAME_MAX 48
#define ENG_MAX_DIMS 4
#define ENG_MAX_TENSORS 64

typedef struct eng_tensor_info {
    char name[ENG_NAME_MAX];
    size_t offset; /* in floats from the start of the flat vector */
    size_t count;  /* elements: the product of shape */
    int ndim;
    int shape[ENG_MAX_DIMS];
    int state; /* not trained but computed (BatchNormalization's moving statistics): its
                  gradient is always 0, and a parameter server averages the workers'
                  changes to it instead of running the optimizer over it */
} eng_tensor_info;

typedef struct eng_layout {
    eng_tensor_info tensors[ENG_MAX_TENSORS];
    int n;
    size_t total; /* floats in the flat vector */
} eng_layout;

/* Appends a tensor at the end of the vector; returns its index. Asserts on overflow of
 * ENG_MAX_TENSORS (a model definition error, not a user error). */
int eng_layout_add(eng_layout *lay, const char *name, int ndim, const int *shape);

/* Returns the index of the tensor called name, or -1. */
int eng_layout_find(const eng_layout *lay, const char *name);

/* FNV-1a over every name, shape and offset: two processes with equal checksums agree on
 * what each float of the vector means. */
uint64_t eng_layout_checksum(const eng_layout *lay);

/* Formats a shape as "(3, 3, 1, 32)" into buf; returns buf. */
char *eng_shape_str(char *buf, size_t len, int ndim, const int *shape);

#endif
