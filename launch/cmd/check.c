/* check.c: `pstrain check`, what a launcher runs on every host before it starts a job, so
 * that a host with another build, another model definition or missing data is refused by
 * name before any rank starts; and `pstrain --version`. The line:
 *
 *   pstrain VERSION build BUILD model NAME layout 0xCHECKSUM data ok
 *   pstrain VERSION build BUILD model NAME layout 0xCHECKSUM data missing: REASON
 *
 * VERSION is the project's (CMake's PROJECT_VERSION), BUILD `git describe --always --dirty`
 * of the source tree when the build was configured ("unknown" without git), CHECKSUM the
 * model's eng_layout_checksum as 16 hex digits; REASON names the file. Hosts agree when
 * their lines are equal. A second line names the OpenBLAS kernel (engine/blas.h), which may
 * differ between hosts. The data is checked the way training opens it (MNIST and
 * Fashion-MNIST: loads the IDX train and test files; IMDB: opens reviews.json and reads its
 * first bytes, or the aclImdb/ folders). */
#include "engine/base/base.h"
#include "engine/base/file.h"
#include "engine/blas.h"
#include "engine/dataset.h"
#include "engine/layout.h"
#include "engine/model.h"
#include "launch/cmd/cmd.h"

#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>

/* Set by launch/CMakeLists.txt; these fallbacks are for a build that forgot to. */
#ifndef PSTRAIN_VERSION
#define PSTRAIN_VERSION "unknown"
#endif
#ifndef PSTRAIN_BUILD_ID
#define PSTRAIN_BUILD_ID "unknown"
#endif

/* path is a readable directory. Returns PST_OK or PST_EIO with err. */
static int readable_dir(const char *path, char *err, size_t errlen) {
    DIR *d = opendir(path);
    if (!d)
        return pst_err(err, errlen, PST_EIO, "%s/: cannot open the folder: %s", path,
                       strerror(errno));
    closedir(d);
    return PST_OK;
}

/* IMDB as engine/imdb.c finds it: DIR/imdb/reviews.json (present, a regular file that can be
 * read and starts as a JSON array), else the folders DIR/aclImdb/{train,test}/{pos,neg}.
 * Tokenizing 50,000 reviews would take seconds; whether they parse is train's to say. */
static int check_imdb(const char *dir, char *err, size_t errlen) {
    char path[WK_PATH_MAX + 128];
    snprintf(path, sizeof path, "%s/imdb/reviews.json", dir);
    struct stat st;
    if (stat(path, &st) == 0) {
        int rc;
        FILE *f = pst_fopen_regular(path, &rc, err, errlen); /* a FIFO is refused, not waited on */
        if (!f)
            return rc;
        char head[4096];
        const size_t got = fread(head, 1, sizeof head, f);
        const int bad = ferror(f);
        fclose(f);
        if (bad)
            return pst_err(err, errlen, PST_EIO, "%s: cannot read: %s", path, strerror(errno));
        size_t i = 0;
        while (i < got && strchr(" \t\r\n", head[i]))
            i++;
        if (i == got || head[i] != '[')
            return pst_err(err, errlen, PST_EFORMAT, "%s: expected a JSON array of reviews, %s",
                           path, got ? "it does not start with '['" : "the file is empty");
        return PST_OK;
    }
    char folder[WK_PATH_MAX + 64];
    snprintf(folder, sizeof folder, "%s/aclImdb", dir);
    if (stat(folder, &st) != 0 || !S_ISDIR(st.st_mode))
        return pst_err(err, errlen, PST_EIO, "%s: not found (nor the folder %s/)", path, folder);
    static const char *const sub[] = {"train/pos", "train/neg", "test/pos", "test/neg"};
    for (size_t k = 0; k < sizeof sub / sizeof sub[0]; k++) {
        snprintf(path, sizeof path, "%s/%s", folder, sub[k]);
        const int rc = readable_dir(path, err, errlen);
        if (rc != PST_OK)
            return rc;
    }
    return PST_OK;
}

int cmd_check_data(const wk_opts *o, const eng_model_def *def, char *err, size_t errlen) {
    if (strcmp(def->dataset, "imdb") == 0)
        return check_imdb(o->data, err, errlen);
    eng_split s;
    memset(&s, 0, sizeof s);
    const int rc = eng_split_load_idx(&s, o->data, def->dataset, o->val_split, 0, 1, err, errlen);
    eng_split_deinit(&s);
    return rc;
}

/* Prints the line (and the kernel's) to stdout. Returns PST_OK (data ok), the data's code
 * with the line saying why (data missing), or PST_EARG with nothing printed but one line on
 * stderr (a model that cannot be built). */
int cmd_check(const cmd_config *c) {
    const wk_opts *o = &c->worker;
    const eng_model_def *def = eng_model_find(o->model);
    eng_model m;
    char err[1024] = "";
    PST_ASSERT(def, "--model %s: cmd_cli_parse lets only known models through", o->model);
    int rc = eng_model_build(&m, def, err, sizeof err);
    if (rc != PST_OK)
        return cmd_said(rc, err);
    char why[2048] = "";
    rc = cmd_check_data(o, def, why, sizeof why);
    for (char *p = why; *p; p++) /* the reason stays on the one line */
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    /* "data missing" is the stdout line's to say (a launcher reads that) */
    printf("pstrain %s build %s model %s layout 0x%016llx %s%s\n", PSTRAIN_VERSION,
           PSTRAIN_BUILD_ID, def->name, (unsigned long long)eng_layout_checksum(&m.layout),
           rc == PST_OK ? "data ok" : "data missing: ", rc == PST_OK ? "" : why);
    /* A second line, for people: the kernel differs between hosts of one job without harm
     * (a launcher compares only the first line). */
    char blas[160];
    printf("%s\n", eng_blas_describe(blas, sizeof blas));
    fflush(stdout);
    return rc;
}

void cmd_version_print(FILE *out) {
    char blas[160];
    fprintf(out, "pstrain %s (build %s)\n%s\n", PSTRAIN_VERSION, PSTRAIN_BUILD_ID,
            eng_blas_describe(blas, sizeof blas));
}
