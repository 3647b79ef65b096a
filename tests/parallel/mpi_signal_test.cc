// Stopping a data-parallel run: a stop signal sent to mpirun reaches every process, rank 0 alone says so, and
// last.ckpt is saved once.
#include <doctest/doctest.h>
#include <signal.h>

#include <cstdio>
#include <filesystem>
#include <algorithm>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "format/checkpoint.h"
#include "cli_util.h"
#include "test_util.h"

namespace charlm {
namespace {

namespace fs = std::filesystem;

// mpirun, when the build found MPI; CI runs as root, and the machine may have fewer cores than processes.
const std::string kMpiexec = CHARLM_MPIEXEC;

int Count(const std::string& text, const std::string& part) {
  int count = 0;
  for (std::size_t at = text.find(part); at != std::string::npos; at = text.find(part, at + part.size())) ++count;
  return count;
}

TEST_CASE("mpi: SIGTERM or SIGINT to mpirun -np 2 is acknowledged by rank 0 alone, and last.ckpt is saved once") {
  if (kMpiexec.empty()) {
    std::printf("SKIPPED: mpi signal test: this build has no MPI (apt-get install libopenmpi-dev openmpi-bin, "
                "then rebuild)\n");
    return;
  }
  for (const int signal_number : {SIGTERM, SIGINT}) {
    CAPTURE(signal_number);
    testing::TempDir dir;
    testing::WriteLongRun(dir);
    testing::BackgroundRun job(dir, {"train", "--config", "long.json"},
                               {kMpiexec, "--allow-run-as-root", "--oversubscribe", "-np", "2"});
    // A metrics row: both processes are in the loop (they step together), so a stop signal now means a save.
    REQUIRE_MESSAGE(testing::WaitFor([&] { return !testing::ReadFile(dir / "run" / "metrics.jsonl").empty(); }, 30),
                    job.Log());
    job.Signal(signal_number);
    const int exit_code = job.Wait(30);
    const std::string log = job.Log();
    CHECK_MESSAGE(exit_code != -2, "the job still ran 30 s after the signal: " << log);
    CHECK_MESSAGE(exit_code != 0, log);
    // mpirun passes SIGINT on to its processes as SIGTERM, so the line names the signal they received. Every
    // process receives it; before, each one acknowledged it.
    CHECK_MESSAGE(Count(log, ": stopping") == 1, log);
    CHECK_MESSAGE(Count(log, ": stopping; last.ckpt is saved first (a second signal quits at once without saving)\n") ==
                      1, log);
    CHECK_MESSAGE(Count(log, "charlm: stopped by SIGTERM; saved run/last.ckpt. Resume with: ") == 1, log);
    for (const auto& entry : fs::directory_iterator(dir / "run")) {
      CHECK_MESSAGE(entry.path().filename().string().find(".tmp.") == std::string::npos, entry.path());
    }
    const CheckpointData saved = LoadCheckpoint((dir / "run" / "last.ckpt").string());
    CHECK(saved.trainer_state.at("global_step").get<std::int64_t>() > 0);
  }
}

// The process id of rank `rank` among the processes mpirun (`launcher`) started, or 0 when none is found: its
// children whose environment says OMPI_COMM_WORLD_RANK=rank.
pid_t RankProcess(pid_t launcher, int rank) {
  const std::string wanted = "OMPI_COMM_WORLD_RANK=" + std::to_string(rank);
  for (const auto& entry : fs::directory_iterator("/proc")) {
    const std::string name = entry.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    const std::string stat = testing::ReadFile(entry.path() / "stat");
    const std::size_t close = stat.rfind(')');
    if (close == std::string::npos) continue;
    int parent = 0;
    char state = 0;
    if (std::sscanf(stat.c_str() + close + 1, " %c %d", &state, &parent) != 2 || parent != launcher) continue;
    const std::string environ = testing::ReadFile(entry.path() / "environ");
    std::size_t at = 0;
    while (at < environ.size()) {
      const std::size_t end = std::min(environ.find('\0', at), environ.size());
      if (environ.compare(at, end - at, wanted) == 0) return static_cast<pid_t>(std::stol(name));
      at = end + 1;
    }
  }
  return 0;
}

TEST_CASE("mpi: a rank stopped with SIGSTOP is named once after train.stall_seconds, and the job goes on after "
          "SIGCONT") {
  if (kMpiexec.empty()) {
    std::printf("SKIPPED: mpi stall test: this build has no MPI\n");
    return;
  }
  testing::TempDir dir;
  testing::WriteLongRun(dir);
  testing::BackgroundRun job(dir, {"train", "--config", "long.json", "--set", "train.stall_seconds=2"},
                             {kMpiexec, "--allow-run-as-root", "--oversubscribe", "-np", "2"});
  REQUIRE_MESSAGE(testing::WaitFor([&] { return !testing::ReadFile(dir / "run" / "metrics.jsonl").empty(); }, 30),
                  job.Log());
  const pid_t rank1 = RankProcess(job.pid(), 1);
  REQUIRE_MESSAGE(rank1 > 0, "rank 1's process was not found among mpirun's children");
  REQUIRE(::kill(rank1, SIGSTOP) == 0);
  const std::string named = "charlm: warning: rank 1 (process " + std::to_string(rank1) + " on ";
  const bool warned = testing::WaitFor([&] { return job.Log().find(named) != std::string::npos; }, 15);
  // Twice stall_seconds more: still the one line, and still running (a warning, not an abort).
  std::this_thread::sleep_for(std::chrono::seconds(4));
  const std::string stalled_log = job.Log();
  CHECK(job.Running());
  ::kill(rank1, SIGCONT);
  CHECK_MESSAGE(warned, stalled_log);
  CHECK_MESSAGE(Count(stalled_log, "has made no progress") == 1, stalled_log);
  CHECK_MESSAGE(stalled_log.find("kill -CONT " + std::to_string(rank1)) != std::string::npos, stalled_log);
  // Going on after SIGCONT: more rows, then a clean stop.
  const int rows = Count(testing::ReadFile(dir / "run" / "metrics.jsonl"), "\n");
  CHECK_MESSAGE(testing::WaitFor([&] { return Count(testing::ReadFile(dir / "run" / "metrics.jsonl"), "\n") > rows; },
                                 20),
                job.Log());
  job.Signal(SIGTERM);
  CHECK(job.Wait(30) != -2);
}

}  // namespace
}  // namespace charlm
