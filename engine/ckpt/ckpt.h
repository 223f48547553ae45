/* ckpt.h: a model's checkpoint as one self-contained HDF5 file: the weights in Keras 2's
 * layout, so that Keras and h5py read them as they are, and pstrain's own state beside them:
 * each parameter part's optimizer (slots and update counts) and moving average, and a meta
 * the engine keeps without knowing it (a run's record: worker/ckpt/record.h).
 *
 * Files of engine/ckpt/: state.c (the checkpoint in memory, checks), meta.c (the meta),
 * h5write.c and h5read.c (typed HDF5 helpers), image.c (a file's bytes: head check,
 * superblock checksum), write.c (the format, written), read.c (read and validated), dir.c
 * (a directory: atomic saves, latest, keep; resolve), print.c (inspect).
 *
 * File layout (format_version 1):
 *
 *   /                                 Keras 2's HDF5 weights layout (model.load_weights):
 *     @layer_names                    every layer of the model in order, fixed-length
 *                                     null-padded byte strings (numpy 'S')
 *     @backend = "tensorflow", @keras_version = "2.13.1"   (scalar fixed-length strings)
 *     <layer>/                        one group per layer, e.g. conv2d, max_pooling2d, ...
 *       @weight_names                 e.g. ["conv2d/kernel:0", "conv2d/bias:0"]; an empty
 *                                     array (shape (0,)) for layers without weights
 *       <layer>/kernel:0, bias:0      float32 in Keras shapes: conv kernels (kh, kw, in, out),
 *                                     dense kernels (in, out), biases (out,)
 *   /pstrain/                         ours
 *     @format_version int32 (1), @model string, @layout_checksum uint64, @total uint64
 *     @<meta>                         the meta's attributes, in its order (a run's record:
 *                                     @step, @epoch, ..., @epochs)
 *     @optimizer string ("adam", "rmsprop"), @lr, @beta1, @beta2, @rho, @epsilon,
 *     @clipvalue, @decay float32: part 0's optimizer (all seven, whichever it uses)
 *     @split uint64                   models of several parts (a GAN) only: part 1's offset;
 *                                     absent means one part
 *     optimizer/m, optimizer/v        part 0's Adam moments, float32 (its total)
 *     optimizer/accumulator           RMSprop's instead
 *     optimizer_<p+1>/                part p >= 1's optimizer (a GAN's discriminator:
 *       @lr, ..., @decay, @optimizer  optimizer_2), attributes as /pstrain's own, and its
 *       m, v or accumulator           slots, float32 (its total)
 *     @ema_decay float64, ema         models of several parts only, when the run kept one: an
 *                                     exponential moving average of part 0 (a GAN's
 *                                     generator, weights and state), float32 (its total),
 *                                     and its decay (eng_ema_update)
 *     optimizer/iterations            int64 (nruns, 3): rows (lo, n, iterations) tiling
 *                                     [0, total) in order, every part's runs at their
 *                                     offsets in the whole vector
 *     <group>/<name>                  the meta's int64 arrays, in its order (workers/steps)
 *     vocab                           uint8 (bytes), text models only: the tokenizer's words
 *                                     by rank, each followed by '\n' (evaluation and resumed
 *                                     runs tokenize with it)
 *     layout/names                    fixed strings (ntensors): "conv2d/kernel", ...
 *     layout/offsets, layout/counts   uint64 (ntensors): where each tensor lies in the flat
 *                                     vector (for h5py users; pstrain checks them)
 *
 * Integrity: every dataset is chunked (chunks up to 1 MiB) with the Fletcher32 filter, so a
 * flipped byte in the data fails the read; files are created with library format bounds
 * (1.8, latest) so object headers carry checksums; HDF5 refuses a truncated file at open.
 * Reading refuses files of older formats (superblock before version 2: no metadata checksums)
 * before HDF5 parses them: libhdf5 1.10 is not safe on damaged files of that kind. Sizes a
 * file gives (its vocabulary's length, the meta's arrays, its update-count runs, strings)
 * are checked against the file's length before memory is allocated for them.
 * Reading validates everything against the model the file names and returns all or nothing,
 * values included (state.c: ckpt_check_values, ckpt_check_optim): a file whose checksums hold
 * but whose weights are NaN or 1e30, whose second moments are negative, whose optimizer is
 * outside the flags' ranges or whose counts could overflow is refused as damaged is.
 * Objects carry no timestamps: the same checkpoint is always the same bytes.
 *
 * HDF5 builds each file in memory and pstrain writes it out: a full disk is then an error
 * like any other (HDF5 1.10 failing to write a file itself cannot close it). The cost is
 * memory for the file, twice its size at the peak of eng_ckpt_write.
 *
 * Not thread-safe (HDF5 is not): one thread at a time. The functions turn off HDF5's own
 * error printing for the process, so a failure reads as one line in the caller's buffer. */
