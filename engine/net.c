/* net.c: running a model over batches on a team of threads. */
#include "engine/net.h"

#include "engine/base/base.h"
#include "engine/loss.h"
#include "engine/pool.h"

#include <cblas.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* OpenBLAS's own thread control; declared here so cblas.h variants without it still work. */
void openblas_set_num_threads(int num_threads);

/* Samples a thread runs through the layers at a time, so that activations stay in the
 * core's caches (mnist_cnn: ~0.45 MB a sample with im2col and gradients). Measured on
 * 2-core Zen 4, 1 thread, batch 32: chunks of 4 and 8 within noise of each other, 12
 * about 4% slower, 16 about 12% slower. A model definition may ask for another
 * (eng_model_def.chunk): an LSTM's sgemms want more rows. */
#define ENG_NET_CHUNK 4

/* The most samples of a thread's last pass when someone waits for gradients
 * (eng_net_on_grads_ready): a share up to this size runs as one pass. The layers' gradients
 * are final only once the last pass's backward has left them, and what is left of its
 * backward is the time there is to send them: the larger the pass, the earlier the dense
 * layers' 0.8 MB (mnist_cnn) leave. Measured on a 2-core Xeon (SkylakeX) in a 1 server + 1
 * worker job, alternating, three rounds: the whole share (32 samples on 1 thread, 16 on 2)
 * against its last 16 (8) samples: the same compute time, 3-4% more samples/s end to end;
 * on 1 Gbit/s links (tests/scale's sweep, 8 hosts) fp32 0.33 of linear against 0.29,
 * fp16+topk:0.1 0.95 against 0.91, fp16 0.50 either way. (It was 16,
 * tuned on a Zen 4, where larger passes computed more slowly: measure there before
 * lowering it again.) */
#define ENG_NET_TAIL 32

typedef struct worker_mem {
    float *act[ENG_MAX_LAYERS];  /* act[i]: layer i's output (B, out); views alias their input */
    void *saved[ENG_MAX_LAYERS]; /* layer i's forward-to-backward memory */
    float *dbuf[2];              /* ping-pong input/output gradients */
    void *scratch;               /* the layers' scratch: the largest any pass needs */
    float *grads;                /* this thread's gradient vector (thread 0: the net's) */
    eng_batch_stats st;
} worker_mem;

struct eng_net {
    const eng_model *model;
    int max_batch, threads;
    int chunk; /* samples per forward/backward pass of one thread */
    int bce;   /* sigmoid output: binary cross-entropy, else softmax cross-entropy */
    int tail;  /* samples of a thread's last pass when early calls are on (>= chunk) */
    float *params, *grads;
    void *shared[ENG_MAX_LAYERS]; /* what layer i's prepare makes from params, or NULL */
    eng_pool *pool;
    worker_mem *mem;
    eng_optim *opt; /* eng_net_apply's */
    int64_t sample_base;
    /* gradients-ready calls: ready_lo[i] is the start of the suffix that layer i's backward
     * completes (0: no call after layer i); reduced_lo is where this step's early reduction
     * has got to; arrived[i] counts threads past layer i in their last chunk */
    eng_grads_ready_fn ready_fn;
    void *ready_ctx;
    size_t ready_lo[ENG_MAX_LAYERS];
    size_t reduced_lo;
    int early;    /* this step makes the calls */
    float *dx_in; /* eng_net_train_step_dx's input gradient (B, input), or NULL */
    atomic_int arrived[ENG_MAX_LAYERS];
    /* the job being run by eng_pool_run */
    const float *x;
    const uint8_t *labels;
    int batch, training;
    uint64_t key;
};

static void free_mem(eng_net *net) {
    if (!net->mem)
        return;
    for (int t = 0; t < net->threads; t++) {
        worker_mem *w = &net->mem[t];
        for (int i = 0; i < net->model->n; i++) {
            if (!net->model->layers[i].ops->is_view)
                pst_free(w->act[i]);
            pst_free(w->saved[i]);
        }
        pst_free(w->dbuf[0]);
        pst_free(w->dbuf[1]);
        pst_free(w->scratch);
        if (t > 0)
            pst_free(w->grads);
    }
    free(net->mem);
    net->mem = NULL;
}

