/* cli.c: table-driven flag parsing (redis config.c style). */
#include "worker/cli.h"

#include "engine/base/base.h"
#include "engine/model.h"
#include "engine/optim.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#ifndef PSTRAIN_DATA_DIR
#define PSTRAIN_DATA_DIR "data"
#endif

typedef enum { F_INT, F_REAL, F_STR, F_FLAG } flag_type;

typedef struct flag {
    const char *name;
    flag_type type;
    size_t offset; /* into wk_opts */
    size_t size;   /* F_STR: buffer size */
    double min, max;
    unsigned commands; /* bit per wk_command */
    const char *arg, *help;
} flag;

#define TRAIN (1u << WK_CMD_TRAIN)
#define SUMMARY (1u << WK_CMD_SUMMARY)
#define EVAL (1u << WK_CMD_EVAL)
#define INSPECT (1u << WK_CMD_INSPECT)
#define SAMPLE (1u << WK_CMD_SAMPLE)
#define PLOT (1u << WK_CMD_PLOT)
#define CHECK (1u << WK_CMD_CHECK)
#define STR(field) offsetof(wk_opts, field), sizeof(((wk_opts *)0)->field)
#define NUM(field) offsetof(wk_opts, field), 0
#define TEXT_(x) #x
#define TEXT(x) TEXT_(x) /* a macro's value as a string */

