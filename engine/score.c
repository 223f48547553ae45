/* score.c: the Inception Score and the Fréchet distance, in double.
 *
 * The Fréchet distance needs tr(sqrtm(Ca Cb)). Ca Cb is not symmetric, so instead of a
 * general matrix square root (scipy's sqrtm, whose complex rounding FID code then throws
 * away) it uses symmetric eigendecompositions only: with Ca = E^T L E (E orthogonal, its
 * rows the eigenvectors) and S = sqrtm(Ca) = E^T L^1/2 E, Ca Cb is similar to S Cb S, whose
 * eigenvalues are those of G Cb G^T with G = L^1/2 E (S Cb S = E^T (G Cb G^T) E). G Cb G^T
 * is symmetric positive semi-definite, so tr(sqrtm(Ca Cb)) is the sum of the square roots of
 * its eigenvalues; the ones that rounding leaves slightly negative count as 0. */
#include "engine/score.h"

#include "engine/base/base.h"

#include <cblas.h>
#include <math.h>
#include <stdint.h>

/* LAPACK's divide-and-conquer symmetric eigensolver (OpenBLAS carries it; Debian's
 * libopenblas-dev installs no header for it): the Fortran symbol, every argument by
 * reference, and gfortran's hidden lengths of the two character arguments at the end. */
void dsyevd_(const char *jobz, const char *uplo, const int *n, double *a, const int *lda, double *w,
             double *work, const int *lwork, int *iwork, const int *liwork, int *info,
             size_t jobz_len, size_t uplo_len);

/* Rows converted and centred at a time for the covariance's dsyrk: 256 rows of 128
 * features (256 KiB) stay in L2 while OpenBLAS still gets a product large enough to run
 * at full speed. */
#define BLOCK_ROWS 256

double eng_score_inception(const float *probs, size_t n, int classes) {
    PST_ASSERT(n >= 1 && classes >= 1, "inception score of %zu rows of %d classes", n, classes);
    double *py = pst_alloc(sizeof(double) * (size_t)classes);
    for (size_t i = 0; i < n; i++)
        for (int c = 0; c < classes; c++)
            py[c] += probs[i * (size_t)classes + c];
    for (int c = 0; c < classes; c++)
        py[c] /= (double)n;
    double kl = 0.0;
    for (size_t i = 0; i < n; i++)
        for (int c = 0; c < classes; c++) {
            const double p = probs[i * (size_t)classes + c];
            if (p > 0.0) /* 0 log 0 = 0; p > 0 implies py[c] > 0 */
                kl += p * log(p / py[c]);
        }
    pst_free(py);
    return exp(kl / (double)n);
}

/* mu (dim) and the upper triangle of cov (dim, dim) <- the mean and unbiased covariance of
 * x (n, dim), n >= 2; blk holds BLOCK_ROWS rows. Centring on the mean first (two passes)
 * keeps the features' offset out of the sums of squares. Returns PST_EARG for a feature
 * that is not finite. */
static int fit_gaussian(double *mu, double *cov, double *blk, const float *x, size_t n, int dim,
                        const char *name, char *err, size_t errlen) {
    const size_t d = (size_t)dim;
    for (int j = 0; j < dim; j++)
        mu[j] = 0.0;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < d; j++) {
            const float v = x[i * d + j];
            if (!isfinite(v))
                return pst_err(err, errlen, PST_EARG,
                               "frechet distance: set %s, row %zu, feature %zu: expected a "
                               "finite value, got %g",
                               name, i, j, (double)v);
            mu[j] += v;
        }
    for (size_t j = 0; j < d; j++)
        mu[j] /= (double)n;
    const double scale = 1.0 / (double)(n - 1);
    for (size_t i0 = 0; i0 < n; i0 += BLOCK_ROWS) {
        const size_t rows = n - i0 < BLOCK_ROWS ? n - i0 : BLOCK_ROWS;
        for (size_t i = 0; i < rows; i++)
            for (size_t j = 0; j < d; j++)
                blk[i * d + j] = (double)x[(i0 + i) * d + j] - mu[j];
        /* cov += blk^T blk / (n - 1) */
        cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, dim, (int)rows, scale, blk, dim,
                    i0 == 0 ? 0.0 : 1.0, cov, dim);
    }
    return PST_OK;
}

/* The eigenvalues of the symmetric a (n, n) in w, ascending; with jobz "V" a's rows become
 * the eigenvectors (LAPACK's columns, read row-major). Only a's upper triangle (row-major)
 * is read. */
