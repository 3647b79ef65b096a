// A new run's config from `train --corpus/--config, --minutes, --out, --set`: the budget plan's or the config's.
#include <spdlog/spdlog.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <limits>

#include "cli/commands.h"
#include "model/restore.h"
#include "speed/budget_plan.h"
#include "text/dataset.h"
#include "text/documents.h"
#include "util/errors.h"

namespace charlm {
namespace {

// Seconds each candidate is timed for: the few that can qualify in a few seconds, a small part of any budget.
constexpr double kSecondsPerCandidate = 0.6;
constexpr double kMinBudgetMinutes = 0.1;  // 6 s: a smoke test's budget
// One week: a budget past it is a typo (hours given as minutes twice over), and seconds stay exact in a double.
constexpr double kMaxBudgetMinutes = 7 * 24 * 60;

double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// The most characters a validation scores under --minutes unless train.eval_max_chars says otherwise: tens of
// seconds at the evaluation speeds of the sizes a budget picks on a 2-core machine.
constexpr std::int64_t kBudgetValidationChars = 5'000'000;

// Rank 0's value on every process (a job's processes must train one model, so they take one process's timings).
// Whole tokens per second are exact enough, and Workers::Max carries integers.
double RankZeros(Workers* workers, double value) {
  if (workers == nullptr || workers->size() == 1) return value;
  const double clamped = std::clamp(std::round(value), 0.0, static_cast<double>(std::numeric_limits<int>::max()));
  return workers->Max(workers->rank() == 0 ? static_cast<int>(clamped) : -1);
}

std::string CorpusStem(const std::string& corpus) {
  const std::string name = CorpusRunName(corpus);
  return name.empty() ? "run" : name;
}

}  // namespace

Config ResolveNewRunConfig(const TrainCommand& command, Workers* workers, TrainEnvironment* read) {
  const auto started = std::chrono::steady_clock::now();
  if (command.minutes && !(*command.minutes >= kMinBudgetMinutes && *command.minutes <= kMaxBudgetMinutes)) {
    throw UserError(fmt::format("--minutes {:g}: expected a budget of {:g} to {:g} minutes (the whole run, final "
                                "validation included); e.g. --minutes 15",
                                *command.minutes, kMinBudgetMinutes, kMaxBudgetMinutes));
  }
  if (command.config.empty() && command.corpus.empty()) {
    throw UserError(
        "train needs a text: --corpus FILE (e.g. charlm train --corpus notes.txt --minutes 15), or --config FILE, "
        "or --resume CKPT to continue a run");
  }
  // The assignments before the user's --set: the corpus and out folder the options name, then the plan's.
  std::vector<std::string> first;
  if (!command.corpus.empty()) first.push_back("data.corpus=" + command.corpus);
  if (command.config.empty()) first.push_back("train.out_dir=" + (std::filesystem::path("runs") / CorpusStem(command.corpus)).string());
  std::vector<std::string> last = command.overrides;
  if (!command.out.empty()) last.push_back("train.out_dir=" + command.out);

  const auto resolve = [&](const std::vector<std::string>& planned) {
    std::vector<std::string> overrides = first;
    overrides.insert(overrides.end(), planned.begin(), planned.end());
    overrides.insert(overrides.end(), last.begin(), last.end());
    if (!command.config.empty()) return LoadConfigFile(command.config, overrides);
    nlohmann::json j = ConfigToJson(Config{});
    for (const std::string& assignment : overrides) ApplyOverride(j, assignment);
    Config config = ConfigFromJson(j, overrides);
    ValidateConfig(config);
    return config;
  };
  Config config = resolve({});
  if (!command.minutes) return config;
  const double minutes = *command.minutes;

  auto loaded = std::make_shared<Dataset>(LoadDataset(config.data));
  const Dataset& data = *loaded;
  if (read != nullptr) {
    read->preloaded = loaded;
    read->preloaded_data = ConfigToJson(config)["data"];
  }
  // The validations score at most train.eval_max_chars; without it, a budget caps a long validation split (a
  // source tree's tenth is a hundred million characters, minutes of scoring) at kBudgetValidationChars.
  std::vector<std::string> validation_cap;
  std::int64_t validated = data.val_chars();
  if (config.train.eval_max_chars > 0) {
    validated = std::min(validated, config.train.eval_max_chars);
  } else if (validated > kBudgetValidationChars) {
    validated = kBudgetValidationChars;
    validation_cap.push_back("train.eval_max_chars=" + std::to_string(kBudgetValidationChars));
    spdlog::info("the validation split has {} characters: each validation scores its first {} "
                 "(train.eval_max_chars; --set train.eval_max_chars=0 for all of it)",
                 data.val_chars(), kBudgetValidationChars);
  }
  if (!command.config.empty()) {
    // The config's model stays: only its evaluation speed is timed, for the final validation's share.
    const ModelSpec spec = MakeModelSpec(config.model, data.vocab.size());
    const Throughput measured = TimeThroughput(spec, config.train.batch_size, config.train.num_steps, 0.5);
    const double eval_rate = RankZeros(workers, measured.eval_tokens_per_s);
    const double spent = RankZeros(workers, SecondsSince(started));
    const BudgetSchedule schedule =
        ScheduleForBudget(minutes, spent, validated, eval_rate, config.train.optimizer.lr);
    spdlog::info("budget {:g} min: {:.0f} s of training with a cosine schedule, {:.0f} s kept for the final "
                 "validation; the model is {}'s",
                 minutes, schedule.train_seconds, schedule.validation_seconds, command.config);
    std::vector<std::string> settings = validation_cap;
    settings.insert(settings.end(), schedule.settings.begin(), schedule.settings.end());
    return resolve(settings);
  }
  spdlog::info("timing model sizes on this machine for the {:g}-minute budget...", minutes);
  // A job reads, and validates (sharded), as many tokens per second as its processes together; each times on its
  // own share of the cores.
  const double processes = workers == nullptr ? 1.0 : static_cast<double>(workers->size());
  const AgreeOnValue agree = [&](double value) { return processes * RankZeros(workers, value); };
  std::vector<BudgetCandidate> timed =
      TimeBudgetCandidates(data.vocab.size(), kSecondsPerCandidate, minutes * 60 - SecondsSince(started),
                           kMaxParamsPerChar * static_cast<double>(data.train_chars()), agree);
  CorpusFacts facts;
  facts.train_chars = data.train_chars();
  facts.val_chars = validated;
  facts.vocab_size = data.vocab.size();
  const BudgetPlan plan = PlanForBudget(facts, minutes, RankZeros(workers, SecondsSince(started)), timed);
  for (const std::string& reason : plan.reasons) spdlog::info("{}", reason);
  if (!command.overrides.empty()) spdlog::info("your --set assignments come after the plan's and win over them");
  std::vector<std::string> settings = validation_cap;
  settings.insert(settings.end(), plan.settings.begin(), plan.settings.end());
  return resolve(settings);
}

}  // namespace charlm
