// Batched, state-carrying evaluation over a whole id sequence, each stream warmed up on the text before its piece.
#include "eval/evaluate.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <vector>

namespace charlm {

EvalPlan PlanEvaluation(std::int64_t transitions, int streams, int burn_in) {
  EvalPlan plan;
  plan.transitions = std::max<std::int64_t>(transitions, 0);
  const std::int64_t n = plan.transitions;
  const std::int64_t w = std::max(burn_in, 0);
  // Each piece at least as long as the burn-in (and at least 1): warm-up never more than doubles the work.
  const std::int64_t most_streams = w < n ? (n - w) / std::max<std::int64_t>(w, 1) : 1;
  const std::int64_t s = std::clamp<std::int64_t>(std::min<std::int64_t>(streams, most_streams), 1, std::max<std::int64_t>(n, 1));
  plan.streams = static_cast<int>(s);
  plan.burn_in = s == 1 ? 0 : static_cast<int>(w);
  plan.piece = (n - plan.burn_in) / s;
  plan.run_length = plan.burn_in + plan.piece;
  plan.tail_start = plan.burn_in + s * plan.piece;
  assert(plan.tail_start <= n && n - plan.tail_start < s);
  return plan;
}

namespace {

// Evaluation needs each row's loss, never the softmax a backward pass would read.
const ForwardMode kScoreOnly{.keep_probs = false};

// -log softmax(row)[target] in double.
double TokenLoss(const float* row, int vocab, int target) {
  const float max_logit = *std::max_element(row, row + vocab);
  double sum = 0;
  for (int j = 0; j < vocab; ++j) sum += std::exp(static_cast<double>(row[j] - max_logit));
  return std::log(sum) - static_cast<double>(row[target] - max_logit);
}

// How far a warmed-up state is from the state it stands in for: the largest difference of h, and of c relative
// to its size, over the layers.
double StateGap(const RecurrentState<float>& a, int row_a, const RecurrentState<float>& b, int row_b) {
  const std::size_t h = static_cast<std::size_t>(a.hidden);
  double gap = 0;
  for (int l = 0; l < a.num_layers; ++l) {
    const float* ha = a.LayerH(l) + row_a * h;
    const float* hb = b.LayerH(l) + row_b * h;
    for (std::size_t j = 0; j < h; ++j) gap = std::max(gap, std::fabs(static_cast<double>(ha[j]) - hb[j]));
    if (a.c.empty()) continue;
    const float* ca = a.LayerC(l) + row_a * h;
    const float* cb = b.LayerC(l) + row_b * h;
    for (std::size_t j = 0; j < h; ++j) {
      const double scale = std::max(1.0, std::fabs(static_cast<double>(cb[j])));
      gap = std::max(gap, std::fabs(static_cast<double>(ca[j]) - cb[j]) / scale);
    }
  }
  return gap;
}

void CopyStateRow(const RecurrentState<float>& from, int row_from, RecurrentState<float>& to, int row_to) {
  const std::size_t h = static_cast<std::size_t>(from.hidden);
  for (int l = 0; l < from.num_layers; ++l) {
    std::copy_n(from.LayerH(l) + row_from * h, h, to.LayerH(l) + row_to * h);
    if (!from.c.empty()) std::copy_n(from.LayerC(l) + row_from * h, h, to.LayerC(l) + row_to * h);
  }
}

}  // namespace

void RerunUnsettledStreams(const CharModel<float>& model, IdView ids, const EvalPlan& plan, int lo, int chunk,
                           const RecurrentState<float>& warmed, const PieceSnapshots& snapshots,
                           RecurrentState<float>& final_state, std::vector<double>& piece_loss, double& loss_sum,
                           const std::function<bool()>& keep_going, EvalResult& result,
                           const RecurrentState<float>* predecessor) {
  const int S = static_cast<int>(piece_loss.size());
  std::unique_ptr<Workspace<float>> ws;
  RecurrentState<float> row_state = model.MakeState(1);
  std::vector<int> seq(static_cast<std::size_t>(chunk) + 1);  // (chunk + 1): inputs, and targets one later
  for (int b = predecessor != nullptr ? 0 : 1; b < S; ++b) {
    const RecurrentState<float>& before = b == 0 ? *predecessor : final_state;
    const int before_row = b == 0 ? 0 : b - 1;
    if (StateGap(warmed, b, before, before_row) <= kUnsettledStateGap) continue;
    if (!keep_going()) break;  // a stop request: the first pass's figure stands, complete
    if (ws == nullptr) ws = model.MakeWorkspace(chunk, 1);
    CopyStateRow(before, before_row, row_state, 0);
    double redo = 0;
    bool rejoined = false;
    int chunks_done = 0;
    for (std::int64_t pos = plan.ScoredBegin(lo + b); pos < plan.ScoredEnd(lo + b) && !rejoined;) {
      const int steps = static_cast<int>(std::min<std::int64_t>(chunk, plan.ScoredEnd(lo + b) - pos));
      ids.CopyTo(static_cast<std::size_t>(pos), static_cast<std::size_t>(steps) + 1, seq.data());
      redo += static_cast<double>(model.Forward(*ws, seq.data(), seq.data() + 1, steps, 1, row_state, kScoreOnly)) * steps;
      pos += steps;
      result.rerun_chars += steps;
      const std::optional<std::size_t> k = snapshots.After(++chunks_done);
      if (k && StateGap(row_state, 0, snapshots.states[*k], b) <= kRejoinedStateGap) {
        redo += piece_loss[static_cast<std::size_t>(b)] - snapshots.loss_before[*k * static_cast<std::size_t>(S) + b];
        rejoined = true;
      }
    }
    loss_sum += redo - piece_loss[static_cast<std::size_t>(b)];
    piece_loss[static_cast<std::size_t>(b)] = redo;
    if (!rejoined) CopyStateRow(row_state, 0, final_state, b);
    ++result.rerun_streams;
  }
}

void FinishEvalResult(EvalResult& result) {
  result.mean_loss = result.tokens > 0 ? result.loss_sum / static_cast<double>(result.tokens) : 0;
  result.perplexity = result.tokens > 0 ? std::exp(result.mean_loss) : 0;
  result.bits_per_char = result.mean_loss / std::log(2.0);
}

EvalResult FiguresOf(std::span<const double> log_probs) {
  EvalResult result;
  result.tokens = static_cast<std::int64_t>(log_probs.size());
  for (double lp : log_probs) result.loss_sum -= lp;
  FinishEvalResult(result);
  return result;
}

EvalResult Evaluate(const CharModel<float>& model, IdView ids, const EvalOptions& options) {
  EvalResult result;
  std::int64_t transitions = static_cast<std::int64_t>(ids.size()) - 1;
  if (options.max_chars > 0) transitions = std::min(transitions, options.max_chars);
  if (transitions <= 0) return result;
  const EvalPlan plan = PlanEvaluation(transitions, options.streams, options.burn_in);
  assert(options.shards >= 1 && options.shard >= 0 && options.shard < options.shards);
  // This shard's streams [lo, lo + S) of the plan's; it scores their pieces, and the tail if it holds the last.
  const int lo = static_cast<int>(static_cast<std::int64_t>(plan.streams) * options.shard / options.shards);
  const int hi = static_cast<int>(static_cast<std::int64_t>(plan.streams) * (options.shard + 1) / options.shards);
  const int S = hi - lo, V = model.spec().vocab_size;
  const bool has_first = lo == 0, has_tail = hi == plan.streams && plan.tail_start < transitions;
  std::int64_t to_score = 0;
  for (int b = lo; b < hi; ++b) to_score += plan.ScoredEnd(b) - plan.ScoredBegin(b);
  if (has_tail) to_score += transitions - plan.tail_start;
  const bool chained = options.in_shard_order && options.shards > 1 && plan.burn_in > 0;
  const auto row_floats = [&] {
    const RecurrentState<float> row = model.MakeState(1);
    return row.h.size() + row.c.size();
  };
  if (S == 0) {  // no stream here; the chain passes this shard's turn on unchanged
    if (chained) options.in_shard_order(row_floats(), [](std::span<float>) {});
    return result;
  }
  const int chunk = static_cast<int>(std::clamp<std::int64_t>(options.num_steps, 1, plan.run_length));
  auto ws = model.MakeWorkspace(chunk, S);
  ws->row_threads = options.row_threads;
  auto state = model.MakeState(S);  // (L, S, H)
  std::vector<int> x(static_cast<std::size_t>(chunk) * S), y(x.size());  // (chunk, S) time-major
  double loss_sum = 0;
  std::int64_t scored = 0;
  auto keep_going = [&] { return !options.progress || options.progress(scored, to_score); };
  // Each stream's state at the end of its warm-up, and the loss of its scored piece: a stream whose warm-up did
  // not reach the state its predecessor ended in is scored again from that state below.
  auto warmed = model.MakeState(S);            // (L, S, H)
  std::vector<double> piece_loss(static_cast<std::size_t>(S));  // (S)
  // Inside the pieces, the states a re-run can rejoin: as many as options.snapshot_bytes holds, evenly spaced.
  PieceSnapshots snapshots;
  if (plan.burn_in > 0 && S > 1) {
    const std::int64_t piece_chunks = (plan.piece + chunk - 1) / chunk;
    const std::size_t snapshot_bytes = (warmed.h.size() + warmed.c.size()) * sizeof(float) + S * sizeof(double);
    const std::int64_t room = std::max<std::int64_t>(static_cast<std::int64_t>(options.snapshot_bytes / snapshot_bytes), 1);
    snapshots.every = static_cast<int>((piece_chunks + room - 1) / room);
    const std::int64_t count = piece_chunks / snapshots.every;  // none at the pieces' end: final_state is there
    snapshots.states.assign(static_cast<std::size_t>(count), model.MakeState(S));
    snapshots.loss_before.assign(static_cast<std::size_t>(count) * S, 0.0);
  }

  // Steps [0, burn_in) score stream 0 only (the others are warming up); steps [burn_in, run_length) score all.
  // A chunk never straddles the boundary, so each is either one column or the whole of Forward's mean.
  for (std::int64_t start = 0; start < plan.run_length && !result.cancelled;) {
    const std::int64_t phase_end = start < plan.burn_in ? plan.burn_in : plan.run_length;
    const int steps = static_cast<int>(std::min<std::int64_t>(chunk, phase_end - start));
    for (int t = 0; t < steps; ++t) {
      for (int b = 0; b < S; ++b) {
        const std::int64_t pos = plan.StreamStart(lo + b) + start + t;
        x[static_cast<std::size_t>(t) * S + b] = ids[pos];
        y[static_cast<std::size_t>(t) * S + b] = ids[pos + 1];
      }
    }
    if (phase_end == plan.burn_in) {
      model.Forward(*ws, x.data(), nullptr, steps, S, state, {});  // logits only
      if (has_first) {
        const float* logits = WorkspaceLogits(*ws);  // (steps*S, V)
        for (int t = 0; t < steps; ++t) {
          loss_sum += TokenLoss(logits + static_cast<std::size_t>(t) * S * V, V, y[static_cast<std::size_t>(t) * S]);
        }
        scored += steps;
      }
    } else {
      loss_sum += static_cast<double>(model.Forward(*ws, x.data(), y.data(), steps, S, state, kScoreOnly)) * steps * S;
      scored += static_cast<std::int64_t>(steps) * S;
      const float* row_loss = ws->row_loss.data();  // (steps*S): the losses Forward's mean is made of
      for (int t = 0; t < steps && plan.burn_in > 0; ++t) {  // per-stream sums: only re-runs need them
        for (int b = 0; b < S; ++b) {
          piece_loss[static_cast<std::size_t>(b)] += static_cast<double>(row_loss[static_cast<std::size_t>(t) * S + b]);
        }
      }
    }
    start += steps;
    if (start == plan.burn_in) warmed = state;
    const std::int64_t piece_chunks_done = start > plan.burn_in ? (start - plan.burn_in + chunk - 1) / chunk : 0;
    if (snapshots.every > 0 && piece_chunks_done > 0 && piece_chunks_done % snapshots.every == 0) {
      const std::size_t k = static_cast<std::size_t>(piece_chunks_done / snapshots.every - 1);
      if (k < snapshots.states.size()) {
        snapshots.states[k] = state;
        std::copy(piece_loss.begin(), piece_loss.end(), snapshots.loss_before.begin() + static_cast<std::ptrdiff_t>(k * S));
      }
    }
    result.cancelled = !keep_going();
  }
  if (chained) {  // in shard order: stream lo's predecessor is the previous shard's last, after its re-runs
    options.in_shard_order(row_floats(), [&](std::span<float> carried) {
      RecurrentState<float> predecessor = model.MakeState(1);
      assert(carried.size() == predecessor.h.size() + predecessor.c.size());
      std::copy_n(carried.data(), predecessor.h.size(), predecessor.h.data());
      std::copy_n(carried.data() + predecessor.h.size(), predecessor.c.size(), predecessor.c.data());
      RerunUnsettledStreams(model, ids, plan, lo, chunk, warmed, snapshots, state, piece_loss, loss_sum,
                            [&] { return keep_going(); }, result, lo > 0 ? &predecessor : nullptr);
      RecurrentState<float> last = model.MakeState(1);
      CopyStateRow(state, S - 1, last, 0);
      std::copy(last.h.begin(), last.h.end(), carried.begin());
      std::copy(last.c.begin(), last.c.end(), carried.begin() + static_cast<std::ptrdiff_t>(last.h.size()));
    });
  } else if (!result.cancelled && plan.burn_in > 0) {
    RerunUnsettledStreams(model, ids, plan, lo, chunk, warmed, snapshots, state, piece_loss, loss_sum,
                          [&] { return keep_going(); }, result);
  }
  // The tail continues the last stream, so it starts from that stream's final state.
  if (!result.cancelled && has_tail) {
    auto tail_state = model.MakeState(1);
    CopyStateRow(state, S - 1, tail_state, 0);
    const int steps = static_cast<int>(transitions - plan.tail_start);
    auto tail_ws = model.MakeWorkspace(steps, 1);
    std::vector<int> tail(static_cast<std::size_t>(steps) + 1);  // (steps + 1): inputs, and targets one later
    ids.CopyTo(static_cast<std::size_t>(plan.tail_start), tail.size(), tail.data());
    loss_sum +=
        static_cast<double>(model.Forward(*tail_ws, tail.data(), tail.data() + 1, steps, 1, tail_state, kScoreOnly)) *
        steps;
    scored += steps;
    result.cancelled = !keep_going();
  }
  if (scored == to_score) result.cancelled = false;  // a stop after the last chunk stopped nothing
  assert(result.cancelled || scored == to_score);
  result.tokens = scored;
  result.loss_sum = loss_sum;
  CheckFiniteOutput(loss_sum, model.origin(), "loss over the text");
  FinishEvalResult(result);
  CheckFinitePerplexity(result.mean_loss, model.origin());
  return result;
}

}  // namespace charlm
