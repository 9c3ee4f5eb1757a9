#include "checkpoint/verify_run.h"

#include <vector>

#include "checkpoint/checkpoint_store.h"
#include "util/error.h"
#include "util/files.h"
#include "util/format.h"
#include "util/json.h"
#include "util/strings.h"

namespace cca::checkpoint_store {
namespace {

struct Checked {
  std::string name;
  Verification result;
};

// The checkpoint folders PATH stands for, and the root that holds them ("" for one checkpoint).
std::vector<std::string> checkpoints_of(const std::string& path, std::string& root) {
  if (is_complete(path) || files::is_regular_file(files::join(path, "manifest.json"))) {
    root.clear();
    return {path};
  }
  root = files::is_directory(files::join(path, "checkpoints")) ? files::join(path, "checkpoints")
                                                               : path;
  if (!files::is_directory(root)) {
    throw Error(
        format("verify '{}': no such folder (expected a run folder, its checkpoints "
               "folder, or one checkpoint)",
               path));
  }
  std::vector<std::string> found;
  for (const Entry& e : list(root)) found.push_back(e.path);
  return found;
}

std::vector<std::string> set_aside_folders(const std::string& root) {
  std::vector<std::string> aside;
  if (root.empty()) return aside;
  for (const std::string& name : files::list_directory(root)) {
    if (name.rfind(".corrupt-", 0) == 0) aside.push_back(files::join(root, name));
  }
  return aside;
}

std::string detail(const Verification& v) {
  if (v.status == Verification::Status::intact || v.status == Verification::Status::unverifiable) {
    std::string text =
        format("{:.3f} GB read in {:.2f} s", static_cast<double>(v.bytes) / 1e9, v.seconds);
    if (v.status == Verification::Status::unverifiable) {
      text = "written before checkpoints carried checksums: content not checked";
    }
    if (!v.unlisted.empty()) text += format(" (not in DONE: {})", join(v.unlisted, ", "));
    return text;
  }
  return join(v.problems, "; ");
}

}  // namespace

int verify_run(const std::string& path, bool json, std::ostream& out) {
  std::string root;
  const std::vector<std::string> folders = checkpoints_of(path, root);
  std::vector<Checked> checked;
  for (const std::string& folder : folders) {
    checked.push_back({files::file_name(folder), verify(folder)});
  }
  const std::vector<std::string> aside = set_aside_folders(root);
  int corrupt = 0, usable = 0;
  std::string newest_usable;
  for (const Checked& c : checked) {
    if (c.result.status == Verification::Status::corrupt) ++corrupt;
    if (c.result.usable()) {
      ++usable;
      newest_usable = c.name;
    }
  }
  const int status = corrupt > 0 || usable == 0 ? 1 : 0;
  if (json) {
    Json::Array items;
    for (const Checked& c : checked) {
      Json::Object item;
      item["checkpoint"] = c.name;
      item["status"] = status_name(c.result.status);
      item["bytes"] = static_cast<int64_t>(c.result.bytes);
      item["seconds"] = c.result.seconds;
      Json::Array problems;
      for (const std::string& p : c.result.problems) problems.push_back(Json(p));
      item["problems"] = Json(std::move(problems));
      items.push_back(Json(std::move(item)));
    }
    Json::Array aside_json;
    for (const std::string& a : aside) aside_json.push_back(Json(a));
    Json::Object report;
    report["path"] = path;
    report["checkpoints"] = Json(std::move(items));
    report["set_aside"] = Json(std::move(aside_json));
    report["newest_usable"] = newest_usable.empty() ? Json() : Json(newest_usable);
    report["ok"] = status == 0;
    out << Json(std::move(report)).dump(2) << "\n";
    return status;
  }
  if (checked.empty()) out << format("no checkpoints in {}\n", root.empty() ? path : root);
  for (const Checked& c : checked) {
    out << format("{:<16} {:<13} {}\n", c.name, status_name(c.result.status), detail(c.result));
  }
  for (const std::string& a : aside) {
    out << format("{:<16} {:<13} {} (see CORRUPT.txt inside)\n", "", "set aside", a);
  }
  out << format("{} checkpoint(s): {} usable, {} corrupt; newest usable: {}\n", checked.size(),
                usable, corrupt, newest_usable.empty() ? "none" : newest_usable);
  if (corrupt > 0) {
    out << "`cca-train --config ... --resume auto` resumes from the newest usable one and moves "
           "corrupt ones aside\n";
  }
  return status;
}

}  // namespace cca::checkpoint_store
