// The network's next-character distribution mixed linearly with a Kneser-Ney n-gram's (eval/score --mix-ngram).
#pragma once

#include <span>
#include <vector>

#include "model/ngram.h"
#include "text/token_ids.h"

namespace charlm {

// p(ids[k + 1] | the n-gram's context within ids[0 .. k]) for every transition k: the n-gram's half of a mixture.
std::vector<double> NgramTargetProbs(const KneserNeyModel& ngram, IdView ids);

// ln(weight * p_ngram + (1 - weight) * exp(net_log_prob)) for each transition, weight in [0, 1].
std::vector<double> MixLogProbs(std::span<const double> net_log_probs, std::span<const double> ngram_probs,
                                double weight);

// The weight, from 0 to 0.99 in steps of 0.01, whose mixture gives the highest mean log-probability on these
// transitions (a tuning text's, never the scored one's).
double ChooseMixWeight(std::span<const double> net_log_probs, std::span<const double> ngram_probs);

// The whole mixed distribution after ids[0 .. k] (k = ids.size() - 1): out[v] = weight * p_ngram(v) +
// (1 - weight) * softmax(net_logits)[v], for v < V. What MixLogProbs takes at the target, over every character: the
// check that the mixture is a distribution.
void MixedDistribution(const float* net_logits, const KneserNeyModel& ngram, IdView ids, double weight,
                       std::span<double> out);

}  // namespace charlm
