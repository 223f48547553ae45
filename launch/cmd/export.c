/* export.c: `pstrain export CKPT --keras OUT.h5`: a checkpoint as Keras 2 full-model files
 * (engine/ckpt/keras.h), the files Keras's `model.save('model.h5')` writes and
 * `keras.models.load_model` opens. A GAN gives two, as its two networks are two models:
 * OUT-generator.h5 and OUT-discriminator.h5 (OUT less its ".h5"). */
#include "engine/base/base.h"
#include "engine/ckpt/ckpt.h"
#include "engine/ckpt/keras.h"
#include "engine/model.h"
#include "launch/cmd/cmd.h"
#include "worker/ckpt/record.h"

#include <stdio.h>
#include <string.h>

/* Part p's file: out itself for a model of one part, else "<out less .h5>-<part>.h5". */
static int part_path(const char *out, const eng_model *m, int p, char *path, size_t len) {
    if (m->nparts == 1)
        return snprintf(path, len, "%s", out) < (int)len;
    size_t stem = strlen(out);
    if (stem > 3 && strcmp(out + stem - 3, ".h5") == 0)
        stem -= 3;
    return snprintf(path, len, "%.*s-%s.h5", (int)stem, out, m->parts[p].name) < (int)len;
}

int cmd_export(const cmd_config *cfg) {
    const cmd_args *a = &cfg->args;
    eng_ckpt c = {0};
    char err[1024] = "";
    int rc = cmd_read_checkpoint(a, &c);
    if (rc != PST_OK)
        return rc;
    eng_model m;
    PST_ASSERT(eng_model_build(&m, eng_model_find(c.model), err, sizeof err) == PST_OK, "%s", err);
    /* A GAN's generator is what `sample` and `eval` draw from: its moving average when the
     * run kept one, unless --live. */
    for (int p = 0; p < m.nparts && rc == PST_OK; p++) {
        char path[WK_PATH_MAX];
        const int ema = p == 0 && c.parts[0].ema && !a->live;
        if (!part_path(a->keras, &m, p, path, sizeof path))
            rc = pst_err(err, sizeof err, PST_EARG, "--keras %s: path too long", a->keras);
        else if ((rc = eng_keras_save(path, &c, &m, p, ema, err, sizeof err)) == PST_OK)
            printf("%s: %s%s of %s, step %lld, as a Keras full-model file\n", path,
                   m.nparts > 1 ? m.parts[p].name : c.model,
                   ema ? " (moving average)" : (m.nparts > 1 && p == 0 ? " (live weights)" : ""),
                   a->checkpoint, (long long)wk_record_of(&c).step);
    }
    eng_ckpt_free(&c);
    return cmd_said(rc, err);
}
