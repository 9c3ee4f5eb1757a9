// A small JSON reader and writer for manifests, checkpoints, metrics and JSONL corpora. Written
// here rather than taken from a library so hostile input has a known bound: nesting depth is
// limited, every read is bounds-checked and every failure is a cca::Error with the byte offset.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace cca {

class Json {
 public:
  enum class Type { null, boolean, number, string, array, object };
  using Array = std::vector<Json>;
  using Object = std::map<std::string, Json>;

  Json() = default;
  Json(bool value) : type_(Type::boolean), bool_(value) {}  // NOLINT: implicit by design
  Json(double value) : type_(Type::number), number_(value) {}
  Json(int64_t value);
  Json(int value) : Json(static_cast<int64_t>(value)) {}
  Json(const char* value) : type_(Type::string), string_(value) {}
  Json(std::string value) : type_(Type::string), string_(std::move(value)) {}
  Json(Array value);
  Json(Object value);

  Type type() const { return type_; }
  bool is_null() const { return type_ == Type::null; }
  bool is_string() const { return type_ == Type::string; }
  bool is_object() const { return type_ == Type::object; }
  bool is_array() const { return type_ == Type::array; }

  // Accessors that throw cca::Error("<what> must be ...") on a type mismatch; `what` names the
  // field for the message, e.g. "splits.train.tokens".
  bool as_bool(const std::string& what) const;
  double as_double(const std::string& what) const;
  // Integral numbers only (no fraction, within int64); `min`/`max` bound the accepted range.
  int64_t as_int(const std::string& what, int64_t min = INT64_MIN, int64_t max = INT64_MAX) const;
  const std::string& as_string(const std::string& what) const;
  const Array& as_array(const std::string& what) const;
  const Object& as_object(const std::string& what) const;

  // Object member lookup: nullptr when absent (or when this is not an object).
  const Json* find(const std::string& key) const;
  // Object member lookup that throws cca::Error("missing field <what>.<key>").
  const Json& at(const std::string& key, const std::string& what) const;

  // Compact for JSONL (indent < 0) or pretty with `indent` spaces per level.
  std::string dump(int indent = -1) const;

 private:
  void dump_to(std::string& out, int indent, int level) const;

  Type type_ = Type::null;
  bool bool_ = false;
  double number_ = 0;
  bool integral_ = false;  // number written as an integer, kept exact in int_
  int64_t int_ = 0;
  std::string string_;
  std::shared_ptr<Array> array_;
  std::shared_ptr<Object> object_;

  friend class JsonParser;
};

// Parses one JSON document; trailing non-space text is an error. Throws cca::Error
// "<source>: invalid JSON at byte N: <problem>".
Json parse_json(std::string_view text, const std::string& source);

// Appends `text` as a JSON string literal (quotes included), escaping as RFC 8259 requires.
void append_json_string(std::string& out, std::string_view text);

}  // namespace cca
