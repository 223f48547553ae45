/* cli.c: table-driven flag parsing (redis config.c style) into a config per role
 * (launch/cmd/cli.h). */
#include "launch/cmd/cli.h"

#include "engine/base/base.h"
#include "engine/model.h"
#include "launch/cmd/flags.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* "train, summary, ... or check" into buf. */
static const char *command_list(char *buf, size_t len) {
    buf[0] = '\0';
    for (size_t c = 0; c < CMD_NCOMMANDS; c++)
        snprintf(buf + strlen(buf), len - strlen(buf), "%s%s",
                 c == 0 ? "" : (c + 1 == CMD_NCOMMANDS ? " or " : ", "), cmd_commands[c].name);
    return buf;
}

static int set_value(cmd_config *o, const cmd_flag *f, const char *v, char *err, size_t errlen) {
    char *p = (char *)o + f->offset;
    if (f->type == CMD_F_STR) {
        if (strlen(v) >= f->size) {
            return pst_err(err, errlen, PST_EARG, "--%s: value longer than %zu characters", f->name,
                           f->size - 1);
        }
        memcpy(p, v, strlen(v) + 1);
        return PST_OK;
    }
    char *end;
    errno = 0;
    double d = strtod(v, &end);
    int bad = errno != 0 || end == v || *end != '\0' || !isfinite(d);
    if (f->type == CMD_F_INT && !bad)
        bad = d != floor(d);
    if (bad || d < f->min || d > f->max) {
        return pst_err(err, errlen, PST_EARG, "--%s: expected %s in [%g, %g], got '%s'", f->name,
                       f->type == CMD_F_INT ? "an integer" : "a number", f->min, f->max, v);
    }
    if (f->type == CMD_F_INT)
        *(int64_t *)p = (int64_t)d;
    else
        *(double *)p = d;
    return PST_OK;
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
    for (size_t k = 0; k < cmd_nflags; k++)
        if (strlen(cmd_flags[k].name) == len && strncmp(cmd_flags[k].name, name, len) == 0)
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
static const cmd_flag *find_flag(cmd_command c, const char *a, const char *eq, char *err,
                                 size_t errlen) {
    const char *name = a + 2;
    const size_t len = eq ? (size_t)(eq - name) : strlen(name);
    char given[64];
    snprintf(given, sizeof given, "%.*s", (int)(len < sizeof given ? len : sizeof given - 1), name);
    unsigned elsewhere = 0;
    for (size_t k = 0; k < cmd_nflags; k++)
        if (strcmp(cmd_flags[k].name, given) == 0) {
            if (cmd_flags[k].commands & (1u << c))
                return &cmd_flags[k];
            elsewhere |= cmd_flags[k].commands;
        }
    const char *cmd = cmd_commands[c].name;
    if (elsewhere) {
        char which[128] = "";
        for (size_t k = 0; k < CMD_NCOMMANDS; k++)
            if (elsewhere & (1u << k))
                snprintf(which + strlen(which), sizeof which - strlen(which), "%s%s",
                         which[0] ? ", " : "", cmd_commands[k].name);
        snprintf(err, errlen, "--%s: not a flag of '%s' (it is one of: %s)", given, cmd, which);
        return NULL;
    }
    const cmd_flag *near = NULL;
    int best = INT_MAX;
    for (size_t k = 0; k < cmd_nflags; k++) {
        if (!(cmd_flags[k].commands & (1u << c)))
            continue;
        const size_t fl = strlen(cmd_flags[k].name);
        int d = mistyped(given, cmd_flags[k].name);
        if (d > max_typos(cmd_flags[k].name) && len > fl &&
            strncmp(given, cmd_flags[k].name, fl) == 0 && strchr("-_", given[fl]))
            d = max_typos(cmd_flags[k].name); /* --batch-size: --batch and more words */
        if (d < best)
            best = d, near = &cmd_flags[k];
    }
    if (near && best <= max_typos(near->name))
        snprintf(err, errlen, "--%s: unknown flag for '%s'; did you mean --%s? (pstrain help %s)",
                 given, cmd, near->name, cmd);
    else
        snprintf(err, errlen, "--%s: unknown flag for '%s' (pstrain help %s lists them)", given,
                 cmd, cmd);
    return NULL;
}

int cmd_cli_parse(cmd_config *o, int argc, char **argv, char *err, size_t errlen) {
    cmd_config_defaults(o);
    char cmds[128];
    if (argc < 2) {
        return pst_err(err, errlen, PST_EARG, "expected a command: %s (see --help)",
                       command_list(cmds, sizeof cmds));
    }
    if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0) {
        o->args.version = 1;
        o->command = (cmd_command)-1;
        return PST_OK;
    }
    /* pstrain --help, pstrain help, pstrain help COMMAND (git's way) */
    const int help_cmd = strcmp(argv[1], "help") == 0;
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || (help_cmd && argc == 2)) {
        o->args.help = 1;
        o->command = (cmd_command)-1;
        return PST_OK;
    }
    const char *name = help_cmd ? argv[2] : argv[1];
    int found = 0;
    for (size_t c = 0; c < CMD_NCOMMANDS; c++)
        if (strcmp(name, cmd_commands[c].name) == 0) {
            o->command = (cmd_command)c;
            found = 1;
        }
    if (!found) {
        const char *near = NULL;
        int best = INT_MAX;
        for (size_t c = 0; c < CMD_NCOMMANDS; c++) {
            const int d = mistyped(name, cmd_commands[c].name);
            if (d < best)
                best = d, near = cmd_commands[c].name;
        }
        if (near && best <= max_typos(near))
            return pst_err(err, errlen, PST_EARG, "unknown command '%s': did you mean '%s'?", name,
                           near);
        return pst_err(err, errlen, PST_EARG, "unknown command '%s': expected %s", name,
                       command_list(cmds, sizeof cmds));
    }
    if (help_cmd) {
        if (argc > 3)
            return pst_err(err, errlen, PST_EARG, "help: expected one command, got '%s' after '%s'",
                           argv[3], name);
        o->args.help = 1;
        return PST_OK;
    }
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0)
            a = "--help";
        if (strncmp(a, "--", 2) != 0) {
            cmd_args *args = &o->args;
            if (o->command == CMD_PLOT) { /* plot takes the metrics files as its arguments */
                if (args->ninputs == WK_CHART_RUNS)
                    return pst_err(err, errlen, PST_EARG,
                                   "plot: expected at most %d metrics files, got more",
                                   WK_CHART_RUNS);
                args->inputs[args->ninputs++] = argv[i];
                continue;
            }
            /* eval, inspect and sample take the checkpoint as their one argument */
            if ((o->command == CMD_EVAL || o->command == CMD_INSPECT || o->command == CMD_SAMPLE ||
                 o->command == CMD_EXPORT || o->command == CMD_SERVE) &&
                !args->checkpoint[0] && strlen(a) < sizeof args->checkpoint) {
                snprintf(args->checkpoint, sizeof args->checkpoint, "%s", a);
                continue;
            }
            return pst_err(err, errlen, PST_EARG, "unexpected argument '%s': flags start with --",
                           a);
        }
        const char *eq = strchr(a + 2, '=');
        const cmd_flag *f = find_flag(o->command, a, eq, err, errlen);
        if (!f)
            return PST_EARG;
        o->worker.optim_given |= is_optim_flag(f->name);
        if (f->type == CMD_F_FLAG) {
            if (eq)
                return pst_err(err, errlen, PST_EARG, "--%s: takes no value", f->name);
            *(int *)((char *)o + f->offset) = 1;
            continue;
        }
        const char *v = eq ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
        if (v && !eq && strncmp(v, "--", 2) == 0 && is_flag_name(v + 2))
            v = NULL; /* "--batch --epochs 3": --batch lacks its value */
        if (!v)
            return pst_err(err, errlen, PST_EARG, "--%s: expected a value (%s)", f->name, f->arg);
        const int rc = set_value(o, f, v, err, errlen);
        if (rc != PST_OK)
            return rc;
    }
    return o->args.help ? PST_OK : cmd_config_check(o, err, errlen);
}

