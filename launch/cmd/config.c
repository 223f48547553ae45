/* config.c: the flags' defaults and the checks across flags (launch/cmd/config.h). */
#include "launch/cmd/config.h"

#include "engine/base/base.h"
#include "engine/model.h"
#include "engine/optim.h"
#include "launch/cmd/cli.h"

#include <float.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void cmd_config_defaults(cmd_config *c) {
    memset(c, 0, sizeof *c);
    wk_opts *o = &c->worker;
    const char *env = getenv("PSTRAIN_DATA");
    snprintf(o->data, sizeof o->data, "%s", env && *env ? env : PSTRAIN_DATA_DIR);
    snprintf(o->optimizer, sizeof o->optimizer, "adam");
    o->epochs = 0; /* the model's */
    o->batch = 32;
    o->seed = 1;
    o->lr = -1.0;
    o->val_split = 0.1;
    o->progress = -1;
    snprintf(o->mode, sizeof o->mode, "sync");
    o->staleness = 2;
    o->chunk = 0;
    snprintf(o->wire, sizeof o->wire, "fp32");
    snprintf(o->compress, sizeof o->compress, "none");
    o->timeout = 60.0;
    o->peer_timeout = 30.0;
    snprintf(o->secure, sizeof o->secure, "auto");
    snprintf(o->conv, sizeof o->conv, "auto");
    snprintf(o->log_level, sizeof o->log_level, "info");
    snprintf(o->gen_optim, sizeof o->gen_optim, "adam:lr=1e-4");
    snprintf(o->disc_optim, sizeof o->disc_optim, "rmsprop:lr=8e-4,clipvalue=1,decay=1e-8");
    o->judge_n = 10000;
    o->ema_decay = -1.0; /* a GAN's default */
    cmd_server_cfg *s = &c->server;
    s->threads = 1;
    snprintf(s->on_worker_loss, sizeof s->on_worker_loss, "continue");
    snprintf(s->bind, sizeof s->bind, "0.0.0.0");
    c->args.n = 64;
    cmd_serve_cfg *v = &c->serve;
    snprintf(v->bind, sizeof v->bind, "127.0.0.1");
    v->port = 8501;
    v->batch_timeout_us = 1000;
    /* 16 MiB: a full --max-batch 64 of MNIST images as JSON numbers is about 1 MB, so this
     * leaves room for larger batches and long reviews while bounding what one request may
     * make the server hold (and connections * this, what all may) */
    v->max_body = 16 << 20;
    v->request_timeout = 30;
    v->max_connections = 256;
    c->args.infer_batch = 1; /* as a server answering one single-sample request at a time */
    c->args.max_batch = 64;
}

/* --model: given and registered. Returns PST_OK or PST_EARG with err listing the models. */
static int check_model(const wk_opts *o, char *err, size_t errlen) {
    if (o->model[0] && eng_model_find(o->model))
        return PST_OK;
    if (!o->model[0])
        snprintf(err, errlen, "--model: required; expected one of:");
    else
        snprintf(err, errlen, "--model: unknown model '%s'; expected one of:", o->model);
    for (int i = 0; eng_model_at(i); i++)
        snprintf(err + strlen(err), errlen - strlen(err), " %s", eng_model_at(i)->name);
    return PST_EARG;
}

/* s is one of the words of `among` (NULL-terminated). */
static int one_of(const char *s, const char *const *among) {
    for (; *among; among++)
        if (strcmp(s, *among) == 0)
            return 1;
    return 0;
}

/* A GAN's optimizers (--gen-optim, --disc-optim, not --optimizer and its knobs) and moving
 * average; a classifier has neither a GAN's flags nor its average. */
