/* eval.c: `pstrain eval`: a checkpoint's weights on the test set (a classifier), or its
 * generated digits scored by a judge (a GAN), in one process. */
#include "worker/eval.h"

#include "engine/base/base.h"
#include "engine/ckpt/ckpt.h"
#include "launch/cmd/cmd.h"

int cmd_eval(const cmd_config *cfg) {
    const cmd_args *a = &cfg->args;
    if (a->input_file[0])
        return cmd_eval_inputs(cfg);
    eng_ckpt c = {0};
    char err[1024] = "";
    int rc = cmd_read_checkpoint(a, &c);
    if (rc == PST_OK)
        rc = cmd_said(wk_eval(&cfg->worker, a->checkpoint, &c, a->live, err, sizeof err), err);
    eng_ckpt_free(&c);
    return rc;
}
