// Tests for lib/text/sampler: the book's random and consecutive minibatches, per-epoch layouts, random offsets.
#include <doctest/doctest.h>

#include <algorithm>
#include <numeric>
#include <set>
#include <string>
#include <vector>

#include "util/errors.h"
#include "text/sampler.h"

namespace charlm {
namespace {

struct Batch {
  std::vector<int> x;
  std::vector<int> y;
};

std::vector<Batch> Epoch(const Sampler& sampler) {
  std::vector<Batch> batches;
  const auto size = static_cast<std::size_t>(sampler.batch_size() * sampler.num_steps());
  for (std::int64_t i = 0; i < sampler.num_batches(); ++i) {
    Batch batch{std::vector<int>(size), std::vector<int>(size)};
    sampler.GetBatch(i, batch.x.data(), batch.y.data());
    batches.push_back(std::move(batch));
  }
  return batches;
}

std::vector<int> Range(int begin, int end) {
  std::vector<int> values(static_cast<std::size_t>(end - begin));
  std::iota(values.begin(), values.end(), begin);
  return values;
}

std::vector<int> Concat(std::vector<int> a, const std::vector<int>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

std::vector<int> PlusOne(std::vector<int> values) {
  for (int& v : values) ++v;
  return values;
}

// The first id of each row of a batch: the window starts.
std::vector<int> RowStarts(const Batch& batch, int num_steps) {
  std::vector<int> starts;
  for (std::size_t i = 0; i < batch.x.size(); i += static_cast<std::size_t>(num_steps)) starts.push_back(batch.x[i]);
  return starts;
}

std::vector<int> WindowOrder(Sampler& sampler, std::int64_t epoch) {
  sampler.BeginEpoch(epoch);
  std::vector<int> order;
  for (const Batch& batch : Epoch(sampler)) {
    const auto starts = RowStarts(batch, sampler.num_steps());
    order.insert(order.end(), starts.begin(), starts.end());
  }
  return order;
}

const std::vector<int> kZeroTo29 = Range(0, 30);

TEST_CASE("sampler: consecutive on 0..29 with batch 2 x 6 steps is the book's output") {
  Sampler sampler(kZeroTo29, SamplerKind::kConsecutive, 2, 6, false, 42);
  REQUIRE(sampler.num_batches() == 2);
  const auto batches = Epoch(sampler);
  CHECK(batches[0].x == Concat(Range(0, 6), Range(15, 21)));
  CHECK(batches[1].x == Concat(Range(6, 12), Range(21, 27)));
  for (const Batch& batch : batches) CHECK(batch.y == PlusOne(batch.x));
  int x[12];
  int y[12];
  CHECK_THROWS_AS(sampler.GetBatch(2, x, y), std::out_of_range);
  CHECK_THROWS_AS(sampler.GetBatch(-1, x, y), std::out_of_range);
  sampler.BeginEpoch(5);  // without a random offset every epoch is the same
  CHECK(Epoch(sampler)[1].x == batches[1].x);
}

TEST_CASE("sampler: random on 0..29 yields each window once per epoch, Y = X + 1") {
  Sampler sampler(kZeroTo29, SamplerKind::kRandom, 2, 6, false, 42);
  for (std::int64_t epoch = 0; epoch < 20; ++epoch) {
    sampler.BeginEpoch(epoch);
    REQUIRE(sampler.num_batches() == 2);
    std::multiset<int> starts;
    for (const Batch& batch : Epoch(sampler)) {
      CHECK(batch.y == PlusOne(batch.x));
      for (int row = 0; row < 2; ++row) {
        const int start = batch.x[static_cast<std::size_t>(row * 6)];
        CHECK(std::vector<int>(batch.x.begin() + row * 6, batch.x.begin() + row * 6 + 6) == Range(start, start + 6));
        starts.insert(start);
      }
    }
    CHECK(starts == std::multiset<int>{0, 6, 12, 18});
  }
}

TEST_CASE("sampler: the random order is a function of (seed, epoch)") {
  Sampler a(kZeroTo29, SamplerKind::kRandom, 2, 6, false, 7);
  Sampler b(kZeroTo29, SamplerKind::kRandom, 2, 6, false, 7);
  CHECK(WindowOrder(a, 3) == WindowOrder(b, 3));
  const auto epoch3 = WindowOrder(a, 3);
  WindowOrder(a, 4);
  CHECK(WindowOrder(a, 3) == epoch3);  // revisiting an epoch reproduces it, as resuming needs

  // 4 windows have 24 orders, so two epochs may agree by chance; across 10 epochs some must differ.
  std::set<std::vector<int>> orders;
  for (std::int64_t epoch = 0; epoch < 10; ++epoch) orders.insert(WindowOrder(a, epoch));
  CHECK(orders.size() > 1);
  Sampler other_seed(kZeroTo29, SamplerKind::kRandom, 2, 6, false, 8);
  bool any_differs = false;
  for (std::int64_t epoch = 0; epoch < 10; ++epoch)
    any_differs |= WindowOrder(a, epoch) != WindowOrder(other_seed, epoch);
  CHECK(any_differs);
}

TEST_CASE("sampler: random offsets move the windows but keep Y = X + 1 inside the data") {
  const std::vector<int> data = Range(100, 200);
  for (SamplerKind kind : {SamplerKind::kRandom, SamplerKind::kConsecutive}) {
    CAPTURE(EnumName(kind));
    Sampler sampler(data, kind, 3, 5, true, 11);
    std::set<std::int64_t> offsets;
    for (std::int64_t epoch = 0; epoch < 30; ++epoch) {
      sampler.BeginEpoch(epoch);
      CHECK(sampler.offset() >= 0);
      CHECK(sampler.offset() < 5);
      offsets.insert(sampler.offset());
      REQUIRE(sampler.num_batches() >= 1);
      for (const Batch& batch : Epoch(sampler)) {
        CHECK(batch.y == PlusOne(batch.x));
        for (int v : batch.x) CHECK((v >= 100 + sampler.offset() && v < 199));
        if (kind == SamplerKind::kRandom) {
          for (int row = 0; row < 3; ++row) {
            const int start = batch.x[static_cast<std::size_t>(row * 5)];
            CHECK((start - 100 - sampler.offset()) % 5 == 0);  // windows begin on the shifted grid
          }
        }
      }
    }
    CHECK(offsets.size() > 1);
  }
}

TEST_CASE("sampler: consecutive batches continue each row across the epoch") {
  const std::vector<int> data = Range(0, 97);
  Sampler sampler(data, SamplerKind::kConsecutive, 4, 5, true, 3);
  sampler.BeginEpoch(2);
  const auto batches = Epoch(sampler);
  REQUIRE(batches.size() >= 2);
  for (std::size_t i = 1; i < batches.size(); ++i) {
    for (int row = 0; row < 4; ++row) {
      CHECK(batches[i].x[static_cast<std::size_t>(row * 5)] ==
            batches[i - 1].x[static_cast<std::size_t>(row * 5 + 4)] + 1);
    }
  }
}

TEST_CASE("sampler: the book's batch counts on a longer text") {
  const std::vector<int> data = Range(0, 5000);
  Sampler random(data, SamplerKind::kRandom, 32, 35, false, 0);
  CHECK(random.num_batches() == 4);  // 4999 / 35 = 142 windows, / 32
  Sampler consecutive(data, SamplerKind::kConsecutive, 32, 35, false, 0);
  CHECK(consecutive.num_batches() == 4);  // rows of 5000 / 32 = 156, (156 - 1) / 35
}

TEST_CASE("sampler: text too short for one batch is a UserError giving the needed length") {
  const auto message = [](std::size_t length, SamplerKind kind, bool random_offset) -> std::string {
    const std::vector<int> data(length, 0);
    try {
      Sampler sampler(data, kind, 2, 6, random_offset, 0);
    } catch (const UserError& e) {
      return e.what();
    }
    return "";
  };
  CHECK(message(13, SamplerKind::kRandom, false).empty());
  CHECK(message(12, SamplerKind::kRandom, false).find("needs 13") != std::string::npos);
  CHECK(message(12, SamplerKind::kRandom, false).find("lower batch_size or num_steps") != std::string::npos);
  CHECK(message(14, SamplerKind::kConsecutive, false).empty());
  CHECK(message(13, SamplerKind::kConsecutive, false).find("needs 14") != std::string::npos);
  CHECK(message(18, SamplerKind::kRandom, true).empty());
  CHECK(message(17, SamplerKind::kRandom, true).find("needs 18") != std::string::npos);
  CHECK_THROWS_AS(Sampler(kZeroTo29, SamplerKind::kRandom, 0, 6, false, 0), UserError);
  CHECK_THROWS_AS(Sampler(kZeroTo29, SamplerKind::kRandom, 2, 0, false, 0), UserError);
}

TEST_CASE("sampler: the minimum length always leaves at least one batch in every epoch") {
  for (SamplerKind kind : {SamplerKind::kRandom, SamplerKind::kConsecutive}) {
    for (bool random_offset : {false, true}) {
      for (int batch_size = 1; batch_size <= 4; ++batch_size) {
        for (int num_steps = 1; num_steps <= 7; ++num_steps) {
          const auto length = Sampler::MinimumLength(kind, batch_size, num_steps, random_offset);
          const std::vector<int> data = Range(0, static_cast<int>(length));
          Sampler sampler(data, kind, batch_size, num_steps, random_offset, 1);
          for (std::int64_t epoch = 0; epoch < 8; ++epoch) {
            sampler.BeginEpoch(epoch);
            CHECK(sampler.num_batches() >= 1);
          }
        }
      }
    }
  }
}

}  // namespace
}  // namespace charlm
