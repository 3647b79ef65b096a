// Times the real training step, evaluation and generation code paths on random or corpus tokens.
#include "speed/speed_bench.h"
#include "model/restore.h"

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <nlohmann/json.hpp>

#include "generate/beam_search.h"
#include "ops/bf16_gemm.h"
#include "ops/blas.h"
#include "text/dataset.h"
#include "util/errors.h"
#include "generate/generate.h"
#include "model/model.h"
#include "model/optimizer.h"
#include "ops/phase_times.h"
#include "parallel/data_parallel.h"
#include "util/rng.h"
#include "run/step.h"

namespace charlm {
namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point since) { return std::chrono::duration<double>(Clock::now() - since).count(); }

// The fastest of `product`'s timed calls after one untimed call (OpenBLAS starts its threads, oneDNN compiles its
// kernel): at least two timed calls, then more until about `seconds` have passed. The fastest call, not the mean,
// because the peak is the rate the machine can reach; a call that lost its core to another program says nothing
// about that.
template <typename Product>
double FastestGflops(double flops, double seconds, Product product) {
  product();
  double fastest = 0;
  int runs = 0;
  const auto start = Clock::now();
  do {
    const auto call = Clock::now();
    product();
    const double taken = Seconds(call);
    if (runs == 0 || taken < fastest) fastest = taken;
    ++runs;
  } while (runs < 2 || Seconds(start) < seconds);
  return flops / fastest / 1e9;
}

double GemmFlops(int n) { return 2.0 * n * n * n; }

double CpuSeconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
         1e-6 * static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec);
}

double LoadAverage() {
  double load = 0;
  return getloadavg(&load, 1) == 1 ? load : -1.0;
}

// The "Threads:" line of /proc/self/status, or 0 where there is none.
int ProcessThreads() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("Threads:", 0) == 0) return std::atoi(line.c_str() + 8);
  }
  return 0;
}

double PeakRssMb() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) / 1024.0;  // Linux reports KiB
}

}  // namespace

GemmPeaks MeasureGemmPeaks(double seconds) {
  const int n = kPeakGemmSize;
  const std::size_t size = static_cast<std::size_t>(n) * n;
  const double each = std::min(seconds, 1.0);
  GemmPeaks peaks;
  std::vector<float> c(size, 0.0f);
  {
    const std::vector<float> a(size, 0.5f), b(size, 0.25f);
    peaks.sgemm_gflops = FastestGflops(GemmFlops(n), each, [&] {
      Gemm<float>(false, false, n, n, n, 1.0f, a.data(), n, b.data(), n, 0.0f, c.data(), n);
    });
  }
  peaks.bf16_unavailable = Bf16Unavailable();
  if (peaks.bf16_unavailable.empty()) {
    const std::vector<Bf16> a(size, ToBf16(0.5f)), b(size, ToBf16(0.25f));
    peaks.bf16_gflops = FastestGflops(GemmFlops(n), each, [&] {
      GemmBf16(false, false, n, n, n, a.data(), n, b.data(), n, 0.0f, c.data(), n);
    });
  }
  return peaks;
}

double ModelFlopsUtilization(double train_gflops, Precision precision, const GemmPeaks& peaks) {
  const double peak = precision == Precision::kBf16 ? peaks.bf16_gflops : peaks.sgemm_gflops;
  return peak > 0 ? train_gflops / peak : 0.0;
}

Config BenchPresetConfig(const std::string& preset, int* vocab_size) {
  Config c;
  c.train.optimizer.name = OptimizerKind::kAdam;
  c.train.clip_norm = 1.0;
  c.model.cell = CellKind::kLstm;
  if (preset == "d2l") {
    *vocab_size = 2583;
    c.model.embedding_size = 256;
    c.model.hidden_size = 256;
    c.model.num_layers = 1;
    c.train.batch_size = 32;
    c.train.num_steps = 35;
  } else if (preset == "char-rnn") {
    *vocab_size = 65;
    c.model.embedding_size = 64;
    c.model.hidden_size = 512;
    c.model.num_layers = 2;
    c.train.batch_size = 50;
    c.train.num_steps = 50;
  } else {
    throw UserError("--preset \"" + preset + "\" is not a benchmark preset: use --preset d2l or --preset char-rnn");
  }
  return c;
}

