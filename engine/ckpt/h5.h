/* h5.h: the HDF5 helpers of engine/ckpt/: plumbing, and typed writer and reader helpers with
 * a sticky error (the first failure is recorded with what failed, later calls do nothing,
 * the caller checks once). Only engine/ckpt/ includes it. */
#ifndef PSTRAIN_ENGINE_CKPT_H5_H
#define PSTRAIN_ENGINE_CKPT_H5_H

#include "engine/ckpt/format.h"

#include <hdf5.h>
#include <stddef.h>
#include <stdint.h>

#define CKPT_CHUNK_BYTES ((size_t)1 << 20) /* Fletcher32 covers one chunk: keep them modest */
#define CKPT_REASON_LEN 160                /* why HDF5 failed, as ckpt_h5_reason gives it */
#define CKPT_LABEL_LEN 320 /* "attribute step of /pstrain", as ckpt_label gives it */

/* t's type in the file (little-endian) and in memory, and its name for messages. */
hid_t ckpt_file_type(ckpt_type t);
hid_t ckpt_mem_type(ckpt_type t);
const char *ckpt_type_name(ckpt_type t);

/* HDF5 prints its error stack to stderr by default; we report one line instead. */
void ckpt_h5_quiet(void);
/* File access: in memory by HDF5's core driver growing by image bytes when image > 0 (format
 * bounds 1.8..latest, so object headers carry checksums); objects close with the file; no
 * file locks. -1 on failure. */
hid_t ckpt_h5_fapl(size_t image);
/* Why the last HDF5 call failed, into buf (CKPT_REASON_LEN bytes). Call it first. */
const char *ckpt_h5_reason(char *buf);
/* "attribute step of /pstrain", "dataset /pstrain/optimizer/m" or "group /conv2d" (kind is
 * the first word) into buf (CKPT_LABEL_LEN bytes). */
void ckpt_label(char *buf, hid_t loc, const char *name, const char *kind);
/* Whether loc has a link at path, checked one component at a time. */
int ckpt_path_exists(hid_t loc, const char *path);
/* A tensor's dimensions as HDF5's. */
void ckpt_tensor_dims(const eng_tensor_info *t, hsize_t *dims);

/* --- writing: each does nothing once w->failed --- */
typedef struct ckpt_writer {
    int failed;
    char what[512]; /* "dataset /pstrain/optimizer/m: No space left on device" */
} ckpt_writer;

/* Records the first failure: what (kind and name of loc's object) and why (reason, or HDF5's). */
void ckpt_w_fail(ckpt_writer *w, hid_t loc, const char *name, const char *kind, const char *reason);
/* A scalar (n < 0) or 1-D (n >= 0 elements) attribute name of loc. */
void ckpt_w_attr(ckpt_writer *w, hid_t loc, const char *name, hid_t ftype, hid_t mtype, long n,
                 const void *v);
/* A scalar fixed-length string attribute (null-padded, numpy's 'S'). */
void ckpt_w_str_attr(ckpt_writer *w, hid_t loc, const char *name, const char *s);
/* A group without timestamps; its id, or -1 with the failure recorded. */
hid_t ckpt_w_group(ckpt_writer *w, hid_t loc, const char *name);
void ckpt_close_group(hid_t g);
/* Dataset path of loc (missing groups on the way made), chunked, with Fletcher32 checksums. */
void ckpt_w_dataset(ckpt_writer *w, hid_t loc, const char *path, hid_t ftype, hid_t mtype, int rank,
                    const hsize_t *dims, const void *data);
/* s[0, n) as a 1-D array of fixed-length strings: an attribute, or a dataset when dataset. */
void ckpt_w_strs(ckpt_writer *w, hid_t loc, const char *name, const char *const *s, int n,
                 int dataset);

/* A scalar variable-length UTF-8 string attribute: what h5py writes for a Python str. */
void ckpt_w_vstr_attr(ckpt_writer *w, hid_t loc, const char *name, const char *s);

/* write.c: Keras's save_weights_to_hdf5_group for m's layers [l0, l0 + nl) into loc
 * (@layer_names, @backend, @keras_version, a group per layer); tensor t's values at
 * weights + (t->offset - lo). */
void ckpt_write_keras_layers(ckpt_writer *w, hid_t loc, const eng_model *m, int l0, int nl,
                             const float *weights, size_t lo);
/* write.c: an HDF5 file built in memory by fill(w, file, arg) (guess: bytes to reserve), as
 * its bytes into *image (pst_malloc'ed: free them; *len bytes), superblock checksum fixed.
 * Returns PST_OK, or PST_EIO with one line naming path and what failed. */
typedef void (*ckpt_fill)(ckpt_writer *w, hid_t file, const void *arg);
int ckpt_build_image(const char *path, size_t guess, ckpt_fill fill, const void *arg, void **image,
                     size_t *len, char *err, size_t errlen);

/* --- reading: each does nothing once r->rc != PST_OK --- */
typedef struct ckpt_reader {
    const char *path;
    char *err;
    size_t errlen;
    int rc;              /* the first failure's code (its message is in err), or PST_OK */
    uint64_t file_bytes; /* the file's length: what it says of sizes is checked against it */
    eng_ckpt_meta *meta; /* what the meta's iteration callbacks fill */
} ckpt_reader;

/* Records the first failure as "path: message". Returns r->rc. */
int ckpt_r_fail(ckpt_reader *r, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Whether n values of size bytes, a count the file gives, can be in the file: checked before
 * memory is allocated for them (a chunked dataset with no chunk written claims any shape). */
int ckpt_fits(const ckpt_reader *r, uint64_t n, uint64_t size);
/* Records that lab's n values of size bytes cannot be in the file. */
void ckpt_r_too_big(ckpt_reader *r, const char *lab, uint64_t n, uint64_t size);
/* Opens attribute name of loc (lab gets its label); -1 with the failure recorded. */
hid_t ckpt_r_open_attr(ckpt_reader *r, hid_t loc, const char *name, char *lab);
/* The scalar attribute name of loc, stored exactly as type says, into v. */
void ckpt_r_attr(ckpt_reader *r, hid_t loc, const char *name, ckpt_type type, void *v);
/* The scalar fixed-length string attribute name of loc into out (outlen bytes with its NUL;
 * longer strings are refused). */
void ckpt_r_str_attr(ckpt_reader *r, hid_t loc, const char *name, char *out, size_t outlen);
/* Opens dataset path of loc and checks its shape against dims[0, rank) (NULL: only the rank,
 * the shape into got). -1 with the failure recorded. */
hid_t ckpt_r_open_dataset(ckpt_reader *r, hid_t loc, const char *path, int rank,
                          const hsize_t *dims, hsize_t *got, char *lab);
/* Dataset path of loc, stored exactly as type says with shape dims[0, rank), into out. */
void ckpt_r_dataset(ckpt_reader *r, hid_t loc, const char *path, ckpt_type type, int rank,
                    const hsize_t *dims, void *out);
/* A 1-D array of fixed-length strings (attribute, or dataset) must hold exactly expect[0, n). */
void ckpt_r_check_strs(ckpt_reader *r, hid_t loc, const char *name, int dataset,
                       const char *const *expect, int n);

/* meta.c: /pstrain's attributes the engine does not know, and the int64 arrays in its groups
 * the engine does not know, into m, in the order of their names. */
void ckpt_read_meta_attrs(ckpt_reader *r, hid_t g, eng_ckpt_meta *m);
void ckpt_read_meta_arrays(ckpt_reader *r, hid_t g, eng_ckpt_meta *m);

#endif
