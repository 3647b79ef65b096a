// Checks the benchmark's FLOP formula and presets, and that a very short run reports sane, positive figures.
#include <doctest/doctest.h>

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
  CHECK(r.sgemm_gflops > 0);
  CHECK(r.peak_rss_mb > 1);
  CHECK(!r.blas_core.empty());
  CHECK(r.train_gflops == doctest::Approx(3.0 * ForwardFlopsPerToken(c, 20) * r.train_tokens_per_s / 1e9));
}

TEST_CASE("bench: the report notes when the threads did not get their cores") {
  BenchResult r;
  r.cell = "lstm";
  r.blas_core = "Haswell";
  r.threads = 2;
  r.sgemm_gflops = 100;
  r.cpu_per_wall = 1.9;
  const std::string quiet = FormatBenchReport(r);
  CHECK(quiet.find("cpu/wall:       1.90") != std::string::npos);
  CHECK(quiet.find("note:") == std::string::npos);
  r.cpu_per_wall = 0.95;
  CHECK(FormatBenchReport(r).find("note:     the 2 threads got 0.95 cores on average") != std::string::npos);
}

}  // namespace
}  // namespace charlm