const char *cmd_cli_command_name(cmd_command c) {
    return c >= 0 && (size_t)c < CMD_NCOMMANDS ? cmd_commands[c].name : NULL;
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

void cmd_cli_usage(FILE *out, const char *command) {
    if (!command) {
        fprintf(out, "usage: pstrain COMMAND [flags]\n       pstrain help COMMAND\n       "
                     "pstrain --version\n\ncommands:\n");
        for (size_t c = 0; c < CMD_NCOMMANDS; c++)
            put_item(out, cmd_commands[c].name, 12, cmd_commands[c].about);
        fprintf(out, "\nSee pstrain help COMMAND (or pstrain COMMAND --help) for its flags.\n");
    } else {
        unsigned bit = 0;
        for (size_t c = 0; c < CMD_NCOMMANDS; c++)
            if (strcmp(command, cmd_commands[c].name) == 0) {
                bit = 1u << c;
                const char *args =
                    c == CMD_EVAL || c == CMD_INSPECT || c == CMD_SAMPLE || c == CMD_SERVE
                        ? "FILE|DIR"
                    : c == CMD_EXPORT ? "FILE|DIR --keras OUT.h5"
                                      : (c == CMD_PLOT ? "METRICS.jsonl... --out FILE.png|FILE.svg"
                                                       : "--model NAME");
                fprintf(out, "usage: pstrain %s %s [flags]\n%s\n\nflags:\n", command, args,
                        cmd_commands[c].about);
            }
        for (size_t k = 0; k < cmd_nflags; k++) {
            if (!(cmd_flags[k].commands & bit))
                continue;
            char left[48];
            snprintf(left, sizeof left, "--%s%s%s", cmd_flags[k].name, cmd_flags[k].arg ? " " : "",
                     cmd_flags[k].arg ? cmd_flags[k].arg : "");
            put_item(out, left, 28, cmd_flags[k].help);
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