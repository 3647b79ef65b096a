// The one-process Workers, and JoinWorkers for a build without MPI.
#include "parallel/workers.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "util/errors.h"

namespace charlm {
namespace {

class SingleWorker final : public Workers {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  int local_size() const override { return 1; }
  void SumInPlace(std::span<float>) override {}
  void SumInPlace(std::span<double>) override {}
  void StartSum(std::span<float>) override {}
  void PollSums() override {}
  void FinishSums() override {}
  int Max(int value) override { return value; }
  void AllGather(std::span<const float> mine, std::span<float> all) override {
    std::copy(mine.begin(), mine.end(), all.begin());
  }
  void AllGather(std::span<const std::uint64_t> mine, std::span<std::uint64_t> all) override {
    std::copy(mine.begin(), mine.end(), all.begin());
  }
  [[noreturn]] void Abort(int exit_code) override { std::exit(exit_code); }
};

}  // namespace

std::unique_ptr<Workers> SingleProcess() { return std::make_unique<SingleWorker>(); }

bool StartedByLauncher() {
  return std::getenv("OMPI_COMM_WORLD_SIZE") != nullptr || std::getenv("PMIX_RANK") != nullptr ||
         std::getenv("PMI_RANK") != nullptr;
}

void ExecUnderMpirun(int processes, int argc, char** argv) {
#ifdef CHARLM_MPIEXEC
  std::error_code ec;
  const std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", ec);
  std::vector<std::string> args{CHARLM_MPIEXEC, "-np", std::to_string(processes), "--oversubscribe", "--bind-to",
                                "none"};
  if (::geteuid() == 0) args.emplace_back("--allow-run-as-root");
  args.push_back(ec ? std::string(argv[0]) : self.string());
  for (int k = 1; k < argc; ++k) args.emplace_back(argv[k]);
  std::vector<char*> c_args;
  for (std::string& arg : args) c_args.push_back(arg.data());
  c_args.push_back(nullptr);
  ::execv(c_args[0], c_args.data());
  const int error = errno;  // before the message is built: building it allocates, which may set errno
  throw UserError(std::string("--np ") + std::to_string(processes) + " starts " + CHARLM_MPIEXEC + ", which failed (" +
                  std::strerror(error) + "): install openmpi-bin (bash scripts/setup.sh), or run without --np");
#else
  (void)argc;
  (void)argv;
  throw UserError("--np " + std::to_string(processes) +
                  " runs under mpirun, but this charlm was built without MPI (charlm --version says so): install "
                  "libopenmpi-dev and rebuild (bash scripts/setup.sh), or run without --np");
#endif
}

#ifndef CHARLM_HAVE_MPI
std::unique_ptr<Workers> JoinWorkers(int*, char***) {
  // Open MPI's launcher sets this in every process it starts.
  const char* size = std::getenv("OMPI_COMM_WORLD_SIZE");
  if (size != nullptr && std::atoi(size) > 1) {
    throw UserError(std::string("mpirun started ") + size +
                    " processes, but this charlm was built without MPI (charlm --version says so), so each would "
                    "train alone: install libopenmpi-dev and rebuild (bash scripts/setup.sh), or run without mpirun");
  }
  return SingleProcess();
}

std::string MpiDescription() {
  return "MPI: none (built without MPI; install libopenmpi-dev and rebuild for mpirun -np N)";
}
#endif

}  // namespace charlm
