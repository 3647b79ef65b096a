// The one-process Workers, and JoinWorkers for a build without MPI.
#include "dist/workers.h"

#include <algorithm>
#include <cstdlib>

#include "errors.h"

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
