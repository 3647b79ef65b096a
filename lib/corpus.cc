// The training text: reading a UTF-8 corpus file, applying the newline policy, and cutting train/val/test splits.
#include "corpus.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <sstream>

#include "errors.h"
#include "file_io.h"
#include "utf8.h"

namespace charlm {
namespace {

constexpr std::uint64_t kCorpusMemoryPerByte = 10;

}  // namespace

std::u32string ApplyNewlinePolicy(std::u32string text, NewlinePolicy policy) {
  const auto is_newline = [](char32_t c) { return c == U'\n' || c == U'\r'; };
  switch (policy) {
    case NewlinePolicy::kKeep:
      break;
    case NewlinePolicy::kSpace:
      std::replace_if(text.begin(), text.end(), is_newline, U' ');
      break;
    case NewlinePolicy::kDrop:
      text.erase(std::remove_if(text.begin(), text.end(), is_newline), text.end());
      break;
  }
  return text;
}

std::u32string ReadCorpus(const std::string& path, NewlinePolicy policy, std::int64_t max_chars) {
  if (max_chars < 0) {
    throw UserError("max_chars " + std::to_string(max_chars) +
                    " is negative: use 0 for the whole corpus or a positive count");
  }
  std::error_code ec;
  const auto status = std::filesystem::status(path, ec);
  if (!std::filesystem::exists(status)) {
    std::string where;
    if (std::filesystem::path(path).is_relative()) {
      std::error_code cwd_error;
      const std::filesystem::path cwd = std::filesystem::current_path(cwd_error);
      if (!cwd_error) where = " (relative paths are read from the current folder, " + cwd.string() + ")";
    }
    throw UserError("corpus file '" + path + "' does not exist" + where +
                    ": check the path, or run from the folder it is relative to");
  }
  if (std::filesystem::is_directory(status)) {
    throw UserError("corpus path '" + path + "' is a directory: pass the path of a UTF-8 text file inside it");
  }
  // The text is held whole: the bytes, then 4 bytes per character decoded, then 4 per id, about 10 per byte.
  const std::uint64_t memory = PhysicalMemoryBytes();
  const std::uint64_t limit = memory > 0 ? memory / kCorpusMemoryPerByte : std::numeric_limits<std::uint64_t>::max();
  const std::string bytes = ReadRegularFile(
      path, FileRole{"corpus file", "check that it is a readable file", limit,
                     "charlm holds the whole text in memory, about " + std::to_string(kCorpusMemoryPerByte) +
                         " bytes per byte of text, and this machine has " + FormatBytes(memory) +
                         "; train on a shorter part of the text"});
  if (bytes.empty()) throw UserError("corpus file '" + path + "' is empty: give a UTF-8 text file with some text");

  std::u32string text = ApplyNewlinePolicy(DecodeUtf8(bytes, path), policy);
  if (text.empty()) {
    throw UserError("corpus file '" + path + "' has no characters left after newline policy \"" +
                    std::string(EnumName(policy)) + "\": use newline \"keep\" or a file with more than line breaks");
  }
  if (max_chars > 0 && static_cast<std::uint64_t>(max_chars) < text.size())
    text.resize(static_cast<std::size_t>(max_chars));
  return text;
}

NewlinePolicy ParseNewlinePolicy(std::string_view text, std::string_view what) {
  if (auto policy = ParseEnum<NewlinePolicy>(text)) return *policy;
  throw UserError(std::string(what) + " \"" + std::string(text) + "\" is not a newline policy: use one of " +
                  EnumChoices<NewlinePolicy>());
}

SplitBounds SplitCorpus(std::int64_t size, double val_fraction, double test_fraction) {
  assert(size >= 0);
  const auto check_fraction = [](const char* name, double fraction) {
    if (!(fraction >= 0.0 && fraction < 1.0)) {
      std::ostringstream message;
      message << name << " " << fraction << " is outside [0, 1): use a fraction such as 0.1";
      throw UserError(message.str());
    }
  };
  check_fraction("val_fraction", val_fraction);
  check_fraction("test_fraction", test_fraction);
  const auto val_size = static_cast<std::int64_t>(std::floor(static_cast<double>(size) * val_fraction));
  const auto test_size = static_cast<std::int64_t>(std::floor(static_cast<double>(size) * test_fraction));
  const std::int64_t train_size = size - val_size - test_size;
  if (train_size <= 0) {
    std::ostringstream message;
    message << "val_fraction " << val_fraction << " + test_fraction " << test_fraction
            << " leave no training text out of " << size
            << " characters: lower the fractions so their sum is well below 1";
    throw UserError(message.str());
  }
  return SplitBounds{train_size, train_size + val_size, size};
}

}  // namespace charlm
