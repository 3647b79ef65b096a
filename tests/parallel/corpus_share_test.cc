// Tests for lib/parallel/corpus_share: N processes (threads here) counting parts of a corpus get the whole text's
// vocabulary, split and notes, and each holds exactly the ids its streams read.
#include <doctest/doctest.h>

#include <barrier>
#include <exception>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "parallel/corpus_share.h"
#include "test_util.h"
#include "text/dataset.h"
#include "text/sampler.h"
#include "util/utf8.h"

namespace charlm {
namespace {

using testing::TempDir;
using testing::WriteFile;

// The collectives between threads of one process: each AllGather meets every worker at a barrier.
class ThreadJob {
 public:
  explicit ThreadJob(int size) : size_(size), barrier_(size), slots_(static_cast<std::size_t>(size)) {}
  int size() const { return size_; }
  int sums = 0;  // SumInPlace calls, counted by rank 0
  void AllGather(int rank, std::span<const std::uint64_t> mine, std::span<std::uint64_t> all) {
    slots_[static_cast<std::size_t>(rank)].assign(mine.begin(), mine.end());
    barrier_.arrive_and_wait();
    std::size_t at = 0;
    for (const auto& slot : slots_) {
      REQUIRE(slot.size() == mine.size());
      for (const std::uint64_t v : slot) all[at++] = v;
    }
    barrier_.arrive_and_wait();  // nobody refills a slot before everyone has read it
  }
  void Sum(int rank, std::span<double> values) {
    if (rank == 0) ++sums;
    doubles_[static_cast<std::size_t>(rank)].assign(values.begin(), values.end());
    barrier_.arrive_and_wait();
    for (std::size_t k = 0; k < values.size(); ++k) {
      double sum = 0;
      for (const auto& slot : doubles_) sum += slot[k];
      values[k] = sum;
    }
    barrier_.arrive_and_wait();
  }

 private:
  int size_;
  std::barrier<> barrier_;
  std::vector<std::vector<std::uint64_t>> slots_;
  std::vector<std::vector<double>> doubles_ = std::vector<std::vector<double>>(static_cast<std::size_t>(size_));
};

class ThreadWorkers final : public Workers {
 public:
  ThreadWorkers(ThreadJob& job, int rank) : job_(job), rank_(rank) {}
  int rank() const override { return rank_; }
  int size() const override { return job_.size(); }
  int local_size() const override { return job_.size(); }
  void SumInPlace(std::span<float>) override { FAIL("not used in reading"); }
  void SumInPlace(std::span<double> values) override { job_.Sum(rank_, values); }
  void StartSum(std::span<float>) override { FAIL("not used in reading"); }
  void PollSums() override {}
  void FinishSums() override {}
  int Max(int value) override { return value; }
  void AllGather(std::span<const float>, std::span<float>) override { FAIL("not used in reading"); }
  void AllGather(std::span<const std::uint64_t> mine, std::span<std::uint64_t> all) override {
    job_.AllGather(rank_, mine, all);
  }
  [[noreturn]] void Abort(int) override { throw std::logic_error("abort"); }

