// Checks the summary table's rows and totals against Keras' counts and the model's own layout.
#include <doctest/doctest.h>

#include "model/summary.h"

namespace charlm {
namespace {

TEST_CASE("summary: rows, Keras counts and a total equal to the model's parameter buffer") {
  ModelSpec spec;
  spec.cell = CellKind::kLstm;
  spec.vocab_size = 1000;
  spec.embedding_size = 64;
  spec.hidden_size = 128;
  spec.num_layers = 1;
  const std::string table = ModelSummary(spec, 32, 35);
  CHECK(table.find("embedding (Embedding)") != std::string::npos);
  CHECK(table.find("64,000") != std::string::npos);                 // Embedding(1000, 64), the seed's example
  CHECK(table.find("98,816") != std::string::npos);                 // LSTM(128) on 64 inputs
  CHECK(table.find("129,000") != std::string::npos);                // Dense(1000) on 128
  CHECK(table.find("(32, 35, 128)") != std::string::npos);
  const std::string total = "Total params: " + WithThousandsSeparators(static_cast<std::int64_t>(ParamLayout(spec).total()));
  CHECK(table.find(total) != std::string::npos);
  CHECK(ParamLayout(spec).total() == 64000 + 98816 + 129000);

  spec.cell = CellKind::kGru;
  spec.embedding_size = 0;
  spec.vocab_size = 1027;
  spec.hidden_size = 256;
  spec.reset_after = false;
  const std::string gru = ModelSummary(spec, 32, 35);
  CHECK(gru.find("one_hot") != std::string::npos);
  CHECK(gru.find(WithThousandsSeparators(3 * 256 * (1027 + 256 + 1))) != std::string::npos);
}

TEST_CASE("summary: tied embeddings count the embedding once and the dense layer's bias alone") {
  ModelSpec spec;
  spec.cell = CellKind::kLstm;
  spec.vocab_size = 1000;
  spec.embedding_size = 128;
  spec.hidden_size = 128;
  spec.tie_embeddings = true;
  const std::string table = ModelSummary(spec, 32, 35);
  CHECK(table.find("dense (Dense, tied to embedding)") != std::string::npos);
  CHECK(table.find("128,000") != std::string::npos);  // Embedding(1000, 128)
  CHECK(ParamLayout(spec).total() == 128000 + 4 * 128 * (128 + 128 + 1) + 1000);
  CHECK(table.find("Total params: " + WithThousandsSeparators(128000 + 4 * 128 * 257 + 1000)) != std::string::npos);
  CHECK(ParameterCount(spec) == static_cast<double>(ParamLayout(spec).total()));
}

TEST_CASE("summary: thousands separators") {
  CHECK(WithThousandsSeparators(0) == "0");
  CHECK(WithThousandsSeparators(999) == "999");
  CHECK(WithThousandsSeparators(1000) == "1,000");
  CHECK(WithThousandsSeparators(1234567) == "1,234,567");
}

}  // namespace
}  // namespace charlm