static const flag flags[] = {
    {"model", F_STR, STR(model), 0, 0, TRAIN | SUMMARY | CHECK, "NAME",
     "model to build (see below)"},
    {"data", F_STR, STR(data), 0, 0, TRAIN | EVAL | CHECK, "DIR",
     "data directory (default $PSTRAIN_DATA or " PSTRAIN_DATA_DIR ")"},
    {"epochs", F_INT, NUM(epochs), 1, 1e6, TRAIN, "N",
     "passes over the training set (default 10; mnist_gan: 50, as TF's tutorial)"},
    {"batch", F_INT, NUM(batch), 1, 65536, TRAIN, "N", "samples per step (default 32)"},
    {"optimizer", F_STR, STR(optimizer), 0, 0, TRAIN, "adam|rmsprop", "update rule (default adam)"},
    {"lr", F_REAL, NUM(lr), 1e-12, 10, TRAIN, "X", "learning rate (default 1e-3, Keras's)"},
    {"clipvalue", F_REAL, NUM(clipvalue), 0, 1e6, TRAIN, "X",
     "rmsprop: clip each gradient element to [-X, X] (0 = off)"},
    {"decay", F_REAL, NUM(decay), 0, 1, TRAIN, "X", "rmsprop: lr / (1 + X * iterations) (0 = off)"},
    {"seed", F_INT, NUM(seed), 0, 9007199254740991.0, TRAIN, "N",
     "seed for weights, shuffles and dropout (default 1)"},
    {"seed", F_INT, NUM(seed), 0, 9007199254740991.0, SAMPLE | EVAL, "N",
     "a GAN: seed of the noise, as a run with that seed draws it (default 1)"},
    {"threads", F_INT, NUM(threads), 0, 1024, TRAIN | EVAL, "N",
     "compute threads (default: one per CPU)"},
    {"max-steps", F_INT, NUM(max_steps), 0, 1e15, TRAIN, "N",
     "stop after N steps in all (0 = no limit)"},
    {"val-split", F_REAL, NUM(val_split), 0, 0.99, TRAIN, "X",
     "fraction of the training files held out, from the end (default 0.1)"},
    {"metrics", F_STR, STR(metrics), 0, 0, TRAIN, "FILE",
     "write JSON lines: one per epoch, one at the end"},
    {"progress", F_INT, NUM(progress), -1, 1, TRAIN, "-1|0|1",
     "live bar: auto (on a terminal), off, on"},
    {"servers", F_INT, NUM(servers), 0, 4096, TRAIN, "P",
     "ranks 0..P-1 are parameter servers, the rest workers (default 0: one process)"},
    {"mode", F_STR, STR(mode), 0, 0, TRAIN, "sync|async|ssp",
     "consistency with servers (default sync)"},
    {"staleness", F_INT, NUM(staleness), 0, 1000, TRAIN, "S",
     "ssp: how many steps a worker may run ahead of the slowest (default 2)"},
    {"timeout", F_REAL, NUM(timeout), 0.1, 86400, TRAIN, "SECONDS",
     "give up on a server that does not answer (default 60)"},
    {"peer-timeout", F_REAL, NUM(peer_timeout), 0.5, 86400, TRAIN, "SECONDS",
     "a worker or server not heard from for this long is lost (heartbeats every second; "
     "default 30)"},
    {"on-worker-loss", F_STR, STR(on_worker_loss), 0, 0, TRAIN, "continue|abort",
     "continue (default): the job goes on with the others, who take over its data from the "
     "next epoch; abort: checkpoint and stop (status 75)"},
    {"secure", F_STR, STR(secure), 0, 0, TRAIN, "auto|on|off",
     "CURVE encryption and authentication on every connection, keys made fresh per job and "
     "handed out over MPI (default auto: on when the job spans more than one host)"},
    {"bind", F_STR, STR(bind), 0, 0, TRAIN, "ADDR", "address servers listen on (default 0.0.0.0)"},
    {"advertise", F_STR, STR(advertise), 0, 0, TRAIN, "ADDR",
     "address workers reach a server at (default: its first non-loopback IPv4)"},
    {"port-range", F_STR, STR(port_range), 0, 0, TRAIN, "A-B",
     "ports servers may bind (default: any free port)"},
    {"server-threads", F_INT, NUM(server_threads), 1, 64, TRAIN, "N",
     "threads for a server's update (default 1; more pays off when servers have idle cores)"},
    {"chunk", F_INT, NUM(chunk), 0, 1e9, TRAIN, "FLOATS",
     "the most floats in one push or pull message (default 0: no limit). Messages also break "
     "between layers: a worker sends a layer's gradient as soon as backward has finished it"},
    {"dense-pushes", F_FLAG, NUM(dense_pushes), 0, 0, TRAIN, NULL,
     "push an embedding's whole gradient, not just the rows a batch used (to compare)"},
    {"dry-run", F_FLAG, NUM(dry_run), 0, 0, TRAIN, NULL,
     "check the flags, the data, the checkpoint to resume from and the paths to write, say what "
     "would run, and exit (0, or 2 with the first problem); launch/ scripts run it before mpirun"},
    {"dump-weights", F_STR, STR(dump_weights), 0, 0, TRAIN, "FILE",
     "write the final flat weight vector as raw little-endian float32 (tests)"},
    {"checkpoint-dir", F_STR, STR(checkpoint_dir), 0, 0, TRAIN, "DIR",
     "write DIR/ckpt-STEP.h5 at every epoch end, every --checkpoint-every steps and on SIGTERM "
     "or SIGINT (then stop); DIR/latest names the newest"},
    {"checkpoint-every", F_INT, NUM(checkpoint_every), 0, 1e15, TRAIN, "STEPS",
     "also checkpoint every STEPS steps (default 0: epoch ends only)"},
    {"keep", F_INT, NUM(keep), 0, 1e6, TRAIN, "K",
     "keep the newest K checkpoints (default 0: all)"},
    {"resume", F_STR, STR(resume), 0, 0, TRAIN, "FILE|DIR|auto",
     "continue a job from a checkpoint (DIR: the one DIR/latest names), on any number of "
     "servers and workers; auto: --checkpoint-dir's latest if there is one, else start fresh "
     "(a restart loop's one flag)"},
    {"log-level", F_STR, STR(log_level), 0, 0, TRAIN, "quiet|info|debug",
     "servers: quiet prints nothing but errors, info (default) their counters at the end, "
     "debug also a line per update"},
    {"checkpoint", F_STR, STR(checkpoint), 0, 0, EVAL | INSPECT | SAMPLE, "FILE|DIR",
     "the checkpoint to read (or give it as the only argument)"},
    {"gen-optim", F_STR, STR(gen_optim), 0, 0, TRAIN, "SPEC",
     "a GAN's generator optimizer, KIND[:KEY=VALUE,...] (default adam:lr=1e-4)"},
    {"disc-optim", F_STR, STR(disc_optim), 0, 0, TRAIN, "SPEC",
     "a GAN's discriminator optimizer (default rmsprop:lr=8e-4,clipvalue=1,decay=1e-8)"},
    {"samples", F_STR, STR(samples), 0, 0, TRAIN, "DIR",
     "a GAN: write DIR/epoch-E.png, digits from the same noise at every epoch's end"},
    {"judge", F_STR, STR(judge), 0, 0, TRAIN, "FILE|DIR",
     "a GAN: score it at every epoch's end with this mnist_cnn checkpoint (Inception Score, "
     "Frechet distance)"},
    {"judge", F_STR, STR(judge), 0, 0, EVAL, "FILE|DIR",
     "a GAN's checkpoint: score it with this mnist_cnn checkpoint (Inception Score, Frechet "
     "distance)"},
    {"judge-n", F_INT, NUM(judge_n), 100, 1e6, TRAIN | EVAL, "N",
     "images generated for the scores (default 10000)"},
    {"ema-decay", F_REAL, NUM(ema_decay), 0, 0.999999, TRAIN, "X",
     "a GAN: keep a moving average of the generator's weights, as TF's ExponentialMovingAverage "
     "(default " TEXT(WK_EMA_DEFAULT) "; 0 = none); grids, scores, sample and eval draw from it"},
    {"live", F_FLAG, NUM(live), 0, 0, SAMPLE | EVAL, NULL,
     "a GAN: draw from the generator's own weights, not their moving average"},
    {"out", F_STR, STR(out), 0, 0, SAMPLE, "FILE", "the PNG of the grid to write"},
    {"out", F_STR, STR(out), 0, 0, PLOT, "FILE", "the chart to write: FILE.png or FILE.svg"},
    {"title", F_STR, STR(title), 0, 0, PLOT, "TEXT",
     "plot: the picture's title (default: the metrics file's path, or 'N runs')"},
    {"n", F_INT, NUM(n), 1, 4096, SAMPLE, "N", "digits in the grid (default 64)"},
    {"help", F_FLAG, NUM(help), 0, 0, TRAIN | SUMMARY | EVAL | INSPECT | SAMPLE | PLOT | CHECK,
     NULL, "this help"},
};

