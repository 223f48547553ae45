/* plot.c: `pstrain plot`: a run's --metrics file drawn as its training curves. */
#include "worker/plot.h"
#include "engine/base/base.h"
#include "launch/cmd/cmd.h"

#include <stdio.h>

int cmd_plot(const cmd_config *cfg) {
    const cmd_args *a = &cfg->args;
    char err[1024] = "";
    const int rc = cmd_code(wk_plot(a->inputs[0], a->out, a->title, err, sizeof err));
    if (rc == PST_OK)
        printf("%s: the curves of %s\n", a->out, a->inputs[0]);
    return cmd_said(rc, err);
}
