// The budget plan's rule: which candidate a corpus and a time budget get, the time kept for validation, the settings.
#include "speed/budget_plan.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <string>
#include <vector>

namespace charlm {
namespace {

// Candidates for a vocabulary of 80 whose training rate halves with each wider one: 2x128 at 160k tokens/s down.
std::vector<BudgetCandidate> Timed(double fastest = 160000) {
  std::vector<BudgetCandidate> candidates = BudgetCandidates(80);
  double rate = fastest;
  for (BudgetCandidate& c : candidates) {
    c.train_tokens_per_s = rate;
    c.eval_tokens_per_s = 3 * rate;
    rate /= 2;
  }
  return candidates;
}

std::string Setting(const BudgetPlan& plan, const std::string& key) {
  for (const std::string& s : plan.settings) {
    if (s.starts_with(key + "=")) return s.substr(key.size() + 1);
  }
  return "(unset)";
}

TEST_CASE("budget plan: the widest candidate that reads the text kMinPasses times within the parameter cap") {
  // 1 MB in 60 minutes: 2x1024 at 5k tokens/s reads 3570 s * 5000 / 900k = 19.8 passes, under the parameter cap.
  const CorpusFacts big{900000, 100000, 80};
  const BudgetPlan hour = PlanForBudget(big, 60, 5, Timed());
  CHECK(hour.chosen.hidden_size == 1024);
  // The same text in 5 minutes: 2x1024 reads it 1.6 times, 2x512 (20k tokens/s) 6.5, 2x384 (40k) 13.
  const BudgetPlan five = PlanForBudget(big, 5, 5, Timed());
  CHECK(five.chosen.hidden_size == 384);
  CHECK(five.passes >= kMinPasses);
  CHECK(Setting(five, "model.hidden_size") == "384");
  CHECK(Setting(five, "model.embedding_size") == "384");
  CHECK(Setting(five, "model.tie_embeddings") == "true");
  // A small text is capped by parameters per character: 60k characters allow 2.4 M parameters, so 2x384
  // (2.4 M with 80 characters) fits and 2x512 (4.2 M) does not, however fast.
  const BudgetPlan small = PlanForBudget({60000, 6000, 80}, 60, 5, Timed(1e9));
  CHECK(small.chosen.hidden_size == 384);
  CHECK(small.chosen.parameters <= kMaxParamsPerChar * 60000);
}

TEST_CASE("budget plan: the narrowest candidate when none qualifies, and candidates never timed are skipped") {
  std::vector<BudgetCandidate> slow = Timed(100);
  const BudgetPlan plan = PlanForBudget({900000, 100000, 80}, 1, 5, slow);
  CHECK(plan.chosen.hidden_size == 128);
  CHECK(plan.reasons[1].find("the narrowest is used") != std::string::npos);
  // A wide candidate left untimed (zero rates) is never chosen, however many passes it would promise.
  std::vector<BudgetCandidate> partly = Timed(1e9);
  for (BudgetCandidate& c : partly) {
    if (c.hidden_size > 256) c.train_tokens_per_s = c.eval_tokens_per_s = 0;
  }
  CHECK(PlanForBudget({900000, 100000, 80}, 60, 5, partly).chosen.hidden_size == 256);
}

TEST_CASE("budget plan: the final validation and the time already spent come out of the training time") {
  const std::vector<BudgetCandidate> timed = Timed();
  const BudgetPlan plan = PlanForBudget({900000, 100000, 80}, 5, 7, timed);
  const double eval_rate = plan.chosen.eval_tokens_per_s;
  CHECK(plan.validation_seconds == doctest::Approx(1.3 * 100000 / eval_rate + 3));
  CHECK(plan.train_seconds == doctest::Approx(300 - 7 - plan.validation_seconds));
  CHECK(std::stod(Setting(plan, "train.max_minutes")) == doctest::Approx(plan.train_seconds / 60).epsilon(1e-5));
  CHECK(Setting(plan, "train.lr_schedule.name") == "cosine");
  CHECK(Setting(plan, "train.optimizer.name") == "adamw");
  CHECK(std::stod(Setting(plan, "train.lr_schedule.min_lr")) < std::stod(Setting(plan, "train.optimizer.lr")));
  const int warmup = std::stoi(Setting(plan, "train.lr_schedule.warmup_steps"));
  CHECK(warmup >= 10);
  CHECK(warmup <= 200);
}

TEST_CASE("budget plan: regularization grows with the parameters per training character") {
  const Regularization light = RegularizationFor(0.5), middle = RegularizationFor(10), heavy = RegularizationFor(1000);
  CHECK(light.dropout < middle.dropout);
  CHECK(middle.dropout < heavy.dropout);
  CHECK(light.weight_drop < heavy.weight_drop);
  CHECK(light.embedding_dropout == 0);
  CHECK(heavy.embedding_dropout > 0);
  CHECK(heavy.dropout < 0.5);
  CHECK(heavy.weight_drop <= 0.5);
}

TEST_CASE("budget plan: with a config, only the schedule and the stop") {
  const BudgetSchedule schedule = ScheduleForBudget(15, 2, 50000, 50000, 0.004);
  CHECK(schedule.validation_seconds == doctest::Approx(1.3 + 3));
  CHECK(schedule.train_seconds == doctest::Approx(900 - 2 - 4.3));
  for (const std::string& s : schedule.settings) CHECK_FALSE(s.starts_with("model."));
  CHECK(std::find(schedule.settings.begin(), schedule.settings.end(), "train.lr_schedule.name=cosine") !=
        schedule.settings.end());
  CHECK(std::find(schedule.settings.begin(), schedule.settings.end(), "train.lr_schedule.min_lr=0.0002") !=
        schedule.settings.end());
}

}  // namespace
}  // namespace charlm