double ForwardFlopsPerToken(const Config& config, int vocab_size) {
  const ModelSpec spec = MakeModelSpec(config.model, vocab_size);
  double flops = 2.0 * spec.hidden_size * vocab_size;
  for (int l = 0; l < spec.num_layers; ++l) {
    const RecurrentShape shape = spec.LayerShape(l);
    const double input = (l == 0 && spec.embedding_size == 0) ? 0.0 : shape.input_size;
    flops += 2.0 * (input + shape.hidden_size) * shape.gates() * shape.hidden_size;
  }
  return flops;
}

BenchResult RunBenchmark(const Config& config, int vocab_size, double seconds, Workers* workers, bool overlap,
                         bool breakdown) {
  std::unique_ptr<Workers> alone;
  Workers& job = workers != nullptr ? *workers : *(alone = SingleProcess());
  SetBlasThreads(config.train.threads);
  const int B = config.train.batch_size, T = config.train.num_steps;
  const StreamShard shard = ShardOf(job, B, T);  // this process's streams of the global batch
  CharModel<float> model(MakeModelSpec(config.model, vocab_size));
  model.Initialize(config.model.init, config.train.seed);
  RequirePrecision(config.train.precision, "train.precision", "benchmark fp32 with --set train.precision=fp32");
  model.set_precision(config.train.precision);
  model.set_engine(config.train.engine);
  Optimizer optimizer(config.train.optimizer, model.params().size());
  auto state = model.MakeState(B);
  Rng rng(config.train.seed);
  std::vector<int> x(static_cast<std::size_t>(B) * T), y(x.size());
  for (std::size_t k = 0; k < x.size(); ++k) {
    x[k] = static_cast<int>(rng.Below(vocab_size));
    y[k] = static_cast<int>(rng.Below(vocab_size));
  }
  BenchResult r;
  r.cell = std::string(EnumName(config.model.cell));
  r.vocab_size = vocab_size;
  r.embedding_size = config.model.embedding_size;
  r.hidden_size = config.model.hidden_size;
  r.num_layers = config.model.num_layers;
  r.batch_size = B;
  r.num_steps = T;
  r.threads = BlasThreads();
  r.blas_core = BlasCoreName();
  r.blas_core_chosen_over = BlasCoreChosenOver();
  r.precision = std::string(EnumName(config.train.precision));
  r.engine = std::string(EnumName(config.train.engine));
  r.onednn = OnednnDescription();
  r.omp_wait_policy = OpenMpWaitPolicy();
  r.omp_threads = OpenMpThreads();
  r.processes = job.size();
  r.overlap = overlap;
  r.gradient_bytes = static_cast<double>(model.reduce_buffer().size()) * sizeof(float);

  // The training step `charlm train` runs, on this process's columns of the random (T, B) tokens.
  const bool parallel = job.size() > 1;
  WorkersReduce reduce(job, overlap ? WorkersReduce::kOverlapOutputAndTop : 0);
  TrainStep step(model, optimizer, shard.count, T, config.train.clip_norm, parallel ? &reduce : nullptr, shard.first);
  auto shard_state = model.MakeState(shard.count);
  std::vector<int> shard_x(static_cast<std::size_t>(shard.count) * T), shard_y(shard_x.size());
  for (int t = 0; t < T; ++t) {
    for (int b = 0; b < shard.count; ++b) {
      shard_x[static_cast<std::size_t>(t) * shard.count + b] = x[static_cast<std::size_t>(t) * B + shard.first + b];
      shard_y[static_cast<std::size_t>(t) * shard.count + b] = y[static_cast<std::size_t>(t) * B + shard.first + b];
    }
  }
  auto train_step = [&](std::int64_t k) {
    step.RunOn(shard_x.data(), shard_y.data(), shard_state, static_cast<std::uint64_t>(k), config.train.optimizer.lr);
  };
  for (int k = 0; k < 3; ++k) train_step(k);  // warm-up: first-touch pages, BLAS thread start
  r.load_before = LoadAverage();
  const double cpu_start = CpuSeconds();
  const auto wall_start = Clock::now();
  std::int64_t steps = 0;
  auto start = Clock::now();
  if (parallel) {
    // Every process must run as many steps: the count the slowest one's first steps say fills `seconds`.
    train_step(steps++);
    const double first = Seconds(start);
    const int planned = job.Max(static_cast<int>(std::clamp(seconds / std::max(first, 1e-6), 1.0, 1e6)));
    const double wait_before = reduce.finish_seconds();
    start = Clock::now();
    for (steps = 0; steps < planned; ++steps) train_step(steps);
    r.reduce_wait_ms_per_step = 1000.0 * (reduce.finish_seconds() - wait_before) / static_cast<double>(steps);
  } else {
    do train_step(steps++);
    while (Seconds(start) < seconds);
  }
  const double train_s = Seconds(start);
  r.train_tokens_per_s = static_cast<double>(steps) * B * T / train_s;
  r.train_ms_per_step = 1000.0 * train_s / static_cast<double>(steps);
  r.train_gflops = 3.0 * ForwardFlopsPerToken(config, vocab_size) * r.train_tokens_per_s / 1e9;
  if (parallel) {  // evaluation and generation do not run data-parallel
    r.cpu_per_wall = (CpuSeconds() - cpu_start) / Seconds(wall_start);
    // The sum alone, each time after every process has arrived (the Max): the transport's cost for this buffer,
    // without the waiting for a slower process that the training steps' figure includes.
    std::vector<double> sums;
    for (int k = 0; k < 9; ++k) {
      job.Max(0);
      const auto sum_start = Clock::now();
      job.SumInPlace(model.reduce_buffer());
      sums.push_back(1000.0 * Seconds(sum_start));
    }
    std::nth_element(sums.begin(), sums.begin() + 4, sums.end());
    r.allreduce_ms = sums[4];
    r.load_after = LoadAverage();
    r.peak_rss_mb = PeakRssMb();
    return r;
  }
  if (breakdown) {
    // A second phase, timed by phase (two clock reads per phase and time step).
    PhaseTimes times;
    step.set_phase_times(&times);
    std::int64_t timed_steps = 0;
    const auto breakdown_start = Clock::now();
    do train_step(timed_steps++);
    while (Seconds(breakdown_start) < seconds);
    const double per_step = 1000.0 / static_cast<double>(timed_steps);
    step.set_phase_times(nullptr);
    r.breakdown = true;
    r.row_threads = step.row_threads();
    r.step_ms = Seconds(breakdown_start) * per_step;
    r.cell_forward_ms = times.cell_forward * per_step;
    r.cell_backward_ms = times.cell_backward * per_step;
    r.softmax_ms = times.softmax * per_step;
    r.softmax_backward_ms = times.softmax_backward * per_step;
    r.optimizer_ms = times.optimizer * per_step;
    r.rest_ms = r.step_ms - r.cell_forward_ms - r.cell_backward_ms - r.softmax_ms - r.softmax_backward_ms - r.optimizer_ms;
  }
  Workspace<float>& ws = step.workspace();  // one process: (T, B), as evaluation needs; no second workspace

  model.Forward(ws, x.data(), y.data(), T, B, state, {});
  steps = 0;
  start = Clock::now();
  do {
    model.Forward(ws, x.data(), y.data(), T, B, state, {});
    ++steps;
  } while (Seconds(start) < seconds);
  r.eval_tokens_per_s = static_cast<double>(steps) * B * T / Seconds(start);

  // Generation as `charlm generate` does it: batch 1, one step per character, sampling from the softmax.
  Generator generator(model, 1, BlasThreads());
  SamplingOptions sampling;
  int current = 0;
  generator.Start(std::span<const int>(&current, 1));
  std::int64_t chars = 0;
  start = Clock::now();
  do {
    for (int k = 0; k < 100; ++k, ++chars) current = generator.Next(current, sampling, -1, rng);
  } while (Seconds(start) < seconds);
  r.generate_chars_per_s = static_cast<double>(chars) / Seconds(start);

  // Beam search as `charlm generate --beam 4` runs it: the beams (and the greedy row) as rows of one batch step.
  {
    std::u32string alphabet;
    for (int id = 0; id < vocab_size; ++id) alphabet.push_back(static_cast<char32_t>(0x4E00 + id));
    const Vocab vocab = Vocab::Build(alphabet);
    SamplingOptions beam;
    beam.beam = kBenchBeam;
    beam.length = 200;
    const std::vector<int> prefix{0};
    BeamSearch(model, vocab, prefix, beam);  // warm-up
    chars = 0;
    start = Clock::now();
    do {
      BeamSearch(model, vocab, prefix, beam);
      chars += beam.length;
    } while (Seconds(start) < seconds);
    r.beam_chars_per_s = static_cast<double>(chars) / Seconds(start);
  }
  r.cpu_per_wall = (CpuSeconds() - cpu_start) / Seconds(wall_start);
  r.process_threads = ProcessThreads();
  r.load_after = LoadAverage();
  r.peak_rss_mb = PeakRssMb();  // before the peak probes' 48 MB of matrices
  r.peaks = MeasureGemmPeaks(seconds);
  r.mfu = ModelFlopsUtilization(r.train_gflops, config.train.precision, r.peaks);
  return r;
}

