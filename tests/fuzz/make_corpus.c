/* make_corpus.c: writes the seed corpus of the fuzz harnesses (tests/fuzz/corpus), from the
 * real data files where there are some. Run by hand when a format changes:
 *
 *   build-fuzz/tests/fuzz/make_corpus DATA_DIR tests/fuzz/corpus [server|idx|imdb|ckpt|serve ...]
 *
 * (DATA_DIR as launch/fetch-data fills it: mnist/, imdb/reviews.json). Each kind's files
 * replace those of the same name; other files (regression inputs) are left alone.
 *
 *   server  one message each in fuzz_server's input format (fuzz_server.c): valid messages
 *           encoded by pb_msg_encode for the harness's servers (Hello, dense and sparse Push,
 *           PullRequest, SnapshotRequest, StatsRequest, Shutdown), then a few it refuses.
 *   idx     the first items of MNIST's training images and labels, raw and gzip, and a few
 *           shapes and cuts of them.
 *   imdb    reviews.json cut down: the first reviews of each of its four blocks, texts cut
 *           short, in the real file's form; and a few hand-written refusals.
 *   ckpt    checkpoints written by eng_ckpt_write for each kind of model (Adam, RMSprop, a
 *           text model with its vocabulary, a GAN with two optimizers), then copied with every
 *           dataset over FZ_HOLLOW bytes left unwritten (ckpt_example.h): kilobytes, and each
 *           still reads (checked here); one copy in HDF5's earliest format, which the reader
 *           refuses; and fuzz_ckpt's edit scripts, one of each kind of edit.
 *   serve   requests in fuzz_serve's format: each form of TF Serving's predict and KServe
 *           v2's infer (v2's binary tensor data among them) for each kind of model, and a few
 *           that are refused (a value out of range, NaN, a wrong datatype).
 * Exits 0, or 1 with a line on stderr. */
#include "engine/base/base.h"
#include "engine/ckpt/ckpt.h"
#include "engine/model.h"
#include "engine/shard.h"
#include "proto/codec.h"
#include "proto/wire.h"
#include "tests/fuzz/ckpt_example.h"
#include "tests/fuzz/fuzz_server.h"

#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

static const char *out_dir;

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("make_corpus: ", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

/* out_dir/kind/name <- data[0, len). */
static void put(const char *kind, const char *name, const void *data, size_t len) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", out_dir, kind);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/%s/%s", out_dir, kind, name);
    FILE *f = fopen(path, "wb");
    if (!f || (len && fwrite(data, 1, len, f) != len) || fclose(f) != 0)
        die("%s: %s", path, strerror(errno));
}

/* --- server: messages in fuzz_server's format --- */

static eng_model cnn;
static eng_chunks chunks; /* the servers' plan of their one shard */

/* Writes one input: selector byte, frame lengths, frames. payload (plen bytes) may be NULL
 * (one frame unless extra); extra adds a third frame. */
static void put_bytes(const char *name, int server, const pb_msg *m, const void *payload,
                      size_t plen, const char *extra) {
    size_t hlen;
    uint8_t *hdr = pb_msg_encode(m, PB_PROTOCOL_VERSION, 0, &hlen);
    if (!payload)
        plen = 0;
    const int frames = 1 + (payload != NULL) + (extra != NULL);
    if (hlen > 0xffff || plen > 0xffff)
        die("%s: message too large", name);
    uint8_t *buf = pst_malloc(1 + 4 + hlen + plen + (extra ? strlen(extra) : 0));
    size_t pos = 0;
    buf[pos++] = FZ_SERVER_SELECT(frames, server);
    const size_t lens[2] = {hlen, plen};
    for (int f = 0; f + 1 < frames; f++) {
        buf[pos++] = (uint8_t)(lens[f] & 0xff);
        buf[pos++] = (uint8_t)(lens[f] >> 8);
    }
    memcpy(buf + pos, hdr, hlen);
    pos += hlen;
    if (payload) {
        memcpy(buf + pos, payload, plen); /* little-endian hosts only, as the wire is */
        pos += plen;
    }
    if (extra) {
        memcpy(buf + pos, extra, strlen(extra));
        pos += strlen(extra);
    }
    put("server", name, buf, pos);
    pst_free(buf);
    pst_free(hdr);
}

/* put_bytes with a payload of count floats. */
static void put_message(const char *name, int server, const pb_msg *m, const float *payload,
                        size_t count, const char *extra) {
    put_bytes(name, server, m, payload, count * sizeof(float), extra);
}

