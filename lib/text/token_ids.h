// Corpus token ids in the narrowest integer type that holds the vocabulary, and a read-only view over them.
#pragma once

#include <cassert>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <span>
#include <vector>

namespace charlm {

// Reads ids of 2 or 4 bytes by value; holds the buffer, not the view, so iterators of a temporary view stay valid.
class IdIterator {
 public:
  using iterator_category = std::forward_iterator_tag;
  using value_type = int;
  using difference_type = std::ptrdiff_t;
  using pointer = void;
  using reference = int;
  IdIterator() = default;
  IdIterator(const void* data, int width, std::size_t index) : data_(data), width_(width), index_(index) {}
  int operator*() const {
    return width_ == 2 ? static_cast<const std::uint16_t*>(data_)[index_] : static_cast<const std::int32_t*>(data_)[index_];
  }
  IdIterator& operator++() {
    ++index_;
    return *this;
  }
  IdIterator operator++(int) {
    IdIterator before = *this;
    ++index_;
    return before;
  }
  bool operator==(const IdIterator& other) const { return index_ == other.index_; }

 private:
  const void* data_ = nullptr;
  int width_ = 4;
  std::size_t index_ = 0;
};

// A read-only sequence of token ids stored as uint16 (vocabularies below 65,536 symbols, the usual case, so a
// gigabyte of text costs 2 bytes a character) or as int32. Reads widen to int. Cheap to copy; the storage it
// views must outlive it. Built implicitly from a std::vector<int> or std::span<const int>, so short id
// sequences (tests, prefixes) pass where a corpus split does.
class IdView {
 public:
  IdView() = default;
  IdView(const std::uint16_t* data, std::size_t size) : data_(data), size_(size), width_(2) {}
  IdView(const std::int32_t* data, std::size_t size) : data_(data), size_(size), width_(4) {}
  IdView(std::span<const int> ids) : IdView(ids.data(), ids.size()) {}  // NOLINT: implicit on purpose
  IdView(const std::vector<int>& ids) : IdView(ids.data(), ids.size()) {}  // NOLINT: implicit on purpose

  std::size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  int width() const { return width_; }  // bytes per id

  int operator[](std::size_t i) const {
    assert(i < size_);
    return width_ == 2 ? static_cast<const std::uint16_t*>(data_)[i] : static_cast<const std::int32_t*>(data_)[i];
  }
  int back() const { return (*this)[size_ - 1]; }

  IdView subspan(std::size_t offset, std::size_t count) const {
    assert(offset <= size_ && count <= size_ - offset);
    IdView view = *this;
    view.data_ = static_cast<const std::byte*>(data_) + offset * static_cast<std::size_t>(width_);
    view.size_ = count;
    return view;
  }
  IdView subspan(std::size_t offset) const { return subspan(offset, size_ - offset); }
  IdView first(std::size_t count) const { return subspan(0, count); }
  IdView last(std::size_t count) const { return subspan(size_ - count, count); }

  // out[k] = (*this)[begin + k] for k < count: the bulk widening the sampler and evaluation use.
  void CopyTo(std::size_t begin, std::size_t count, int* out) const {
    assert(begin <= size_ && count <= size_ - begin);
    if (width_ == 2) {
      const auto* from = static_cast<const std::uint16_t*>(data_) + begin;
      for (std::size_t k = 0; k < count; ++k) out[k] = from[k];
    } else {
      const auto* from = static_cast<const std::int32_t*>(data_) + begin;
      for (std::size_t k = 0; k < count; ++k) out[k] = from[k];
    }
  }
  std::vector<int> ToVector() const {
    std::vector<int> ids(size_);
    CopyTo(0, size_, ids.data());
    return ids;
  }

  IdIterator begin() const { return {data_, width_, 0}; }
  IdIterator end() const { return {data_, width_, size_}; }

 private:
  const void* data_ = nullptr;
  std::size_t size_ = 0;
  int width_ = 4;
};


// The owner of a corpus's ids: one buffer of uint16 or of int32, chosen by the vocabulary size.
class TokenIds {
 public:
  TokenIds() = default;
  // The narrowest width for ids in [0, vocab_size): 2 bytes below 65,536 symbols, else 4.
  static int WidthFor(std::int64_t vocab_size) { return vocab_size <= 65536 ? 2 : 4; }

  // `size` ids of WidthFor(vocab_size) bytes, all zero.
  TokenIds(std::size_t size, std::int64_t vocab_size) : width_(WidthFor(vocab_size)) {
    if (width_ == 2) {
      narrow_.assign(size, 0);
    } else {
      wide_.assign(size, 0);
    }
  }
  // From ids in [0, vocab_size).
  TokenIds(const std::vector<int>& ids, std::int64_t vocab_size) : TokenIds(ids.size(), vocab_size) {
    for (std::size_t k = 0; k < ids.size(); ++k) Set(k, ids[k]);
  }
  // Takes over a buffer that is already in its final width.
  explicit TokenIds(std::vector<std::uint16_t> ids) : width_(2), narrow_(std::move(ids)) {}
  explicit TokenIds(std::vector<std::int32_t> ids) : width_(4), wide_(std::move(ids)) {}

  std::size_t size() const { return width_ == 2 ? narrow_.size() : wide_.size(); }
  int width() const { return width_; }
  std::size_t bytes() const { return size() * static_cast<std::size_t>(width_); }
  void Set(std::size_t i, int id) {
    if (width_ == 2) {
      assert(id >= 0 && id < 65536);
      narrow_[i] = static_cast<std::uint16_t>(id);
    } else {
      wide_[i] = id;
    }
  }
  IdView view() const { return width_ == 2 ? IdView(narrow_.data(), narrow_.size()) : IdView(wide_.data(), wide_.size()); }
  operator IdView() const { return view(); }  // NOLINT: implicit, as a vector converts to a span

 private:
  int width_ = 2;
  std::vector<std::uint16_t> narrow_;
  std::vector<std::int32_t> wide_;
};

}  // namespace charlm
