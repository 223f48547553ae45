/* train.c: the single-process training loop. */
#include "worker/train.h"

#include "engine/base.h"
#include "engine/dataset.h"
#include "engine/model.h"
#include "engine/net.h"
#include "engine/optim.h"
#include "engine/rng.h"
#include "worker/progress.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Keys that separate the random streams drawn from one seed. */
enum { KEY_SHUFFLE = 0x53485546, KEY_DROPOUT = 0x44524F50 };

/* Mean loss and accuracy of the net over all of d, in chunks of up to chunk samples. */
static void evaluate(eng_net *net, const eng_dataset *d, int chunk, float *x, uint8_t *labels,
                     double *loss, double *accuracy) {
    eng_batch_stats st = {0};
    for (int64_t first = 0; first < d->n; first += chunk) {
        int B = (int)(d->n - first < chunk ? d->n - first : chunk);
        eng_dataset_slice(d, first, B, x, labels);
        eng_net_eval(net, x, labels, B, &st);
    }
    *loss = st.count ? st.loss_sum / (double)st.count : 0.0;
    *accuracy = st.count ? (double)st.correct / (double)st.count : 0.0;
}

static int exit_code(int rc) {
    return rc == ENG_EARG || rc == ENG_EFORMAT || rc == ENG_EIO ? 2 : 1;
}

int wk_train_local(const wk_opts *o, char *err, size_t errlen) {
    const double t_start = wk_now();
    const eng_model_def *def = eng_model_find(o->model);
    eng_model model;
    eng_split data = {0};
    eng_net *net = NULL;
    eng_optim *opt = NULL;
    wk_progress prog = {0};
    float *x = NULL;
    uint8_t *labels = NULL;
    uint32_t *order = NULL;
    int rc, status = 1;

    if ((rc = eng_model_build(&model, def, err, errlen)) != ENG_OK)
        return exit_code(rc);
    if ((rc = eng_split_load_idx(&data, o->data, def->dataset, o->val_split, 0, 1, err, errlen)) !=
        ENG_OK)
        return exit_code(rc);
    if (data.train.n < 1) {
        snprintf(err, errlen, "--val-split: leaves no training samples");
        status = 2;
        goto out;
    }

    const int threads = o->threads > 0 ? (int)o->threads : (int)sysconf(_SC_NPROCESSORS_ONLN);
    const int batch = (int)o->batch;
    const int chunk = batch > 128 ? batch : 128; /* evaluation batches */
    if (!(net = eng_net_new(&model, chunk, threads > 0 ? threads : 1, err, errlen)))
        goto out;
    eng_model_init_params(&model, eng_net_params(net), (uint64_t)o->seed);

    eng_optim_cfg cfg = eng_optim_defaults((eng_optim_kind)eng_optim_kind_parse(o->optimizer));
    if (o->lr > 0)
        cfg.lr = (float)o->lr;
    cfg.clipvalue = (float)o->clipvalue;
    cfg.decay = (float)o->decay;
    const size_t nparams = model.layout.total;
    x = eng_alloc(sizeof(float) * (size_t)chunk * eng_shape_size(model.input));
    labels = eng_alloc((size_t)chunk);
    order = malloc(sizeof(uint32_t) * (size_t)data.train.n);
    if (!(opt = eng_optim_new(&cfg, nparams)) || !x || !labels || !order) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }

    const int64_t steps_per_epoch = (data.train.n + batch - 1) / batch;
    if (wk_progress_init(&prog, stdout, o->metrics, (int)o->progress, o->epochs, steps_per_epoch,
                         err, errlen) != 0) {
        status = 2;
        goto out;
    }
    printf("%s: %lld train, %lld validation, %lld test samples; %zu parameters; batch %d; "
           "%s lr %g; %d threads\n",
           def->name, (long long)data.train.n, (long long)data.val.n, (long long)data.test.n,
           nparams, batch, o->optimizer, (double)cfg.lr, threads);

    int64_t step = 0, trained = 0;
    double train_seconds = 0.0;
    for (int64_t epoch = 1; epoch <= o->epochs && (!o->max_steps || step < o->max_steps); epoch++) {
        wk_progress_epoch_begin(&prog, epoch);
        for (int64_t i = 0; i < data.train.n; i++)
            order[i] = (uint32_t)i;
        eng_rng rng;
        eng_rng_seed(&rng, eng_hash3((uint64_t)o->seed, (uint64_t)epoch, KEY_SHUFFLE));
        eng_rng_shuffle(&rng, order, (size_t)data.train.n);

        eng_batch_stats st = {0};
        const double t0 = wk_now();
        int64_t s = 0;
        for (; s < steps_per_epoch && (!o->max_steps || step < o->max_steps); s++, step++) {
            const int64_t first = s * batch;
            const int B = (int)(data.train.n - first < batch ? data.train.n - first : batch);
            eng_dataset_gather(&data.train, order + first, B, x, labels);
            eng_net_train_step(net, x, labels, B,
                               eng_hash3((uint64_t)o->seed, (uint64_t)step, KEY_DROPOUT), &st);
            eng_net_apply(net, opt);
            double dt = wk_now() - t0;
            wk_progress_step(&prog, s + 1, st.loss_sum / (double)st.count,
                             (double)st.correct / (double)st.count,
                             dt > 0 ? (double)st.count / dt : 0.0);
        }
        const double dt = wk_now() - t0;
        train_seconds += dt;
        trained += st.count;
        wk_epoch_report r = {.epoch = epoch,
                             .loss = st.loss_sum / (double)st.count,
                             .accuracy = (double)st.correct / (double)st.count,
                             .samples_per_sec = (double)st.count / dt};
        evaluate(net, &data.val, chunk, x, labels, &r.val_loss, &r.val_accuracy);
        r.seconds = wk_now() - prog.epoch_start;
        wk_progress_epoch_end(&prog, &r);
    }
    double test_loss, test_accuracy;
    evaluate(net, &data.test, chunk, x, labels, &test_loss, &test_accuracy);
    wk_progress_final(&prog, test_loss, test_accuracy,
                      train_seconds > 0 ? (double)trained / train_seconds : 0.0,
                      wk_now() - t_start);
    status = 0;
out:
    wk_progress_deinit(&prog);
    eng_free(x);
    eng_free(labels);
    free(order);
    eng_optim_free(&opt);
    eng_net_free(&net);
    eng_split_deinit(&data);
    return status;
}
