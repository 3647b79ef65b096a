// Reading a data-parallel process's share of the corpus: the parts counted by every process, the counts summed.
#include "parallel/corpus_share.h"

#include <algorithm>
#include <array>
#include <cassert>
#include <map>
#include <string>
#include <tuple>

#include <spdlog/spdlog.h>

#include "parallel/data_parallel.h"
#include "util/errors.h"
#include "util/file_io.h"
#include "model/ngram.h"
#include "text/corpus.h"
#include "text/sampler.h"

namespace charlm {
namespace {

// A part's count as it travels: its bytes, characters and notes, as whole numbers.
enum PartField { kByteBegin, kByteEnd, kChars, kCrlf, kControls, kFirstControl, kFirstControlIndex, kPartFields };

std::array<std::uint64_t, kPartFields> PackPart(const CorpusPartCount& part) {
  return {part.byte_begin,
          part.byte_end,
          static_cast<std::uint64_t>(part.notes.chars),
          static_cast<std::uint64_t>(part.notes.crlf_line_breaks),
          static_cast<std::uint64_t>(part.notes.control_chars),
          static_cast<std::uint64_t>(part.notes.first_control),
          static_cast<std::uint64_t>(part.notes.first_control_index)};
}

// Every worker's parts, in rank order: (parts, kPartFields).
std::vector<std::uint64_t> GatherParts(Workers& workers, const std::vector<CorpusPartCount>& mine) {
  std::vector<std::uint64_t> packed;
  for (const CorpusPartCount& part : mine) {
    const auto fields = PackPart(part);
    packed.insert(packed.end(), fields.begin(), fields.end());
  }
  std::vector<std::uint64_t> all(packed.size() * static_cast<std::size_t>(workers.size()));
  workers.AllGather(packed, all);
  return all;
}

// Every worker's (code point, count) list, summed: the counts of the whole text.
std::vector<std::pair<char32_t, std::int64_t>> SumCounts(Workers& workers,
                                                        const std::map<char32_t, std::int64_t>& mine) {
  const std::array<std::uint64_t, 1> length{mine.size()};
  std::vector<std::uint64_t> lengths(static_cast<std::size_t>(workers.size()));
  workers.AllGather(length, lengths);
  const std::uint64_t longest = *std::max_element(lengths.begin(), lengths.end());
  constexpr std::uint64_t kCodePoints = 0x110000;
  if (longest * lengths.size() > kCodePoints) {
    // Many distinct characters on many processes: one dense sum (8.9 MB a process, exact in double below 2^53)
    // costs less than gathering every list to every process.
    std::vector<double> dense(kCodePoints, 0.0);
    for (const auto& [c, count] : mine) dense[c] = static_cast<double>(count);
    workers.SumInPlace(dense);
    std::vector<std::pair<char32_t, std::int64_t>> sum;
    for (std::uint64_t c = 0; c < kCodePoints; ++c) {
      if (dense[c] > 0) sum.emplace_back(static_cast<char32_t>(c), static_cast<std::int64_t>(dense[c]));
    }
    return sum;
  }
  std::vector<std::uint64_t> packed(2 * longest, 0);
  std::size_t at = 0;
  for (const auto& [c, count] : mine) {
    packed[at++] = c;
    packed[at++] = static_cast<std::uint64_t>(count);
  }
  std::vector<std::uint64_t> all(packed.size() * static_cast<std::size_t>(workers.size()));
  workers.AllGather(packed, all);
  std::map<char32_t, std::int64_t> sum;
  for (std::size_t rank = 0; rank < lengths.size(); ++rank) {
    const std::uint64_t* theirs = all.data() + rank * packed.size();
    for (std::uint64_t k = 0; k < lengths[rank]; ++k) {
      sum[static_cast<char32_t>(theirs[2 * k])] += static_cast<std::int64_t>(theirs[2 * k + 1]);
    }
  }
  return {sum.begin(), sum.end()};
}

// Every process must read identical files: a copy that differs on one host would train on two texts at once.
void CheckSameFile(Workers& workers, const std::string& path, const CorpusFileSample& sample) {
  const std::array<std::uint64_t, 2> mine{sample.size, Fingerprint(sample.bytes)};
  std::vector<std::uint64_t> all(mine.size() * static_cast<std::size_t>(workers.size()));
  workers.AllGather(mine, all);
  for (int rank = 1; rank < workers.size(); ++rank) {
    const std::uint64_t* theirs = all.data() + 2 * static_cast<std::size_t>(rank);
    if (theirs[0] == all[0] && theirs[1] == all[1]) continue;
    throw Disagreement(rank, workers.size(),
                       "corpus file '" + path + "' (" +
                           (theirs[0] != all[0] ? std::to_string(theirs[0]) + " bytes there, " + std::to_string(all[0]) + " on process 0"
                                                : "the same size, other contents") + ")");
  }
}

}  // namespace

void CheckShareFits(int rank, const std::string& path, std::uint64_t chars, int id_width, std::uint64_t memory) {
  const std::uint64_t id_bytes = chars * static_cast<std::uint64_t>(id_width);
  if (memory == 0 || id_bytes <= memory / 2) return;
  throw UserError("process " + std::to_string(rank) + "'s share of corpus file '" + path + "' is " +
                  std::to_string(chars) + " characters, whose ids need " + FormatBytes(id_bytes) +
                  ", more than half of its machine's " + FormatBytes(memory) + " of memory: start more processes " +
                  "(over more machines), or train on the text's first part with --set data.max_chars=N");
}

std::size_t CorpusParts::PartHolding(std::int64_t position) const {
  assert(char_begin.size() >= 2 && position >= 0 && position < char_begin.back());
  // The last begin <= position: empty parts before it begin there too, but hold none of its characters.
  const auto after = std::upper_bound(char_begin.begin(), char_begin.end() - 1, position);
  return static_cast<std::size_t>(after - char_begin.begin()) - 1;
}

Dataset LoadDatasetShare(Workers& workers, const Config& config, StreamShard shard) {
  return ReadCorpusShare(workers, config, shard).dataset;
}

CorpusShare ReadCorpusShare(Workers& workers, const Config& config, StreamShard shard) {
  const DataConfig& data = config.data;
  const TrainConfig& tc = config.train;
  CheckConfigsAgree(workers, config);
  if (data.min_freq < 1) {  // before the file is read for nothing, as ReadCorpusIds
    throw UserError("min_freq " + std::to_string(data.min_freq) + " is below 1: use 1 to keep every character");
  }
  if (!IsSinglePlainFile(CorpusSource::Of(data))) {
    // Folders, several paths, compressed files and archives: a compressed stream cannot be entered in the middle,
    // so every process reads the whole corpus (docs/corpora.md; what that costs on many cores is not measured), and the processes
    // compare what they read.
    CorpusShare whole;
    whole.dataset = LoadDataset(data);
    CorpusFileSample digest;
    digest.size = static_cast<std::uint64_t>(whole.dataset.corpus_chars());
    for (const ManifestEntry& entry : whole.dataset.manifest) {
      digest.bytes += entry.member + '\0' + std::to_string(entry.bytes) + '\0' + std::to_string(entry.hash) + '\0';
    }
    CheckSameFile(workers, data.corpus.Label(), digest);
    whole.notes.chars = whole.dataset.corpus_chars();
    whole.notes.documents = whole.dataset.documents;
    whole.notes.skipped = whole.dataset.skipped;
    return whole;
  }
  const std::string& path = data.corpus.paths.front();
  const CorpusFileSample sample = SampleCorpusFile(path, data.max_chars);
  CheckSameFile(workers, path, sample);

  // Count this worker's parts: the file's bytes cut evenly among all parts, each moved to a part start.
  const auto parts = static_cast<std::uint64_t>(workers.size()) * kCorpusPartsPerProcess;
  const auto first_part = static_cast<std::uint64_t>(workers.rank()) * kCorpusPartsPerProcess;
  std::vector<CorpusPartCount> mine;
  std::uint64_t begin = CorpusPartStart(path, sample.size * first_part / parts);
  for (std::uint64_t p = first_part; p < first_part + kCorpusPartsPerProcess; ++p) {
    const std::uint64_t end = CorpusPartStart(path, sample.size * (p + 1) / parts);
    mine.push_back(CountCorpusPart(path, data.newline, begin, end, 0));
    begin = end;
  }
  std::vector<std::uint64_t> all = GatherParts(workers, mine);

  // data.max_chars keeps the text's first characters: the part it cuts is counted again up to there, and the
  // parts after it count nothing.
  std::int64_t before = 0;
  for (std::uint64_t p = 0; p < parts; ++p) {
    const auto chars = static_cast<std::int64_t>(all[p * kPartFields + kChars]);
    const bool cut = data.max_chars > 0 && before + chars > data.max_chars;
    if (cut && p >= first_part && p < first_part + kCorpusPartsPerProcess) {
      CorpusPartCount& part = mine[p - first_part];
      const std::int64_t room = data.max_chars - before;
      part = room > 0 ? CountCorpusPart(path, data.newline, part.byte_begin, part.byte_end, room)
                      : CorpusPartCount{part.byte_begin, part.byte_end, {}, {}};
    }
    before += cut ? std::max<std::int64_t>(0, data.max_chars - before) : chars;
  }
  if (data.max_chars > 0) all = GatherParts(workers, mine);

  std::map<char32_t, std::int64_t> counted;
  for (const CorpusPartCount& part : mine) {
    for (const auto& [c, count] : part.counts) counted[c] += count;
  }
  const std::vector<std::pair<char32_t, std::int64_t>> counts = SumCounts(workers, counted);

  CorpusParts layout;
  CorpusNotes notes;
  notes.file_bytes = sample.size;
  layout.char_begin.push_back(0);
  for (std::uint64_t p = 0; p < parts; ++p) {
    const std::uint64_t* part = all.data() + p * kPartFields;
    layout.byte_begin.push_back(part[kByteBegin]);
    if (part[kControls] > 0 && notes.control_chars == 0) {
      notes.first_control = static_cast<char32_t>(part[kFirstControl]);
      notes.first_control_index = layout.char_begin.back() + static_cast<std::int64_t>(part[kFirstControlIndex]);
    }
    notes.crlf_line_breaks += static_cast<std::int64_t>(part[kCrlf]);
    notes.control_chars += static_cast<std::int64_t>(part[kControls]);
    layout.char_begin.push_back(layout.char_begin.back() + static_cast<std::int64_t>(part[kChars]));
  }
  layout.byte_begin.push_back(sample.size);
  notes.chars = layout.char_begin.back();
  if (notes.chars == 0) throw NoCharactersLeft(path, data.newline);
  LogCorpusNotes(path, notes);

  Dataset dataset;
  dataset.vocab = Vocab::FromCounts(counts, data.min_freq);
  dataset.split = SplitCorpus(notes.chars, data.val_fraction, data.test_fraction);
  const std::int64_t train_end = dataset.split.train_end;
  std::int64_t held_begin = 0, held_end = train_end;  // too short for a batch: TrainingRun says so
  if (train_end >= Sampler::MinimumLength(tc.sampler, tc.batch_size, tc.num_steps, tc.random_offset)) {
    std::tie(held_begin, held_end) = Sampler::Span(tc.sampler, train_end, tc.batch_size, tc.num_steps,
                                                   tc.random_offset, shard.first, shard.count);
  }
  const std::int64_t val_chars = dataset.split.val_end - train_end;
  // The baseline is fitted only when there is a validation split to score it on (BaselineReporter).
  const std::int64_t baseline_chars = val_chars >= 2 ? std::min(train_end, kMaxNgramFitChars) : 0;
  if (workers.rank() == 0) {
    held_begin = 0;
    held_end = std::max(held_end, baseline_chars);
  }
  const auto held = static_cast<std::uint64_t>(held_end - held_begin + val_chars);
  CheckShareFits(workers.rank(), path, held, TokenIds::WidthFor(dataset.vocab.size()), PhysicalMemoryBytes());
  {
    const AllocationScope scope("the ids of this process's share of corpus file '" + path + "'",
                                "train on the first part of the text with data.max_chars");
    dataset.ids = TokenIds(static_cast<std::size_t>(held), dataset.vocab.size());
  }
  const auto read = [&](std::int64_t from, std::int64_t to, std::size_t at) {
    if (from == to) return;
    const std::size_t part = layout.PartHolding(from);
    ReadCorpusPart(path, data.newline, layout.byte_begin[part], from - layout.char_begin[part], to - from,
                   dataset.vocab, dataset.ids, at);
  };
  read(held_begin, held_end, 0);
  read(train_end, dataset.split.val_end, static_cast<std::size_t>(held_end - held_begin));
  dataset.train_begin = held_begin;
  dataset.train_held = held_end - held_begin;

  const std::array<std::uint64_t, 1> held_here{held};
  std::vector<std::uint64_t> held_by(static_cast<std::size_t>(workers.size()));
  workers.AllGather(held_here, held_by);
  std::string listed;
  for (std::size_t rank = 0; rank < held_by.size(); ++rank) {
    listed += (rank == 0 ? "" : rank + 1 == held_by.size() ? " and " : ", ") + std::to_string(held_by[rank]);
  }
  spdlog::info("corpus {} read in {} parts by {} processes: they hold {} of its {} characters (their streams' "
               "training text{}{})",
               path, parts, workers.size(), listed, notes.chars, val_chars > 0 ? " and the validation split" : "",
               baseline_chars > 0 ? "; process 0 also the baseline's first " + std::to_string(baseline_chars) : "");
  return CorpusShare{std::move(dataset), notes};
}

}  // namespace charlm
