// The verdict on a run's figure: against the 5-gram printed at its start, and whether more training would help.
#include "report/run_verdict.h"

#include <cmath>
#include <cstdio>

namespace charlm {

RunVerdict JudgeRun(const RunVerdictFacts& facts) {
  RunVerdict verdict;
  if (facts.best_val_perplexity && facts.baseline_val_perplexity) {
    const double net_bits = std::log2(*facts.best_val_perplexity);
    const double ngram_bits = std::log2(*facts.baseline_val_perplexity);
    char text[512];
    if (net_bits < ngram_bits) {
      std::snprintf(text, sizeof text,
                    "the network beats the Kneser-Ney 5-gram printed at the start (perplexity %.3f) by %.1f %% in "
                    "bits per character (%.3f against %.3f)",
                    *facts.baseline_val_perplexity, 100.0 * (1.0 - net_bits / ngram_bits), net_bits, ngram_bits);
    } else {
      // A run with a time budget ends by its time, not its epochs (--minutes sets a million of them).
      const char* next = facts.budgeted
                             ? "try more minutes, and eval --dynamic --mix-ngram"
                             : "on a small text, try train --corpus FILE --minutes M (a model and regularization "
                               "sized for the text), and eval --dynamic --mix-ngram";
      std::snprintf(text, sizeof text,
                    "the network loses to the Kneser-Ney 5-gram printed at the start (perplexity %.3f) by %.1f %% in "
                    "bits per character (%.3f against %.3f): %s",
                    *facts.baseline_val_perplexity, 100.0 * (net_bits / ngram_bits - 1.0), net_bits, ngram_bits, next);
    }
    verdict.against_baseline = text;
  }
  if (facts.best_val_perplexity) {
    const std::string since_epoch =
        facts.best_epoch > 0 ? " (the best was epoch " + std::to_string(facts.best_epoch) + ")" : std::string();
    if (facts.validations_since_best == 0) {
      verdict.trend = facts.budgeted
                          ? "validation was still improving at the end: more time (--minutes, train.max_minutes) "
                            "would likely lower it further"
                          : "validation was still improving at the end: more epochs (train.epochs) or more time "
                            "(--minutes, train.max_minutes) would likely lower it further";
    } else if (facts.validations_since_best == 1) {
      verdict.trend = "the last validation did not improve on the best" + since_epoch + ": validation is levelling off";
    } else {
      verdict.trend = "validation has not improved for the last " + std::to_string(facts.validations_since_best) +
                      " validations" + since_epoch +
                      ": the model is overfitting its text; more regularization (model.dropout, model.weight_drop, "
                      "model.embedding_dropout) or a smaller model would help more than more epochs";
    }
  }
  return verdict;
}

}  // namespace charlm
