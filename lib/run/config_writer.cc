// The resolved config of a run, every key, as out_dir/config.json.
#include "run/config_writer.h"

#include <filesystem>

#include "config/config.h"
#include "run/run_files.h"

namespace charlm {

void ConfigWriter::OnTrainBegin(TrainingRun& run) {
  const std::filesystem::path path = std::filesystem::path(run.config().train.out_dir) / "config.json";
  WriteOutDirFile(path, ConfigToJson(run.config()).dump(2) + '\n');
}

}  // namespace charlm