/* A coded push of chunk k (proto/codec.h): bf16 values, or their top-k at frac. */
static void push_coded(const char *name, int server, uint32_t worker, int k, pb_wire wire,
                       double frac) {
    const uint64_t off = chunks.start[k], count = chunks.start[k + 1] - off;
    float *g = pst_malloc(sizeof(float) * count);
    for (size_t i = 0; i < count; i++)
        g[i] = 0.001f * (float)((i * 7 + worker) % 13) - 0.006f;
    uint8_t *out = pst_malloc(pb_topk_bytes(PB_WIRE_FP32, count));
    pb_msg m = {.kind = PB_PUSH,
                .push = {.worker_id = worker, .slice = {off, count}, .coding = {.wire = wire}}};
    size_t bytes = count * pb_wire_size(wire);
    if (frac > 0) {
        const size_t nnz = pb_topk_encode(wire, frac, g, count, out);
        m.push.coding.topk = 1;
        m.push.coding.nnz = nnz;
        bytes = pb_topk_bytes(wire, nnz);
    } else {
        pb_wire_encode(wire, g, count, out);
    }
    put_bytes(name, server, &m, out, bytes, NULL);
    pst_free(out);
    pst_free(g);
}

/* One frame of raw bytes for server 0. */
static void put_raw(const char *name, const void *bytes, size_t len) {
    uint8_t buf[256];
    buf[0] = FZ_SERVER_SELECT(1, 0);
    memcpy(buf + 1, bytes, len);
    put("server", name, buf, len + 1);
}

static void hello(const char *name, int server, uint32_t worker, const char *model,
                  uint64_t params) {
    const uint64_t sum = eng_layout_checksum(&cnn.layout);
    const pb_msg m = {.kind = PB_HELLO,
                      .hello = {.worker_id = worker,
                                .num_workers = FZ_SERVER_WORKERS,
                                .model = model,
                                .param_count = params,
                                .layout_checksum = sum,
                                .nparts = 1,
                                .parts = {{"model", params, sum}}}};
    put_message(name, server, &m, NULL, 0, NULL);
}

/* A dense push of chunk k (or of [off, off + count) when count > 0). */
static void push(const char *name, int server, uint32_t worker, uint64_t step, int k, uint64_t off,
                 uint64_t count, int with_payload, const char *extra) {
    if (count == 0) {
        off = chunks.start[k];
        count = chunks.start[k + 1] - off;
    }
    float *g = pst_malloc(sizeof(float) * count);
    for (size_t i = 0; i < count; i++)
        g[i] = 0.001f * (float)((i * 7 + worker) % 13) - 0.006f;
    const pb_msg m = {
        .kind = PB_PUSH,
        .push = {.worker_id = worker, .step = step, .slice = {off, count}, .base_version = step}};
    put_message(name, server, &m, with_payload ? g : NULL, count, extra);
    pst_free(g);
}

/* A sparse push of chunk 0 (conv2d/kernel, rows of 32 floats): rows 1, 4 and 8. */
static void push_sparse(const char *name, int server, uint32_t worker) {
    static const uint32_t rows[3] = {1, 4, 8};
    float g[3 * 32];
    for (int i = 0; i < 96; i++)
        g[i] = 0.01f * (float)(i % 5);
    const pb_msg m = {.kind = PB_PUSH,
                      .push = {.worker_id = worker,
                               .slice = {chunks.start[0], chunks.start[1] - chunks.start[0]},
                               .rows_from = 0,
                               .row_len = 32,
                               .nrows = 3,
                               .rows = rows}};
    put_message(name, server, &m, g, 96, NULL);
}

static void pull(const char *name, int server, uint32_t worker, uint64_t min_version, uint64_t off,
                 uint64_t count) {
    const pb_msg m = {
        .kind = PB_PULL,
        .pull = {.worker_id = worker, .min_version = min_version, .slice = {off, count}}};
    put_message(name, server, &m, NULL, 0, NULL);
}

