// Data-parallel training under mpirun: N processes train the model one process trains (both samplers, dropout),
// the same N gives the same checkpoint bytes, checkpoints resume on another N, and failures end the whole job.
#include <cctype>
#include <doctest/doctest.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "format/checkpoint.h"
#include "util/shell_quote.h"
#include "model/restore.h"
#include "cli_util.h"
#include "config/config.h"
#include "text/dataset.h"
#include "model/model.h"
#include "test_util.h"

namespace charlm {
namespace {

namespace fs = std::filesystem;

// mpirun, when the build found MPI; CI runs as root, and the machine may have fewer cores than processes.
const std::string kMpiexec = CHARLM_MPIEXEC;

bool MpiMissing(const char* test) {
  if (!kMpiexec.empty()) return false;
  std::printf("SKIPPED: %s: this build has no MPI (apt-get install libopenmpi-dev openmpi-bin, then rebuild)\n", test);
  return true;
}

std::vector<std::string> MpirunArgs(int processes) {
  return {kMpiexec, "--allow-run-as-root", "--oversubscribe", "-np", std::to_string(processes)};
}

// `mpirun -np N charlm ARGS` inside dir.
testing::RunResult RunJob(const testing::TempDir& dir, int processes, const std::vector<std::string>& args) {
  std::string command = "cd " + ShellQuote(dir.path().string()) + " &&";
  for (const std::string& arg : MpirunArgs(processes)) command += " " + ShellQuote(arg);
  command += " " + ShellQuote(testing::CharlmBinary().string());
  for (const std::string& arg : args) command += " " + ShellQuote(arg);
  return testing::RunShell(command + " </dev/null 2>&1");
}

// Trains with `processes` processes (1 = plain charlm, no mpirun) and requires success.
testing::RunResult Train(const testing::TempDir& dir, int processes, const std::vector<std::string>& args) {
  const testing::RunResult result = processes == 1 ? testing::Run(dir, args) : RunJob(dir, processes, args);
  REQUIRE_MESSAGE(result.exit_code == 0, result.output);
  return result;
}

// The characters each process holds, from rank 0's line "corpus ... read in P parts by N processes: they hold A,
// B and C of its T characters (...)", then T.
std::vector<long> HeldCharacters(const std::string& output) {
  const std::size_t at = output.find("processes: they hold ");
  REQUIRE_MESSAGE(at != std::string::npos, output);
  std::vector<long> numbers;
  std::string text = output.substr(at, output.find(" characters", at) - at);
  for (std::size_t k = 0; k < text.size();) {
    if (std::isdigit(static_cast<unsigned char>(text[k]))) {
      std::size_t used = 0;
      numbers.push_back(std::stol(text.substr(k), &used));
      k += used;
    } else {
      ++k;
    }
  }
  return numbers;
}

// A 2-layer LSTM with an embedding, dropout and recurrent dropout on the consecutive sampler, a one-hot GRU on
// random windows with offsets, and an LSTM with every AWD-LSTM regularizer on (awd.json: locked dropout, weight_drop,
// embedding_dropout, tied embeddings); the validation split is long enough for several streams (uneven shards, a tail).
void WriteConfigs(const testing::TempDir& dir) {
  testing::WriteFile(dir / "text.txt", testing::WordText(130));
  testing::WriteFile(dir / "lstm.json", R"({
  "data": {"corpus": "text.txt", "val_fraction": 0.4},
  "model": {"cell": "lstm", "hidden_size": 16, "num_layers": 2, "embedding_size": 8, "dropout": 0.2,
            "recurrent_dropout": 0.1},
  "train": {"batch_size": 6, "num_steps": 8, "epochs": 2, "threads": 1, "report": false, "log_every_seconds": 0},
  "generate": {"every": 0}
})");
  testing::WriteFile(dir / "awd.json", R"({
  "data": {"corpus": "text.txt", "val_fraction": 0.4},
  "model": {"cell": "lstm", "hidden_size": 16, "num_layers": 2, "embedding_size": 16, "dropout": 0.2,
            "locked_dropout": true, "weight_drop": 0.5, "embedding_dropout": 0.2, "tie_embeddings": true},
  "train": {"batch_size": 6, "num_steps": 8, "epochs": 2, "threads": 1, "report": false, "log_every_seconds": 0},
  "generate": {"every": 0}
})");
  testing::WriteFile(dir / "gru.json", R"({
  "data": {"corpus": "text.txt", "val_fraction": 0.4},
  "model": {"cell": "gru", "hidden_size": 16, "dropout": 0.3},
  "train": {"batch_size": 6, "num_steps": 8, "epochs": 2, "threads": 1, "report": false, "log_every_seconds": 0,
            "sampler": "random", "random_offset": true},
  "generate": {"every": 0}
})");
}