#ifndef PSTRAIN_ENGINE_CKPT_CKPT_H
#define PSTRAIN_ENGINE_CKPT_CKPT_H

#include "engine/model.h"
#include "engine/optim.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define ENG_CKPT_FORMAT 1 /* /pstrain attribute format_version */

/* The largest count a checkpoint may hold (update counts here; a run's steps in its record):
 * 2^53. Counts pass through doubles (positions gathered by a reduce, Adam's pow(beta, t),
 * logs and JSON), which hold integers exactly only up to 2^53, and a count there is so far
 * from INT64_MAX that no run can overflow it by counting on (2^53 steps at a million a second
 * take 285 years): a file holding more is refused. */
#define ENG_CKPT_COUNT_MAX ((int64_t)1 << 53)

/* Update counts of a range of a part's vector: the optimizer's `iterations` for its elements
 * [lo, lo + n), lo relative to the part's first float. A part's runs tile [0, total) in order. */
typedef struct eng_ckpt_iters {
    uint64_t lo, n;
    int64_t iterations;
} eng_ckpt_iters;

/* A parameter part's training state (eng_model.parts): its range of the flat vector, its
 * optimizer with the optimizer's arrays and update counts, and a moving average of its
 * weights when the run kept one. */
typedef struct eng_ckpt_part {
    char name[32];          /* the model's part name: "model", "generator", "discriminator" */
    uint64_t offset, total; /* [offset, offset + total) of the whole vector */
    eng_optim_cfg optim;    /* kind, lr, beta1, beta2, rho, epsilon, clipvalue, decay */
    int nslots;             /* eng_optim_nslots(optim.kind): 2 for Adam (m, v), 1 for RMSprop */
    float *slots[2];        /* (total) each; unused ones NULL */
    int nruns;
    eng_ckpt_iters *runs; /* (nruns): tile [0, total) in order */
    /* A moving average of the part's weights (eng_ema_update), (total); NULL: none. The file
     * keeps one for part 0 of a model of several parts only (a GAN's generator). */
    float *ema;
    double ema_decay; /* in (0, 1) with an ema */
} eng_ckpt_part;

/* The attributes of /pstrain the engine does not know, and the int64 arrays in groups of
 * /pstrain it does not know (a run's record: worker/ckpt/record.h names and checks them). The
 * engine writes them as they are, attributes after @total and arrays after the update counts,
 * in this order; it reads them in the order of their names. */
#define ENG_CKPT_META_ATTRS 24
#define ENG_CKPT_META_ARRAYS 4
#define ENG_CKPT_META_NAME 32

typedef enum eng_meta_type {
    ENG_META_I32,  /* int32 scalar */
    ENG_META_I64,  /* int64 scalar */
    ENG_META_F64,  /* float64 scalar */
    ENG_META_STR,  /* fixed-length string scalar, at most ENG_CKPT_META_NAME - 1 bytes */
    ENG_META_OTHER /* anything else a file holds (read only): no value */
} eng_meta_type;

typedef struct eng_meta_attr {
    char name[ENG_CKPT_META_NAME];
    eng_meta_type type;
    int32_t i32;
    int64_t i64;
    double f64;
    char str[ENG_CKPT_META_NAME];
} eng_meta_attr;

