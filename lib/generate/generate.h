// Text generation from a prefix (greedy, temperature, top-k, top-p, beam search, repetition control, stop strings)
// and text encoding with an unknown-character policy.
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <memory>
#include <ostream>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "ops/column_threads.h"
#include "config/config.h"
#include "model/model.h"
#include "util/rng.h"
#include "text/vocab.h"

namespace charlm {

enum class UnknownPolicy { kError, kSkip };

// Encodes UTF-8 text. kError throws a UserError naming the characters outside the vocabulary (in `what`, e.g.
// "prefix \"abc\"") and ending with `fix`, also when the vocabulary has <unk> (data.min_freq); kSkip maps them to
// <unk> when there is one, and otherwise drops them, with a warning on the log saying how many (a dropped character
// changes what the model reads).
inline constexpr std::string_view kUnknownCharsFix = "remove them, or pass --unknown skip to drop them";
std::vector<int> EncodeText(const Vocab& vocab, std::u32string_view text, UnknownPolicy unknown, std::string_view what,
                            std::string_view fix = kUnknownCharsFix);

// "U+9F99 '龙', U+0078 'x' and 1115 more": the first kMaxUnknownCharsListed of `missing`, for messages.
inline constexpr std::size_t kMaxUnknownCharsListed = 20;
std::string ListUnknownChars(std::u32string_view missing);

// What EncodeText does with the characters it found outside a vocabulary without <unk> (`missing`, each once):
// under kError the UserError naming them (the first kMaxUnknownCharsListed, then "and N more"; a real text can
// have a thousand), under kSkip nothing. EncodeText itself warns under kSkip how many characters it left out.
void CheckUnknownChars(std::u32string_view missing, UnknownPolicy unknown, std::string_view what,
                       std::string_view fix = kUnknownCharsFix);

// A prefix as the model reads it: the corpus's newline policy applied, then encoded. UserError for invalid UTF-8,
// unknown characters (under kError) or no known character at all.
std::vector<int> EncodePrefix(const Vocab& vocab, std::string_view prefix_utf8, UnknownPolicy unknown,
                              NewlinePolicy newline);

struct SamplingOptions {
  int length = 50;      // the most characters generated after the prefix
  double temperature = 1.0;
  int top_k = 0;       // 0 = all
  double top_p = 1.0;  // 1 = all
  bool greedy = false;  // argmax, the book's predict function
  // CTRL's repetition penalty: before the draw, the logit of each character among the last repetition_window
  // characters of the text (prefix included) is divided by it when positive and multiplied by it when negative.
  // 1 = off.
  double repetition_penalty = 1.0;
  int repetition_window = 32;
  // Never emit a character that would repeat a no_repeat_ngram-character sequence already in the text (prefix
  // included); 0 = off. When it would ban every character, that step is left unbanned.
  int no_repeat_ngram = 0;
  // Generation ends as soon as the continuation ends with one of these; the stop string is not part of the text.
  std::vector<std::u32string> stop;
  // Beam search with this many beams (0 = none: sample, or greedy). It ignores temperature, top-k and top-p.
  int beam = 0;
  // Beams are ranked by log-probability / (characters ^ length_penalty); it only matters when stop strings end
  // beams at different lengths. 0 ranks by total log-probability, which favours short texts.
  double length_penalty = 1.0;
};
inline constexpr int kMaxBeam = 64;
// The repetition penalty's range: within it a logit of magnitude up to 1e30 stays finite in float after the
// penalty (so the draw is the penalty's true limit, not NaN), and beyond it nothing changes in practice (1e6
// already bans a negative logit and flattens a positive one).
inline constexpr double kMinRepetitionPenalty = 1e-6;
inline constexpr double kMaxRepetitionPenalty = 1e6;
// Beam scores are log-probability / length^P: P up to 10 keeps length^P finite for any length an int holds
// (2^31^10 < 1e94), where a larger P would overflow it to infinity and tie every hypothesis at -0.
inline constexpr double kMaxLengthPenalty = 10;

// The sampling settings of a config's generate section.
SamplingOptions SamplingFromConfig(const GenerateConfig& generate);

// Draws one id from logits (V): greedy argmax, or a sample under temperature, top-k and top-p. <unk> (exclude_id)
// and ids whose logit is -infinity are never drawn (unless greedy finds nothing else). scratch must hold V floats
// and V ints; nothing is allocated.
int SampleNextId(const float* logits, int vocab_size, const SamplingOptions& options, int exclude_id, Rng& rng,
                 float* scratch_probs, int* scratch_order);

// ln sum_j exp(logits[j]) over all V ids, in double (the model's log-softmax denominator); scratch holds V floats.
double LogSumExp(const float* logits, int vocab_size, float* scratch);

// CheckFiniteOutput over (rows, V) logits of the model: a logit that is not finite is an error blaming the weights.
void CheckFiniteLogits(const CharModel<float>& model, const float* logits, int rows);

// The repetition penalty and the n-gram ban as a logits filter. Holds its scratch; nothing is allocated per call
// once the vocabulary's buffers exist.
class RepetitionControl {
 public:
  RepetitionControl(const SamplingOptions& options, int vocab_size);
  bool active() const { return penalty_ != 1.0 || ngram_ > 0; }
  // adjusted (V) = logits with the penalty applied to the characters of context's last window and -infinity for
  // the banned ones. context: the ids of the text so far, prefix included. exclude_id does not count as a
  // character that could still be drawn when deciding whether everything is banned. Returns false when the n-gram
  // ban leaves no character (nothing is banned then): sampling stops there.
  bool Apply(const float* logits, std::span<const int> context, int exclude_id, float* adjusted);

