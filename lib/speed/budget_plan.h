// What `train --minutes M` trains: candidate sizes timed on this machine, and the rule that picks one for the text.
//
// The rule (docs/quality.md has the sweep it comes from):
//   1. Time each candidate (2-layer LSTMs, tied embeddings, widths kCandidateWidths) for a fraction of a second:
//      training and evaluation tokens per second at the plan's batch and sequence length.
//   2. The training time is the budget less what was spent before training and the final validation's estimate.
//   3. A candidate qualifies when, in that time, it reads the training text at least kMinPasses times and has at
//      most kMaxParamsPerChar parameters per training character; the widest that qualifies wins (the narrowest
//      candidate when none does).
//   4. Regularization grows with the parameters per training character r: the locked dropout, DropConnect on the
//      recurrent weights and embedding dropout (RegularizationFor).
//   5. AdamW with a cosine schedule over the training time: a short warm-up, then down to a floor.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace charlm {

struct BudgetCandidate {
  int num_layers = 2;
  int hidden_size = 0;             // = embedding_size (tied)
  double parameters = 0;           // for this vocabulary
  double train_tokens_per_s = 0;   // measured
  double eval_tokens_per_s = 0;    // measured
};

struct CorpusFacts {
  std::int64_t train_chars = 0;
  std::int64_t val_chars = 0;
  int vocab_size = 0;
};

// The settings RegularizationFor gives a number of parameters per training character.
struct Regularization {
  double dropout = 0;            // model.dropout, locked
  double weight_drop = 0;        // model.weight_drop
  double embedding_dropout = 0;  // model.embedding_dropout
  double weight_decay = 0;       // train.optimizer.weight_decay (AdamW)
};
Regularization RegularizationFor(double params_per_char);

struct BudgetPlan {
  BudgetCandidate chosen;
  double passes = 0;                  // times the chosen model reads the training text in train_seconds
  double train_seconds = 0;           // train.max_minutes * 60
  double validation_seconds = 0;      // the final validation's estimate, kept out of train_seconds
  std::vector<std::string> settings;  // config assignments ("model.hidden_size=512"), applied before --set
  std::vector<std::string> reasons;   // what was chosen and why, one line each, for the log
};

// The plan's batch and sequence length, also the ones the candidates are timed at.
inline constexpr int kPlanBatch = 32;
inline constexpr int kPlanSteps = 100;
inline constexpr int kCandidateWidths[] = {128, 256, 384, 512, 768, 1024};
inline constexpr double kMinPasses = 8;
inline constexpr double kMaxParamsPerChar = 40;

// The candidates for a vocabulary, with their parameter counts and no timings.
std::vector<BudgetCandidate> BudgetCandidates(int vocab_size);

// Times each candidate of at most max_parameters (kMaxParamsPerChar times the training characters) on random
// tokens for about seconds_each, with the BLAS threads as set; the others keep zero throughputs.
std::vector<BudgetCandidate> TimeBudgetCandidates(int vocab_size, double seconds_each, double max_parameters);

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