static void make_server(void) {
    char err[256];
    if (eng_model_build(&cnn, eng_model_find(FZ_SERVER_MODEL), err, sizeof err) != PST_OK)
        die("%s", err);
    size_t cuts[ENG_MAX_LAYERS];
    const int ncuts = eng_model_cuts(&cnn, cuts);
    eng_chunks_plan(&chunks, 0, cnn.layout.total, cuts, ncuts, FZ_SERVER_CHUNK);
    const int last = chunks.n - 1;
    const uint64_t total = cnn.layout.total;

    hello("hello-w0", 0, 0, FZ_SERVER_MODEL, total);
    hello("hello-w1-async", 1, 1, FZ_SERVER_MODEL, total);
    hello("hello-other-model", 0, 0, "imdb_lstm", total);
    hello("hello-other-layout", 0, 0, FZ_SERVER_MODEL, total + 1);
    hello("hello-w7", 0, 7, FZ_SERVER_MODEL, total);

    push("push-w0-chunk0", 0, 0, 0, 0, 0, 0, 1, NULL);
    push("push-w1-chunk0", 0, 1, 0, 0, 0, 0, 1, NULL);
    push("push-w0-last", 0, 0, 0, last, 0, 0, 1, NULL);
    push("push-w1-last", 0, 1, 0, last, 0, 0, 1, NULL);
    push("push-w0-chunk0-async", 1, 0, 3, 0, 0, 0, 1, NULL);
    push("push-w0-last-async", 1, 0, 0, last, 0, 0, 1, NULL);
    push("push-w0-chunk0-step1-ssp", 2, 0, 1, 0, 0, 0, 1, NULL);
    push("push-w1-chunk0-step0-ssp", 2, 1, 0, 0, 0, 0, 1, NULL);
    push("push-w0-step9", 0, 0, 9, 0, 0, 0, 1, NULL);
    push("push-part-of-chunk", 0, 0, 0, 0, 1, 100, 1, NULL);
    push("push-past-shard", 0, 0, 0, 0, total - 10, 20, 1, NULL);
    push("push-no-payload", 0, 0, 0, 0, 0, 0, 0, NULL);
    push("push-three-frames", 0, 0, 0, last, 0, 0, 1, "extra");
    push_sparse("push-sparse-w0", 0, 0);
    push_sparse("push-sparse-w1-async", 1, 1);
    push_coded("push-bf16-w0", 0, 0, 0, PB_WIRE_BF16, 0.0);
    push_coded("push-fp16-w1-async", 1, 1, last, PB_WIRE_FP16, 0.0);
    push_coded("push-topk-bf16-w0", 0, 0, last, PB_WIRE_BF16, 0.01);
    push_coded("push-topk-fp32-w0-ssp", 2, 0, 0, PB_WIRE_FP32, 0.1);

    const uint64_t c0 = chunks.start[1], lo_last = chunks.start[last];
    pull("pull-w0-chunk0", 0, 0, 0, 0, c0);
    pull("pull-w1-last-v1", 0, 1, 1, lo_last, total - lo_last);
    pull("pull-w0-chunk0-v1-async", 1, 0, 1, 0, c0);
    pull("pull-w0-middle-v2-ssp", 2, 0, 2, 1000, 5000);
    pull("pull-w0-past-shard", 0, 0, 0, total - 5, 10);
    const pb_msg coded = {.kind = PB_PULL,
                          .pull = {.slice = {0, c0}, .wire = PB_WIRE_BF16, .topk = 0.01}};
    put_message("pull-w0-chunk0-topk-bf16", 0, &coded, NULL, 0, NULL);

    pb_msg snap = {.kind = PB_SNAPSHOT};
    put_message("snapshot-w0-v0", 0, &snap, NULL, 0, NULL);
    snap.snapshot = (pb_snapshot){.worker_id = 1, .min_version = 1};
    put_message("snapshot-w1-v1", 0, &snap, NULL, 0, NULL);

    const pb_msg sr = {.kind = PB_STATS_REQUEST};
    put_message("stats-w0", 0, &sr, NULL, 0, NULL);

    pb_msg sd = {.kind = PB_SHUTDOWN};
    put_message("shutdown-w0", 0, &sd, NULL, 0, NULL);
    sd.shutdown.worker_id = 1;
    put_message("shutdown-w1-async", 1, &sd, NULL, 0, NULL);

    /* --replicas and --max-workers (protocol 4) */
    const uint64_t sum = eng_layout_checksum(&cnn.layout);
    pb_msg h = {.kind = PB_HELLO,
                .hello = {.worker_id = PB_ANY_WORKER,
                          .num_workers = FZ_SERVER_WORKERS,
                          .model = FZ_SERVER_MODEL,
                          .param_count = total,
                          .layout_checksum = sum,
                          .nparts = 1,
                          .parts = {{"model", total, sum}},
                          .join = PB_JOIN_ASK}};
    put_message("hello-join-ask", 0, &h, NULL, 0, NULL);
    h.hello = (pb_hello){.worker_id = 1,
                         .num_workers = FZ_SERVER_WORKERS,
                         .model = FZ_SERVER_MODEL,
                         .param_count = total,
                         .layout_checksum = sum,
                         .nparts = 1,
                         .parts = {{"model", total, sum}},
                         .npushed = 1,
                         .pushed = {3}};
    put_message("hello-w1-failover", 0, &h, NULL, 0, NULL);
    float g[64] = {0};
    const uint64_t n0 =
        chunks.start[1] - chunks.start[0] < 64 ? chunks.start[1] - chunks.start[0] : 64;
    const pb_msg rp = {
        .kind = PB_PUSH,
        .push = {.worker_id = PB_ANY_WORKER, .slice = {0, n0}, .replica = 1, .stop_at = 9}};
    put_message("push-replica", 0, &rp, g, n0, NULL);
    const pb_msg rs = {.kind = PB_PUSH, .push = {.slice = {0, n0}, .resend = 1}};
    put_message("push-resend-w0", 0, &rs, g, n0, NULL);
    const pb_msg se = {.kind = PB_SHUTDOWN, .shutdown = {.worker_id = PB_ANY_WORKER, .replica = 1}};
    put_message("shutdown-replica", 0, &se, NULL, 0, NULL);
    const double at[2] = {4, 1};
    const pb_msg ad = {.kind = PB_REDUCE,
                       .reduce = {.op = 3, .round = 1, .nvalues = 2, .values = at}};
    put_message("reduce-admit-w0", 0, &ad, NULL, 0, NULL);
    const pb_msg ack = {.kind = PB_REPLICA_ACK, .replica_ack = {0, 0, 1}};
    put_message("replica-ack", 0, &ack, NULL, 0, NULL);

    /* Not requests, or not messages. */
    const pb_msg er = {.kind = PB_ERROR, .error = {PB_ERR_STATE, "no"}};
    put_message("error-reply", 0, &er, NULL, 0, NULL);
    _Static_assert(PB_PROTOCOL_VERSION == 4, "no-body and other-protocol spell out versions");
    put_raw("no-body", "\x08\x04", 2);                    /* protocol 4, no body */
    put_raw("other-protocol", "\x08\x01\xa2\x01\x00", 5); /* protocol 1, stats_request {} */
    put_raw("not-protobuf", "\xff\xff\xff\xff garbage", 13);
    put_raw("empty", "", 0);
    eng_chunks_free(&chunks);
}

