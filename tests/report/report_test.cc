// The report page: metrics parsing (resumed runs, old rows, eval rows placed by step), a run without validation,
// escaping, non-ASCII, one perplexity chart, per-epoch panels, a constant learning rate, the comparison, and the page
// a training run writes.
#include "report/report.h"

#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <sstream>

#include "cli_util.h"
#include "util/errors.h"
#include "test_util.h"

namespace charlm {
namespace {

int Count(const std::string& haystack, const std::string& needle) {
  int n = 0;
  for (std::size_t at = haystack.find(needle); at != std::string::npos; at = haystack.find(needle, at + 1)) ++n;
  return n;
}

std::string Row(int epoch, double train, const char* val) {
  return "{\"epoch\":" + std::to_string(epoch) + ",\"step\":" + std::to_string(10 * epoch) +
         ",\"train_perplexity\":" + std::to_string(train) + ",\"val_perplexity\":" + val +
         ",\"learning_rate\":0.002,\"tokens_per_s\":1000,\"grad_norm\":0.5,\"elapsed_s\":" + std::to_string(epoch) +
         "}\n";
}

// An epoch row whose learning rate, speed and gradient norm change with the epoch (a decaying schedule).
std::string DecayingRow(int epoch) {
  return "{\"kind\":\"epoch\",\"epoch\":" + std::to_string(epoch) + ",\"step\":" + std::to_string(30 * epoch) +
         ",\"train_perplexity\":" + std::to_string(2.2 + 6.0 / epoch) + ",\"val_perplexity\":" +
         std::to_string(2.5 + 3.0 / epoch) + ",\"learning_rate\":" + std::to_string(0.002 * std::pow(0.9, epoch)) +
         ",\"tokens_per_s\":" + std::to_string(1000 + epoch) + ",\"grad_norm\":" + std::to_string(0.5 + 0.01 * epoch) +
         ",\"elapsed_s\":" + std::to_string(epoch) + "}\n";
}

// A 30-second progress row, step 513 onwards as in the issue, with figures unlike any epoch's.
std::string LogRow(int epoch, std::int64_t step, double fraction) {
  return "{\"kind\":\"log\",\"epoch\":" + std::to_string(epoch) + ",\"step\":" + std::to_string(step) +
         ",\"epoch_fraction\":" + std::to_string(fraction) +
         ",\"train_loss\":1.0,\"learning_rate\":0.5,\"tokens_per_s\":99,\"grad_norm\":9,\"elapsed_s\":1}\n";
}

// The <svg> element of the chart titled `title`, or "" when the page has none.
std::string ChartTitled(const std::string& page, const std::string& title) {
  const std::size_t at = page.find("<title>" + title + "</title>");
  if (at == std::string::npos) return "";
  const std::size_t start = page.rfind("<svg", at);
  return page.substr(start, page.find("</svg>", at) - start);
}

// The points the chart's curves join, as "x,y" pairs.
int CurvePoints(const std::string& svg) {
  int points = 0;
  for (std::size_t at = svg.find("class=\"curve\""); at != std::string::npos; at = svg.find("class=\"curve\"", at + 1)) {
    const std::size_t start = svg.find("points=\"", at) + 8;
    points += Count(svg.substr(start, svg.find('"', start) - start), ",");
  }
  return points;
}

}  // namespace

TEST_CASE("report: rows repeated by a resumed run appear once, the later one kept, in step order") {
  const std::string text = Row(1, 20, "15") + Row(2, 10, "9") + Row(3, 8, "8.5") + Row(2, 11, "9.5") + Row(3, 7, "8") +
                           Row(4, 6, "7.5") + "{\"epoch\": 5, \"train_perp";  // a half-written last line
  const auto rows = ParseMetrics(text);
  REQUIRE(rows.size() == 4);
  CHECK(rows[1].epoch == 2);
  CHECK(*rows[1].train_perplexity == doctest::Approx(11));
  CHECK(*rows[2].val_perplexity == doctest::Approx(8));
  CHECK(rows[3].epoch == 4);
  const auto samples = ParseSamples("{\"epoch\":1,\"prefix\":\"a\",\"text\":\"ab\"}\n{\"epoch\":1,\"prefix\":\"a\",\"text\":\"ac\"}\n");
  REQUIRE(samples.size() == 1);
  CHECK(samples[0].text == "c");  // rows without "format" had the prefix in text
}

TEST_CASE("report: samples.jsonl's text is the continuation, and older rows whose text began with the prefix read the same") {
  const auto samples = ParseSamples(
      "{\"format\":2,\"epoch\":1,\"prefix\":\"分开\",\"text\":\"分开了\"}\n"  // a continuation may repeat its prefix
      "{\"epoch\":2,\"prefix\":\"分开\",\"text\":\"分开了\"}\n"              // before format 2: prefix + continuation
      "{\"epoch\":3,\"prefix\":\"a\\nb\",\"text\":\"a bcd\"}\n"            // the prefix as data.newline=space read it
      "{\"epoch\":4,\"prefix\":\"xy\",\"text\":\"zzz\"}\n");                 // an older text that lacks its prefix
  REQUIRE(samples.size() == 4);
  CHECK(samples[0].text == "分开了");
  CHECK(!samples[0].text_has_prefix);
  CHECK(samples[1].text == "了");
  CHECK(samples[2].text == "cd");
  CHECK(samples[3].text == "zzz");
  CHECK(samples[3].text_has_prefix);
  testing::TempDir dir;
  testing::WriteFile(dir / "metrics.jsonl", Row(1, 20, "15"));
  testing::WriteFile(dir / "samples.jsonl", "{\"format\":2,\"epoch\":1,\"prefix\":\"分开\",\"text\":\"了\"}\n"
                                            "{\"epoch\":2,\"prefix\":\"分开\",\"text\":\"分开吧\"}\n");
  const std::string page = RenderRunReport(LoadRun(dir.path().string()), std::nullopt);
  CHECK(page.find("<pre><span class=\"prefix\">分开</span>了</pre>") != std::string::npos);
  CHECK(page.find("<pre><span class=\"prefix\">分开</span>吧</pre>") != std::string::npos);
}

TEST_CASE("report: a training run's samples.jsonl holds the prefix and, as text, the continuation alone") {
  testing::TempDir dir;
  testing::WriteTinyRun(dir);
  auto run = testing::Run(dir, {"train", "--config", "tiny.json", "--set", "generate.every=1", "--set",
                                "generate.prefixes=the cat", "--set", "generate.length=7"});
  REQUIRE_MESSAGE(run.exit_code == 0, run.output);
  const std::string jsonl = testing::ReadFile(dir / "run" / "samples.jsonl");
  std::istringstream lines(jsonl);
  int rows = 0;
  for (std::string line; std::getline(lines, line); ++rows) {
    const nlohmann::json row = nlohmann::json::parse(line);
    CHECK(row["format"] == kSamplesFormat);
    CHECK(row["prefix"] == "the cat");
    const std::string text = row["text"].get<std::string>();
    CHECK_MESSAGE(text.size() == 7, text);  // generate.length characters (ASCII here), without the prefix
    // The log prints prefix and continuation together, as the book does.
    CHECK_MESSAGE(run.output.find(" - the cat" + text) != std::string::npos, run.output);
  }
  CHECK(rows == 2);
}

TEST_CASE("report: rows of other kinds and older rows without step or kind are read") {
  const auto rows = ParseMetrics(
      "{\"epoch\":1,\"train_perplexity\":5,\"val_perplexity\":null}\n"
      "{\"kind\":\"log\",\"epoch\":2,\"step\":15,\"epoch_fraction\":0.5,\"train_loss\":0.6931471805599453}\n"
      "{\"kind\":\"unknown\",\"epoch\":2}\n[1,2]\n");
  REQUIRE(rows.size() == 2);
  CHECK(!rows[0].step);
  CHECK(!rows[0].val_perplexity);
  CHECK(rows[1].kind == "log");
  CHECK(*rows[1].train_perplexity == doctest::Approx(2));
  CHECK(rows[1].EpochPosition() == doctest::Approx(1.5));
}

TEST_CASE("report: an eval row sits on the epoch axis where its step puts it") {
  // Epoch 1 ends at step 20; a log row 25% into epoch 2 is step 25: 5 steps a quarter epoch.
  const auto rows = ParseMetrics(
      "{\"kind\":\"log\",\"epoch\":1,\"step\":10,\"epoch_fraction\":0.5,\"train_loss\":1}\n"
      "{\"kind\":\"eval\",\"epoch\":1,\"step\":15,\"val_perplexity\":3}\n"
      "{\"kind\":\"epoch\",\"epoch\":1,\"step\":20,\"train_perplexity\":3}\n"
      "{\"kind\":\"log\",\"epoch\":2,\"step\":25,\"epoch_fraction\":0.25,\"train_loss\":1}\n"
      "{\"kind\":\"eval\",\"epoch\":2,\"step\":30,\"val_perplexity\":3}\n");
  REQUIRE(rows.size() == 5);
  CHECK(rows[1].EpochPosition() == doctest::Approx(0.75));  // between the log row and the epoch's end
  CHECK(rows[4].EpochPosition() == doctest::Approx(1.5));   // after the last log row, at its pace
}

TEST_CASE("report: perplexity and bits per character are one chart with two axes, the only one before the samples") {
  testing::TempDir dir;
  std::string metrics;
  for (int epoch = 1; epoch <= 20; ++epoch) metrics += DecayingRow(epoch);
  testing::WriteFile(dir / "metrics.jsonl", metrics);
  const std::string page = RenderRunReport(LoadRun(dir.path().string()), std::nullopt);
  const std::string before_samples = page.substr(0, page.find("<h2>Samples"));
  CHECK(Count(before_samples, "<svg") == 1);
  const std::string chart = ChartTitled(page, "Perplexity and bits per character by epoch");
  REQUIRE(!chart.empty());
  CHECK(chart.find(">perplexity (log scale)</text>") != std::string::npos);
  CHECK(chart.find(">bits per character</text>") != std::string::npos);
  CHECK(chart.find("best 2.65 (1.41 bpc)") != std::string::npos);  // the label gives both
}

TEST_CASE("report: the per-epoch panels plot the epoch rows, not the progress rows between them") {
  testing::TempDir dir;
  std::string metrics;
  for (int epoch = 1; epoch <= 20; ++epoch) {
    metrics += DecayingRow(epoch);
    if (epoch >= 15) metrics += LogRow(epoch + 1, 30 * epoch + 13, 0.4);
  }
  testing::WriteFile(dir / "metrics.jsonl", metrics);
  const std::string page = RenderRunReport(LoadRun(dir.path().string()), std::nullopt);
  for (const char* title : {"Learning rate, mean per epoch", "Training speed, mean per epoch",
                            "Gradient norm before clipping, mean per epoch"}) {
    const std::string chart = ChartTitled(page, title);
    CHECK_MESSAGE(CurvePoints(chart) == 20, title);  // the 20 epochs, none of the 6 progress rows
  }
  CHECK(page.find("at each log point") == std::string::npos);

  // Before the first epoch ends there are only progress rows: they are plotted, and the title says what they are.
  testing::WriteFile(dir / "metrics.jsonl", LogRow(1, 10, 0.2) + LogRow(1, 20, 0.4) + LogRow(1, 30, 0.6));
  const std::string early = RenderRunReport(LoadRun(dir.path().string()), std::nullopt);
  CHECK(CurvePoints(ChartTitled(early, "Training speed, at each log point")) == 3);
  CHECK(early.find("mean per epoch") == std::string::npos);
}

TEST_CASE("report: the best is the best validation of any row, a time budget's last eval row included") {
  // A --minutes run: its stop validates once more (an eval row), and that model can become best.ckpt.
  testing::TempDir dir;
  testing::WriteFile(dir / "metrics.jsonl", Row(1, 9, "5.2") + Row(2, 8, "5.189") +
                                                "{\"kind\":\"eval\",\"epoch\":3,\"step\":25,\"val_perplexity\":5.175}\n");
  const std::string page = RenderRunReport(LoadRun(dir.path().string()), std::nullopt);
  CHECK_MESSAGE(page.find("Best validation perplexity <b>5.175</b>") != std::string::npos, page.substr(0, 3000));
  // Part-way into epoch 3, as its step places it, not "at epoch 3": train says 2 epochs were done.
  CHECK(page.find("at step 25, part-way into epoch 3") != std::string::npos);
  CHECK(page.find("at epoch 3") == std::string::npos);
}

TEST_CASE("report: the training curve holds the epochs' means, and progress rows only past the last ended epoch") {
  testing::TempDir dir;
  // Progress rows inside epoch 2 (ended) and inside epoch 4 (under way).
  testing::WriteFile(dir / "metrics.jsonl", DecayingRow(1) + LogRow(2, 45, 0.5) + DecayingRow(2) + DecayingRow(3) +
                                                LogRow(4, 100, 0.3));
  const std::string chart = ChartTitled(RenderRunReport(LoadRun(dir.path().string()), std::nullopt),
                                        "Perplexity and bits per character by epoch");
  CHECK(CurvePoints(chart) == 3 + 1 + 3);  // training: 3 means and epoch 4's progress; validation: 3
}

TEST_CASE("report: the config table shows a separator of control characters quoted, not as an empty cell") {
  testing::TempDir dir;
  testing::WriteFile(dir / "metrics.jsonl", Row(1, 20, "15"));
  testing::WriteFile(dir / "config.json", "{\"data\":{\"separator\":\"\\n\",\"corpus\":\"a.txt\"}}");
  const std::string page = RenderRunReport(LoadRun(dir.path().string()), std::nullopt);
  CHECK(page.find("<td>&quot;\\n&quot;</td>") != std::string::npos);
  CHECK(page.find("<td>a.txt</td>") != std::string::npos);
}

TEST_CASE("report: a constant learning rate is one line of text, a changing one a chart") {
  testing::TempDir dir;
  std::string constant, changing;
  for (int epoch = 1; epoch <= 20; ++epoch) {
    constant += Row(epoch, 20.0 / epoch, "9");  // learning_rate 0.002 in every row
    changing += DecayingRow(epoch);
  }
  testing::WriteFile(dir / "metrics.jsonl", constant);
  std::string page = RenderRunReport(LoadRun(dir.path().string()), std::nullopt);
  CHECK(page.find("<p>Learning rate <b>0.002</b>, constant over all 20 epochs.</p>") != std::string::npos);
  CHECK(ChartTitled(page, "Learning rate, mean per epoch").empty());
  testing::WriteFile(dir / "metrics.jsonl", changing);
  page = RenderRunReport(LoadRun(dir.path().string()), std::nullopt);
  CHECK(page.find("constant over") == std::string::npos);
  CHECK(CurvePoints(ChartTitled(page, "Learning rate, mean per epoch")) == 20);
}

TEST_CASE("report: a run without a validation split, samples escaped, non-ASCII kept") {
  testing::TempDir dir;
  testing::WriteFile(dir / "metrics.jsonl", Row(1, 20, "null") + Row(2, 10, "null"));
  testing::WriteFile(dir / "samples.jsonl",
                     "{\"epoch\":1,\"prefix\":\"分开\",\"text\":\"分开</svg><script>alert(1)</script>\"}\n");
  testing::WriteFile(dir / "config.json", "{\"generate\":{\"prefixes\":[\"<img src=x onerror=alert(1)>\"]}}");
  const RunData run = LoadRun(dir.path().string());
  const std::string page = RenderRunReport(run, std::nullopt);
  CHECK(page.find("<script") == std::string::npos);
  CHECK(page.find("<img") == std::string::npos);
  CHECK(page.find("分开</span>&lt;/svg&gt;&lt;script&gt;") != std::string::npos);
  CHECK(page.find("no validation split") != std::string::npos);
  CHECK(page.find(">validation</text>") == std::string::npos);  // no empty validation series in the legend
  CHECK(page.find("best 10.0") != std::string::npos);            // best by training perplexity
  CHECK(page.find("best.ckpt 10.0") == std::string::npos);       // the folder has no best.ckpt to name
  testing::WriteFile(dir / "best.ckpt", "");
  CHECK(RenderRunReport(LoadRun(dir.path().string()), std::nullopt).find("best.ckpt 10.0") != std::string::npos);
  CHECK(Count(page, "http") == Count(page, "http://www.w3.org/2000/svg"));  // nothing fetched: only the namespace
  CHECK(page.find("<link") == std::string::npos);
}

TEST_CASE("report: a run stopped mid-epoch counts only its finished epochs, and a comparison says which split is best") {
  testing::TempDir a, b;
  // One finished epoch, then a log row 40% into epoch 2 (a stop by signal or train.max_steps).
  testing::WriteFile(a / "metrics.jsonl", Row(1, 20, "15") +
                                              "{\"kind\":\"log\",\"epoch\":2,\"step\":14,\"epoch_fraction\":0.4,"
                                              "\"train_loss\":2.0,\"elapsed_s\":1.5}\n");
  const std::string page = RenderRunReport(LoadRun(a.path().string()), std::nullopt);
  CHECK_MESSAGE(page.find("1 epoch and 40% of epoch 2") != std::string::npos, page.substr(0, 3000));
  testing::WriteFile(b / "metrics.jsonl", Row(1, 20, "null") + Row(2, 10, "null"));
  const std::string compare = RenderComparison({LoadRun(a.path().string()), LoadRun(b.path().string())});
  CHECK(compare.find("best val perplexity") == std::string::npos);
  CHECK(compare.find("15.000 (validation)") != std::string::npos);
  CHECK(compare.find("10.000 (training: no validation split)") != std::string::npos);
}

TEST_CASE("report: a run stopped before its first epoch does not say it has no validation split") {
  testing::TempDir dir;
  testing::WriteFile(dir / "metrics.jsonl", "{\"kind\":\"log\",\"epoch\":1,\"step\":10,\"epoch_fraction\":0.2,"
                                            "\"train_loss\":2.0,\"elapsed_s\":1.5}\n");
  testing::WriteFile(dir / "config.json", "{\"data\":{\"val_fraction\":0.1}}");
  const std::string page = RenderRunReport(LoadRun(dir.path().string()), std::nullopt);
  CHECK_MESSAGE(page.find("no validation split") == std::string::npos, page.substr(0, 3000));
  testing::WriteFile(dir / "config.json", "{\"data\":{\"val_fraction\":0}}");
  CHECK(RenderRunReport(LoadRun(dir.path().string()), std::nullopt).find("no validation split") != std::string::npos);
}

TEST_CASE("report: baseline line, comparison of runs, and clear errors") {
  testing::TempDir a, b;
  testing::WriteFile(a / "metrics.jsonl", Row(1, 20, "15") + Row(2, 10, "9"));
  testing::WriteFile(a / "baseline.json", "{\"order\":5,\"val_perplexity\":12.5,\"val_bpc\":3.64}");
  testing::WriteFile(a / "config.json", "{\"model\":{\"hidden_size\":8}}");
  testing::WriteFile(b / "metrics.jsonl", Row(1, 25, "18") + Row(2, 12, "11") + Row(3, 9, "10"));
  testing::WriteFile(b / "config.json", "{\"model\":{\"hidden_size\":16}}");
  const std::string page = RenderRunReport(LoadRun(a.path().string()), std::nullopt);
  CHECK(page.find("5-gram baseline 12.5") != std::string::npos);
  const std::string compare = RenderComparison({LoadRun(a.path().string()), LoadRun(b.path().string())});
  CHECK(compare.find("<th>model.hidden_size</th>") != std::string::npos);
  CHECK(Count(compare, "<svg") == 2);
  std::ostringstream out;
  CHECK_THROWS_WITH_AS(RunReport({{a.path().string(), b.path().string()}, ""}, out),
                       doctest::Contains("needs --out FILE"), UserError);
  CHECK_THROWS_WITH_AS(RunReport({{(a / "missing").string()}, ""}, out), doctest::Contains("is not a folder"),
                       UserError);
}

TEST_CASE("report: the comparison shows each run's wall time, parameter count and training curve") {
  testing::TempDir a, b;
  testing::WriteFile(a / "metrics.jsonl", Row(1, 20, "15") + Row(2, 10, "9"));
  testing::WriteFile(a / "run_info.json", "{\"parameters\":12345}");
  testing::WriteFile(b / "metrics.jsonl", Row(1, 25, "18") + Row(2, 12, "11") + Row(3, 9, "10"));
  const std::string compare = RenderComparison({LoadRun(a.path().string()), LoadRun(b.path().string())});
  CHECK(compare.find("<th>wall time</th><th>parameters</th>") != std::string::npos);
  CHECK(compare.find("<td>2.0 s</td><td>12,345</td>") != std::string::npos);
  CHECK(compare.find("<td>3.0 s</td><td>-</td>") != std::string::npos);  // b has no run_info.json
  const std::string training = ChartTitled(compare, "Training perplexity and bits per character by epoch");
  CHECK(CurvePoints(training) == 5);  // a's 2 epochs and b's 3
  CHECK(CurvePoints(ChartTitled(compare, "Validation perplexity and bits per character by epoch")) == 5);
}

TEST_CASE("report: train writes report.html, and a resumed run shows each epoch once") {
  testing::TempDir dir;
  testing::WriteTinyRun(dir);
  auto first = testing::Run(dir, {"train", "--config", "tiny.json", "--set", "generate.every=1", "--set",
                                  "generate.prefixes=the", "--set", "generate.length=5"});
  REQUIRE_MESSAGE(first.exit_code == 0, first.output);
  CHECK(std::filesystem::exists(dir / "run" / "report.html"));
  auto resumed = testing::Run(dir, {"train", "--resume", "run/last.ckpt", "--set", "train.epochs=3"});
  REQUIRE_MESSAGE(resumed.exit_code == 0, resumed.output);
  const RunData run = LoadRun((dir / "run").string());
  CHECK(run.rows.size() == 3);
  CHECK(run.samples.size() == 3);
  for (const MetricsRow& r : run.rows) CHECK(r.grad_norm.has_value());
  const std::string page = testing::ReadFile(dir / "run" / "report.html");
  CHECK(page.find("<h3>epoch 3</h3>") != std::string::npos);
  CHECK(Count(page, "<h3>epoch 2</h3>") == 1);
  CHECK(page.find("Continuations from best.ckpt") != std::string::npos);
  CHECK(page.find("http-equiv=\"refresh\"") == std::string::npos);  // finished: no reload
  auto off = testing::Run(dir, {"train", "--config", "tiny.json", "--set", "train.out_dir=off", "--set",
                                "train.report=false"});
  REQUIRE_MESSAGE(off.exit_code == 0, off.output);
  CHECK(!std::filesystem::exists(dir / "off" / "report.html"));
  auto cli = testing::Run(dir, {"report", "run", "off", "--out", "compare.html"});
  CHECK_MESSAGE(cli.exit_code == 0, cli.output);
  CHECK(std::filesystem::exists(dir / "compare.html"));
}

TEST_CASE("report: a run without generate.prefixes continues the corpus prefix its samples started from") {
  testing::TempDir dir;
  testing::WriteTinyRun(dir);
  auto run = testing::Run(dir, {"train", "--config", "tiny.json", "--set", "generate.every=1", "--set",
                                "generate.length=5"});
  REQUIRE_MESSAGE(run.exit_code == 0, run.output);
  const RunData data = LoadRun((dir / "run").string());
  REQUIRE(!data.samples.empty());
  const std::optional<ModelFigures> figures = ComputeModelFigures((dir / "run").string());
  REQUIRE(figures.has_value());
  REQUIRE(figures->continuations.size() == 1);
  CHECK(figures->continuations[0].first == data.samples[0].prefix);
}

TEST_CASE("report: malformed lines and impossible perplexities are counted with their first line, never silent") {
  // Issue 35: these were skipped silently, and a val_perplexity of -1 drew "-nan bits per character".
  MetricsSkips skipped;
  const auto rows = ParseMetrics(Row(1, 20, "15") + "not json\n\n" + "{\"kind\":\"init\",\"init_from\":\"a.ckpt\"}\n" +
                                     Row(2, 10, "-1") + "{\"epoch\":\"three\"}\n" + Row(3, 0.5, "9"),
                                 &skipped);
  REQUIRE(rows.size() == 3);
  CHECK(skipped.lines == 2);  // the blank line and the init row are not malformed
  CHECK(skipped.first_line == 2);
  CHECK(skipped.values == 2);  // val_perplexity -1 on line 5, train_perplexity 0.5 on line 7
  CHECK(skipped.first_value_line == 5);
  CHECK(!rows[1].val_perplexity);
  CHECK(*rows[1].train_perplexity == doctest::Approx(10));
  CHECK(!rows[2].train_perplexity);
  CHECK(*rows[2].val_perplexity == doctest::Approx(9));
}

TEST_CASE("report: a metrics file with no readable row is an error, not a page of 0 epochs") {
  testing::TempDir dir;
  testing::WriteFile(dir / "metrics.jsonl", "garbage\n{\"epoch\": 1.5}\n");
  const std::string path = (dir / "metrics.jsonl").string();
  const std::string garbage = path + " has no readable row (2 malformed line(s), the first at line 1): give the "
                                     "folder of a run that has trained at least one epoch";
  CHECK_THROWS_WITH_AS(LoadRun(dir.path().string()), garbage.c_str(), UserError);
  testing::WriteFile(dir / "metrics.jsonl", "");
  const std::string empty = path + " has no readable row: give the folder of a run that has trained at least one epoch";
  CHECK_THROWS_WITH_AS(LoadRun(dir.path().string()), empty.c_str(), UserError);
}

TEST_CASE("report: the headline says whether the network beats the 5-gram and whether it was still improving") {
  testing::TempDir dir;
  // Best 9 at epoch 2, then two validations without improvement: overfitting since epoch 2; 9 beats 12.5.
  testing::WriteFile(dir / "metrics.jsonl", Row(1, 20, "15") + Row(2, 10, "9") + Row(3, 8, "9.5") + Row(4, 7, "10"));
  testing::WriteFile(dir / "baseline.json", "{\"order\":5,\"val_perplexity\":12.5,\"val_bpc\":3.64,\"whole_split\":true}");
  std::string page = RenderRunReport(LoadRun(dir.path().string()), std::nullopt);
  CHECK(page.find("The network beats the Kneser-Ney 5-gram baseline (perplexity 12.500)") != std::string::npos);
  CHECK(page.find("printed at the start") == std::string::npos);  // a page prints nothing at a start
  CHECK(page.find("not improved for the last 2 validations (the best was epoch 2)") != std::string::npos);
  // A live page names the 5-gram's verdict only: a run still going has no end to judge.
  CHECK(RenderRunReport(LoadRun(dir.path().string()), std::nullopt, {.live = true}).find("not improved") ==
        std::string::npos);

  // Still improving at the last validation, and losing to a 5-gram of 5.
  testing::WriteFile(dir / "metrics.jsonl", Row(1, 20, "15") + Row(2, 10, "9"));
  testing::WriteFile(dir / "baseline.json", "{\"order\":5,\"val_perplexity\":5,\"val_bpc\":2.32}");
  page = RenderRunReport(LoadRun(dir.path().string()), std::nullopt);
  CHECK(page.find("The network loses to the Kneser-Ney 5-gram") != std::string::npos);
  // The dynamic evaluation it suggests is a command that names the run's checkpoint.
  CHECK(page.find("charlm eval --checkpoint " + (dir / "best.ckpt").string() + " --split val --dynamic --mix-ngram") !=
        std::string::npos);
  CHECK(page.find("still improving at the end: more epochs") != std::string::npos);

  // A 5-gram that scored part of the split only is not compared; a time budget asks for more time.
  testing::WriteFile(dir / "baseline.json", "{\"order\":5,\"val_perplexity\":5,\"val_bpc\":2.32,\"whole_split\":false}");
  testing::WriteFile(dir / "config.json", "{\"train\":{\"max_minutes\":3}}");
  page = RenderRunReport(LoadRun(dir.path().string()), std::nullopt);
  CHECK(page.find("Kneser-Ney 5-gram baseline (perplexity") == std::string::npos);
  CHECK(page.find("still improving at the end: more time") != std::string::npos);
}

TEST_CASE("report: a fine-tuning run's page names the checkpoint it started from") {
  testing::TempDir dir;
  testing::WriteFile(dir / "metrics.jsonl",
                     "{\"kind\":\"init\",\"init_from\":\"runs/a/best.ckpt\"}\n" + Row(1, 20, "15"));
  const RunData run = LoadRun(dir.path().string());
  CHECK(run.init_from == "runs/a/best.ckpt");
  CHECK(RenderRunReport(run, std::nullopt).find("Fine-tuned from <code>runs/a/best.ckpt</code>") != std::string::npos);
  // Fine-tuning refuses --minutes: its still-improving verdict names train.max_minutes alone.
  const std::string tuned = RenderRunReport(run, std::nullopt);
  CHECK(tuned.find("more time (train.max_minutes)") != std::string::npos);
  CHECK(tuned.find("--minutes") == std::string::npos);
  testing::WriteFile(dir / "metrics.jsonl", Row(1, 20, "15"));
  CHECK(RenderRunReport(LoadRun(dir.path().string()), std::nullopt).find("Fine-tuned") == std::string::npos);
}

TEST_CASE("report: a run stopped inside its first epoch names its eval row's best; an absurd elapsed_s is dropped") {
  testing::TempDir dir;
  testing::WriteFile(dir / "metrics.jsonl", "{\"kind\":\"eval\",\"epoch\":1,\"step\":20,\"val_perplexity\":659.5,"
                                            "\"elapsed_s\":1e308}\n");
  MetricsSkips skipped;
  const std::vector<MetricsRow> rows = ParseMetrics(testing::ReadFile(dir / "metrics.jsonl"), &skipped);
  CHECK(skipped.values == 1);
  REQUIRE(rows.size() == 1);
  CHECK_FALSE(rows[0].elapsed_s.has_value());
  const std::string page = RenderRunReport(LoadRun(dir.path().string()), std::nullopt);
  CHECK_MESSAGE(page.find("Best validation perplexity <b>659.500</b>") != std::string::npos, page.substr(0, 2000));
  CHECK(page.find("000000000000") == std::string::npos);
  // The comparison labels that best as the validation figure it is.
  const std::string compare = RenderComparison({LoadRun(dir.path().string()), LoadRun(dir.path().string())});
  CHECK(compare.find("659.500 (validation)") != std::string::npos);
}

}  // namespace charlm
