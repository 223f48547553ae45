/* lstm.h: Keras LSTM(u) with return_sequences=False and TF 2's defaults: sigmoid recurrent
 * activation, tanh activation, gates in the order i, f, c, o, no masking.
 *
 * x (B, T, in) -> y (B, u), the last step's h. The weights are one (in + u, 4u) matrix
 * w = [kernel; recurrent_kernel]: the kernel (in, 4u) followed by the recurrent kernel
 * (u, 4u), as the layout stores them back to back; bias (4u). Step t computes
 *
 *   z = x_t kernel + h_{t-1} recurrent_kernel + bias        (quarters z_i, z_f, z_c, z_o)
 *   c_t = sigmoid(z_f) c_{t-1} + sigmoid(z_i) tanh(z_c),  h_t = sigmoid(z_o) tanh(c_t)
 *
 * from h_{-1} = c_{-1} = 0. Forward runs one sgemm for the inputs of all steps and a small
 * one per step; backward (full backpropagation through time) a small one per step giving
 * [dx_t, dh_{t-1}] together, then one for both kernels' gradients. Nothing is allocated:
 * saved holds forward's gates and states and backward's scratch. */
#ifndef PSTRAIN_ENGINE_LSTM_H
#define PSTRAIN_ENGINE_LSTM_H

#include <stddef.h>

/* Floats of saved that B samples need. At most B * eng_lstm_saved_floats(1, ...). */
size_t eng_lstm_saved_floats(int B, int T, int in, int u);

void eng_lstm_forward(float *y, float *saved, const float *x, const float *w, const float *bias,
                      int B, int T, int in, int u);

/* dw (in + u, 4u) and dbias (4u) written, or added to when accumulate; dx (B, T, in) written
 * unless NULL. dy (B, u) is read only; saved must be as the forward of the same x, w, B
 * left it, and is overwritten. dw and dbias are the same bits with or without dx, on every
 * OpenBLAS kernel: both run the same products. */
void eng_lstm_backward(float *dx, float *dw, float *dbias, const float *dy, float *saved,
                       const float *w, int B, int T, int in, int u, int accumulate);

/* The gate nonlinearities as the layer computes them (vectorised; y may equal x): relative
 * error below 3e-7 of the exact values, for sigmoid at x > -87 (below, an absolute error
 * under 1e-37). */
void eng_sigmoid_vec(float *y, const float *x, size_t n);
void eng_tanh_vec(float *y, const float *x, size_t n);

#endif
