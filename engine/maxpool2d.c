/* maxpool2d.c: MaxPooling2D forward/backward over NHWC, channels innermost so that the
 * inner loops run over contiguous memory. */
#include "engine/maxpool2d.h"

#include "engine/base/base.h"

#include <string.h>

void eng_maxpool2d_forward(float *y, const float *x, int B, int H, int W, int C, int PH, int PW) {
    const int OH = H / PH, OW = W / PW;
    for (int n = 0; n < B; n++)
        for (int oh = 0; oh < OH; oh++)
            for (int ow = 0; ow < OW; ow++) {
                float *restrict yo = y + (((size_t)n * OH + oh) * OW + ow) * C;
                const float *x0 = x + (((size_t)n * H + oh * PH) * W + ow * PW) * C;
                memcpy(yo, x0, sizeof(float) * (size_t)C);
                for (int i = 0; i < PH; i++)
                    for (int j = 0; j < PW; j++) {
                        if (i == 0 && j == 0)
                            continue;
                        const float *restrict xi = x0 + ((size_t)i * W + j) * C;
                        for (int c = 0; c < C; c++) /* the first maximum stays: vectorises */
                            yo[c] = xi[c] > yo[c] ? xi[c] : yo[c];
                    }
            }
}

void eng_maxpool2d_backward(float *dx, float *dy, const float *x, const float *y, int B, int H,
                            int W, int C, int PH, int PW) {
    const int OH = H / PH, OW = W / PW;
    if (H % PH || W % PW) /* rows or columns no window covers */
        memset(dx, 0, sizeof(float) * (size_t)B * H * W * C);
    for (int n = 0; n < B; n++)
        for (int oh = 0; oh < OH; oh++)
            for (int ow = 0; ow < OW; ow++) {
                const size_t o = (((size_t)n * OH + oh) * OW + ow) * C,
                             at = (((size_t)n * H + oh * PH) * W + ow * PW) * C;
                const float *restrict yo = y + o;
                float *restrict g = dy + o; /* what is left to route: taken by the first hit */
                /* Every window position is written: the first holding the maximum gets dy,
                 * the rest 0. */
                for (int i = 0; i < PH; i++)
                    for (int j = 0; j < PW; j++) {
                        const size_t k = at + ((size_t)i * W + j) * C;
                        const float *restrict xk = x + k;
                        float *restrict d = dx + k;
                        for (int c = 0; c < C; c++) {
                            const int hit = xk[c] == yo[c];
                            d[c] = hit ? g[c] : 0.0f;
                            g[c] = hit ? 0.0f : g[c];
                        }
                    }
            }
}

static int maxpool2d_build(eng_layer *l, eng_layout *lay, char *err, size_t errlen) {
    (void)lay;
    const eng_layer_spec *s = &l->spec;
    if (s->kh < 1 || s->kw < 1 || s->kh * s->kw > 256 || s->kh > l->in.h || s->kw > l->in.w)
        return pst_err(err, errlen, PST_EARG, "%s: pool %dx%d does not fit input (%d, %d, %d)",
                       l->name, s->kh, s->kw, l->in.h, l->in.w, l->in.c);
    l->out = (eng_shape){l->in.h / s->kh, l->in.w / s->kw, l->in.c};
    return PST_OK;
}

static void maxpool2d_fwd(const eng_layer *l, const eng_fwd_args *a) {
    eng_maxpool2d_forward(a->y, a->x, a->batch, l->in.h, l->in.w, l->in.c, l->spec.kh, l->spec.kw);
}

static void maxpool2d_bwd(const eng_layer *l, const eng_bwd_args *a) {
    if (a->dx)
        eng_maxpool2d_backward(a->dx, a->dy, a->x, a->y, a->batch, l->in.h, l->in.w, l->in.c,
                               l->spec.kh, l->spec.kw);
}

const eng_layer_ops eng_maxpool2d_ops = {
    .keras_class = "MaxPooling2D",
    .keras_prefix = "max_pooling2d",
    .build = maxpool2d_build,
    .forward = maxpool2d_fwd,
    .backward = maxpool2d_bwd,
};
