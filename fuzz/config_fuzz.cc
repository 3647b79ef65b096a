// libFuzzer target: any text given as a config yields a Config or a UserError, and accepted configs round-trip.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "config/config.h"
#include "util/errors.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  charlm::Config config;
  try {
    config = charlm::ParseConfigText(text, "fuzz.json");
    charlm::ValidateConfig(config);
  } catch (const charlm::UserError&) {
    return 0;  // only UserError may escape: a json::exception or std::out_of_range here is a finding
  }
  // What the program writes into checkpoints must read back as the same config.
  const nlohmann::json written = charlm::ConfigToJson(config);
  const charlm::Config reread = charlm::ConfigFromJson(written);
  charlm::ValidateConfig(reread);
  if (charlm::ConfigToJson(reread) != written) std::abort();
  return 0;
}
