/* flags.c: every flag of every command, with its bounds and its help, and the commands
 * (launch/cmd/flags.h). The order is the help's, and did-you-mean's on a tie. */
#include "launch/cmd/flags.h"

#include "launch/cmd/config.h"

#include <stddef.h>

#define TRAIN (1u << CMD_TRAIN)
#define SUMMARY (1u << CMD_SUMMARY)
#define EVAL (1u << CMD_EVAL)
#define INSPECT (1u << CMD_INSPECT)
#define SAMPLE (1u << CMD_SAMPLE)
#define PLOT (1u << CMD_PLOT)
#define CHECK (1u << CMD_CHECK)
#define EXPORT (1u << CMD_EXPORT)
#define SERVE (1u << CMD_SERVE)
#define STR(field) offsetof(cmd_config, field), sizeof(((cmd_config *)0)->field)
#define NUM(field) offsetof(cmd_config, field), 0
#define TEXT_(x) #x
#define TEXT(x) TEXT_(x) /* a macro's value as a string */

const cmd_flag cmd_flags[] = {
    {"model", CMD_F_STR, STR(worker.model), 0, 0, TRAIN | SUMMARY | CHECK, "NAME",
     "model to build (see below)"},
    {"data", CMD_F_STR, STR(worker.data), 0, 0, TRAIN | EVAL | CHECK, "DIR",
     "data directory (default $PSTRAIN_DATA or " PSTRAIN_DATA_DIR ")"},
    {"epochs", CMD_F_INT, NUM(worker.epochs), 1, 1e6, TRAIN, "N",
     "passes over the training set (default 10; mnist_gan: 50, as TF's tutorial)"},
    {"batch", CMD_F_INT, NUM(worker.batch), 1, 65536, TRAIN, "N", "samples per step (default 32)"},
    {"optimizer", CMD_F_STR, STR(worker.optimizer), 0, 0, TRAIN, "adam|rmsprop",
     "update rule (default adam)"},
    {"lr", CMD_F_REAL, NUM(worker.lr), 1e-12, 10, TRAIN, "X",
     "learning rate (default 1e-3, Keras's)"},
    {"clipvalue", CMD_F_REAL, NUM(worker.clipvalue), 0, 1e6, TRAIN, "X",
     "rmsprop: clip each gradient element to [-X, X] (0 = off)"},
    {"decay", CMD_F_REAL, NUM(worker.decay), 0, 1, TRAIN, "X",
     "rmsprop: lr / (1 + X * iterations) (0 = off)"},
    {"seed", CMD_F_INT, NUM(worker.seed), 0, 9007199254740991.0, TRAIN, "N",
     "seed for weights, shuffles and dropout (default 1)"},
    {"seed", CMD_F_INT, NUM(worker.seed), 0, 9007199254740991.0, SAMPLE | EVAL, "N",
     "a GAN: seed of the noise, as a run with that seed draws it (default 1)"},
    {"threads", CMD_F_INT, NUM(worker.threads), 0, 1024, TRAIN | EVAL | SERVE, "N",
     "compute threads (default: one per CPU)"},
    {"conv", CMD_F_STR, STR(worker.conv), 0, 0, TRAIN | EVAL, "auto|im2col|winograd",
     "how 3x3 convolutions compute: the engine's rule per layer (default), im2col + sgemm, "
     "or Winograd F(2x2|4x4|5x5, 3x3) where a layer allows (winograd2, 4, 5 pin the tile)"},
    {"max-steps", CMD_F_INT, NUM(worker.max_steps), 0, 1e15, TRAIN, "N",
     "stop after N steps in all (0 = no limit)"},
    {"val-split", CMD_F_REAL, NUM(worker.val_split), 0, 0.99, TRAIN, "X",
     "fraction of the training files held out, from the end (default 0.1)"},
    {"metrics", CMD_F_STR, STR(worker.metrics), 0, 0, TRAIN, "FILE",
     "write JSON lines: one per epoch, one at the end"},
    {"progress", CMD_F_INT, NUM(worker.progress), -1, 1, TRAIN, "-1|0|1",
     "live bar: auto (on a terminal), off, on"},
    {"servers", CMD_F_INT, NUM(worker.servers), 0, 4096, TRAIN, "P",
     "ranks 0..P-1 are parameter servers, the rest workers (default 0: one process)"},
    {"replicas", CMD_F_INT, NUM(worker.replicas), 0, 1, TRAIN, "R",
     "each server's shard is also kept by the next server, which takes over when it is lost "
     "(0 or 1; default 0)"},
    {"max-workers", CMD_F_INT, NUM(worker.max_workers), 0, 32768, TRAIN, "N",
     "workers may join the running job up to N in all (pstrain train --join FILE; default: "
     "none); they are admitted at an epoch's end"},
    {"job-file", CMD_F_STR, STR(worker.job_file), 0, 0, TRAIN, "FILE",
     "with --max-workers, where rank 0 writes what a worker needs to join: the servers, the "
     "job's token and keys (mode 0600; default: job.json in --checkpoint-dir)"},
    {"join", CMD_F_STR, STR(worker.join), 0, 0, TRAIN, "FILE",
     "join the running job FILE describes as one more worker, without mpirun (flags given "
     "here, such as --data and --threads, override the job's)"},
    {"mode", CMD_F_STR, STR(worker.mode), 0, 0, TRAIN, "sync|async|ssp",
     "consistency with servers (default sync)"},
    {"staleness", CMD_F_INT, NUM(worker.staleness), 0, 1000, TRAIN, "S",
     "ssp: how many steps a worker may run ahead of the slowest (default 2)"},
    {"timeout", CMD_F_REAL, NUM(worker.timeout), 0.1, 86400, TRAIN, "SECONDS",
     "give up on a server that does not answer (default 60)"},
    {"peer-timeout", CMD_F_REAL, NUM(worker.peer_timeout), 0.5, 86400, TRAIN, "SECONDS",
     "a worker or server not heard from for this long is lost (heartbeats every second; "
     "default 30)"},
    {"on-worker-loss", CMD_F_STR, STR(server.on_worker_loss), 0, 0, TRAIN, "continue|abort",
     "continue (default): the job goes on with the others, who take over its data from the "
     "next epoch; abort: checkpoint and stop (status 75)"},
    {"secure", CMD_F_STR, STR(worker.secure), 0, 0, TRAIN, "auto|on|off",
     "CURVE encryption and authentication on every connection, keys made fresh per job and "
     "handed out over MPI (default auto: on when the job spans more than one host)"},
    {"bind", CMD_F_STR, STR(server.bind), 0, 0, TRAIN, "ADDR",
     "address servers listen on (default 0.0.0.0)"},
    {"advertise", CMD_F_STR, STR(server.advertise), 0, 0, TRAIN, "ADDR",
     "address workers reach a server at (default: its first non-loopback IPv4)"},
    {"port-range", CMD_F_STR, STR(server.port_range), 0, 0, TRAIN, "A-B",
     "ports servers may bind (default: any free port)"},
    {"server-threads", CMD_F_INT, NUM(server.threads), 1, 64, TRAIN, "N",
     "threads for a server's update (default 1; more pays off when servers have idle cores)"},
    {"chunk", CMD_F_INT, NUM(worker.chunk), 0, 1e9, TRAIN, "FLOATS",
     "the most floats in one push or pull message (default 0: no limit). Messages also break "
     "between layers: a worker sends a layer's gradient as soon as backward has finished it"},
    {"dense-pushes", CMD_F_FLAG, NUM(worker.dense_pushes), 0, 0, TRAIN, NULL,
     "push an embedding's whole gradient, not just the rows a batch used (to compare)"},
    {"wire", CMD_F_STR, STR(worker.wire), 0, 0, TRAIN, "fp32|bf16|fp16",
     "the values' type in pushes and pull answers (default fp32). bf16 and fp16 halve the bytes; "
     "pulls then send each worker the change since its last pull, so no update is lost to "
     "rounding. Checkpoints and optimizer state stay fp32"},
    {"compress", CMD_F_STR, STR(worker.compress), 0, 0, TRAIN, "none|topk:F",
     "topk:F sends only the largest fraction F of each push and of each pull's change, keeping "
     "what was not sent for the next step (error feedback) (default none)"},
    {"simulate-compute", CMD_F_REAL, NUM(worker.simulate_ms), 0, 1e6, TRAIN, "MS",
     "the scaling lab (tests/scale): a job's workers (a classifier's) do no arithmetic but "
     "wait MS milliseconds a step, sending each layer's gradient when a real step would "
     "(measured on 3 real steps at start); the loss and accuracy they report then mean nothing"},
    {"dry-run", CMD_F_FLAG, NUM(args.dry_run), 0, 0, TRAIN, NULL,
     "check the flags, the data, the checkpoint to resume from and the paths to write, say what "
     "would run, and exit (0, or 2 with the first problem); launch/ scripts run it before mpirun"},
    {"dump-weights", CMD_F_STR, STR(worker.dump_weights), 0, 0, TRAIN, "FILE",
     "write the final flat weight vector as raw little-endian float32 (tests)"},
    {"checkpoint-dir", CMD_F_STR, STR(worker.checkpoint_dir), 0, 0, TRAIN, "DIR",
     "write DIR/ckpt-STEP.h5 at every epoch end, every --checkpoint-every steps and on SIGTERM "
     "or SIGINT (then stop); DIR/latest names the newest"},
    {"checkpoint-every", CMD_F_INT, NUM(worker.checkpoint_every), 0, 1e15, TRAIN, "STEPS",
     "also checkpoint every STEPS steps (default 0: epoch ends only)"},
    {"keep", CMD_F_INT, NUM(worker.keep), 0, 1e6, TRAIN, "K",
     "keep the newest K checkpoints (default 0: all)"},
    {"resume", CMD_F_STR, STR(worker.resume), 0, 0, TRAIN, "FILE|DIR|auto",
     "continue a job from a checkpoint (DIR: the one DIR/latest names), on any number of "
     "servers and workers; auto: --checkpoint-dir's latest if there is one, else start fresh "
     "(a restart loop's one flag)"},
    {"init-from", CMD_F_STR, STR(worker.init_from), 0, 0, TRAIN, "FILE.h5[,FILE.h5]",
     "start from the weights of a Keras weights or full-model file (model.save_weights, "
     "model.save, pstrain export, a checkpoint) whose layers with weights match the model's in "
     "order and shape (a GAN: the generator's file, then the discriminator's); the optimizer "
     "starts fresh. With --resume auto, only when there is no checkpoint to resume"},
    {"log-level", CMD_F_STR, STR(worker.log_level), 0, 0, TRAIN, "quiet|info|debug",
     "servers: quiet prints nothing but errors, info (default) their counters at the end, "
     "debug also a line per update"},
    {"checkpoint", CMD_F_STR, STR(args.checkpoint), 0, 0, EVAL | INSPECT | SAMPLE | EXPORT | SERVE,
     "FILE|DIR", "the checkpoint to read (or give it as the only argument)"},
    {"gen-optim", CMD_F_STR, STR(worker.gen_optim), 0, 0, TRAIN, "SPEC",
     "a GAN's generator optimizer, KIND[:KEY=VALUE,...] (default adam:lr=1e-4)"},
    {"disc-optim", CMD_F_STR, STR(worker.disc_optim), 0, 0, TRAIN, "SPEC",
     "a GAN's discriminator optimizer (default rmsprop:lr=8e-4,clipvalue=1,decay=1e-8)"},
    {"samples", CMD_F_STR, STR(worker.samples), 0, 0, TRAIN, "DIR",
     "a GAN: write DIR/epoch-E.png, digits from the same noise at every epoch's end"},
    {"judge", CMD_F_STR, STR(worker.judge), 0, 0, TRAIN, "FILE|DIR",
     "a GAN: score it at every epoch's end with this mnist_cnn checkpoint (Inception Score, "
     "Frechet distance)"},
    {"judge", CMD_F_STR, STR(worker.judge), 0, 0, EVAL, "FILE|DIR",
     "a GAN's checkpoint: score it with this mnist_cnn checkpoint (Inception Score, Frechet "
     "distance)"},
    {"judge-n", CMD_F_INT, NUM(worker.judge_n), 100, 1e6, TRAIN | EVAL, "N",
     "images generated for the scores (default 10000)"},
    {"ema-decay", CMD_F_REAL, NUM(worker.ema_decay), 0, 0.999999, TRAIN, "X",
     "a GAN: keep a moving average of the generator's weights, as TF's ExponentialMovingAverage "
     "(default " TEXT(CMD_EMA_DEFAULT) "; 0 = none); grids, scores, sample and eval draw from it"},
    {"live", CMD_F_FLAG, NUM(args.live), 0, 0, SAMPLE | EVAL | SERVE, NULL,
     "a GAN: draw from the generator's own weights, not their moving average"},
    {"keras", CMD_F_STR, STR(args.keras), 0, 0, EXPORT, "FILE.h5",
     "write what Keras 2's model.save('FILE.h5') writes (keras.models.load_model opens it; no "
     "optimizer state: Keras compiles it with a fresh optimizer). A GAN: FILE-generator.h5 and "
     "FILE-discriminator.h5"},
    {"live", CMD_F_FLAG, NUM(args.live), 0, 0, EXPORT, NULL,
     "a GAN: export the generator's own weights, not their moving average (the default when "
     "the run kept one, as sample and eval draw from it)"},
    {"out", CMD_F_STR, STR(args.out), 0, 0, SAMPLE, "FILE", "the PNG of the grid to write"},
    {"out", CMD_F_STR, STR(args.out), 0, 0, PLOT, "FILE",
     "the chart to write: FILE.png or FILE.svg"},
    {"title", CMD_F_STR, STR(args.title), 0, 0, PLOT, "TEXT",
     "plot: the picture's title (default: the metrics file's path, or 'N runs')"},
    {"n", CMD_F_INT, NUM(args.n), 1, 4096, SAMPLE, "N", "digits in the grid (default 64)"},
    {"inputs", CMD_F_STR, STR(args.input_file), 0, 0, EVAL, "FILE",
     "run the model on the samples of FILE, JSON {\"input\": NAME, \"data\": [...]}, and print "
     "its outputs as one JSON line, not the test set's figures"},
    {"batch", CMD_F_INT, NUM(args.infer_batch), 1, 4096, EVAL, "N",
     "with --inputs: samples per forward pass (default 1, as a server's single requests)"},
    {"max-batch", CMD_F_INT, NUM(args.max_batch), 1, 4096, EVAL | SERVE, "M",
     "the largest forward pass the model is made for (default 64): with --threads it decides "
     "the pass size, and so the bits"},
    {"bind", CMD_F_STR, STR(serve.bind), 0, 0, SERVE, "ADDR",
     "address to listen on, IPv4 or IPv6 (default 127.0.0.1: this host only)"},
    {"port", CMD_F_INT, NUM(serve.port), 0, 65535, SERVE, "PORT",
     "port to listen on (default 8501, TF Serving's REST port; 0: any free port, said in the "
     "line printed when ready)"},
    {"name", CMD_F_STR, STR(serve.name), 0, 0, SERVE, "NAME",
     "the model's name in URLs, /v1/models/NAME and /v2/models/NAME (default: the "
     "checkpoint's model, e.g. mnist_cnn)"},
    {"batch-timeout-us", CMD_F_INT, NUM(serve.batch_timeout_us), 0, 1e6, SERVE, "US",
     "the most a request waits for others to share its forward pass (default 1000); a request "
     "alone with none on the way runs at once"},
    {"token-file", CMD_F_STR, STR(serve.token_file), 0, 0, SERVE, "FILE",
     "require 'Authorization: Bearer TOKEN' (FILE: one line, mode 0600) on every route but "
     "/v2/health/live and /v2/health/ready"},
    {"tls-cert", CMD_F_STR, STR(serve.tls_cert), 0, 0, SERVE, "FILE",
     "serve HTTPS with this PEM certificate (and --tls-key)"},
    {"tls-key", CMD_F_STR, STR(serve.tls_key), 0, 0, SERVE, "FILE",
     "the PEM private key of --tls-cert"},
    {"max-body", CMD_F_INT, NUM(serve.max_body), 1024, 1 << 30, SERVE, "BYTES",
     "largest request body (default 16777216); a larger Content-Length is answered 413 before "
     "the body is read"},
    {"request-timeout", CMD_F_INT, NUM(serve.request_timeout), 1, 86400, SERVE, "SECONDS",
     "close a connection that sends nothing for this long, mid-request or idle (default 30)"},
    {"max-connections", CMD_F_INT, NUM(serve.max_connections), 1, 4096, SERVE, "N",
     "connections at once; more are refused (default 256)"},
    {"help", CMD_F_FLAG, NUM(args.help), 0, 0,
     TRAIN | SUMMARY | EVAL | INSPECT | SAMPLE | PLOT | CHECK | EXPORT | SERVE, NULL, "this help"},
};

const size_t cmd_nflags = sizeof cmd_flags / sizeof cmd_flags[0];

const cmd_command_info cmd_commands[] = {
    [CMD_TRAIN] = {"train", "train a model and report test loss and accuracy"},
    [CMD_SUMMARY] = {"summary", "print a model's layers, output shapes and parameters"},
    [CMD_EVAL] = {"eval",
                  "evaluate a checkpoint's weights on the test set (or run it on --inputs)"},
    [CMD_INSPECT] = {"inspect", "print a checkpoint's metadata and a table of its tensors"},
    [CMD_SAMPLE] = {"sample", "write a PNG grid of a GAN checkpoint's generated digits"},
    [CMD_PLOT] = {"plot", "draw runs' --metrics files as training curves (PNG or SVG)"},
    [CMD_CHECK] = {"check", "one line: version, build, layout checksum, whether the data is "
                            "here (exit 2 if not)"},
    [CMD_EXPORT] = {"export", "write a checkpoint as Keras full-model files (--keras FILE.h5)"},
    [CMD_SERVE] = {"serve", "serve a checkpoint (or a directory's latest, reloaded as it "
                            "changes) over REST: TF Serving's and KServe v2's APIs"},
};