static const struct {
    const char *name;
    const char *about;
} commands[] = {
    [WK_CMD_TRAIN] = {"train", "train a model and report test loss and accuracy"},
    [WK_CMD_SUMMARY] = {"summary", "print a model's layers, output shapes and parameters"},
    [WK_CMD_EVAL] = {"eval", "evaluate a checkpoint's weights on the test set"},
    [WK_CMD_INSPECT] = {"inspect", "print a checkpoint's metadata and a table of its tensors"},
    [WK_CMD_SAMPLE] = {"sample", "write a PNG grid of a GAN checkpoint's generated digits"},
    [WK_CMD_PLOT] = {"plot", "draw runs' --metrics files as training curves (PNG or SVG)"},
    [WK_CMD_CHECK] = {"check", "one line: version, build, layout checksum, whether the data is "
                               "here (exit 2 if not)"},
};

#define NCOMMANDS (sizeof commands / sizeof commands[0])
#define NFLAGS (sizeof flags / sizeof flags[0])

/* "train, summary, ... or check" into buf. */
static const char *command_list(char *buf, size_t len) {
    buf[0] = '\0';
    for (size_t c = 0; c < NCOMMANDS; c++)
        snprintf(buf + strlen(buf), len - strlen(buf), "%s%s",
                 c == 0 ? "" : (c + 1 == NCOMMANDS ? " or " : ", "), commands[c].name);
    return buf;
}

/* --model: given and registered. Returns 0 or -1 with err listing the models. */
static int check_model(const wk_opts *o, char *err, size_t errlen) {
    if (o->model[0] && eng_model_find(o->model))
        return 0;
    if (!o->model[0])
        snprintf(err, errlen, "--model: required; expected one of:");
    else
        snprintf(err, errlen, "--model: unknown model '%s'; expected one of:", o->model);
    for (int i = 0; eng_model_at(i); i++)
        snprintf(err + strlen(err), errlen - strlen(err), " %s", eng_model_at(i)->name);
    return -1;
}

static int set_value(wk_opts *o, const flag *f, const char *v, char *err, size_t errlen) {
    char *p = (char *)o + f->offset;
    if (f->type == F_STR) {
        if (strlen(v) >= f->size) {
            snprintf(err, errlen, "--%s: value longer than %zu characters", f->name, f->size - 1);
            return -1;
        }
        memcpy(p, v, strlen(v) + 1);
        return 0;
    }
    char *end;
    errno = 0;
    double d = strtod(v, &end);
    int bad = errno != 0 || end == v || *end != '\0' || !isfinite(d);
    if (f->type == F_INT && !bad)
        bad = d != floor(d);
    if (bad || d < f->min || d > f->max) {
        snprintf(err, errlen, "--%s: expected %s in [%g, %g], got '%s'", f->name,
                 f->type == F_INT ? "an integer" : "a number", f->min, f->max, v);
        return -1;
    }
    if (f->type == F_INT)
        *(int64_t *)p = (int64_t)d;
    else
        *(double *)p = d;
    return 0;
}

