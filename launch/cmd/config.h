/* config.h: a run's flags, one struct per role: the worker's (wk_opts, worker/opts.h, which
 * one-process training reads too), a server rank's (cmd_server_cfg) and what only a command
 * reads (cmd_args). launch/cmd/cli.c fills them from one table of flags; cmd_config_defaults
 * and cmd_config_check are the values before and the checks after it. */
#ifndef PSTRAIN_CMD_CONFIG_H
#define PSTRAIN_CMD_CONFIG_H

#include "worker/opts.h"
#include "worker/report/chart.h"

#include <stddef.h>
#include <stdint.h>

#ifndef PSTRAIN_DATA_DIR /* set by launch/CMakeLists.txt: --data's default after $PSTRAIN_DATA */
#define PSTRAIN_DATA_DIR "data"
#endif

typedef enum cmd_command {
    CMD_TRAIN,
    CMD_SUMMARY,
    CMD_EVAL,
    CMD_INSPECT,
    CMD_SAMPLE,
    CMD_PLOT,   /* runs' --metrics files as a PNG or SVG of their curves */
    CMD_CHECK,  /* one line: version, build, layout checksum, whether the data is there */
    CMD_EXPORT, /* a checkpoint as Keras full-model files */
    CMD_SERVE   /* a checkpoint over REST (TF Serving's and KServe v2's), launch/serve/ */
} cmd_command;

/* A server rank's own flags (the ones it shares with the workers are in wk_opts). */
typedef struct cmd_server_cfg {
    char bind[64];           /* address servers bind */
    char advertise[64];      /* address servers tell workers; empty: this host's first */
    char port_range[32];     /* "A-B", empty: any free port */
    int64_t threads;         /* --server-threads: threads for a server's optimizer update */
    char on_worker_loss[16]; /* continue | abort */
} cmd_server_cfg;

/* `pstrain serve`'s own flags (the checkpoint, --threads, --max-batch and --live are shared
 * with eval). */
typedef struct cmd_serve_cfg {
    char bind[64];                /* address to listen on: 127.0.0.1 unless told */
    int64_t port;                 /* 0: any free port */
    char name[128];               /* the model's name in URLs; "": the checkpoint's model */
    int64_t batch_timeout_us;     /* the most a queued sample waits for others */
    char token_file[WK_PATH_MAX]; /* "": no token */
    char tls_cert[WK_PATH_MAX];   /* PEM files; "": plain HTTP */
    char tls_key[WK_PATH_MAX];
    int64_t max_body;        /* bytes of a request body */
    int64_t request_timeout; /* seconds a connection may stall */
    int64_t max_connections; /* at once */
} cmd_serve_cfg;

/* What a command reads and no role does. */
typedef struct cmd_args {
    int help;                     /* --help was given: print usage, run nothing */
    int version;                  /* --version was given: print the version, run nothing */
    int dry_run;                  /* train --dry-run: check everything a run would, run nothing */
    char checkpoint[WK_PATH_MAX]; /* eval, inspect, sample: the file (or DIR) to read */
    int live;                     /* sample, eval: the generator's own weights, not their average */
    char keras[WK_PATH_MAX];      /* export: the Keras full-model file to write */
    char out[WK_PATH_MAX];        /* sample: the PNG to write; plot: the PNG or SVG */
    char title[256];              /* plot: the picture's title; empty: the metrics path */
    int64_t n;                    /* sample: images in the grid */
    char input_file[WK_PATH_MAX]; /* eval --inputs: samples to run (JSON), not the test set */
    int64_t infer_batch;          /* eval --inputs: samples per forward pass (--batch) */
    int64_t max_batch;            /* eval --inputs, serve: the largest pass a model is made for */
    const char *inputs[WK_CHART_RUNS]; /* plot: the metrics files to read (argv's) */
    int ninputs;
} cmd_args;

typedef struct cmd_config {
    cmd_command command;
    wk_opts worker;
    cmd_server_cfg server;
    cmd_serve_cfg serve;
    cmd_args args;
} cmd_config;

/* A GAN's moving average of its generator by default (TF's usual figure): TF's warm-up,
 * min(decay, (1 + t) / (10 + t)), stays below it for the first 90,000 steps, an average whose
 * mean age is a tenth of the steps so far. */
#define CMD_EMA_DEFAULT 0.9999

/* Every flag's default (--data: $PSTRAIN_DATA, else the build's data directory). */
void cmd_config_defaults(cmd_config *c);

/* The checks of a parsed command line that no single flag's bounds make: what a command
 * needs (eval's checkpoint, plot's --out), the choices among words (--mode, --secure, ...),
 * flags that need others, and a model's own (a GAN's optimizers); fills what follows from the
 * model (--epochs, a GAN's --ema-decay). Returns PST_OK, or PST_EARG with one line in err. */
int cmd_config_check(cmd_config *c, char *err, size_t errlen);

#endif