// Every tensor of b within `tolerance` of a's, relative to the largest magnitude in a's tensor.
void CheckSameWeights(const fs::path& a_path, const fs::path& b_path, double tolerance) {
  const CheckpointData a = LoadCheckpoint(a_path.string()), b = LoadCheckpoint(b_path.string());
  const Config config = ConfigFromJson(a.config);
  const ParamLayout layout(MakeModelSpec(config.model, static_cast<int>(a.vocab.at("tokens").size())));
  REQUIRE(a.params.size() == layout.total());
  REQUIRE(b.params.size() == a.params.size());
  for (const ParamTensor& tensor : layout.tensors()) {
    double scale = 0, difference = 0;
    for (std::size_t k = tensor.offset; k < tensor.offset + tensor.size(); ++k) {
      scale = std::max(scale, std::abs(static_cast<double>(a.params[k])));
      difference = std::max(difference, std::abs(static_cast<double>(a.params[k]) - b.params[k]));
    }
    CHECK_MESSAGE(difference <= tolerance * scale, tensor.name << ": " << b_path << " differs from " << a_path
                                                                << " by " << difference << ", scale " << scale);
  }
  CHECK(a.trainer_state.at("global_step") == b.trainer_state.at("global_step"));
}

std::vector<nlohmann::json> EpochRows(const fs::path& out_dir) {
  std::vector<nlohmann::json> rows;
  std::ifstream in(out_dir / "metrics.jsonl");
  std::string line;
  while (std::getline(in, line)) {
    const auto row = nlohmann::json::parse(line);
    if (row.at("kind") == "epoch") rows.push_back(row);
  }
  return rows;
}

// The checkpoint's bytes with the wall-clock time zeroed: everything else must repeat exactly.
std::string BytesWithoutClock(const fs::path& path) {
  CheckpointData data = LoadCheckpoint(path.string());
  data.trainer_state["elapsed_seconds"] = 0.0;
  return SerializeCheckpoint(data);
}

TEST_CASE("mpi: --version says whether this build has MPI") {
  testing::TempDir dir;
  const testing::RunResult version = testing::Run(dir, {"--version"});
  CHECK(version.exit_code == 0);
  CHECK_MESSAGE(version.output.find(kMpiexec.empty() ? "MPI: none" : "MPI: Open MPI") != std::string::npos, version.output);
}

