/* init_from.c: the weights of --init-from's Keras files (worker/init_from.h). */
#include "worker/init_from.h"

#include "engine/base/base.h"
#include "engine/ckpt/keras.h"

#include <stdio.h>
#include <string.h>

int wk_init_from_load(const wk_opts *o, const eng_model *m, float **weights, char *err,
                      size_t errlen) {
    *weights = pst_alloc(sizeof(float) * m->layout.total);
    const int total = eng_keras_weighted_layers(m);
    int next = 0, rc = PST_OK;
    char path[WK_PATH_MAX];
    const char *at = o->init_from;
    for (;;) {
        const size_t len = strcspn(at, ",");
        snprintf(path, sizeof path, "%.*s", (int)len, at);
        if (!path[0])
            rc = pst_err(err, errlen, PST_EARG, "--init-from %s: an empty file name", o->init_from);
        else if (next == total)
            rc = pst_err(err, errlen, PST_EFORMAT,
                         "%s: %s's %d layers with weights were all read from the files before it",
                         path, m->def->name, total);
        else
            rc = eng_keras_load_weights(path, m, &next, *weights, err, errlen);
        if (rc != PST_OK || !at[len])
            break;
        at += len + 1;
    }
    if (rc == PST_OK && next < total)
        rc = pst_err(err, errlen, PST_EFORMAT,
                     "%s: layer %s: missing (the files give %d layers with weights, %s has %d)",
                     path, eng_keras_weighted_layer(m, next), next, m->def->name, total);
    if (rc != PST_OK)
        pst_free(*weights), *weights = NULL;
    return rc;
}
