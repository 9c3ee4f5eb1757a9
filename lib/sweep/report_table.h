// The tables of a report (report.h): rendered as Markdown and as HTML, with columns that say
// nothing (the same in every row) moved to a footnote, and the first cell of a row linking to a
// file (a run's config.yaml) by a path relative to the report.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace cca::sweep {

// One table, rendered both as Markdown and as HTML.
struct Table {
  std::vector<std::string> header{};
  std::vector<bool> numeric{};  // right-aligned columns
  std::vector<std::vector<std::string>> rows{};
  std::vector<std::string> links{};    // per row, where its first cell links to ("": nowhere)
  std::vector<std::string> same{};     // "column value" of columns dropped as the same in every row
  std::vector<std::string> remarks{};  // why other columns were dropped
};

void drop_column(Table& t, size_t column);

// Columns (after the first, and the first `keep` more) whose value is the same in every row say
// nothing about the difference between runs: they go to the footnote.
void drop_constant_columns(Table& t, size_t keep = 0);

// "Same in every run: …." and the remarks, as one paragraph ("" when there is nothing).
std::string footnote(const Table& t);

std::string markdown_table(const Table& t);
// Headers may break after a dot (config keys); cells do not wrap.
std::string html_table(const Table& t);

// `target` as a path relative to the folder `from` (both resolved on disk); `target` itself when
// either cannot be resolved.
std::string relative_path(const std::string& target, const std::string& from);

}  // namespace cca::sweep