typedef struct eng_meta_array {
    char name[2 * ENG_CKPT_META_NAME]; /* "<group>/<dataset>" under /pstrain: "workers/steps" */
    uint64_t n;
    int64_t *v; /* (n), pst_alloc'ed: eng_ckpt_free frees it */
} eng_meta_array;

typedef struct eng_ckpt_meta {
    int nattrs;
    eng_meta_attr attrs[ENG_CKPT_META_ATTRS];
    int narrays;
    eng_meta_array arrays[ENG_CKPT_META_ARRAYS];
} eng_ckpt_meta;

typedef struct eng_ckpt {
    char model[64];           /* registry name, e.g. "mnist_cnn" */
    uint64_t layout_checksum; /* eng_layout_checksum of the model */
    uint64_t total;           /* floats in the flat vector */
    float *weights;           /* (total): every part, in the model's (Keras) order */
    int nparts;               /* the model's: 1, or a GAN's 2 */
    eng_ckpt_part parts[ENG_MAX_PARTS];
    /* text models: the tokenizer's vocabulary, words by rank, each ending in '\n'; NULL: none */
    char *vocab;
    uint64_t vocab_bytes;
    eng_ckpt_meta meta; /* the run's record, opaque to the engine */
} eng_ckpt;

/* Adds attribute name of type to m (names unique: an existing one is replaced) and returns
 * it for the caller to set its value. Asserts room (ENG_CKPT_META_ATTRS) and a name that fits. */
eng_meta_attr *eng_ckpt_meta_put(eng_ckpt_meta *m, const char *name, eng_meta_type type);
/* Adds (or replaces) array name ("<group>/<dataset>") of n int64 values, copied from v. */
void eng_ckpt_meta_put_array(eng_ckpt_meta *m, const char *name, const int64_t *v, uint64_t n);
/* Attribute or array name of m, or NULL. */
const eng_meta_attr *eng_ckpt_meta_get(const eng_ckpt_meta *m, const char *name);
const eng_meta_array *eng_ckpt_meta_get_array(const eng_ckpt_meta *m, const char *name);
/* Frees m's arrays and empties it. */
void eng_ckpt_meta_clear(eng_ckpt_meta *m);

/* Zeroes c and gives it m's identity: model name, layout checksum, total, and each part's
 * name, offset and total (no arrays: the caller allocates those it fills). */
void eng_ckpt_init(eng_ckpt *c, const eng_model *m);

/* Writes c as an HDF5 file at path, replacing any file there (not atomic: see
 * eng_ckpt_save). m is the model c->model built (its layout names the tensors). c is checked
 * first as eng_ckpt_read would check it: PST_EARG for a checkpoint it would refuse (model,
 * checksum, total or parts not m's, nslots wrong for a part's optimizer, a missing slot,
 * runs that do not tile a part, an ema other than part 0's of several, a meta that names
 * /pstrain's own attributes, ...). Returns PST_OK, or PST_EARG or PST_EIO (the file
 * cannot be written; nothing is left at path) with one line in err naming the path and what
 * failed. */
int eng_ckpt_write(const char *path, const eng_ckpt *c, const eng_model *m, char *err,
                   size_t errlen);

/* Reads and fully validates the checkpoint at path into *c, allocating its arrays (free
 * with eng_ckpt_free): every part of the model it names, runs relative to each part (a run
 * of the file across a part's end is cut there), and the meta in the order of its names. On any
 * failure nothing is returned (c is left zeroed, all memory freed) and err holds one line naming
 * the file and the problem: PST_EIO (cannot open; not a regular file: a FIFO is refused, not
 * waited on), PST_EARG (a directory: see eng_ckpt_resolve),
 * PST_EFORMAT (not HDF5, truncated, damaged, not a checkpoint, an HDF5 format older than pstrain
 * writes, another format version, a model or layout this pstrain does not have, a split that is not
 * the model's, a missing or misshapen field). */
