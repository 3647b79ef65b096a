// Proves RestoreModel with the AWD-LSTM keys: a checkpoint written before them loads with them off, and a tied one
// loads into a layout without output.w whose parameter count its config describes.
#include <doctest/doctest.h>

#include <string>

#include "config/config.h"
#include "format/checkpoint.h"
#include "model/restore.h"
#include "test_util.h"
#include "text/vocab.h"
#include "util/errors.h"

namespace charlm {
namespace {

// A checkpoint of an initialized model for `model_config` (no training state), its config JSON changed by `edit`.
template <typename Edit>
std::string SaveSmallCheckpoint(const testing::TempDir& dir, const ModelConfig& model_config, Edit edit) {
  Config config;
  config.data.corpus.paths = {"text.txt"};
  config.model = model_config;
  const Vocab vocab = Vocab::Build(U"the cat sat on the mat");
  CharModel<float> model(MakeModelSpec(config.model, vocab.size()));
  model.Initialize(InitScheme::kKeras, 5);
  CheckpointData data;
  data.config = ConfigToJson(config);
  edit(data.config);
  data.vocab = vocab.ToJson();
  data.trainer_state = nlohmann::json::object();
  data.params = model.params();
  const std::string path = (dir / "model.ckpt").string();
  SaveCheckpoint(path, data);
  return path;
}

TEST_CASE("restore: a checkpoint whose config predates the AWD-LSTM keys loads with them off") {
  testing::TempDir dir;
  ModelConfig model;
  model.hidden_size = 8;
  model.embedding_size = 4;
  model.dropout = 0.25;
  const std::string path = SaveSmallCheckpoint(dir, model, [](nlohmann::json& config) {
    for (const char* key : {"locked_dropout", "weight_drop", "embedding_dropout", "tie_embeddings"}) {
      REQUIRE(config["model"].contains(key));
      config["model"].erase(key);
    }
  });
  const RestoredModel restored = RestoreModel(path);
  const ModelSpec& spec = restored.model.spec();
  CHECK(spec.dropout == 0.25);
  CHECK_FALSE(spec.locked_dropout);
  CHECK(spec.weight_drop == 0.0);
  CHECK(spec.embedding_dropout == 0.0);
  CHECK_FALSE(spec.tie_embeddings);
  CHECK(restored.model.layout().Has("output.w"));
}

TEST_CASE("restore: a tied checkpoint loads without output.w, and untied keys over its parameters are refused") {
  testing::TempDir dir;
  ModelConfig model;
  model.hidden_size = 8;
  model.embedding_size = 8;
  model.tie_embeddings = true;
  model.weight_drop = 0.5;
  const std::string path = SaveSmallCheckpoint(dir, model, [](nlohmann::json&) {});
  const RestoredModel restored = RestoreModel(path);
  CHECK(restored.model.spec().tie_embeddings);
  CHECK(restored.model.spec().weight_drop == 0.5);
  CHECK_FALSE(restored.model.layout().Has("output.w"));
  CHECK(restored.model.params().size() == restored.model.layout().total());

  // The same parameters under a config that does not tie them: the count differs, a one-line error.
  const std::string untied = SaveSmallCheckpoint(dir, model, [](nlohmann::json& config) {
    config["model"]["tie_embeddings"] = false;
  });
  try {
    RestoreModel(untied);
    FAIL("an untied config over tied parameters was accepted");
  } catch (const UserError& error) {
    CHECK(std::string(error.what()).find("parameters but its config and vocabulary describe") != std::string::npos);
  }
}

}  // namespace
}  // namespace charlm
