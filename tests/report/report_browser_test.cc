// The report pages in a browser: headless Chromium lays out a run's page and a comparison at 390, 820 and 1,280 px,
// and a script the test wraps around them (the pages have none) counts texts that overlap one another, and labels
// that a curve, a reference line or a dot runs into.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <string>
#include <vector>

#include "cli_util.h"
#include "report/report.h"
#include "report/svg.h"
#include "test_util.h"

namespace charlm {
namespace {

constexpr int kWidths[] = {390, 820, 1280};

// Measures each frame: all its SVG texts pairwise, then each label (class "label") against the points every half
// unit along its chart's curves and reference lines, and against its chart's dots. One line per frame goes into
// <pre id="result">: "ID: T texts, L labels, N overlaps[: which]".
const char* const kMeasureScript = R"(<script>
function measure(frame) {
  const doc = frame.contentDocument, found = [];
  const overlap = (a, b) => Math.min(a.right, b.right) - Math.max(a.left, b.left) > 0.5 &&
                            Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top) > 0.5;
  const texts = [...doc.querySelectorAll('svg text')], boxes = texts.map(t => t.getBoundingClientRect());
  for (let i = 0; i < texts.length; ++i)
    for (let j = i + 1; j < texts.length; ++j)
      if (overlap(boxes[i], boxes[j])) found.push('"' + texts[i].textContent + '" and "' + texts[j].textContent + '"');
  const labels = [...doc.querySelectorAll('svg text.label')];
  for (const label of labels) {
    const box = label.getBoundingClientRect(), svg = label.ownerSVGElement, chart = svg.getBoundingClientRect();
    const scale = chart.width / svg.viewBox.baseVal.width;
    for (const line of svg.querySelectorAll('polyline.curve, polyline.reference')) {
      for (let at = 0, length = line.getTotalLength(); at <= length; at += 0.5) {
        const p = line.getPointAtLength(at), x = chart.left + p.x * scale, y = chart.top + p.y * scale;
        if (x > box.left && x < box.right && y > box.top && y < box.bottom) {
          found.push('"' + label.textContent + '" and a ' + line.getAttribute('class'));
          break;
        }
      }
    }
    for (const dot of svg.querySelectorAll('circle'))
      if (overlap(box, dot.getBoundingClientRect())) found.push('"' + label.textContent + '" and a dot');
  }
  return frame.id + ': ' + texts.length + ' texts, ' + labels.length + ' labels, ' + found.length + ' overlaps' +
         (found.length ? ': ' + found.join('; ') : '');
}
window.addEventListener('load', () => {
  document.getElementById('result').textContent = [...document.querySelectorAll('iframe')].map(measure).join('\n');
});
</script>)";

// Two texts drawn over each other and a label a curve runs through: the measurement must see both.
const char* const kControlPage =
    "<svg viewBox=\"0 0 200 50\" width=\"100%\" font-size=\"13\"><text x=\"5\" y=\"20\">overlapping</text>"
    "<text class=\"label\" x=\"20\" y=\"22\">texts</text><polyline class=\"curve\" points=\"0,16 200,16\"/></svg>";

std::string Number(double value) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", value);
  return buf;
}

// The issue's run: 20 epochs, validation down to 2.511 at the last one, the 5-gram at 2.395 just under it, 30-second
// progress rows from step 513, a best.ckpt.
void WriteIssueRun(const testing::TempDir& dir) {
  std::string metrics;
  for (int epoch = 1; epoch <= 20; ++epoch) {
    metrics += "{\"kind\":\"epoch\",\"epoch\":" + std::to_string(epoch) + ",\"step\":" + std::to_string(27 * epoch) +
               ",\"train_perplexity\":" + Number(2.1 + 6.0 / epoch) +
               ",\"val_perplexity\":" + Number(2.511 + 3.5 / epoch - 3.5 / 20) +
               ",\"learning_rate\":0.002,\"tokens_per_s\":" + Number(9000 + 50 * std::sin(epoch)) +
               ",\"grad_norm\":" + Number(0.4 + 0.02 * epoch) + ",\"elapsed_s\":" + Number(3.1 * epoch) + "}\n";
    if (epoch >= 19) {
      for (int k = 0; k < 3; ++k) {
        metrics += "{\"kind\":\"log\",\"epoch\":" + std::to_string(epoch + 1) + ",\"step\":" +
                   std::to_string(513 + 27 * (epoch - 19) + 8 * k) + ",\"epoch_fraction\":" + Number(0.3 * k + 0.1) +
                   ",\"train_loss\":0.75,\"learning_rate\":0.002,\"tokens_per_s\":9100,\"grad_norm\":0.8}\n";
      }
    }
  }
  testing::WriteFile(dir / "metrics.jsonl", metrics);
  testing::WriteFile(dir / "baseline.json", "{\"order\":5,\"val_perplexity\":2.395,\"val_bpc\":1.260}");
  testing::WriteFile(dir / "run_info.json", "{\"parameters\":208470,\"corpus\":\"licenses.txt\"}");
  testing::WriteFile(dir / "samples.jsonl", "{\"format\":2,\"epoch\":20,\"prefix\":\"The \",\"text\":\"license\"}\n");
  testing::WriteFile(dir / "best.ckpt", "");
}

