// Decoding options, answers (text or JSON) and the line-by-line interactive session of `charlm generate`.
#include "generate/generate_session.h"

#include <algorithm>
#include <cassert>
#include <charconv>
#include <climits>
#include <cmath>
#include <cstdio>
#include <limits>
#include <utility>
#include <nlohmann/json.hpp>

#include "util/errors.h"
#include "util/file_io.h"
#include "util/suggest.h"
#include "util/utf8.h"

namespace charlm {
namespace {

std::string FormatNumber(double x) {
  char text[32];
  std::snprintf(text, sizeof text, "%g", x);
  return text;
}

// "--beam 100" or "beam=100".
std::string Spell(std::string_view name, std::string_view value, OptionStyle style) {
  return style == OptionStyle::kCommandLine ? "--" + std::string(name) + " " + std::string(value)
                                            : std::string(name) + "=" + std::string(value);
}

[[noreturn]] void OutOfRange(std::string_view name, std::string_view value, std::string_view expected,
                             std::string_view example, OptionStyle style) {
  throw UserError(Spell(name, value, style) + " is out of range: expected " + std::string(expected) + "; e.g. " +
                  (style == OptionStyle::kSession ? ":set " : "") + Spell(name, example, style));
}

struct SessionOption {
  const char* name;
  const char* example;
};
// The names :set takes, as the command line spells them without dashes.
constexpr SessionOption kSessionOptions[] = {
    {"length", "100"},         {"temperature", "0.7"},     {"top-k", "10"},
    {"top-p", "0.9"},          {"greedy", "true"},         {"seed", "42"},
    {"beam", "4"},             {"length-penalty", "1"},    {"repetition-penalty", "1.2"},
    {"repetition-window", "32"}, {"no-repeat-ngram", "4"}, {"stop", "\\n"},
};

// The whole-number options, their ranges and an example: one table for CheckSamplingOptions and NarrowIntOption.
struct IntRange {
  const char* name;
  int low, high;
  const char* meaning;  // what the ends mean, after the range
  const char* example;
};
constexpr IntRange kIntRanges[] = {
    {"length", 0, INT_MAX, "", "100"},
    {"top-k", 0, INT_MAX, " (0 = all)", "10"},
    {"beam", 0, kMaxBeam, " (0 = no beam search)", "4"},
    {"repetition-window", 1, INT_MAX, " (characters)", "32"},
    {"no-repeat-ngram", 0, INT_MAX, " (0 = off)", "4"},
};

const IntRange& IntRangeOf(std::string_view name) {
  for (const IntRange& range : kIntRanges) {
    if (name == range.name) return range;
  }
  assert(false && "not a whole-number option");
  return kIntRanges[0];
}

// The range as the messages write it: "an integer >= 0" up to int's end (as the config's keys say), else both ends.
std::string Expected(const IntRange& range, bool both_ends) {
  return (range.high == INT_MAX && !both_ends ? "an integer >= " + std::to_string(range.low)
                                              : "an integer from " + std::to_string(range.low) + " to " +
                                                    std::to_string(range.high)) +
         range.meaning;
}

void CheckIntOption(std::string_view name, std::int64_t value, OptionStyle style) {
  const IntRange& range = IntRangeOf(name);
  if (value < range.low || value > range.high) {
    OutOfRange(name, std::to_string(value), Expected(range, !std::in_range<int>(value)),
               range.example, style);
  }
}

std::string OptionList() {
  std::string list;
  for (const SessionOption& o : kSessionOptions) list += (list.empty() ? "" : ", ") + std::string(o.name);
  return list;
}

// A :set number. Past the type's range (1e400, 2^63) it is the nearest end of it, which the range checks refuse.
template <typename T>
T ParseNumber(std::string_view name, std::string_view value, const char* kind, const char* example) {
  T parsed{};
  const char* end = value.data() + value.size();
  std::from_chars_result r{};
  if constexpr (std::is_floating_point_v<T>) {
    r = std::from_chars(value.data(), end, parsed, std::chars_format::general);
  } else {
    r = std::from_chars(value.data(), end, parsed);
  }
  if (!value.empty() && r.ec == std::errc::result_out_of_range && r.ptr == end) {
    const bool negative = value.front() == '-';
    if constexpr (std::is_floating_point_v<T>) {
      // A tiny magnitude (1e-400) underflows towards zero; a huge one overflows to infinity.
      const std::size_t e = value.find_first_of("eE");
      const bool tiny = e != std::string_view::npos && e + 1 < value.size() && value[e + 1] == '-';
      const T magnitude = tiny ? T{0} : std::numeric_limits<T>::infinity();
      return negative ? -magnitude : magnitude;
    } else {
      return negative ? std::numeric_limits<T>::min() : std::numeric_limits<T>::max();
    }
  }
  if (value.empty() || r.ec != std::errc() || r.ptr != end) {
    throw UserError(std::string(name) + "=" + std::string(value) + " is not " + kind + ": e.g. :set " +
                    std::string(name) + "=" + example);
  }
  return parsed;
}

std::string EscapeStop(std::u32string_view stop) {
  std::string out;
  for (char32_t c : stop) {
    if (c == U'\n') {
      out += "\\n";
    } else if (c == U'\t') {
      out += "\\t";
    } else if (c == U'\r') {
      out += "\\r";
    } else if (c == U'\\') {
      out += "\\\\";
    } else {
      out += EncodeUtf8(c);
    }
  }
  return out;
}

nlohmann::ordered_json OptionsJson(const SamplingOptions& o) {
  nlohmann::ordered_json stop = nlohmann::ordered_json::array();
  for (const std::u32string& s : o.stop) stop.push_back(EncodeUtf8(s));
  return {{"length", o.length},
          {"temperature", o.temperature},
          {"top_k", o.top_k},
          {"top_p", o.top_p},
          {"greedy", o.greedy},
          {"beam", o.beam},
          {"length_penalty", o.length_penalty},
          {"repetition_penalty", o.repetition_penalty},
          {"repetition_window", o.repetition_window},
          {"no_repeat_ngram", o.no_repeat_ngram},
          {"stop", stop}};
}

// stopped_by: the stop string, "no-repeat-ngram" (its option's name) when the ban left no character, else null.
nlohmann::ordered_json ContinuationJson(const Continuation& c) {
  const nlohmann::ordered_json stopped_by = !c.stopped_by.empty() ? nlohmann::ordered_json(EncodeUtf8(c.stopped_by))
                                            : c.stopped_by_ngram  ? nlohmann::ordered_json("no-repeat-ngram")
                                                                  : nlohmann::ordered_json(nullptr);
  return {{"text", EncodeUtf8(c.text)},
          {"log_prob", c.log_prob},
          {"log_probs", c.log_probs},
          {"stopped_by", stopped_by},
          {"stop_log_prob", c.stopped_by.empty() ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(c.stop_log_prob)}};
}

// Text from outside may hold invalid UTF-8 (a refused prefix): replaced, never thrown on.
std::string DumpLine(const nlohmann::ordered_json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

// After each answer, so a full disk stops generation at once (main checks once more at exit).
void CheckWritten(std::ostream& out) { CheckOutputWritten(out); }

}  // namespace

std::u32string ParseStopString(std::string_view text, OptionStyle style) {
  const std::string shown = Spell("stop", "\"" + EscapeControlChars(text) + "\"", style);
  if (text.empty()) {
    throw UserError(shown + " is empty: give the text to stop at, e.g. " +
                    (style == OptionStyle::kSession ? ":set " : "") + Spell("stop", "'\\n'", style) +
                    " for the end of a line");
  }
  const std::u32string decoded = DecodeUtf8(text, "--stop", LeadingBom::kKeep);
  std::u32string stop;
  for (std::size_t i = 0; i < decoded.size(); ++i) {
    if (decoded[i] != U'\\') {
      stop.push_back(decoded[i]);
      continue;
    }
    if (++i == decoded.size()) {
      throw UserError(shown + " ends with a lone backslash: write \\\\ for a backslash, \\n for a newline, \\t for a tab");
    }
    switch (decoded[i]) {
      case U'n': stop.push_back(U'\n'); break;
      case U't': stop.push_back(U'\t'); break;
      case U'r': stop.push_back(U'\r'); break;
      case U'\\': stop.push_back(U'\\'); break;
      default:
        throw UserError(shown + " has the unknown escape \\" + EncodeUtf8(decoded[i]) +
                        ": the escapes are \\n, \\t, \\r and \\\\ (a backslash)");
    }
  }
  return stop;
}

int NarrowIntOption(std::string_view name, std::int64_t value, OptionStyle style) {
  if (!std::in_range<int>(value)) CheckIntOption(name, value, style);  // the range ends within int: refused
  return static_cast<int>(value);
}

void CheckSamplingOptions(const SamplingOptions& o, OptionStyle style) {
  CheckIntOption("length", o.length, style);
  if (!(o.temperature > 0) || !std::isfinite(o.temperature)) {
    OutOfRange("temperature", FormatNumber(o.temperature), "a number > 0", "0.7", style);
  }
  CheckIntOption("top-k", o.top_k, style);
  if (!(o.top_p > 0 && o.top_p <= 1)) OutOfRange("top-p", FormatNumber(o.top_p), "a number in (0, 1]", "0.9", style);
  CheckIntOption("beam", o.beam, style);
  if (!(o.length_penalty >= 0 && o.length_penalty <= kMaxLengthPenalty)) {
    OutOfRange("length-penalty", FormatNumber(o.length_penalty),
               "a number from 0 to " + FormatNumber(kMaxLengthPenalty) + " (0 = rank by log-probability alone)", "1",
               style);
  }
  if (!(o.repetition_penalty >= kMinRepetitionPenalty && o.repetition_penalty <= kMaxRepetitionPenalty)) {
    OutOfRange("repetition-penalty", FormatNumber(o.repetition_penalty),
               "a number from " + FormatNumber(kMinRepetitionPenalty) + " to " + FormatNumber(kMaxRepetitionPenalty) +
                   " (1 = off, above 1 discourages repeats)",
               "1.2", style);
  }
  CheckIntOption("repetition-window", o.repetition_window, style);
  CheckIntOption("no-repeat-ngram", o.no_repeat_ngram, style);
}

void SetSessionOption(GenerateSettings& settings, std::string_view assignment) {
  const std::size_t eq = assignment.find('=');
  if (eq == std::string_view::npos) {
    throw UserError(":set " + EscapeControlChars(assignment) + " has no '=': write :set NAME=VALUE, e.g. :set temperature=0.7");
  }
  const std::string_view name = assignment.substr(0, eq), value = assignment.substr(eq + 1);
  GenerateSettings changed = settings;
  SamplingOptions& o = changed.options;
  if (name == "length") {
    o.length =
        NarrowIntOption(name, ParseNumber<std::int64_t>(name, value, "a whole number", "100"), OptionStyle::kSession);
  } else if (name == "temperature") {
    o.temperature = ParseNumber<double>(name, value, "a number", "0.7");
  } else if (name == "top-k") {
    o.top_k =
        NarrowIntOption(name, ParseNumber<std::int64_t>(name, value, "a whole number", "10"), OptionStyle::kSession);
  } else if (name == "top-p") {
    o.top_p = ParseNumber<double>(name, value, "a number", "0.9");
  } else if (name == "greedy") {
    if (value != "true" && value != "false") {
      throw UserError("greedy=" + EscapeControlChars(value) + " is not true or false: e.g. :set greedy=false to sample");
    }
    o.greedy = value == "true";
  } else if (name == "seed") {
    try {
      changed.seed = ParseSeed(std::string(value), "seed");
    } catch (const UserError&) {
      throw UserError("seed=" + EscapeControlChars(value) +
                      " is not a whole number from 0 to 18446744073709551615: e.g. :set seed=42");
    }
  } else if (name == "beam") {
    o.beam =
        NarrowIntOption(name, ParseNumber<std::int64_t>(name, value, "a whole number", "4"), OptionStyle::kSession);
  } else if (name == "length-penalty") {
    o.length_penalty = ParseNumber<double>(name, value, "a number", "1");
  } else if (name == "repetition-penalty") {
    o.repetition_penalty = ParseNumber<double>(name, value, "a number", "1.2");
  } else if (name == "repetition-window") {
    o.repetition_window =
        NarrowIntOption(name, ParseNumber<std::int64_t>(name, value, "a whole number", "32"), OptionStyle::kSession);
  } else if (name == "no-repeat-ngram") {
    o.no_repeat_ngram =
        NarrowIntOption(name, ParseNumber<std::int64_t>(name, value, "a whole number", "4"), OptionStyle::kSession);
  } else if (name == "stop") {
    o.stop.clear();
    if (!value.empty()) o.stop.push_back(ParseStopString(value, OptionStyle::kSession));
  } else {
    std::vector<std::string> names;
    for (const SessionOption& option : kSessionOptions) names.emplace_back(option.name);
    const std::optional<std::string> nearest = NearestName(name, names);
    throw UserError(":set " + EscapeControlChars(name) + ": unknown option" +
                    (nearest ? ", did you mean " + *nearest + "?" : "") + " (the options: " + OptionList() + ")");
  }
  CheckSamplingOptions(o, OptionStyle::kSession);
  settings = std::move(changed);
}

std::string DescribeSettings(const GenerateSettings& settings) {
  const SamplingOptions& o = settings.options;
  std::string stops;
  for (const std::u32string& s : o.stop) stops += (stops.empty() ? "" : ",") + EscapeStop(s);
  return "length=" + std::to_string(o.length) + " temperature=" + FormatNumber(o.temperature) +
         " top-k=" + std::to_string(o.top_k) + " top-p=" + FormatNumber(o.top_p) +
         " greedy=" + (o.greedy ? "true" : "false") + " seed=" + std::to_string(settings.seed) +
         " beam=" + std::to_string(o.beam) + " length-penalty=" + FormatNumber(o.length_penalty) +
         " repetition-penalty=" + FormatNumber(o.repetition_penalty) +
         " repetition-window=" + std::to_string(o.repetition_window) +
         " no-repeat-ngram=" + std::to_string(o.no_repeat_ngram) + " stop=" + stops;
}

void AnswerPrefix(const AnswerSetup& setup, std::string_view prefix, const GenerateSettings& settings, std::ostream& out,
                  const StopRequested& stop_requested) {
  const std::vector<int> ids = EncodePrefix(setup.vocab, prefix, setup.unknown, setup.newline);
  Rng rng(settings.seed);
  if (!setup.json) {
    Generate(setup.model, setup.vocab, ids, settings.options, rng, &out, false, stop_requested);
    out << '\n';
    out.flush();
    CheckWritten(out);
    return;
  }
  const std::vector<Continuation> results =
      Generate(setup.model, setup.vocab, ids, settings.options, rng, nullptr, true, stop_requested);
  nlohmann::ordered_json line = {{"prefix", std::string(prefix)}};
  line.update(ContinuationJson(results.front()));
  line["seed"] = settings.seed;
  line["options"] = OptionsJson(settings.options);
  if (settings.options.beam > 0) {
    nlohmann::ordered_json beams = nlohmann::ordered_json::array();
    for (const Continuation& c : results) {
      nlohmann::ordered_json beam = ContinuationJson(c);
      beam["score"] = c.score;
      beams.push_back(std::move(beam));
    }
    line["beams"] = std::move(beams);
  }
  if (results.front().interrupted) line["interrupted"] = true;
  out << DumpLine(line);
  out.flush();
  CheckWritten(out);
}

namespace {

// One line of `in` without its line break (and a Windows '\r'); false at the end of input.
bool ReadSessionLine(std::istream& in, std::string& line, long line_number) {
  line.clear();
  char c = 0;
  bool any = false;
  while (in.get(c)) {
    any = true;
    if (c == '\n') break;
    if (line.size() == kMaxSessionLineBytes) {
      throw UserError("line " + std::to_string(line_number) + " of the input is longer than " +
                      std::to_string(kMaxSessionLineBytes >> 20) +
                      " MB: give a long prefix with --prefix-file FILE instead");
    }
    line.push_back(c);
  }
  if (!line.empty() && line.back() == '\r') line.pop_back();
  return any;
}

constexpr const char* kSessionHelp =
    "type a prefix and Enter to continue it; an empty line or Ctrl-D ends. Commands: :set NAME=VALUE (names: %s; "
    ":set stop= clears the stop strings), :show (the current settings), :help, :quit; start a prefix that begins "
    "with ':' with '::'\n";

}  // namespace

int RunSession(const AnswerSetup& setup, GenerateSettings& settings, std::istream& in, std::ostream& out,
               std::ostream& err, bool prompt) {
  auto help = [&] {
    char text[1024];
    std::snprintf(text, sizeof text, kSessionHelp, OptionList().c_str());
    err << "charlm: " << text;
    err.flush();
  };
  if (prompt) help();
  int refused = 0;
  std::string line;
  for (long number = 1;; ++number) {
    if (prompt) {
      err << "> ";
      err.flush();
    }
    if (!ReadSessionLine(in, line, number) || line.empty()) break;
    std::string_view prefix = line;
    if (line.starts_with("::")) {
      prefix.remove_prefix(1);
    } else if (line.front() == ':') {
      const std::string_view command = std::string_view(line).substr(1);
      try {
        if (command.starts_with("set ")) {
          std::string_view assignment = command.substr(4);
          while (assignment.starts_with(' ')) assignment.remove_prefix(1);
          SetSessionOption(settings, assignment);
        } else if (command == "show") {
          err << "charlm: " << DescribeSettings(settings) << '\n';
          err.flush();
        } else if (command == "help") {
          help();
        } else if (command == "quit") {
          break;
        } else {
          throw UserError("unknown command :" + EscapeControlChars(command) +
                          ": the commands are :set NAME=VALUE, :show, :help and :quit (start a prefix with '::' to "
                          "begin it with ':')");
        }
      } catch (const UserError& e) {
        err << "charlm: error: " << e.what() << '\n';
        err.flush();
        ++refused;
      }
      continue;
    }
    try {
      AnswerPrefix(setup, prefix, settings, out);
    } catch (const UserError& e) {
      if (!out) throw;  // the output itself failed: nothing more can be answered
      err << "charlm: error: " << e.what() << '\n';
      err.flush();
      // The answer line the prefix would have had, so answers stay in step with prefixes.
      if (setup.json) {
        out << DumpLine(nlohmann::ordered_json{{"prefix", std::string(prefix)}, {"error", e.what()}});
      } else {
        out << '\n';
      }
      out.flush();
      CheckWritten(out);
      ++refused;
    }
    ++settings.seed;
  }
  return refused;
}

}  // namespace charlm
