// Checks corpus loading into ids and splits, the config-to-model mapping, and restoring a model from a checkpoint.
#include <doctest/doctest.h>

#include <string>

#include "checkpoint.h"
#include "dataset.h"
#include "errors.h"
#include "test_util.h"

namespace charlm {
namespace {

TEST_CASE("dataset: the vocabulary comes from the whole text, the split is contiguous with validation at the tail") {
  testing::TempDir dir;
  testing::WriteFile(dir / "t.txt", "abcabcabcabcabcabcabcabcabcxyz!");  // 31 characters
  DataConfig data;
  data.corpus = (dir / "t.txt").string();
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
  config.data.corpus = "unused.txt";
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
