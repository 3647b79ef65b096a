// Minibatches (X, Y) of shape (batch_size, num_steps) from a sequence of token ids, as the book's data iterators.
#pragma once

#include <cstdint>
#include <span>
#include <utility>
#include <vector>

#include "config/enums.h"
#include "text/token_ids.h"

namespace charlm {

// random: the book's data_iter_random. Windows of num_steps ids start at multiples of num_steps; there are
//   (len - 1) / num_steps of them, shuffled each epoch; batch i takes windows [i*B, (i+1)*B) of the shuffled list, so
//   the epoch has num_windows / B batches and consecutive batches are unrelated (the state must be reset).
// consecutive: the book's data_iter_consecutive. The data is cut into B rows of len / B ids; batch i is columns
//   [i*T, i*T + T) of every row, so row b of batch i+1 continues row b of batch i and the hidden state may carry over.
//   An epoch has (len / B - 1) / T batches.
// Y is always X shifted by one id. With random_offset, each epoch first drops a uniformly random number of leading
// ids in [0, num_steps - 1], so the window boundaries move between epochs; without it the layout is the book's.
// An epoch's layout is a pure function of (seed, epoch), so training can resume at any batch of any epoch.
class Sampler {
 public:
  // Reads `data` in place (a gigabyte corpus is not copied): its storage must outlive the sampler. Starts at epoch 0.
  // UserError if the data is too short for one batch in every epoch; the message gives the minimum length.
  Sampler(IdView data, SamplerKind kind, int batch_size, int num_steps, bool random_offset,
          std::uint64_t seed);
  // The same layout over a text of `length` ids of which only positions [data_begin, data_begin + data.size())
  // are held (a data-parallel process's share, see Span): batches read only those. Reading outside them is a bug
  // (std::logic_error).
  Sampler(IdView data, std::int64_t data_begin, std::int64_t length, SamplerKind kind, int batch_size,
          int num_steps, bool random_offset, std::uint64_t seed);

  // Lays out epoch `epoch` (offset and, for random, the window order) from std::mt19937_64 seeded by (seed, epoch).
  void BeginEpoch(std::int64_t epoch);

  std::int64_t num_batches() const { return num_batches_; }  // of the current epoch

  // x and y each receive batch_size * num_steps ids, batch-major: x[b * num_steps + t].
  // std::out_of_range unless 0 <= index < num_batches().
  void GetBatch(std::int64_t index, int* x, int* y) const { GetStreams(index, 0, batch_size_, x, y); }
  // Streams [first_stream, first_stream + streams) of batch `index` only, (streams, num_steps) batch-major: a
  // data-parallel worker's share. std::out_of_range outside the batch or the batch's streams.
  void GetStreams(std::int64_t index, int first_stream, int streams, int* x, int* y) const;

  SamplerKind kind() const { return kind_; }
  int batch_size() const { return batch_size_; }
  int num_steps() const { return num_steps_; }
  std::int64_t epoch() const { return epoch_; }
  std::int64_t offset() const { return offset_; }  // leading ids skipped this epoch (0 without random_offset)

  // The fewest ids for which every epoch has at least one batch.
  static std::int64_t MinimumLength(SamplerKind kind, int batch_size, int num_steps, bool random_offset);

  // Positions [first, second) of a text of `length` ids that streams [first_stream, first_stream + streams) read
  // in any epoch: for consecutive, their rows under every offset; for random, the whole text (a window may
  // start anywhere). length must be at least MinimumLength.
  static std::pair<std::int64_t, std::int64_t> Span(SamplerKind kind, std::int64_t length, int batch_size,
                                                    int num_steps, bool random_offset, int first_stream, int streams);

 private:
  IdView data_;              // positions [data_begin_, data_begin_ + data_.size()) of the text
  std::int64_t data_begin_ = 0;
  std::int64_t length_ = 0;  // of the whole text
  SamplerKind kind_;
  int batch_size_;
  int num_steps_;
  bool random_offset_;
  std::uint64_t seed_;

  std::int64_t epoch_ = 0;
  std::int64_t offset_ = 0;
  std::int64_t num_batches_ = 0;
  std::vector<std::int64_t> window_starts_;  // random: start of each window in data_, in this epoch's order
  std::int64_t row_length_ = 0;              // consecutive: ids per row after the offset
};

}  // namespace charlm
