/* format.h: what the files of engine/ckpt/ share and no one else uses: the fixed fields of
 * /pstrain as tables, the checks writing and reading share, and the steps between the
 * writer, the reader and the directory. Names start with ckpt_. */
#ifndef PSTRAIN_ENGINE_CKPT_FORMAT_H
#define PSTRAIN_ENGINE_CKPT_FORMAT_H

#include "engine/ckpt/ckpt.h"

#include <stddef.h>
#include <stdint.h>

#define CKPT_PATH_LEN 4096 /* room for a path */

/* A value's type in the file (little-endian, whatever the host). */
typedef enum ckpt_type { F_I32, F_I64, F_U64, F_F32, F_F64, F_STR, F_U8 } ckpt_type;

/* A scalar attribute and where it lives in a struct. */
typedef struct ckpt_field {
    const char *name;
    ckpt_type type;
    size_t offset, size;
} ckpt_field;

/* /pstrain's own scalars after @model (offsets into eng_ckpt): layout_checksum, total. */
#define CKPT_NFIELDS 2
extern const ckpt_field ckpt_fields[CKPT_NFIELDS];
/* An optimizer's hyperparameters, float32 attributes of the group that holds it (/pstrain for
 * part 0, /pstrain/optimizer_<p + 1> for part p): offsets into eng_optim_cfg. */
#define CKPT_NOPTIM_FIELDS 7
extern const ckpt_field ckpt_optim_fields[CKPT_NOPTIM_FIELDS];

/* "m", "v" (Adam) or "accumulator" (RMSprop): slot s's dataset name. */
const char *ckpt_slot_name(eng_optim_kind kind, int s);
/* Part p's optimizer group: "optimizer" (in /pstrain), "optimizer_2", ... into buf. */
const char *ckpt_optim_group(int p, char *buf, size_t len);
/* m's parts (name, offset, total) into c->nparts and c->parts. */
void ckpt_set_parts(eng_ckpt *c, const eng_model *m);
/* Whether name is one of /pstrain's own attributes / groups (optimizer, optimizer_<n>,
 * layout), which the meta cannot hold. */
int ckpt_engine_attr(const char *name);
int ckpt_engine_group(const char *name);
/* A layer's weights as Keras stores them: the layout's tensors of the layer ("<layer>/..."),
 * in layout order (Keras's: kernel, then bias), and their Keras names ("<tensor>:0"). */
typedef struct ckpt_keras_layer {
    int n;
    int idx[ENG_MAX_TENSORS];                      /* the tensors' indices in the layout */
    char names[ENG_MAX_TENSORS][ENG_NAME_MAX + 2]; /* "<tensor>:0" */
    const char *wn[ENG_MAX_TENSORS];               /* names[j], as weight_names lists them */
} ckpt_keras_layer;
void ckpt_keras_layer_of(const eng_model *m, const char *layer, ckpt_keras_layer *kl);

/* Checks that return PST_OK or code with one line naming path: an optimizer's
 * hyperparameters (which: "optimizer", "optimizer_2", ...); update-count runs that tile
 * [0, total); a meta that can be written and read back as it is (PST_EARG). */
int ckpt_check_optim(const eng_optim_cfg *o, const char *which, const char *path, int code,
                     char *err, size_t errlen);
int ckpt_check_runs(const eng_ckpt_iters *runs, int nruns, uint64_t total, const char *path,
                    int code, char *err, size_t errlen);
int ckpt_check_meta(const eng_ckpt_meta *m, const char *path, char *err, size_t errlen);
/* The values of c's arrays (m's layout names the weights' datasets): weights, moving averages
 * and first moments finite with magnitudes up to 2^64, second moments finite and >= 0. Returns
 * PST_OK or code with one line naming path, the dataset, the element and what was expected. */
int ckpt_check_values(const eng_ckpt *c, const eng_model *m, const char *path, int code, char *err,
                      size_t errlen);

/* image.c: HDF5 1.10's file images carry a stale superblock checksum: recompute it. Returns
 * 0, or -1 for bytes that do not start with a superblock. */
int ckpt_fix_superblock(uint8_t *img, size_t len);
/* image.c: a file's first bytes must be HDF5's signature and a superblock of version 2 or
 * later. Returns PST_OK, or PST_EIO / PST_EFORMAT with one line naming path. */
int ckpt_check_head(const char *path, char *err, size_t errlen);
/* The same of a file's first got bytes (path names them in messages). */
int ckpt_check_head_bytes(const void *bytes, size_t got, const char *path, char *err,
                          size_t errlen);

/* write.c: eng_ckpt_write, fsyncing the file when sync. */
int ckpt_write_file(const char *path, const eng_ckpt *c, const eng_model *m, int sync, char *err,
                    size_t errlen);
/* dir.c: data[0, len) to path (created or truncated), fsynced when sync; nothing left at
 * path on failure. Returns PST_OK or PST_EIO with one line. */
int ckpt_write_bytes(const char *path, const void *data, size_t len, int sync, char *err,
                     size_t errlen);

#endif
