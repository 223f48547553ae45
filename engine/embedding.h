/* embedding.h: Keras Embedding(input_dim V, output_dim D): a lookup of rows of a (V, D)
 * table.
 *
 * x (B, T) holds token ids as floats with exact integer values in [0, V) (what a text data
 * set's batch gathers into); y (B, T, D) row n*T + t is table row x[n*T + t]. The table
 * gets a gradient only in the rows of tokens seen; the ids get none (it is a first layer). */
#ifndef PSTRAIN_ENGINE_EMBEDDING_H
#define PSTRAIN_ENGINE_EMBEDDING_H

void eng_embedding_forward(float *y, const float *x, const float *table, int B, int T, int V,
                           int D);

/* dtable (V, D): row x[i] gets dy's row i added, for i < B*T. Unless accumulate, the whole
 * table is zeroed first; with accumulate only the rows of tokens in x are touched. */
void eng_embedding_backward(float *dtable, const float *dy, const float *x, int B, int T, int V,
                            int D, int accumulate);

#endif
