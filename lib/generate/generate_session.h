// What `charlm generate` does with a loaded model: the decoding options and their checks, one answer per prefix
// (text or a JSON line), and the interactive session that reads prefixes and `:set` commands line by line.
#pragma once

#include <cstdint>
#include <istream>
#include <ostream>
#include <string>
#include <string_view>

#include "generate/generate.h"

namespace charlm {

// How an option is written in messages: "--beam 100" on the command line, "beam=100" in a session's :set.
enum class OptionStyle { kCommandLine, kSession };

// A --stop / :set stop value: \n, \t, \r and \\ are escapes (so a newline can be typed), anything else is itself.
// UserError for an empty string or a lone backslash at the end.
std::u32string ParseStopString(std::string_view text, OptionStyle style);

// Range checks of every decoding option (the four a config also holds use the config's ranges), naming the
// option as `style` writes it: UserError "--beam 100 is out of range: expected an integer from 0 to 64 ...".
void CheckSamplingOptions(const SamplingOptions& options, OptionStyle style);

// A whole-number option (length, top-k, beam, repetition-window, no-repeat-ngram) as read, wider than int: as an
// int when it fits one, else the UserError naming the option's own range ("--beam 99999999999 is out of range:
// expected an integer from 0 to 64 ..."). The value's range within int is CheckSamplingOptions' to check.
int NarrowIntOption(std::string_view name, std::int64_t value, OptionStyle style);

// The options and the seed a session's next prefix runs with.
struct GenerateSettings {
  SamplingOptions options;
  std::uint64_t seed = 0;  // the next prefix draws with this seed; each prefix line adds 1
};

// Applies "NAME=VALUE" (NAME as the command-line option without its dashes: temperature, top-k, beam, stop ...);
// "stop=" with nothing clears the stop strings. The settings change only when the whole assignment is valid;
// otherwise a UserError that names the mistake (and the nearest option name for a typo).
void SetSessionOption(GenerateSettings& settings, std::string_view assignment);
// The settings as one line of NAME=VALUE, as :set takes them.
std::string DescribeSettings(const GenerateSettings& settings);

struct AnswerSetup {
  const CharModel<float>& model;
  const Vocab& vocab;
  NewlinePolicy newline = NewlinePolicy::kKeep;
  UnknownPolicy unknown = UnknownPolicy::kError;
  bool json = false;  // one JSON object per line instead of the text
};

// Generates from one prefix with settings.options and Rng(settings.seed), writing either the prefix and its
// continuation (streamed as generated) and a newline, or one JSON line: prefix, text, log_prob, log_probs,
// stopped_by, seed, options, and with beam search beams (each text, log_prob, log_probs, score, stopped_by).
// Then flushes. A prefix error is thrown before anything is written; a failed write is a UserError.
void AnswerPrefix(const AnswerSetup& setup, std::string_view prefix, const GenerateSettings& settings, std::ostream& out,
                  const StopRequested& stop_requested = {});

// Reads lines from `in` until an empty line or the end of input. A line starting with ':' is a command (:set
// NAME=VALUE, :show, :help, :quit); "::" starts a prefix that begins with ':'. Any other line is a prefix,
// answered on `out` as AnswerPrefix does, and the seed then moves on by one. A bad command or prefix is one
// "charlm: error: ..." line on `err` and the session goes on (a refused prefix still gets its answer line: an
// empty line, or a JSON object with "prefix" and "error", so answers stay in step with prefixes). With `prompt`
// (stdin is a terminal), a "> " prompt and a first hint go to err. Returns how many lines were refused.
int RunSession(const AnswerSetup& setup, GenerateSettings& settings, std::istream& in, std::ostream& out,
               std::ostream& err, bool prompt);
inline constexpr std::size_t kMaxSessionLineBytes = std::size_t{16} << 20;

}  // namespace charlm