static int check_parts(wk_opts *o, const eng_model_def *def, char *err, size_t errlen) {
    if (!def->parts) {
        if (!o->samples[0] && !o->judge[0] && o->ema_decay < 0.0)
            return PST_OK;
        return pst_err(err, errlen, PST_EARG, "--%s: only for a GAN (--model mnist_gan), not %s",
                       o->samples[0] ? "samples"
                       : o->judge[0] ? "judge"
                                     : "ema-decay",
                       o->model);
    }
    if (strcmp(o->optimizer, "adam") || o->lr > 0 || o->clipvalue > 0 || o->decay > 0)
        return pst_err(err, errlen, PST_EARG,
                       "--optimizer/--lr/--clipvalue/--decay: %s trains two networks; give "
                       "--gen-optim and --disc-optim instead",
                       o->model);
    const char *const names[] = {"gen-optim", "disc-optim"},
                      *specs[] = {o->gen_optim, o->disc_optim};
    for (size_t p = 0; p < sizeof names / sizeof names[0]; p++) {
        eng_optim_cfg parsed;
        char why[300];
        if (eng_optim_parse(specs[p], &parsed, why, sizeof why) != PST_OK)
            return pst_err(err, errlen, PST_EARG, "--%s: %s", names[p], why);
    }
    if (o->ema_decay < 0.0)
        o->ema_decay = CMD_EMA_DEFAULT;
    return PST_OK;
}

/* --wire, --compress and --simulate-compute. */
static int check_wire(wk_opts *o, const eng_model_def *def, char *err, size_t errlen) {
    if (!one_of(o->wire, (const char *const[]){"fp32", "bf16", "fp16", NULL}))
        return pst_err(err, errlen, PST_EARG, "--wire: expected fp32, bf16 or fp16, got '%s'",
                       o->wire);
    o->topk = 0.0;
    if (strcmp(o->compress, "none") != 0) {
        double f;
        int used = 0;
        if (sscanf(o->compress, "topk:%lf%n", &f, &used) != 1 || used != (int)strlen(o->compress) ||
            !(f > 0.0 && f <= 1.0))
            return pst_err(err, errlen, PST_EARG,
                           "--compress: expected none or topk:F with 0 < F <= 1, got '%s'",
                           o->compress);
        o->topk = f;
    }
    if (o->replicas > 0 && o->replicas >= o->servers)
        return pst_err(err, errlen, PST_EARG,
                       "--replicas %lld: needs more servers than that (--servers %lld): a copy "
                       "lives on another server",
                       (long long)o->replicas, (long long)o->servers);
    if (o->simulate_ms > 0 && o->servers == 0)
        return pst_err(err, errlen, PST_EARG,
                       "--simulate-compute: only for the workers of a job (--servers P): one "
                       "process would play back steps that change nothing");
    if (o->simulate_ms > 0 && def->parts)
        return pst_err(err, errlen, PST_EARG,
                       "--simulate-compute: only for a classifier, not %s (a GAN's step is two "
                       "networks')",
                       o->model);
    return PST_OK;
}

/* train's flags, checked in the order a person reads them (the first problem is the one
 * said): the worker's and the servers' together. */
