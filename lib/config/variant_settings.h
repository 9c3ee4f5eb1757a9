// The values of the keys that attention variants declare for themselves (attention.mla.*,
// attention.cca.*, attention.swa.*), stored by key path. A variant's descriptor
// (lib/config/variants/) declares each key's type, default and help; the schema fills the values
// like any other key's, and the descriptor reads them back typed. Keeping them out of the
// Config struct is what lets a new variant add keys without touching config.h.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <variant>

namespace cca {

using SettingValue = std::variant<int64_t, double, bool, std::string, std::optional<int64_t>>;

class VariantSettings {
 public:
  // The value of `path` as T, created (value-initialised) when absent. Throws cca::Error when the
  // key holds another type: a descriptor reading its key with the wrong type is a programming
  // error that must not pass silently.
  template <class T>
  T& slot(const std::string& path) {
    auto [it, created] = values_.try_emplace(path, T{});
    if (!created && !std::holds_alternative<T>(it->second)) type_mismatch(path);
    return std::get<T>(it->second);
  }

  int64_t integer(const std::string& path) const { return get<int64_t>(path); }
  double real(const std::string& path) const { return get<double>(path); }
  bool flag(const std::string& path) const { return get<bool>(path); }
  const std::string& text(const std::string& path) const { return get<std::string>(path); }
  std::optional<int64_t> optional_integer(const std::string& path) const {
    return get<std::optional<int64_t>>(path);
  }

  // Typed writes for code that builds configs (tests, benchmarks). An integer may be written to
  // an "int or null" key.
  void set(const std::string& path, int64_t value);
  void set(const std::string& path, int value) { set(path, static_cast<int64_t>(value)); }
  void set(const std::string& path, double value) { slot<double>(path) = value; }
  void set(const std::string& path, bool value) { slot<bool>(path) = value; }
  void set(const std::string& path, const std::string& value) { slot<std::string>(path) = value; }
  void set(const std::string& path, const char* value) { set(path, std::string(value)); }
  void set(const std::string& path, std::nullopt_t) { slot<std::optional<int64_t>>(path).reset(); }

  bool contains(const std::string& path) const { return values_.count(path) > 0; }
  bool operator==(const VariantSettings& other) const { return values_ == other.values_; }
  bool operator!=(const VariantSettings& other) const { return !(*this == other); }

 private:
  template <class T>
  const T& get(const std::string& path) const {
    auto it = values_.find(path);
    if (it == values_.end()) missing(path);
    if (!std::holds_alternative<T>(it->second)) type_mismatch(path);
    return std::get<T>(it->second);
  }
  [[noreturn]] static void missing(const std::string& path);
  [[noreturn]] static void type_mismatch(const std::string& path);

  std::map<std::string, SettingValue> values_;
};

}  // namespace cca
