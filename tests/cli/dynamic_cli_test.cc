// eval --dynamic and score --dynamic from the command line: the JSON fields, no step equals static one-stream eval,
// the checkpoint's bytes unchanged, the same bits at any thread count, the statistics' fallback, hostile values.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/dynamic_options.h"
#include "cli_util.h"
#include "test_util.h"
#include "util/errors.h"
#include "util/shell_quote.h"

namespace charlm {
namespace {

using testing::RunResult;
using testing::TempDir;

nlohmann::json Json(const TempDir& dir, const std::vector<std::string>& args) {
  const RunResult result = testing::RunStdout(dir, args);
  const std::string shown = result.output + testing::ReadFile(dir / "stderr.txt");
  REQUIRE_MESSAGE(result.exit_code == 0, shown);
  REQUIRE_MESSAGE(nlohmann::json::accept(result.output), result.output);
  return nlohmann::json::parse(result.output);
}

TEST_CASE("dynamic cli: eval --dynamic --json reports dynamic and static figures, the method and its settings") {
  TempDir dir;
  testing::WriteTinyRun(dir);
  testing::WriteFile(dir / "held.txt", testing::WordText(30));
  REQUIRE(testing::Run(dir, {"train", "--config", "tiny.json"}).exit_code == 0);
  const std::string checkpoint_bytes = testing::ReadFile(dir / "run" / "best.ckpt");

  const nlohmann::json fixed = Json(dir, {"eval", "--checkpoint", "run/best.ckpt", "--split", "val", "--json"});
  const nlohmann::json adapted =
      Json(dir, {"eval", "--checkpoint", "run/best.ckpt", "--split", "val", "--json", "--dynamic"});
  for (const char* key : {"perplexity", "bits_per_char", "static_perplexity", "static_bits_per_char", "method",
                          "dynamic_segment", "dynamic_lr", "dynamic_decay", "stats_source", "tokens"}) {
    CHECK_MESSAGE(adapted.contains(key), key);
  }
  CHECK(adapted["method"] == "dynamic");
  CHECK(adapted["stats_source"] == "training split");
  CHECK(adapted["static_perplexity"].get<double>() == doctest::Approx(fixed["perplexity"].get<double>()));
  CHECK(adapted["tokens"] == fixed["tokens"]);
  CHECK(adapted["perplexity"].get<double>() != adapted["static_perplexity"].get<double>());
  CHECK(testing::ReadFile(dir / "stderr.txt").find("training split") != std::string::npos);

  // No step, no decay: the figure of static one-stream evaluation.
  const nlohmann::json one_stream =
      Json(dir, {"eval", "--checkpoint", "run/best.ckpt", "--text", "held.txt", "--json", "--streams", "1"});
  const nlohmann::json still = Json(dir, {"eval", "--checkpoint", "run/best.ckpt", "--text", "held.txt", "--json",
                                          "--dynamic", "--dynamic-lr", "0", "--dynamic-decay", "0"});
  CHECK(still["perplexity"].get<double>() == doctest::Approx(one_stream["perplexity"].get<double>()).epsilon(1e-6));

  // The same bits on 1 and 2 threads.
  const nlohmann::json one_thread = Json(dir, {"eval", "--checkpoint", "run/best.ckpt", "--text", "held.txt", "--json",
                                               "--dynamic", "--threads", "1"});
  const nlohmann::json two_threads = Json(dir, {"eval", "--checkpoint", "run/best.ckpt", "--text", "held.txt",
                                                "--json", "--dynamic", "--threads", "2"});
  CHECK(one_thread["bits_per_char"].get<double>() == two_threads["bits_per_char"].get<double>());

  // score --dynamic: surprisal under adaptation, same total as eval's over the same text from one stream.
  const nlohmann::json scored =
      Json(dir, {"score", "--checkpoint", "run/best.ckpt", "--text", "held.txt", "--json", "--dynamic"});
  CHECK(scored["method"] == "dynamic");
  CHECK(scored["surprisal_bits"].size() == scored["chars"].size());
  CHECK(scored["bits_per_char"].get<double>() == doctest::Approx(one_thread["bits_per_char"].get<double>()).epsilon(1e-9));
  CHECK(testing::ReadFile(dir / "run" / "best.ckpt") == checkpoint_bytes);

  // --mix-ngram, alone and with --dynamic: the method and the weight chosen on the training split's tail.
  const nlohmann::json mixed =
      Json(dir, {"eval", "--checkpoint", "run/best.ckpt", "--split", "val", "--json", "--mix-ngram"});
  CHECK(mixed["method"] == "ngram");
  CHECK(mixed["ngram_order"] == 5);
  CHECK(mixed["ngram_weight"].get<double>() >= 0.0);
  CHECK(mixed["ngram_weight"].get<double>() <= 0.99);
  CHECK(mixed["static_perplexity"].get<double>() == doctest::Approx(fixed["perplexity"].get<double>()));
  CHECK_FALSE(mixed.contains("dynamic_lr"));
  const nlohmann::json both =
      Json(dir, {"score", "--checkpoint", "run/best.ckpt", "--text", "held.txt", "--json", "--mix-ngram", "--dynamic"});
  CHECK(both["method"] == "dynamic+ngram");
  CHECK(both.contains("ngram_weight"));
  CHECK(both.contains("dynamic_lr"));

  // Without the training text, the statistics come from the scored text's own past, and it says so.
  std::filesystem::rename(dir / "text.txt", dir / "moved.txt");
  const nlohmann::json own = Json(dir, {"eval", "--checkpoint", "run/best.ckpt", "--text", "held.txt", "--json", "--dynamic"});
  CHECK(own["stats_source"] == "scored text");
  CHECK(testing::ReadFile(dir / "stderr.txt").find("own past") != std::string::npos);
  // The mixture needs the training text: a one-line error says so.
  CHECK_USER_ERROR(testing::Run(dir, {"eval", "--checkpoint", "run/best.ckpt", "--text", "held.txt", "--mix-ngram"}),
                   "--mix-ngram needs the checkpoint's training text");
}

TEST_CASE("dynamic cli: a text whose per-character buffers need more than half the memory is refused first") {
  CHECK_NOTHROW(CheckAdaptiveFits(1000000, std::uint64_t{64} << 20));  // 32 MB of 64 MiB
  CHECK_NOTHROW(CheckAdaptiveFits(std::int64_t{1} << 40, 0));           // memory unknown: no check
  try {
    CheckAdaptiveFits(500000000, std::uint64_t{24} << 30);  // 16 GB of 25.8 GB
    FAIL("expected a UserError");
  } catch (const UserError& error) {
    const std::string message = error.what();
    CHECK_MESSAGE(message.find("16.0 GB for 500000000 characters, more than half of this machine's") != std::string::npos, message);
    CHECK(message.find("split the file") != std::string::npos);
  }
}

TEST_CASE("dynamic cli: hostile values of the --dynamic options are one-line errors") {
  TempDir dir;
  testing::WriteTinyRun(dir);
  REQUIRE(testing::Run(dir, {"train", "--config", "tiny.json"}).exit_code == 0);
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"--dynamic", "--dynamic-segment", "0"}, "--dynamic-segment 0 is out of range"},
      {{"--dynamic", "--dynamic-segment", "10001"}, "--dynamic-segment 10001 is out of range"},
      {{"--dynamic", "--dynamic-segment", "-3"}, "--dynamic-segment -3 is out of range"},
      {{"--dynamic", "--dynamic-lr", "-1"}, "--dynamic-lr -1"},
      {{"--dynamic", "--dynamic-lr", "nan"}, "--dynamic-lr nan is out of range"},
      {{"--dynamic", "--dynamic-lr", "inf"}, "--dynamic-lr inf is out of range"},
      {{"--dynamic", "--dynamic-decay", "1.5"}, "--dynamic-decay 1.5 is out of range"},
      {{"--dynamic-lr", "0.001"}, "--dynamic-lr is a setting of --dynamic"},
  };
  for (const char* command : {"eval", "score"}) {
    for (const auto& [extra, phrase] : cases) {
      std::vector<std::string> args = {command, "--checkpoint", "run/best.ckpt", "--text", "text.txt"};
      args.insert(args.end(), extra.begin(), extra.end());
      CAPTURE(command);
      CAPTURE(phrase);
      CHECK_USER_ERROR(testing::Run(dir, args), phrase);
    }
  }
}

}  // namespace
}  // namespace charlm
