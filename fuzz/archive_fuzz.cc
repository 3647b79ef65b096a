// libFuzzer target: the corpus reader over compressed files and archives (libarchive) never crashes, hangs or
// runs away on any bytes, read as a named file and as a file inside a folder; an accepted text's ids are in range.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include <spdlog/spdlog.h>

#include "text/corpus.h"
#include "util/errors.h"

namespace {

// One folder per fuzzing process, holding the input as its only file.
const std::filesystem::path& Folder() {
  static const std::filesystem::path folder = [] {
    auto path = std::filesystem::temp_directory_path() / ("charlm_archive_fuzz_" + std::to_string(::getpid()));
    std::filesystem::create_directories(path);
    spdlog::set_level(spdlog::level::off);
    return path;
  }();
  return folder;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::filesystem::path file = Folder() / "input";
  {
    std::ofstream out(file, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data) + 1, static_cast<std::streamsize>(size - 1));
    if (!out) std::abort();
  }
  // The first byte picks the form: the file named, or the folder holding it (documents may be skipped there).
  const std::string path = (data[0] & 1) ? Folder().string() : file.string();
  try {
    // max_chars keeps a decompression bomb to a megabyte of ids, as data.max_chars does for a user.
    const charlm::CorpusIds corpus =
        charlm::ReadCorpusIds(charlm::CorpusSource::File(path), charlm::NewlinePolicy::kKeep, 1 << 20, 1);
    for (std::size_t k = 0; k < corpus.ids.size(); ++k) {
      if (corpus.ids.view()[k] < 0 || corpus.ids.view()[k] >= corpus.vocab.size()) std::abort();
    }
  } catch (const charlm::UserError&) {
  }
  return 0;
}