// A run the network wins: a noisy progress row every few steps, validation every 40 steps, a cosine-like schedule.
void WriteWinningRun(const testing::TempDir& dir) {
  std::string metrics;
  const int steps_per_epoch = 100;
  for (int step = 5; step <= 6 * steps_per_epoch; step += 5) {
    const int epoch = (step - 1) / steps_per_epoch + 1;
    const double fraction = static_cast<double>(step - (epoch - 1) * steps_per_epoch) / steps_per_epoch;
    const double loss = 1.2 + 2.5 * std::exp(-step / 120.0) + 0.08 * std::sin(step * 1.7);
    metrics += "{\"kind\":\"log\",\"epoch\":" + std::to_string(epoch) + ",\"step\":" + std::to_string(step) +
               ",\"epoch_fraction\":" + Number(fraction) + ",\"train_loss\":" + Number(loss) +
               ",\"learning_rate\":0.003,\"tokens_per_s\":20000,\"grad_norm\":1.1}\n";
    if (step % 40 == 0 && step % steps_per_epoch != 0) {
      metrics += "{\"kind\":\"eval\",\"epoch\":" + std::to_string(epoch) + ",\"step\":" + std::to_string(step) +
                 ",\"val_perplexity\":" + Number(std::exp(loss + 0.05)) + "}\n";
    }
    if (step % steps_per_epoch == 0) {
      metrics += "{\"kind\":\"epoch\",\"epoch\":" + std::to_string(epoch) + ",\"step\":" + std::to_string(step) +
                 ",\"train_perplexity\":" + Number(std::exp(loss)) + ",\"val_perplexity\":" +
                 Number(std::exp(loss + 0.05)) + ",\"learning_rate\":" +
                 Number(0.0015 * (1 + std::cos(3.14159 * epoch / 6))) +
                 ",\"tokens_per_s\":" + Number(20000 - 300 * epoch) + ",\"grad_norm\":" + Number(1.5 / epoch) +
                 ",\"elapsed_s\":" + Number(60.0 * epoch) + "}\n";
    }
  }
  testing::WriteFile(dir / "metrics.jsonl", metrics);
  testing::WriteFile(dir / "baseline.json", "{\"order\":5,\"val_perplexity\":4.1,\"val_bpc\":2.036}");
}

}  // namespace

TEST_CASE("report in Chromium: no text overlaps another, no label a curve, at 390, 820 and 1280 px") {
  if (std::system("command -v chromium >/dev/null 2>&1") != 0) {
    std::printf("SKIPPED: report layout in a browser: no chromium (apt-get install chromium)\n");
    return;
  }
  testing::TempDir issue, winning, pages;
  WriteIssueRun(issue);
  WriteWinningRun(winning);
  const RunData issue_run = LoadRun(issue.path().string()), winning_run = LoadRun(winning.path().string());
  const std::vector<std::pair<std::string, std::string>> named_pages = {
      {"issue", RenderRunReport(issue_run, std::nullopt)},
      {"winning", RenderRunReport(winning_run, std::nullopt)},
      {"comparison", RenderComparison({issue_run, winning_run})}};
  // Each page in a frame of each width: a frame is a viewport of its own width, media queries included (Chromium's
  // --dump-dom lays a page out at least 500 px wide whatever --window-size says).
  std::string wrapper = "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"></head><body>\n<pre id=\"result\">not "
                        "measured</pre>\n";
  std::vector<std::string> frame_ids = {"control"};
  wrapper += "<iframe id=\"control\" style=\"width:400px;height:200px;border:0\" srcdoc=\"" +
             svg::EscapeXml(kControlPage) + "\"></iframe>\n";
  for (const auto& [name, page] : named_pages) {
    for (const int width : kWidths) {
      frame_ids.push_back(name + "-" + std::to_string(width));
      // Tall enough for the whole page: no scrollbar takes width from it.
      wrapper += "<iframe id=\"" + frame_ids.back() + "\" style=\"width:" + std::to_string(width) +
                 "px;height:12000px;border:0\" srcdoc=\"" + svg::EscapeXml(page) + "\"></iframe>\n";
    }
  }
  wrapper += std::string(kMeasureScript) + "\n</body></html>\n";
  testing::WriteFile(pages / "measure.html", wrapper);
  const testing::RunResult chromium = testing::RunShell(
      "timeout 300 chromium --headless --no-sandbox --disable-gpu --dump-dom --window-size=1400,900 " +
      ShellQuote("file://" + (pages / "measure.html").string()) + " 2>/dev/null");
  REQUIRE_MESSAGE(chromium.exit_code == 0, chromium.output.substr(0, 2000));
  const std::size_t start = chromium.output.find("<pre id=\"result\">");
  REQUIRE(start != std::string::npos);
  const std::string result =
      chromium.output.substr(start + 17, chromium.output.find("</pre>", start) - start - 17);
  std::istringstream lines(result);
  std::vector<std::string> measured;
  for (std::string line; std::getline(lines, line);) measured.push_back(line);
  REQUIRE_MESSAGE(measured.size() == frame_ids.size(), result);
  CHECK(measured[0] == "control: 2 texts, 1 labels, 2 overlaps: \"overlapping\" and \"texts\"; \"texts\" and a curve");
  for (std::size_t i = 1; i < measured.size(); ++i) {
    int texts = 0, labels = 0, overlaps = -1;
    const std::string expected_start = frame_ids[i] + ": ";
    REQUIRE(measured[i].starts_with(expected_start));
    REQUIRE(std::sscanf(measured[i].c_str() + expected_start.size(), "%d texts, %d labels, %d overlaps", &texts,
                        &labels, &overlaps) == 3);
    CHECK_MESSAGE(overlaps == 0, measured[i]);
    CHECK_MESSAGE(texts > 40, measured[i]);  // the charts were there to measure
    // The run pages label best.ckpt and the 5-gram inside their chart.
    if (!frame_ids[i].starts_with("comparison")) CHECK_MESSAGE(labels == 2, measured[i]);
  }
}

}  // namespace charlm
