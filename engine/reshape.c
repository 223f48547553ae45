/* reshape.c: Keras Reshape to (h, w, c). Like Flatten, NHWC memory already is Keras's
 * row-major order for any shape of the same size, so the layer is a view: the model aliases
 * its output to its input and never calls it. */
#include "engine/base/base.h"
#include "engine/layer.h"

static int reshape_build(eng_layer *l, eng_layout *lay, char *err, size_t errlen) {
    (void)lay;
    const eng_shape t = l->spec.target;
    if (t.h < 1 || t.w < 1 || t.c < 1 || eng_shape_size(t) != eng_shape_size(l->in))
        return pst_err(err, errlen, PST_EARG,
                       "%s: cannot reshape (%d, %d, %d) of %zu values to (%d, %d, %d)", l->name,
                       l->in.h, l->in.w, l->in.c, eng_shape_size(l->in), t.h, t.w, t.c);
    l->out = t;
    return PST_OK;
}

const eng_layer_ops eng_reshape_ops = {
    .keras_class = "Reshape",
    .keras_prefix = "reshape",
    .is_view = 1,
    .build = reshape_build,
};
