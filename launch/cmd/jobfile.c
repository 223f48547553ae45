/* jobfile.c: the job file as JSON (jansson): {"pstrain_job": 1, "args": [...], "servers":
 * [...], "backups": [...], "token": "HEX", "keys": {...}, "workers": W, "max_workers": N}. */
#include "launch/cmd/jobfile.h"

#include "engine/base/base.h"
#include "engine/base/file.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define JOBFILE_VERSION 1

static json_t *strings(char *const *v, int n) {
    json_t *a = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(a, json_string(v[i]));
    return a;
}

int cmd_jobfile_write(const char *path, const cmd_jobfile *j, char *err, size_t errlen) {
    json_t *o = json_object();
    char token[17];
    snprintf(token, sizeof token, "%016" PRIx64, j->keys.token);
    json_object_set_new(o, "pstrain_job", json_integer(JOBFILE_VERSION));
    json_object_set_new(o, "args", strings(j->args, j->nargs));
    json_object_set_new(o, "servers", strings(j->endpoints, j->servers));
    if (j->backups)
        json_object_set_new(o, "backups", strings(j->backups, j->servers));
    json_object_set_new(o, "token", json_string(token));
    if (j->secure) /* what a worker connects with: never the servers' secret */
        json_object_set_new(o, "keys",
                            json_pack("{s:s, s:s, s:s}", "server_public", j->keys.server_public,
                                      "client_public", j->keys.client_public, "client_secret",
                                      j->keys.client_secret));
    json_object_set_new(o, "workers", json_integer(j->workers));
    json_object_set_new(o, "max_workers", json_integer(j->max_workers));
    char *text = json_dumps(o, JSON_INDENT(1));
    json_decref(o);
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int rc = PST_OK;
    const int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    const size_t len = text ? strlen(text) : 0;
    if (fd < 0 || !text || write(fd, text, len) != (ssize_t)len || write(fd, "\n", 1) != 1 ||
        fsync(fd) != 0)
        rc =
            pst_err(err, errlen, PST_EIO, "--job-file %s: cannot write: %s", path, strerror(errno));
    if (fd >= 0)
        close(fd);
    if (rc == PST_OK && rename(tmp, path) != 0)
        rc = pst_err(err, errlen, PST_EIO, "--job-file %s: cannot rename %s to it: %s", path, tmp,
                     strerror(errno));
    if (rc != PST_OK)
        unlink(tmp);
    free(text);
    return rc;
}

/* j's array field `name` of strings into *out (n of them; *n -1: absent and optional). */
static int read_strings(const char *path, json_t *o, const char *name, int optional, char ***out,
                        int *n, char *err, size_t errlen) {
    json_t *a = json_object_get(o, name);
    *out = NULL;
    *n = -1;
    if (!a && optional)
        return PST_OK;
    if (!json_is_array(a) || json_array_size(a) > 65536)
        return pst_err(err, errlen, PST_EFORMAT,
                       "--join %s: field %s: expected an array of strings", path, name);
    *n = (int)json_array_size(a);
    *out = pst_calloc((size_t)*n + 1, sizeof **out);
    for (int i = 0; i < *n; i++) {
        const char *s = json_string_value(json_array_get(a, (size_t)i));
        if (!s)
            return pst_err(err, errlen, PST_EFORMAT, "--join %s: field %s[%d]: expected a string",
                           path, name, i);
        (*out)[i] = pst_strdup(s);
    }
    return PST_OK;
}

/* A key of 40 z85 characters from keys.name into out (41 bytes). */
static int read_key(const char *path, json_t *keys, const char *name, char *out, char *err,
                    size_t errlen) {
    const char *s = json_string_value(json_object_get(keys, name));
    if (!s || strlen(s) != 40)
        return pst_err(err, errlen, PST_EFORMAT,
                       "--join %s: field keys.%s: expected 40 characters (a CURVE key)", path,
                       name);
    memcpy(out, s, 41);
    return PST_OK;
}

int cmd_jobfile_read(const char *path, cmd_jobfile *j, char *err, size_t errlen) {
    memset(j, 0, sizeof *j);
    int rc;
    char why[512];
    FILE *f = pst_fopen_regular(path, &rc, why, sizeof why);
    if (!f)
        return pst_err(err, errlen, PST_EARG, "--join: %s", why);
    json_error_t je;
    json_t *o = json_loadf(f, 0, &je);
    fclose(f);
    if (!o)
        return pst_err(err, errlen, PST_EFORMAT, "--join %s: not a job file: %s (line %d)", path,
                       je.text, je.line);
    const char *token = json_string_value(json_object_get(o, "token"));
    int np = 0, nb = 0;
    if (json_integer_value(json_object_get(o, "pstrain_job")) != JOBFILE_VERSION)
        rc = pst_err(err, errlen, PST_EFORMAT,
                     "--join %s: field pstrain_job: expected %d (a job file of this pstrain)", path,
                     JOBFILE_VERSION);
    else if ((rc = read_strings(path, o, "args", 0, &j->args, &j->nargs, err, errlen)) == PST_OK &&
             (rc = read_strings(path, o, "servers", 0, &j->endpoints, &np, err, errlen)) ==
                 PST_OK &&
             (rc = read_strings(path, o, "backups", 1, &j->backups, &nb, err, errlen)) == PST_OK) {
        j->servers = np;
        j->workers = (int)json_integer_value(json_object_get(o, "workers"));
        j->max_workers = (int)json_integer_value(json_object_get(o, "max_workers"));
        if (np < 1 || (nb >= 0 && nb != np))
            rc = pst_err(err, errlen, PST_EFORMAT,
                         "--join %s: field servers: expected at least one (and as many backups)",
                         path);
        else if (j->workers < 1 || j->max_workers <= j->workers || j->max_workers > 1 << 15)
            rc = pst_err(err, errlen, PST_EFORMAT,
                         "--join %s: fields workers, max_workers: expected 1 <= workers < "
                         "max_workers, got %d and %d (the job takes no more workers)",
                         path, j->workers, j->max_workers);
        else if (!token || strlen(token) != 16 ||
                 sscanf(token, "%16" SCNx64, &j->keys.token) != 1 || j->keys.token == 0)
            rc = pst_err(err, errlen, PST_EFORMAT, "--join %s: field token: expected 16 hex digits",
                         path);
    }
    json_t *keys = json_object_get(o, "keys");
    if (rc == PST_OK && keys) {
        j->secure = 1;
        if ((rc = read_key(path, keys, "server_public", j->keys.server_public, err, errlen)) ==
                PST_OK &&
            (rc = read_key(path, keys, "client_public", j->keys.client_public, err, errlen)) ==
                PST_OK)
            rc = read_key(path, keys, "client_secret", j->keys.client_secret, err, errlen);
    }
    json_decref(o);
    if (rc != PST_OK)
        cmd_jobfile_free(j);
    return rc;
}

static void free_strings(char **v) {
    for (int i = 0; v && v[i]; i++)
        free(v[i]);
    free(v);
}

void cmd_jobfile_free(cmd_jobfile *j) {
    free_strings(j->args);
    free_strings(j->endpoints);
    free_strings(j->backups);
    pb_keys_wipe(&j->keys);
    memset(j, 0, sizeof *j);
}
