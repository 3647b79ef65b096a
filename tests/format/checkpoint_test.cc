// Tests for the checkpoint container: exact round trips, the documented byte layout, rejection of damaged or foreign
// files, and atomic saving under injected write failures.
#include "format/checkpoint.h"

#include <doctest/doctest.h>

#include <bit>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "util/errors.h"
#include "test_util.h"

namespace charlm {
namespace {

using testing::ReadFile;
using testing::TempDir;
using testing::WriteFile;

// The UserError message thrown by action, or nullopt when it succeeds; any other exception fails the test.
template <typename Action>
std::optional<std::string> UserErrorOf(Action action) {
  try {
    action();
  } catch (const UserError& error) {
    return error.what();
  }
  return std::nullopt;
}

std::optional<std::string> ParseError(std::string_view bytes, std::string_view source = "test.ckpt") {
  return UserErrorOf([&] { ParseCheckpointBytes(bytes, source); });
}

bool Contains(const std::optional<std::string>& message, std::string_view part) {
  return message.has_value() && message->find(part) != std::string::npos;
}

std::vector<std::uint32_t> Bits(const std::vector<float>& values) {
  std::vector<std::uint32_t> bits;
  for (float value : values) bits.push_back(std::bit_cast<std::uint32_t>(value));
  return bits;
}

// Builds container bytes straight from the format document, independently of SerializeCheckpoint.
class ByteWriter {
 public:
  ByteWriter& U32(std::uint32_t value) {
    for (int i = 0; i < 4; ++i) bytes_.push_back(static_cast<char>(value >> (8 * i)));
    return *this;
  }
  ByteWriter& U64(std::uint64_t value) {
    for (int i = 0; i < 8; ++i) bytes_.push_back(static_cast<char>(value >> (8 * i)));
    return *this;
  }
  ByteWriter& Raw(std::string_view text) {
    bytes_.append(text);
    return *this;
  }
  ByteWriter& Section(std::string_view tag, std::string_view payload) {
    return Raw(tag).U64(payload.size()).Raw(payload);
  }
  ByteWriter& Header(std::uint32_t version, std::uint32_t section_count) {
    return Raw("CHARLMCK").U32(version).U32(section_count);
  }
  // The finished file: everything so far followed by its CRC32.
  std::string WithCrc() const {
    ByteWriter copy = *this;
    return copy.U32(Crc32(bytes_)).bytes_;
  }
  const std::string& bytes() const { return bytes_; }

