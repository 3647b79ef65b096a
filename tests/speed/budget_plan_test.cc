// The budget plan's rule: which candidate a corpus and a time budget get, the time kept for validation, the settings.
#include "speed/budget_plan.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <string>
#include <vector>

namespace charlm {
namespace {

// Candidates for a vocabulary of 80 whose training rate is inversely proportional to their parameters, starting
// at `smallest_rate` for the smallest; evaluation three times as fast.
std::vector<BudgetCandidate> Timed(double smallest_rate = 100000) {
  std::vector<BudgetCandidate> candidates = BudgetCandidates(80);
  for (BudgetCandidate& c : candidates) {
    c.train_tokens_per_s = smallest_rate * candidates.front().parameters / c.parameters;
    c.eval_tokens_per_s = 3 * c.train_tokens_per_s;
  }
  return candidates;
}

std::string Setting(const BudgetPlan& plan, const std::string& key) {
  for (const std::string& s : plan.settings) {
    if (s.starts_with(key + "=")) return s.substr(key.size() + 1);
  }
  return "(unset)";
}

double TokensPerParameter(const BudgetPlan& plan) {
  return plan.train_seconds * plan.chosen.train_tokens_per_s / plan.chosen.parameters;
}

TEST_CASE("budget plan: the candidates grow, smallest first") {
  const std::vector<BudgetCandidate> candidates = BudgetCandidates(80);
  REQUIRE(candidates.size() == std::size(kCandidateShapes));
  for (std::size_t i = 1; i < candidates.size(); ++i) CHECK(candidates[i].parameters > candidates[i - 1].parameters);
}

TEST_CASE("budget plan: the largest candidate that reads kMinTokensPerParameter tokens per parameter") {
  const CorpusFacts big{900000, 100000, 80};
  const BudgetPlan five = PlanForBudget(big, 5, 5, Timed());
  const BudgetPlan hour = PlanForBudget(big, 60, 5, Timed());
  CHECK(TokensPerParameter(five) >= kMinTokensPerParameter);
  CHECK(TokensPerParameter(hour) >= kMinTokensPerParameter);
  CHECK(hour.chosen.parameters > five.chosen.parameters);  // a longer budget buys a larger model
  // The next larger candidate would not have qualified.
  const std::vector<BudgetCandidate> all = Timed();
  for (const BudgetCandidate& c : all) {
    if (c.parameters > five.chosen.parameters) {
      CHECK(c.train_tokens_per_s * five.train_seconds < kMinTokensPerParameter * c.parameters * 1.01);
      break;
    }
  }
  CHECK(Setting(five, "model.hidden_size") == std::to_string(five.chosen.hidden_size));
  CHECK(Setting(five, "model.num_layers") == std::to_string(five.chosen.num_layers));
  CHECK(Setting(five, "model.embedding_size") == std::to_string(kPlanEmbedding));
  // A small text is capped by parameters per character, however fast the machine.
  const BudgetPlan small = PlanForBudget({60000, 6000, 80}, 60, 5, Timed(1e9));
  CHECK(small.chosen.parameters <= kMaxParamsPerChar * 60000);
  CHECK(small.chosen.parameters < all.back().parameters);
}

TEST_CASE("budget plan: the smallest candidate when none qualifies, and candidates never timed are skipped") {
  const BudgetPlan plan = PlanForBudget({900000, 100000, 80}, 1, 5, Timed(100));
  CHECK(plan.chosen.hidden_size == 128);
  CHECK(plan.chosen.num_layers == 1);
  CHECK(plan.reasons[1].find("the smallest is used") != std::string::npos);
  std::vector<BudgetCandidate> partly = Timed(1e9);
  for (std::size_t i = 2; i < partly.size(); ++i) partly[i].train_tokens_per_s = partly[i].eval_tokens_per_s = 0;
  const BudgetPlan two = PlanForBudget({900000, 100000, 80}, 60, 5, partly);
  CHECK(two.chosen.parameters == partly[1].parameters);
}

TEST_CASE("budget plan: the final validation and the time already spent come out of the training time") {
  const BudgetPlan plan = PlanForBudget({900000, 100000, 80}, 5, 7, Timed());
  const double eval_rate = plan.chosen.eval_tokens_per_s;
  CHECK(plan.validation_seconds == doctest::Approx(1.3 * 100000 / eval_rate + 3));
  CHECK(plan.train_seconds == doctest::Approx(300 - 7 - plan.validation_seconds));
  CHECK(std::stod(Setting(plan, "train.max_minutes")) == doctest::Approx(plan.train_seconds / 60).epsilon(1e-5));
  CHECK(Setting(plan, "train.lr_schedule.name") == "cosine");
  CHECK(Setting(plan, "model.locked_dropout") == "true");
  CHECK(std::stod(Setting(plan, "train.lr_schedule.min_lr")) < std::stod(Setting(plan, "train.optimizer.lr")));
  const int warmup = std::stoi(Setting(plan, "train.lr_schedule.warmup_steps"));
  CHECK(warmup >= 10);
  CHECK(warmup <= 200);
}

TEST_CASE("budget plan: dropout grows with the parameters per training character, within bounds") {
  CHECK(DropoutFor(0.5) < DropoutFor(10));
  CHECK(DropoutFor(10) < DropoutFor(1000));
  CHECK(DropoutFor(5) == doctest::Approx(0.2).epsilon(0.05));
  CHECK(DropoutFor(0.01) >= 0.1);
  CHECK(DropoutFor(1e9) <= 0.4);
}

TEST_CASE("budget plan: timing stops before candidates too large to qualify, and the smallest is always timed") {
  // 2 s of training: only the smallest candidates can read 10 tokens per parameter; the loop times at most those.
  int agreed = 0;
  const std::vector<BudgetCandidate> timed =
      TimeBudgetCandidates(80, 0.05, 2, 1e12, [&](double value) { ++agreed; return value; });
  CHECK(timed.front().train_tokens_per_s > 0);
  CHECK(timed.back().train_tokens_per_s == 0);  // 2x1024 is never timed for 2 s
  CHECK(agreed % 2 == 0);                       // train and eval rates, both agreed, for each timed candidate
  // A parameter cap below the second candidate times the smallest alone.
  const std::vector<BudgetCandidate> capped = TimeBudgetCandidates(80, 0.05, 1e6, 1, [](double v) { return v; });
  CHECK(capped[0].train_tokens_per_s > 0);
  CHECK(capped[1].train_tokens_per_s == 0);
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
