/* flatten.c: Keras Flatten. NHWC memory already is Keras's flattened (h, w, c) order, so
 * the layer is a view: the model aliases its output to its input and never calls it. */
#include "engine/layer.h"

static int flatten_build(eng_layer *l, eng_layout *lay, char *err, size_t errlen) {
    (void)lay, (void)err, (void)errlen;
    l->out = (eng_shape){1, 1, (int)eng_shape_size(l->in)};
    return 0;
}

const eng_layer_ops eng_flatten_ops = {
    .keras_class = "Flatten",
    .keras_prefix = "flatten",
    .is_view = 1,
    .build = flatten_build,
};
