// Beam search over characters: the beams run as the rows of one batched forward step.
#pragma once

#include <span>
#include <vector>

#include "generate/generate.h"

namespace charlm {

// Keeps the options.beam (1 to kMaxBeam) most likely continuations of prefix_ids, extending all of them in one
// batch-N step per character, and returns them best first (fewer when the vocabulary cannot fill every beam).
// Candidates are scored with the model's log-softmax after the repetition filters (RepetitionControl); <unk> is
// never emitted. A beam that ends with a stop string is finished (the stop string leaves its text, but its
// probability stays in the score); the search ends after options.length characters, or once options.beam beams
// have finished and no running beam scores better than the worst of them. With more than one beam the greedy
// continuation runs as one more row and takes the place of the worst beam if it scores better than the best, so
// beam search never returns a less likely text than greedy decoding under the same filters. log_probs are always
// filled. stop_requested ends the search at once, returning the beams so far (interrupted set).
std::vector<Continuation> BeamSearch(const CharModel<float>& model, const Vocab& vocab, std::span<const int> prefix_ids,
                                     const SamplingOptions& options, const StopRequested& stop_requested = {});

}  // namespace charlm
