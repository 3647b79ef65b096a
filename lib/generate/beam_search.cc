// Beam search: N beams (plus the greedy row) advanced together as the rows of one batch-N forward per character.
#include "generate/beam_search.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cassert>
#include <cmath>

#include "ops/blas.h"
#include "ops/column_threads.h"

namespace charlm {
namespace {

struct Hypothesis {
  std::vector<int> ids;           // generated so far, stop string included once it ends one
  std::vector<double> log_probs;  // the model's own ln p of each id
  double sum = 0;                 // ranking log-probability: after the filters
  bool live = false;
  int stop = -1;                  // index of the stop string that finished it
  bool ngram_stopped = false;     // the n-gram ban left it no character: it ended there, as sampling does
};

struct Candidate {
  double sum;
  int row, id;
};

double Normalized(double sum, std::size_t length, double length_penalty) {
  return length == 0 || length_penalty == 0 ? sum : sum / std::pow(static_cast<double>(length), length_penalty);
}

// Copies row parent[i] of every layer of `from` into row i of `to`.
void GatherRows(const RecurrentState<float>& from, const std::vector<int>& parent, RecurrentState<float>& to) {
  const std::size_t h = static_cast<std::size_t>(from.hidden), b = static_cast<std::size_t>(from.batch);
  for (int l = 0; l < from.num_layers; ++l) {
    for (std::size_t i = 0; i < parent.size(); ++i) {
      const std::size_t src = (static_cast<std::size_t>(l) * b + static_cast<std::size_t>(parent[i])) * h;
      const std::size_t dst = (static_cast<std::size_t>(l) * b + i) * h;
      std::copy_n(from.h.data() + src, h, to.h.data() + dst);
      if (!from.c.empty()) std::copy_n(from.c.data() + src, h, to.c.data() + dst);
    }
  }
}

}  // namespace

std::vector<Continuation> BeamSearch(const CharModel<float>& model, const Vocab& vocab, std::span<const int> prefix_ids,
                                     const SamplingOptions& options, const StopRequested& stop_requested) {
  assert(!prefix_ids.empty() && options.beam >= 1 && options.beam <= kMaxBeam);
  const int beams = options.beam, v = model.spec().vocab_size;
  const int exclude = vocab.unk_id().value_or(-1);
  const bool with_greedy = beams > 1;
  const int rows = beams + (with_greedy ? 1 : 0);  // the greedy row is the last
  const std::vector<std::vector<int>> stop_ids = StopIds(vocab, options.stop);

  // The prefix once at batch 1, then its state in every row.
  auto warm_ws = model.MakeWorkspace(std::clamp(static_cast<int>(prefix_ids.size()) - 1, 1, Generator::kWarmupChunk), 1);
  auto warm_state = model.MakeState(1);
  warm_state.Zero();
  RunPrefix(model, *warm_ws, prefix_ids.first(prefix_ids.size() - 1), warm_state);
  RecurrentState<float> state = model.MakeState(rows), next_state = model.MakeState(rows);
  GatherRows(warm_state, std::vector<int>(static_cast<std::size_t>(rows), 0), state);
  // Products of a few rows through GemmFewRows rather than sgemm (see column_threads.h), split over as many
  // threads as sampling's batch-1 products, on weights packed once per search; the bits do not depend on the
  // thread count. Layer 0's input products come from the input table, as in sampling.
  ColumnThreads few_rows(std::min(BlasThreads(), Generator::kMaxThreads));
  few_rows.PackWeights();
  auto ws = model.MakeGenerationWorkspace(1, &few_rows, rows);

  std::vector<Hypothesis> current(static_cast<std::size_t>(rows)), next(static_cast<std::size_t>(rows));
  current[0].live = true;
  if (with_greedy) current.back().live = true;
  std::vector<int> inputs(static_cast<std::size_t>(rows), prefix_ids.back());  // (rows): each row's last character
  std::vector<int> parent(static_cast<std::size_t>(rows));
  std::vector<Hypothesis> finished;
  RepetitionControl control(options, v);
  std::vector<float> adjusted(control.active() ? static_cast<std::size_t>(v) : 0);  // (V)
  std::vector<float> scratch(static_cast<std::size_t>(v));                          // (V)
  std::vector<double> model_lse(static_cast<std::size_t>(rows));  // (rows): the model's log-softmax denominators
  std::vector<int> context;  // prefix + a hypothesis's ids, for the filters
  // Each stop string can be completed by one character per beam: that many more candidates than beams are kept,
  // so finishing beams never leave fewer than `beams` to run on.
  const std::size_t keep = static_cast<std::size_t>(beams) * (1 + stop_ids.size());
  std::vector<Candidate> top;
  top.reserve(keep + 1);
  bool interrupted = false;

  // The logits of a row after the filters, for hypothesis h (the row itself when no filter is on); nullptr when
  // the n-gram ban forbids every character, where the hypothesis ends (as sampling's text does).
  auto filtered = [&](const float* row, const Hypothesis& h) -> const float* {
    if (!control.active()) return row;
    context.assign(prefix_ids.begin(), prefix_ids.end());
    context.insert(context.end(), h.ids.begin(), h.ids.end());
    return control.Apply(row, context, exclude, adjusted.data()) ? adjusted.data() : nullptr;
  };
  auto finish = [&](Hypothesis h) {
    h.live = false;
    finished.push_back(std::move(h));
  };
  auto worst_finished_score = [&] {
    std::vector<double> scores;
    for (const Hypothesis& h : finished) scores.push_back(Normalized(h.sum, h.ids.size(), options.length_penalty));
    std::nth_element(scores.begin(), scores.begin() + (beams - 1), scores.end(), std::greater<>());
    return scores[static_cast<std::size_t>(beams - 1)];
  };

  for (int step = 0; step < options.length; ++step) {
    if (stop_requested && stop_requested()) {
      interrupted = true;
      break;
    }
    model.Forward(*ws, inputs.data(), nullptr, 1, rows, state, {});
    const float* logits = WorkspaceLogits(*ws);  // (rows, V)
    CheckFiniteLogits(model, logits, rows);

    top.clear();
    for (int r = 0; r < beams; ++r) {
      const Hypothesis& h = current[static_cast<std::size_t>(r)];
      if (!h.live) continue;
      const float* row = logits + static_cast<std::size_t>(r) * v;
      const float* used = filtered(row, h);
      if (used == nullptr) {
        Hypothesis ended = h;
        ended.ngram_stopped = true;
        finish(std::move(ended));
        continue;
      }
      const double used_lse = LogSumExp(used, v, scratch.data());
      model_lse[static_cast<std::size_t>(r)] = control.active() ? LogSumExp(row, v, scratch.data()) : used_lse;
      const double offset = h.sum - used_lse;
      // Kept best first; ties keep the lower row, then the lower id (so one beam is exactly greedy's argmax).
      for (int id = 0; id < v; ++id) {
        if (id == exclude || !(used[id] > -INFINITY)) continue;
        const double sum = offset + static_cast<double>(used[id]);
        if (top.size() == keep && !(sum > top.back().sum)) continue;
        auto at = std::upper_bound(top.begin(), top.end(), sum, [](double s, const Candidate& c) { return s > c.sum; });
        top.insert(at, Candidate{sum, r, id});
        if (top.size() > keep) top.pop_back();
      }
    }

    int running = 0;
    for (const Candidate& c : top) {
      const Hypothesis& from = current[static_cast<std::size_t>(c.row)];
      Hypothesis h;
      h.ids = from.ids;
      h.ids.push_back(c.id);
      h.log_probs = from.log_probs;
      const float* row = logits + static_cast<std::size_t>(c.row) * v;
      h.log_probs.push_back(static_cast<double>(row[c.id]) - model_lse[static_cast<std::size_t>(c.row)]);
      h.sum = c.sum;
      h.stop = EndingStop(h.ids, stop_ids);
      if (h.stop >= 0) {
        finish(std::move(h));
      } else if (running < beams) {
        h.live = true;
        parent[static_cast<std::size_t>(running)] = c.row;
        next[static_cast<std::size_t>(running)] = std::move(h);
        ++running;
      }
    }
    for (int r = running; r < beams; ++r) {
      next[static_cast<std::size_t>(r)] = Hypothesis{};
      parent[static_cast<std::size_t>(r)] = 0;
    }

    if (with_greedy) {
      Hypothesis& g = current.back();
      parent.back() = rows - 1;
      if (g.live) {
        const float* row = logits + static_cast<std::size_t>(rows - 1) * v;
        const float* used = filtered(row, g);
        if (used == nullptr) {  // every character banned: greedy decoding ends here, as sampling does
          g.live = false;
          g.ngram_stopped = true;
        } else {
          int best = -1;
          for (int id = 0; id < v; ++id) {
            if (id != exclude && (best < 0 || used[id] > used[best])) best = id;
          }
          const double used_lse = LogSumExp(used, v, scratch.data());
          g.sum += static_cast<double>(used[best]) - used_lse;
          g.ids.push_back(best);
          g.log_probs.push_back(static_cast<double>(row[best]) -
                                (control.active() ? LogSumExp(row, v, scratch.data()) : used_lse));
          g.stop = EndingStop(g.ids, stop_ids);
          if (g.stop >= 0) g.live = false;
        }
      }
      next.back() = std::move(g);
    }

    GatherRows(state, parent, next_state);
    std::swap(state, next_state);
    std::swap(current, next);
    for (int r = 0; r < rows; ++r) {
      const Hypothesis& h = current[static_cast<std::size_t>(r)];
      inputs[static_cast<std::size_t>(r)] = h.ids.empty() ? prefix_ids.back() : h.ids.back();
    }
    // The greedy row runs to its own end, so that it is compared as the whole text greedy decoding gives.
    if (with_greedy && current.back().live) continue;
    if (running == 0) break;
    if (static_cast<int>(finished.size()) >= beams) {
      // No running beam scores better than the worst of the best finished ones (its score can still rise with
      // a length penalty, but rarely by enough: the usual stopping rule).
      const double worst = worst_finished_score();
      bool better = false;
      for (int r = 0; r < running; ++r) {
        const Hypothesis& h = current[static_cast<std::size_t>(r)];
        better = better || Normalized(h.sum, h.ids.size(), options.length_penalty) > worst;
      }
      if (!better) break;
    }
  }

  for (int r = 0; r < beams; ++r) {
    if (current[static_cast<std::size_t>(r)].live) finish(std::move(current[static_cast<std::size_t>(r)]));
  }
  if (with_greedy) {
    Hypothesis& g = current.back();
    const bool duplicate = std::any_of(finished.begin(), finished.end(), [&](const Hypothesis& h) { return h.ids == g.ids; });
    if (!duplicate) finish(std::move(g));
  }
  std::vector<double> scores;
  for (const Hypothesis& h : finished) scores.push_back(Normalized(h.sum, h.ids.size(), options.length_penalty));
  std::vector<std::size_t> order(finished.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return scores[a] > scores[b]; });
  if (order.size() > static_cast<std::size_t>(beams)) order.resize(static_cast<std::size_t>(beams));

