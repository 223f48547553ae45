/* test_keras.c: the JSON of Keras full-model files (engine/ckpt/keras.h), parsed back with
 * jansson: floats as Python's repr writes them; each model's model_config a Sequential whose
 * layers carry Keras 2.13's get_config keys, in order, with the values the model has; the
 * training config's loss, metric and optimizer (new Adam and RMSprop, RMSprop with a decay
 * as the legacy optimizer, without the is_legacy_optimizer its constructor refuses); a layer Keras
 * cannot configure refused by name. */
#include "engine/ckpt/keras.h"

#include "engine/base/base.h"
#include "tests/support/testutil.h"

#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static void build(eng_model *m, const char *name) {
    char err[256];
    assert_int_equal(eng_model_build(m, eng_model_find(name), err, sizeof err), PST_OK);
}

static json_t *parse(char *s) {
    assert_non_null(s);
    json_error_t e;
    json_t *j = json_loads(s, 0, &e);
    if (!j)
        fail_msg("not JSON: %s at %d: %s", e.text, e.position, s);
    free(s);
    return j;
}

/* Whether a equals b (b owned: released here). */
static int same(json_t *a, json_t *b) {
    const int eq = json_equal(a, b);
    json_decref(b);
    return eq;
}

static void repr(void **state) {
    (void)state;
    const struct {
        double v;
        const char *want;
    } cases[] = {{0.001, "0.001"},
                 {1e-07, "1e-07"},
                 {1.0, "1.0"},
                 {100.0, "100.0"},
                 {0.5, "0.5"},
                 {(double)0.3f, "0.30000001192092896"},
                 {(double)1e-3f, "0.0010000000474974513"},
                 {-0.05, "-0.05"},
                 {1e16, "1e+16"},
                 {123456.0, "123456.0"},
                 {1e-5, "1e-05"},
                 {0.0001, "0.0001"}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char out[40];
        eng_keras_repr(out, sizeof out, cases[i].v);
        assert_string_equal(out, cases[i].want);
    }
}

/* The keys of object o, in order, joined by ',' into buf. */
static const char *keys(json_t *o, char *buf, size_t len) {
    const char *k;
    json_t *v;
    buf[0] = '\0';
    json_object_foreach(o, k, v)
        snprintf(buf + strlen(buf), len - strlen(buf), "%s%s", buf[0] ? "," : "", k);
    return buf;
}

static void cnn_config(void **state) {
    (void)state;
    eng_model m;
    build(&m, "mnist_cnn");
    char err[256] = "";
    json_t *j = parse(eng_keras_model_config(&m, 0, m.n, "sequential", 0, err, sizeof err));
    assert_string_equal(json_string_value(json_object_get(j, "class_name")), "Sequential");
    json_t *cfg = json_object_get(j, "config");
    assert_string_equal(json_string_value(json_object_get(cfg, "name")), "sequential");
    json_t *layers = json_object_get(cfg, "layers");
    assert_int_equal(json_array_size(layers), m.n + 1);
    json_t *in = json_object_get(json_array_get(layers, 0), "config");
    assert_string_equal(json_string_value(json_object_get(in, "name")), "conv2d_input");
    assert_true(same(json_object_get(in, "batch_input_shape"), json_pack("[n,i,i,i]", 28, 28, 1)));
    for (int i = 0; i < m.n; i++) {
        json_t *l = json_array_get(layers, (size_t)i + 1);
        assert_string_equal(json_string_value(json_object_get(l, "class_name")),
                            m.layers[i].ops->keras_class);
        assert_string_equal(
            json_string_value(json_object_get(json_object_get(l, "config"), "name")),
            m.layers[i].name);
    }
    /* Conv2D's keys in Keras 2.13's order: the base's, then Conv.get_config's */
    char buf[1024];
    assert_string_equal(
        keys(json_object_get(json_array_get(layers, 1), "config"), buf, sizeof buf),
        "name,trainable,dtype,batch_input_shape,filters,kernel_size,strides,padding,data_format,"
        "dilation_rate,groups,activation,use_bias,kernel_initializer,bias_initializer,"
        "kernel_regularizer,bias_regularizer,activity_regularizer,kernel_constraint,"
        "bias_constraint");
    json_t *last = json_object_get(json_array_get(layers, (size_t)m.n), "config");
    assert_int_equal(json_integer_value(json_object_get(last, "units")), 10);
    assert_string_equal(json_string_value(json_object_get(last, "activation")), "softmax");
    json_t *drop = json_object_get(json_array_get(layers, 7), "config");
    assert_true(json_real_value(json_object_get(drop, "rate")) == 0.5);
    json_decref(j);
}