/* Edits (insertions, deletions, substitutions, swaps of neighbours) that turn a into b:
 * the optimal string alignment distance, for "did you mean". */
static int mistyped(const char *a, const char *b) {
    enum { N = 64 };
    const size_t n = strlen(a), m = strlen(b);
    if (n >= N || m >= N)
        return INT_MAX;
    int d[N][N];
    for (size_t i = 0; i <= n; i++)
        d[i][0] = (int)i;
    for (size_t j = 0; j <= m; j++)
        d[0][j] = (int)j;
    for (size_t i = 1; i <= n; i++)
        for (size_t j = 1; j <= m; j++) {
            const int sub = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
            int v = d[i - 1][j] + 1 < d[i][j - 1] + 1 ? d[i - 1][j] + 1 : d[i][j - 1] + 1;
            if (sub < v)
                v = sub;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                d[i - 2][j - 2] + 1 < v)
                v = d[i - 2][j - 2] + 1;
            d[i][j] = v;
        }
    return d[n][m];
}

/* How many edits still read as a typo of name: a third of it, at least 1, at most 3. */
static int max_typos(const char *name) {
    const int t = (int)strlen(name) / 3;
    return t < 1 ? 1 : (t > 3 ? 3 : t);
}

/* name (after its "--", up to any '=') is some command's flag. */
static int is_flag_name(const char *name) {
    const size_t len = strcspn(name, "=");
    for (size_t k = 0; k < NFLAGS; k++)
        if (strlen(flags[k].name) == len && strncmp(flags[k].name, name, len) == 0)
            return 1;
    return 0;
}

/* The flags that choose an optimizer: a resumed run goes on with the checkpoint's instead. */
static int is_optim_flag(const char *name) {
    static const char *const optim[] = {"optimizer", "lr",        "clipvalue",
                                        "decay",     "gen-optim", "disc-optim"};
    for (size_t i = 0; i < sizeof optim / sizeof optim[0]; i++)
        if (strcmp(name, optim[i]) == 0)
            return 1;
    return 0;
}

/* The entry for argument a ("--name" or "--name=value", eq at its '=' or NULL) of command c.
 * NULL with one line in err: a flag of other commands says which; an unknown one gets the
 * nearest of c's flags when it reads as a typo of one ("--epoch": --epochs) or a longer
 * spelling of one ("--batch-size": --batch). */
static const flag *find_flag(wk_command c, const char *a, const char *eq, char *err,
                             size_t errlen) {
    const char *name = a + 2;
    const size_t len = eq ? (size_t)(eq - name) : strlen(name);
    char given[64];
    snprintf(given, sizeof given, "%.*s", (int)(len < sizeof given ? len : sizeof given - 1), name);
    unsigned elsewhere = 0;
    for (size_t k = 0; k < NFLAGS; k++)
        if (strcmp(flags[k].name, given) == 0) {
            if (flags[k].commands & (1u << c))
                return &flags[k];
            elsewhere |= flags[k].commands;
        }
    const char *cmd = commands[c].name;
    if (elsewhere) {
        char which[128] = "";
        for (size_t k = 0; k < NCOMMANDS; k++)
            if (elsewhere & (1u << k))
                snprintf(which + strlen(which), sizeof which - strlen(which), "%s%s",
                         which[0] ? ", " : "", commands[k].name);
        snprintf(err, errlen, "--%s: not a flag of '%s' (it is one of: %s)", given, cmd, which);
        return NULL;
    }
    const flag *near = NULL;
    int best = INT_MAX;
    for (size_t k = 0; k < NFLAGS; k++) {
        if (!(flags[k].commands & (1u << c)))
            continue;
        const size_t fl = strlen(flags[k].name);
        int d = mistyped(given, flags[k].name);
        if (d > max_typos(flags[k].name) && len > fl && strncmp(given, flags[k].name, fl) == 0 &&
            strchr("-_", given[fl]))
            d = max_typos(flags[k].name); /* --batch-size: --batch and more words */
        if (d < best)
            best = d, near = &flags[k];
    }
    if (near && best <= max_typos(near->name))
        snprintf(err, errlen, "--%s: unknown flag for '%s'; did you mean --%s? (pstrain help %s)",
                 given, cmd, near->name, cmd);
    else
        snprintf(err, errlen, "--%s: unknown flag for '%s' (pstrain help %s lists them)", given,
                 cmd, cmd);
    return NULL;
}