/* --- idx: cut from MNIST --- */

/* The first len bytes of data_dir/mnist/name (or name.gz) into buf; returns how many. */
static size_t head_of(const char *data_dir, const char *name, uint8_t *buf, size_t len) {
    char path[4096];
    snprintf(path, sizeof path, "%s/mnist/%s", data_dir, name);
    gzFile f = gzopen(path, "rb");
    if (!f) {
        snprintf(path, sizeof path, "%s/mnist/%s.gz", data_dir, name);
        f = gzopen(path, "rb");
    }
    if (!f)
        die("%s/mnist/%s: cannot open (run launch/fetch-data)", data_dir, name);
    const int n = gzread(f, buf, (unsigned)len);
    gzclose(f);
    if (n < (int)len)
        die("%s: shorter than %zu bytes", path, len);
    return (size_t)n;
}

static void be32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* name and name.gz (gzip of the same bytes). */
static void put_idx(const char *name, const uint8_t *data, size_t len, int gz_too) {
    put("idx", name, data, len);
    if (!gz_too)
        return;
    char path[4096];
    snprintf(path, sizeof path, "%s/idx/%s.gz", out_dir, name);
    gzFile f = gzopen(path, "wb9");
    if (!f || gzwrite(f, data, (unsigned)len) != (int)len || gzclose(f) != Z_OK)
        die("%s: cannot write", path);
}