static void gan_configs(void **state) {
    (void)state;
    eng_model m;
    build(&m, "mnist_gan");
    char err[256] = "";
    const int g = m.parts[0].def->nlayers, d = m.n - g;
    json_t *gen = parse(eng_keras_model_config(&m, 0, g, "sequential", 1, err, sizeof err));
    json_t *dis = parse(eng_keras_model_config(&m, g, d, "sequential_1", 1, err, sizeof err));
    json_t *gl = json_object_get(json_object_get(gen, "config"), "layers");
    json_t *dl = json_object_get(json_object_get(dis, "config"), "layers");
    /* BatchNormalization's axis follows the rank: after Dense (None, 12544), after a conv 4-D */
    json_t *bn0 = json_object_get(json_array_get(gl, 2), "config");
    json_t *bn1 = json_object_get(json_array_get(gl, 6), "config");
    assert_true(same(json_object_get(bn0, "axis"), json_pack("[i]", 1)));
    assert_true(same(json_object_get(bn1, "axis"), json_pack("[i]", 3)));
    json_t *lrelu = json_object_get(json_array_get(gl, 3), "config");
    assert_true(json_real_value(json_object_get(lrelu, "alpha")) == (double)0.3f);
    /* the discriminator's names are the ones the one Keras session gave it; logits out */
    json_t *out = json_object_get(json_array_get(dl, (size_t)d), "config");
    assert_string_equal(json_string_value(json_object_get(out, "name")), "dense_1");
    assert_string_equal(json_string_value(json_object_get(out, "activation")), "linear");
    assert_string_equal(json_string_value(json_object_get(
                            json_object_get(json_array_get(dl, 0), "config"), "name")),
                        "conv2d_input");
    json_decref(gen);
    json_decref(dis);
}

static void training_configs(void **state) {
    (void)state;
    eng_model m;
    build(&m, "imdb_lstm");
    eng_optim_cfg adam = eng_optim_defaults(ENG_OPT_ADAM);
    json_t *t = parse(eng_keras_training_config(&m, 0, m.n, &adam, 0));
    assert_string_equal(json_string_value(json_object_get(t, "loss")), "binary_crossentropy");
    json_t *metric = json_array_get(json_array_get(json_object_get(t, "metrics"), 0), 0);
    assert_string_equal(json_string_value(json_object_get(json_object_get(metric, "config"), "fn")),
                        "binary_accuracy");
    json_t *oc = json_object_get(json_object_get(t, "optimizer_config"), "config");
    assert_string_equal(json_string_value(json_object_get(oc, "name")), "Adam");
    assert_true(json_real_value(json_object_get(oc, "learning_rate")) == (double)1e-3f);
    assert_true(json_real_value(json_object_get(oc, "beta_1")) == 0.9);
    assert_true(json_real_value(json_object_get(oc, "epsilon")) == 1e-07);
    assert_true(json_is_false(json_object_get(oc, "is_legacy_optimizer")));
    json_decref(t);

    eng_optim_cfg rms = eng_optim_defaults(ENG_OPT_RMSPROP);
    rms.clipvalue = 1.0f;
    t = parse(eng_keras_training_config(&m, 0, m.n, &rms, 0));
    oc = json_object_get(json_object_get(t, "optimizer_config"), "config");
    assert_true(json_real_value(json_object_get(oc, "clipvalue")) == 1.0);
    assert_true(json_real_value(json_object_get(oc, "rho")) == 0.9);
    assert_true(json_is_false(json_object_get(oc, "is_legacy_optimizer")));
    json_decref(t);

    rms.decay = 1e-8f; /* only the legacy RMSprop knows a decay */
    t = parse(eng_keras_training_config(&m, 0, m.n, &rms, 1));
    json_t *legacy = json_object_get(t, "optimizer_config");
    assert_string_equal(json_string_value(json_object_get(legacy, "class_name")), "RMSprop");
    oc = json_object_get(legacy, "config");
    /* the legacy RMSprop's __init__ refuses is_legacy_optimizer: its absence picks the class */
    assert_null(json_object_get(oc, "is_legacy_optimizer"));
    assert_true(json_real_value(json_object_get(oc, "decay")) == 1e-08);
    assert_true(json_real_value(json_object_get(oc, "rho")) == (double)0.9f);
    assert_true(json_is_true(
        json_object_get(json_object_get(json_object_get(t, "loss"), "config"), "from_logits")));
    assert_true(json_is_null(json_object_get(t, "metrics")));
    json_decref(t);
}

static void refuses_unknown_activation(void **state) {
    (void)state;
    static const eng_layer_spec spec[] = {
        {.kind = ENG_DENSE, .units = 4, .act = ENG_ACT_LEAKY_RELU, .input = {1, 1, 3}},
        {.kind = ENG_DENSE, .units = 10, .act = ENG_ACT_SOFTMAX},
    };
    const eng_model_def def = {"fused", "mnist", "", 10, 2, spec, 0, NULL, 1, 0};
    eng_model m;
    char err[256] = "";
    assert_int_equal(eng_model_build(&m, &def, err, sizeof err), PST_OK);
    assert_null(eng_keras_model_config(&m, 0, m.n, "sequential", 0, err, sizeof err));
    assert_non_null(strstr(err, "layer dense (Dense): no Keras config"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(repr),
        cmocka_unit_test(cnn_config),
        cmocka_unit_test(gan_configs),
        cmocka_unit_test(training_configs),
        cmocka_unit_test(refuses_unknown_activation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
