// Workers over MPI's world communicator (compiled only when CMake finds an MPI): sums, gathers and the abort.
#include <mpi.h>

#include <cstdlib>
#include <vector>

#include "parallel/workers.h"
#include "util/errors.h"

namespace charlm {
namespace {

int CountOf(std::size_t n) {
  // One collective per buffer: a model of 2^31 floats (8 GB) is far beyond what this trainer targets.
  if (n > static_cast<std::size_t>(INT32_MAX)) throw UserError("a buffer of " + std::to_string(n) + " values is too large for one MPI call");
  return static_cast<int>(n);
}

class MpiWorkers final : public Workers {
 public:
  MpiWorkers() {
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
    MPI_Comm local;
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &local);
    MPI_Comm_size(local, &local_size_);
    MPI_Comm_free(&local);
    requests_.reserve(8);  // a step starts a few sums: no allocation inside it
  }
  ~MpiWorkers() override {
    FinishSums();
    MPI_Finalize();
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  int local_size() const override { return local_size_; }

  void SumInPlace(std::span<float> values) override {
    MPI_Allreduce(MPI_IN_PLACE, values.data(), CountOf(values.size()), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
  }
  void SumInPlace(std::span<double> values) override {
    MPI_Allreduce(MPI_IN_PLACE, values.data(), CountOf(values.size()), MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
  }
  void StartSum(std::span<float> values) override {
    MPI_Request& request = requests_.emplace_back(MPI_REQUEST_NULL);
    MPI_Iallreduce(MPI_IN_PLACE, values.data(), CountOf(values.size()), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD, &request);
  }
  void PollSums() override {
    if (requests_.empty()) return;
    int done = 0;
    MPI_Testall(static_cast<int>(requests_.size()), requests_.data(), &done, MPI_STATUSES_IGNORE);
  }
  void FinishSums() override {
    if (requests_.empty()) return;
    MPI_Waitall(static_cast<int>(requests_.size()), requests_.data(), MPI_STATUSES_IGNORE);
    requests_.clear();
  }
  int Max(int value) override {
    MPI_Allreduce(MPI_IN_PLACE, &value, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    return value;
  }
  void AllGather(std::span<const float> mine, std::span<float> all) override {
    MPI_Allgather(mine.data(), CountOf(mine.size()), MPI_FLOAT, all.data(), CountOf(mine.size()), MPI_FLOAT,
                  MPI_COMM_WORLD);
  }
  void AllGather(std::span<const std::uint64_t> mine, std::span<std::uint64_t> all) override {
    MPI_Allgather(mine.data(), CountOf(mine.size()), MPI_UINT64_T, all.data(), CountOf(mine.size()), MPI_UINT64_T,
                  MPI_COMM_WORLD);
  }
  [[noreturn]] void Abort(int exit_code) override {
    MPI_Abort(MPI_COMM_WORLD, exit_code);
    std::_Exit(exit_code);  // MPI_Abort does not return; this keeps [[noreturn]] true if an MPI's did
  }

 private:
  int rank_ = 0, size_ = 1, local_size_ = 1;
  std::vector<MPI_Request> requests_;  // sums started and not yet finished
};

}  // namespace

std::unique_ptr<Workers> JoinWorkers(int* argc, char*** argv) {
  // Without a launcher MPI is left alone: an Open MPI singleton start forks helper daemons for nothing.
  if (!StartedByLauncher()) return SingleProcess();
  MPI_Init(argc, argv);
  return std::make_unique<MpiWorkers>();
}

std::string MpiDescription() {
  char library[MPI_MAX_LIBRARY_VERSION_STRING];
  int length = 0;
  MPI_Get_library_version(library, &length);
  std::string text(library, static_cast<std::size_t>(length));
  if (const auto comma = text.find(','); comma != std::string::npos) text.resize(comma);  // "Open MPI v4.1.4"
  while (!text.empty() && (text.back() == '\n' || text.back() == '\0')) text.pop_back();
  return "MPI: " + text + " (mpirun -np N charlm train ...)";
}

}  // namespace charlm