eng_net *eng_net_new(const eng_model *m, int max_batch, int threads, char *err, size_t errlen) {
    if (max_batch < 1 || threads < 1) {
        pst_err(err, errlen, PST_EARG, "net: batch %d and threads %d must be >= 1", max_batch,
                threads);
        return NULL;
    }
    eng_net *net = pst_calloc(1, sizeof *net);
    net->model = m;
    net->max_batch = max_batch;
    net->threads = threads;
    net->params = pst_alloc(sizeof(float) * m->layout.total);
    net->grads = pst_alloc(sizeof(float) * m->layout.total);
    net->mem = pst_calloc((size_t)threads, sizeof *net->mem);
    /* BatchNormalization's statistics are over the whole batch: such a model runs it as one
     * pass on one thread. */
    int whole = 0;
    for (int i = 0; i < m->n; i++)
        whole |= m->layers[i].ops->whole_batch;
    if (whole && threads > 1) {
        pst_err(err, errlen, PST_EARG,
                "net: %s normalises over the whole batch and runs on 1 thread, not %d",
                m->def->name, threads);
        eng_net_free(&net);
        return NULL;
    }
    const int per_thread = (max_batch + threads - 1) / threads;
    const int chunk = whole ? max_batch : m->def->chunk > 0 ? m->def->chunk : ENG_NET_CHUNK;
    net->chunk = per_thread < chunk ? per_thread : chunk;
    net->bce = m->layers[m->n - 1].spec.act == ENG_ACT_SIGMOID;
    net->tail = per_thread < ENG_NET_TAIL ? per_thread : ENG_NET_TAIL;
    if (net->tail < net->chunk)
        net->tail = net->chunk;
    const size_t rows = (size_t)net->tail;
    size_t widest = eng_shape_size(m->input);
    for (int i = 0; i < m->n; i++)
        if (eng_shape_size(m->layers[i].out) > widest)
            widest = eng_shape_size(m->layers[i].out);
    size_t scratch = 0;
    for (int i = 0; i < m->n; i++) {
        const eng_layer *l = &m->layers[i];
        const size_t need = l->scratch_bytes + rows * l->scratch_sample_bytes;
        scratch = need > scratch ? need : scratch;
        if (l->shared_bytes)
            net->shared[i] = pst_alloc(l->shared_bytes);
    }
    for (int t = 0; t < threads; t++) {
        worker_mem *w = &net->mem[t];
        if (scratch)
            w->scratch = pst_alloc(scratch);
        for (int i = 0; i < m->n; i++) {
            const eng_layer *l = &m->layers[i];
            if (l->ops->is_view) {
                w->act[i] = i > 0 ? w->act[i - 1] : NULL; /* set per run for i == 0 */
                continue;
            }
            w->act[i] = pst_alloc(sizeof(float) * rows * eng_shape_size(l->out));
            if (l->saved_bytes)
                w->saved[i] = pst_alloc(rows * l->saved_bytes);
        }
        w->dbuf[0] = pst_alloc(sizeof(float) * rows * widest);
        w->dbuf[1] = pst_alloc(sizeof(float) * rows * widest);
        w->grads = t == 0 ? net->grads : pst_alloc(sizeof(float) * m->layout.total);
    }
    net->pool = eng_pool_new(threads);
    if (!net->pool) {
        pst_err(err, errlen, PST_EARG, "net: cannot start %d threads", threads);
        eng_net_free(&net);
        return NULL;
    }
    openblas_set_num_threads(1);
    return net;
}

void eng_net_free(eng_net **pnet) {
    if (!pnet || !*pnet)
        return;
    eng_net *net = *pnet;
    eng_pool_free(&net->pool);
    free_mem(net);
    for (int i = 0; i < ENG_MAX_LAYERS; i++)
        pst_free(net->shared[i]);
    pst_free(net->params);
    pst_free(net->grads);
    free(net);
    *pnet = NULL;
}

/* The suffixes a layer's backward completes: layer i's tensors and all later ones'. Calls
 * need the layout in layer order; any other order gets none. */
void eng_net_on_grads_ready(eng_net *net, eng_grads_ready_fn fn, void *ctx) {
    const eng_model *m = net->model;
    net->ready_fn = fn;
    net->ready_ctx = ctx;
    memset(net->ready_lo, 0, sizeof net->ready_lo);
    size_t end = m->layout.total;
    for (int i = m->n - 1; i >= 0 && fn; i--) {
        const eng_layer *l = &m->layers[i];
        if (!l->nparams)
            continue;
        if (l->param_hi > end) { /* not in layer order */
            memset(net->ready_lo, 0, sizeof net->ready_lo);
            return;
        }
        net->ready_lo[i] = l->param_lo;
        end = l->param_lo;
    }
}

float *eng_net_params(eng_net *net) { return net->params; }
void eng_net_set_sample_base(eng_net *net, int64_t base) { net->sample_base = base; }
float *eng_net_grads(eng_net *net) { return net->grads; }
const eng_model *eng_net_model(const eng_net *net) { return net->model; }
int eng_net_threads(const eng_net *net) { return net->threads; }

