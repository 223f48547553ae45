/* score.h: the two GAN quality measures, computed from a judge classifier's outputs: the
 * Inception Score of its class probabilities and the Fréchet distance between Gaussians
 * fitted to its features of real and generated samples.
 *
 * Both are computed in double from float inputs. Neither runs the classifier: the caller
 * passes its outputs. */
#ifndef PSTRAIN_ENGINE_SCORE_H
#define PSTRAIN_ENGINE_SCORE_H

#include <stddef.h>

/* The Inception Score exp(E_x[KL(p(y|x) || p(y))]) of probs (n, classes): row x is p(y|x)
 * (each row sums to 1), p(y) is the mean row, and 0 log 0 = 0. Returns a value in
 * [1, classes]: 1 when all rows are equal, classes when the rows are one-hot and spread
 * evenly over the classes. n >= 1 and classes >= 1 (asserted). */
double eng_score_inception(const float *probs, size_t n, int classes);

/* The Fréchet distance between the Gaussians fitted to feature sets a (na, dim) and
 * b (nb, dim):
 *
 *   FD = |mu_a - mu_b|^2 + tr(Ca) + tr(Cb) - 2 tr(sqrtm(Ca Cb))
 *
 * with the means mu and the unbiased covariances C (divided by n - 1, as numpy.cov). On
 * success stores FD (>= 0) in *out and returns PST_OK. Returns PST_EARG for na or nb < 2,
 * dim < 1 or too large for the workspace, a feature that is not finite, or LAPACK's
 * eigensolver failing to converge; err (errlen bytes, may be NULL) then holds one line and
 * *out is left alone. Workspace O(dim^2), freed before returning. */
int eng_score_frechet(const float *a, size_t na, const float *b, size_t nb, int dim, double *out,
                      char *err, size_t errlen);

#endif