  std::vector<Continuation> result;
  for (std::size_t i : order) {
    Hypothesis& h = finished[i];
    Continuation c;
    c.score = scores[i];
    if (h.stop >= 0) {
      const std::size_t n = stop_ids[static_cast<std::size_t>(h.stop)].size();
      c.stopped_by = vocab.Decode(stop_ids[static_cast<std::size_t>(h.stop)]);
      h.ids.resize(h.ids.size() - n);
      for (std::size_t k = h.log_probs.size() - n; k < h.log_probs.size(); ++k) c.stop_log_prob += h.log_probs[k];
      h.log_probs.resize(h.log_probs.size() - n);
    }
    c.text = vocab.Decode(h.ids);
    c.log_probs = std::move(h.log_probs);
    for (double lp : c.log_probs) c.log_prob += lp;
    c.stopped_by_ngram = h.ngram_stopped;
    c.interrupted = interrupted;
    result.push_back(std::move(c));
  }
  if (!result.empty() && result.front().stopped_by_ngram) {
    spdlog::warn("no-repeat-ngram {}: every character the model knows would repeat a sequence of {} after {} of the "
                 "{} characters of the best beam, so it ends there; raise no-repeat-ngram to write more",
                 options.no_repeat_ngram, options.no_repeat_ngram, result.front().text.size(), options.length);
  }
  return result;
}

}  // namespace charlm
