#include "config/variant_settings.h"

#include "util/error.h"

namespace cca {

void VariantSettings::set(const std::string& path, int64_t value) {
  auto it = values_.find(path);
  if (it != values_.end() && std::holds_alternative<std::optional<int64_t>>(it->second)) {
    it->second = std::optional<int64_t>(value);
    return;
  }
  slot<int64_t>(path) = value;
}

void VariantSettings::missing(const std::string& path) {
  throw Error("internal error: attention setting '" + path +
              "' is not set (is the key declared by a registered variant?)");
}

void VariantSettings::type_mismatch(const std::string& path) {
  throw Error("internal error: attention setting '" + path + "' read or written with another type");
}

}  // namespace cca
