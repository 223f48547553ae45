/* main.c: `pstrain`, the one program of a job. Parses the command line and runs the
 * command; the only place that exits. */
#include "engine/base.h"
#include "engine/model.h"
#include "worker/cli.h"
#include "worker/train.h"

#include <stdio.h>
#include <string.h>

int main(int argc, char **argv) {
    static wk_opts o;
    char err[1024] = "";
    if (wk_cli_parse(&o, argc, argv, err, sizeof err) != 0) {
        fprintf(stderr, "pstrain: %s\n", err);
        return 2;
    }
    if (o.help) {
        wk_cli_usage(stdout, (int)o.command < 0          ? NULL
                             : o.command == WK_CMD_TRAIN ? "train"
                                                         : "summary");
        return 0;
    }
    if (o.command == WK_CMD_SUMMARY) {
        eng_model m;
        if (eng_model_build(&m, eng_model_find(o.model), err, sizeof err) != ENG_OK) {
            fprintf(stderr, "pstrain: %s\n", err);
            return 2;
        }
        eng_model_summary(&m, stdout);
        return 0;
    }
    int status = wk_train_local(&o, err, sizeof err);
    if (status != 0)
        fprintf(stderr, "pstrain: %s\n", err[0] ? err : "training failed");
    return status;
}
