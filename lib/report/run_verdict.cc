// The verdict on a run's figure: against the 5-gram printed at its start, and whether more training would help.
#include "report/run_verdict.h"

#include <cmath>
#include <cstdio>

namespace charlm {
namespace {

// How to give the run more time, in the form its kind of run takes: a fine-tuning run refuses --minutes, and a
// budgeted run ends by its time, not its epochs (--minutes sets a million of them).
std::string MoreTime(const RunVerdictFacts& facts) {
  if (facts.fine_tuned) return "more time (train.max_minutes) or epochs (train.epochs)";
  if (facts.budgeted) return "more time (--minutes, train.max_minutes)";
  return "more epochs (train.epochs) or more time (--minutes, train.max_minutes)";
}

}  // namespace

RunVerdict JudgeRun(const RunVerdictFacts& facts) {
  RunVerdict verdict;
  const bool improving = facts.validations_since_best == 0;
  if (facts.best_val_perplexity && facts.baseline_val_perplexity) {
    const double net_bits = std::log2(*facts.best_val_perplexity);
    const double ngram_bits = std::log2(*facts.baseline_val_perplexity);
    const char* baseline = facts.on_page ? "the Kneser-Ney 5-gram baseline" : "the Kneser-Ney 5-gram printed at the start";
    char text[512];
    if (net_bits < ngram_bits) {
      std::snprintf(text, sizeof text, "the network beats %s (perplexity %.3f) by %.1f %% in bits per character (%.3f "
                    "against %.3f)", baseline, *facts.baseline_val_perplexity, 100.0 * (1.0 - net_bits / ngram_bits),
                    net_bits, ngram_bits);
      verdict.against_baseline = text;
    } else {
      std::snprintf(text, sizeof text, "the network loses to %s (perplexity %.3f) by %.1f %% in bits per character "
                    "(%.3f against %.3f): ", baseline, *facts.baseline_val_perplexity,
                    100.0 * (net_bits / ngram_bits - 1.0), net_bits, ngram_bits);
      // What to try follows from the trend: time while it improves, a model sized for the text once it overfits.
      std::string next = improving ? "try " + MoreTime(facts)
                         : facts.budgeted || facts.fine_tuned
                             ? "it overfits (below)"
                             : "on a small text, try train --corpus FILE --minutes M (a model and regularization sized "
                               "for the text)";
      next += "; dynamic evaluation, which adapts to the text as it scores, often closes the gap: " +
              (facts.dynamic_eval_command.empty() ? std::string("eval --dynamic --mix-ngram") : facts.dynamic_eval_command);
      verdict.against_baseline = text + next;
    }
  }
  if (facts.best_val_perplexity) {
    const std::string since_epoch =
        facts.best_epoch > 0 ? " (the best was epoch " + std::to_string(facts.best_epoch) + ")" : std::string();
    if (improving) {
      verdict.trend = "validation was still improving at the end: " + MoreTime(facts) + " would likely lower it further";
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
