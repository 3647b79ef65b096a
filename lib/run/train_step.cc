// The training step: one minibatch through forward, backward, the gradient reduce, clipping and the update.
#include "run/train_step.h"

#include <cmath>

namespace charlm {

TrainStep::TrainStep(CharModel<float>& model, Optimizer& optimizer, int batch_size, int num_steps, double clip_norm,
                     GradientReduce reduce, int first_stream)
    : model_(model),
      optimizer_(optimizer),
      batch_size_(batch_size),
      num_steps_(num_steps),
      clip_norm_(clip_norm),
      reduce_(std::move(reduce)),
      first_stream_(first_stream),
      workspace_(model.MakeWorkspace(num_steps, batch_size)),
      x_batch_major_(static_cast<std::size_t>(batch_size) * num_steps),
      y_batch_major_(x_batch_major_.size()),
      x_(x_batch_major_.size()),
      y_(x_batch_major_.size()) {}

StepResult TrainStep::Run(const Sampler& sampler, std::int64_t batch, RecurrentState<float>& state,
                          std::uint64_t dropout_seed, double lr) {
  const int B = batch_size_, T = num_steps_;
  sampler.GetStreams(batch, first_stream_, B, x_batch_major_.data(), y_batch_major_.data());
  for (int b = 0; b < B; ++b) {
    for (int t = 0; t < T; ++t) {
      x_[static_cast<std::size_t>(t) * B + b] = x_batch_major_[static_cast<std::size_t>(b) * T + t];
      y_[static_cast<std::size_t>(t) * B + b] = y_batch_major_[static_cast<std::size_t>(b) * T + t];
    }
  }
  if (sampler.kind() == SamplerKind::kRandom) state.Zero();  // random windows are unrelated
  model_.ZeroGrads();
  StepResult result;
  result.loss = model_.Forward(*workspace_, x_.data(), y_.data(), T, B, state, ForwardMode{true, dropout_seed, first_stream_});
  model_.Backward(*workspace_, nullptr);
  if (reduce_) reduce_(model_.grads(), result.loss);
  result.grad_norm = GlobalNorm(model_.grads());
  // A finite loss whose perplexity overflows (above ~709 nats per character, where ln V is a few nats) has
  // diverged just as surely as a NaN: the weights have blown up even if saturated activations keep them finite.
  result.loss_diverged = !std::isfinite(result.loss) || !std::isfinite(std::exp(static_cast<double>(result.loss)));
  if (result.loss_diverged || !std::isfinite(result.grad_norm)) return result;
  // Clipping is applied inside the update (without weight decay, the bits of scaling the gradients first).
  optimizer_.Step(model_.params(), model_.grads(), lr, ClipScale(result.grad_norm, clip_norm_));
  result.applied = true;
  return result;
}

}  // namespace charlm
