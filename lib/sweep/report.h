// `cca-train report` and the end of `cca-train sweep`: compares runs side by side in
// report.md, a self-contained report.html (plots inlined), report.json (every number at full
// precision, for scripts and tests) and one SVG per plot.
#pragma once

#include <string>
#include <vector>

#include "sweep/run_folder.h"

namespace cca::sweep {

struct ReportFiles {
  std::string markdown;
  std::string html;
  std::string json;
  std::vector<std::string> plots;
};

// Writes the report of `runs` (in this order, one colour each) into `out_dir` (created).
ReportFiles write_report(const std::vector<RunFolder>& runs, const std::string& out_dir,
                         const std::string& title);

// Where `cca-train report` writes without --out: the one folder named (a sweep's out_dir or a
// single run), else the parent the run folders share. Throws when there is none.
std::string default_report_dir(const std::vector<std::string>& arguments,
                               const std::vector<std::string>& run_dirs);

}  // namespace cca::sweep