int eng_ckpt_read(const char *path, eng_ckpt *c, char *err, size_t errlen);

/* eng_ckpt_read of a file's bytes in memory (bytes[0, len), borrowed; name names it in
 * messages): a checkpoint sent as its file's bytes (an MPI broadcast) reads as the file
 * would, with the same checks and the same codes, PST_EIO and PST_EARG aside. */
int eng_ckpt_read_image(const void *bytes, size_t len, const char *name, eng_ckpt *c, char *err,
                        size_t errlen);

/* The bytes of the file at path into *bytes (pst_malloc'ed: free them), *len of them, for
 * eng_ckpt_read_image elsewhere. Returns PST_OK, PST_EIO (cannot open or read) or PST_EARG
 * (a directory), with one line naming path. */
int eng_ckpt_load_bytes(const char *path, void **bytes, size_t *len, char *err, size_t errlen);

/* Frees the arrays of a checkpoint eng_ckpt_read filled (or whose arrays the caller got
 * from pst_alloc or malloc) and zeroes it. Accepts a zeroed checkpoint. */
void eng_ckpt_free(eng_ckpt *c);

/* Atomically adds c to directory dir (created if missing, one level): writes a temporary
 * file in dir, flushes and fsyncs it, renames it to dir/ckpt-<step>.h5 (step: the
 * run's position, which names the file), fsyncs dir, then
 * replaces dir/latest (one line naming the checkpoint file, "ckpt-1200.h5\n") the same way,
 * then deletes all but the `keep` ckpt-*.h5 files with the highest steps (keep <= 0: keep
 * all; never the one latest names). Temporary files (".pstrain-tmp-*") that killed writers
 * left are removed first: one writer per directory (worker/ckpt/writer.c holds the directory's
 * lock while it writes). A process killed at any point leaves
 * latest naming a complete, loadable checkpoint, or no latest if none was ever completed.
 * On success writes dir/ckpt-<step>.h5 to path_out (when non-NULL). Returns PST_OK, or an
 * eng_ckpt_write code, or PST_EIO (directory, fsync, rename), with one line in err; after a failed
 * save latest names what it named before. */
int eng_ckpt_save(const char *dir, int64_t step, const eng_ckpt *c, const eng_model *m, int keep,
                  char *path_out, size_t path_len, char *err, size_t errlen);

/* The checkpoint file meant by file_or_dir into out: a file is itself, a directory means the
 * file its `latest` names. Returns PST_OK, or PST_EIO (no such path, no latest: nothing
 * saved yet), PST_EFORMAT (latest empty, naming something with a '/', or naming a file that
 * does not exist or is not a regular file) or PST_EARG (out too small), with one line in err
 * naming the path; a FIFO, given or as latest, is refused without being opened for reading
 * (PST_EIO). */
int eng_ckpt_resolve(const char *file_or_dir, char *out, size_t outlen, char *err, size_t errlen);

/* For `pstrain inspect`: the metadata (format, model, the meta's attributes, the optimizer
 * and its hyperparameters, or with several parts each part's optimizer and the range it
 * updates, update-count runs, the meta's arrays), then one row per tensor of m's layout:
 * name, shape, min, max, mean and L2 norm of its weights. */
void eng_ckpt_print(const eng_ckpt *c, const eng_model *m, FILE *out);

/* s[0, n) for a message into buf (len bytes, cut to fit): bytes outside printable ASCII as
 * \xHH, so that what a file holds cannot break the one line it is quoted in. Returns buf. */
const char *eng_ckpt_quoted(char *buf, size_t len, const char *s, size_t n);

/* Its pieces, for a caller that prints the meta in words of its own (`pstrain inspect`):
 * the format line; each part's optimizer, moving average and update-count runs; the table
 * of tensors. */
void eng_ckpt_print_head(const eng_ckpt *c, FILE *out);
void eng_ckpt_print_parts(const eng_ckpt *c, FILE *out);
void eng_ckpt_print_tensors(const eng_ckpt *c, const eng_model *m, FILE *out);

#endif