 private:
  ThreadJob& job_;
  int rank_;
};

// Reads the shares of a job of `processes`, each in its thread; an error of any is rethrown. `sums`, if given,
// receives the number of SumInPlace calls.
std::vector<CorpusShare> ReadShares(const Config& config, int processes, int* sums = nullptr) {
  ThreadJob job(processes);
  std::vector<CorpusShare> shares(static_cast<std::size_t>(processes));
  std::vector<std::exception_ptr> errors(shares.size());
  std::vector<std::thread> threads;
  const int streams = config.train.batch_size / processes;
  for (int rank = 0; rank < processes; ++rank) {
    threads.emplace_back([&, rank] {
      try {
        ThreadWorkers workers(job, rank);
        shares[static_cast<std::size_t>(rank)] = ReadCorpusShare(workers, config, StreamShard{rank * streams, streams});
      } catch (...) {
        errors[static_cast<std::size_t>(rank)] = std::current_exception();
      }
    });
  }
  for (std::thread& t : threads) t.join();
  for (const auto& error : errors) {
    if (error) std::rethrow_exception(error);
  }
  if (sums != nullptr) *sums = job.sums;
  return shares;
}

// About 40 kB of what makes reading in parts hard: a BOM, "\r\n", lone "\r", 2- to 4-byte characters, controls,
// a line far longer than a part, and a "\r" at the very end.
std::string HardText() {
  std::mt19937 rng(11);
  const std::vector<std::string> words = {"the ", "caf\xC3\xA9 ", "\xE6\x88\x91\xE4\xBD\xA0", "\xF0\x9F\x8E\xB5",
                                          "\r\n", "\n", "\t", "ab\rc", "\x0C", "\xD0\xB6", "x", "\r\n\r\n"};
  std::string text = "\xEF\xBB\xBF";
  while (text.size() < 20'000) text += words[rng() % words.size()];
  text += std::string(12'000, 'q');  // one long line
  while (text.size() < 40'000) text += words[rng() % words.size()];
  return text + "\xE2\x82\xAC\r";
}

// The ids positions [begin, begin + count) of `view` as ints.
std::vector<int> Slice(IdView view, std::int64_t begin, std::int64_t count) {
  return view.subspan(static_cast<std::size_t>(begin), static_cast<std::size_t>(count)).ToVector();
}

TEST_CASE("corpus share: N processes reading parts hold the whole text's vocabulary, split, notes and their ids") {
  TempDir dir;
  const auto path = (dir / "hard.txt").string();
  WriteFile(path, HardText());
  for (const int processes : {1, 2, 3, 5}) {
    for (const NewlinePolicy policy : {NewlinePolicy::kKeep, NewlinePolicy::kSpace, NewlinePolicy::kDrop}) {
      for (const std::int64_t max_chars : {std::int64_t{0}, std::int64_t{23'456}, std::int64_t{9'000}}) {
        for (const SamplerKind sampler : {SamplerKind::kConsecutive, SamplerKind::kRandom}) {
          Config config;
          config.data.corpus.paths = {path};
          config.data.newline = policy;
          config.data.max_chars = max_chars;
          config.data.min_freq = max_chars == 9'000 ? 3 : 1;
          config.data.test_fraction = 0.05;
          config.train.sampler = sampler;
          config.train.random_offset = max_chars != 0;
          config.train.batch_size = 30;
          config.train.num_steps = 7;
          CAPTURE(processes);
          CAPTURE(EnumName(policy));
          CAPTURE(max_chars);
          CAPTURE(EnumName(sampler));
          const Dataset whole = LoadDataset(config.data);
          const CorpusIds read = ReadCorpusIds(path, policy, max_chars, config.data.min_freq);
          const std::vector<CorpusShare> shares = ReadShares(config, processes);
          const int streams = config.train.batch_size / processes;
          for (int rank = 0; rank < processes; ++rank) {
            CAPTURE(rank);
            const CorpusShare& share = shares[static_cast<std::size_t>(rank)];
            const Dataset& mine = share.dataset;
            CHECK(mine.vocab == whole.vocab);
            CHECK(mine.split.train_end == whole.split.train_end);
            CHECK(mine.split.val_end == whole.split.val_end);
            CHECK(mine.split.size == whole.split.size);
            CHECK(share.notes.chars == read.notes.chars);
            CHECK(share.notes.crlf_line_breaks == read.notes.crlf_line_breaks);
            CHECK(share.notes.control_chars == read.notes.control_chars);
            CHECK(share.notes.first_control == read.notes.first_control);
            CHECK(share.notes.first_control_index == read.notes.first_control_index);
            REQUIRE(!mine.whole());
            CHECK(mine.TrainHeld().ToVector() == Slice(whole.Train(), mine.train_begin, mine.train_held));
            CHECK(mine.Validation().ToVector() == whole.Validation().ToVector());
            // Every batch of this rank's streams, in epochs with different offsets, reads only what it holds.
            Sampler from_whole(whole.Train(), sampler, config.train.batch_size, config.train.num_steps,
                               config.train.random_offset, 17);
            Sampler from_share(mine.TrainHeld(), mine.train_begin, mine.train_chars(), sampler,
                               config.train.batch_size, config.train.num_steps, config.train.random_offset, 17);
            const std::size_t ids = static_cast<std::size_t>(streams * config.train.num_steps);
            for (std::int64_t epoch = 0; epoch < 4; ++epoch) {
              from_whole.BeginEpoch(epoch);
              from_share.BeginEpoch(epoch);
              REQUIRE(from_share.num_batches() == from_whole.num_batches());
              for (std::int64_t batch = 0; batch < from_whole.num_batches(); ++batch) {
                std::vector<int> x(ids), y(ids), x_share(ids), y_share(ids);
                from_whole.GetStreams(batch, rank * streams, streams, x.data(), y.data());
                from_share.GetStreams(batch, rank * streams, streams, x_share.data(), y_share.data());
                CHECK(x_share == x);
                CHECK(y_share == y);
              }
            }
            // The consecutive sampler's later blocks hold about their 1/N; rank 0 holds the baseline's text too.
            if (sampler == SamplerKind::kConsecutive && rank > 0) {
              const std::int64_t row = whole.train_chars() / config.train.batch_size;
              CHECK(mine.train_held <= streams * row + config.train.num_steps * (processes + 1));
            }
            if (sampler == SamplerKind::kRandom || rank == 0) CHECK(mine.train_held == whole.train_chars());
          }
        }
      }
    }
  }
}

TEST_CASE("corpus share: a text of every Unicode character is counted by a dense sum and gives the whole vocabulary") {
  TempDir dir;
  const auto path = (dir / "every.txt").string();
  std::u32string every;
  for (int copy = 0; copy < 3; ++copy) {  // so that every process's parts hold most characters
    for (char32_t c = 0x20; c < 0x110000; ++c) {
      if (c >= 0xD800 && c <= 0xDFFF) continue;  // surrogates are not characters
      every.push_back(c);
      if (c % 997 == 0) every.push_back(U'a');
    }
  }
  WriteFile(path, EncodeUtf8(every));
  Config config;
  config.data.corpus.paths = {path};
  config.train.batch_size = 4;
  config.train.num_steps = 5;
  const Dataset whole = LoadDataset(config.data);
  for (const int processes : {2, 3}) {  // about 1.1 M characters in each of the lists: past the dense sum's threshold
    CAPTURE(processes);
    int sums = 0;
    const std::vector<CorpusShare> shares = ReadShares(config, processes, &sums);
    CHECK(sums == 1);
    for (const CorpusShare& share : shares) {
      CHECK(share.dataset.vocab == whole.vocab);
      CHECK(share.dataset.Validation().ToVector() == whole.Validation().ToVector());
    }
  }
}

TEST_CASE("corpus share: a share whose ids would take over half the memory is refused in one line") {
  CHECK_NOTHROW(CheckShareFits(1, "big.txt", 250, 2, 1000));
  CHECK_NOTHROW(CheckShareFits(1, "big.txt", 1'000'000, 4, 0));  // memory unknown
  CHECK_THROWS_WITH_AS(CheckShareFits(1, "big.txt", 251, 2, 1000),
                       "process 1's share of corpus file 'big.txt' is 251 characters, whose ids need 502 bytes, more "
                       "than half of its machine's 1.0 kB of memory: start more processes (over more machines), "
                       "or train on the text's first part with --set data.max_chars=N",
                       UserError);
}

TEST_CASE("corpus share: a part starts where a character starts, never inside \\r\\n or a UTF-8 sequence") {
  TempDir dir;
  const auto path = (dir / "starts.txt").string();
  const std::string bytes = "\xEF\xBB\xBF" "a\r\nb\xF0\x9F\x8E\xB5\r\rc\n";  // BOM a \r\n b U+1F3B5 \r \r c \n
  WriteFile(path, bytes);
  const std::vector<std::uint64_t> expected = {0, 3, 3, 3, 4, 6, 6, 7, 11, 11, 11, 11, 12, 13, 14, 15, 15};
  for (std::uint64_t at = 0; at < expected.size(); ++at) {
    CAPTURE(at);
    CHECK(CorpusPartStart(path, at) == expected[at]);
  }
  // Counted part by part from every start, the text is the whole file's.
  for (std::uint64_t cut = 1; cut < bytes.size(); ++cut) {
    CAPTURE(cut);
    const std::uint64_t start = CorpusPartStart(path, cut);
    const CorpusPartCount head = CountCorpusPart(path, NewlinePolicy::kKeep, 0, start, 0);
    const CorpusPartCount tail = CountCorpusPart(path, NewlinePolicy::kKeep, start, bytes.size(), 0);
    CHECK(head.notes.chars + tail.notes.chars == 8);  // a \n b U+1F3B5 \r \r c \n
    CHECK(head.notes.crlf_line_breaks + tail.notes.crlf_line_breaks == 1);
    CHECK(head.notes.control_chars + tail.notes.control_chars == 2);
  }
}

}  // namespace
}  // namespace charlm