static int check_train(cmd_config *c, char *err, size_t errlen) {
    wk_opts *o = &c->worker;
    const cmd_server_cfg *s = &c->server;
    if (strcmp(o->resume, "auto") == 0 && !o->checkpoint_dir[0])
        return pst_err(err, errlen, PST_EARG,
                       "--resume auto: needs --checkpoint-dir (where to look for latest)");
    if (!one_of(s->on_worker_loss, (const char *const[]){"continue", "abort", NULL}))
        return pst_err(err, errlen, PST_EARG,
                       "--on-worker-loss: expected continue or abort, got '%s'", s->on_worker_loss);
    if (!one_of(o->secure, (const char *const[]){"auto", "on", "off", NULL}))
        return pst_err(err, errlen, PST_EARG, "--secure: expected auto, on or off, got '%s'",
                       o->secure);
    if (!one_of(o->log_level, (const char *const[]){"quiet", "info", "debug", NULL}))
        return pst_err(err, errlen, PST_EARG,
                       "--log-level: expected quiet, info or debug, got '%s'", o->log_level);
    if (o->init_from[0] && o->resume[0] && strcmp(o->resume, "auto") != 0)
        return pst_err(err, errlen, PST_EARG,
                       "--init-from: not with --resume %s (a resumed run goes on from the "
                       "checkpoint's weights; --resume auto takes --init-from when there is none)",
                       o->resume);
    if (o->checkpoint_every && !o->checkpoint_dir[0])
        return pst_err(err, errlen, PST_EARG, "--checkpoint-every: needs --checkpoint-dir");
    int rc = check_model(o, err, errlen);
    if (rc != PST_OK)
        return rc;
    const eng_model_def *def = eng_model_find(o->model);
    if (!o->epochs)
        o->epochs = def->epochs;
    if (eng_optim_kind_parse(o->optimizer) < 0)
        return pst_err(err, errlen, PST_EARG, "--optimizer: expected adam or rmsprop, got '%s'",
                       o->optimizer);
    if (!one_of(o->mode, (const char *const[]){"sync", "async", "ssp", NULL}))
        return pst_err(err, errlen, PST_EARG, "--mode: expected sync, async or ssp, got '%s'",
                       o->mode);
    if (s->port_range[0]) {
        int a, b, used = 0;
        if (sscanf(s->port_range, "%d-%d%n", &a, &b, &used) != 2 ||
            used != (int)strlen(s->port_range) || a < 1 || b > 65535 || a > b)
            return pst_err(err, errlen, PST_EARG,
                           "--port-range: expected A-B with 1 <= A <= B <= 65535, got '%s'",
                           s->port_range);
    }
    if ((rc = check_parts(o, def, err, errlen)) != PST_OK)
        return rc;
    if ((rc = check_wire(o, def, err, errlen)) != PST_OK)
        return rc;
    if (strcmp(o->optimizer, "adam") == 0 && (o->clipvalue > 0 || o->decay > 0))
        return pst_err(err, errlen, PST_EARG, "--clipvalue/--decay: only with --optimizer rmsprop");
    /* pstrain flushes denormals to zero: a smaller clip would silently mean none */
    if (o->clipvalue > 0 && o->clipvalue < FLT_MIN)
        return pst_err(err, errlen, PST_EARG,
                       "--clipvalue: expected 0 or at least %g, the smallest normal float32, "
                       "got %g",
                       (double)FLT_MIN, o->clipvalue);
    return PST_OK;
}

int cmd_config_check(cmd_config *c, char *err, size_t errlen) {
    const cmd_args *a = &c->args;
    eng_conv_algo conv;
    const int rc = wk_opts_conv_of(&c->worker, &conv, err, errlen);
    if (rc != PST_OK)
        return rc;
    switch (c->command) {
    case CMD_EVAL:
    case CMD_INSPECT: /* the model is the checkpoint's */
        if (!a->checkpoint[0])
            return pst_err(err, errlen, PST_EARG, "%s: expected a checkpoint FILE or DIR",
                           cmd_cli_command_name(c->command));
        return PST_OK;
    case CMD_SAMPLE:
        if (!a->checkpoint[0] || !a->out[0])
            return pst_err(err, errlen, PST_EARG,
                           "sample: expected --checkpoint FILE|DIR and --out FILE.png");
        return PST_OK;
    case CMD_PLOT:
        if (!a->ninputs || !a->out[0])
            return pst_err(err, errlen, PST_EARG,
                           "plot: expected metrics FILEs (JSON lines) and --out FILE.png|FILE.svg");
        return PST_OK;
    case CMD_CHECK:
        return check_model(&c->worker, err, errlen);
    case CMD_EXPORT:
        if (!a->checkpoint[0] || !a->keras[0])
            return pst_err(err, errlen, PST_EARG,
                           "export: expected a checkpoint FILE or DIR and --keras OUT.h5");
        return PST_OK;
    case CMD_SERVE:
        if (!a->checkpoint[0])
            return pst_err(err, errlen, PST_EARG, "serve: expected a checkpoint FILE or DIR");
        if (!c->serve.tls_cert[0] != !c->serve.tls_key[0])
            return pst_err(err, errlen, PST_EARG, "--%s: needs --%s too",
                           c->serve.tls_cert[0] ? "tls-cert" : "tls-key",
                           c->serve.tls_cert[0] ? "tls-key" : "tls-cert");
        if (strspn(c->serve.name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_"
                                  ".-") != strlen(c->serve.name))
            return pst_err(err, errlen, PST_EARG,
                           "--name: expected letters, digits, '_', '.' and '-', got '%s'",
                           c->serve.name);
        return PST_OK;
    case CMD_TRAIN:
        if (c->worker.join[0]) /* checked with the job's own flags (join.c) */
            return PST_OK;
        return check_train(c, err, errlen);
    case CMD_SUMMARY:
        return check_train(c, err, errlen);
    }
    return PST_OK;
}