TEST_CASE("mpi: charlm bench --np 2 starts mpirun itself and times the data-parallel step of every process") {
  if (MpiMissing("mpi bench test")) return;
  testing::TempDir dir;
  const std::vector<std::string> tiny{"bench", "--preset", "char-rnn", "--set", "model.hidden_size=8", "--set",
                                      "model.embedding_size=4", "--set", "train.batch_size=4", "--set",
                                      "train.num_steps=5", "--set", "train.threads=1", "--seconds", "0.05", "--json"};
  for (const bool overlap : {true, false}) {
    CAPTURE(overlap);
    std::vector<std::string> args = tiny;
    args.insert(args.end(), {"--np", "2"});
    if (!overlap) args.push_back("--no-overlap");
    const testing::RunResult result = testing::Run(dir, args);  // no mpirun: --np starts it
    REQUIRE_MESSAGE(result.exit_code == 0, result.output);
    const auto r = nlohmann::json::parse(result.output.substr(result.output.rfind('{')));
    CHECK(r.at("processes") == 2);
    CHECK(r.at("overlap") == overlap);
    CHECK(r.at("batch_size") == 4);  // the global batch: 2 streams each
    CHECK(r.at("train_tokens_per_s").get<double>() > 0);
    CHECK(r.at("eval_tokens_per_s").is_null());  // not measured data-parallel
    CHECK(r.at("allreduce_ms").get<double>() > 0);
    Config config;
    config.model.hidden_size = 8;
    config.model.embedding_size = 4;
    config.model.num_layers = 2;
    const ParamLayout layout(MakeModelSpec(config.model, 65));
    CHECK(r.at("gradient_bytes").get<double>() == 4.0 * static_cast<double>(layout.total() + 2));
  }
  // Under mpirun already, --np must say the job's size.
  const testing::RunResult mismatch = RunJob(dir, 2, tiny);
  CHECK(mismatch.exit_code != 0);
  CHECK_MESSAGE(mismatch.output.find("--np 1 but this job has 2 processes") != std::string::npos, mismatch.output);
}

TEST_CASE("mpi: 2 and 3 processes train the model 1 process trains: weights after 10 steps, 2 epochs' perplexities") {
  if (MpiMissing("mpi N-invariance test")) return;
  testing::TempDir dir;
  WriteConfigs(dir);
  for (const std::string model : {"lstm", "gru", "awd"}) {
    CAPTURE(model);
    for (const int n : {1, 2, 3}) {
      const std::string suffix = model + std::to_string(n);
      const testing::RunResult steps = Train(dir, n, {"train", "--config", model + ".json", "--set",
                                                      "train.max_steps=10", "--set", "train.out_dir=steps_" + suffix});
      if (n > 1) {
        // Every process but rank 0 (which also fits the baseline) holds a part of the text: its streams' block of
        // the training split for the consecutive sampler, all of it for random windows, and the validation split.
        const std::vector<long> held = HeldCharacters(steps.output);
        REQUIRE(held.size() == static_cast<std::size_t>(n) + 1);
        const long total = held.back(), val = static_cast<long>(0.4 * static_cast<double>(total));
        CHECK(held[0] == total);
        for (int rank = 1; rank < n; ++rank) {
          CAPTURE(rank);
          if (model != "gru") {  // the consecutive sampler
            CHECK(held[static_cast<std::size_t>(rank)] <= (total - val) / n + 8 + val + 1);
          } else {
            CHECK(held[static_cast<std::size_t>(rank)] == total);
          }
        }
      }
      Train(dir, n, {"train", "--config", model + ".json", "--set", "train.out_dir=epochs_" + suffix});
    }
    const auto one = EpochRows(dir / ("epochs_" + model + "1"));
    REQUIRE(one.size() == 2);
    for (const int n : {2, 3}) {
      CAPTURE(n);
      const std::string suffix = model + std::to_string(n);
      CheckSameWeights(dir / ("steps_" + model + "1") / "last.ckpt", dir / ("steps_" + suffix) / "last.ckpt", 1e-5);
      const auto many = EpochRows(dir / ("epochs_" + suffix));
      REQUIRE(many.size() == 2);
      for (std::size_t epoch = 0; epoch < 2; ++epoch) {
        for (const char* key : {"train_perplexity", "val_perplexity"}) {
          const double expected = one[epoch].at(key).get<double>(), got = many[epoch].at(key).get<double>();
          CHECK_MESSAGE(std::abs(got - expected) <= 0.005 * expected, key << " of epoch " << epoch + 1 << ": " << got
                                                                          << " with " << n << " processes, " << expected
                                                                          << " with 1");
        }
      }
    }
  }
}

