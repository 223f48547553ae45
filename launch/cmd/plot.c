/* plot.c: `pstrain plot`: runs' --metrics files drawn as their training curves, overlaid in
 * one chart (worker/report/chart.h), PNG or SVG by --out's extension. */
#include "engine/base/base.h"
#include "launch/cmd/cmd.h"
#include "worker/report/chart.h"

#include <stdio.h>

int cmd_plot(const cmd_config *cfg) {
    const cmd_args *a = &cfg->args;
    char err[1024] = "";
    const int rc = wk_chart(a->inputs, a->ninputs, a->out, a->title, err, sizeof err);
    wk_chart_release();
    if (rc != PST_OK)
        return cmd_said(rc, err);
    printf("%s: the curves of", a->out);
    for (int i = 0; i < a->ninputs; i++)
        printf(" %s", a->inputs[i]);
    printf("\n");
    return PST_OK;
}
