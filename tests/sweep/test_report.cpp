// Reports from run folders: numbers from config.yaml through the accounting, and from
// metrics.jsonl; the files written; errors that name the folder or file.
#include <gtest/gtest.h>

#include <string>

#include "sweep/report.h"
#include "sweep/run_folder.h"
#include "sweep/xml_check.h"
#include "testing/scratch_dir.h"
#include "util/error.h"
#include "util/files.h"
#include "util/json.h"

namespace cca::sweep {
namespace {

using testing::ScratchDir;

// E = 64, 2 layers, vocab 128, SwiGLU 128, 4 heads of 16, seq 32.
std::string config_yaml(const std::string& attention) {
  return "model: {d_model: 64, n_layers: 2, vocab_size: 128, ffn_hidden: 128}\n"
         "attention: " +
         attention +
         "\n"
         "train: {steps: 8, seq_len: 32, micro_batch_size: 4, device: cpu}\n"
         "schedule: {warmup_steps: 2}\n";
}

const char* const kMetrics =
    "{\"kind\":\"start\",\"step\":0,\"run_id\":\"r\"}\n"
    "{\"kind\":\"train\",\"step\":4,\"loss\":4.5,\"lr\":0.001,\"grad_norm\":1,\"tokens_per_s\":900,"
    "\"tokens_seen\":512,\"time_s\":0.4,\"memory_gib\":0.25,\"skipped_steps\":0}\n"
    "{\"kind\":\"eval\",\"step\":4,\"val_loss\":3.7,\"val_ppl\":40,\"val_tokens\":64,"
    "\"tokens_seen\":512,\"time_s\":0.4}\n"
    "{\"kind\":\"train\",\"step\":8,\"loss\":4.0,\"lr\":0.001,\"grad_norm\":1,\"tokens_per_s\":"
    "1000,"
    "\"tokens_seen\":1024,\"time_s\":0.8,\"memory_gib\":0.5,\"skipped_steps\":0}\n"
    "{\"kind\":\"eval\",\"step\":8,\"val_loss\":3.8,\"val_ppl\":44,\"val_tokens\":64,"
    "\"tokens_seen\":1024,\"time_s\":0.8}\n"
    "{\"kind\":\"summary\",\"step\":8,\"tokens_seen\":1024,\"time_s\":0.8,\"tokens_per_s\":1250,"
    "\"peak_memory_gib\":0.5,\"val_loss\":3.8,\"mfu\":0.125,\"stopped_early\":false}\n";

class ReportTest : public ::testing::Test {
 protected:
  ScratchDir dir;
  std::string run(const std::string& name, const std::string& attention,
                  const std::string& metrics = kMetrics) {
    dir.write("sweep/" + name + "/config.yaml", config_yaml(attention));
    dir.write("sweep/" + name + "/metrics.jsonl", metrics);
    return dir / ("sweep/" + name);
  }
  std::string error_of(const std::function<void()>& body) {
    try {
      body();
    } catch (const Error& e) {
      return e.what();
    }
    ADD_FAILURE() << "no error";
    return "";
  }
};

TEST_F(ReportTest, ModelNumbersFollowTheAccountingFormulas) {
  const RunFolder mha = load_run_folder(run("mha", "{kind: mha, n_heads: 4}"));
  const int64_t E = 64, L = 2, V = 128, F = 128, h = 4, d = 16, S = 32;
  EXPECT_EQ(mha.name, "mha");
  EXPECT_EQ(mha.model.derived.counts.total_params, V * E + E + L * (4 * E * E + 3 * E * F + 2 * E));
  EXPECT_EQ(mha.model.kv_bytes_per_token, 2 * L * h * d * 2);  // k and v, every layer, bf16
  // Forward, causal: projections 2·4E² plus scores and values 2·(S/2)·h·(d + d) per layer.
  EXPECT_DOUBLE_EQ(mha.model.attention_flops_per_token, L * (8.0 * E * E + 2.0 * S * h * d));
  EXPECT_TRUE(mha.finished);

  const RunFolder gqa = load_run_folder(run("gqa", "{kind: gqa, n_heads: 4, n_kv_heads: 1}"));
  EXPECT_EQ(gqa.model.kv_bytes_per_token, 2 * L * 1 * d * 2);
  // CCA at compression 2: 2 latent kv heads of 16.
  const RunFolder cca = load_run_folder(
      run("cca", "{kind: cca, n_heads: 4, rope_fraction: 0.5, cca: {q_compression: 2}}"));
  EXPECT_EQ(cca.model.kv_bytes_per_token, 2 * L * 2 * d * 2);
}

TEST_F(ReportTest, WritesMarkdownHtmlJsonAndPlotsWithTheRunsNumbers) {
  const std::vector<RunFolder> runs = {load_run_folder(run("mha", "{kind: mha, n_heads: 4}")),
                                       load_run_folder(run("gqa",
                                                           "{kind: gqa, n_heads: 4, "
                                                           "n_kv_heads: 2}"))};
  const ReportFiles written = write_report(runs, dir / "out", "Attention <test>");
  const std::string md = files::read_file(written.markdown);
  EXPECT_EQ(md.rfind("# Attention <test>\n", 0), 0u);
  EXPECT_NE(md.find("| [mha](../sweep/mha/config.yaml) | mha 4q/4kv ×16 |"), std::string::npos)
      << md;
  EXPECT_NE(md.find("| 512 B |"), std::string::npos) << md;  // mha's KV cache per token
  // Both runs have the same metrics: every results column is the same, so a footnote says it.
  EXPECT_NE(md.find("Same in every run: Steps 8/8; Tokens 1.024K; Final val loss 3.8000; Best val "
                    "loss 3.7000 (step 4); Tokens/s 1.25K; MFU 12.5%; Peak memory 0.50 GiB; "
                    "Training time 0:01; Status finished. Final val loss: at step 8."),
            std::string::npos)
      << md;
  EXPECT_NE(md.find("| Run | attention.kind |"), std::string::npos) << md;
  EXPECT_NE(md.find("![Validation loss](val_loss_tokens.svg)"), std::string::npos);

  const Json json = parse_json(files::read_file(written.json), "report.json");
  const Json& first = json.at("runs", "r").as_array("runs").at(0);
  EXPECT_EQ(first.at("name", "r").as_string("name"), "mha");
  EXPECT_DOUBLE_EQ(first.at("final_val_loss", "r").as_double("v"), 3.8);
  EXPECT_DOUBLE_EQ(first.at("best_val_loss", "r").as_double("v"), 3.7);
  EXPECT_DOUBLE_EQ(first.at("tokens_per_s", "r").as_double("v"), 1250);
  EXPECT_DOUBLE_EQ(first.at("mfu", "r").as_double("v"), 0.125);
  EXPECT_EQ(first.at("kv_bytes_per_token", "r").as_int("v"), 512);
  EXPECT_EQ(first.at("tokens_seen", "r").as_int("v"), 1024);

  ASSERT_EQ(written.plots.size(), 4u);
  for (const std::string& plot : written.plots) {
    const testing::XmlSummary xml = testing::check_xml(files::read_file(plot));
    EXPECT_EQ(xml.problem, "") << plot;
    EXPECT_EQ(xml.root, "svg");
  }
  // The HTML carries its plots inline (each a well-formed SVG element) and links to nothing.
  const std::string html = files::read_file(written.html);
  EXPECT_NE(html.find("<title>Attention &lt;test&gt;</title>"), std::string::npos);
  EXPECT_EQ(html.find("<img"), std::string::npos);
  EXPECT_EQ(html.find("<?xml"), std::string::npos);
  int inlined = 0;
  for (size_t at = html.find("<svg"); at != std::string::npos; at = html.find("<svg", at + 1)) {
    const size_t end = html.find("</svg>", at) + 6;
    EXPECT_EQ(testing::check_xml(html.substr(at, end - at)).problem, "");
    ++inlined;
  }
  EXPECT_EQ(inlined, 4);
}

// The stroke colour and dash of the line whose tooltip is `title` ("" when none).
std::pair<std::string, std::string> line_style(const std::string& svg, const std::string& title) {
  const size_t at = svg.find("<title>" + title + "</title>");
  if (at == std::string::npos) return {"", ""};
  const size_t line = svg.find("<polyline", at);
  const auto value = [&](const std::string& key) {
    const size_t begin = svg.find(key + "=\"", line);
    if (begin == std::string::npos || begin > svg.find("/>", line)) return std::string();
    const size_t start = begin + key.size() + 2;
    return svg.substr(start, svg.find('"', start) - start);
  };
  return {value("stroke"), value("stroke-dasharray")};
}

// mha and gqa with seeds 1 and 2 each (gqa lower by 0.2), as one sweep folder.
class SeedSweepTest : public ReportTest {
 protected:
  std::vector<RunFolder> runs;
  void SetUp() override {
    for (const std::string variant : {"mha", "gqa"}) {
      for (int seed : {1, 2}) {
        const std::string attention =
            variant == "mha" ? "{kind: mha, n_heads: 4}" : "{kind: gqa, n_heads: 4, n_kv_heads: 2}";
        const std::string name = variant + "-seed" + std::to_string(seed);
        std::string metrics = kMetrics;
        const std::string loss = (variant == "mha" ? "3.8" : "3.6") + std::to_string(seed);
        for (size_t at = metrics.find("3.8"); at != std::string::npos;
             at = metrics.find("3.8", at + 4)) {
          metrics.replace(at, 3, loss);
        }
        std::string config = config_yaml(attention);
        config.replace(config.find("device: cpu}"), 12,
                       "device: cpu, seed: " + std::to_string(seed) + "}");
        dir.write("sweep/" + name + "/config.yaml", config);
        dir.write("sweep/" + name + "/metrics.jsonl", metrics);
        runs.push_back(load_run_folder(dir / ("sweep/" + name)));
      }
    }
  }
};

TEST_F(SeedSweepTest, OneColourPerVariantOneLineStylePerSeedAndTheMeanOverABand) {
  write_report(runs, dir / "sweep", "Seeds");
  const std::string svg = files::read_file(dir / "sweep/val_loss_tokens.svg");
  ASSERT_EQ(testing::check_xml(svg).problem, "") << svg;
  const auto mha1 = line_style(svg, "mha-seed1"), mha2 = line_style(svg, "mha-seed2");
  const auto gqa1 = line_style(svg, "gqa-seed1"), gqa2 = line_style(svg, "gqa-seed2");
  ASSERT_NE(mha1.first, "") << svg;
  EXPECT_EQ(mha1.first, mha2.first);  // one colour per variant
  EXPECT_EQ(gqa1.first, gqa2.first);
  EXPECT_NE(mha1.first, gqa1.first);
  EXPECT_EQ(mha1.second, gqa1.second);  // one dash per seed
  EXPECT_NE(mha1.second, mha2.second);
  EXPECT_NE(mha1.second, "");
  const auto mean = line_style(svg, "mha mean");
  EXPECT_EQ(mean.first, mha1.first);
  EXPECT_EQ(mean.second, "");                                    // solid
  EXPECT_EQ(testing::check_xml(svg).elements.at("polygon"), 2);  // a band per variant
  for (const char* entry :
       {">mha<", ">gqa<", ">mean over seeds<", ">range over seeds<", ">seed 1<", ">seed 2<"}) {
    EXPECT_NE(svg.find(entry), std::string::npos) << entry;
  }
  const std::string train = files::read_file(dir / "sweep/train_loss_tokens.svg");
  EXPECT_NE(train.find(">raw (unsmoothed)<"), std::string::npos);
  EXPECT_NE(train.find("training loss (nats per token)"), std::string::npos);
  EXPECT_NE(svg.find("training data seen (tokens)"), std::string::npos);
}

TEST_F(SeedSweepTest, TablesDropConstantColumnsAndShowTheKeysThatDifferLinkedToConfigs) {
  const ReportFiles written = write_report(runs, dir / "sweep", "Seeds");
  const std::string md = files::read_file(written.markdown);
  // The keys that differ are columns beside the results, each run linked to its config.yaml.
  EXPECT_NE(md.find("| Run | attention.kind | attention.n_kv_heads | train.seed | Final val loss "
                    "| Best val loss |"),
            std::string::npos)
      << md;
  EXPECT_NE(md.find("| [gqa-seed2](gqa-seed2/config.yaml) | gqa | 2 | 2 |"), std::string::npos)
      << md;
  const std::string html = files::read_file(written.html);
  EXPECT_NE(html.find("<a href=\"mha-seed1/config.yaml\">mha-seed1</a>"), std::string::npos);
  // Steps, tokens and status are the same everywhere: a footnote, not a column.
  EXPECT_EQ(md.find("| Steps |"), std::string::npos) << md;
  EXPECT_EQ(md.find("Status |"), std::string::npos) << md;
  EXPECT_NE(md.find("Same in every run: Steps 8/8; Tokens 1.024K;"), std::string::npos) << md;
  EXPECT_NE(md.find("Status finished"), std::string::npos) << md;
  // The summary: per variant, the mean and its interval, and the difference from the baseline.
  EXPECT_LT(md.find("## Summary by variant"), md.find("## Plots"));
  EXPECT_LT(md.find("## Plots"), md.find("## Models"));
  EXPECT_NE(md.find("| Variant | Seeds | Mean final val loss | SD | 95% interval | Δ vs mha | "
                    "95% interval of Δ | Verdict |"),
            std::string::npos)
      << md;
  EXPECT_NE(md.find("| mha | 1 2 | 3.8150 | 0.0071 |"), std::string::npos) << md;
  EXPECT_NE(md.find("| gqa | 1 2 | 3.6150 | 0.0071 |"), std::string::npos) << md;
  // Two seeds: the interval excludes 0, yet two seeds make no result.
  EXPECT_NE(md.find("| -0.2000 | [-0.2000, -0.2000] | suggestive: gqa lower (interval excludes 0, "
                    "but 2 seeds; a result needs ≥3) |"),
            std::string::npos)
      << md;
  EXPECT_EQ(md.find("real: gqa lower"), std::string::npos) << md;
}

TEST_F(ReportTest, TheTimePlotAndTrainingTimeLeaveOutWarmUp) {
  // Steps take 0.1 s; the first 10 took 3 s, 2 s of it warm-up.
  std::string metrics = "{\"kind\":\"start\",\"step\":0,\"run_id\":\"r\"}\n";
  for (int step = 10; step <= 40; step += 10) {
    const std::string time = std::to_string(3.0 + (step - 10) * 0.1);
    const std::string tokens = std::to_string(step * 128);
    metrics += "{\"kind\":\"train\",\"step\":" + std::to_string(step) +
               ",\"loss\":2.5,\"lr\":0.001,\"grad_norm\":1,\"tokens_per_s\":900,"
               "\"tokens_seen\":" +
               tokens + ",\"time_s\":" + time + ",\"memory_gib\":0.25,\"skipped_steps\":0}\n";
    metrics += "{\"kind\":\"eval\",\"step\":" + std::to_string(step) +
               ",\"val_loss\":2.2,\"val_ppl\":9,\"val_tokens\":64,\"tokens_seen\":" + tokens +
               ",\"time_s\":" + time + "}\n";
  }
  const RunFolder slow = load_run_folder(run("slow", "{kind: mha, n_heads: 4}", metrics));
  const ReportFiles written = write_report({slow}, dir / "out", "Warm-up");
  const Json json = parse_json(files::read_file(written.json), "report.json");
  const Json& first = json.at("runs", "r").as_array("runs").at(0);
  EXPECT_NEAR(first.at("warmup_s", "r").as_double("v"), 2.0, 1e-9);
  EXPECT_NEAR(first.at("time_s", "r").as_double("v"), 4.0, 1e-9);
  const std::string svg = files::read_file(dir / "out/val_loss_time.svg");
  EXPECT_NE(svg.find("training time (s, excluding start-up and warm-up)"), std::string::npos);
  EXPECT_NE(svg.find(">4</text>"), std::string::npos) << svg;  // the axis ends at 4 s, not 6 s
  EXPECT_EQ(svg.find(">5</text>"), std::string::npos) << svg;
  EXPECT_EQ(svg.find(">6</text>"), std::string::npos) << svg;
}

TEST_F(ReportTest, NamedValidationSetsGetOneCurveEach) {
  std::string metrics = kMetrics;
  for (const char* val : {"\"val_loss\":3.7,", "\"val_loss\":3.8,"}) {
    const size_t at = metrics.find(val);
    ASSERT_NE(at, std::string::npos);
    const std::string loss = std::string(val).substr(11, 3);
    metrics.insert(at + std::string(val).size(),
                   "\"val_loss/web\":" + loss + "1,\"val_loss/code\":" + loss + "9,");
  }
  const RunFolder mixed = load_run_folder(run("mixed", "{kind: mha, n_heads: 4}", metrics));
  ASSERT_EQ(mixed.metrics.eval.size(), 2u);
  EXPECT_DOUBLE_EQ(mixed.metrics.eval[1].set_losses.at("code"), 3.89);
  const ReportFiles written = write_report({mixed}, dir / "out", "Sets");
  ASSERT_EQ(written.plots.size(), 5u);
  const std::string svg = files::read_file(written.plots.back());
  EXPECT_NE(written.plots.back().find("val_loss_sets_tokens.svg"), std::string::npos);
  EXPECT_EQ(testing::check_xml(svg).problem, "");
  EXPECT_NE(svg.find("mixed/web"), std::string::npos);
  EXPECT_NE(svg.find("mixed/code"), std::string::npos);
  // Runs without named sets keep their four plots (the test above).
}

TEST_F(ReportTest, ASweepFolderStandsForItsRunsSortedByName) {
  run("b", "{kind: mha, n_heads: 4}");
  run("a", "{kind: mha, n_heads: 4}");
  dir.write("sweep/report.md", "old");
  const std::vector<std::string> dirs = expand_run_dirs({dir / "sweep/"});
  EXPECT_EQ(dirs, (std::vector<std::string>{dir / "sweep/a", dir / "sweep/b"}));
  EXPECT_EQ(default_report_dir({dir / "sweep"}, dirs), dir / "sweep");
  EXPECT_EQ(default_report_dir({dir / "sweep/a", dir / "sweep/b"}, dirs), dir / "sweep");
}

TEST_F(ReportTest, ErrorsNameTheFolderOrFile) {
  files::make_directories(dir / "empty");
  EXPECT_NE(error_of([&] {
              expand_run_dirs({dir / "empty"});
            }).find("report: '" + dir / "empty" + "' has no metrics.jsonl"),
            std::string::npos);
  EXPECT_NE(error_of([&] { expand_run_dirs({dir / "nope"}); }).find(dir / "nope"),
            std::string::npos);

  dir.write("no_metrics/config.yaml", config_yaml("{kind: mha, n_heads: 4}"));
  EXPECT_NE(error_of([&] {
              load_run_folder(dir / "no_metrics");
            }).find("run folder '" + dir / "no_metrics" + "' has no metrics.jsonl"),
            std::string::npos);
  dir.write("no_config/metrics.jsonl", kMetrics);
  EXPECT_NE(error_of([&] {
              load_run_folder(dir / "no_config");
            }).find("run folder '" + dir / "no_config" + "' has no config.yaml"),
            std::string::npos);

  const std::string broken = run("broken", "{kind: mha, n_heads: 4}",
                                 "{\"kind\":\"start\",\"step\":0}\n{\"kind\":\"train\",\"st\n");
  EXPECT_NE(error_of([&] { load_run_folder(broken); }).find(broken + "/metrics.jsonl:2: "),
            std::string::npos);
  dir.write("bad_config/metrics.jsonl", kMetrics);
  dir.write("bad_config/config.yaml", "model: {d_modle: 3}\n");
  EXPECT_NE(error_of([&] {
              load_run_folder(dir / "bad_config");
            }).find(dir / "bad_config/config.yaml:1:"),
            std::string::npos);
}

}  // namespace
}  // namespace cca::sweep
