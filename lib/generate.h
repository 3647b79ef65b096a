// Text generation from a prefix (greedy, temperature, top-k, top-p) and text encoding with an unknown-character policy.
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "config.h"
#include "model.h"
#include "rng.h"
#include "vocab.h"

namespace charlm {

enum class UnknownPolicy { kError, kSkip };

// Encodes UTF-8 text. Characters outside the vocabulary map to <unk> when the vocabulary has one; otherwise
// kError throws a UserError naming them (in `what`, e.g. "prefix \"abc\"") and kSkip drops them.
std::vector<int> EncodeText(const Vocab& vocab, std::u32string_view text, UnknownPolicy unknown, std::string_view what);

struct SamplingOptions {
  int length = 50;
  double temperature = 1.0;
  int top_k = 0;       // 0 = all
  double top_p = 1.0;  // 1 = all
  bool greedy = false;  // argmax, the book's predict function
};

// The sampling settings of a config's generate section.
SamplingOptions SamplingFromConfig(const GenerateConfig& generate);

// Draws one id from logits (V): greedy argmax, or a sample under temperature, top-k and top-p. <unk> (exclude_id)
// is never drawn. scratch must hold V doubles and V ints; nothing is allocated.
int SampleNextId(const float* logits, int vocab_size, const SamplingOptions& options, int exclude_id, Rng& rng,
                 double* scratch_probs, int* scratch_order);

// Warms the state up on the prefix, then emits options.length characters. Returns prefix + generated text (UTF-8),
// as the book prints it.
std::string GenerateText(const CharModel<float>& model, const Vocab& vocab, std::string_view prefix_utf8,
                         const SamplingOptions& options, Rng& rng, UnknownPolicy unknown = UnknownPolicy::kError);

}  // namespace charlm