/* Thread t's share of the batch: a contiguous run of samples. */
static void share(int batch, int threads, int t, int *first, int *count) {
    int lo = (int)((int64_t)batch * t / threads), hi = (int)((int64_t)batch * (t + 1) / threads);
    *first = lo;
    *count = hi - lo;
}

/* Thread 0 (the caller's), after layer i's backward over its last samples: once every
 * thread is past that point, adds the threads' gradients of the newly final suffix in thread
 * order (the same sums eng_net's final reduction makes) and tells the caller. */
static void grads_ready(eng_net *net, int t, int i) {
    if (t != 0) {
        atomic_fetch_add_explicit(&net->arrived[i], 1, memory_order_release);
        return;
    }
    for (long spin = 0;
         atomic_load_explicit(&net->arrived[i], memory_order_acquire) < net->threads - 1; spin++)
        if (spin > 20000)
            sched_yield();
    const size_t lo = net->ready_lo[i], n = net->reduced_lo - lo;
    for (int u = 1; u < net->threads; u++)
        cblas_saxpy((int)n, 1.0f, net->mem[u].grads + lo, 1, net->grads + lo, 1);
    net->reduced_lo = lo;
    net->ready_fn(net->ready_ctx, lo);
}

/* The layers' shared memory from the parameters, before passes over them (which may have
 * changed since the last: an update, a pull, a load). On the caller's thread: Winograd's
 * kernel transforms take microseconds. */
static void prepare_layers(eng_net *net) {
    const eng_model *m = net->model;
    for (int i = 0; i < m->n; i++)
        if (m->layers[i].ops->prepare)
            m->layers[i].ops->prepare(&m->layers[i], net->params, net->shared[i]);
}

/* Forward over samples [first, first + B) of the step (x points at the first), B <= the
 * chunk size: each layer's output in w->act. */
static void forward_layers(eng_net *net, worker_mem *w, const float *x, int first, int B) {
    const eng_model *m = net->model;
    const float *in = x;
    for (int i = 0; i < m->n; i++) {
        const eng_layer *l = &m->layers[i];
        if (l->ops->is_view) {
            w->act[i] = (float *)in; /* read-only alias: never written through */
            continue;
        }
        eng_fwd_args a = {.y = w->act[i],
                          .saved = w->saved[i],
                          .x = in,
                          .params = net->params,
                          .scratch = w->scratch,
                          .shared = net->shared[i],
                          .batch = B,
                          .training = net->training,
                          .key = net->key,
                          .sample0 = net->sample_base + first};
        l->ops->forward(l, &a);
        in = w->act[i];
    }
}

/* One pass of a thread's share: samples [first, first + B) of the step, rows [row0, row0 + B)
 * of the window (eng_bwd_args); accumulate adds to the thread's gradients instead of
 * writing; last marks the share's last pass, where gradients become final layer by layer
 * (early calls); flush the window's last, flush_acc when an earlier window wrote. */
typedef struct pass {
    int first, B, accumulate, last, row0, flush, flush_acc;
} pass;

/* Backward over pass p's samples from the output gradient in w->dbuf[0]. The first
 * layer's dx goes to net->dx_in when set. */
static void backward_layers(eng_net *net, int t, const float *x, const pass *p) {
    worker_mem *w = &net->mem[t];
    const eng_model *m = net->model;
    int cur = 0;
    for (int i = m->n - 1; i >= 0; i--) {
        const eng_layer *l = &m->layers[i];
        if (l->ops->is_view)
            continue;
        const float *lin = i > 0 ? w->act[i - 1] : x; /* views alias their input */
        float *dx_in = net->dx_in ? net->dx_in + (size_t)p->first * eng_shape_size(m->input) : NULL;
        eng_bwd_args a = {.dx = i > 0 ? w->dbuf[cur ^ 1] : dx_in,
                          .grads = w->grads,
                          .dy = w->dbuf[cur],
                          .saved = w->saved[i],
                          .x = lin,
                          .y = w->act[i],
                          .params = net->params,
                          .scratch = w->scratch,
                          .shared = net->shared[i],
                          .batch = p->B,
                          .accumulate = p->accumulate,
                          .row0 = p->row0,
                          .flush = p->flush,
                          .flush_accumulate = p->flush_acc};
        l->ops->backward(l, &a);
        cur ^= 1;
        if (p->last && net->early && net->ready_lo[i] > 0)
            grads_ready(net, t, i);
    }
}

