/* models.h: the model `pstrain serve` serves, and its hot reload.
 *
 * Given a checkpoint file, that file is served for the life of the process. Given a checkpoint
 * directory, what its `latest` names is served, and a watcher thread looks at `latest` every
 * 200 ms: when it names another file, the watcher loads it (the only thread that reads HDF5
 * after start-up) and swaps it in. A request holds a reference to the model it was decoded
 * against, so it finishes on that version while new requests get the new one; the old model is
 * freed when its last request lets go. A file that fails to load (or is another model's) is
 * said in one line on stderr and not tried again until `latest` changes; the old version keeps
 * serving. */
#ifndef PSTRAIN_SERVE_MODELS_H
#define PSTRAIN_SERVE_MODELS_H

#include "launch/serve/metrics.h"
#include "worker/infer.h"

#include <stddef.h>
#include <stdint.h>

typedef struct sv_models sv_models;

/* One version being served: borrowed from sv_models_acquire until sv_models_release. */
typedef struct sv_model {
    wk_infer *infer;
    int64_t version; /* the checkpoint's step */
    char path[4096]; /* the file it came from */
    int refs;        /* guarded by the sv_models' lock */
} sv_model;

/* Loads the checkpoint at path (a file, or a directory's latest) for batches of up to
 * max_batch samples on `threads` compute threads (a GAN from its moving average unless
 * live), and, for a directory, starts the watcher. metrics (borrowed) gets the version and
 * the reloads. Returns an owned sv_models, or NULL with *rc (a PST code) and one line in err
 * naming the file. */
sv_models *sv_models_new(const char *path, int max_batch, int threads, int live,
                         sv_metrics *metrics, int *rc, char *err, size_t errlen);

/* Stops the watcher and frees the models; every reference must have been released. NULL
 * is fine; *s becomes NULL. */
void sv_models_free(sv_models **s);

/* The version served now, referenced: pass it to sv_models_release when done. Any thread. */
sv_model *sv_models_acquire(sv_models *s);
void sv_models_release(sv_models *s, sv_model **m);

#endif