TEST_CASE("mpi: with AdamW and a cosine schedule, 2 processes train what 1 trains, and by time they agree") {
  if (MpiMissing("mpi cosine schedule test")) return;
  testing::TempDir dir;
  WriteConfigs(dir);
  const std::vector<std::string> cosine = {"train", "--config", "lstm.json", "--set", "train.optimizer.name=adamw",
                                           "--set", "train.optimizer.weight_decay=0.1", "--set",
                                           "train.lr_schedule.name=cosine", "--set", "train.lr_schedule.warmup_steps=4",
                                           "--set", "train.lr_schedule.min_lr=0.0001"};
  auto with = [&](std::vector<std::string> more) {
    std::vector<std::string> args = cosine;
    args.insert(args.end(), more.begin(), more.end());
    return args;
  };
  // By steps: the rate depends on the step alone, so the epochs' mean rates are equal and the weights close.
  for (const int n : {1, 2}) {
    Train(dir, n, with({"--set", "train.max_steps=10", "--set", "train.out_dir=steps" + std::to_string(n)}));
    Train(dir, n, with({"--set", "train.out_dir=epochs" + std::to_string(n)}));
  }
  CheckSameWeights(dir / "steps1" / "last.ckpt", dir / "steps2" / "last.ckpt", 1e-5);
  const auto one = EpochRows(dir / "epochs1"), two = EpochRows(dir / "epochs2");
  REQUIRE(one.size() == 2);
  REQUIRE(two.size() == 2);
  for (std::size_t epoch = 0; epoch < 2; ++epoch) CHECK(one[epoch].at("learning_rate") == two[epoch].at("learning_rate"));
  CHECK(one[1].at("learning_rate").get<double>() < one[0].at("learning_rate").get<double>());
  // By time: every step shares rank 0's seconds (a collective every process must join, or the job would hang),
  // and the budget stops the job as one.
  const testing::RunResult timed = Train(dir, 2, with({"--set", "train.epochs=100000", "--set", "train.patience=0", "--set", "train.max_minutes=0.02",
                                                       "--set", "train.out_dir=timed"}));
  CHECK_MESSAGE(timed.output.find("stopped at train.max_minutes 0.02") != std::string::npos, timed.output);
}

TEST_CASE("mpi: validation whose warm-ups do not settle re-runs across processes and gives one process's figure") {
  if (MpiMissing("mpi unsettled validation test")) return;
  REQUIRE_MESSAGE(fs::exists(testing::LyricsPath()), "the lyrics are copied into corpus/ by scripts/setup.sh");
  testing::TempDir dir;
  // An undertrained LSTM on the lyrics without line breaks: most validation streams' warm-ups latch onto their
  // first characters and are scored again from the stream before, which for each process's first stream is the
  // previous process's last (one process: 7107.7; without the chain 2 and 3 processes gave 2098.5 and 1455.1).
  const std::vector<std::string> args = {
      "train", "--config", (testing::SourceDir() / "configs" / "default.json").string(), "--set",
      "data.corpus=" + testing::LyricsPath().string(), "--set", "data.newline=drop", "--set", "train.epochs=1",
      "--set", "train.batch_size=24", "--set", "model.hidden_size=64", "--set", "train.threads=1", "--set",
      "generate.every=0", "--set", "train.report=false"};
  double one = 0;
  for (const int n : {1, 3}) {
    CAPTURE(n);
    std::vector<std::string> run = args;
    run.insert(run.end(), {"--set", "train.out_dir=v" + std::to_string(n)});
    const testing::RunResult result = Train(dir, n, run);
    // Open MPI gives each process a terminal of its own as stdout: the output still goes to a pipe here, so the
    // progress lines are on, as for any file.
    if (n > 1) CHECK_MESSAGE(result.output.find("a progress line every 30 s") != std::string::npos, result.output);
    const auto rows = EpochRows(dir / ("v" + std::to_string(n)));
    REQUIRE(rows.size() == 1);
    const double val = rows[0].at("val_perplexity").get<double>();
    if (n == 1) one = val;
    CHECK(std::abs(val - one) <= 1e-4 * one);
  }
}

