/* inspect.c: `pstrain inspect` (a checkpoint's metadata and tensors) and `pstrain summary`
 * (a model's layers), the commands that print and compute nothing; and the checkpoint
 * reading eval, inspect and sample share. */
#include "engine/base/base.h"
#include "engine/ckpt/ckpt.h"
#include "engine/model.h"
#include "launch/cmd/cmd.h"
#include "worker/ckpt/record.h"

#include <stdio.h>

int cmd_read_checkpoint(const cmd_args *a, eng_ckpt *c) {
    char path[WK_PATH_MAX], err[1024] = "";
    int rc = eng_ckpt_resolve(a->checkpoint, path, sizeof path, err, sizeof err);
    if (rc == PST_OK)
        rc = wk_record_read(path, c, NULL, err, sizeof err);
    return cmd_said(rc, err);
}

int cmd_inspect(const cmd_config *cfg) {
    eng_ckpt c = {0};
    const int rc = cmd_read_checkpoint(&cfg->args, &c);
    if (rc == PST_OK) {
        eng_model m;
        char err[1024];
        PST_ASSERT(eng_model_build(&m, eng_model_find(c.model), err, sizeof err) == PST_OK, "%s",
                   err);
        const wk_run_record r = wk_record_of(&c);
        eng_ckpt_print_head(&c, stdout);
        wk_record_print_run(&r, stdout);
        eng_ckpt_print_parts(&c, stdout);
        wk_record_print_steps(&r, stdout);
        eng_ckpt_print_tensors(&c, &m, stdout);
    }
    eng_ckpt_free(&c);
    return rc;
}

int cmd_summary(const cmd_config *cfg) {
    eng_model m;
    char err[1024] = "";
    const int rc = eng_model_build(&m, eng_model_find(cfg->worker.model), err, sizeof err);
    if (rc == PST_OK)
        eng_model_summary(&m, stdout);
    return cmd_said(rc, err);
}
