// Text generation from a prefix (greedy, temperature, top-k, top-p) and text encoding with an unknown-character policy.
#pragma once

#include <functional>
#include <memory>
#include <ostream>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "column_threads.h"
#include "config.h"
#include "model.h"
#include "rng.h"
#include "vocab.h"

namespace charlm {

enum class UnknownPolicy { kError, kSkip };

// Encodes UTF-8 text. Characters outside the vocabulary map to <unk> when the vocabulary has one; otherwise
// kError throws a UserError naming them (in `what`, e.g. "prefix \"abc\"") and ending with `fix`, and kSkip drops
// them.
inline constexpr std::string_view kUnknownCharsFix = "remove them, or pass --unknown skip to drop them";
std::vector<int> EncodeText(const Vocab& vocab, std::u32string_view text, UnknownPolicy unknown, std::string_view what,
                            std::string_view fix = kUnknownCharsFix);

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
// is never drawn. scratch must hold V floats and V ints; nothing is allocated.
int SampleNextId(const float* logits, int vocab_size, const SamplingOptions& options, int exclude_id, Rng& rng,
                 float* scratch_probs, int* scratch_order);

// One generation's machinery, made once and then stepped once per character: a batch-1 workspace with the input
// table, the recurrent state, the sampling scratch and the worker threads. GenerateText and `charlm bench` both
// run it (StreamText for the former), so the benchmark times what `charlm generate` does. Use it only while the model's parameters stay
// unchanged (the input table caches products of them, and the threads keep chunk-packed copies of the weights).
class Generator {
 public:
  // max_prefix: the longest prefix Start will be given. threads: for the batch-1 products, capped
  // at kMaxThreads; 1 runs everything on the caller and starts no thread.
  Generator(const CharModel<float>& model, int max_prefix, int threads);

  // Zeroes the state and runs ids[0 .. size-2] through the model in one multi-step forward; the last id is then
  // the first input of Next. ids must not be empty nor longer than max_prefix.
  void Start(std::span<const int> ids);
  // One step on `current` (the previous character), then a draw from the logits; returns the drawn id.
  int Next(int current, const SamplingOptions& options, int exclude_id, Rng& rng);

  int threads() const { return threads_.threads(); }
  // A batch-1 step streams the weights from cache and two or more cores share that bandwidth; beyond a few cores
  // the per-product hand-off would outweigh the gain (measured only up to 2 cores so far).
  static constexpr int kMaxThreads = 4;

 private:
  const CharModel<float>& model_;
  ColumnThreads threads_;
  std::unique_ptr<Workspace<float>> ws_;
  RecurrentState<float> state_;
  std::vector<float> probs_;   // (V) sampling scratch
  std::vector<int> order_;     // (V) sampling scratch
};

// Warms the state up on the prefix, then emits options.length characters, writing prefix + generated text (UTF-8)
// to `out` as the book prints it. The text goes out as it is drawn, flushed at every newline and every
// kStreamChars characters, so a long generation shows its text from the start and an interrupted one keeps what
// it wrote. A prefix error is thrown before anything is written.
// The prefix goes through the corpus's newline policy first, as the training text did.
// stop_requested (may be empty) is polled before each generated character; once it returns true the generation
// ends there, keeping what was written, so a Ctrl-C during a training run's sample takes effect at once. Returns
// false when it was stopped that way, true when all options.length characters were generated.
using StopRequested = std::function<bool()>;
bool StreamText(const CharModel<float>& model, const Vocab& vocab, std::string_view prefix_utf8,
                const SamplingOptions& options, Rng& rng, std::ostream& out, UnknownPolicy unknown = UnknownPolicy::kError,
                NewlinePolicy newline = NewlinePolicy::kKeep, const StopRequested& stop_requested = {});
inline constexpr int kStreamChars = 64;

// StreamText into a string (shorter than options.length characters when stop_requested ended it).
std::string GenerateText(const CharModel<float>& model, const Vocab& vocab, std::string_view prefix_utf8,
                         const SamplingOptions& options, Rng& rng, UnknownPolicy unknown = UnknownPolicy::kError,
                         NewlinePolicy newline = NewlinePolicy::kKeep, const StopRequested& stop_requested = {});

}  // namespace charlm
