// Minibatches (X, Y) of shape (batch_size, num_steps) from a sequence of token ids, as the book's data iterators.
#include "text/sampler.h"

#include <algorithm>
#include <cassert>
#include <random>
#include <stdexcept>
#include <string>

#include "util/errors.h"

namespace charlm {
namespace {

// Unbiased draw in [0, n) written out by hand: std::uniform_int_distribution and std::shuffle differ between
// standard libraries, and a checkpoint resumed on another machine must see the same epoch layout.
std::uint64_t UniformBelow(std::mt19937_64& engine, std::uint64_t n) {
  const std::uint64_t limit = std::mt19937_64::max() - std::mt19937_64::max() % n;
  std::uint64_t draw = engine();
  while (draw >= limit) draw = engine();
  return draw % n;
}

}  // namespace

std::int64_t Sampler::MinimumLength(SamplerKind kind, int batch_size, int num_steps, bool random_offset) {
  const std::int64_t b = batch_size;
  const std::int64_t t = num_steps;
  // random needs B windows of T plus the one id Y looks ahead; consecutive needs B rows of T + 1.
  const std::int64_t without_offset = kind == SamplerKind::kRandom ? b * t + 1 : b * (t + 1);
  return without_offset + (random_offset ? t - 1 : 0);
}

std::pair<std::int64_t, std::int64_t> Sampler::Span(SamplerKind kind, std::int64_t length, int batch_size,
                                                     int num_steps, bool random_offset, int first_stream, int streams) {
  assert(length >= MinimumLength(kind, batch_size, num_steps, random_offset));
  assert(first_stream >= 0 && streams > 0 && first_stream + streams <= batch_size);
  if (kind == SamplerKind::kRandom) return {0, length};
  std::int64_t begin = length, end = 0;
  for (std::int64_t offset = 0; offset < (random_offset ? num_steps : 1); ++offset) {
    // As BeginEpoch lays rows out: row b starts at offset + b * row_length, and its batches read the first
    // num_batches * T + 1 ids of it.
    const std::int64_t row_length = (length - offset) / batch_size;
    const std::int64_t num_batches = (row_length - 1) / num_steps;
    begin = std::min(begin, offset + first_stream * row_length);
    end = std::max(end, offset + (first_stream + streams - 1) * row_length + num_batches * num_steps + 1);
  }
  return {begin, end};
}

Sampler::Sampler(IdView data, SamplerKind kind, int batch_size, int num_steps, bool random_offset,
                 std::uint64_t seed)
    : Sampler(data, 0, static_cast<std::int64_t>(data.size()), kind, batch_size, num_steps, random_offset, seed) {}

Sampler::Sampler(IdView data, std::int64_t data_begin, std::int64_t length, SamplerKind kind, int batch_size,
                 int num_steps, bool random_offset, std::uint64_t seed)
    : data_(data),
      data_begin_(data_begin),
      length_(length),
      kind_(kind),
      batch_size_(batch_size),
      num_steps_(num_steps),
      random_offset_(random_offset),
      seed_(seed) {
  if (batch_size < 1) throw UserError("batch_size " + std::to_string(batch_size) + " is below 1: use 1 or more");
  if (num_steps < 1) throw UserError("num_steps " + std::to_string(num_steps) + " is below 1: use 1 or more");
  const std::int64_t needed = MinimumLength(kind, batch_size, num_steps, random_offset);
  assert(data_begin >= 0 && data_begin + static_cast<std::int64_t>(data.size()) <= length);
  if (length_ < needed) {
    throw UserError("text of " + std::to_string(length_) + " characters is too short for one " +
                    std::string(EnumName(kind)) + " batch of batch_size " + std::to_string(batch_size) +
                    " x num_steps " + std::to_string(num_steps) + (random_offset ? " with random offset" : "") +
                    ", which needs " + std::to_string(needed) +
                    ": lower batch_size or num_steps, or use a longer text (or a larger split fraction)");
  }
  BeginEpoch(0);
}

void Sampler::BeginEpoch(std::int64_t epoch) {
  epoch_ = epoch;
  const auto epoch_bits = static_cast<std::uint64_t>(epoch);
  std::seed_seq seeds{static_cast<std::uint32_t>(seed_), static_cast<std::uint32_t>(seed_ >> 32),
                      static_cast<std::uint32_t>(epoch_bits), static_cast<std::uint32_t>(epoch_bits >> 32)};
  std::mt19937_64 engine(seeds);

  offset_ =
      random_offset_ ? static_cast<std::int64_t>(UniformBelow(engine, static_cast<std::uint64_t>(num_steps_))) : 0;
  const std::int64_t length = length_ - offset_;
  if (kind_ == SamplerKind::kRandom) {
    const std::int64_t num_windows = (length - 1) / num_steps_;
    window_starts_.resize(static_cast<std::size_t>(num_windows));
    for (std::int64_t w = 0; w < num_windows; ++w)
      window_starts_[static_cast<std::size_t>(w)] = offset_ + w * num_steps_;
    // Fisher-Yates from the back.
    for (std::int64_t i = num_windows - 1; i > 0; --i) {
      const auto j = UniformBelow(engine, static_cast<std::uint64_t>(i + 1));
      std::swap(window_starts_[static_cast<std::size_t>(i)], window_starts_[j]);
    }
    num_batches_ = num_windows / batch_size_;
  } else {
    row_length_ = length / batch_size_;
    num_batches_ = (row_length_ - 1) / num_steps_;
  }
}

void Sampler::GetStreams(std::int64_t index, int first_stream, int streams, int* x, int* y) const {
  if (index < 0 || index >= num_batches_) {
    throw std::out_of_range("Sampler::GetBatch: batch " + std::to_string(index) + " of an epoch with " +
                            std::to_string(num_batches_) + " batches");
  }
  if (first_stream < 0 || streams < 0 || first_stream + streams > batch_size_) {
    throw std::out_of_range("Sampler::GetStreams: streams [" + std::to_string(first_stream) + ", " +
                            std::to_string(first_stream + streams) + ") of a batch of " + std::to_string(batch_size_));
  }
  for (int s = 0; s < streams; ++s) {
    const int b = first_stream + s;
    const std::int64_t start = kind_ == SamplerKind::kRandom
                                   ? window_starts_[static_cast<std::size_t>(index * batch_size_ + b)]
                                   : offset_ + b * row_length_ + index * num_steps_;
    if (start < data_begin_ || start + num_steps_ + 1 > data_begin_ + static_cast<std::int64_t>(data_.size())) {
      throw std::logic_error("Sampler::GetStreams: stream " + std::to_string(b) + " reads positions [" +
                             std::to_string(start) + ", " + std::to_string(start + num_steps_ + 1) +
                             "), outside the held [" + std::to_string(data_begin_) + ", " +
                             std::to_string(data_begin_ + static_cast<std::int64_t>(data_.size())) + ")");
    }
    const auto first = static_cast<std::size_t>(start - data_begin_);
    data_.CopyTo(first, static_cast<std::size_t>(num_steps_), x + s * num_steps_);
    data_.CopyTo(first + 1, static_cast<std::size_t>(num_steps_), y + s * num_steps_);
  }
}

}  // namespace charlm
