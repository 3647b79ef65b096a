// Checks the benchmark's FLOP formula and presets, that a very short run reports sane, positive figures, and the
// GEMM peaks and MFU in its text and JSON, with bf16 available and hidden.
#include <doctest/doctest.h>

#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>

#include "cli_util.h"
#include "ops/bf16_gemm.h"
#include "speed/speed_bench.h"
#include "util/errors.h"

namespace charlm {
namespace {

TEST_CASE("bench: forward FLOPs per token follow 2(I+H)gH per layer plus 2HV, with a one-hot gather counted as I = 0") {
  int vocab = 0;
  Config c = BenchPresetConfig("d2l", &vocab);
  CHECK(vocab == 2583);
  // LSTM 1 x 256 on an embedding of 256: 2*(256+256)*4*256 + 2*256*2583.
  CHECK(ForwardFlopsPerToken(c, vocab) == doctest::Approx(2.0 * 512 * 1024 + 2.0 * 256 * 2583));
  c.model.embedding_size = 0;  // one-hot: the input projection is a gather
  CHECK(ForwardFlopsPerToken(c, vocab) == doctest::Approx(2.0 * 256 * 1024 + 2.0 * 256 * 2583));
  Config r = BenchPresetConfig("char-rnn", &vocab);
  CHECK(vocab == 65);
  r.model.cell = CellKind::kGru;  // 2 x 512 on 64: layer 0 2*(64+512)*3*512, layer 1 2*(512+512)*3*512
  CHECK(ForwardFlopsPerToken(r, vocab) ==
        doctest::Approx(2.0 * 576 * 1536 + 2.0 * 1024 * 1536 + 2.0 * 512 * 65));
  CHECK_THROWS_AS(BenchPresetConfig("huge", &vocab), UserError);
}

TEST_CASE("bench: a short run on a tiny model reports positive throughput and memory") {
  Config c;
  c.model.cell = CellKind::kGru;
  c.model.hidden_size = 16;
  c.model.embedding_size = 8;
  c.train.batch_size = 4;
  c.train.num_steps = 5;
  c.train.threads = 1;
  const BenchResult r = RunBenchmark(c, 20, 0.02);
  CHECK(r.train_tokens_per_s > 0);
  CHECK(r.eval_tokens_per_s > 0);
  CHECK(r.generate_chars_per_s > 0);
  CHECK(r.peak_rss_mb > 1);
  CHECK(!r.blas_core.empty());
  CHECK(r.train_gflops == doctest::Approx(3.0 * ForwardFlopsPerToken(c, 20) * r.train_tokens_per_s / 1e9));
  // fp32 training: its share of the sgemm peak, which the tiny model is far below.
  CHECK(r.peaks.sgemm_gflops > 0);
  CHECK(r.mfu == doctest::Approx(r.train_gflops / r.peaks.sgemm_gflops));
  CHECK(r.mfu > 0);
  CHECK(r.mfu < 1.5);
  // The bf16 peak is measured exactly where bf16 products run, and otherwise the reason is kept.
  CHECK(r.peaks.bf16_unavailable == Bf16Unavailable());
  CHECK((r.peaks.bf16_gflops > 0) == r.peaks.bf16_unavailable.empty());
}

TEST_CASE("bench: MFU is the training rate over the peak of the precision in use") {
  GemmPeaks peaks;
  peaks.sgemm_gflops = 200;
  peaks.bf16_gflops = 400;
  CHECK(ModelFlopsUtilization(100, Precision::kFp32, peaks) == doctest::Approx(0.5));
  CHECK(ModelFlopsUtilization(100, Precision::kFp32Packed, peaks) == doctest::Approx(0.5));
  CHECK(ModelFlopsUtilization(100, Precision::kBf16, peaks) == doctest::Approx(0.25));
  peaks.bf16_gflops = 0;  // not measured: no share rather than a division by zero
  CHECK(ModelFlopsUtilization(100, Precision::kBf16, peaks) == 0);
}

TEST_CASE("bench: the bf16 peak is measured with oneDNN's bf16 matmul where bf16 products run") {
  const std::string why = Bf16Unavailable();
  if (!why.empty()) {
    std::printf("SKIPPED: bench's bf16 peak: %s\n", why.c_str());
    return;
  }
  const GemmPeaks peaks = MeasureGemmPeaks(0.01);
  CHECK(peaks.sgemm_gflops > 0);
  CHECK(peaks.bf16_gflops > 0);
  CHECK(peaks.bf16_unavailable.empty());
  const std::string line = FormatGemmPeaks(peaks);
  CHECK_MESSAGE(line.find("not available") == std::string::npos, line);
  CHECK_MESSAGE(line.find("(oneDNN matmul, 2048^3)") != std::string::npos, line);
}

TEST_CASE("bench: --json reports the peaks and MFU, and with bf16 hidden it says bf16 is not available") {
  const testing::TempDir dir;
  const std::vector<std::string> tiny{"bench", "--preset", "char-rnn", "--set", "model.hidden_size=16", "--set",
                                      "model.num_layers=1", "--set", "train.batch_size=2", "--set",
                                      "train.num_steps=3", "--set", "train.threads=1", "--seconds", "0.01"};
  auto bench_json = [&] {
    std::vector<std::string> args = tiny;
    args.push_back("--json");
    const testing::RunResult r = testing::RunStdout(dir, args);
    REQUIRE_MESSAGE(r.exit_code == 0, r.output);
    return nlohmann::json::parse(r.output);  // stdout is the JSON object alone
  };
  const nlohmann::json j = bench_json();
  CHECK(j.at("peak_gemm_size") == kPeakGemmSize);
  CHECK(j.at("peak_sgemm_gflops").get<double>() > 0);
  CHECK(j.at("mfu").get<double>() > 0);
  CHECK(j.at("mfu").get<double>() < 1.5);
  CHECK(j.at("mfu").get<double>() ==
        doctest::Approx(j.at("train_gflops").get<double>() / j.at("peak_sgemm_gflops").get<double>()));
  if (Bf16Unavailable().empty()) {
    CHECK(j.at("peak_bf16_gflops").get<double>() > 0);
    CHECK(j.at("bf16_unavailable").is_null());
  } else {
    CHECK(j.at("peak_bf16_gflops").is_null());
    CHECK(j.at("bf16_unavailable").get<std::string>() == Bf16Unavailable());
  }
  // ONEDNN_MAX_CPU_ISA hides avx512_bf16 from oneDNN, which is what a CPU without it looks like (without oneDNN
  // the build is the reason): the bf16 peak is null, the reason is given, fp32's MFU is unchanged in kind.
  setenv("ONEDNN_MAX_CPU_ISA", "AVX512_CORE_VNNI", 1);
  const nlohmann::json hidden = bench_json();
  const testing::RunResult text = testing::Run(dir, tiny);
  unsetenv("ONEDNN_MAX_CPU_ISA");
  CHECK(hidden.at("peak_bf16_gflops").is_null());
  const std::string why = hidden.at("bf16_unavailable").get<std::string>();
  CHECK_MESSAGE((why.find("no avx512_bf16 or AMX") != std::string::npos || why.find("without oneDNN") != std::string::npos),
                why);
  CHECK(hidden.at("peak_sgemm_gflops").get<double>() > 0);
  CHECK(hidden.at("mfu").get<double>() > 0);
  REQUIRE_MESSAGE(text.exit_code == 0, text.output);
  CHECK_MESSAGE(text.output.find("peaks:    fp32 ") != std::string::npos, text.output);
  CHECK_MESSAGE(text.output.find("bf16 not available: " + why) != std::string::npos, text.output);
  CHECK_MESSAGE(text.output.find("GFLOP/s, MFU ") != std::string::npos, text.output);
  CHECK_MESSAGE(text.output.find("% of the fp32 peak") != std::string::npos, text.output);
}

TEST_CASE("bench: the report notes when the threads did not get their cores") {
  BenchResult r;
  r.cell = "lstm";
  r.blas_core = "Haswell";
  r.threads = 2;
  r.peaks.sgemm_gflops = 100;
  r.peaks.bf16_unavailable = "oneDNN's kernels here are avx2";
  r.cpu_per_wall = 1.9;
  const std::string quiet = FormatBenchReport(r);
  CHECK(quiet.find("cpu/wall:       1.90") != std::string::npos);
  CHECK(quiet.find("peaks:    fp32 100.0 GFLOP/s (OpenBLAS sgemm, 2048^3), bf16 not available: oneDNN's kernels "
                   "here are avx2\n") != std::string::npos);
  CHECK(quiet.find("note:") == std::string::npos);
  r.cpu_per_wall = 0.95;
  CHECK(FormatBenchReport(r).find("note:     the 2 threads got 0.95 cores on average") != std::string::npos);
}

}  // namespace
}  // namespace charlm
