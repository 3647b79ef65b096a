// Checks corpus loading into ids and splits, the config-to-model mapping, and restoring a model from a checkpoint.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "format/checkpoint.h"
#include "model/restore.h"
#include "text/dataset.h"
#include "util/errors.h"
#include "test_util.h"

namespace charlm {
namespace {

TEST_CASE("dataset: the vocabulary comes from the whole text, the split is contiguous with validation at the tail") {
  testing::TempDir dir;
  testing::WriteFile(dir / "t.txt", "abcabcabcabcabcabcabcabcabcxyz!");  // 31 characters
  DataConfig data;
  data.corpus.paths = {(dir / "t.txt").string()};
  data.val_fraction = 0.2;
  const Dataset d = LoadDataset(data);
  CHECK(d.ids.size() == 31);
  CHECK(d.vocab.size() == 7);  // x, y, z and ! occur only in the validation tail but are in the vocabulary
  CHECK(d.Train().size() + d.Validation().size() + d.Test().size() == 31);
  CHECK(d.Validation().size() == 6);
  CHECK(d.Test().empty());
  CHECK(d.vocab.Decode(d.Validation()) == U"bcxyz!");
}

TEST_CASE("dataset: the model spec carries every model key") {
  ModelConfig m;
  m.cell = CellKind::kGru;
  m.hidden_size = 12;
  m.num_layers = 3;
  m.embedding_size = 5;
  m.dropout = 0.25;
  m.recurrent_dropout = 0.125;
  m.activation = Activation::kRelu;
  m.reset_after = false;
  const ModelSpec spec = MakeModelSpec(m, 40);
  CHECK(spec.cell == CellKind::kGru);
  CHECK(spec.vocab_size == 40);
  CHECK(spec.hidden_size == 12);
  CHECK(spec.num_layers == 3);
  CHECK(spec.embedding_size == 5);
  CHECK(spec.dropout == 0.25);
  CHECK(spec.recurrent_dropout == 0.125);
  CHECK(spec.activation == Activation::kRelu);
  CHECK_FALSE(spec.reset_after);
}

TEST_CASE("dataset: RestoreModel rebuilds the model and rejects a checkpoint whose parts disagree") {
  testing::TempDir dir;
  Config config;
  config.data.corpus.paths = {"unused.txt"};
  config.model.hidden_size = 4;
  const Vocab vocab = Vocab::Build(U"hello world");
  CharModel<float> model(MakeModelSpec(config.model, vocab.size()));
  model.Initialize(InitScheme::kKeras, 1);
  CheckpointData data;
  data.config = ConfigToJson(config);
  data.vocab = vocab.ToJson();
  data.trainer_state = nlohmann::json::object();
  data.params = model.params();
  SaveCheckpoint((dir / "ok.ckpt").string(), data);
  const RestoredModel restored = RestoreModel((dir / "ok.ckpt").string());
  CHECK(restored.model.params() == model.params());
  CHECK(restored.vocab == vocab);

  data.params.pop_back();
  SaveCheckpoint((dir / "short.ckpt").string(), data);
  CHECK_THROWS_WITH_AS(RestoreModel((dir / "short.ckpt").string()), doctest::Contains("parameters but its config"),
                       UserError);
  data.params = model.params();
  data.config["model"]["hidden_size"] = 0;
  SaveCheckpoint((dir / "bad_config.ckpt").string(), data);
  CHECK_THROWS_WITH_AS(RestoreModel((dir / "bad_config.ckpt").string()), doctest::Contains("invalid"), UserError);
}

}  // namespace
}  // namespace charlm

namespace charlm {
namespace {

Dataset LoadText(const testing::TempDir& dir, const std::string& text, double val_fraction, NewlinePolicy newline) {
  testing::WriteFile(dir / "text.txt", text);
  DataConfig data;
  data.corpus.paths = {(dir / "text.txt").string()};
  data.val_fraction = val_fraction;
  data.newline = newline;
  return LoadDataset(data);
}

TEST_CASE("dataset: CorpusPrefix starts samples from the validation split's first line, in the corpus's own language") {
  testing::TempDir dir;
  // 90 characters of training text, then the validation split starts mid-line: the prefix is its next line.
  const std::string english = std::string(80, 'x') + "\nab\ncd\nef gh\nThe quick brown fox jumps over\nand more words\n";
  const Dataset d = LoadText(dir, english, 0.5, NewlinePolicy::kKeep);
  CHECK(d.Validation().size() > 16);
  const std::string prefix = CorpusPrefix(d);
  CHECK(prefix.size() <= 16);
  CHECK(prefix.find('\n') == std::string::npos);
  CHECK_FALSE(prefix.empty());
  CHECK(english.find(prefix) != std::string::npos);  // text of the corpus itself
  CHECK(SamplePrefixes({"given"}, d) == std::vector<std::string>{"given"});
  CHECK(SamplePrefixes({}, d) == std::vector<std::string>{prefix});

  // No line breaks (newline -> space): the first 16 characters of the split, here Chinese.
  const Dataset zh = LoadText(dir, "分开的时候\n我们都哭了 不分开的时候\n我们都笑了 就是这样\n想要的都拿走\n", 0.5, NewlinePolicy::kSpace);
  const std::string zh_prefix = CorpusPrefix(zh);
  CHECK_FALSE(zh_prefix.empty());
  CHECK(zh_prefix.find(' ') != 0);
  // Without a validation split, the training text's first line.
  const Dataset none = LoadText(dir, "first line here\nsecond line\n", 0.0, NewlinePolicy::kKeep);
  CHECK(CorpusPrefix(none) == "second line");
}

}  // namespace
}  // namespace charlm
