// Tests for safetensors export and import: the byte layout against a hand-written file, the PyTorch layout of each
// tensor, exact round trips (weights and generated text) for every cell, 1 and 2 layers, embedding and one-hot, every
// kind of hostile file, and the PyTorch direction itself through bench/torch_interop.py where torch is installed.
#include <doctest/doctest.h>
#include <sys/wait.h>

#include <bit>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "util/shell_quote.h"
#include "model/restore.h"
#include "text/dataset.h"
#include "util/errors.h"
#include "util/utf8.h"
#include "generate/generate.h"
#include "interop/interop.h"
#include "format/safetensors.h"
#include "interop/torch_layout.h"
#include "test_util.h"

namespace charlm {
namespace {

template <typename Action>
std::optional<std::string> UserErrorOf(Action action) {
  try {
    action();
  } catch (const UserError& error) {
    return error.what();
  }
  return std::nullopt;
}

std::string ParseError(std::string_view bytes) {
  const auto message = UserErrorOf([&] { ParseSafetensors(bytes, "t.safetensors"); });
  return message ? *message : "(accepted)";
}

std::string LittleEndian64(std::uint64_t value) {
  std::string out;
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>(value >> (8 * i)));
  return out;
}

// A file with this header text (unpadded) and data.
std::string FileWith(const std::string& header, const std::string& data) { return LittleEndian64(header.size()) + header + data; }

Config SmallConfig(CellKind cell, int layers, int embedding) {
  Config config;
  config.data.corpus.paths = {"text.txt"};
  config.model.cell = cell;
  config.model.hidden_size = 6;
  config.model.num_layers = layers;
  config.model.embedding_size = embedding;
  config.model.activation = Activation::kTanh;
  return config;
}

Vocab SmallVocab() { return Vocab::Build(U"the cat sat on the mat, a dog ran far away from home"); }

CharModel<float> InitializedModel(const Config& config, const Vocab& vocab, std::uint64_t seed) {
  CharModel<float> model(MakeModelSpec(config.model, vocab.size()));
  model.Initialize(InitScheme::kPytorch, seed);  // nonzero biases, so bias handling is visible
  return model;
}

std::vector<std::uint32_t> Bits(const std::vector<float>& values) {
  std::vector<std::uint32_t> bits;
  for (float v : values) bits.push_back(std::bit_cast<std::uint32_t>(v));
  return bits;
}

TEST_CASE("safetensors: the header and data follow the format byte by byte (hand-written file)") {
  // 141 bytes of JSON, keys sorted, padded with 3 spaces to 144 (0x90) so the data starts at byte 152.
  const std::string header =
      R"({"__metadata__":{"format":"pt"},"a":{"data_offsets":[0,8],"dtype":"F32","shape":[2]},)"
      R"("b":{"data_offsets":[8,12],"dtype":"F32","shape":[1,1]}}   )";
  const std::string expected = std::string("\x90\0\0\0\0\0\0\0", 8) + header +
                               std::string("\x00\x00\x80\x3F" "\x00\x00\x00\xC0" "\x00\x00\x00\x3F", 12);
  REQUIRE(header.size() == 144);
  const std::string written = SerializeSafetensors({{"a", {2}, {1.0f, -2.0f}}, {"b", {1, 1}, {0.5f}}}, {{"format", "pt"}});
  CHECK(written == expected);

  const SafetensorsView view = ParseSafetensors(expected, "hand.safetensors");
  CHECK(view.metadata == std::map<std::string, std::string>{{"format", "pt"}});
  REQUIRE(view.tensors.size() == 2);
  CHECK(view.tensors[0].name == "a");
  CHECK(view.tensors[0].shape == std::vector<std::uint64_t>{2});
  CHECK(view.ReadF32(view.tensors[0]) == std::vector<float>{1.0f, -2.0f});
  CHECK(view.tensors[1].shape == std::vector<std::uint64_t>{1, 1});
  CHECK(view.ReadF32(view.tensors[1]) == std::vector<float>{0.5f});
}

TEST_CASE("safetensors: every hostile header or layout is a one-line error naming what is wrong") {
  const std::string ok_entry = R"("w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]})";
  const std::string eight(8, '\0');
  CHECK(ParseError(FileWith("{" + ok_entry + "}", eight)) == "(accepted)");

  CHECK(ParseError("abc").find("fewer than the 8-byte header length") != std::string::npos);
  CHECK(ParseError(LittleEndian64(std::uint64_t{1} << 40) + "{}").find("more than the 16777216 bytes") !=
        std::string::npos);
  CHECK(ParseError(LittleEndian64(100) + "{}").find("only 2 bytes follow it") != std::string::npos);
  CHECK(ParseError(FileWith("[1]", "")).find("does not start with '{'") != std::string::npos);
  CHECK(ParseError(FileWith("{\"w\":", "")).find("not valid JSON") != std::string::npos);
  CHECK(ParseError(FileWith("{\"a\":" + std::string(20, '[') + std::string(20, ']') + "}", ""))
            .find("deeper than 8 levels") != std::string::npos);
  CHECK(ParseError(FileWith("{" + ok_entry + "," + ok_entry + "}", eight)).find("repeats the key \"w\"") !=
        std::string::npos);
  CHECK(ParseError(FileWith(R"({"w":{"dtype":"F32","shape":[1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1],"data_offsets":[0,4]}})", "xxxx"))
            .find("more than 16 elements") != std::string::npos);
  CHECK(ParseError(FileWith(R"({"w":{"dtype":"F33","shape":[2],"data_offsets":[0,8]}})", eight))
            .find("tensor \"w\" has dtype \"F33\", which is not a safetensors dtype") != std::string::npos);
  CHECK(ParseError(FileWith(R"({"w":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", eight))
            .find("sizes are not all whole numbers") != std::string::npos);
  CHECK(ParseError(FileWith(R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", eight))
            .find("shape (3,) needs 12 bytes, but its data_offsets [0, 8] span 8") != std::string::npos);
  CHECK(ParseError(FileWith(R"({"w":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}})", eight))
            .find("needs more than 2^64 bytes") != std::string::npos);
  CHECK(ParseError(FileWith(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}})", eight))
            .find("end before they begin") != std::string::npos);
  CHECK(ParseError(FileWith(R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", eight))
            .find("past the 8 bytes of data after the header: the file is shorter than its header says") !=
        std::string::npos);
  CHECK(ParseError(FileWith(R"({"v":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                            R"("w":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})", std::string(12, '\0')))
            .find("tensor \"w\" at data_offsets [4, 12] overlaps tensor \"v\" at [0, 8]") != std::string::npos);
  CHECK(ParseError(FileWith(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", eight))
            .find("bytes 0 to 4 of the data belong to no tensor") != std::string::npos);
  CHECK(ParseError(FileWith("{" + ok_entry + "}", std::string(12, '\0'))).find("tensors cover only 8") !=
        std::string::npos);
  CHECK(ParseError(FileWith(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"extra":1}})", eight))
            .find("has the key \"extra\"") != std::string::npos);
  CHECK(ParseError(FileWith(R"({"w":{"dtype":"F32","shape":[2]}})", eight)).find("has no \"data_offsets\"") !=
        std::string::npos);
  CHECK(ParseError(FileWith(R"({"__metadata__":{"format":1}})", "")).find("not a string") != std::string::npos);
  // A name with a newline stays on one line in the message.
  const std::string newline_name = ParseError(FileWith("{\"a\\nb\":{\"dtype\":\"X\",\"shape\":[],\"data_offsets\":[0,0]}}", ""));
  CHECK(newline_name.find('\n') == std::string::npos);
  CHECK(newline_name.find("\"a\\nb\"") != std::string::npos);
}

TEST_CASE("safetensors: a header length too short, cutting a character or holding binary, is quoted without raw bytes") {
  // A message is clean when escaping it for a one-line message changes nothing: no control byte, no byte that is
  // not UTF-8.
  auto clean = [](const std::string& message) { return EscapeControlChars(message, message.size()) == message; };
  const std::string header = R"({"__metadata__":{"vocab":"分开"}})";
  const std::size_t cut = header.find("分") + 1;  // inside the first character's three bytes
  const std::string cut_file = LittleEndian64(cut) + header + std::string("\xff\xfe\x00\x01", 4);
  const std::string cut_error = ParseError(cut_file);
  CHECK_MESSAGE(cut_error.find("not valid JSON") != std::string::npos, cut_error);
  CHECK_MESSAGE(clean(cut_error), cut_error);
  CHECK_MESSAGE(cut_error.find("\\xe5") != std::string::npos, cut_error);  // the byte, described
  const std::string binary_error = ParseError(FileWith(std::string("{\"\xff\xfe\x80\":1}"), ""));
  CHECK_MESSAGE(binary_error.find("not valid JSON") != std::string::npos, binary_error);
  CHECK_MESSAGE(clean(binary_error), binary_error);
}

TEST_CASE("interop: exported tensors have PyTorch's names, shapes and layouts") {
  const Vocab vocab = SmallVocab();
  for (const CellKind cell : {CellKind::kLstm, CellKind::kGru}) {
    const Config config = SmallConfig(cell, 2, 0);
    const CharModel<float> model = InitializedModel(config, vocab, 7);
    const std::string bytes = ExportSafetensors(config, vocab, model);
    const SafetensorsView file = ParseSafetensors(bytes, "x");
    CHECK(file.metadata.at("format") == "pt");
    const int v = vocab.size(), h = 6, g = cell == CellKind::kLstm ? 4 : 3;
    std::vector<std::string> names;
    for (const auto& t : file.tensors) names.push_back(t.name);
    CHECK(names == std::vector<std::string>{"output.bias", "output.weight", "rnn.bias_hh_l0", "rnn.bias_hh_l1",
                                            "rnn.bias_ih_l0", "rnn.bias_ih_l1", "rnn.weight_hh_l0", "rnn.weight_hh_l1",
                                            "rnn.weight_ih_l0", "rnn.weight_ih_l1"});
    const SafetensorsEntry& w_ih = *file.Find("rnn.weight_ih_l0");
    CHECK(w_ih.shape == std::vector<std::uint64_t>{static_cast<std::uint64_t>(g * h), static_cast<std::uint64_t>(v)});
    const std::vector<float> w_ih_values = file.ReadF32(w_ih);
    const float* w_x = model.params().data() + model.layout().Get("layer0.w_x").offset;  // (V, gH)
    for (int r = 0; r < g * h; ++r) {
      for (int c = 0; c < v; ++c) REQUIRE(w_ih_values[static_cast<std::size_t>(r) * v + c] == w_x[c * g * h + r]);
    }
    const std::vector<float> w_out = file.ReadF32(*file.Find("output.weight"));  // (V, H)
    const float* charlm_w_out = model.params().data() + model.layout().Get("output.w").offset;  // (H, V)
    CHECK(w_out[1 * h + 2] == charlm_w_out[2 * v + 1]);
    const std::vector<float> b_hh = file.ReadF32(*file.Find("rnn.bias_hh_l1"));
    const float* charlm_b = model.params().data() + model.layout().Get("layer1.b").offset;
    CHECK(file.ReadF32(*file.Find("rnn.bias_ih_l1"))[3] == charlm_b[3]);
    if (cell == CellKind::kGru) {
      CHECK(b_hh[3] == model.params()[model.layout().Get("layer1.b_h").offset + 3]);
    } else {
      CHECK(b_hh == std::vector<float>(static_cast<std::size_t>(g * h), 0.0f));
    }
  }
}

TEST_CASE("interop: export then import gives the same weights and the same text, for every cell, depth and input") {
  const Vocab vocab = SmallVocab();
  for (const CellKind cell : {CellKind::kRnn, CellKind::kGru, CellKind::kLstm}) {
    for (const int layers : {1, 2}) {
      for (const int embedding : {0, 5}) {
        CAPTURE(EnumName(cell));
        CAPTURE(layers);
        CAPTURE(embedding);
        const Config config = SmallConfig(cell, layers, embedding);
        CharModel<float> model = InitializedModel(config, vocab, 11 + layers * 3 + embedding);
        model.params()[model.layout().Get("layer0.b").offset] = -0.0f;  // a sign bit a sum with +0 would lose
        const CheckpointData imported =
            ImportSafetensors(ExportSafetensors(config, vocab, model), "m.safetensors", std::nullopt, std::nullopt);
        CHECK(Bits(imported.params) == Bits(model.params()));
        CHECK(imported.config == ConfigToJson(config));
        CHECK(Vocab::FromJson(imported.vocab) == vocab);
        CHECK(imported.trainer_state["epochs_completed"] == 0);
        CHECK(imported.trainer_state["imported_from"] == "m.safetensors");  // train --resume says it fine-tunes
        CHECK(imported.optimizer_state.size() == 2 * model.params().size());  // Adam's two moments, zero
        CHECK(imported.carried_state.empty());

        CharModel<float> restored(model.spec());
        restored.params() = imported.params;
        SamplingOptions sampling;
        sampling.length = 40;
        Rng rng_a(5), rng_b(5);
        const std::string text_a = GenerateText(model, vocab, "the", sampling, rng_a);
        CHECK(text_a.size() > 40);
        CHECK(GenerateText(restored, vocab, "the", sampling, rng_b) == text_a);
      }
    }
  }
}

TEST_CASE("interop: a tied model exports output.weight = embedding.weight and imports from one name or both") {
  const Vocab vocab = SmallVocab();
  for (const CellKind cell : {CellKind::kGru, CellKind::kLstm}) {
    CAPTURE(EnumName(cell));
    Config config = SmallConfig(cell, 2, 6);  // embedding_size == hidden_size
    config.model.tie_embeddings = true;
    const CharModel<float> model = InitializedModel(config, vocab, 17);
    CHECK_FALSE(model.layout().Has("output.w"));
    std::vector<SafetensorsTensor> tensors = ToTorchStateDict(model);
    const auto find = [&](const std::vector<SafetensorsTensor>& list, const std::string& name) {
      for (std::size_t k = 0; k < list.size(); ++k) {
        if (list[k].name == name) return static_cast<std::ptrdiff_t>(k);
      }
      return std::ptrdiff_t{-1};
    };
    // What load_state_dict of a tied PyTorch model (decoder.weight = encoder.weight) asks for: both names, equal.
    const std::ptrdiff_t embedding = find(tensors, "embedding.weight"), output = find(tensors, "output.weight");
    REQUIRE(embedding >= 0);
    REQUIRE(output >= 0);
    CHECK(tensors[static_cast<std::size_t>(output)].shape == tensors[static_cast<std::size_t>(embedding)].shape);
    CHECK(Bits(tensors[static_cast<std::size_t>(output)].values) == Bits(tensors[static_cast<std::size_t>(embedding)].values));

    const CheckpointData imported =
        ImportSafetensors(ExportSafetensors(config, vocab, model), "m.safetensors", std::nullopt, std::nullopt);
    CHECK(Bits(imported.params) == Bits(model.params()));
    CharModel<float> restored(model.spec());
    restored.params() = imported.params;
    SamplingOptions sampling;
    sampling.length = 40;
    Rng rng_a(5), rng_b(5);
    const std::string text_a = GenerateText(model, vocab, "the", sampling, rng_a);
    CHECK(text_a.size() > 40);
    CHECK(GenerateText(restored, vocab, "the", sampling, rng_b) == text_a);

    // A file holding the shared tensor once (safetensors' save_model drops duplicates), under either name.
    for (const char* dropped : {"output.weight", "embedding.weight"}) {
      CAPTURE(dropped);
      auto once = tensors;
      once.erase(once.begin() + find(once, dropped));
      const CheckpointData from_once = ImportSafetensors(SerializeSafetensors(once, {}), "m.safetensors", config, vocab);
      CHECK(Bits(from_once.params) == Bits(model.params()));
    }
    // Both names but different values: not a tied model.
    auto differ = tensors;
    differ[static_cast<std::size_t>(output)].values[0] += 1.0f;
    const auto message =
        UserErrorOf([&] { ImportSafetensors(SerializeSafetensors(differ, {}), "m.safetensors", config, vocab); });
    REQUIRE(message);
    CHECK(message->starts_with("m.safetensors: tensors embedding.weight and output.weight differ, but the config ties "
                               "them (model.tie_embeddings true)"));
  }
}

TEST_CASE("interop: a GRU with reset_after false has no PyTorch counterpart") {
  Config config = SmallConfig(CellKind::kGru, 1, 0);
  config.model.reset_after = false;
  const Vocab vocab = SmallVocab();
  const CharModel<float> model = InitializedModel(config, vocab, 3);
  const auto message = UserErrorOf([&] { ExportSafetensors(config, vocab, model); });
  REQUIRE(message);
  CHECK(message->find("reset_after false (the book's form) has no PyTorch counterpart") != std::string::npos);
}

TEST_CASE("interop: import names the tensor and the expected shape of every mismatch") {
  const Vocab vocab = SmallVocab();
  const Config config = SmallConfig(CellKind::kLstm, 1, 0);
  const CharModel<float> model = InitializedModel(config, vocab, 5);
  std::vector<SafetensorsTensor> tensors = ToTorchStateDict(model);
  auto import_error = [&](const std::vector<SafetensorsTensor>& t, std::optional<Config> with_config = std::nullopt) {
    const std::string bytes = SerializeSafetensors(t, {});
    const auto message = UserErrorOf([&] { ImportSafetensors(bytes, "m.safetensors", with_config, vocab); });
    return message ? *message : "(accepted)";
  };
  CHECK(import_error(tensors, config) == "(accepted)");
  const std::string v = std::to_string(vocab.size());

  // Without metadata (a file saved by PyTorch) the config must come from --config.
  CHECK(import_error(tensors).find("__metadata__ has no \"config\"") != std::string::npos);
  {
    auto missing = tensors;
    missing.erase(missing.begin() + 2);  // rnn.bias_ih_l0
    CHECK(import_error(missing, config) ==
          "m.safetensors: tensor rnn.bias_ih_l0 is missing; it is expected as F32 of shape (24,) by the model the "
          "config and vocabulary describe (lstm, 1 layer of 6, one-hot input, " + v + " characters): make the "
          "config's model section (cell, hidden_size, num_layers, embedding_size) and the vocabulary match the model "
          "saved in the file (docs/interop.md)");
  }
  {
    auto extra = tensors;
    extra.push_back({"rnn.weight_ih_l1", {24, 6}, std::vector<float>(144, 0.0f)});
    CHECK(import_error(extra, config).find("tensor \"rnn.weight_ih_l1\" (F32 of shape (24, 6)) is not used by the "
                                           "model") != std::string::npos);
  }
  {
    Config bigger = config;
    bigger.model.hidden_size = 7;
    CHECK(import_error(tensors, bigger).find("tensor rnn.weight_ih_l0 has shape (24, " + v + "), expected (28, " + v +
                                             ")") != std::string::npos);
  }
  {
    auto nan = tensors;
    nan.back().values[1] = std::nanf("");
    CHECK(import_error(nan, config).find("tensor output.bias holds a non-finite value") != std::string::npos);
  }
}

TEST_CASE("interop: an F16 tensor is refused with the expected dtype") {
  const Vocab vocab = Vocab::Build(U"ab");
  Config config = SmallConfig(CellKind::kRnn, 1, 0);
  config.model.hidden_size = 1;
  // RNN, H 1, V 2, one-hot: weight_ih (1, 2), weight_hh (1, 1), bias_ih (1,), bias_hh (1,), output.weight (2, 1),
  // output.bias (2,) with output.bias as F16.
  const std::string header =
      R"({"output.bias":{"dtype":"F16","shape":[2],"data_offsets":[0,4]},)"
      R"("output.weight":{"dtype":"F32","shape":[2,1],"data_offsets":[4,12]},)"
      R"("rnn.bias_hh_l0":{"dtype":"F32","shape":[1],"data_offsets":[12,16]},)"
      R"("rnn.bias_ih_l0":{"dtype":"F32","shape":[1],"data_offsets":[16,20]},)"
      R"("rnn.weight_hh_l0":{"dtype":"F32","shape":[1,1],"data_offsets":[20,24]},)"
      R"("rnn.weight_ih_l0":{"dtype":"F32","shape":[1,2],"data_offsets":[24,32]}})";
  const std::string bytes = FileWith(header, std::string(32, '\0'));
  const auto message = UserErrorOf([&] { ImportSafetensors(bytes, "m.safetensors", config, vocab); });
  REQUIRE(message);
  CHECK(*message == "m.safetensors: tensor output.bias has dtype F16, expected F32 of shape (2,): convert the model "
                    "to float32 before saving (model.float() in PyTorch)");
}

// The PyTorch direction: bench/torch_interop.py loads exports into nn.Embedding + nn.RNN/GRU/LSTM + nn.Linear with
// load_state_dict(strict=True), and imports a model PyTorch trained, comparing perplexities with `charlm eval`.
TEST_CASE("interop: PyTorch loads exported models and charlm evaluates PyTorch's, perplexities within 1e-4") {
  if (std::system("/usr/bin/python3 -c 'import torch' >/dev/null 2>&1") != 0) {
    std::printf("SKIPPED: interop PyTorch test: /usr/bin/python3 has no torch (apt-get install python3-torch)\n");
    return;
  }
  testing::TempDir dir;
  const std::string command = "/usr/bin/python3 " +
                              ShellQuote((testing::SourceDir() / "bench" / "torch_interop.py").string()) + " --charlm " +
                              ShellQuote(testing::CharlmBinary().string()) + " --work-dir " +
                              ShellQuote(dir.path().string()) + " --quick > " +
                              ShellQuote((dir / "log.txt").string()) + " 2>&1";
  const int status = std::system(command.c_str());
  const std::string log = testing::ReadFile(dir / "log.txt");
  INFO(log);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  CHECK(log.find("all within 1e-4") != std::string::npos);
}

}  // namespace
}  // namespace charlm
