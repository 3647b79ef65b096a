// The processes of one data-parallel training job and the collectives it needs, behind an interface, so that the
// training code builds and runs without MPI; lib/parallel/mpi_workers.cc implements it when CMake finds an MPI.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>

namespace charlm {

class Workers {
 public:
  virtual ~Workers() = default;
  virtual int rank() const = 0;        // 0 .. size() - 1
  virtual int size() const = 0;        // processes in the job
  virtual int local_size() const = 0;  // processes of the job on this machine (train.threads 0 divides the cores)

  // Element-wise sums over every worker, in place; every worker receives the same bits.
  virtual void SumInPlace(std::span<float> values) = 0;
  virtual void SumInPlace(std::span<double> values) = 0;
  // Starts SumInPlace(values) without waiting for it; `values` must not be touched until FinishSums() returns.
  // PollSums() lets the started sums progress (MPI moves non-blocking collectives only inside MPI calls).
  virtual void StartSum(std::span<float> values) = 0;
  virtual void PollSums() = 0;
  virtual void FinishSums() = 0;
  virtual int Max(int value) = 0;
  // Every worker's `mine` (the same size on each), concatenated in rank order into `all`, on every worker.
  virtual void AllGather(std::span<const float> mine, std::span<float> all) = 0;
  virtual void AllGather(std::span<const std::uint64_t> mine, std::span<std::uint64_t> all) = 0;

  // A collective that has waited `seconds` for a peer that shows no sign of reaching it prints one warning line
  // naming that peer (rank, process id, host) on standard error, once per wait, and goes on waiting.
  virtual void SetStallSeconds(double seconds) { (void)seconds; }
  // Ends every process of the job with `exit_code`, at once; the caller has printed why.
  [[noreturn]] virtual void Abort(int exit_code) = 0;
};

// One process on its own: every collective is the identity.
std::unique_ptr<Workers> SingleProcess();

// The job this process was started in: MPI's world when started by mpirun in a build with MPI, SingleProcess()
// otherwise. UserError when mpirun started several processes of a build without MPI (they would each train alone
// and overwrite each other's files).
std::unique_ptr<Workers> JoinWorkers(int* argc, char*** argv);

// True when a launcher started this process: Open MPI's mpirun, or a PMI/PMIx launcher such as srun.
bool StartedByLauncher();

// Runs this program again as `mpirun -np N` with the same arguments (charlm bench --np N), in place of this
// process: with --oversubscribe and --bind-to none (a benchmark compares against unbound one-process runs), and
// --allow-run-as-root when started as root. UserError in a build without MPI, or when mpirun cannot be started.
[[noreturn]] void ExecUnderMpirun(int processes, int argc, char** argv);

// For --version: "MPI: Open MPI v4.1.4 ..." or "MPI: none (built without MPI: ...)".
std::string MpiDescription();

}  // namespace charlm
