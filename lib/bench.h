// charlm bench: training, evaluation and generation throughput, achieved GFLOP/s against in-process sgemm, peak RSS.
#pragma once

#include <ostream>
#include <string>
#include <vector>

#include "config.h"

namespace charlm {

struct BenchCommand {
  std::string config;                  // empty: the preset below on random tokens (no corpus needed)
  std::string preset = "d2l";          // "d2l": V 2583, embedding 256, LSTM 1x256, B 32, T 35
                                       // "char-rnn": V 65, embedding 64, LSTM 2x512, B 50, T 50
  std::vector<std::string> overrides;  // --set, applied to the config or the preset
  double seconds = 3.0;                // time budget per measurement
  bool json = false;
};

inline constexpr int kBenchBeam = 4;

struct BenchResult {
  std::string cell;
  std::string blas_core;  // OpenBLAS's kernel table, e.g. "SkylakeX" (lib/model/blas.h)
  std::string precision;  // train.precision: "fp32" or "bf16"
  std::string onednn;     // oneDNN's version and ISA (lib/model/bf16_gemm.h), or why there is none
  std::string omp_wait_policy;  // OMP_WAIT_POLICY as the process saw it (PASSIVE unless the user set it)
  int vocab_size = 0, embedding_size = 0, hidden_size = 0, num_layers = 0, batch_size = 0, num_steps = 0, threads = 0;
  double train_tokens_per_s = 0, train_ms_per_step = 0, train_gflops = 0;
  double eval_tokens_per_s = 0, generate_chars_per_s = 0, sgemm_gflops = 0, peak_rss_mb = 0;
  double beam_chars_per_s = 0;  // beam search with kBenchBeam beams, characters of the best beam per second
  // Process CPU seconds per wall second over the timed phases, and the 1-minute load average before and
  // after: CPU/wall well below the thread count means other processes took the cores.
  double cpu_per_wall = 0, load_before = 0, load_after = 0;
};

// The benchmark's config for a preset name; UserError for an unknown name. Returns the vocabulary size too.
Config BenchPresetConfig(const std::string& preset, int* vocab_size);

// Matmul FLOPs per token of one forward pass: per layer 2*(I+H)*gH (I = 0 for a one-hot gather), plus 2*H*V.
double ForwardFlopsPerToken(const Config& config, int vocab_size);

BenchResult RunBenchmark(const Config& config, int vocab_size, double seconds);
// The text `charlm bench` prints without --json; it ends with a note when the run did not have its cores.
std::string FormatBenchReport(const BenchResult& result);
void RunBench(const BenchCommand& command, std::ostream& out);

}  // namespace charlm