void CheckBenchProcesses(int processes) {
  if (processes < 1 || processes > kMaxBenchProcesses) {
    throw UserError("--np " + std::to_string(processes) + " is out of range: expected an integer from 1 to " +
                    std::to_string(kMaxBenchProcesses) + " (processes); e.g. --np 2");
  }
}

void RunBench(const BenchCommand& command, Workers& workers, std::ostream& out) {
  // Written so that NaN fails too: a NaN budget ended every measurement at once (figures from a single step), and
  // inf or 1e300 never ended one.
  if (!(command.seconds > 0 && command.seconds <= kMaxBenchSeconds)) {
    std::ostringstream shown;
    shown << command.seconds;
    throw UserError("--seconds " + shown.str() + " is out of range: expected seconds per measurement above 0 and at most " +
                    std::to_string(static_cast<int>(kMaxBenchSeconds)) + ", e.g. --seconds 3");
  }
  if (command.processes < 1 || command.processes != workers.size()) {
    throw UserError("--np " + std::to_string(command.processes) + " but this job has " +
                    std::to_string(workers.size()) + " processes: run charlm bench --np N without mpirun (it starts "
                    "mpirun itself)");
  }
  Config config;
  int vocab_size = 0;
  if (!command.config.empty()) {
    config = LoadConfigFile(command.config, command.overrides);
    vocab_size = LoadDataset(config.data).vocab.size();
  } else {
    config = BenchPresetConfig(command.preset, &vocab_size);
    nlohmann::json j = ConfigToJson(config);
    j["data"]["corpus"] = "(random tokens)";
    for (const std::string& assignment : command.overrides) ApplyOverride(j, assignment);
    config = ConfigFromJson(j, command.overrides);
    ValidateConfig(config);
  }
  if (command.breakdown && command.processes > 1) {
    throw UserError("--breakdown times one process's training step: run it without --np " +
                    std::to_string(command.processes));
  }
  const BenchResult r = RunBenchmark(config, vocab_size, command.seconds, &workers, command.overlap, command.breakdown);
  if (workers.rank() != 0) return;
  const bool parallel = r.processes > 1;
  // A figure that was not measured is null, not 0.
  auto measured = [parallel](double value) { return parallel ? nlohmann::json(nullptr) : nlohmann::json(value); };
  if (command.json) {
    out << nlohmann::json{{"cell", r.cell},
                          {"vocab_size", r.vocab_size},
                          {"embedding_size", r.embedding_size},
                          {"hidden_size", r.hidden_size},
                          {"num_layers", r.num_layers},
                          {"batch_size", r.batch_size},
                          {"num_steps", r.num_steps},
                          {"threads", r.threads},
                          {"blas_core", r.blas_core},
                          {"blas_core_chosen_over", r.blas_core_chosen_over.empty() ? nlohmann::json(nullptr) : nlohmann::json(r.blas_core_chosen_over)},
                          {"precision", r.precision},
                          {"engine", r.engine},
                          {"onednn", r.onednn},
                          {"omp_wait_policy", r.omp_wait_policy},
                          {"omp_threads", r.omp_threads},
                          {"process_threads", measured(r.process_threads)},
                          {"train_tokens_per_s", r.train_tokens_per_s},
                          {"train_ms_per_step", r.train_ms_per_step},
                          {"eval_tokens_per_s", measured(r.eval_tokens_per_s)},
                          {"generate_chars_per_s", measured(r.generate_chars_per_s)},
                          {"beam4_chars_per_s", measured(r.beam_chars_per_s)},
                          {"train_gflops", r.train_gflops},
                          {"peak_gemm_size", kPeakGemmSize},
                          {"peak_sgemm_gflops", measured(r.peaks.sgemm_gflops)},
                          {"peak_bf16_gflops", r.peaks.bf16_gflops > 0 ? measured(r.peaks.bf16_gflops) : nlohmann::json(nullptr)},
                          {"bf16_unavailable", parallel || r.peaks.bf16_unavailable.empty() ? nlohmann::json(nullptr)
                                                                                          : nlohmann::json(r.peaks.bf16_unavailable)},
                          {"mfu", measured(r.mfu)},
                          {"processes", r.processes},
                          {"overlap", r.overlap},
                          {"gradient_bytes", r.gradient_bytes},
                          {"reduce_wait_ms_per_step", r.reduce_wait_ms_per_step},
                          {"allreduce_ms", parallel ? nlohmann::json(r.allreduce_ms) : nlohmann::json(nullptr)},
                          {"peak_rss_mb", r.peak_rss_mb},
                          {"cpu_per_wall", r.cpu_per_wall},
                          {"load_before", r.load_before},
                          {"load_after", r.load_after},
                          {"breakdown", r.breakdown ? nlohmann::json{{"row_threads", r.row_threads},
                                                                     {"step_ms", r.step_ms},
                                                                     {"cell_forward_ms", r.cell_forward_ms},
                                                                     {"cell_backward_ms", r.cell_backward_ms},
                                                                     {"softmax_ms", r.softmax_ms},
                                                                     {"softmax_backward_ms", r.softmax_backward_ms},
                                                                     {"optimizer_ms", r.optimizer_ms},
                                                                     {"rest_ms", r.rest_ms}}
                                                    : nlohmann::json(nullptr)}}
               .dump()
        << '\n';
    return;
  }
  out << FormatBenchReport(r);
}