TEST_CASE("mpi: the same number of processes twice writes byte-identical checkpoints") {
  if (MpiMissing("mpi repeatability test")) return;
  testing::TempDir dir;
  WriteConfigs(dir);
  // Stopped mid-epoch, so that the checkpoint holds the gathered carried state of every stream.
  // The same out_dir both times (the checkpoint holds the config, out_dir included); the first is moved aside.
  for (const std::string run : {"first", "second"}) {
    Train(dir, 2, {"train", "--config", "lstm.json", "--set", "train.max_steps=60", "--set", "train.out_dir=run"});
    fs::rename(dir / "run", dir / run);
  }
  REQUIRE(!LoadCheckpoint((dir / "first" / "last.ckpt").string()).carried_state.empty());
  CHECK(BytesWithoutClock(dir / "first" / "last.ckpt") == BytesWithoutClock(dir / "second" / "last.ckpt"));
  CHECK(BytesWithoutClock(dir / "first" / "best.ckpt") == BytesWithoutClock(dir / "second" / "best.ckpt"));
}

TEST_CASE("mpi: a checkpoint written by 2 processes resumes on 1 and on 3, and theirs on 2, as if uninterrupted") {
  if (MpiMissing("mpi resume test")) return;
  testing::TempDir dir;
  WriteConfigs(dir);
  const std::vector<std::string> base = {"train", "--config", "lstm.json"};
  auto with = [&](std::vector<std::string> more) {
    std::vector<std::string> args = base;
    args.insert(args.end(), more.begin(), more.end());
    return args;
  };
  Train(dir, 1, with({"--set", "train.max_steps=14", "--set", "train.out_dir=whole"}));
  // Stopped at step 7 of an epoch of 54, mid-epoch with carried state, then resumed to step 14 on another N.
  const std::vector<std::pair<int, int>> moves = {{2, 1}, {2, 3}, {1, 2}, {3, 2}};
  for (const auto& [from, to] : moves) {
    CAPTURE(from);
    CAPTURE(to);
    const std::string first = "from" + std::to_string(from) + "_" + std::to_string(to);
    Train(dir, from, with({"--set", "train.max_steps=7", "--set", "train.out_dir=" + first}));
    Train(dir, to, {"train", "--resume", first + "/last.ckpt", "--set", "train.max_steps=14", "--set",
                    "train.out_dir=" + first + "_resumed"});
    CheckSameWeights(dir / "whole" / "last.ckpt", dir / (first + "_resumed") / "last.ckpt", 1e-5);
  }
}