static void make_idx(const char *data_dir) {
    enum { N = 3, IMG = 28 * 28 };
    uint8_t img[16 + N * IMG], lab[8 + N];
    head_of(data_dir, "train-images-idx3-ubyte", img, sizeof img);
    head_of(data_dir, "train-labels-idx1-ubyte", lab, sizeof lab);
    be32(img + 4, N); /* the real header says 60000 */
    be32(lab + 4, N);
    put_idx("images-3", img, sizeof img, 1);
    put_idx("labels-3", lab, sizeof lab, 1);
    /* The real headers with a few items: truncated files. */
    be32(img + 4, 60000);
    be32(lab + 4, 60000);
    put_idx("images-truncated", img, 16 + IMG, 0);
    put_idx("labels-truncated", lab, sizeof lab, 0);
    /* Another row shape: 2 items of 4 x 6 (the images' first bytes). */
    uint8_t small[16 + 48];
    memcpy(small, img, sizeof small);
    be32(small + 4, 2);
    be32(small + 8, 4);
    be32(small + 12, 6);
    memcpy(small + 16, img + 16 + 14 * 28, 48); /* the middle of the first digit */
    put_idx("rows-4x6", small, sizeof small, 1);
    /* Four dimensions: 1 x 2 x 2 x 2. */
    const uint8_t four[4 + 16 + 8] = {0, 0, 8, 4, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0,
                                      0, 2, 0, 0, 0, 2, 1, 2, 3, 4, 5, 6, 7, 8};
    put_idx("dims-4", four, sizeof four, 0);
}

/* --- imdb: reviews.json cut down --- */

/* text cut to at most max bytes, at an ASCII byte so that UTF-8 stays whole. */
static json_t *cut_text(const char *text, size_t max) {
    size_t n = strlen(text);
    if (n > max) {
        n = max;
        while (n > 0 && (unsigned char)text[n] >= 0x80)
            n--;
    }
    return json_stringn(text, n);
}