static void defaults(wk_opts *o) {
    memset(o, 0, sizeof *o);
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
    o->server_threads = 1;
    o->chunk = 0;
    o->timeout = 60.0;
    o->peer_timeout = 30.0;
    snprintf(o->on_worker_loss, sizeof o->on_worker_loss, "continue");
    snprintf(o->secure, sizeof o->secure, "auto");
    snprintf(o->bind, sizeof o->bind, "0.0.0.0");
    snprintf(o->log_level, sizeof o->log_level, "info");
    snprintf(o->gen_optim, sizeof o->gen_optim, "adam:lr=1e-4");
    snprintf(o->disc_optim, sizeof o->disc_optim, "rmsprop:lr=8e-4,clipvalue=1,decay=1e-8");
    o->judge_n = 10000;
    o->ema_decay = -1.0; /* a GAN's default */
    o->n = 64;
}

int wk_cli_parse(wk_opts *o, int argc, char **argv, char *err, size_t errlen) {
    defaults(o);
    char cmds[128];
    if (argc < 2) {
        snprintf(err, errlen, "expected a command: %s (see --help)",
                 command_list(cmds, sizeof cmds));
        return -1;
    }
    if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0) {
        o->version = 1;
        o->command = (wk_command)-1;
        return 0;
    }
    /* pstrain --help, pstrain help, pstrain help COMMAND (git's way) */
    const int help_cmd = strcmp(argv[1], "help") == 0;
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || (help_cmd && argc == 2)) {
        o->help = 1;
        o->command = (wk_command)-1;
        return 0;
    }
    const char *name = help_cmd ? argv[2] : argv[1];
    int found = 0;
    for (size_t c = 0; c < NCOMMANDS; c++)
        if (strcmp(name, commands[c].name) == 0) {
            o->command = (wk_command)c;
            found = 1;
        }
    if (!found) {
        const char *near = NULL;
        int best = INT_MAX;
        for (size_t c = 0; c < NCOMMANDS; c++) {
            const int d = mistyped(name, commands[c].name);
            if (d < best)
                best = d, near = commands[c].name;
        }
        if (near && best <= max_typos(near))
            snprintf(err, errlen, "unknown command '%s': did you mean '%s'?", name, near);
        else
            snprintf(err, errlen, "unknown command '%s': expected %s", name,
                     command_list(cmds, sizeof cmds));
        return -1;
    }
    if (help_cmd) {
        if (argc > 3) {
            snprintf(err, errlen, "help: expected one command, got '%s' after '%s'", argv[3], name);
            return -1;
        }
        o->help = 1;
        return 0;
    }
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0)
            a = "--help";
        if (strncmp(a, "--", 2) != 0) {
            /* eval and inspect take the checkpoint as their one argument */
            if ((o->command == WK_CMD_EVAL || o->command == WK_CMD_INSPECT ||
                 o->command == WK_CMD_SAMPLE) &&
                !o->checkpoint[0] && strlen(a) < sizeof o->checkpoint) {
                snprintf(o->checkpoint, sizeof o->checkpoint, "%s", a);
                continue;
            }
            /* plot takes the metrics files as its arguments */
            if (o->command == WK_CMD_PLOT) {
                if (o->plot_n == WK_CHART_RUNS) {
                    snprintf(err, errlen, "plot: expected at most %d metrics files, got more",
                             WK_CHART_RUNS);
                    return -1;
                }
                o->plot_metrics[o->plot_n++] = argv[i];
                continue;
            }
            snprintf(err, errlen, "unexpected argument '%s': flags start with --", a);
            return -1;
        }
        const char *eq = strchr(a + 2, '=');
        const flag *f = find_flag(o->command, a, eq, err, errlen);
        if (!f)
            return -1;
        o->optim_given |= is_optim_flag(f->name);
        if (f->type == F_FLAG) {
            if (eq) {
                snprintf(err, errlen, "--%s: takes no value", f->name);
                return -1;
            }
            *(int *)((char *)o + f->offset) = 1;
            continue;
        }
        const char *v = eq ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
        if (v && !eq && strncmp(v, "--", 2) == 0 && is_flag_name(v + 2))
            v = NULL; /* "--batch --epochs 3": --batch lacks its value */
        if (!v) {
            snprintf(err, errlen, "--%s: expected a value (%s)", f->name, f->arg);
            return -1;
        }
        if (set_value(o, f, v, err, errlen) != 0)
            return -1;
    }
    if (o->help)
        return 0;
    if (o->command == WK_CMD_EVAL || o->command == WK_CMD_INSPECT) {
        if (!o->checkpoint[0]) {
            snprintf(err, errlen, "%s: expected a checkpoint FILE or DIR",
                     commands[o->command].name);
            return -1;
        }
        return 0; /* the model is the checkpoint's */
    }
    if (o->command == WK_CMD_SAMPLE) {
        if (!o->checkpoint[0] || !o->out[0]) {
            snprintf(err, errlen, "sample: expected --checkpoint FILE|DIR and --out FILE.png");
            return -1;
        }
        return 0;
    }
    if (o->command == WK_CMD_PLOT) {
        if (!o->plot_n || !o->out[0]) {
            snprintf(err, errlen,
                     "plot: expected metrics FILEs (JSON lines) and --out FILE.png|FILE.svg");
            return -1;
        }
        return 0;
    }
    if (o->command == WK_CMD_CHECK)
        return check_model(o, err, errlen);
    if (strcmp(o->resume, "auto") == 0 && !o->checkpoint_dir[0]) {
        snprintf(err, errlen, "--resume auto: needs --checkpoint-dir (where to look for latest)");
        return -1;
    }
    if (strcmp(o->on_worker_loss, "continue") && strcmp(o->on_worker_loss, "abort")) {
        snprintf(err, errlen, "--on-worker-loss: expected continue or abort, got '%s'",
                 o->on_worker_loss);
        return -1;
    }
    if (strcmp(o->secure, "auto") && strcmp(o->secure, "on") && strcmp(o->secure, "off")) {
        snprintf(err, errlen, "--secure: expected auto, on or off, got '%s'", o->secure);
        return -1;
    }
    if (strcmp(o->log_level, "quiet") && strcmp(o->log_level, "info") &&
        strcmp(o->log_level, "debug")) {
        snprintf(err, errlen, "--log-level: expected quiet, info or debug, got '%s'", o->log_level);
        return -1;
    }
    if (o->checkpoint_every && !o->checkpoint_dir[0]) {
        snprintf(err, errlen, "--checkpoint-every: needs --checkpoint-dir");
        return -1;
    }
    if (check_model(o, err, errlen) != 0)
        return -1;
    if (!o->epochs)
        o->epochs = eng_model_find(o->model)->epochs;
    if (eng_optim_kind_parse(o->optimizer) < 0) {
        snprintf(err, errlen, "--optimizer: expected adam or rmsprop, got '%s'", o->optimizer);
        return -1;
    }
    if (strcmp(o->mode, "sync") && strcmp(o->mode, "async") && strcmp(o->mode, "ssp")) {
        snprintf(err, errlen, "--mode: expected sync, async or ssp, got '%s'", o->mode);
        return -1;
    }
    if (o->port_range[0]) {
        int a, b, used = 0;
        if (sscanf(o->port_range, "%d-%d%n", &a, &b, &used) != 2 ||
            used != (int)strlen(o->port_range) || a < 1 || b > 65535 || a > b) {
            snprintf(err, errlen, "--port-range: expected A-B with 1 <= A <= B <= 65535, got '%s'",
                     o->port_range);
            return -1;
        }
    }
    eng_optim_cfg parsed;
    char why[300];
    const eng_model_def *def = eng_model_find(o->model);
    if (def->parts) {
        if (strcmp(o->optimizer, "adam") || o->lr > 0 || o->clipvalue > 0 || o->decay > 0) {
            snprintf(err, errlen,
                     "--optimizer/--lr/--clipvalue/--decay: %s trains two networks; give "
                     "--gen-optim and --disc-optim instead",
                     o->model);
            return -1;
        }
        const char *names[2] = {"gen-optim", "disc-optim"},
                   *specs[2] = {o->gen_optim, o->disc_optim};
        for (int p = 0; p < 2; p++)
            if (eng_optim_parse(specs[p], &parsed, why, sizeof why) != PST_OK) {
                snprintf(err, errlen, "--%s: %s", names[p], why);
                return -1;
            }
        if (o->ema_decay < 0.0)
            o->ema_decay = WK_EMA_DEFAULT;
    } else if (o->samples[0] || o->judge[0] || o->ema_decay >= 0.0) {
        snprintf(err, errlen, "--%s: only for a GAN (--model mnist_gan), not %s",
                 o->samples[0] ? "samples"
                 : o->judge[0] ? "judge"
                               : "ema-decay",
                 o->model);
        return -1;
    }
    if (strcmp(o->optimizer, "adam") == 0 && (o->clipvalue > 0 || o->decay > 0)) {
        snprintf(err, errlen, "--clipvalue/--decay: only with --optimizer rmsprop");
        return -1;
    }
    return 0;
}