// mpirun in the background, its output in a file, so the test can signal it or one of its processes.
class BackgroundJob {
 public:
  BackgroundJob(const testing::TempDir& dir, int processes, const std::vector<std::string>& args)
      : log_((dir / "job.log").string()) {
    std::vector<std::string> argv_text = MpirunArgs(processes);
    argv_text.push_back(testing::CharlmBinary().string());
    argv_text.insert(argv_text.end(), args.begin(), args.end());
    pid_ = ::fork();
    REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
      const int fd = ::open(log_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (fd < 0 || ::chdir(dir.path().c_str()) != 0) ::_exit(127);
      ::dup2(fd, STDOUT_FILENO);
      ::dup2(fd, STDERR_FILENO);
      std::vector<char*> argv;
      for (std::string& arg : argv_text) argv.push_back(arg.data());
      argv.push_back(nullptr);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
  }
  ~BackgroundJob() {
    if (!reaped_) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  BackgroundJob(const BackgroundJob&) = delete;
  BackgroundJob& operator=(const BackgroundJob&) = delete;

  void Signal(int signal_number) const { ::kill(pid_, signal_number); }
  // The charlm processes mpirun started (its children).
  std::vector<pid_t> Processes() const {
    std::vector<pid_t> children;
    std::ifstream in("/proc/" + std::to_string(pid_) + "/task/" + std::to_string(pid_) + "/children");
    pid_t child = 0;
    while (in >> child) children.push_back(child);
    return children;
  }
  // The exit code within `seconds`, or -1 (killed by a signal) / -2 (still running: the test fails on it).
  int Wait(double seconds) {
    int status = 0;
    if (!testing::WaitFor([&] { return ::waitpid(pid_, &status, WNOHANG) == pid_; }, seconds)) return -2;
    reaped_ = true;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }
  std::string Log() const { return testing::ReadFile(log_); }

 private:
  std::string log_;
  pid_t pid_ = -1;
  bool reaped_ = false;
};

TEST_CASE("mpi: one process killed with SIGKILL ends the job non-zero within 60 s, and the last checkpoint loads") {
  if (MpiMissing("mpi SIGKILL test")) return;
  testing::TempDir dir;
  testing::WriteLongRun(dir);
  BackgroundJob job(dir, 2, {"train", "--config", "long.json", "--set", "train.checkpoint_every_steps=5"});
  const fs::path last = dir / "run" / "last.ckpt";
  REQUIRE_MESSAGE(testing::WaitFor([&] { return fs::exists(last) && job.Processes().size() == 2; }, 30), job.Log());
  const std::vector<pid_t> processes = job.Processes();
  ::kill(processes.back(), SIGKILL);
  const auto killed_at = std::chrono::steady_clock::now();
  const int exit_code = job.Wait(60);
  CHECK_MESSAGE(exit_code != 0, job.Log());
  CHECK_MESSAGE(exit_code != -2, "the job still ran 60 s after one of its processes was killed");
  CHECK(std::chrono::steady_clock::now() - killed_at < std::chrono::seconds(60));
  CHECK_NOTHROW(LoadCheckpoint(last.string()));
}

TEST_CASE("mpi: SIGTERM to mpirun saves last.ckpt once, at the position every process reached") {
  if (MpiMissing("mpi SIGTERM test")) return;
  testing::TempDir dir;
  testing::WriteLongRun(dir);
  BackgroundJob job(dir, 2, {"train", "--config", "long.json"});
  REQUIRE_MESSAGE(testing::WaitFor([&] { return job.Log().find("epoch 2/") != std::string::npos; }, 30), job.Log());
  job.Signal(SIGTERM);
  const int exit_code = job.Wait(30);
  const std::string log = job.Log();
  CHECK_MESSAGE(exit_code != -2, log);
  CHECK_MESSAGE(exit_code != 0, log);
  const std::string saved = "stopped by SIGTERM; saved";
  REQUIRE_MESSAGE(log.find(saved) != std::string::npos, log);
  CHECK_MESSAGE(log.find(saved) == log.rfind(saved), log);
  const CheckpointData ckpt = LoadCheckpoint((dir / "run" / "last.ckpt").string());
  CHECK(ckpt.trainer_state.at("global_step").get<std::int64_t>() > 0);
}

TEST_CASE("mpi: a batch that does not divide, or processes that disagree, stop the job with one error line") {
  if (MpiMissing("mpi error test")) return;
  testing::TempDir dir;
  WriteConfigs(dir);
  const auto start = std::chrono::steady_clock::now();
  const testing::RunResult uneven =
      RunJob(dir, 4, {"train", "--config", "lstm.json", "--set", "train.out_dir=uneven"});
  CHECK_MESSAGE(uneven.exit_code != 0, uneven.output);
  CHECK_MESSAGE(testing::ErrorLine(uneven).find("train.batch_size 6 does not divide among the 4 processes") !=
                    std::string::npos,
                uneven.output);

  // Two programs in one job (mpirun's "A : B"): the second was given another seed.
  std::string command = "cd " + ShellQuote(dir.path().string()) + " &&";
  for (const std::string& arg : MpirunArgs(1)) command += " " + ShellQuote(arg);
  const std::string charlm = ShellQuote(testing::CharlmBinary().string());
  command += " " + charlm + " train --config lstm.json --set train.out_dir=mixed : -np 1 " + charlm +
             " train --config lstm.json --set train.out_dir=mixed --set train.seed=7 </dev/null 2>&1";
  const testing::RunResult mixed = testing::RunShell(command);
  CHECK_MESSAGE(mixed.exit_code != 0, mixed.output);
  CHECK_MESSAGE(testing::ErrorLine(mixed).find("process 1 of 2 disagrees with process 0 on the config") !=
                    std::string::npos,
                mixed.output);

  // Two hosts' copies of the corpus at the same path, of the same size, differing in one byte: each process runs
  // in its own folder (mpirun's -wdir), as on two machines.
  for (const char* host : {"host0", "host1"}) {
    fs::create_directory(dir / host);
    fs::copy_file(dir / "lstm.json", dir / host / "lstm.json");
    std::string text = testing::WordText(130);
    if (std::string(host) == "host1") text[text.size() / 2] = text[text.size() / 2] == 'a' ? 'b' : 'a';
    testing::WriteFile(dir / host / "text.txt", text);
  }
  std::string hosts = "cd " + ShellQuote(dir.path().string()) + " &&";
  for (const std::string& arg : MpirunArgs(1)) hosts += " " + ShellQuote(arg);
  hosts += " -wdir host0 " + charlm + " train --config lstm.json --set train.out_dir=copies : -np 1 -wdir host1 " +
           charlm + " train --config lstm.json --set train.out_dir=copies </dev/null 2>&1";
  const testing::RunResult copies = testing::RunShell(hosts);
  CHECK_MESSAGE(copies.exit_code != 0, copies.output);
  CHECK_MESSAGE(testing::ErrorLine(copies).find("process 1 of 2 disagrees with process 0 on corpus file 'text.txt' "
                                                "(the same size, other contents)") != std::string::npos,
                copies.output);

  // Process 1's copy missing: its error alone, and no "stopping" line from process 0, whom Open MPI's abort
  // ends with a SIGTERM.
  fs::remove(dir / "host1" / "text.txt");
  const testing::RunResult missing = testing::RunShell(hosts);
  CHECK_MESSAGE(missing.exit_code != 0, missing.output);
  CHECK_MESSAGE(testing::ErrorLine(missing).find("corpus file 'text.txt' does not exist") != std::string::npos,
                missing.output);
  CHECK_MESSAGE(missing.output.find("stopping") == std::string::npos, missing.output);
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(30));
}

TEST_CASE("mpi: a folder corpus trains under mpirun -np 2 as on one process, every process reading it whole") {
  if (MpiMissing("mpi folder corpus test")) return;
  testing::TempDir dir;
  WriteConfigs(dir);
  const std::string words = testing::WordText(130);
  fs::create_directories(dir / "texts" / "b");
  testing::WriteFile(dir / "texts" / "a.txt", words.substr(0, words.size() / 2));
  testing::WriteFile(dir / "texts" / "b" / "c.txt", words.substr(words.size() / 2));
  for (const int n : {1, 2}) {
    Train(dir, n, {"train", "--config", "lstm.json", "--set", "data.corpus=texts", "--set", "train.max_steps=10",
                   "--set", "train.out_dir=folder" + std::to_string(n)});
  }
  CheckSameWeights(dir / "folder1" / "last.ckpt", dir / "folder2" / "last.ckpt", 1e-5);
}


}  // namespace
}  // namespace charlm
