// The training step: one minibatch through forward, backward, the gradient reduce, clipping and the update.
#include "run/step.h"

#include <cmath>

#include "ops/blas.h"

namespace charlm {

TrainStep::TrainStep(CharModel<float>& model, Optimizer& optimizer, int batch_size, int num_steps, double clip_norm,
                     GradientReduce* reduce, int first_stream)
    : model_(model),
      optimizer_(optimizer),
      batch_size_(batch_size),
      num_steps_(num_steps),
      clip_norm_(clip_norm),
      reduce_(reduce),
      first_stream_(first_stream),
      row_threads_(std::make_unique<ColumnThreads>(BlasThreads(), ColumnThreads::IdleWait::kYield)),
      workspace_(model.MakeWorkspace(num_steps, batch_size)),
      x_batch_major_(static_cast<std::size_t>(batch_size) * num_steps),
      y_batch_major_(x_batch_major_.size()),
      x_(x_batch_major_.size()),
      y_(x_batch_major_.size()) {
  workspace_->row_threads = row_threads_.get();
}

void TrainStep::set_phase_times(PhaseTimes* times) {
  phase_times_ = times;
  workspace_->phase_times = times;
}

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
  return RunOn(x_.data(), y_.data(), state, dropout_seed, lr);
}

StepResult TrainStep::RunOn(const int* x, const int* y, RecurrentState<float>& state, std::uint64_t dropout_seed,
                            double lr) {
  const int B = batch_size_, T = num_steps_;
  model_.ZeroGrads();
  StepResult result;
  result.loss = model_.Forward(*workspace_, x, y, T, B, state, ForwardMode{true, dropout_seed, first_stream_});
  // The summed gradients times this are the mean over every worker's tokens: each worker's gradients are the
  // mean over its own, and every worker holds as many tokens as this one (equal blocks of the batch).
  float gradient_scale = 1.0f;
  if (reduce_ == nullptr) {
    model_.Backward(*workspace_, nullptr);
  } else {
    const std::span<float> buffer = model_.reduce_buffer();  // (P + 2): gradients, loss sum, token count
    float* tail = buffer.data() + model_.grads().size();
    const float tokens = static_cast<float>(B) * static_cast<float>(T);  // exact: Train() keeps a job's B*T below 2^24
    tail[0] = result.loss * tokens;
    tail[1] = tokens;
    reduce_->Begin(buffer);
    model_.Backward(*workspace_, nullptr, reduce_);
    reduce_->Finish();
    result.loss = tail[0] / tail[1];
    gradient_scale = tokens / tail[1];
  }
  PhaseTimer optimizer_timer(phase_times_ != nullptr ? &phase_times_->optimizer : nullptr);
  result.grad_norm = GlobalNorm(model_.grads()) * gradient_scale;
  // A finite loss whose perplexity overflows (above ~709 nats per character, where ln V is a few nats) has
  // diverged just as surely as a NaN: the weights have blown up even if saturated activations keep them finite.
  result.loss_diverged = !std::isfinite(result.loss) || !std::isfinite(std::exp(static_cast<double>(result.loss)));
  if (result.loss_diverged || !std::isfinite(result.grad_norm)) return result;
  // Clipping (and the mean over workers) is applied inside the update, not in a pass over the gradients.
  optimizer_.Step(model_.params(), model_.grads(), lr, gradient_scale * ClipScale(result.grad_norm, clip_norm_),
                  row_threads_.get());
  result.applied = true;
  return result;
}

}  // namespace charlm
