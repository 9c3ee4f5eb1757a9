#include "sweep/report_table.h"

#include <algorithm>

#include "sweep/svg_plot.h"
#include "util/files.h"
#include "util/strings.h"

namespace cca::sweep {
namespace {

std::vector<std::string> path_parts(const std::string& path) {
  std::vector<std::string> parts;
  size_t begin = 0;
  while (begin <= path.size()) {
    const size_t end = std::min(path.find('/', begin), path.size());
    if (end > begin) parts.push_back(path.substr(begin, end - begin));
    begin = end + 1;
  }
  return parts;
}

}  // namespace

void drop_column(Table& t, size_t column) {
  t.header.erase(t.header.begin() + static_cast<std::ptrdiff_t>(column));
  t.numeric.erase(t.numeric.begin() + static_cast<std::ptrdiff_t>(column));
  for (auto& row : t.rows) row.erase(row.begin() + static_cast<std::ptrdiff_t>(column));
}

void drop_constant_columns(Table& t, size_t keep) {
  if (t.rows.size() < 2) return;
  for (size_t c = t.header.size(); c-- > 1 + keep;) {
    const bool constant = std::all_of(t.rows.begin(), t.rows.end(),
                                      [&](const auto& row) { return row[c] == t.rows[0][c]; });
    if (!constant) continue;
    t.same.insert(t.same.begin(), t.header[c] + " " + t.rows[0][c]);
    drop_column(t, c);
  }
}

std::string footnote(const Table& t) {
  std::vector<std::string> parts;
  if (!t.same.empty()) parts.push_back("Same in every run: " + join(t.same, "; ") + ".");
  for (const std::string& r : t.remarks) parts.push_back(r + ".");
  return join(parts, " ");
}

std::string markdown_table(const Table& t) {
  const auto cell = [](std::string text) {
    for (size_t at = text.find('|'); at != std::string::npos; at = text.find('|', at + 2)) {
      text.replace(at, 1, "\\|");
    }
    return text;
  };
  std::string out = "|";
  for (const std::string& h : t.header) out += " " + cell(h) + " |";
  out += "\n|";
  for (bool numeric : t.numeric) out += numeric ? " ---: |" : " --- |";
  out += "\n";
  for (size_t r = 0; r < t.rows.size(); ++r) {
    out += "|";
    for (size_t c = 0; c < t.rows[r].size(); ++c) {
      const bool link = c == 0 && r < t.links.size() && !t.links[r].empty();
      const std::string text = cell(t.rows[r][c]);
      out += " " + (link ? "[" + text + "](" + t.links[r] + ")" : text) + " |";
    }
    out += "\n";
  }
  return out;
}

std::string html_table(const Table& t) {
  std::string out = "<table>\n<tr>";
  for (const std::string& h : t.header) {
    std::string text = xml_escape(h);  // config keys may break after their dots
    for (size_t at = text.find('.'); at != std::string::npos; at = text.find('.', at + 6)) {
      text.insert(at + 1, "<wbr>");
    }
    out += "<th>" + text + "</th>";
  }
  out += "</tr>\n";
  for (size_t r = 0; r < t.rows.size(); ++r) {
    const auto& row = t.rows[r];
    out += "<tr>";
    for (size_t i = 0; i < row.size(); ++i) {
      out += t.numeric[i] ? "<td class=\"n\">" : "<td>";
      const bool link = i == 0 && r < t.links.size() && !t.links[r].empty();
      out += link ? "<a href=\"" + xml_escape(t.links[r]) + "\">" + xml_escape(row[i]) + "</a></td>"
                  : xml_escape(row[i]) + "</td>";
    }
    out += "</tr>\n";
  }
  return out + "</table>\n";
}

// `target` as a path relative to the folder `from` (both resolved on disk); `target` itself when
// either cannot be resolved.
std::string relative_path(const std::string& target, const std::string& from) {
  const std::string t = files::canonical_path(target), f = files::canonical_path(from);
  if (t.empty() || f.empty()) return target;
  const std::vector<std::string> to = path_parts(t), base = path_parts(f);
  size_t common = 0;
  while (common < to.size() && common < base.size() && to[common] == base[common]) ++common;
  std::vector<std::string> parts(base.size() - common, "..");
  parts.insert(parts.end(), to.begin() + static_cast<std::ptrdiff_t>(common), to.end());
  return parts.empty() ? "." : join(parts, "/");
}

}  // namespace cca::sweep
