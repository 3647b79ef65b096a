// A checkpoint's trainer state read back: every count is a whole number that fits its field, or a UserError.
#include <doctest/doctest.h>

#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "util/errors.h"
#include "util/json_parse.h"
#include "run/run_state.h"

namespace charlm {
namespace {

TEST_CASE("json: ExactInteger takes JSON integers that fit the type and nothing else") {
  using nlohmann::json;
  CHECK(ExactInteger<int>(json(7)) == 7);
  CHECK(ExactInteger<int>(json(-7)) == -7);
  CHECK(ExactInteger<int>(json(2147483647)) == 2147483647);
  CHECK(ExactInteger<int>(json(-2147483648LL)) == std::numeric_limits<int>::min());
  CHECK_FALSE(ExactInteger<int>(json(2147483648LL)));
  CHECK_FALSE(ExactInteger<int>(json(4294967297LL)));  // a plain cast makes this 1
  CHECK_FALSE(ExactInteger<int>(json(1.7e308)));       // a plain cast is undefined behaviour
  CHECK_FALSE(ExactInteger<int>(json(2.0)));           // a float spelling, even of a whole number
  CHECK_FALSE(ExactInteger<int>(json("3")));
  CHECK(ExactInteger<std::int64_t>(json(std::numeric_limits<std::int64_t>::max())) ==
        std::numeric_limits<std::int64_t>::max());
  CHECK_FALSE(ExactInteger<std::int64_t>(json(std::numeric_limits<std::uint64_t>::max())));  // a cast gives -1
}

TEST_CASE("progress: a trainer state with a count that is fractional, too large or not a number is refused") {
  Progress written;
  written.epochs_completed = 2;
  written.next_batch = 3;
  written.partial_tokens = 40;
  written.partial_loss_sum = 12.5;
  written.global_step = 11;
  written.epochs_since_best = 1;
  const nlohmann::json good = written.ToJson();
  const Progress read = Progress::FromJson(good, "x.ckpt");
  CHECK(read.epochs_completed == 2);
  CHECK(read.next_batch == 3);
  CHECK(read.global_step == 11);
  CHECK(read.ToJson() == good);

  const std::vector<std::pair<std::string, nlohmann::json>> cases = {
      {"epochs_completed", 1.7e308},          // the fuzzer's find: undefined behaviour in a cast to int
      {"epochs_completed", 4294967297LL},     // 2^32 + 1: a cast to int makes it 1 and resumes the wrong epoch
      {"epochs_since_best", 2147483648LL},    // one past int
      {"epochs_since_best", 2.5},             // a cast truncates to 2
      {"next_batch", 3.5},                    // the same for the 64-bit fields
      {"global_step", 1e30},                  //
      {"partial_tokens", std::numeric_limits<std::uint64_t>::max()},  // a cast gives -1
      {"global_step", "11"},
      {"epochs_completed", -1},
  };
  for (const auto& [field, value] : cases) {
    CAPTURE(field);
    CAPTURE(value.dump());
    nlohmann::json changed = good;
    changed[field] = value;
    CHECK_THROWS_WITH_AS(Progress::FromJson(changed, "x.ckpt"),
                         doctest::Contains(("x.ckpt: the checkpoint's training state is unreadable (" + field +
                                            " is ")
                                               .c_str()),
                         UserError);
  }
  // The largest count a field holds is still read.
  nlohmann::json largest = good;
  largest["epochs_completed"] = 2147483647;
  largest["global_step"] = std::numeric_limits<std::int64_t>::max();
  const Progress far = Progress::FromJson(largest, "x.ckpt");
  CHECK(far.epochs_completed == 2147483647);
  CHECK(far.global_step == std::numeric_limits<std::int64_t>::max());
}

}  // namespace
}  // namespace charlm
