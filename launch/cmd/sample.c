/* sample.c: `pstrain sample`: a PNG grid of a GAN checkpoint's generated digits. */
#include "engine/base/base.h"
#include "engine/ckpt/ckpt.h"
#include "engine/model.h"
#include "launch/cmd/cmd.h"
#include "worker/eval.h"

#include <stdio.h>

int cmd_sample(const cmd_config *cfg) {
    const cmd_args *a = &cfg->args;
    eng_ckpt c = {0};
    char err[1024] = "";
    int rc = cmd_read_checkpoint(a, &c);
    if (rc == PST_OK && !eng_model_find(c.model)->parts) /* named by the file it came from */
        rc = cmd_said(pst_err(err, sizeof err, PST_EARG,
                              "%s: a checkpoint of %s; sample needs a GAN's", a->checkpoint,
                              c.model),
                      err);
    else if (rc == PST_OK)
        rc =
            cmd_said(wk_sample(&cfg->worker, &c, (int)a->n, a->live, a->out, err, sizeof err), err);
    eng_ckpt_free(&c);
    return rc;
}
