/* eval.c: `pstrain eval`: a checkpoint's weights on the test set (a classifier), or its
 * generated digits scored by a judge (a GAN), in one process. */
#include "engine/base/base.h"
#include "engine/ckpt.h"
#include "engine/model.h"
#include "launch/cmd/cmd.h"
#include "worker/gan.h"
#include "worker/train.h"

int cmd_eval(const cmd_config *cfg) {
    const cmd_args *a = &cfg->args;
    eng_ckpt c = {0};
    char err[1024] = "";
    int rc = cmd_read_checkpoint(a, &c);
    if (rc == PST_OK) /* TODO(C4): wk_eval evaluates every model */
        rc = cmd_said(
            cmd_code(eng_model_find(c.model)->parts
                         ? wk_gan_eval(&cfg->worker, a->checkpoint, &c, a->live, err, sizeof err)
                         : wk_eval(&cfg->worker, a->checkpoint, &c, a->live, err, sizeof err)),
            err);
    eng_ckpt_free(&c);
    return rc;
}