const char *wk_cli_command_name(wk_command c) {
    return c >= 0 && (size_t)c < NCOMMANDS ? commands[c].name : NULL;
}

#define HELP_WIDTH 100 /* columns, as the code's */

/* Prints left in a column of `indent` columns (on a line of its own when longer), then text
 * wrapped at word boundaries to HELP_WIDTH columns, each later line indented alike. */
static void put_item(FILE *out, const char *left, int indent, const char *text) {
    int col = fprintf(out, "  %s", left);
    if (col >= indent - 1) {
        fputc('\n', out);
        col = 0;
    }
    fprintf(out, "%*s", indent - col, "");
    col = indent;
    for (const char *p = text; *p;) {
        while (*p == ' ')
            p++;
        const size_t w = strcspn(p, " ");
        if (col > indent && col + 1 + (int)w > HELP_WIDTH) {
            fprintf(out, "\n%*s", indent, "");
            col = indent;
        }
        col += fprintf(out, "%s%.*s", col > indent ? " " : "", (int)w, p);
        p += w;
    }
    fputc('\n', out);
}

void wk_cli_usage(FILE *out, const char *command) {
    if (!command) {
        fprintf(out, "usage: pstrain COMMAND [flags]\n       pstrain help COMMAND\n       "
                     "pstrain --version\n\ncommands:\n");
        for (size_t c = 0; c < NCOMMANDS; c++)
            put_item(out, commands[c].name, 12, commands[c].about);
        fprintf(out, "\nSee pstrain help COMMAND (or pstrain COMMAND --help) for its flags.\n");
    } else {
        unsigned bit = 0;
        for (size_t c = 0; c < NCOMMANDS; c++)
            if (strcmp(command, commands[c].name) == 0) {
                bit = 1u << c;
                const char *args =
                    c == WK_CMD_EVAL || c == WK_CMD_INSPECT || c == WK_CMD_SAMPLE
                        ? "FILE|DIR"
                        : (c == WK_CMD_PLOT ? "METRICS.jsonl... --out FILE.png|FILE.svg"
                                            : "--model NAME");
                fprintf(out, "usage: pstrain %s %s [flags]\n%s\n\nflags:\n", command, args,
                        commands[c].about);
            }
        for (size_t k = 0; k < NFLAGS; k++) {
            if (!(flags[k].commands & bit))
                continue;
            char left[48];
            snprintf(left, sizeof left, "--%s%s%s", flags[k].name, flags[k].arg ? " " : "",
                     flags[k].arg ? flags[k].arg : "");
            put_item(out, left, 28, flags[k].help);
        }
    }
    /* the commands that take --model list the models */
    if (!command || strcmp(command, "train") == 0 || strcmp(command, "summary") == 0 ||
        strcmp(command, "check") == 0) {
        fprintf(out, "\nmodels:\n");
        for (int i = 0; eng_model_at(i); i++)
            put_item(out, eng_model_at(i)->name, 16, eng_model_at(i)->about);
    }
    fprintf(out, "\nexit status:\n");
    put_item(out, "0", 6, "success");
    put_item(out, "1", 6, "a failure that is not the input's (a lost server, a full disk)");
    put_item(out, "2", 6, "bad input: one line names the flag or file and what was expected");
    if (!command || strcmp(command, "train") == 0)
        put_item(out, "75", 6,
                 "train: stopped on SIGTERM or SIGINT after a last checkpoint (--checkpoint-dir); "
                 "run the same command with --resume auto to go on");
}
