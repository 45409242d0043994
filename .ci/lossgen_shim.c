/* lossgen (Opus 1.5's learned packet-loss generator, dnn/lossgen.c) as a small
 * shared library for ctypes. libopus does not export it (only opus_demo links
 * it), and its sample_loss() draws from the process-wide rand(): this shim
 * takes the uniform draw as an argument instead, so each Python channel
 * object keeps its own seeded generator and a (spec, seed) pair repeats. */
#include "lossgen.c"

int largesc_lossgen_state_size(void) { return (int)sizeof(LossGenState); }

void largesc_lossgen_init(LossGenState *st) { lossgen_init(st); }

/* One packet: probability of loss given the last fate, then the decision
 * u < p (u uniform in [0, 1)). Same network as sample_loss_impl. */
int largesc_lossgen_step(LossGenState *st, float percent_loss, float u)
{
  float input[2];
  float tmp[LOSSGEN_DENSE_IN_OUT_SIZE];
  float out;
  LossGen *model = &st->model;
  input[0] = st->last_loss;
  input[1] = percent_loss;
  compute_generic_dense_lossgen(&model->lossgen_dense_in, tmp, input, ACTIVATION_TANH, 0);
  compute_generic_gru_lossgen(&model->lossgen_gru1_input, &model->lossgen_gru1_recurrent, st->gru1_state, tmp, 0);
  compute_generic_gru_lossgen(&model->lossgen_gru2_input, &model->lossgen_gru2_recurrent, st->gru2_state, st->gru1_state, 0);
  compute_generic_dense_lossgen(&model->lossgen_dense_out, &out, st->gru2_state, ACTIVATION_SIGMOID, 0);
  st->last_loss = u < out;
  return st->last_loss;
}
