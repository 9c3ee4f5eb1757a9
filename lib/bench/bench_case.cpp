#include "bench/bench_case.h"

#include <c10/util/Exception.h>

#include "ops/device.h"
#include "util/error.h"
#include "util/log.h"

namespace cca::bench {
namespace {

std::string first_line(const std::string& text) {
  return text.substr(0, text.find('\n'));
}

Json::Object failed(const at::Device& device, Json::Object outcome, const char* status,
                    const std::string& message) {
  reset_peak_memory(device);  // the failed case's tensors are gone; give their blocks back
  outcome["status"] = status;
  outcome["error"] = first_line(message);
  log::warn("bench case {}: {}: {}", Json(outcome).dump(), status, first_line(message));
  return outcome;
}

}  // namespace

Json::Object run_fallible_case(const at::Device& device, const Json::Object& identity,
                               const std::function<Json::Object()>& body) {
  reset_peak_memory(device);
  Json::Object outcome = identity;
  try {
    for (auto& [key, value] : body()) outcome[key] = value;
    synchronize(device);  // an asynchronous failure belongs to this case
  } catch (const c10::OutOfMemoryError& e) {
    return failed(device, identity, "out_of_memory", e.what_without_backtrace());
  } catch (const c10::Error& e) {
    return failed(device, identity, "error", e.what_without_backtrace());
  } catch (const Error& e) {
    return failed(device, identity, "error", e.what());
  }
  outcome["status"] = "ok";
  outcome["peak_memory_gib"] = memory_use(device).peak_bytes / (1024.0 * 1024.0 * 1024.0);
  return outcome;
}

bool case_succeeded(const Json::Object& outcome) {
  const auto it = outcome.find("status");
  return it != outcome.end() && it->second.as_string("status") == "ok";
}

}  // namespace cca::bench