static int eigen(double *a, double *w, int n, const char *jobz, double *work, int lwork, int *iwork,
                 int liwork, char *err, size_t errlen) {
    int info = 0;
    /* LAPACK's lower triangle, column-major, is the row-major upper one. */
    dsyevd_(jobz, "L", &n, a, &n, w, work, &lwork, iwork, &liwork, &info, 1, 1);
    if (info != 0)
        return pst_err(err, errlen, PST_EARG,
                       "frechet distance: dsyevd on a %d x %d covariance: info %d (%s)", n, n, info,
                       info < 0 ? "a bad argument" : "no convergence");
    return PST_OK;
}

int eng_score_frechet(const float *a, size_t na, const float *b, size_t nb, int dim, double *out,
                      char *err, size_t errlen) {
    if (na < 2 || nb < 2)
        return pst_err(err, errlen, PST_EARG,
                       "frechet distance: expected at least 2 samples in each set, got %zu and "
                       "%zu",
                       na, nb);
    if (dim < 1)
        return pst_err(err, errlen, PST_EARG,
                       "frechet distance: expected at least 1 feature, got %d", dim);
    const size_t d = (size_t)dim;
    /* mu_a, mu_b, w (d each); ca, cb, g, t (d x d each); blk (BLOCK_ROWS x d) */
    const size_t per_dim = 4 * d + 3 + BLOCK_ROWS;
    if (d > SIZE_MAX / sizeof(double) / per_dim)
        return pst_err(err, errlen, PST_EARG, "frechet distance: %d features: too many", dim);

    /* LAPACK's workspace for dsyevd with eigenvectors (enough for without). */
    int lwork = -1, liwork = -1, info = 0, iquery = 0;
    double wquery = 0.0, unused = 0.0; /* a and w: not touched by a query */
    dsyevd_("V", "L", &dim, &unused, &dim, &unused, &wquery, &lwork, &iquery, &liwork, &info, 1, 1);
    if (info != 0)
        return pst_err(err, errlen, PST_EARG,
                       "frechet distance: dsyevd workspace query for %d features: info %d", dim,
                       info);
    lwork = (int)wquery;
    liwork = iquery;

    double *mem = pst_alloc(sizeof(double) * (per_dim * d + (size_t)lwork));
    int *iwork = pst_alloc(sizeof(int) * (size_t)liwork);
    int rc = PST_OK;
    double *mu_a = mem, *mu_b = mu_a + d, *w = mu_b + d;
    double *ca = w + d, *cb = ca + d * d, *g = cb + d * d, *t = g + d * d;
    double *blk = t + d * d, *work = blk + (size_t)BLOCK_ROWS * d;

    if ((rc = fit_gaussian(mu_a, ca, blk, a, na, dim, "a", err, errlen)) != PST_OK ||
        (rc = fit_gaussian(mu_b, cb, blk, b, nb, dim, "b", err, errlen)) != PST_OK)
        goto done;

    double dmu2 = 0.0, tr_a = 0.0, tr_b = 0.0;
    for (size_t j = 0; j < d; j++) {
        dmu2 += (mu_a[j] - mu_b[j]) * (mu_a[j] - mu_b[j]);
        tr_a += ca[j * d + j];
        tr_b += cb[j * d + j];
    }

    /* Ca = E^T L E; g <- G = L^1/2 E (row k: eigenvector k times sqrt(l_k)). */
    for (size_t k = 0; k < d * d; k++)
        g[k] = ca[k];
    if ((rc = eigen(g, w, dim, "V", work, lwork, iwork, liwork, err, errlen)) != PST_OK)
        goto done;
    for (size_t k = 0; k < d; k++) {
        const double s = sqrt(fmax(w[k], 0.0));
        for (size_t j = 0; j < d; j++)
            g[k * d + j] *= s;
    }
    /* t <- G Cb (Cb's upper triangle), then ca <- G Cb G^T: ca is free again. */
    cblas_dsymm(CblasRowMajor, CblasRight, CblasUpper, dim, dim, 1.0, cb, dim, g, dim, 0.0, t, dim);
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, dim, dim, dim, 1.0, t, dim, g, dim, 0.0,
                ca, dim);
    /* Symmetric up to rounding: the solver reads one triangle, so give it the average. */
    for (size_t i = 0; i < d; i++)
        for (size_t j = i + 1; j < d; j++)
            ca[i * d + j] = 0.5 * (ca[i * d + j] + ca[j * d + i]);
    if ((rc = eigen(ca, w, dim, "N", work, lwork, iwork, liwork, err, errlen)) != PST_OK)
        goto done;
    double tr_sqrt = 0.0;
    for (size_t k = 0; k < d; k++)
        tr_sqrt += sqrt(fmax(w[k], 0.0));

    /* A distance: rounding can leave a tiny negative value where the sets agree. */
    *out = fmax(dmu2 + tr_a + tr_b - 2.0 * tr_sqrt, 0.0);
done:
    pst_free(mem);
    pst_free(iwork);
    return rc;
}
