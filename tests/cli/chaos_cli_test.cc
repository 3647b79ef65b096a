// Chaos: a training run with step checkpoints is killed with SIGKILL at random moments (in steps, validations and
// saves) and resumed each time; every checkpoint on disk must load after each kill, and the final weights must be
// an uninterrupted run's, bit for bit. The same under mpirun -np 2 with one rank killed, where the job must end.
#include <doctest/doctest.h>
#include <signal.h>
#include <sys/types.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "cli_util.h"
#include "format/checkpoint.h"
#include "test_util.h"

namespace charlm {
namespace {

namespace fs = std::filesystem;
using testing::BackgroundRun;
using testing::TempDir;

// The seed of the kill moments: fixed, so a failure replays, and printed, so a changed seed is seen in the log.
constexpr unsigned kChaosSeed = 20261208;

// A run of a few seconds: a step checkpoint every 2 steps and a validation every 5 (a large validation split, so
// validations take a share of the time a kill can land in), each rewriting report.html, no early stop, one thread
// (the bits do not depend on timing), in dir/run. Its length: `lines` of text, `epochs` passes.
void WriteChaosRun(const TempDir& dir, int lines, int epochs) {
  testing::WriteFile(dir / "text.txt", testing::WordText(lines));
  testing::WriteFile(dir / "chaos.json", R"({
  "data": {"corpus": "text.txt", "val_fraction": 0.3},
  "model": {"cell": "gru", "hidden_size": 16},
  "train": {"batch_size": 4, "num_steps": 16, "epochs": )" + std::to_string(epochs) + R"(, "patience": 0,
            "out_dir": "run", "threads": 1, "checkpoint_every_steps": 2, "eval_every_steps": 5},
  "generate": {"every": 0}
})");
}

double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// The line a run logs once its start-up (corpus, checks, lock, resume, baseline) is done, just before its first
// step, new or resumed.
constexpr const char* kTrainingStarts = "Kneser-Ney 5-gram baseline";

// Waits until the run has started training, for at most 30 s. The run's log must not be an earlier run's (the
// new process truncates it only once it runs): see StartRun.
void WaitUntilTraining(const BackgroundRun& run) {
  REQUIRE_MESSAGE(testing::WaitFor([&] { return run.Log().find(kTrainingStarts) != std::string::npos; }, 30),
                  "no start of training within 30 s: " << run.Log());
}

// `charlm ARGS` in the background in dir, its log (dir/train.log) removed first, so that no earlier run's log can
// pass for its own before the new process has truncated it.
std::unique_ptr<BackgroundRun> StartRun(const TempDir& dir, const std::vector<std::string>& args,
                                        const std::vector<std::string>& launcher) {
  fs::remove(dir / "train.log");
  return std::make_unique<BackgroundRun>(dir, args, launcher);
}

// The seconds an uninterrupted run trains (from its start of training to its exit 0), run in the background.
double TrainingSeconds(const TempDir& dir, const std::vector<std::string>& launcher) {
  const std::unique_ptr<BackgroundRun> whole = StartRun(dir, {"train", "--config", "chaos.json"}, launcher);
  WaitUntilTraining(*whole);
  const auto start = std::chrono::steady_clock::now();
  REQUIRE_MESSAGE(whole->Wait(60) == 0, whole->Log());
  return SecondsSince(start);
}

// Every checkpoint in the folder (earlier runs moved aside included) loads: a kill never leaves a torn one under
// a checkpoint's name.
void CheckEveryCheckpointLoads(const fs::path& folder, const std::string& when) {
  int loaded = 0;
  for (const fs::directory_entry& entry :
       fs::exists(folder) ? fs::recursive_directory_iterator(folder) : fs::recursive_directory_iterator()) {
    const std::string name = entry.path().filename().string();
    if (!entry.is_regular_file() || !name.ends_with(".ckpt")) continue;
    INFO(when, ": ", entry.path().string());
    CHECK_NOTHROW(LoadCheckpoint(entry.path().string()));
    ++loaded;
  }
  MESSAGE(when << ": " << loaded << " checkpoint(s) on disk, all load");
}

// The step last.ckpt holds, or -1 when there is none yet.
long long SavedStep(const fs::path& last) {
  if (!fs::exists(last)) return -1;
  return LoadCheckpoint(last.string()).trainer_state.at("global_step").get<long long>();
}

// A temp file of an atomic write that a kill left in the folder (what a kill mid-save leaves), if any.
bool HasTempFile(const fs::path& folder) {
  for (const fs::directory_entry& entry : fs::directory_iterator(folder)) {
    if (entry.path().filename().string().find(".tmp.") != std::string::npos) return true;
  }
  return false;
}

// The arguments that continue the run: a resume once last.ckpt exists, else the start again.
std::vector<std::string> ContinueArgs(const TempDir& dir) {
  if (fs::exists(dir / "run" / "last.ckpt")) return {"train", "--resume", "run/last.ckpt"};
  return {"train", "--config", "chaos.json"};
}

// The processes mpirun started (its children, which run charlm re-executed as /proc/self/exe, so their name is
// "exe"), by their /proc entries; exited ones (zombies) left out.
std::vector<pid_t> RankProcesses(pid_t launcher) {
  std::vector<pid_t> ranks;
  for (const fs::directory_entry& entry : fs::directory_iterator("/proc")) {
    const std::string name = entry.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream stat(entry.path() / "stat");
    std::string line;
    if (!std::getline(stat, line)) continue;
    // pid (comm) state ppid ...: comm may hold spaces, so read after its closing parenthesis.
    const std::size_t close = line.rfind(')');
    if (close == std::string::npos) continue;
    char state = 0;
    long parent = 0;
    if (std::sscanf(line.c_str() + close + 1, " %c %ld", &state, &parent) != 2) continue;
    if (parent == launcher && state != 'Z') ranks.push_back(static_cast<pid_t>(std::stol(name)));
  }
  return ranks;
}

TEST_CASE("chaos: a run killed with SIGKILL 5 times and resumed ends with the uninterrupted run's weights") {
  std::printf("chaos: kill moments drawn with seed %u\n", kChaosSeed);
  TempDir whole_dir, chaos_dir;
  WriteChaosRun(whole_dir, 400, 2);
  WriteChaosRun(chaos_dir, 400, 2);
  const double training_seconds = TrainingSeconds(whole_dir, {});
  const CheckpointData expected = LoadCheckpoint((whole_dir / "run" / "last.ckpt").string());

  // Each kill lands within the first sixth of an uninterrupted run's training after its own start of training, so
  // five of them together never reach the end, whatever the draws.
  std::mt19937 random(kChaosSeed);
  std::uniform_real_distribution<double> moment(0, training_seconds / 6);
  int kills = 0;
  for (int attempt = 0; attempt < 5; ++attempt) {
    const std::vector<std::string> args = ContinueArgs(chaos_dir);
    const double delay = moment(random);
    const std::unique_ptr<BackgroundRun> started = StartRun(chaos_dir, args, {});
    BackgroundRun& run = *started;
    WaitUntilTraining(run);
    std::this_thread::sleep_for(std::chrono::duration<double>(delay));
    REQUIRE_MESSAGE(run.Running(), "the run ended before its kill at " << delay << " s: " << run.Log());
    run.Signal(SIGKILL);
    CHECK(run.Wait() == -1);
    ++kills;
    const bool mid_save = HasTempFile(chaos_dir / "run");
    MESSAGE("kill " << kills << " " << delay << " s into training (" << args[1] << "): last.ckpt at step "
                    << SavedStep(chaos_dir / "run" / "last.ckpt") << std::string(mid_save ? ", a save's temp file left" : ""));
    CheckEveryCheckpointLoads(chaos_dir / "run", "after kill " + std::to_string(kills));
  }
  const testing::RunResult rest = testing::Run(chaos_dir, ContinueArgs(chaos_dir));
  REQUIRE_MESSAGE(rest.exit_code == 0, rest.output);
  CheckEveryCheckpointLoads(chaos_dir / "run", "at the end");
  CHECK_FALSE(HasTempFile(chaos_dir / "run"));  // the resumes removed what the kills left
  const CheckpointData resumed = LoadCheckpoint((chaos_dir / "run" / "last.ckpt").string());
  CHECK(resumed.trainer_state.at("global_step") == expected.trainer_state.at("global_step"));
  CHECK(resumed.params == expected.params);
  CHECK(resumed.optimizer_state == expected.optimizer_state);
  CHECK(kills == 5);
}

TEST_CASE("mpi chaos: one rank of mpirun -np 2 killed with SIGKILL, twice: the job ends, the resumed weights are "
          "the uninterrupted job's") {
  const std::string mpiexec = CHARLM_MPIEXEC;
  if (mpiexec.empty()) {
    std::printf("SKIPPED: mpi chaos test: this build has no MPI (apt-get install libopenmpi-dev openmpi-bin, "
                "then rebuild)\n");
    return;
  }
  std::printf("mpi chaos: kill moments and ranks drawn with seed %u\n", kChaosSeed);
  const std::vector<std::string> launcher = {mpiexec, "--allow-run-as-root", "--oversubscribe", "-np", "2"};
  TempDir whole_dir, chaos_dir;
  WriteChaosRun(whole_dir, 150, 1);  // every step a collective: slower than one process, so a shorter run
  WriteChaosRun(chaos_dir, 150, 1);
  const double training_seconds = TrainingSeconds(whole_dir, launcher);
  const CheckpointData expected = LoadCheckpoint((whole_dir / "run" / "last.ckpt").string());

  std::mt19937 random(kChaosSeed);
  for (int kill = 1; kill <= 2; ++kill) {
    const std::vector<std::string> args = ContinueArgs(chaos_dir);
    const std::unique_ptr<BackgroundRun> started = StartRun(chaos_dir, args, launcher);
    BackgroundRun& job = *started;
    WaitUntilTraining(job);
    // Within the first third of the training's time: two kills never reach its end.
    const double delay = std::uniform_real_distribution<double>(0, training_seconds / 3)(random);
    std::this_thread::sleep_for(std::chrono::duration<double>(delay));
    const std::vector<pid_t> ranks = RankProcesses(job.pid());
    REQUIRE_MESSAGE(ranks.size() == 2, "the job ended before its kill at " << delay << " s: " << job.Log());
    const pid_t victim = ranks[std::uniform_int_distribution<std::size_t>(0, 1)(random)];
    ::kill(victim, SIGKILL);
    const auto killed_at = std::chrono::steady_clock::now();
    const int exit_code = job.Wait(60);
    const std::string log = job.Log();
    REQUIRE_MESSAGE(exit_code != -2, "the job still ran 60 s after one rank was killed: " << log);
    CHECK_MESSAGE(exit_code != 0, log);
    MESSAGE("kill " << kill << ": rank process " << victim << " " << delay << " s into training; the job ended "
                    << SecondsSince(killed_at) << " s later; last.ckpt at step "
                    << SavedStep(chaos_dir / "run" / "last.ckpt"));
    CheckEveryCheckpointLoads(chaos_dir / "run", "after mpi kill " + std::to_string(kill));
  }
  const std::unique_ptr<BackgroundRun> rest = StartRun(chaos_dir, ContinueArgs(chaos_dir), launcher);
  REQUIRE_MESSAGE(rest->Wait(60) == 0, rest->Log());
  CheckEveryCheckpointLoads(chaos_dir / "run", "at the end");
  const CheckpointData resumed = LoadCheckpoint((chaos_dir / "run" / "last.ckpt").string());
  CHECK(resumed.trainer_state.at("global_step") == expected.trainer_state.at("global_step"));
  CHECK(resumed.params == expected.params);
  CHECK(resumed.optimizer_state == expected.optimizer_state);
}

}  // namespace
}  // namespace charlm