/* Forward (and, when training, backward) over pass p's samples, through the loss. */
static void run_chunk(eng_net *net, int t, const pass *p) {
    worker_mem *w = &net->mem[t];
    const int first = p->first, B = p->B;
    const eng_model *m = net->model;
    const float *x = net->x + (size_t)first * eng_shape_size(m->input);
    const uint8_t *labels = net->labels + first;
    forward_layers(net, w, x, first, B);
    const int C = m->def->nclasses;
    float *logits = w->act[m->n - 1];
    float *probs = net->training ? w->dbuf[0] : logits;
    int hits = 0;
    if (net->bce)
        w->st.loss_sum += eng_sigmoid_bce_forward(logits, labels, B, &hits);
    else
        w->st.loss_sum += eng_softmax_xent_forward(probs, logits, labels, B, C, &hits);
    w->st.correct += hits;
    w->st.count += B;
    if (!net->training)
        return;

    /* Backward: dy starts as the gradient of the whole step's mean loss. */
    if (net->bce)
        eng_sigmoid_bce_backward(w->dbuf[0], logits, labels, B, (float)net->batch);
    else
        eng_softmax_xent_backward(probs, probs, labels, B, C, (float)net->batch);
    backward_layers(net, t, x, p);
}

/* Thread t's share of the step, in chunks small enough for the activations to stay in
 * the core's cache. */
static void run_share(void *arg, int t) {
    eng_net *net = arg;
    worker_mem *w = &net->mem[t];
    int first, B;
    share(net->batch, net->threads, t, &first, &B);
    w->st = (eng_batch_stats){0};
    if (B == 0 && net->training)
        memset(w->grads, 0, sizeof(float) * net->model->layout.total);
    int tail = net->chunk;
    if (net->early) /* the share in one pass, up to net->tail samples */
        tail = B < net->tail ? B : net->tail;
    /* passes of n samples; windows of up to net->tail rows (the rows saved holds) */
    for (int done = 0, n, w0 = 0; done < B; done += n) {
        n = B - done <= tail ? B - done : net->chunk;
        const int rest = B - done - n, next = rest <= tail ? rest : net->chunk;
        const pass p = {.first = first + done,
                        .B = n,
                        .accumulate = done > 0,
                        .last = rest == 0,
                        .row0 = done - w0,
                        .flush = rest == 0 || done + n - w0 + next > net->tail,
                        .flush_acc = w0 > 0};
        run_chunk(net, t, &p);
        if (p.flush)
            w0 = done + n;
    }
}

/* Thread t's range of [0, total), for the element-wise passes. */
static void vector_range(const eng_net *net, size_t total, int t, size_t *lo, size_t *n) {
    const size_t T = (size_t)net->threads;
    *lo = total * (size_t)t / T;
    *n = total * (size_t)(t + 1) / T - *lo;
}

/* Adds the threads' gradients into the net's (those not added early), each thread over its
 * own range; every element is summed in thread order, so the same threads give the same
 * bits. */
static void reduce_range(void *arg, int t) {
    eng_net *net = arg;
    size_t lo, n;
    vector_range(net, net->reduced_lo, t, &lo, &n);
    for (int u = 1; u < net->threads; u++)
        cblas_saxpy((int)n, 1.0f, net->mem[u].grads + lo, 1, net->grads + lo, 1);
}

static void apply_range(void *arg, int t) {
    eng_net *net = arg;
    size_t lo, n;
    vector_range(net, net->model->layout.total, t, &lo, &n);
    eng_optim_step_range(net->opt, net->params, net->grads, lo, n);
}

void eng_net_apply(eng_net *net, eng_optim *opt) {
    PST_ASSERT(eng_optim_size(opt) == net->model->layout.total, "optimizer over %zu of %zu",
               eng_optim_size(opt), net->model->layout.total);
    net->opt = opt;
    eng_pool_run(net->pool, apply_range, net);
    eng_optim_advance(opt);
    net->opt = NULL;
}

static void run(eng_net *net, const float *x, const uint8_t *labels, int B, int training,
                uint64_t key, eng_batch_stats *st) {
    PST_ASSERT(B >= 1 && B <= net->max_batch, "batch %d outside 1..%d", B, net->max_batch);
    net->x = x;
    net->labels = labels;
    net->batch = B;
    net->training = training;
    net->key = key;
    net->reduced_lo = net->model->layout.total;
    /* Early calls need every thread to reach its last chunk: a sample each at least. */
    net->early = training && net->ready_fn && B >= net->threads;
    for (int i = 0; net->early && i < net->model->n; i++)
        atomic_store_explicit(&net->arrived[i], 0, memory_order_relaxed);
    prepare_layers(net);
    eng_pool_run(net->pool, run_share, net);
    for (int t = 0; t < net->threads; t++) {
        st->loss_sum += net->mem[t].st.loss_sum;
        st->correct += net->mem[t].st.correct;
        st->count += net->mem[t].st.count;
    }
    if (training && net->threads > 1)
        eng_pool_run(net->pool, reduce_range, net);
}

