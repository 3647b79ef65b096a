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

// The peak learning rate and the cosine's floor of every budget run (Adam; the sweep in docs/quality.md).
constexpr double kPeakLearningRate = 5e-3;
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
  spec.embedding_size = kPlanEmbedding;
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

double DropoutFor(double params_per_char) {
  // 0.2 at about 5 parameters per character (the sweep's best 1x256 on 80 kB), more for more.
  return std::clamp(0.13 + 0.1 * std::log10(std::max(params_per_char, 1.0)), 0.1, 0.4);
}

std::vector<BudgetCandidate> BudgetCandidates(int vocab_size) {
  std::vector<BudgetCandidate> candidates;
  for (const auto& shape : kCandidateShapes) {
    BudgetCandidate candidate;
    candidate.num_layers = shape[0];
    candidate.hidden_size = shape[1];
    candidate.parameters = ParameterCount(CandidateSpec(vocab_size, candidate));
    candidates.push_back(candidate);
  }
  return candidates;
}

std::vector<BudgetCandidate> TimeBudgetCandidates(int vocab_size, double seconds_each, double train_seconds,
                                                  double max_parameters, const AgreeOnValue& agree) {
  std::vector<BudgetCandidate> candidates = BudgetCandidates(vocab_size);
  double largest_useful = 0;  // parameters: the smallest candidate's rate over the time, per kMinTokensPerParameter
  for (std::size_t i = 0; i < candidates.size(); ++i) {
    BudgetCandidate& candidate = candidates[i];
    if (i > 0 && (candidate.parameters > largest_useful || candidate.parameters > max_parameters)) break;
    // Timed at the plan's batch over fewer steps: the rate per token hardly depends on the sequence length, and a
    // 2x1024 step of the plan's length takes seconds on two cores.
    const Throughput measured =
        TimeThroughput(CandidateSpec(vocab_size, candidate), kPlanBatch, kTimingSteps, seconds_each);
    candidate.train_tokens_per_s = agree(measured.train_tokens_per_s);
    candidate.eval_tokens_per_s = agree(measured.eval_tokens_per_s);
    if (i == 0) largest_useful = candidate.train_tokens_per_s * train_seconds / kMinTokensPerParameter;
  }
  return candidates;
}

