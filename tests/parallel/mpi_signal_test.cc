// Stopping a data-parallel run: a stop signal sent to mpirun reaches every process, rank 0 alone says so, and
// last.ckpt is saved once.
#include <doctest/doctest.h>
#include <signal.h>

#include <cstdio>
#include <filesystem>
#include <string>
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

}  // namespace
}  // namespace charlm