 private:
  double penalty_;
  int window_, ngram_, vocab_size_;
  std::vector<unsigned char> mark_;  // (V) scratch: id seen in the window / banned
  std::vector<int> touched_;         // the ids marked, to clear them
};

// One generation's machinery, made once and then stepped once per character: a batch-1 workspace with the input
// table, the recurrent state, the sampling scratch and the worker threads. GenerateText and `charlm bench` both
// run it (StreamText for the former), so the benchmark times what `charlm generate` does. Use it only while the model's parameters stay
// unchanged (the input table caches products of them, and the threads keep chunk-packed copies of the weights).
class Generator {
 public:
  // max_prefix: the longest prefix Start will be given (it is run in chunks of at most kWarmupChunk steps, so a
  // long prefix needs no workspace of its length). threads: for the batch-1 products, capped at kMaxThreads; 1 runs
  // everything on the caller and starts no thread.
  Generator(const CharModel<float>& model, int max_prefix, int threads);

  // Zeroes the state and runs ids[0 .. size-2] through the model; the last id is then the first input of Next.
  // ids must not be empty.
  void Start(std::span<const int> ids);
  // One step on `current` (the previous character), then a draw from the logits; returns the drawn id.
  int Next(int current, const SamplingOptions& options, int exclude_id, Rng& rng);
  // One step on `current`; returns the (V) logits of the next character, valid until the next call.
  const float* Step(int current);
  // Draws from logits as Next does, with this generator's scratch.
  int Draw(const float* logits, const SamplingOptions& options, int exclude_id, Rng& rng);
  float* scratch() { return probs_.data(); }  // (V), free between calls

  int threads() const { return threads_.threads(); }
  // A batch-1 step streams the weights from cache and two or more cores share that bandwidth; beyond a few cores
  // the per-product hand-off would outweigh the gain (measured only up to 2 cores so far).
  static constexpr int kMaxThreads = 4;
  static constexpr int kWarmupChunk = 256;