void eng_net_train_step(eng_net *net, const float *x, const uint8_t *labels, int B, uint64_t key,
                        eng_batch_stats *st) {
    run(net, x, labels, B, 1, key, st);
}

void eng_net_train_step_dx(eng_net *net, const float *x, const uint8_t *labels, int B, uint64_t key,
                           eng_batch_stats *st, float *dx) {
    PST_ASSERT(!net->model->layers[0].ops->is_view,
               "%s: an input gradient needs a first layer "
               "that is not a view",
               net->model->def->name);
    net->dx_in = dx;
    run(net, x, labels, B, 1, key, st);
    net->dx_in = NULL;
}

/* Whole-batch passes (one thread, the batch in one chunk) keep every activation between a
 * forward and the backward that follows it. */
static void assert_whole(const eng_net *net, int B) {
    PST_ASSERT(net->threads == 1 && B >= 1 && B <= net->chunk,
               "%s: forward/backward by hand need 1 thread and the batch in one pass: %d "
               "threads, batch %d, %d samples a pass",
               net->model->def->name, net->threads, B, net->chunk);
}

void eng_net_forward(eng_net *net, const float *x, int B, int training, uint64_t key, float *y) {
    assert_whole(net, B);
    const eng_model *m = net->model;
    net->x = x;
    net->batch = B;
    net->training = training;
    net->key = key;
    prepare_layers(net);
    forward_layers(net, &net->mem[0], x, 0, B);
    memcpy(y, net->mem[0].act[m->n - 1],
           sizeof(float) * (size_t)B * eng_shape_size(m->layers[m->n - 1].out));
}

void eng_net_backward(eng_net *net, const float *dy, float *dx) {
    assert_whole(net, net->batch);
    PST_ASSERT(net->training, "%s: backward after a forward that was not training",
               net->model->def->name);
    const eng_model *m = net->model;
    memcpy(net->mem[0].dbuf[0], dy,
           sizeof(float) * (size_t)net->batch * eng_shape_size(m->layers[m->n - 1].out));
    net->dx_in = dx;
    const pass whole = {.B = net->batch, .flush = 1};
    backward_layers(net, 0, net->x, &whole);
    net->dx_in = NULL;
}

void eng_net_eval(eng_net *net, const float *x, const uint8_t *labels, int B, eng_batch_stats *st) {
    run(net, x, labels, B, 0, 0, st);
}

/* eng_net_predict's job: the net's (x, batch, training off) and where outputs go. */
typedef struct predict_job {
    eng_net *net;
    float *y; /* (B, out) */
} predict_job;

/* Thread t's share of the passes, each pass's last activations copied out at its samples.
 * Passes start at multiples of the pass size whatever the thread count: a sample's rows in
 * the products are then the same on any count (OpenBLAS's small-matrix kernels, which the
 * LSTM's per-step products use, round a row by its place in the block). */
static void predict_share(void *arg, int t) {
    const predict_job *job = arg;
    eng_net *net = job->net;
    const eng_model *m = net->model;
    const size_t in = eng_shape_size(m->input), out = eng_shape_size(m->layers[m->n - 1].out);
    worker_mem *w = &net->mem[t];
    int first, count;
    share((net->batch + net->chunk - 1) / net->chunk, net->threads, t, &first, &count);
    for (int p = first; p < first + count; p++) {
        const int s = p * net->chunk, n = net->batch - s < net->chunk ? net->batch - s : net->chunk;
        forward_layers(net, w, net->x + (size_t)s * in, s, n);
        memcpy(job->y + (size_t)s * out, w->act[m->n - 1], sizeof(float) * (size_t)n * out);
    }
}

void eng_net_predict(eng_net *net, const float *x, int B, float *y) {
    PST_ASSERT(B >= 1 && B <= net->max_batch, "batch %d outside 1..%d", B, net->max_batch);
    net->x = x;
    net->labels = NULL;
    net->batch = B;
    net->training = 0;
    net->key = 0;
    predict_job job = {net, y};
    prepare_layers(net);
    eng_pool_run(net->pool, predict_share, &job);
}
