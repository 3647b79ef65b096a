// The model and schedule `train --minutes` trains: candidates timed on this machine, then the sizing rule.
#include "speed/budget_plan.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>

#include "model/model.h"
#include "model/optimizer.h"
#include "run/step.h"
#include "util/rng.h"

namespace charlm {
namespace {

using Clock = std::chrono::steady_clock;

double SecondsSince(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

std::string Assign(const std::string& key, double value) {
  char text[64];
  std::snprintf(text, sizeof text, "%.6g", value);
  return key + "=" + text;
}
std::string Assign(const std::string& key, int value) { return key + "=" + std::to_string(value); }
std::string Assign(const std::string& key, const char* value) { return key + "=" + value; }

std::string Figure(const char* format, double value) {
  char text[64];
  std::snprintf(text, sizeof text, format, value);
  return text;
}

// The peak learning rate and the cosine's floor of every budget run (AdamW; the sweep in docs/quality.md).
constexpr double kPeakLearningRate = 3e-3;
constexpr double kFloorFraction = 0.05;  // min_lr = kFloorFraction * lr
// Warm-up: this fraction of the steps the plan expects, within [kMinWarmupSteps, kMaxWarmupSteps].
constexpr double kWarmupFraction = 0.02;
constexpr int kMinWarmupSteps = 10;
constexpr int kMaxWarmupSteps = 200;
// More epochs than any budget reaches: train.max_minutes is the stop.
constexpr int kBudgetEpochs = 1000000;
// The final validation's estimate is its measured rate's time times this, plus kFixedReserveSeconds for the last
// checkpoint, the report and the process's exit.
constexpr double kValidationMargin = 1.3;
constexpr double kFixedReserveSeconds = 3;
// The sequence length candidates are timed at.
constexpr int kTimingSteps = 16;

ModelSpec CandidateSpec(int vocab_size, const BudgetCandidate& candidate) {
  ModelSpec spec;
  spec.cell = CellKind::kLstm;
  spec.vocab_size = vocab_size;
  spec.embedding_size = candidate.hidden_size;
  spec.hidden_size = candidate.hidden_size;
  spec.num_layers = candidate.num_layers;
  return spec;
}

}  // namespace

Throughput TimeThroughput(const ModelSpec& spec, int batch, int steps, double seconds) {
  CharModel<float> model(spec);
  model.Initialize(InitScheme::kPytorch, 1);
  Optimizer optimizer(OptimizerConfig{}, model.params().size());
  TrainStep step(model, optimizer, batch, steps, 1.0);
  const std::size_t tokens = static_cast<std::size_t>(batch) * static_cast<std::size_t>(steps);
  std::vector<int> x(tokens), y(tokens);  // (T*B) time-major
  Rng rng(7);
  for (std::size_t i = 0; i < tokens; ++i) {
    x[i] = static_cast<int>(rng.Below(static_cast<std::uint64_t>(spec.vocab_size)));
    y[i] = static_cast<int>(rng.Below(static_cast<std::uint64_t>(spec.vocab_size)));
  }
  RecurrentState<float> state = model.MakeState(batch);
  step.RunOn(x.data(), y.data(), state, 0, 1e-4);  // warm-up: first-touch pages, thread start
  Throughput measured;
  int done = 0;
  const auto train_start = Clock::now();
  while (done < 2 || SecondsSince(train_start) < seconds * 0.7) {
    step.RunOn(x.data(), y.data(), state, static_cast<std::uint64_t>(done), 1e-4);
    ++done;
  }
  measured.train_tokens_per_s = static_cast<double>(done) * static_cast<double>(tokens) / SecondsSince(train_start);
  ForwardMode evaluation;
  evaluation.keep_probs = false;
  done = 0;
  const auto eval_start = Clock::now();
  while (done < 2 || SecondsSince(eval_start) < seconds * 0.3) {
    model.Forward(step.workspace(), x.data(), y.data(), steps, batch, state, evaluation);
    ++done;
  }
  measured.eval_tokens_per_s = static_cast<double>(done) * static_cast<double>(tokens) / SecondsSince(eval_start);
  return measured;
}

Regularization RegularizationFor(double params_per_char) {
  // log10 of the parameters per training character, 0 from one parameter per character down.
  const double excess = std::log10(std::max(params_per_char, 1.0));
  Regularization r;
  r.dropout = std::clamp(0.1 + 0.1 * excess, 0.1, 0.4);
  r.weight_drop = std::clamp(0.2 + 0.15 * excess, 0.2, 0.5);
  r.embedding_dropout = params_per_char > 10 ? 0.1 : 0.0;
  r.weight_decay = 0.01;
  return r;
}

std::vector<BudgetCandidate> BudgetCandidates(int vocab_size) {
  std::vector<BudgetCandidate> candidates;
  for (const int width : kCandidateWidths) {
    BudgetCandidate candidate;
    candidate.hidden_size = width;
    // Tied: the embedding (V, H) is also the output layer's weight, which adds only its bias (V).
    const double h = width, v = vocab_size;
    candidate.parameters = v * h + candidate.num_layers * (4 * h * (h + h) + 4 * h) + v;
    candidates.push_back(candidate);
  }
  return candidates;
}

std::vector<BudgetCandidate> TimeBudgetCandidates(int vocab_size, double seconds_each, double max_parameters) {
  std::vector<BudgetCandidate> candidates = BudgetCandidates(vocab_size);
  for (BudgetCandidate& candidate : candidates) {
    // Never chosen, so not worth its time; the narrowest is always timed, as the rule's fallback.
    if (candidate.parameters > max_parameters && &candidate != &candidates.front()) continue;
    // Timed at the plan's batch over fewer steps: the rate per token hardly depends on the sequence length, and
    // a 2x1024 step of 100 steps takes seconds on two cores.
    const Throughput measured = TimeThroughput(CandidateSpec(vocab_size, candidate), kPlanBatch, kTimingSteps, seconds_each);
    candidate.train_tokens_per_s = measured.train_tokens_per_s;
    candidate.eval_tokens_per_s = measured.eval_tokens_per_s;
  }
  return candidates;
}

BudgetPlan PlanForBudget(const CorpusFacts& corpus, double minutes, double seconds_spent,
                         const std::vector<BudgetCandidate>& timed) {
  BudgetPlan plan;
  const double train_chars = static_cast<double>(std::max<std::int64_t>(corpus.train_chars, 1));
  const double budget = minutes * 60;
  // Candidates are tried from the widest down; the first that qualifies wins, else the narrowest.
  std::vector<BudgetCandidate> by_width = timed;
  std::sort(by_width.begin(), by_width.end(),
            [](const BudgetCandidate& a, const BudgetCandidate& b) { return a.hidden_size > b.hidden_size; });
  const auto validation_seconds = [&](const BudgetCandidate& c) {
    return kValidationMargin * static_cast<double>(corpus.val_chars) / std::max(c.eval_tokens_per_s, 1.0) +
           kFixedReserveSeconds;
  };
  const auto passes = [&](const BudgetCandidate& c) {
    return std::max(0.0, budget - seconds_spent - validation_seconds(c)) * c.train_tokens_per_s / train_chars;
  };
  plan.chosen = by_width.back();
  std::string why = "none of the candidates reads the text " + Figure("%.0f", kMinPasses) + " times with at most " +
                    Figure("%.0f", kMaxParamsPerChar) + " parameters per character; the narrowest is used";
  for (const BudgetCandidate& c : by_width) {
    if (c.train_tokens_per_s <= 0) continue;  // not timed
    if (passes(c) >= kMinPasses && c.parameters <= kMaxParamsPerChar * train_chars) {
      plan.chosen = c;
      why = "the widest that reads the text at least " + Figure("%.0f", kMinPasses) + " times with at most " +
            Figure("%.0f", kMaxParamsPerChar) + " parameters per training character";
      break;
    }
  }
  const BudgetCandidate& c = plan.chosen;
  plan.validation_seconds = validation_seconds(c);
  plan.train_seconds = std::max(1.0, budget - seconds_spent - plan.validation_seconds);
  plan.passes = passes(c);
  const double params_per_char = c.parameters / train_chars;
  const Regularization r = RegularizationFor(params_per_char);
  const double expected_steps = plan.train_seconds * c.train_tokens_per_s / (kPlanBatch * kPlanSteps);
  const int warmup = std::clamp(static_cast<int>(kWarmupFraction * expected_steps), kMinWarmupSteps, kMaxWarmupSteps);

  plan.settings = {
      Assign("model.cell", "lstm"),
      Assign("model.num_layers", c.num_layers),
      Assign("model.hidden_size", c.hidden_size),
      Assign("model.embedding_size", c.hidden_size),
      Assign("model.tie_embeddings", "true"),
      Assign("model.init", "pytorch"),
      Assign("model.locked_dropout", "true"),
      Assign("model.dropout", r.dropout),
      Assign("model.weight_drop", r.weight_drop),
      Assign("model.embedding_dropout", r.embedding_dropout),
      Assign("model.recurrent_dropout", 0.0),
      Assign("train.batch_size", kPlanBatch),
      Assign("train.num_steps", kPlanSteps),
      Assign("train.sampler", "consecutive"),
      Assign("train.random_offset", "true"),
      Assign("train.optimizer.name", "adamw"),
      Assign("train.optimizer.lr", kPeakLearningRate),
      Assign("train.optimizer.weight_decay", r.weight_decay),
      Assign("train.clip_norm", 1.0),
      Assign("train.lr_schedule.name", "cosine"),
      Assign("train.lr_schedule.warmup_steps", warmup),
      Assign("train.lr_schedule.min_lr", kFloorFraction * kPeakLearningRate),
      Assign("train.epochs", kBudgetEpochs),
      Assign("train.patience", 0),
      Assign("train.max_minutes", plan.train_seconds / 60),
  };
  plan.reasons = {
      "budget " + Figure("%g", minutes) + " min: " + Figure("%.0f", plan.train_seconds) + " s of training, " +
          Figure("%.0f", plan.validation_seconds) + " s kept for the final validation of " +
          std::to_string(corpus.val_chars) + " characters, " + Figure("%.0f", seconds_spent) +
          " s spent reading the text and timing " +
          std::to_string(std::count_if(timed.begin(), timed.end(),
                                       [](const BudgetCandidate& t) { return t.train_tokens_per_s > 0; })) +
          " sizes",
      "model: LSTM " + std::to_string(c.num_layers) + "x" + std::to_string(c.hidden_size) + ", tied embedding, " +
          Figure("%.2f", c.parameters / 1e6) + " M parameters (" + Figure("%.1f", params_per_char) +
          " per training character), " + Figure("%.0f", c.train_tokens_per_s) + " tokens/s here: about " +
          Figure("%.0f", plan.passes) + " passes over " + std::to_string(corpus.train_chars) + " characters; " + why,
      "regularization for " + Figure("%.1f", params_per_char) + " parameters per character: locked dropout " +
          Figure("%.2f", r.dropout) + ", weight drop " + Figure("%.2f", r.weight_drop) + ", embedding dropout " +
          Figure("%.2f", r.embedding_dropout) + ", AdamW weight decay " + Figure("%.2g", r.weight_decay),
      "schedule: AdamW lr " + Figure("%g", kPeakLearningRate) + ", " + std::to_string(warmup) +
          " warm-up steps, then cosine over the training time to " + Figure("%g", kFloorFraction * kPeakLearningRate),
  };
  return plan;
}

BudgetSchedule ScheduleForBudget(double minutes, double seconds_spent, std::int64_t val_chars,
                                 double eval_tokens_per_s, double lr) {
  BudgetSchedule schedule;
  schedule.validation_seconds =
      kValidationMargin * static_cast<double>(val_chars) / std::max(eval_tokens_per_s, 1.0) + kFixedReserveSeconds;
  schedule.train_seconds = std::max(1.0, minutes * 60 - seconds_spent - schedule.validation_seconds);
  schedule.settings = {
      Assign("train.lr_schedule.name", "cosine"),
      Assign("train.lr_schedule.min_lr", kFloorFraction * lr),
      Assign("train.epochs", kBudgetEpochs),
      Assign("train.patience", 0),
      Assign("train.max_minutes", schedule.train_seconds / 60),
  };
  return schedule;
}

}  // namespace charlm