/* Keeps k reviews from the start of each of the four blocks of all, texts cut to max. */
static void put_imdb(const char *name, const json_t *all, size_t k, size_t max) {
    const size_t q = json_array_size(all) / 4;
    json_t *out = json_array();
    for (size_t b = 0; b < 4; b++)
        for (size_t i = 0; i < k; i++) {
            const json_t *e = json_array_get(all, b * q + i);
            json_t *o = json_object();
            json_object_set_new(o, "t", cut_text(json_string_value(json_object_get(e, "t")), max));
            json_object_set(o, "s", json_object_get(e, "s"));
            json_array_append_new(out, o);
        }
    char *s = json_dumps(out, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (!s)
        die("imdb: cannot encode %s", name);
    put("imdb", name, s, strlen(s));
    free(s);
    json_decref(out);
}

static void make_imdb(const char *data_dir) {
    char path[4096];
    snprintf(path, sizeof path, "%s/imdb/reviews.json", data_dir);
    json_error_t jerr;
    json_t *all = json_load_file(path, 0, &jerr);
    if (!all || !json_is_array(all) || json_array_size(all) < 8)
        die("%s: %s (run launch/fetch-data)", path, all ? "not an array of reviews" : jerr.text);
    put_imdb("reviews-4.json", all, 1, 160);
    put_imdb("reviews-8.json", all, 2, 400);
    put_imdb("reviews-12-long.json", all, 3, 1500); /* "<br />"s, more words than maxlen */
    json_decref(all);
    static const struct {
        const char *name, *text;
    } hand[] = {
        {"label-out-of-block.json",
         "[{\"t\":\"bad\",\"s\":0},{\"t\":\"good\",\"s\":1},{\"t\":\"fine\",\"s\":1},"
         "{\"t\":\"great\",\"s\":1}]"},
        {"label-string.json",
         "[{\"t\":\"a\",\"s\":\"0\"},{\"t\":\"b\",\"s\":0},{\"t\":\"c\",\"s\":1},{\"t\":\"d\","
         "\"s\":1}]"},
        {"three-reviews.json",
         "[{\"t\":\"a\",\"s\":0},{\"t\":\"b\",\"s\":0},{\"t\":\"c\",\"s\":1}]"},
        {"not-an-array.json", "{\"t\":\"a\",\"s\":0}"},
        {"empty-array.json", "[]"},
        {"escapes.json",
         "[{\"t\":\"It's <br /><br />\\u00e9t\\u00e9 DON'T \\\"stop\\\"\\ttab\",\"s\":0},"
         "{\"t\":\"<BR />x\",\"s\":0},{\"t\":\"\",\"s\":1},{\"t\":\"a a a a b\",\"s\":1}]"},
    };
    for (size_t i = 0; i < sizeof hand / sizeof hand[0]; i++)
        put("imdb", hand[i].name, hand[i].text, strlen(hand[i].text));
}

/* --- ckpt: real checkpoints, copied hollow --- */

/* to's size, for the log. */
static long long file_size(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 ? (long long)st.st_size : -1;
}

/* A checkpoint of model by eng_ckpt_write, then its hollow copy out_dir/ckpt/name. The copy
 * must read (latest), or be refused for its superblock (HDF5's earliest format). */
static void put_ckpt(const char *tmp, const char *name, const char *model, eng_optim_kind kind,
                     eng_optim_kind kind2, const char *vocab, int latest) {
    char err[512], to[4096];
    if (fz_ckpt_write_example(tmp, model, kind, kind2, vocab, err, sizeof err) != 0)
        die("%s", err);
    snprintf(to, sizeof to, "%s/ckpt", out_dir);
    mkdir(to, 0755);
    snprintf(to, sizeof to, "%s/ckpt/%s", out_dir, name);
    if (fz_h5_hollow_copy(tmp, to, latest, err, sizeof err) != 0)
        die("%s", err);
    eng_ckpt c;
    const int rc = eng_ckpt_read(to, &c, err, sizeof err);
    if (latest && rc != PST_OK)
        die("the copy does not read: %s", err);
    if (!latest && (rc == PST_OK || !strstr(err, "superblock")))
        die("%s: expected a refusal of its superblock, got %d: %s", to, rc, err);
    eng_ckpt_free(&c);
    printf("%s: %lld bytes\n", to, file_size(to));
}

/* fuzz_ckpt's edit scripts ('E', a template, then edits: see fuzz_ckpt.c). */
static void put_edits(const char *name, const uint8_t *script, size_t len) {
    put("ckpt", name, script, len);
}

static void make_ckpt(void) {
    char tmp[] = "/tmp/pstrain-make-corpus-XXXXXX";
    if (!mkdtemp(tmp))
        die("mkdtemp: %s", strerror(errno));
    char path[4096];
    snprintf(path, sizeof path, "%s/c.h5", tmp);
    put_ckpt(path, "mnist_cnn-adam.h5", "mnist_cnn", ENG_OPT_ADAM, ENG_OPT_ADAM, NULL, 1);
    put_ckpt(path, "fashion_cnn-rmsprop.h5", "fashion_cnn", ENG_OPT_RMSPROP, ENG_OPT_ADAM, NULL, 1);
    put_ckpt(path, "imdb_lstm-vocab.h5", "imdb_lstm", ENG_OPT_ADAM, ENG_OPT_ADAM,
             "the\nand\na\nof\nmovie\nit's\n", 1);
    put_ckpt(path, "mnist_gan-two-optimizers.h5", "mnist_gan", ENG_OPT_ADAM, ENG_OPT_RMSPROP, NULL,
             1);
    put_ckpt(path, "earliest-format.h5", "mnist_cnn", ENG_OPT_ADAM, ENG_OPT_ADAM, NULL, 0);
    unlink(path);
    rmdir(tmp);
    /* Edit scripts: each template as it is, then one edit of each kind. */
    static const struct {
        const char *name;
        uint8_t script[24];
        size_t len;
    } edits[] = {
        {"edit-none-cnn", {'E', 0}, 2},
        {"edit-none-imdb", {'E', 1}, 2},
        {"edit-none-gan", {'E', 2}, 2},
        {"edit-none-fashion", {'E', 3}, 2},
        {"edit-attr-bytes", {'E', 0, 0, 5, 0xff, 0xff, 0xff, 0x7f, 0, 0, 0, 0}, 12},
        {"edit-attr-retype", {'E', 1, 1, 3, 9, 2, 4, 'a', 'b', 'c', 'd'}, 11},
        {"edit-attr-delete", {'E', 2, 2, 7}, 4},
        {"edit-dataset-bytes", {'E', 1, 3, 4, 1, 2, 3, 4, 5, 6, 7, 8}, 12},
        {"edit-dataset-replace", {'E', 0, 4, 6, 2, 1, 0x80, 0x01, 0, 0}, 10},
        {"edit-dataset-huge", {'E', 1, 4, 9, 6, 1, 0xff, 0x10, 1}, 9},
        {"edit-link-delete", {'E', 0, 5, 11}, 4},
        {"edit-link-add", {'E', 0, 6, 0, 1, 2, 3}, 7},
    };
    for (size_t i = 0; i < sizeof edits / sizeof edits[0]; i++)
        put_edits(edits[i].name, edits[i].script, edits[i].len);
}

/* --- serve: requests in fuzz_serve's format --- */

enum { SV_CNN = 0, SV_IMDB = 1, SV_GAN = 2 };

/* One input: the selector (protocol | model << 1), the binary tail's code ((bytes / 16) + 1,
 * 0 none), the JSON, the tail (a multiple of 16 bytes). */
static void put_request(const char *name, int v2, int model, const char *json, const void *tail,
                        size_t tlen) {
    if (tlen % 16 || tlen / 16 + 1 > 255)
        die("serve seed %s: a tail of %zu bytes", name, tlen);
    const size_t jl = strlen(json);
    unsigned char *b = malloc(2 + jl + tlen);
    if (!b)
        die("out of memory");
    b[0] = (unsigned char)(v2 | model << 1);
    b[1] = (unsigned char)(tlen ? tlen / 16 + 1 : 0);
    memcpy(b + 2, json, jl);
    if (tlen)
        memcpy(b + 2 + jl, tail, tlen);
    put("serve", name, b, 2 + jl + tlen);
    free(b);
}

/* A 28x28 image of 0 and `hi` as JSON: flat (784), (28, 28) or (28, 28, 1); bad: one
 * value 1.5. */
static void image_json(char *out, size_t len, int rank, int bad, const char *hi) {
    size_t o = 0;
    out[o++] = '[';
    for (int i = 0; i < 28; i++) {
        if (rank > 1)
            o += (size_t)snprintf(out + o, len - o, "%s[", i ? "," : "");
        for (int j = 0; j < 28; j++) {
            const char *v = bad && i == 3 && j == 4 ? "1.5" : (i + j) % 3 ? "0" : hi;
            o += (size_t)snprintf(out + o, len - o, "%s%s%s%s", (j || (rank == 1 && i)) ? "," : "",
                                  rank == 3 ? "[" : "", v, rank == 3 ? "]" : "");
        }
        if (rank > 1)
            out[o++] = ']';
    }
    out[o++] = ']';
    out[o] = '\0';
}

static void make_serve(void) {
    static char img[8192], js[16384];
    /* TF Serving: mnist_cnn */
    for (int rank = 1; rank <= 3; rank++) {
        image_json(img, sizeof img, rank, 0, "0.5");
        snprintf(js, sizeof js, "{\"instances\": [%s]}", img);
        char name[64];
        snprintf(name, sizeof name, "tfs-cnn-rank%d", rank);
        put_request(name, 0, SV_CNN, js, NULL, 0);
    }
    image_json(img, sizeof img, 2, 0, "0.5");
    snprintf(js, sizeof js,
             "{\"signature_name\": \"serving_default\", \"inputs\": {\"images\": [%s]}}", img);
    put_request("tfs-cnn-columnar", 0, SV_CNN, js, NULL, 0);
    image_json(img, sizeof img, 1, 0, "255");
    snprintf(js, sizeof js, "{\"instances\": [{\"pixels\": %s}]}", img);
    put_request("tfs-cnn-pixels", 0, SV_CNN, js, NULL, 0);
    image_json(img, sizeof img, 1, 1, "0.5");
    snprintf(js, sizeof js, "{\"instances\": [%s]}", img);
    put_request("tfs-cnn-bad-value", 0, SV_CNN, js, NULL, 0);
    put_request("tfs-cnn-bad-nan", 0, SV_CNN, "{\"instances\": [[0.5, NaN, 1e999]]}", NULL, 0);
    put_request("tfs-cnn-bad-both", 0, SV_CNN, "{\"instances\": [[0]], \"inputs\": [[0]]}", NULL,
                0);
    /* TF Serving: imdb_lstm, mnist_gan */
    put_request("tfs-imdb-text", 0, SV_IMDB,
                "{\"instances\": [\"a great movie\", {\"b64\": \"ZHVsbA==\"}]}", NULL, 0);
    put_request("tfs-imdb-tokens", 0, SV_IMDB, "{\"inputs\": {\"tokens\": [[1, 2, 3], [4]]}}", NULL,
                0);
    put_request("tfs-gan-png", 0, SV_GAN, "{\"signature_name\": \"png\", \"instances\": [3, 4]}",
                NULL, 0);
    put_request("tfs-gan-z", 0, SV_GAN,
                "{\"instances\": [{\"z\": [0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,"
                "0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,"
                "0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0.5]}]}",
                NULL, 0);
    /* KServe v2 */
    image_json(img, sizeof img, 1, 0, "0.5");
    snprintf(js, sizeof js,
             "{\"id\": \"1\", \"inputs\": [{\"name\": \"images\", \"shape\": [1, 784], "
             "\"datatype\": \"FP32\", \"data\": %s}], \"outputs\": [{\"name\": "
             "\"probabilities\"}]}",
             img);
    put_request("v2-cnn-flat", 1, SV_CNN, js, NULL, 0);
    image_json(img, sizeof img, 3, 0, "0.5");
    snprintf(js, sizeof js,
             "{\"inputs\": [{\"name\": \"images\", \"shape\": [1, 28, 28, 1], \"datatype\": "
             "\"FP32\", \"data\": [%s]}]}",
             img);
    put_request("v2-cnn-nested", 1, SV_CNN, js, NULL, 0);
    static uint8_t px[784];
    for (int k = 0; k < 784; k++)
        px[k] = (uint8_t)(k % 256);
    put_request("v2-cnn-pixels-binary", 1, SV_CNN,
                "{\"inputs\": [{\"name\": \"pixels\", \"shape\": [1, 28, 28], \"datatype\": "
                "\"UINT8\", \"parameters\": {\"binary_data_size\": 784}}]}",
                px, sizeof px);
    static float fl[784];
    for (int k = 0; k < 784; k++)
        fl[k] = (float)(k % 256) / 255.0f;
    put_request("v2-cnn-images-binary", 1, SV_CNN,
                "{\"parameters\": {\"binary_data_output\": true}, \"inputs\": [{\"name\": "
                "\"images\", \"shape\": [1, 784], \"datatype\": \"FP32\", \"parameters\": "
                "{\"binary_data_size\": 3136}}]}",
                fl, sizeof fl);
    put_request("v2-cnn-bad-datatype", 1, SV_CNN,
                "{\"inputs\": [{\"name\": \"images\", \"shape\": [1, 784], \"datatype\": "
                "\"FP64\", \"data\": [0]}]}",
                NULL, 0);
    put_request("v2-imdb-text", 1, SV_IMDB,
                "{\"inputs\": [{\"name\": \"text\", \"shape\": [2, 1], \"datatype\": \"BYTES\", "
                "\"data\": [[\"good\"], [\"bad\"]]}]}",
                NULL, 0);
    put_request("v2-imdb-text-binary", 1, SV_IMDB,
                "{\"inputs\": [{\"name\": \"text\", \"shape\": [1], \"datatype\": \"BYTES\", "
                "\"parameters\": {\"binary_data_size\": 16}}]}",
                "\x0c\0\0\0a fine movie", 16);
    put_request("v2-imdb-tokens", 1, SV_IMDB,
                "{\"inputs\": [{\"name\": \"tokens\", \"shape\": [1, 3], \"datatype\": \"INT64\", "
                "\"data\": [1, 2, 3]}]}",
                NULL, 0);
    put_request("v2-gan-png", 1, SV_GAN,
                "{\"inputs\": [{\"name\": \"seed\", \"shape\": [2], \"datatype\": \"INT64\", "
                "\"data\": [1, 2]}], \"outputs\": [{\"name\": \"png\"}, {\"name\": \"images\", "
                "\"parameters\": {\"binary_data\": true}}]}",
                NULL, 0);
    const int64_t seeds[2] = {5, 6};
    put_request("v2-gan-seed-binary", 1, SV_GAN,
                "{\"inputs\": [{\"name\": \"seed\", \"shape\": [2, 1], \"datatype\": \"INT64\", "
                "\"parameters\": {\"binary_data_size\": 16}}]}",
                seeds, sizeof seeds);
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: make_corpus DATA_DIR OUT_DIR [server|idx|imdb|ckpt|serve ...]\n");
        return 2;
    }
    out_dir = argv[2];
    mkdir(out_dir, 0755);
    const char *all[] = {"server", "idx", "imdb", "ckpt", "serve"};
    const char *const *kinds = argc > 3 ? (const char *const *)argv + 3 : all;
    const int n = argc > 3 ? argc - 3 : 5;
    for (int i = 0; i < n; i++) {
        if (strcmp(kinds[i], "server") == 0)
            make_server();
        else if (strcmp(kinds[i], "idx") == 0)
            make_idx(argv[1]);
        else if (strcmp(kinds[i], "imdb") == 0)
            make_imdb(argv[1]);
        else if (strcmp(kinds[i], "ckpt") == 0)
            make_ckpt();
        else if (strcmp(kinds[i], "serve") == 0)
            make_serve();
        else
            die("unknown kind '%s' (server, idx, imdb, ckpt, serve)", kinds[i]);
    }
    return 0;
}
