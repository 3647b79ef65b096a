// Tests of the typed config: round trip, the key list, every error message, overrides, committed configs.
#include "config/config.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>
#include <functional>
#include <set>
#include <string>
#include <vector>

#include "util/errors.h"
#include "test_util.h"

namespace charlm {
namespace {

using nlohmann::json;
using testing::ReadFile;
using testing::SourceDir;
using testing::TempDir;
using testing::WriteFile;

// The message of the UserError that `action` throws, or "" (failing the test) when it throws none.
std::string UserErrorOf(const std::function<void()>& action) {
  try {
    action();
  } catch (const UserError& e) {
    return e.what();
  }
  FAIL_CHECK("expected a UserError");
  return "";
}

// Dotted keys of the leaves (non-object values) of a JSON object.
void CollectLeafKeys(const json& j, const std::string& prefix, std::set<std::string>& out) {
  for (const auto& [key, value] : j.items()) {
    if (value.is_object()) {
      CollectLeafKeys(value, prefix + key + ".", out);
    } else {
      out.insert(prefix + key);
    }
  }
}

std::set<std::string> LeafKeys(const json& j) {
  std::set<std::string> keys;
  CollectLeafKeys(j, "", keys);
  return keys;
}

// Written out by hand so that a field missing from the field lists in config.cc shows up here.
// clang-format off
const std::set<std::string> kDocumentedKeys = {
    "data.corpus", "data.newline", "data.max_chars", "data.val_fraction", "data.test_fraction", "data.min_freq", "data.include", "data.exclude", "data.separator", "data.on_invalid",
    "data.allow_changed_corpus", "data.unknown",
    "model.cell", "model.hidden_size", "model.num_layers", "model.embedding_size", "model.dropout",
    "model.recurrent_dropout", "model.locked_dropout", "model.weight_drop", "model.embedding_dropout",
    "model.tie_embeddings", "model.activation", "model.reset_after", "model.init",
    "train.sampler", "train.random_offset", "train.batch_size", "train.num_steps", "train.epochs",
    "train.optimizer.name", "train.optimizer.lr", "train.optimizer.momentum", "train.optimizer.beta1",
    "train.optimizer.beta2", "train.optimizer.eps", "train.optimizer.decay", "train.optimizer.weight_decay",
    "train.lr_schedule.name", "train.lr_schedule.step_size", "train.lr_schedule.gamma",
    "train.lr_schedule.warmup_steps", "train.lr_schedule.min_lr",
    "train.clip_norm", "train.seed", "train.threads", "train.precision", "train.engine", "train.eval_every", "train.checkpoint_every",
    "train.out_dir", "train.patience", "train.checkpoint_every_steps", "train.eval_every_steps",
    "train.eval_max_chars", "train.log_every_seconds", "train.max_steps", "train.max_minutes", "train.stall_seconds",
    "train.report",
    "generate.prefixes", "generate.length", "generate.every", "generate.temperature", "generate.top_k",
    "generate.top_p", "generate.greedy",
};
// clang-format on

// The key column of the generated Markdown table.
std::set<std::string> TableKeys(const std::string& table) {
  std::set<std::string> keys;
  std::size_t pos = 0;
  while ((pos = table.find("\n| `", pos)) != std::string::npos) {
    const std::size_t start = pos + 4;
    const std::size_t end = table.find('`', start);
    keys.insert(table.substr(start, end - start));
    pos = end;
  }
  return keys;
}

Config EveryFieldChanged() {
  Config c;
  c.data.corpus.paths = {"some/corpus.txt"};
  c.data.newline = NewlinePolicy::kDrop;
  c.data.max_chars = 12345678901;
  c.data.val_fraction = 0.25;
  c.data.test_fraction = 0.125;
  c.data.min_freq = 3;
  c.data.unknown = "skip";
  c.data.include = {"*.c"};
  c.data.exclude = {"*.o"};
  c.data.separator = "\n\n";
  c.data.on_invalid = InvalidDocumentPolicy::kError;
  c.data.allow_changed_corpus = true;
  c.model.cell = CellKind::kGru;
  c.model.hidden_size = 17;
  c.model.num_layers = 3;
  c.model.embedding_size = 17;  // == hidden_size, as tie_embeddings needs
  c.model.dropout = 0.35;
  c.model.recurrent_dropout = 0.15;
  c.model.locked_dropout = true;
  c.model.weight_drop = 0.5;
  c.model.embedding_dropout = 0.1;
  c.model.tie_embeddings = true;
  c.model.activation = Activation::kRelu;
  c.model.reset_after = false;
  c.model.init = InitScheme::kD2l;
  c.train.sampler = SamplerKind::kRandom;
  c.train.random_offset = true;
  c.train.batch_size = 7;
  c.train.num_steps = 9;
  c.train.epochs = 11;
  c.train.optimizer.name = OptimizerKind::kRmsprop;
  c.train.optimizer.lr = 0.125;
  c.train.optimizer.momentum = 0.5;
  c.train.optimizer.beta1 = 0.8;
  c.train.optimizer.beta2 = 0.99;
  c.train.optimizer.eps = 1e-6;
  c.train.optimizer.decay = 0.95;
  c.train.optimizer.weight_decay = 1e-4;
  c.train.lr_schedule.name = LrScheduleKind::kStep;
  c.train.lr_schedule.step_size = 4;
  c.train.lr_schedule.gamma = 0.75;
  c.train.lr_schedule.warmup_steps = 9000000000;
  c.train.lr_schedule.min_lr = 0.0625;
  c.train.clip_norm = 0.5;
  c.train.seed = 18446744073709551615ULL;
  c.train.threads = 2;
  c.train.precision = Precision::kBf16;
  c.train.engine = Engine::kOnednn;
  c.train.eval_every = 3;
  c.train.checkpoint_every = 5;
  c.train.out_dir = "runs/changed";
  c.train.patience = 6;
  c.train.checkpoint_every_steps = 100;
  c.train.eval_every_steps = 200;
  c.train.eval_max_chars = 5000;
  c.train.log_every_seconds = 2.5;
  c.train.max_steps = 7000;
  c.train.max_minutes = 90;
  c.train.stall_seconds = 20;
  c.train.report = false;
  c.generate.prefixes = {"爱", "我"};
  c.generate.length = 80;
  c.generate.every = 3;
  c.generate.temperature = 0.7;
  c.generate.top_k = 10;
  c.generate.top_p = 0.9;
  c.generate.greedy = true;
  return c;
}

Config ValidDefaults() {
  Config c;
  c.data.corpus.paths = {"corpus/jaychou_lyrics.txt"};
  return c;
}

TEST_CASE("config: defaults round trip through JSON") {
  const json written = ConfigToJson(Config{});
  CHECK(ConfigToJson(ConfigFromJson(written)) == written);
  CHECK(written["model"]["cell"] == "lstm");
  CHECK(written["train"]["optimizer"]["lr"] == 0.005);
  CHECK(written["generate"]["prefixes"] == json::array());  // no language assumed: samples start from the corpus
}

TEST_CASE("config: a config with every field changed reads back field by field") {
  const Config changed = EveryFieldChanged();
  const json written = ConfigToJson(changed);

  // Every leaf differs from its default, so a field the lists forget cannot pass by staying at its default.
  const json defaults = ConfigToJson(Config{});
  for (const auto& key : LeafKeys(written)) {
    std::string pointer = "/" + key;
    std::replace(pointer.begin(), pointer.end(), '.', '/');
    CHECK_MESSAGE(written.at(json::json_pointer(pointer)) != defaults.at(json::json_pointer(pointer)), key);
  }

  const Config back = ConfigFromJson(written);
  CHECK(ConfigToJson(back) == written);
  CHECK(back.data.corpus.Label() == "some/corpus.txt");
  CHECK(back.data.newline == NewlinePolicy::kDrop);
  CHECK(back.data.max_chars == 12345678901);
  CHECK(back.data.val_fraction == 0.25);
  CHECK(back.data.test_fraction == 0.125);
  CHECK(back.data.min_freq == 3);
  CHECK(back.data.unknown == "skip");
  CHECK(back.model.cell == CellKind::kGru);
  CHECK(back.model.hidden_size == 17);
  CHECK(back.model.num_layers == 3);
  CHECK(back.model.embedding_size == 17);
  CHECK(back.model.dropout == 0.35);
  CHECK(back.model.recurrent_dropout == 0.15);
  CHECK(back.model.locked_dropout == true);
  CHECK(back.model.weight_drop == 0.5);
  CHECK(back.model.embedding_dropout == 0.1);
  CHECK(back.model.tie_embeddings == true);
  CHECK(back.model.activation == Activation::kRelu);
  CHECK(back.model.reset_after == false);
  CHECK(back.model.init == InitScheme::kD2l);
  CHECK(back.train.sampler == SamplerKind::kRandom);
  CHECK(back.train.random_offset == true);
  CHECK(back.train.batch_size == 7);
  CHECK(back.train.num_steps == 9);
  CHECK(back.train.epochs == 11);
  CHECK(back.train.optimizer.name == OptimizerKind::kRmsprop);
  CHECK(back.train.optimizer.lr == 0.125);
  CHECK(back.train.optimizer.momentum == 0.5);
  CHECK(back.train.optimizer.beta1 == 0.8);
  CHECK(back.train.optimizer.beta2 == 0.99);
  CHECK(back.train.optimizer.eps == 1e-6);
  CHECK(back.train.optimizer.decay == 0.95);
  CHECK(back.train.optimizer.weight_decay == 1e-4);
  CHECK(back.train.lr_schedule.name == LrScheduleKind::kStep);
  CHECK(back.train.lr_schedule.step_size == 4);
  CHECK(back.train.lr_schedule.gamma == 0.75);
  CHECK(back.train.lr_schedule.warmup_steps == 9000000000);
  CHECK(back.train.lr_schedule.min_lr == 0.0625);
  CHECK(back.train.clip_norm == 0.5);
  CHECK(back.train.seed == 18446744073709551615ULL);
  CHECK(back.train.threads == 2);
  CHECK(back.train.eval_every == 3);
  CHECK(back.train.checkpoint_every == 5);
  CHECK(back.train.out_dir == "runs/changed");
  CHECK(back.train.patience == 6);
  CHECK(back.train.checkpoint_every_steps == 100);
  CHECK(back.train.eval_every_steps == 200);
  CHECK(back.train.eval_max_chars == 5000);
  CHECK(back.train.log_every_seconds == 2.5);
  CHECK(back.train.max_steps == 7000);
  CHECK(back.train.max_minutes == 90);
  CHECK(back.train.stall_seconds == 20);
  CHECK(!back.train.report);
  CHECK(back.generate.prefixes == std::vector<std::string>{"爱", "我"});
  CHECK(back.generate.length == 80);
  CHECK(back.generate.every == 3);
  CHECK(back.generate.temperature == 0.7);
  CHECK(back.generate.top_k == 10);
  CHECK(back.generate.top_p == 0.9);
  CHECK(back.generate.greedy == true);
  CHECK_NOTHROW(ValidateConfig(back));
}

TEST_CASE("config: ConfigToJson writes exactly the documented keys") {
  const std::set<std::string> written = LeafKeys(ConfigToJson(Config{}));
  CHECK(written == kDocumentedKeys);
  CHECK(TableKeys(ConfigKeysMarkdownTable()) == kDocumentedKeys);
}

TEST_CASE("config: docs/config.md and README.md hold the generated key table") {
  const std::string table = ConfigKeysMarkdownTable();
  CHECK(table.starts_with("| key | type | default | meaning |\n|---|---|---|---|\n"));
  CHECK(table.find("| `model.hidden_size` | integer >= 1 | `256` | ") != std::string::npos);
  CHECK(table.find("| `model.dropout` | number in [0, 1) | `0.2` | ") != std::string::npos);
  CHECK(table.find("| `model.cell` | one of `rnn`, `gru`, `lstm` | `\"lstm\"` | ") != std::string::npos);
  for (const char* page : {"docs/config.md", "README.md"}) {
    CAPTURE(page);
    const std::string docs = ReadFile(SourceDir() / page);
    const bool up_to_date = docs.find(table) != std::string::npos;
    if (!up_to_date) {
      const auto fresh = std::filesystem::temp_directory_path() / "charlm_config_keys_table.md";
      WriteFile(fresh, table);
      FAIL_CHECK(page << " does not hold the current key table; paste " << fresh.string() << " into it");
    }
  }
}

TEST_CASE("config: missing keys keep their defaults") {
  const Config parsed = ParseConfigText(R"({"data": {"corpus": "x.txt"}, "model": {"hidden_size": 8}})", "small.json");
  Config expected = ValidDefaults();
  expected.data.corpus.paths = {"x.txt"};
  expected.model.hidden_size = 8;
  CHECK(ConfigToJson(parsed) == ConfigToJson(expected));
}

TEST_CASE("config: a config or checkpoint written before the AWD-LSTM keys reads them as off") {
  // A checkpoint's config section goes through ConfigFromJson (RestoreModel): the same as this file's JSON.
  json old = ConfigToJson(ValidDefaults());
  for (const char* key : {"locked_dropout", "weight_drop", "embedding_dropout", "tie_embeddings"}) {
    REQUIRE(old["model"].contains(key));
    old["model"].erase(key);
  }
  old["model"]["dropout"] = 0.25;
  const Config back = ConfigFromJson(old);
  CHECK(back.model.dropout == 0.25);
  CHECK(back.model.locked_dropout == false);
  CHECK(back.model.weight_drop == 0.0);
  CHECK(back.model.embedding_dropout == 0.0);
  CHECK(back.model.tie_embeddings == false);
  CHECK_NOTHROW(ValidateConfig(back));
  // Tied at the edge it needs: embedding_size == hidden_size.
  Config tied = ValidDefaults();
  tied.model.tie_embeddings = true;
  tied.model.embedding_size = tied.model.hidden_size;
  CHECK_NOTHROW(ValidateConfig(tied));
}

TEST_CASE("config: unknown keys name the nearest valid key") {
  auto from = [](const std::string& text) { return UserErrorOf([&] { ConfigFromJson(json::parse(text)); }); };
  CHECK(from(R"({"data": {"corpus": "x"}, "model": {"hiden_size": 3}})") ==
        "unknown key \"model.hiden_size\": did you mean \"model.hidden_size\"?");
  CHECK(from(R"({"data": {"corpus": "x"}, "modle": {}})") == "unknown key \"modle\": did you mean \"model\"?");
  CHECK(from(R"({"data": {"corpus": "x"}, "train": {"optimizer": {"learning_rat": 1}}})")
            .starts_with("unknown key \"train.optimizer.learning_rat\": remove it or use one of the keys valid in "
                         "\"train.optimizer\": name, lr, momentum,"));
  // The right name in the wrong section points to where it belongs.
  CHECK(from(R"({"data": {"corpus": "x"}, "model": {"epochs": 3}})") ==
        "unknown key \"model.epochs\": did you mean \"train.epochs\"?");
  // All of them in one message, each with its hint, before any value is read (the wrong type is not reached).
  CHECK(from(R"({"data": {"corpus": "x"}, "model": {"hiden_size": 3, "cell": 5}, "train": {"epoch": 2}, "genrate": {}})") ==
        "3 unknown keys: \"genrate\": did you mean \"generate\"?; \"model.hiden_size\": did you mean "
        "\"model.hidden_size\"?; \"train.epoch\": did you mean \"train.epochs\"?");
  // A config of many: the first 20, then how many more.
  json many = {{"data", {{"corpus", "x"}}}, {"model", json::object()}};
  for (int k = 0; k < 25; ++k) many["model"]["extra" + std::to_string(100 + k)] = k;
  const std::string listed = UserErrorOf([&] { ConfigFromJson(many); });
  CHECK(listed.starts_with("25 unknown keys: \"model.extra100\": remove it or use one of the keys valid in \"model\""));
  CHECK(listed.find("model.extra119") != std::string::npos);
  CHECK(listed.find("model.extra120") == std::string::npos);
  CHECK(listed.ends_with("; and 5 more"));
}

TEST_CASE("config: wrong types name the key, the value and its type") {
  auto from = [](const std::string& section_json) {
    return UserErrorOf([&] { ConfigFromJson(json::parse(R"({"data": {"corpus": "x"}, )" + section_json + "}")); });
  };
  CHECK(from(R"("model": {"hidden_size": "abc"})")
            .starts_with("model.hidden_size: expected an integer, got \"abc\" (string)"));
  CHECK(
      from(R"("model": {"hidden_size": 2.5})").starts_with("model.hidden_size: expected an integer, got 2.5 (number)"));
  CHECK(from(R"("model": {"hidden_size": 3000000000})")
            .starts_with(
                "model.hidden_size: expected an integer from 1 to 2147483647, got 3000000000 (number)"));
  // The range starts at the key's own minimum, not the type's.
  CHECK(from(R"("train": {"threads": -3e9})")
            .starts_with("train.threads: expected an integer from 0 to 256, got -3000000000"));
  CHECK(from(R"("model": {"num_layers": -1e10})").starts_with("model.num_layers: expected an integer from 1 to "));
  CHECK(from(R"("train": {"seed": -1})").starts_with("train.seed: expected a non-negative integer from 0 to "));
  CHECK(from(R"("train": {"seed": 1.5})").starts_with("train.seed: expected a non-negative integer, got 1.5 (number)"));
  CHECK(from(R"("model": {"reset_after": "true"})") ==
        "model.reset_after: expected true or false (a JSON boolean, unquoted), got \"true\" (string)");
  CHECK(from(R"("model": {"reset_after": 1})").find("got 1 (number)") != std::string::npos);
  CHECK(from(R"("train": {"optimizer": {"lr": "fast"}})") ==
        "train.optimizer.lr: expected a number, got \"fast\" (string); write e.g. \"lr\": 0.005");
  CHECK(from(R"("train": {"out_dir": 3})") ==
        "train.out_dir: expected a string, got 3 (number); write e.g. \"out_dir\": \"runs/default\"");
  CHECK(from(R"("generate": {"prefixes": ["a", 3]})")
            .starts_with("generate.prefixes[1]: expected a string, got 3 (number)"));
  CHECK(from(R"("generate": {"prefixes": {}})")
            .starts_with("generate.prefixes: expected a list of strings, got {} (object)"));
  CHECK(from(R"("model": 3)").starts_with("model: expected a section (a JSON object of keys), got 3 (number)"));
  CHECK(UserErrorOf([] { ConfigFromJson(json::array()); }).find("got [] (array)") != std::string::npos);
}

TEST_CASE("config: integer fields accept integral numbers written as floats") {
  const Config parsed =
      ConfigFromJson(json::parse(R"({"data": {"corpus": "x", "max_chars": 1e4}, "train": {"epochs": 30.0}})"));
  CHECK(parsed.data.max_chars == 10000);
  CHECK(parsed.train.epochs == 30);
}

TEST_CASE("config: a bad enum spelling lists the choices") {
  const std::string message =
      UserErrorOf([] { ConfigFromJson(json::parse(R"({"data": {"corpus": "x"}, "model": {"cell": "grux"}})")); });
  CHECK(message == "model.cell: expected one of \"rnn\" | \"gru\" | \"lstm\", got \"grux\" (string): did you mean \"gru\"?");
  CHECK(UserErrorOf([] { ConfigFromJson(json::parse(R"({"data": {"corpus": "x"}, "train": {"sampler": 1}})")); }) ==
        "train.sampler: expected one of \"random\" | \"consecutive\", got 1 (number)");
}

TEST_CASE("config: data.corpus is required") {
  const std::string message = UserErrorOf([] { ConfigFromJson(json::parse(R"({"model": {"cell": "gru"}})")); });
  CHECK(message.starts_with("data.corpus is required but missing ("));
  CHECK(message.find("--set data.corpus=VALUE") != std::string::npos);
  CHECK(UserErrorOf([] {
          ParseConfigText(R"({"data": {"corpus": ""}})", "c.json");
        }).starts_with("c.json: data.corpus is empty: expected the training text: a UTF-8 file, a folder"));
}

TEST_CASE("config: malformed JSON reports the source, line and column") {
  // Line 3, column 13 is the 'g' of the unquoted gru.
  const std::string text = "{\n  \"model\": {\n    \"cell\": gru\n  }\n}\n";
  const std::string message = UserErrorOf([&] { ParseConfigText(text, "broken.json"); });
  CHECK(message.starts_with("broken.json:3:13: malformed JSON: syntax error while parsing value"));
  CHECK(message.find('\n') == std::string::npos);

  // A missing comma: the parser stops at the end of the next key, line 2 column 8.
  CHECK(UserErrorOf([] {
          ParseConfigText("{\"generate\": {\"prefixes\": [\"分开\"]}\n  \"data\": {}}", "b.json");
        }).starts_with("b.json:2:8: malformed JSON: syntax error while parsing object - unexpected string literal"));
  // Columns count characters, not bytes: the 1 is the seventh character.
  CHECK(UserErrorOf([] { ParseConfigText("[\"分开\" 1]", "c.json"); }).starts_with("c.json:1:7: malformed JSON: "));
  // Running out of text points just past its end.
  CHECK(UserErrorOf([] { ParseConfigText("{\n\"data\": ", "d.json"); }).starts_with("d.json:2:9: malformed JSON: "));
  // A number beyond double range is a different nlohmann exception (out_of_range) and must still be a UserError.
  const std::string overflow = UserErrorOf([] { ParseConfigText(R"({"train": {"lr": 11E1111111111}})", "e.json"); });
  CHECK(overflow.starts_with("e.json: malformed JSON: number overflow parsing '11E1111111111'"));
  CHECK(overflow.find("fit in a double") != std::string::npos);
}

TEST_CASE("config: validation names the key, the value and the expected range") {
  struct Case {
    std::function<void(Config&)> change;
    std::string message_start;
  };
  const std::vector<Case> cases = {
      {[](Config& c) { c.model.hidden_size = 0; },
       "model.hidden_size = 0 is out of range: expected an integer >= 1; set it within that range, e.g. the default "
       "256"},
      {[](Config& c) { c.model.num_layers = 0; }, "model.num_layers = 0 is out of range: expected an integer >= 1"},
      {[](Config& c) { c.model.embedding_size = -1; },
       "model.embedding_size = -1 is out of range: expected an integer >= 0"},
      {[](Config& c) { c.model.dropout = 1.0; }, "model.dropout = 1.0 is out of range: expected a number in [0, 1)"},
      {[](Config& c) { c.model.recurrent_dropout = -0.1; },
       "model.recurrent_dropout = -0.1 is out of range: expected a number in [0, 1)"},
      {[](Config& c) { c.model.weight_drop = 1.0; },
       "model.weight_drop = 1.0 is out of range: expected a number in [0, 1); set it within that range, e.g. the "
       "default 0.0"},
      {[](Config& c) { c.model.weight_drop = -0.5; }, "model.weight_drop = -0.5 is out of range: expected a number in [0, 1)"},
      {[](Config& c) { c.model.embedding_dropout = 1.5; },
       "model.embedding_dropout = 1.5 is out of range: expected a number in [0, 1)"},
      {[](Config& c) {
         c.model.tie_embeddings = true;
         c.model.embedding_size = 64;
       },
       "model.tie_embeddings = true needs model.embedding_size == model.hidden_size, got 64 and 256: set "
       "model.embedding_size to 256, or model.tie_embeddings to false"},
      {[](Config& c) {
         c.model.tie_embeddings = true;
         c.model.embedding_size = 0;
       },
       "model.tie_embeddings = true needs model.embedding_size == model.hidden_size, got 0 and 256"},
      {[](Config& c) { c.data.val_fraction = 1.0; },
       "data.val_fraction = 1.0 is out of range: expected a number in [0, 1)"},
      {[](Config& c) { c.data.test_fraction = -0.5; }, "data.test_fraction = -0.5 is out of range"},
      {[](Config& c) {
         c.data.val_fraction = 0.5;
         c.data.test_fraction = 0.5;
       },
       "data.val_fraction + data.test_fraction = 1.0: expected less than 1"},
      {[](Config& c) { c.data.max_chars = -5; }, "data.max_chars = -5 is out of range: expected an integer >= 0"},
      {[](Config& c) { c.data.min_freq = 0; }, "data.min_freq = 0 is out of range: expected an integer >= 1"},
      {[](Config& c) { c.data.unknown = "drop"; }, "data.unknown = \"drop\" is not a policy: expected \"error\""},
      {[](Config& c) { c.train.batch_size = 0; }, "train.batch_size = 0 is out of range: expected an integer in [1, 4096]"},
      {[](Config& c) { c.train.batch_size = 4097; }, "train.batch_size = 4097 is out of range: expected an integer in [1, 4096]"},
      {[](Config& c) { c.train.num_steps = -3; }, "train.num_steps = -3 is out of range: expected an integer >= 1"},
      {[](Config& c) { c.train.epochs = 0; }, "train.epochs = 0 is out of range: expected an integer >= 1"},
      {[](Config& c) { c.train.optimizer.lr = 0; }, "train.optimizer.lr = 0.0 is out of range: expected a number > 0"},
      {[](Config& c) { c.train.optimizer.momentum = 1; },
       "train.optimizer.momentum = 1.0 is out of range: expected a number in [0, 1)"},
      {[](Config& c) { c.train.optimizer.beta1 = 1; },
       "train.optimizer.beta1 = 1.0 is out of range: expected a number in [0, 1)"},
      {[](Config& c) { c.train.optimizer.beta2 = -0.1; },
       "train.optimizer.beta2 = -0.1 is out of range: expected a number in [0, 1)"},
      {[](Config& c) { c.train.optimizer.eps = 0; },
       "train.optimizer.eps = 0.0 is out of range: expected a number > 0"},
      // Issue 35: "> 0" let 1e-300 through, which float32 makes 0, and training diverged blaming lr.
      {[](Config& c) { c.train.optimizer.eps = 1e-300; },
       "train.optimizer.eps = 1e-300 is below what float32 holds (magnitudes from 1.18e-38 to 3.4e38), and training "
       "computes in float32, where it would become 0: set it within that range, e.g. the default 1e-08"},
      {[](Config& c) { c.train.optimizer.eps = 1e-39; }, "train.optimizer.eps = 1e-39 is below what float32 holds"},
      {[](Config& c) { c.train.optimizer.lr = 1e39; }, "train.optimizer.lr = 1e+39 is above what float32 holds"},
      {[](Config& c) { c.train.clip_norm = 1e300; }, "train.clip_norm = 1e+300 is above what float32 holds"},
      {[](Config& c) { c.train.lr_schedule.min_lr = 1e-320; }, "train.lr_schedule.min_lr = 1e-320 is below what float32 holds"},
      // A NUL byte cuts a path where the OS reads it: data.corpus "a.txt\0.evil" trained on a.txt.
      {[](Config& c) { c.data.corpus.paths = {std::string("a.txt\0.evil", 11)}; },
       "data.corpus = \"a.txt\\u0000.evil\" holds a NUL byte (\\u0000, at byte 5), which no path or text can hold: "
       "remove it"},
      {[](Config& c) { c.data.corpus.paths = {"a.txt", std::string("b\0", 2)}; }, "data.corpus[1] = \"b\\u0000\" holds a NUL byte"},
      {[](Config& c) { c.train.out_dir = std::string("runs/x\0y", 8); }, "train.out_dir = \"runs/x\\u0000y\" holds a NUL byte"},
      {[](Config& c) { c.data.include = {std::string("*\0", 2)}; }, "data.include[0] = \"*\\u0000\" holds a NUL byte"},
      {[](Config& c) { c.train.optimizer.decay = 1.5; },
       "train.optimizer.decay = 1.5 is out of range: expected a number in [0, 1)"},
      {[](Config& c) { c.train.optimizer.weight_decay = -1e-3; },
       "train.optimizer.weight_decay = -0.001 is out of range: expected a number >= 0"},
      {[](Config& c) { c.train.lr_schedule.step_size = 0; },
       "train.lr_schedule.step_size = 0 is out of range: expected an integer >= 1"},
      {[](Config& c) { c.train.lr_schedule.gamma = 0; },
       "train.lr_schedule.gamma = 0.0 is out of range: expected a number in (0, 1]"},
      {[](Config& c) { c.train.lr_schedule.gamma = 1.5; }, "train.lr_schedule.gamma = 1.5 is out of range"},
      {[](Config& c) { c.train.lr_schedule.warmup_steps = -1; },
       "train.lr_schedule.warmup_steps = -1 is out of range: expected an integer >= 0; set it within that range, e.g. "
       "the default 0"},
      {[](Config& c) { c.train.lr_schedule.min_lr = -1e-4; },
       "train.lr_schedule.min_lr = -0.0001 is out of range: expected a number >= 0"},
      {[](Config& c) { c.train.lr_schedule.min_lr = 0.01; },
       "train.lr_schedule.min_lr = 0.01 is out of range: expected at most train.optimizer.lr (0.005) so that the "
       "cosine schedule anneals down to it; lower train.lr_schedule.min_lr, e.g. to 0"},
      {[](Config& c) { c.train.clip_norm = -1; }, "train.clip_norm = -1.0 is out of range: expected a number >= 0"},
      {[](Config& c) { c.train.threads = -1; }, "train.threads = -1 is out of range: expected an integer in [0, 256]"},
      {[](Config& c) { c.train.eval_every = 0; }, "train.eval_every = 0 is out of range: expected an integer >= 1"},
      {[](Config& c) { c.train.checkpoint_every = 0; },
       "train.checkpoint_every = 0 is out of range: expected an integer >= 1"},
      {[](Config& c) { c.train.patience = -1; }, "train.patience = -1 is out of range: expected an integer >= 0"},
      {[](Config& c) { c.train.out_dir = ""; },
       "train.out_dir is empty: expected the directory for checkpoints and logs"},
      {[](Config& c) { c.generate.length = -1; }, "generate.length = -1 is out of range: expected an integer >= 0"},
      {[](Config& c) { c.generate.every = -1; }, "generate.every = -1 is out of range: expected an integer >= 0"},
      {[](Config& c) { c.generate.temperature = 0; },
       "generate.temperature = 0.0 is out of range: expected a number > 0"},
      {[](Config& c) { c.generate.top_k = -2; }, "generate.top_k = -2 is out of range: expected an integer >= 0"},
      {[](Config& c) { c.generate.top_p = 0; }, "generate.top_p = 0.0 is out of range: expected a number in (0, 1]"},
      {[](Config& c) { c.generate.top_p = 1.01; }, "generate.top_p = 1.01 is out of range"},
      {[](Config& c) {
         c.data.include = {"*.c", ""};
       },
       "data.include[1] is empty: expected a glob pattern"},
  };
  CHECK_NOTHROW(ValidateConfig(ValidDefaults()));
  for (const auto& test : cases) {
    Config config = ValidDefaults();
    test.change(config);
    const std::string message = UserErrorOf([&] { ValidateConfig(config); });
    CHECK_MESSAGE(message.starts_with(test.message_start), message);
    CHECK(message.find('\n') == std::string::npos);
  }

  // The edges that the ranges include.
  Config edges = ValidDefaults();
  edges.model.embedding_size = 0;
  edges.model.dropout = 0;
  edges.train.clip_norm = 0;
  edges.train.lr_schedule.gamma = 1;
  edges.generate.top_p = 1;
  edges.generate.every = 0;
  edges.generate.length = 0;
  edges.generate.prefixes = {};
  CHECK_NOTHROW(ValidateConfig(edges));
}

TEST_CASE("config: ParseConfigText validates and names the source") {
  CHECK(UserErrorOf([] {
          ParseConfigText(R"({"data": {"corpus": "x"}, "train": {"epochs": 0}})", "run.json");
        }).starts_with("run.json: train.epochs = 0 is out of range"));
  CHECK(UserErrorOf([] { ParseConfigText(R"({"data": {"corpus": "x"}, "train": {"epoch": 3}})", "run.json"); }) ==
        "run.json: unknown key \"train.epoch\": did you mean \"train.epochs\"?");
}

TEST_CASE("config: overrides set nested keys, parse JSON values and fall back to strings") {
  json j = json::parse(R"({"data": {"corpus": "x"}, "model": {"hidden_size": 8}})");
  ApplyOverride(j, "model.hidden_size=64");
  ApplyOverride(j, "train.optimizer.lr=0.01");  // creates train and train.optimizer
  ApplyOverride(j, "model.cell=gru");           // not JSON: taken as the string "gru"
  ApplyOverride(j, "data.corpus=\"123\"");      // quoted: stays a string
  ApplyOverride(j, " model.reset_after = false ");
  ApplyOverride(j, R"(generate.prefixes=["爱","晴天"])");
  ApplyOverride(j, "train.out_dir=runs/a=b");  // only the first '=' separates
  CHECK(j["model"]["hidden_size"] == 64);
  CHECK(j["train"]["optimizer"]["lr"] == 0.01);
  CHECK(j["model"]["cell"] == "gru");
  const Config config = ConfigFromJson(j);
  CHECK(config.model.hidden_size == 64);
  CHECK(config.train.optimizer.lr == 0.01);
  CHECK(config.model.cell == CellKind::kGru);
  CHECK(config.data.corpus.Label() == "123");
  CHECK(config.model.reset_after == false);
  CHECK(config.generate.prefixes == std::vector<std::string>{"爱", "晴天"});
  CHECK(config.train.out_dir == "runs/a=b");

  json single;
  ApplyOverride(single, "generate.prefixes=爱");
  ApplyOverride(single, "data.corpus=c.txt");
  CHECK(ConfigFromJson(single).generate.prefixes == std::vector<std::string>{"爱"});
}

TEST_CASE("config: malformed overrides are explained with an example") {
  json j = json::object();
  CHECK(UserErrorOf([&] { ApplyOverride(j, "model.hidden_size"); }) ==
        "malformed override \"model.hidden_size\": expected KEY=VALUE with a dotted key, "
        "e.g. --set train.optimizer.lr=0.01 or --set model.cell=gru");
  CHECK(UserErrorOf([&] { ApplyOverride(j, "=3"); }).starts_with("malformed override \"=3\": expected KEY=VALUE"));
  CHECK(UserErrorOf([&] {
          ApplyOverride(j, "model..cell=gru");
        }).starts_with("malformed override \"model..cell=gru\": the key \"model..cell\" has an empty part"));
  ApplyOverride(j, "model.cell=gru");
  CHECK(UserErrorOf([&] { ApplyOverride(j, "model.cell.kind=gru"); }) ==
        "override \"model.cell.kind=gru\": \"model.cell\" is a value, not a section; set it whole, e.g. --set "
        "model.cell=VALUE");
}

TEST_CASE("config: LoadConfigFile applies overrides and reports file problems") {
  TempDir dir;
  const std::string path = (dir / "run.json").string();
  WriteFile(path, R"({"data": {"corpus": "x.txt"}, "model": {"cell": "rnn"}})");
  const Config plain = LoadConfigFile(path);
  CHECK(plain.model.cell == CellKind::kRnn);
  const Config changed =
      LoadConfigFile(path, {"model.cell=lstm", "train.optimizer.name=sgd", "train.optimizer.lr=100"});
  CHECK(changed.model.cell == CellKind::kLstm);
  CHECK(changed.train.optimizer.name == OptimizerKind::kSgd);
  CHECK(changed.train.optimizer.lr == 100);

  CHECK(UserErrorOf([&] { LoadConfigFile(path, {"model.hiden_size=3"}); }) ==
        path + " with --set overrides: unknown key \"model.hiden_size\": did you mean \"model.hidden_size\"?");
  CHECK(UserErrorOf([&] {
          LoadConfigFile(path, {"train.epochs=0"});
        }).starts_with(path + " with --set overrides: train.epochs = 0 is out of range"));
  CHECK(UserErrorOf([&] { LoadConfigFile(path, {"model.cell=grux"}); }).find("got \"grux\" (string)") !=
        std::string::npos);

  const std::string missing = (dir / "nope.json").string();
  CHECK(UserErrorOf([&] { LoadConfigFile(missing); }).starts_with("config file \"" + missing + "\" not found"));
  CHECK(UserErrorOf([&] { LoadConfigFile(dir.path().string()); }).find("is a directory") != std::string::npos);
  WriteFile(dir / "list.json", "[]");
  CHECK(UserErrorOf([&] { LoadConfigFile((dir / "list.json").string(), {"model.cell=gru"}); })
            .find("expected a JSON object with the sections data, model, train and generate at the top level, got [] "
                  "(array)") != std::string::npos);
  WriteFile(dir / "bad.json", "{\"data\": {\"corpus\": \"x\",}}");
  CHECK(UserErrorOf([&] {
          LoadConfigFile((dir / "bad.json").string());
        }).starts_with((dir / "bad.json").string() + ":1:25: malformed JSON: "));
}

TEST_CASE("config: every committed config loads and validates") {
  std::vector<std::filesystem::path> files;
  for (const auto& entry : std::filesystem::directory_iterator(SourceDir() / "configs")) {
    if (entry.path().extension() == ".json") files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  CHECK(files.size() >= 6);
  for (const auto& file : files) {
    CAPTURE(file.string());
    CHECK_NOTHROW(LoadConfigFile(file.string()));
  }

  // The book's setup, as the book's chapter states it.
  for (const std::string name : {"book_rnn_random", "book_rnn_consecutive", "book_gru", "book_lstm"}) {
    CAPTURE(name);
    const Config book = LoadConfigFile((SourceDir() / "configs" / (name + ".json")).string());
    CHECK(book.data.max_chars == 10000);
    CHECK(book.data.newline == NewlinePolicy::kSpace);
    CHECK(book.model.embedding_size == 0);
    CHECK(book.model.hidden_size == 256);
    CHECK(book.train.optimizer.name == OptimizerKind::kSgd);
    CHECK(book.train.optimizer.lr == 100);
    CHECK(book.train.clip_norm == 0.01);
    CHECK(book.train.out_dir == "runs/" + name);
    CHECK(book.generate.greedy);
  }
  const Config demo = LoadConfigFile((SourceDir() / "configs" / "default.json").string());
  CHECK(demo.data.corpus.Label() == "corpus/jaychou_lyrics.txt");
  CHECK(demo.train.out_dir == "runs/default");
  // One set of defaults: the demo's file names its text (its folder is the default runs/default) and trains the
  // built-in recipe.
  const std::map<std::string, json> built_in = ConfigValues(Config{});
  std::vector<std::string> differing;
  for (const auto& [key, value] : ConfigValues(demo)) {
    if (built_in.at(key) != value) differing.push_back(key);
  }
  CHECK(differing == std::vector<std::string>{"data.corpus"});
}

}  // namespace
}  // namespace charlm

namespace charlm {
namespace {

TEST_CASE("config: a --set number beyond a double's range says so") {
  json j = json::parse(R"({"data": {"corpus": "x"}})");
  CHECK(UserErrorOf([&] { ApplyOverride(j, "train.optimizer.lr=1e400"); }) ==
        "--set train.optimizer.lr=1e400: 1e400 is beyond the range of a number (a double holds magnitudes from about "
        "2.2e-308 to 1.8e308): give a value within it");
  CHECK(UserErrorOf([&] { ApplyOverride(j, "train.optimizer.lr=-1e999"); }).find("beyond the range") != std::string::npos);
  ApplyOverride(j, "train.out_dir=1e400x");  // not a number: a string, as any other word
  CHECK(j["train"]["out_dir"] == "1e400x");
}

TEST_CASE("config: an enum value in capitals gets its lower-case spelling as the did-you-mean") {
  json k = json::parse(R"({"data": {"corpus": "x"}})");
  ApplyOverride(k, "model.cell=LSTM");
  const std::string message = UserErrorOf([&] { ConfigFromJson(k); });
  CHECK_MESSAGE(message.ends_with("got \"LSTM\" (string): did you mean \"lstm\"?"), message);
}

}  // namespace
}  // namespace charlm