 private:
  std::string bytes_;
};

// The six valid sections with minimal content, so tests can vary one thing at a time.
ByteWriter MinimalSections(std::uint32_t section_count = 6) {
  ByteWriter writer;
  writer.Header(1, section_count)
      .Section("CONF", "{}")
      .Section("VOCB", "[]")
      .Section("TRST", "{}")
      .Section("PARM", "")
      .Section("OPTM", "")
      .Section("CARY", "");
  return writer;
}

CheckpointData SmallCheckpoint() {
  CheckpointData data;
  data.config = {{"cell", "lstm"}, {"hidden", 4}};
  data.vocab = nlohmann::json::array({"a", "b", "\u5468"});
  data.trainer_state = {{"epoch", 3}, {"learning_rate", 0.5}};
  data.params = {1.0F, -0.0F, 0.25F};
  data.optimizer_state = {2.0F};
  data.carried_state = {-3.5F, 1e-40F};
  return data;
}

// Clears the failure hook even when a check throws, so one test cannot break the saves of the next.
class WriteFailureInjection {
 public:
  explicit WriteFailureInjection(std::size_t fail_after_bytes) {
    SetCheckpointWriteFailureForTesting(fail_after_bytes);
  }
  ~WriteFailureInjection() { SetCheckpointWriteFailureForTesting(std::nullopt); }
  WriteFailureInjection(const WriteFailureInjection&) = delete;
  WriteFailureInjection& operator=(const WriteFailureInjection&) = delete;
};

std::vector<std::string> FolderEntries(const std::filesystem::path& folder) {
  std::vector<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator(folder)) names.push_back(entry.path().filename());
  return names;
}

TEST_CASE("checkpoint Crc32 matches the standard CRC-32 check values") {
  CHECK(Crc32("123456789") == 0xCBF43926U);
  CHECK(Crc32("") == 0x00000000U);
  CHECK(Crc32("a") == 0xE8B7BE43U);
  CHECK(Crc32("The quick brown fox jumps over the lazy dog") == 0x414FA339U);
}

TEST_CASE("checkpoint round trip is bit-exact and serialization is deterministic") {
  CheckpointData data = SmallCheckpoint();
  data.params = {0.0F,
                 -0.0F,
                 std::numeric_limits<float>::denorm_min(),
                 -std::numeric_limits<float>::denorm_min(),
                 1e-39F,
                 std::numeric_limits<float>::min(),
                 std::numeric_limits<float>::max(),
                 -std::numeric_limits<float>::infinity(),
                 std::bit_cast<float>(0x7FC01234U),  // a NaN with a payload must survive unchanged
                 3.14159265F};
  data.optimizer_state = {};
  data.trainer_state = {{"best_val_perplexity", 1.2345678901234567}, {"batch", 17}};

  const std::string bytes = SerializeCheckpoint(data);
  CHECK(SerializeCheckpoint(data) == bytes);
  const CheckpointData loaded = ParseCheckpointBytes(bytes, "memory");
  CHECK(Bits(loaded.params) == Bits(data.params));
  CHECK(loaded.optimizer_state.empty());
  CHECK(Bits(loaded.carried_state) == Bits(data.carried_state));
  CHECK(loaded.config == data.config);
  CHECK(loaded.vocab == data.vocab);
  CHECK(loaded.trainer_state == data.trainer_state);
  CHECK(SerializeCheckpoint(loaded) == bytes);
}

TEST_CASE("checkpoint bytes follow the documented layout") {
  CheckpointData data;
  data.config = {{"a", 1}};
  data.vocab = nlohmann::json::array({"x"});
  data.trainer_state = nullptr;
  data.params = {1.0F, -0.0F};
  data.carried_state = {std::numeric_limits<float>::denorm_min()};

  ByteWriter expected;
  expected.Header(1, 6)
      .Section("CONF", R"({"a":1})")
      .Section("VOCB", R"(["x"])")
      .Section("TRST", "null")
      .Section("PARM", std::string("\x00\x00\x80\x3F\x00\x00\x00\x80", 8))
      .Section("OPTM", "")
      .Section("CARY", std::string("\x01\x00\x00\x00", 4));
  const std::string bytes = SerializeCheckpoint(data);
  CHECK(bytes == expected.WithCrc());
  // The trailer as printed in docs/checkpoint-format.md, pinned literally since WithCrc shares Crc32 with the code.
  CHECK(bytes.size() == 120);
  CHECK(bytes.substr(bytes.size() - 4) == "\x1C\x08\xD4\x87");
}

TEST_CASE("checkpoint sections are accepted in any order") {
  ByteWriter writer;
  writer.Header(1, 6)
      .Section("CARY", std::string("\x00\x00\x80\x3F", 4))
      .Section("PARM", "")
      .Section("TRST", "{}")
      .Section("OPTM", "")
      .Section("VOCB", "[]")
      .Section("CONF", R"({"k":2})");
  const CheckpointData data = ParseCheckpointBytes(writer.WithCrc(), "reordered");
  CHECK(data.carried_state == std::vector<float>{1.0F});
  CHECK(data.config == nlohmann::json{{"k", 2}});
}

TEST_CASE("checkpoint truncated at every length is rejected as truncated") {
  const std::string bytes = SerializeCheckpoint(SmallCheckpoint());
  REQUIRE_FALSE(ParseError(bytes).has_value());
  CHECK(Contains(ParseError(""), "empty"));
  for (std::size_t length = 1; length < bytes.size(); ++length) {
    INFO("length ", length, " of ", bytes.size());
    CHECK(Contains(ParseError(std::string_view(bytes).substr(0, length)), "test.ckpt: checkpoint is truncated"));
  }
}

TEST_CASE("checkpoint with any single byte flipped is rejected") {
  const std::string bytes = SerializeCheckpoint(SmallCheckpoint());
  for (std::size_t position = 0; position < bytes.size(); ++position) {
    for (unsigned char mask : {0x01, 0x80, 0xFF}) {
      std::string damaged = bytes;
      damaged[position] = static_cast<char>(damaged[position] ^ mask);
      INFO("byte ", position, " xor ", int{mask});
      const std::optional<std::string> error = ParseError(damaged);
      CHECK(Contains(error, "test.ckpt: "));
    }
  }
  // A flip inside a payload leaves the structure intact, so it is the CRC that must catch it.
  std::string damaged = bytes;
  damaged[bytes.size() / 2] = static_cast<char>(damaged[bytes.size() / 2] ^ 0x04);
  CHECK(Contains(ParseError(damaged), "corrupted (CRC32"));
}

TEST_CASE("checkpoint of another format version names both versions") {
  const std::string expected_start = "old.ckpt: checkpoint format version 7, this charlm reads version 1: ";
  // The version is judged before the layout, which a future version may change entirely.
  const std::string future = ByteWriter().Header(7, 1).Raw("whatever a later layout holds").bytes();
  CHECK(ParseError(future, "old.ckpt").value_or("").starts_with(expected_start));
  CHECK(Contains(ParseError(MinimalSections().bytes().substr(0, 8) + std::string("\0\0\0\0", 4), "v0"),
                 "checkpoint format version 0, this charlm reads version 1"));
  CHECK(ParseError(MinimalSections().WithCrc()) == std::nullopt);
}

TEST_CASE("checkpoint rejects foreign and empty files as not a checkpoint") {
  const std::string png("\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR", 16);
  CHECK(Contains(ParseError(png, "image.png"), "image.png: not a charlm checkpoint"));
  CHECK(Contains(ParseError("hello, world\n", "notes.txt"), "notes.txt: not a charlm checkpoint"));
  CHECK(Contains(ParseError("CHARLMXX", "near.bin"), "not a charlm checkpoint"));
  CHECK(Contains(ParseError("", "empty.ckpt"), "empty.ckpt: file is empty, not a charlm checkpoint"));

  TempDir dir;
  WriteFile(dir / "empty.ckpt", "");
  const std::string empty_path = (dir / "empty.ckpt").string();
  CHECK(Contains(UserErrorOf([&] { LoadCheckpoint(empty_path); }), empty_path + ": file is empty"));
  const std::string missing_path = (dir / "missing.ckpt").string();
  CHECK(Contains(UserErrorOf([&] { LoadCheckpoint(missing_path); }), missing_path + ": cannot open checkpoint"));
  CHECK(Contains(UserErrorOf([&] { LoadCheckpoint(dir.path().string()); }), "not a regular file"));
}

TEST_CASE("checkpoint with a huge declared length or count fails without allocating") {
  // A bad_alloc or a crash here instead of a UserError would mean the length was trusted before being checked.
  for (std::uint64_t huge : {std::uint64_t{1} << 40, std::uint64_t{0xFFFFFFFFFFFFFF00U},
                             std::numeric_limits<std::uint64_t>::max()}) {
    ByteWriter writer;
    writer.Header(1, 6).Section("CONF", "{}").Section("VOCB", "[]").Section("TRST", "{}");
    writer.Raw("PARM").U64(huge).Raw(std::string(16, '\0'));
    INFO("declared length ", huge);
    CHECK(Contains(ParseError(writer.WithCrc()), "truncated"));
  }
  CHECK(Contains(ParseError(MinimalSections(0xFFFFFFFFU).WithCrc()), "truncated"));
}

TEST_CASE("checkpoint with a valid CRC but a bad structure is rejected") {
  CHECK(Contains(ParseError(MinimalSections(7).Section("XTRA", "").WithCrc()), "unknown section tag \"XTRA\""));
  CHECK(Contains(ParseError(MinimalSections(7).Section("PARM", "").WithCrc()), "section PARM appears twice"));

  ByteWriter missing_carry;
  missing_carry.Header(1, 5)
      .Section("CONF", "{}")
      .Section("VOCB", "[]")
      .Section("TRST", "{}")
      .Section("PARM", "")
      .Section("OPTM", "");
  CHECK(Contains(ParseError(missing_carry.WithCrc()), "section CARY is missing"));

  ByteWriter ragged_floats;
  ragged_floats.Header(1, 6)
      .Section("CONF", "{}")
      .Section("VOCB", "[]")
      .Section("TRST", "{}")
      .Section("PARM", "abcdef")
      .Section("OPTM", "")
      .Section("CARY", "");
  CHECK(Contains(ParseError(ragged_floats.WithCrc()), "section PARM has 6 bytes, not a whole number"));

  ByteWriter bad_json;
  bad_json.Header(1, 6)
      .Section("CONF", "{\"a\":")
      .Section("VOCB", "[]")
      .Section("TRST", "{}")
      .Section("PARM", "")
      .Section("OPTM", "")
      .Section("CARY", "");
  CHECK(Contains(ParseError(bad_json.WithCrc()), "section CONF is not valid JSON"));

  // Fewer sections declared than present leaves bytes before the CRC unaccounted for.
  CHECK(Contains(ParseError(MinimalSections(5).WithCrc()), "unexpected bytes after the last of 5 sections"));
}

// LoadCheckpoint's and LoadCheckpointMetadata's errors for the file holding `bytes`; both must refuse alike.
struct BothErrors {
  std::optional<std::string> whole;
  std::optional<std::string> metadata;
};
BothErrors LoadErrors(const TempDir& dir, std::string_view bytes) {
  const std::string path = (dir / "probe.ckpt").string();
  WriteFile(path, std::string(bytes));
  return {UserErrorOf([&] { LoadCheckpoint(path); }), UserErrorOf([&] { LoadCheckpointMetadata(path); })};
}

TEST_CASE("checkpoint metadata is LoadCheckpoint's config, vocab and trainer state, read past parameters of many chunks") {
  TempDir dir;
  const std::string path = (dir / "model.ckpt").string();
  CheckpointData data = SmallCheckpoint();
  data.trainer_state = {{"global_step", 1234}, {"best_score", 12.5}, {"epochs_completed", 3}};
  data.params.assign(300000, 0.5F);  // 1.2 MB: the float sections pass through the CRC in many pieces
  data.optimizer_state.assign(70000, -1.0F);
  SaveCheckpoint(path, data);
  const CheckpointData whole = LoadCheckpoint(path);
  const CheckpointMetadata metadata = LoadCheckpointMetadata(path);
  CHECK(metadata.trainer_state == whole.trainer_state);
  CHECK(metadata.trainer_state.at("global_step") == 1234);
  CHECK(metadata.config == whole.config);
  CHECK(metadata.vocab == whole.vocab);

  // A byte of the trainer state changed after saving: the section reads as other JSON, so only the CRC tells.
  std::string bytes = ReadFile(path);
  const std::size_t step_at = bytes.find("1234");
  REQUIRE(step_at != std::string::npos);
  bytes[step_at] = '9';
  BothErrors damaged = LoadErrors(dir, bytes);
  CHECK(Contains(damaged.metadata, "probe.ckpt: checkpoint is corrupted (CRC32"));
  CHECK(damaged.metadata == damaged.whole);
  // One in the parameters, which the metadata reader never keeps, is caught all the same.
  bytes = ReadFile(path);
  bytes[bytes.size() - 100000] ^= 0x10;
  damaged = LoadErrors(dir, bytes);
  CHECK(Contains(damaged.metadata, "probe.ckpt: checkpoint is corrupted (CRC32"));
  CHECK(damaged.metadata == damaged.whole);
}

TEST_CASE("checkpoint metadata refuses every damaged, truncated or malformed file LoadCheckpoint refuses, alike") {
  TempDir dir;
  const std::string bytes = SerializeCheckpoint(SmallCheckpoint());
  for (std::size_t length = 0; length < bytes.size(); ++length) {
    INFO("truncated to ", length, " of ", bytes.size());
    const BothErrors errors = LoadErrors(dir, std::string_view(bytes).substr(0, length));
    REQUIRE(errors.whole.has_value());
    CHECK(errors.metadata == errors.whole);
  }
  for (std::size_t position = 0; position < bytes.size(); ++position) {
    std::string damaged = bytes;
    damaged[position] = static_cast<char>(damaged[position] ^ 0x01);
    INFO("byte ", position, " flipped");
    const BothErrors errors = LoadErrors(dir, damaged);
    REQUIRE(errors.whole.has_value());
    CHECK(errors.metadata == errors.whole);
  }
  ByteWriter ragged_floats;
  ragged_floats.Header(1, 6).Section("CONF", "{}").Section("VOCB", "[]").Section("TRST", "{}");
  ragged_floats.Section("PARM", "abcdef").Section("OPTM", "").Section("CARY", "");
  ByteWriter huge_length;
  huge_length.Header(1, 6).Section("CONF", "{}").Section("VOCB", "[]").Section("TRST", "{}");
  huge_length.Raw("PARM").U64(std::numeric_limits<std::uint64_t>::max()).Raw(std::string(16, '\0'));
  for (const std::string& malformed :
       {MinimalSections(7).Section("XTRA", "").WithCrc(), MinimalSections(7).Section("TRST", "{}").WithCrc(),
        MinimalSections(5).WithCrc(), ragged_floats.WithCrc(), huge_length.WithCrc(),
        MinimalSections(0xFFFFFFFFU).WithCrc(), std::string("hello, world\n")}) {
    const BothErrors errors = LoadErrors(dir, malformed);
    REQUIRE(errors.whole.has_value());
    CHECK(errors.metadata == errors.whole);
  }
  const std::string missing = (dir / "missing.ckpt").string();
  CHECK(Contains(UserErrorOf([&] { LoadCheckpointMetadata(missing); }), missing + ": cannot open checkpoint"));
  CHECK(Contains(UserErrorOf([&] { LoadCheckpointMetadata(dir.path().string()); }), "not a regular file"));
  CHECK(LoadErrors(dir, MinimalSections().WithCrc()).metadata == std::nullopt);
}

TEST_CASE("checkpoint save and load through a file, replacing an older save") {
  TempDir dir;
  const std::string path = (dir / "model.ckpt").string();
  CheckpointData first = SmallCheckpoint();
  SaveCheckpoint(path, first);
  CHECK(ReadFile(path) == SerializeCheckpoint(first));

  CheckpointData second = SmallCheckpoint();
  second.params = {7.0F, 8.0F, 9.0F, 10.0F};
  second.trainer_state["epoch"] = 4;
  SaveCheckpoint(path, second);
  const CheckpointData loaded = LoadCheckpoint(path);
  CHECK(loaded.params == second.params);
  CHECK(loaded.trainer_state["epoch"] == 4);
  CHECK(FolderEntries(dir.path()) == std::vector<std::string>{"model.ckpt"});
}

TEST_CASE("checkpoint save failing mid-write leaves the previous file and no temp file") {
  TempDir dir;
  const std::string path = (dir / "model.ckpt").string();
  const CheckpointData first = SmallCheckpoint();
  SaveCheckpoint(path, first);
  const std::string first_bytes = ReadFile(path);

  CheckpointData second = SmallCheckpoint();
  second.params.assign(64, 0.5F);
  const std::size_t second_size = SerializeCheckpoint(second).size();
  for (std::size_t fail_after : {std::size_t{0}, std::size_t{10}, second_size / 2, second_size}) {
    INFO("failure after ", fail_after, " of ", second_size, " bytes");
    {
      WriteFailureInjection injection(fail_after);
      CHECK(Contains(UserErrorOf([&] { SaveCheckpoint(path, second); }), "cannot write checkpoint '" + path + "'"));
    }
    CHECK(ReadFile(path) == first_bytes);
    CHECK(LoadCheckpoint(path).params == first.params);
    CHECK(FolderEntries(dir.path()) == std::vector<std::string>{"model.ckpt"});
  }

  // Without a previous file, a failed save must not leave a half-written one behind under either name.
  const std::string fresh_path = (dir / "fresh.ckpt").string();
  {
    WriteFailureInjection injection(5);
    CHECK(Contains(UserErrorOf([&] { SaveCheckpoint(fresh_path, second); }), "No space left on device"));
  }
  CHECK(FolderEntries(dir.path()) == std::vector<std::string>{"model.ckpt"});

  // The hook is off again: the same save now succeeds.
  SaveCheckpoint(path, second);
  CHECK(LoadCheckpoint(path).params == second.params);
}

TEST_CASE("checkpoint save into an unwritable folder names the path") {
  TempDir dir;
  WriteFile(dir / "plain_file", "not a folder");
  const std::string under_file = (dir / "plain_file" / "model.ckpt").string();
  CHECK(Contains(UserErrorOf([&] { SaveCheckpoint(under_file, SmallCheckpoint()); }),
                 "cannot write checkpoint '" + under_file + "'"));
  const std::string no_folder = (dir / "no_such_folder" / "model.ckpt").string();
  CHECK(Contains(UserErrorOf([&] { SaveCheckpoint(no_folder, SmallCheckpoint()); }),
                 "cannot write checkpoint '" + no_folder + "'"));
  // A folder standing where the file should go: the rename fails and the temp file is cleaned up.
  std::filesystem::create_directory(dir / "taken");
  const std::string folder_path = (dir / "taken").string();
  CHECK_THROWS_AS(SaveCheckpoint(folder_path, SmallCheckpoint()), UserError);
  CHECK(FolderEntries(dir.path()).size() == 2);
}

}  // namespace
}  // namespace charlm