 private:
  const CharModel<float>& model_;
  ColumnThreads threads_;
  std::unique_ptr<Workspace<float>> ws_;
  RecurrentState<float> state_;
  std::vector<float> probs_;   // (V) sampling scratch
  std::vector<int> order_;     // (V) sampling scratch
};

// Runs ids through the model from `state` in chunks of ws.max_steps steps at batch 1, carrying the state.
void RunPrefix(const CharModel<float>& model, Workspace<float>& ws, std::span<const int> ids,
               RecurrentState<float>& state);

// Stop strings as the model emits them: id sequences; those with a character outside the vocabulary are left
// out, since they can never occur. EndingStop: the index (into the result) of a stop string `generated` ends
// with, or -1. StopPrefixHeld: the length of the longest suffix of `generated` that is a proper prefix of a stop
// string, i.e. characters that must not be shown yet.
std::vector<std::vector<int>> StopIds(const Vocab& vocab, const std::vector<std::u32string>& stop);
int EndingStop(std::span<const int> generated, const std::vector<std::vector<int>>& stop_ids);
std::size_t StopPrefixHeld(std::span<const int> generated, const std::vector<std::vector<int>>& stop_ids);

// Polled before each generated character; once it returns true the generation ends there, keeping what it has.
using StopRequested = std::function<bool()>;

// What one prefix gave.
struct Continuation {
  std::u32string text;            // the generated characters: no prefix, no stop string
  std::vector<double> log_probs;  // ln p of each character of text under the model itself (temperature 1, no
                                  // penalty, <unk> included in the softmax), when asked for
  double log_prob = 0;            // their sum (0 when not asked for)
  double stop_log_prob = 0;       // ln p of the stop string that ended it, under the model as log_probs are (0
                                  // when none did or log-probabilities were not asked for): text then stop string
                                  // has log_prob + stop_log_prob, the quantity a beam's score ranks
  double score = 0;               // beam search: its ranking score (log-probability of text + stop string under
                                  // the filters, / characters ^ length_penalty)
  std::u32string stopped_by;      // the stop string that ended it, empty if none did
  bool stopped_by_ngram = false;  // no_repeat_ngram left no character to draw (or beam to extend), so it ended there
  bool interrupted = false;       // stop_requested ended it
};

// Generates from encoded prefix ids (not empty): one Continuation when sampling or greedy, options.beam of them
// (best first, fewer if the vocabulary cannot fill them) for beam search. With `out`, the decoded prefix and then
// the text are written to it: as they are drawn (flushed at every newline and every kStreamChars characters, a
// character that may begin a stop string held back until it is known not to), or at the end for beam search (the
// best beam). log_probs: fill Continuation::log_probs (an extra pass over the logits per character when sampling).
std::vector<Continuation> Generate(const CharModel<float>& model, const Vocab& vocab, std::span<const int> prefix_ids,
                                   const SamplingOptions& options, Rng& rng, std::ostream* out, bool log_probs,
                                   const StopRequested& stop_requested = {});

// Warms the state up on the prefix, then emits up to options.length characters, writing prefix + generated text
// (UTF-8) to `out` as the book prints it, as Generate streams it. A prefix error is thrown before anything is
// written. The prefix goes through the corpus's newline policy first, as the training text did.
// Returns false when stop_requested ended it (a Ctrl-C during a training run's sample takes effect at once).
bool StreamText(const CharModel<float>& model, const Vocab& vocab, std::string_view prefix_utf8,
                const SamplingOptions& options, Rng& rng, std::ostream& out, UnknownPolicy unknown = UnknownPolicy::kError,
                NewlinePolicy newline = NewlinePolicy::kKeep, const StopRequested& stop_requested = {});
inline constexpr int kStreamChars = 64;

// What generating `length` characters holds until they are returned, for the up-front check (AllocationScope):
// each character's id and decoded form (8 bytes), or with `json` also its log-probability, its JSON value and its
// printed form (measured: 96 bytes a character at --length 2000000 --json, 7.4 without), for each of `beams`.
inline constexpr std::uint64_t kGeneratedBytesPerChar = 8;
inline constexpr std::uint64_t kGeneratedJsonBytesPerChar = 100;
inline std::uint64_t GenerationBytes(std::int64_t length, int beams, bool json) {
  return static_cast<std::uint64_t>(std::max<std::int64_t>(length, 0)) * static_cast<std::uint64_t>(std::max(beams, 1)) *
         (json ? kGeneratedJsonBytesPerChar : kGeneratedBytesPerChar);
}

// StreamText into a string (shorter than options.length characters when stop_requested ended it).
std::string GenerateText(const CharModel<float>& model, const Vocab& vocab, std::string_view prefix_utf8,
                         const SamplingOptions& options, Rng& rng, UnknownPolicy unknown = UnknownPolicy::kError,
                         NewlinePolicy newline = NewlinePolicy::kKeep, const StopRequested& stop_requested = {});

// GenerateText's output in its two parts: the prefix as the model read it (its newline policy applied, and under
// kSkip its unknown characters left out) and the continuation alone (no stop string), both UTF-8. The same draws
// as GenerateText, so prefix + continuation is its text.
struct GeneratedParts {
  std::string prefix;
  std::string continuation;
  bool interrupted = false;  // stop_requested ended it
};
GeneratedParts GenerateParts(const CharModel<float>& model, const Vocab& vocab, std::string_view prefix_utf8,
                             const SamplingOptions& options, Rng& rng, UnknownPolicy unknown = UnknownPolicy::kError,
                             NewlinePolicy newline = NewlinePolicy::kKeep, const StopRequested& stop_requested = {});

// A --seed value: a whole number from 0 to 2^64 - 1, written in decimal; anything else is a UserError.
std::uint64_t ParseSeed(const std::string& text, std::string_view option);

}  // namespace charlm
