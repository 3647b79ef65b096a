// What a run's best figure means to its user, said alike at the end of `train` and atop its report page.
#pragma once

#include <optional>
#include <string>

namespace charlm {

struct RunVerdictFacts {
  std::optional<double> best_val_perplexity;      // none without a validation split
  std::optional<double> baseline_val_perplexity;  // the Kneser-Ney 5-gram's on the same split, when it scored it whole
  int best_epoch = 0;                             // 1-based; 0 when unknown (before a resume)
  int validations_since_best = 0;                 // 0: the last validation was the best
  bool budgeted = false;                          // a time budget (--minutes) ends the run, not its epochs
  bool fine_tuned = false;                        // train --init-from, which refuses --minutes
  bool on_page = false;                           // the report page, where nothing was "printed at the start"
  // The dynamic evaluation to suggest, as a command that runs when pasted; empty: named by its options only.
  std::string dynamic_eval_command;
};

// Each sentence is empty when its facts are missing.
struct RunVerdict {
  std::string against_baseline;  // beats or loses to the 5-gram, by how much in bits per character, and what to try
  std::string trend;             // still improving, levelling off, or overfitting since epoch N, and what to try
};

RunVerdict JudgeRun(const RunVerdictFacts& facts);

}  // namespace charlm
