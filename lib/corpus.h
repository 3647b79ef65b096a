// The training text: reading a UTF-8 corpus file, applying the newline policy, and cutting train/val/test splits.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "model_types.h"

namespace charlm {

// keep: unchanged. space: each '\n' and each '\r' becomes one space (so "\r\n" becomes two, as the book's
// replace does). drop: '\n' and '\r' are removed.
std::u32string ApplyNewlinePolicy(std::u32string text, NewlinePolicy policy);

// Reads the whole file, decodes it strictly, applies the policy, then keeps the first max_chars characters
// (0 = all), in that order because the book replaces newlines before slicing [0:10000].
// Throws a one-line UserError naming the path for: missing file, a directory, unreadable file, empty file or empty
// after the policy, invalid UTF-8, negative max_chars.
std::u32string ReadCorpus(const std::string& path, NewlinePolicy policy, std::int64_t max_chars);

// Parses a newline policy spelling; `what` names where the text came from (e.g. "--newline") in the UserError.
NewlinePolicy ParseNewlinePolicy(std::string_view text, std::string_view what);

// train = [0, train_end), val = [train_end, val_end), test = [val_end, size).
struct SplitBounds {
  std::int64_t train_end;
  std::int64_t val_end;
  std::int64_t size;
};

// Validation and test are contiguous slices at the tail of the text (not random characters), so every split is a
// readable run of text and the model is judged on lyrics it never saw. Sizes are floor(size * fraction).
// UserError if a fraction is outside [0, 1) or the training part would be empty.
SplitBounds SplitCorpus(std::int64_t size, double val_fraction, double test_fraction);

}  // namespace charlm
