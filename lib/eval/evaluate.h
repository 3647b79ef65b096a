// Perplexity and bits per character of a model on a sequence of ids, with full context at batched speed.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <vector>

#include "ops/column_threads.h"
#include "model/model.h"
#include "text/token_ids.h"

namespace charlm {

// Characters each stream after the first runs, unscored, before the piece it scores. 256 keeps the result within
// 0.1 % of one stream's on the trained models measured (docs/evaluation.md); a state carries little further.
inline constexpr int kDefaultBurnIn = 256;
// The most streams `charlm eval --streams` takes: each holds num_steps steps of activations, and past a few
// thousand side by side the products are no faster per character.
inline constexpr int kMaxEvalStreams = 4096;

// Above this StateGap (largest difference of h, or of c relative to its size) a warmed-up state is unsettled.
inline constexpr double kUnsettledStateGap = 1e-2;
// At or below this StateGap a re-run has rejoined the first pass, so it stops and the first pass's remaining loss
// stands: the gap that lets a warm-up's state stand for its predecessor's lets the first pass's state stand for
// the re-run's. (1e-5 instead scored 9x more characters again on a 100,000-character text, for figures 1e-9 apart.)
inline constexpr double kRejoinedStateGap = kUnsettledStateGap;
// The most memory Evaluate keeps for the first pass's states inside the pieces, where re-runs look for rejoining.
inline constexpr std::size_t kPieceSnapshotBytes = std::size_t{64} << 20;

struct EvalOptions {
  int streams = 32;    // pieces scored side by side; fewer when the text is short (each piece >= burn_in)
  int num_steps = 35;  // time steps per forward chunk
  int burn_in = kDefaultBurnIn;  // 0 = every piece starts from a zero state (the old, context-losing scheme)
  std::int64_t max_chars = 0;    // score only the first max_chars transitions; 0 = all of them
  std::size_t snapshot_bytes = kPieceSnapshotBytes;  // memory for the states re-runs can rejoin (PieceSnapshots)
  // The threads the cell kernels and the softmax are split over (bit-identical to one thread); nullptr = the
  // caller's thread only. Borrowed.
  ColumnThreads* row_threads = nullptr;
  // Data-parallel validation: this process runs only block `shard` of `shards` of the plan's streams (and the tail
  // if it holds the last stream); summing the shards' loss_sum and tokens gives the whole result.
  int shard = 0, shards = 1;
  // With shards, the re-runs (RerunUnsettledStreams) of each shard's first stream need the final state of the
  // stream before it, the previous shard's last after that shard's own re-runs: a chain in shard order. Calls
  // turn(carried) once for this shard, after every shard before it took its turn, `carried` (floats of one state
  // row) holding the state the previous turn left; the turn leaves its last stream's final state there. Empty:
  // each shard's first stream keeps its warm-up (shards evaluated on their own). The figure then equals the
  // whole evaluation's only where those warm-ups settled.
  using ShardTurn = std::function<void(std::span<float> carried)>;
  std::function<void(std::size_t floats, const ShardTurn& turn)> in_shard_order;
  // Called after every chunk with the transitions scored so far and the number to score; returning false stops
  // the evaluation (EvalResult::cancelled). Empty = no callback.
  std::function<bool(std::int64_t done, std::int64_t total)> progress;
};

struct EvalResult {
  double mean_loss = 0;      // nats per predicted character
  double perplexity = 0;     // exp(mean_loss)
  double bits_per_char = 0;  // mean_loss / ln 2
  std::int64_t tokens = 0;   // predicted characters: ids.size() - 1 (or max_chars, or fewer when cancelled)
  double loss_sum = 0;       // mean_loss * tokens, summed in double (what shards add up)
  bool cancelled = false;    // the progress callback stopped it; the figures cover the `tokens` scored until then
  int rerun_streams = 0;     // streams scored again from their predecessor's final state (see Evaluate)
  std::int64_t rerun_chars = 0;  // characters those re-runs scored before rejoining the first pass
};

// How the transitions ids[k] -> ids[k+1], k in [0, transitions), are shared among the streams. Every stream runs
// run_length steps side by side: stream 0 from position 0, scoring all of them; stream b > 0 from position
// b * piece, scoring only its last `piece` steps, after burn_in steps that warm its state on the characters
// just before (stream b - 1 scores those). The transitions from tail_start on continue stream (streams - 1) at
// batch 1. Every transition is scored exactly once.
struct EvalPlan {
  int streams = 1;
  int burn_in = 0;              // 0 when streams == 1
  std::int64_t piece = 0;       // transitions scored by each stream b > 0
  std::int64_t run_length = 0;  // burn_in + piece: steps every stream runs
  std::int64_t tail_start = 0;  // burn_in + streams * piece
  std::int64_t transitions = 0;