std::string FormatGemmPeaks(const GemmPeaks& peaks) {
  char buf[160];
  std::snprintf(buf, sizeof buf, "peaks:    fp32 %.1f GFLOP/s (OpenBLAS sgemm, %d^3), ", peaks.sgemm_gflops, kPeakGemmSize);
  std::string line = buf;
  if (peaks.bf16_unavailable.empty()) {
    std::snprintf(buf, sizeof buf, "bf16 %.1f GFLOP/s (oneDNN matmul, %d^3)\n", peaks.bf16_gflops, kPeakGemmSize);
    return line + buf;
  }
  return line + "bf16 not available: " + peaks.bf16_unavailable + "\n";
}

std::string FormatBenchReport(const BenchResult& r) {
  char buf[768];
  if (r.processes > 1) {
    std::snprintf(buf, sizeof buf,
                  "model: %s, vocab %d, embedding %d, %d x %d, batch %d x %d steps = %d processes x %d streams, %d "
                  "BLAS threads each (%s kernels), %s products\n"
                  "train:    %10.0f tokens/s (all processes)  %8.2f ms/step  %6.1f GFLOP/s\n"
                  "reduce:   %10.0f bytes/step, %.2f ms/step waited after the backward pass (overlap %s); the sum alone %.2f ms\n"
                  "cpu/wall: %10.2f on rank 0 (load %.1f -> %.1f on the 1-minute average)\n",
                  r.cell.c_str(), r.vocab_size, r.embedding_size, r.num_layers, r.hidden_size, r.batch_size,
                  r.num_steps, r.processes, r.batch_size / r.processes, r.threads, r.blas_core.c_str(),
                  r.precision.c_str(), r.train_tokens_per_s, r.train_ms_per_step, r.train_gflops, r.gradient_bytes,
                  r.reduce_wait_ms_per_step, r.overlap ? "on" : "off", r.allreduce_ms, r.cpu_per_wall, r.load_before, r.load_after);
    return buf;
  }
  std::snprintf(buf, sizeof buf,
                "model: %s, vocab %d, embedding %d, %d x %d, batch %d x %d steps, %d BLAS threads (%s kernels), %s "
                "products (%s), %s engine\n"
                "train:    %10.0f tokens/s  %8.2f ms/step  %6.1f GFLOP/s, MFU %.0f%% of the %s peak\n"
                "eval:     %10.0f tokens/s\n"
                "generate: %10.0f chars/s (batch 1, sampling)\n"
                "beam %d:   %10.0f chars/s (%.2f of sampling's)\n"
                "peak RSS: %10.1f MB\n"
                "cpu/wall: %10.2f (load %.1f -> %.1f on the 1-minute average)\n",
                r.cell.c_str(), r.vocab_size, r.embedding_size, r.num_layers, r.hidden_size, r.batch_size, r.num_steps,
                r.threads, r.blas_core.c_str(), r.precision.c_str(), r.onednn.c_str(), r.engine.c_str(), r.train_tokens_per_s,
                r.train_ms_per_step, r.train_gflops, 100.0 * r.mfu, r.precision == "bf16" ? "bf16" : "fp32", r.eval_tokens_per_s, r.generate_chars_per_s,
                kBenchBeam, r.beam_chars_per_s, r.generate_chars_per_s > 0 ? r.beam_chars_per_s / r.generate_chars_per_s : 0.0,
                r.peak_rss_mb, r.cpu_per_wall, r.load_before, r.load_after);
  std::string report = buf;
  report += FormatGemmPeaks(r.peaks);
  if (!r.blas_core_chosen_over.empty()) {
    report += "note:     OpenBLAS fell back to its generic " + r.blas_core_chosen_over + " kernels on this CPU model; charlm chose " +
              r.blas_core + " from the CPU's features (OPENBLAS_CORETYPE=" + r.blas_core_chosen_over + " gives OpenBLAS's own choice)\n";
  }
  if (r.breakdown) {
    std::snprintf(buf, sizeof buf,
                  "step:     %10.3f ms = cell kernels %.3f forward + %.3f backward, softmax %.3f + %.3f backward, "
                  "optimizer %.3f, products and the rest %.3f (elementwise phases on %d threads)\n",
                  r.step_ms, r.cell_forward_ms, r.cell_backward_ms, r.softmax_ms, r.softmax_backward_ms, r.optimizer_ms,
                  r.rest_ms, r.row_threads);
    report += buf;
  }
  // Fewer CPU seconds per second than threads means other programs had the cores: every throughput above was then
  // measured on a share of the machine, and the peaks measured right after probably were too.
  if (r.cpu_per_wall < 0.8 * r.threads) {
    std::snprintf(buf, sizeof buf,
                  "note:     the %d threads got %.2f cores on average: other programs were using the cores, so these "
                  "figures are not those of a quiet machine\n",
                  r.threads, r.cpu_per_wall);
    report += buf;
  }
  return report;
}

}  // namespace charlm
