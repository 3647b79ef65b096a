// charlm bench: training, evaluation and generation throughput, the machine's fp32 and bf16 matrix-product peaks and
// the training's share of them (MFU), peak RSS.
#pragma once

#include <ostream>
#include <string>
#include <vector>

#include "config/config.h"

namespace charlm {

class Workers;

// The largest --seconds: an hour per measurement is far past where the figures settle, and below it a typo (1e300,
// inf) would run for ever.
inline constexpr double kMaxBenchSeconds = 3600;

struct BenchCommand {
  std::string config;                  // empty: the preset below on random tokens (no corpus needed)
  std::string preset = "d2l";          // "d2l": V 2583, embedding 256, LSTM 1x256, B 32, T 35
                                       // "char-rnn": V 65, embedding 64, LSTM 2x512, B 50, T 50
  std::vector<std::string> overrides;  // --set, applied to the config or the preset
  double seconds = 3.0;                // time budget per measurement
  bool json = false;
  int processes = 1;                   // --np N: training only, data-parallel over N processes under mpirun
  bool overlap = true;                 // --no-overlap: sum the gradients after the backward pass, not during it
  bool breakdown = false;              // --breakdown: a second training phase with the elementwise phases timed
};

inline constexpr int kBenchBeam = 4;

// The machine's matrix-product peaks, measured in the benchmark's process at its thread count (train.threads):
// square products of side kPeakGemmSize (17.2 GFLOP each, big enough that packing and thread start-up are a few
// per cent of a call), the fastest of the calls in the time given. fp32: OpenBLAS's cblas_sgemm, the library
// charlm's fp32 products go through. bf16: oneDNN's matmul on bf16 inputs with fp32 accumulation and output
// (GemmBf16), what train.precision "bf16" runs.
inline constexpr int kPeakGemmSize = 2048;
struct GemmPeaks {
  double sgemm_gflops = 0;
  double bf16_gflops = 0;        // 0 when bf16_unavailable says why
  std::string bf16_unavailable;  // Bf16Unavailable(): empty where bf16 products run
};
// Takes about 2 x min(seconds, 1) seconds, at least one untimed and two timed calls of each.
GemmPeaks MeasureGemmPeaks(double seconds);

// Model FLOPs utilisation as nanoGPT prints it: the training's achieved matmul GFLOP/s as a share of the peak of
// the precision in use (bf16: the bf16 peak; fp32 and fp32_packed: sgemm's, OpenBLAS being the fp32 reference).
// 0 when that peak was not measured.
double ModelFlopsUtilization(double train_gflops, Precision precision, const GemmPeaks& peaks);

struct BenchResult {
  std::string cell;
  std::string blas_core;  // OpenBLAS's kernel table, e.g. "SkylakeX" (lib/ops/blas.h)
  std::string blas_core_chosen_over;  // what OpenBLAS detected when charlm chose blas_core instead, else ""
  std::string precision;  // train.precision: "fp32" or "bf16"
  std::string engine;     // train.engine: "charlm" or "onednn" (what ran the recurrent layers in train and eval)
  std::string onednn;     // oneDNN's version and ISA (lib/ops/bf16_gemm.h), or why there is none
  std::string omp_wait_policy;  // OMP_WAIT_POLICY as the process saw it (PASSIVE unless the user set it)
  int omp_threads = 0;          // oneDNN's OpenMP threads (train.threads, or all cores), 0 without oneDNN
  // The process's threads after the timed phases (Linux's count): OpenBLAS's pool, OpenMP's (bf16 only),
  // charlm's own. A check that train.threads bounds them (tests/bf16_test.cc).
  int process_threads = 0;
  int vocab_size = 0, embedding_size = 0, hidden_size = 0, num_layers = 0, batch_size = 0, num_steps = 0, threads = 0;
  double train_tokens_per_s = 0, train_ms_per_step = 0, train_gflops = 0;
  double eval_tokens_per_s = 0, generate_chars_per_s = 0, peak_rss_mb = 0;
  // Measured after the timed phases (one process only; with --np they stay 0): the peaks and train_gflops' share
  // of the peak of train.precision.
  GemmPeaks peaks;
  double mfu = 0;
  double beam_chars_per_s = 0;  // beam search with kBenchBeam beams, characters of the best beam per second
  // Data parallelism (--np N): batch_size is the global batch, each process trains batch_size / processes streams
  // and train_tokens_per_s counts every process's. Only training is measured then (eval_tokens_per_s and the
  // generation figures stay 0). reduce_wait_ms_per_step is rank 0's time in the gradient sum after its backward
  // pass ended: what the overlap did not hide.
  int processes = 1;
  bool overlap = true;
  double gradient_bytes = 0;  // the buffer each step sums: gradients, loss sum, token count (4 bytes each)
  double reduce_wait_ms_per_step = 0;
  double allreduce_ms = 0;  // one blocking sum of that buffer once every process has arrived, median of 9
  // Process CPU seconds per wall second over the timed phases, and the 1-minute load average before and
  // after: CPU/wall well below the thread count means other processes took the cores.
  double cpu_per_wall = 0, load_before = 0, load_after = 0;
  // --breakdown (one process): ms per training step in a second training phase whose elementwise phases were
  // timed (lib/model/phase_times.h); "rest" is the step minus those (the matrix products, gathers, clipping's
  // scale); row_threads is how many threads they were split over.
  bool breakdown = false;
  int row_threads = 0;
  double step_ms = 0, cell_forward_ms = 0, cell_backward_ms = 0, softmax_ms = 0, softmax_backward_ms = 0,
         optimizer_ms = 0, rest_ms = 0;
};

// The benchmark's config for a preset name; UserError for an unknown name. Returns the vocabulary size too.
Config BenchPresetConfig(const std::string& preset, int* vocab_size);

// Matmul FLOPs per token of one forward pass: per layer 2*(I+H)*gH (I = 0 for a one-hot gather), plus 2*H*V.
double ForwardFlopsPerToken(const Config& config, int vocab_size);

// `workers` null: one process. With several, every worker must call it alike; rank 0's figures are returned.
BenchResult RunBenchmark(const Config& config, int vocab_size, double seconds, Workers* workers = nullptr,
                         bool overlap = true, bool breakdown = false);
// The report's "peaks:" line: both peaks, or the fp32 one and why bf16 products cannot run here.
std::string FormatGemmPeaks(const GemmPeaks& peaks);
// The text `charlm bench` prints without --json; it ends with a note when the run did not have its cores.
std::string FormatBenchReport(const BenchResult& result);
// UserError unless --np is 1 to kMaxBenchProcesses, checked before mpirun is started with it.
inline constexpr int kMaxBenchProcesses = 4096;
void CheckBenchProcesses(int processes);
// Rank 0 alone writes to `out`; the job's size must be command.processes.
void RunBench(const BenchCommand& command, Workers& workers, std::ostream& out);

}  // namespace charlm
