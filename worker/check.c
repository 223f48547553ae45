/* check.c: `pstrain check` (worker/check.h). */
#include "worker/check.h"

#include "engine/base/base.h"
#include "engine/blas.h"
#include "engine/dataset.h"
#include "engine/layout.h"
#include "engine/model.h"

#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>

/* Set by worker/CMakeLists.txt; these fallbacks are for a build that forgot to. */
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
        if (!S_ISREG(st.st_mode))
            return pst_err(err, errlen, PST_EIO, "%s: not a regular file", path);
        FILE *f = fopen(path, "rb");
        if (!f)
            return pst_err(err, errlen, PST_EIO, "%s: cannot open: %s", path, strerror(errno));
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

int wk_check_data(const wk_opts *o, const eng_model_def *def, char *err, size_t errlen) {
    if (strcmp(def->dataset, "imdb") == 0)
        return check_imdb(o->data, err, errlen);
    eng_split s;
    memset(&s, 0, sizeof s);
    const int rc = eng_split_load_idx(&s, o->data, def->dataset, o->val_split, 0, 1, err, errlen);
    eng_split_deinit(&s);
    return rc;
}

int wk_check(const wk_opts *o, FILE *out, char *err, size_t errlen) {
    const eng_model_def *def = eng_model_find(o->model);
    eng_model m;
    if (errlen)
        err[0] = '\0';
    if (!def || eng_model_build(&m, def, err, errlen) != PST_OK) {
        if (!def)
            snprintf(err, errlen, "--model: unknown model '%s'", o->model);
        return 2;
    }
    char why[2048] = "";
    const int rc = wk_check_data(o, def, why, sizeof why);
    for (char *p = why; *p; p++) /* the reason stays on the one line */
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    fprintf(out, "pstrain %s build %s model %s layout 0x%016llx %s%s\n", PSTRAIN_VERSION,
            PSTRAIN_BUILD_ID, def->name, (unsigned long long)eng_layout_checksum(&m.layout),
            rc == PST_OK ? "data ok" : "data missing: ", rc == PST_OK ? "" : why);
    /* A second line, for people: the kernel differs between hosts of one job without harm
     * (a launcher compares only the first line). */
    char blas[160];
    fprintf(out, "%s\n", eng_blas_describe(blas, sizeof blas));
    fflush(out);
    return rc == PST_OK ? 0 : 2;
}

void wk_version_print(FILE *out) {
    char blas[160];
    fprintf(out, "pstrain %s (build %s)\n%s\n", PSTRAIN_VERSION, PSTRAIN_BUILD_ID,
            eng_blas_describe(blas, sizeof blas));
}
