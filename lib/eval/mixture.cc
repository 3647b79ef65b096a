// Linear interpolation of the network's and the Kneser-Ney n-gram's next-character probabilities.
#include "eval/mixture.h"

#include <algorithm>
#include <cassert>
#include <cmath>

namespace charlm {

namespace {

// The n-gram's context for predicting ids[k + 1]: the last order - 1 ids up to and including ids[k].
IdView Context(const KneserNeyModel& ngram, IdView ids, std::size_t k) {
  const std::size_t history = static_cast<std::size_t>(ngram.order() - 1);
  const std::size_t end = k + 1;
  const std::size_t begin = end > history ? end - history : 0;
  return ids.subspan(begin, end - begin);
}

double MixedLogProb(double net_log_prob, double ngram_prob, double weight) {
  return std::log(weight * ngram_prob + (1.0 - weight) * std::exp(net_log_prob));
}

}  // namespace

std::vector<double> NgramTargetProbs(const KneserNeyModel& ngram, IdView ids) {
  std::vector<double> probs(ids.size() > 0 ? ids.size() - 1 : 0);  // (transitions)
  for (std::size_t k = 0; k < probs.size(); ++k) probs[k] = ngram.Probability(Context(ngram, ids, k), ids[k + 1]);
  return probs;
}

std::vector<double> MixLogProbs(std::span<const double> net_log_probs, std::span<const double> ngram_probs,
                                double weight) {
  assert(net_log_probs.size() == ngram_probs.size() && weight >= 0 && weight <= 1);
  std::vector<double> mixed(net_log_probs.size());  // (transitions)
  for (std::size_t k = 0; k < mixed.size(); ++k) mixed[k] = MixedLogProb(net_log_probs[k], ngram_probs[k], weight);
  return mixed;
}

double ChooseMixWeight(std::span<const double> net_log_probs, std::span<const double> ngram_probs) {
  assert(net_log_probs.size() == ngram_probs.size());
  double best_weight = 0, best_sum = -INFINITY;
  for (int step = 0; step <= 99; ++step) {
    const double weight = step / 100.0;
    double sum = 0;
    for (std::size_t k = 0; k < net_log_probs.size(); ++k) sum += MixedLogProb(net_log_probs[k], ngram_probs[k], weight);
    if (sum > best_sum) {
      best_sum = sum;
      best_weight = weight;
    }
  }
  return best_weight;
}

void MixedDistribution(const float* net_logits, const KneserNeyModel& ngram, IdView ids, double weight,
                       std::span<double> out) {
  const int v = ngram.vocab_size();
  assert(!ids.empty() && out.size() == static_cast<std::size_t>(v));
  // In double throughout, not LogSumExp (lib/generate): its float exponentials leave the sum 1e-7 from 1, and the
  // check that the mixture is a distribution holds it to 1e-9.
  double max_logit = -INFINITY;
  for (int j = 0; j < v; ++j) max_logit = std::max(max_logit, static_cast<double>(net_logits[j]));
  double norm = 0;
  for (int j = 0; j < v; ++j) norm += std::exp(static_cast<double>(net_logits[j]) - max_logit);
  const IdView context = Context(ngram, ids, ids.size() - 1);
  for (int j = 0; j < v; ++j) {
    const double net = std::exp(static_cast<double>(net_logits[j]) - max_logit) / norm;
    out[static_cast<std::size_t>(j)] = weight * ngram.Probability(context, j) + (1.0 - weight) * net;
  }
}

}  // namespace charlm
