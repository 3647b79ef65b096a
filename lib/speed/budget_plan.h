// What `train --minutes M` trains: candidate sizes timed on this machine, and the rule that picks one for the text.
//
// The rule (docs/quality.md has the sweep it comes from):
//   1. Time the candidates (LSTMs of 1 and 2 layers, embedding 64) for a fraction of a second each, smallest
//      first: training and evaluation tokens per second at the plan's batch and sequence length.
//   2. The training time is the budget less what was spent before training and the final validation's estimate.
//   3. A candidate qualifies when, in that time, it reads at least kMinTokensPerParameter tokens per parameter and
//      has at most kMaxParamsPerChar parameters per training character; the largest that qualifies wins (the
//      smallest when none does). On this project's 2-core machine, 3 minutes give a 1x256 LSTM 13 tokens per
//      parameter on an 80 kB text, and it beat 1x512 (1.3) and 2x256 (2.8) there by 0.12 and 0.37 nats.
//   4. Locked dropout grows with the parameters per training character (DropoutFor).
//   5. Adam with a cosine schedule over the training time: a short warm-up, then down to a floor.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace charlm {

struct BudgetCandidate {
  int num_layers = 1;
  int hidden_size = 0;
  double parameters = 0;           // for this vocabulary
  double train_tokens_per_s = 0;   // measured; 0 = not timed (too large to qualify)
  double eval_tokens_per_s = 0;    // measured
};

struct CorpusFacts {
  std::int64_t train_chars = 0;
  std::int64_t val_chars = 0;
  int vocab_size = 0;
};

// model.dropout (locked) for a number of parameters per training character. The plan leaves weight_drop, embedding
// dropout and weight decay off: in the 1- and 3-minute sweeps on this machine (docs/quality.md) a budget's few
// dozen passes underfit rather than overfit, and they cost 0.16 nats at 1 minute.
double DropoutFor(double params_per_char);

struct BudgetPlan {
  BudgetCandidate chosen;
  double passes = 0;                  // times the chosen model reads the training text in train_seconds
  double train_seconds = 0;           // train.max_minutes * 60
  double validation_seconds = 0;      // the final validation's estimate, kept out of train_seconds
  std::vector<std::string> settings;  // config assignments ("model.hidden_size=512"), applied before --set
  std::vector<std::string> reasons;   // what was chosen and why, one line each, for the log
};

// The plan's batch, sequence length and embedding width, also the ones the candidates are timed at.
inline constexpr int kPlanBatch = 32;
inline constexpr int kPlanSteps = 50;
inline constexpr int kPlanEmbedding = 64;
// (layers, width), smallest first.
inline constexpr int kCandidateShapes[][2] = {{1, 128}, {1, 256}, {1, 384}, {2, 256}, {1, 512},
                                              {2, 384}, {2, 512}, {2, 768}, {2, 1024}};
inline constexpr double kMinTokensPerParameter = 10;
inline constexpr double kMaxParamsPerChar = 40;

// The candidates for a vocabulary, smallest first, with their parameter counts and no timings.
std::vector<BudgetCandidate> BudgetCandidates(int vocab_size);

// Rank 0's value on every process of a job (the identity for one process): a job's processes must all plan alike.
using AgreeOnValue = std::function<double(double)>;

// Times the candidates smallest first on random tokens for about seconds_each each, with the BLAS threads as set,
// and stops before the first that cannot qualify in train_seconds even at the smallest one's rate or has more
// than max_parameters; those keep zero rates. The smallest is always timed.
std::vector<BudgetCandidate> TimeBudgetCandidates(int vocab_size, double seconds_each, double train_seconds,
                                                  double max_parameters, const AgreeOnValue& agree);

// The rule above. `seconds_spent`: the budget already used (reading the text, timing the candidates).
BudgetPlan PlanForBudget(const CorpusFacts& corpus, double minutes, double seconds_spent,
                         const std::vector<BudgetCandidate>& timed);

// Training and evaluation tokens per second of a model at (steps, batch) on random tokens, timed for about
// `seconds` with the BLAS threads as set.
struct ModelSpec;
struct Throughput {
  double train_tokens_per_s = 0;
  double eval_tokens_per_s = 0;
};
Throughput TimeThroughput(const ModelSpec& spec, int batch, int steps, double seconds);

// For `train --config FILE --minutes M`: the config's model stays; only the schedule and the stop come from the
// budget (a cosine over the training time down to a floor of the config's lr, as the plan uses), with the final
// validation's time (val_chars at eval_tokens_per_s) kept out of it.
struct BudgetSchedule {
  double train_seconds = 0;
  double validation_seconds = 0;
  std::vector<std::string> settings;
};
BudgetSchedule ScheduleForBudget(double minutes, double seconds_spent, std::int64_t val_chars,
                                 double eval_tokens_per_s, double lr);

}  // namespace charlm
