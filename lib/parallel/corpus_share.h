// The corpus as one process of a data-parallel job holds it: counted in parts by all the processes, and read only
// where this process's streams and duties need it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "config/config.h"
#include "parallel/workers.h"
#include "run/run_state.h"
#include "text/corpus.h"
#include "text/dataset.h"

namespace charlm {

// Parts of the file each process counts: more parts than processes make the read of a share start close to it.
inline constexpr int kCorpusPartsPerProcess = 8;

// How the corpus file is cut: part p covers bytes [byte_begin[p], byte_begin[p + 1]) (part starts) and holds
// characters [char_begin[p], char_begin[p + 1]) of the text training sees (max_chars applied).
struct CorpusParts {
  std::vector<std::uint64_t> byte_begin;  // (parts + 1)
  std::vector<std::int64_t> char_begin;   // (parts + 1)
  // The part to start reading character `position` from: the last part beginning at or before it.
  std::size_t PartHolding(std::int64_t position) const;
};

// What LoadDataset gives, cut down to what this process of the job needs (Dataset::train_begin, train_held):
//   - the training positions its block of streams `shard` reads in any epoch (Sampler::Span; with the random
//     sampler, whose windows may start anywhere, the whole training split);
//   - on rank 0, also the first kMaxNgramFitChars of the training split (the baseline it fits and logs);
//   - the whole validation split (validation is split by streams whose extent depends on train.eval_max_chars).
// Every process counts the characters of its parts of the file, and the counts are summed over the job, so the
// vocabulary is the one a single process builds from the whole text; then each reads only its positions. The
// same UserErrors as LoadDataset, and one when the processes see files of different sizes or contents.
Dataset LoadDatasetShare(Workers& workers, const Config& config, StreamShard shard);

// As ReadCorpusIds for the whole text: a share's ids (chars of id_width bytes) may take at most half of the
// machine's `memory` (0 = unknown: no check), the model and its workspaces need the rest. UserError otherwise.
void CheckShareFits(int rank, const std::string& path, std::uint64_t chars, int id_width, std::uint64_t memory);

// LoadDatasetShare with what reading noticed, summed over the job (as ReadCorpusIds's notes for the whole file).
struct CorpusShare {
  Dataset dataset;
  CorpusNotes notes;
};
CorpusShare ReadCorpusShare(Workers& workers, const Config& config, StreamShard shard);

}  // namespace charlm
