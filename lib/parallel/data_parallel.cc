// The pieces of data-parallel training that talk to the other workers.
#include "parallel/data_parallel.h"

#include <algorithm>
#include <array>
#include <cassert>
#include <chrono>
#include <cstring>
#include <string_view>
#include <vector>

#include "run/budget.h"
#include "run/early_stopping.h"
#include "util/errors.h"

namespace charlm {
std::uint64_t Fingerprint(std::string_view bytes, std::uint64_t hash) {
  for (const char c : bytes) hash = (hash ^ static_cast<unsigned char>(c)) * 1099511628211ULL;
  return hash;
}

std::uint64_t Fingerprint(const std::vector<float>& values, std::uint64_t hash) {
  return Fingerprint(std::string_view(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(float)), hash);
}

StreamShard ShardOf(const Workers& workers, int batch_size, int num_steps, bool resuming) {
  const int n = workers.size();
  // The token count travels as a float beside the gradients (WorkersReduce), exact up to 2^24.
  const std::int64_t tokens = static_cast<std::int64_t>(batch_size) * num_steps;
  if (n > 1 && tokens > kMaxReducedTokens) {
    throw UserError("train.batch_size " + std::to_string(batch_size) + " x train.num_steps " +
                    std::to_string(num_steps) + " = " + std::to_string(tokens) +
                    " tokens per step is more than a job of several processes counts exactly (" +
                    std::to_string(kMaxReducedTokens) + "): lower train.batch_size or train.num_steps");
  }
  if (batch_size % n != 0) {
    std::string divisors;  // a few dozen at most for the batch sizes charlm takes
    for (int d = 1; d <= batch_size; ++d) {
      if (batch_size % d == 0) divisors += (divisors.empty() ? "" : ", ") + std::to_string(d);
    }
    const std::string processes =
        "run mpirun -np with a divisor of " + std::to_string(batch_size) + " (" + divisors + ")";
    // A resumed run keeps its checkpoint's batch size (its carried state is one row per stream).
    throw UserError("train.batch_size " + std::to_string(batch_size) + " does not divide among the " +
                    std::to_string(n) + " processes of this job (each trains batch_size / processes streams): " +
                    (resuming ? processes + "; a resumed run keeps its checkpoint's batch size"
                              : "set train.batch_size to a multiple of " + std::to_string(n) + ", or " + processes));
  }
  const int per_worker = batch_size / n;
  return StreamShard{workers.rank() * per_worker, per_worker};
}

void WorkersReduce::Begin(std::span<float> buffer) {
  buffer_ = buffer;
  tokens_ = buffer.back();
  unstarted_ = buffer.size();
  started_ = 0;
}

void WorkersReduce::GradientsFinalFrom(std::size_t first) {
  assert(first < unstarted_);  // Backward reports ever longer suffixes
  if (started_ == overlap_) return;
  // The first suffix takes the tail along: the loss sum and token count are known before Backward starts.
  workers_.StartSum(buffer_.subspan(first, unstarted_ - first));
  unstarted_ = first;
  ++started_;
}

void WorkersReduce::Progress() {
  if (started_ > 0) workers_.PollSums();
}

void WorkersReduce::Finish() {
  const auto start = std::chrono::steady_clock::now();
  if (started_ == 0) {
    workers_.SumInPlace(buffer_);  // the one in-place allreduce: gradients, loss sum, token count
  } else {
    if (unstarted_ > 0) workers_.StartSum(buffer_.first(unstarted_));
    workers_.FinishSums();
  }
  assert(buffer_.back() == tokens_ * static_cast<float>(workers_.size()));  // equal blocks, an exact count
  finish_seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

void CheckWorkersAgree(Workers& workers, const TrainingRun& run) {
  // What each worker read or was told on its own: its command line, its files, its checkpoint.
  enum Field { kConfig, kCorpus, kVocab, kWeights, kFields };
  std::array<std::uint64_t, kFields> mine{};
  mine[kConfig] = Fingerprint(ConfigToJson(run.config()).dump());
  mine[kCorpus] = static_cast<std::uint64_t>(run.data().corpus_chars());
  mine[kVocab] = Fingerprint(run.data().vocab.ToJson().dump());
  mine[kWeights] = Fingerprint(run.model().params(), Fingerprint(run.progress().ToJson().dump()));
  std::vector<std::uint64_t> all(mine.size() * static_cast<std::size_t>(workers.size()));
  workers.AllGather(mine, all);
  for (int rank = 1; rank < workers.size(); ++rank) {
    const std::uint64_t* theirs = all.data() + static_cast<std::size_t>(rank) * kFields;
    std::string what;
    if (theirs[kConfig] != all[kConfig]) {
      what = kConfigDiffers;
    } else if (theirs[kCorpus] != all[kCorpus]) {
      what = "the corpus " + run.config().data.corpus.Label() + " (" + std::to_string(theirs[kCorpus]) +
             " characters there, " + std::to_string(all[kCorpus]) + " on rank 0)";
    } else if (theirs[kVocab] != all[kVocab]) {
      what = "the vocabulary of " + run.config().data.corpus.Label() + " (the same length, other characters)";
    } else if (theirs[kWeights] != all[kWeights]) {
      what = "the starting weights (its --resume checkpoint differs)";
    } else {
      continue;
    }
    throw Disagreement(rank, workers.size(), what);
  }
}

UserError Disagreement(int rank, int size, const std::string& what) {
  return UserError("process " + std::to_string(rank) + " of " + std::to_string(size) + " disagrees with process 0 on " +
                   what + ": start every process with the same command line and the same files (a shared folder, "
                   "or identical copies on every host)");
}

void CheckConfigsAgree(Workers& workers, const Config& config) {
  const std::array<std::uint64_t, 1> mine{Fingerprint(ConfigToJson(config).dump())};
  std::vector<std::uint64_t> all(static_cast<std::size_t>(workers.size()));
  workers.AllGather(mine, all);
  for (int rank = 1; rank < workers.size(); ++rank) {
    if (all[static_cast<std::size_t>(rank)] != all[0]) throw Disagreement(rank, workers.size(), kConfigDiffers);
  }
}

void AddDataParallelOptions(Workers& workers, LoopOptions& options) {
  options.eval_shard = workers.rank();
  options.eval_shards = workers.size();
  options.reduce_eval = [&workers](EvalResult& result) {
    std::array<double, 2> sums{result.loss_sum, static_cast<double>(result.tokens)};
    workers.SumInPlace(sums);
    result.loss_sum = sums[0];
    result.tokens = static_cast<std::int64_t>(sums[1]);
    FinishEvalResult(result);
  };
  // One round per worker: worker k takes its turn on the state the rounds before left, then every worker
  // receives what it left (an allgather, of which worker k's part counts).
  options.eval_in_shard_order = [&workers](std::size_t floats, const EvalOptions::ShardTurn& turn) {
    std::vector<float> carried(floats, 0.0f), all(floats * static_cast<std::size_t>(workers.size()));
    for (int k = 0; k < workers.size(); ++k) {
      if (k == workers.rank()) turn(carried);
      workers.AllGather(carried, all);
      std::copy_n(all.begin() + static_cast<std::ptrdiff_t>(floats * static_cast<std::size_t>(k)), floats, carried.begin());
    }
  };
  options.agree_stop = [&workers](StopReason mine) {
    return static_cast<StopReason>(workers.Max(static_cast<int>(mine)));
  };
  // Rank 0's clock alone drives a time-based schedule, as it does train.max_minutes: the others add zeros to its
  // seconds, which leaves them exact, so every worker steps with the same learning rate.
  options.agree_schedule_seconds = [&workers](double mine) {
    std::array<double, 1> seconds{workers.rank() == 0 ? mine : 0.0};
    workers.SumInPlace(seconds);
    return seconds[0];
  };
}

void CarriedStateGather::OnCheckpoint(TrainingRun& run, const CheckpointPoint& point) {
  if (point.kind == CheckpointPoint::Kind::kEpochEnd || run.progress().next_batch == 0 ||
      run.config().train.sampler != SamplerKind::kConsecutive) {
    return;  // no carried state in this checkpoint (TrainingRun::Save)
  }
  RecurrentState<float>& state = run.state();  // (L, B / N, H)
  const std::size_t layer_rows = static_cast<std::size_t>(state.batch) * static_cast<std::size_t>(state.hidden);
  const std::size_t all_rows = layer_rows * static_cast<std::size_t>(workers_.size());
  const std::size_t layers = static_cast<std::size_t>(state.num_layers);
  std::vector<float> all((state.c.empty() ? 1 : 2) * layers * all_rows);  // [h (L, B, H), c (L, B, H)]
  for (std::size_t l = 0; l < layers; ++l) {
    // The workers' blocks of layer l, in rank order, are that layer's (B, H) rows in stream order.
    workers_.AllGather(std::span<const float>(state.h.data() + l * layer_rows, layer_rows),
                       std::span<float>(all.data() + l * all_rows, all_rows));
    if (!state.c.empty()) {
      workers_.AllGather(std::span<const float>(state.c.data() + l * layer_rows, layer_rows),
                         std::span<float>(all.data() + (layers + l) * all_rows, all_rows));
    }
  }
  run.SetCarriedStateOfAll(std::move(all));
}

HandlerList WorkerHandlers(Workers& workers) {
  HandlerList handlers;
  handlers.push_back(std::make_unique<CarriedStateGather>(workers));
  handlers.push_back(std::make_unique<Budget>(/*watch_clock=*/false));
  handlers.push_back(std::make_unique<EarlyStopping>());
  return handlers;
}

}  // namespace charlm