  std::int64_t StreamStart(int b) const { return b * piece; }
  std::int64_t ScoredBegin(int b) const { return b == 0 ? 0 : b * piece + burn_in; }
  std::int64_t ScoredEnd(int b) const { return b * piece + run_length; }
};

// The plan for `transitions` transitions with at most `streams` streams: the streams are cut down so that each
// piece is at least burn_in long (so warm-up at most doubles the work) and at least 1.
EvalPlan PlanEvaluation(std::int64_t transitions, int streams, int burn_in);

// Fills mean_loss, perplexity and bits_per_char from loss_sum and tokens.
void FinishEvalResult(EvalResult& result);
// The figures of transitions scored one by one (ln p of each): tokens, loss_sum and what FinishEvalResult fills.
EvalResult FiguresOf(std::span<const double> log_probs);

// Scores every transition of ids exactly once, without dropout, following PlanEvaluation. Each scored character
// sees the whole text before it (one stream) or at least burn_in characters of it (the others). A warm-up
// usually reaches the state stream b - 1 ends in, which is where stream b starts scoring; when it does not (an
// undertrained LSTM can latch onto the character its warm-up began with and stay there: one stream scored
// 10.23 nats per character against 6.18 from full context), stream b is scored again at batch 1 from stream
// b - 1's final state, so the figure is that of one stream whenever the streams before it are.
EvalResult Evaluate(const CharModel<float>& model, IdView ids, const EvalOptions& options);

// The first pass's state and per-stream loss every `every` chunks into the scored pieces: where a re-run can
// stop. Snapshot k is taken after (k + 1) * every chunks of the pieces.
struct PieceSnapshots {
  int every = 0;                                  // chunks between snapshots (0: no snapshots)
  std::vector<RecurrentState<float>> states;      // per snapshot: (L, S, H)
  std::vector<double> loss_before;                // (snapshots, S): each stream's piece loss up to the snapshot

  // The snapshot taken after `piece_chunks_done` chunks of the pieces, if one is: where the first pass records
  // and where a re-run looks.
  std::optional<std::size_t> After(std::int64_t piece_chunks_done) const {
    if (every == 0 || piece_chunks_done <= 0 || piece_chunks_done % every != 0) return std::nullopt;
    const auto k = static_cast<std::size_t>(piece_chunks_done / every - 1);
    return k < states.size() ? std::optional<std::size_t>(k) : std::nullopt;
  }
};

// Evaluate's second pass over streams [1, S) of this shard (S = piece_loss.size(), global streams lo + b):
// each whose warmed state is further than kUnsettledStateGap from its predecessor's final state is scored again
// at batch 1 from that state, until it rejoins the first pass at a snapshot (then the first pass's loss after
// the snapshot stands, and so does its final state) or to the end of its piece (then its loss and final state
// are replaced). Counts the streams and characters it scored again in result.rerun_streams and rerun_chars.
// `predecessor` (one row), when given, is global stream lo - 1's final state: stream lo is then checked and re-run
// from it like the others; without it stream lo's warm-up stands.
void RerunUnsettledStreams(const CharModel<float>& model, IdView ids, const EvalPlan& plan, int lo, int chunk,
                           const RecurrentState<float>& warmed, const PieceSnapshots& snapshots,
                           RecurrentState<float>& final_state, std::vector<double>& piece_loss, double& loss_sum,
                           const std::function<bool()>& keep_going, EvalResult& result,
                           const RecurrentState<float>* predecessor = nullptr);

}  // namespace charlm