BudgetPlan PlanForBudget(const CorpusFacts& corpus, double minutes, double seconds_spent,
                         const std::vector<BudgetCandidate>& timed) {
  BudgetPlan plan;
  const double train_chars = static_cast<double>(std::max<std::int64_t>(corpus.train_chars, 1));
  const double budget = minutes * 60;
  // Candidates are tried from the largest down; the first that qualifies wins, else the smallest.
  std::vector<BudgetCandidate> by_size = timed;
  std::sort(by_size.begin(), by_size.end(),
            [](const BudgetCandidate& a, const BudgetCandidate& b) { return a.parameters > b.parameters; });
  const auto validation_seconds = [&](const BudgetCandidate& c) {
    return kValidationMargin * static_cast<double>(corpus.val_chars) / std::max(c.eval_tokens_per_s, 1.0) +
           kFixedReserveSeconds;
  };
  const auto tokens = [&](const BudgetCandidate& c) {
    return std::max(0.0, budget - seconds_spent - validation_seconds(c)) * c.train_tokens_per_s;
  };
  plan.chosen = by_size.back();
  const long timed_sizes = std::count_if(timed.begin(), timed.end(),
                                         [](const BudgetCandidate& t) { return t.train_tokens_per_s > 0; });
  // Said as what happened: with one size timed (larger ones were skipped as too big for the time) there were no
  // candidates to compare (a walkthrough read "none of the candidates" after "timing 1 size").
  std::string why = timed_sizes <= 1
                        ? "the smallest size, the only one timed (larger ones cannot read " +
                              Figure("%.0f", kMinTokensPerParameter) + " tokens per parameter in this time)"
                        : "no timed size reads " + Figure("%.0f", kMinTokensPerParameter) +
                              " tokens per parameter with at most " + Figure("%.0f", kMaxParamsPerChar) +
                              " parameters per character, so the smallest is used";
  for (const BudgetCandidate& c : by_size) {
    if (c.train_tokens_per_s <= 0) continue;  // not timed
    if (tokens(c) >= kMinTokensPerParameter * c.parameters && c.parameters <= kMaxParamsPerChar * train_chars) {
      plan.chosen = c;
      why = "the largest that reads at least " + Figure("%.0f", kMinTokensPerParameter) +
            " tokens per parameter with at most " + Figure("%.0f", kMaxParamsPerChar) +
            " parameters per training character";
      break;
    }
  }
  const BudgetCandidate& c = plan.chosen;
  plan.validation_seconds = validation_seconds(c);
  plan.train_seconds = std::max(1.0, budget - seconds_spent - plan.validation_seconds);
  plan.passes = tokens(c) / train_chars;
  const double params_per_char = c.parameters / train_chars;
  const double dropout = DropoutFor(params_per_char);
  const double expected_steps = plan.train_seconds * c.train_tokens_per_s / (kPlanBatch * kPlanSteps);
  const int warmup = std::clamp(static_cast<int>(kWarmupFraction * expected_steps), kMinWarmupSteps, kMaxWarmupSteps);

  plan.settings = {
      Assign("model.cell", "lstm"),
      Assign("model.num_layers", c.num_layers),
      Assign("model.hidden_size", c.hidden_size),
      Assign("model.embedding_size", kPlanEmbedding),
      Assign("model.tie_embeddings", "false"),
      Assign("model.init", "pytorch"),
      Assign("model.locked_dropout", "true"),
      Assign("model.dropout", dropout),
      Assign("model.weight_drop", 0.0),
      Assign("model.embedding_dropout", 0.0),
      Assign("model.recurrent_dropout", 0.0),
      Assign("train.batch_size", kPlanBatch),
      Assign("train.num_steps", kPlanSteps),
      Assign("train.sampler", "consecutive"),
      Assign("train.random_offset", "true"),
      Assign("train.optimizer.name", "adam"),
      Assign("train.optimizer.lr", kPeakLearningRate),
      Assign("train.optimizer.weight_decay", 0.0),
      Assign("train.clip_norm", 1.0),
      Assign("train.lr_schedule.name", "cosine"),
      Assign("train.lr_schedule.warmup_steps", warmup),
      Assign("train.lr_schedule.min_lr", kFloorFraction * kPeakLearningRate),
      Assign("train.epochs", kBudgetEpochs),
      Assign("train.patience", 0),
      Assign("train.max_minutes", plan.train_seconds / 60),
  };
  const int timed_count = static_cast<int>(std::count_if(
      timed.begin(), timed.end(), [](const BudgetCandidate& t) { return t.train_tokens_per_s > 0; }));
  plan.reasons = {
      "budget " + Figure("%g", minutes) + " min: " + Figure("%.0f", plan.train_seconds) + " s of training, " +
          Figure("%.0f", plan.validation_seconds) + " s kept for the final validation of " +
          std::to_string(corpus.val_chars) + " characters, " + Figure("%.0f", seconds_spent) +
          " s spent reading the text and timing " + std::to_string(timed_count) +
          (timed_count == 1 ? " size" : " sizes"),
      "model: LSTM " + std::to_string(c.num_layers) + "x" + std::to_string(c.hidden_size) + ", embedding " +
          std::to_string(kPlanEmbedding) + ", " + Figure("%.2f", c.parameters / 1e6) + " M parameters (" +
          Figure("%.1f", params_per_char) + " per training character), " + Figure("%.0f", c.train_tokens_per_s) +
          " tokens/s here: " + Figure("%.1f", tokens(c) / c.parameters) + " tokens per parameter, about " +
          Figure("%.0f", plan.passes) + " passes over " + std::to_string(corpus.train_chars) + " characters; " + why,
      "regularization for " + Figure("%.1f", params_per_char) + " parameters per character: locked dropout " +
          Figure("%.2f", dropout),
      "schedule: Adam lr " + Figure("%g", kPeakLearningRate) + ", " + std::to_string(warmup) +
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
