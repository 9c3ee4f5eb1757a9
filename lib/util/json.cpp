#include "util/json.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>

#include "util/error.h"
#include "util/format.h"
#include "util/strings.h"

namespace cca {
namespace {

// The shortest text that reads back as the same double, with ".0" on whole numbers so readers
// that type their fields (Python dataclasses, transformers' configs) still see a float.
std::string real_text(double value) {
  std::string text;
  for (const char* pattern : {"{:.15g}", "{:.16g}", "{:.17g}"}) {
    text = format(pattern, value);
    if (std::strtod(text.c_str(), nullptr) == value) break;
  }
  if (std::isfinite(value) && text.find_first_of(".e") == std::string::npos) text += ".0";
  return text;
}

}  // namespace

Json::Json(int64_t value)
    : type_(Type::number), number_(static_cast<double>(value)), integral_(true), int_(value) {}
Json::Json(Array value) : type_(Type::array), array_(std::make_shared<Array>(std::move(value))) {}
Json::Json(Object value)
    : type_(Type::object), object_(std::make_shared<Object>(std::move(value))) {}

bool Json::as_bool(const std::string& what) const {
  if (type_ != Type::boolean) throw Error(what + " must be true or false");
  return bool_;
}

double Json::as_double(const std::string& what) const {
  if (type_ != Type::number) throw Error(what + " must be a number");
  return number_;
}

int64_t Json::as_int(const std::string& what, int64_t min, int64_t max) const {
  if (type_ != Type::number || !integral_) throw Error(what + " must be an integer");
  if (int_ < min || int_ > max) {
    throw Error(format("{} is {}, outside the allowed range [{}, {}]", what, int_, min, max));
  }
  return int_;
}

const std::string& Json::as_string(const std::string& what) const {
  if (type_ != Type::string) throw Error(what + " must be a string");
  return string_;
}

const Json::Array& Json::as_array(const std::string& what) const {
  if (type_ != Type::array) throw Error(what + " must be an array");
  return *array_;
}

const Json::Object& Json::as_object(const std::string& what) const {
  if (type_ != Type::object) throw Error(what + " must be an object");
  return *object_;
}

const Json* Json::find(const std::string& key) const {
  if (type_ != Type::object) return nullptr;
  auto it = object_->find(key);
  return it == object_->end() ? nullptr : &it->second;
}

const Json& Json::at(const std::string& key, const std::string& what) const {
  const Json* found = find(key);
  if (found == nullptr) throw Error("missing field " + (what.empty() ? key : what + "." + key));
  return *found;
}

void append_json_string(std::string& out, std::string_view text) {
  append_quoted(out, text);
}

void Json::dump_to(std::string& out, int indent, int level) const {
  auto newline = [&](int depth) {
    if (indent < 0) return;
    out += '\n';
    out.append(static_cast<size_t>(indent * depth), ' ');
  };
  switch (type_) {
    case Type::null:
      out += "null";
      break;
    case Type::boolean:
      out += bool_ ? "true" : "false";
      break;
    case Type::number:
      out += integral_ ? std::to_string(int_) : real_text(number_);
      break;
    case Type::string:
      append_json_string(out, string_);
      break;
    case Type::array: {
      out += '[';
      for (size_t i = 0; i < array_->size(); ++i) {
        if (i > 0) out += ',';
        newline(level + 1);
        (*array_)[i].dump_to(out, indent, level + 1);
      }
      if (!array_->empty()) newline(level);
      out += ']';
      break;
    }
    case Type::object: {
      out += '{';
      bool first = true;
      for (const auto& [key, value] : *object_) {
        if (!first) out += ',';
        first = false;
        newline(level + 1);
        append_json_string(out, key);
        out += indent < 0 ? ":" : ": ";
        value.dump_to(out, indent, level + 1);
      }
      if (!object_->empty()) newline(level);
      out += '}';
      break;
    }
  }
}

std::string Json::dump(int indent) const {
  std::string out;
  dump_to(out, indent, 0);
  return out;
}

// Recursive descent with an explicit depth bound so a hostile "[[[[..." cannot exhaust the stack.
class JsonParser {
 public:
  JsonParser(std::string_view text, const std::string& source) : text_(text), source_(source) {}

  Json parse_document() {
    Json value = parse_value(0);
    skip_space();
    if (pos_ != text_.size()) fail("unexpected text after the value");
    return value;
  }

 private:
  static constexpr int kMaxDepth = 64;

  [[noreturn]] void fail(const std::string& problem) const {
    const char* where = pos_ >= text_.size() ? " (unexpected end of input)" : "";
    throw Error(format("{}: invalid JSON at byte {}: {}{}", source_, pos_, problem, where));
  }

  void skip_space() {
    while (pos_ < text_.size() && (text_[pos_] == ' ' || text_[pos_] == '\t' ||
                                   text_[pos_] == '\n' || text_[pos_] == '\r')) {
      ++pos_;
    }
  }

  bool consume(std::string_view word) {
    if (text_.substr(pos_, word.size()) != word) return false;
    pos_ += word.size();
    return true;
  }

  Json parse_value(int depth) {
    if (depth > kMaxDepth) fail(format("nesting deeper than {} levels", kMaxDepth));
    skip_space();
    if (pos_ >= text_.size()) fail("unexpected end of input");
    const char c = text_[pos_];
    if (c == '{') return parse_object(depth);
    if (c == '[') return parse_array(depth);
    if (c == '"') return Json(parse_string());
    if (c == '-' || (c >= '0' && c <= '9')) return parse_number();
    if (consume("true")) return Json(true);
    if (consume("false")) return Json(false);
    if (consume("null")) return Json();
    fail(format("unexpected character '{}'", printable(c)));
  }

  static std::string printable(char c) {
    const auto u = static_cast<unsigned char>(c);
    if (u >= 0x20 && u < 0x7f) return std::string(1, c);
    return format("\\x{:x}", static_cast<int>(u));
  }

  Json parse_object(int depth) {
    ++pos_;  // '{'
    Json::Object members;
    skip_space();
    if (pos_ < text_.size() && text_[pos_] == '}') {
      ++pos_;
      return Json(std::move(members));
    }
    for (;;) {
      skip_space();
      if (pos_ >= text_.size() || text_[pos_] != '"') fail("expected a string key");
      std::string key = parse_string();
      skip_space();
      if (pos_ >= text_.size() || text_[pos_] != ':') fail("expected ':' after a key");
      ++pos_;
      Json value = parse_value(depth + 1);
      if (!members.emplace(key, std::move(value)).second) fail("duplicate key \"" + key + "\"");
      skip_space();
      if (pos_ < text_.size() && text_[pos_] == ',') {
        ++pos_;
        continue;
      }
      if (pos_ < text_.size() && text_[pos_] == '}') {
        ++pos_;
        return Json(std::move(members));
      }
      fail("expected ',' or '}' in an object");
    }
  }

  Json parse_array(int depth) {
    ++pos_;  // '['
    Json::Array items;
    skip_space();
    if (pos_ < text_.size() && text_[pos_] == ']') {
      ++pos_;
      return Json(std::move(items));
    }
    for (;;) {
      items.push_back(parse_value(depth + 1));
      skip_space();
      if (pos_ < text_.size() && text_[pos_] == ',') {
        ++pos_;
        continue;
      }
      if (pos_ < text_.size() && text_[pos_] == ']') {
        ++pos_;
        return Json(std::move(items));
      }
      fail("expected ',' or ']' in an array");
    }
  }

  unsigned parse_hex4() {
    if (text_.size() - pos_ < 4) fail("truncated \\u escape");
    unsigned v = 0;
    for (int i = 0; i < 4; ++i) {
      const char c = text_[pos_++];
      v <<= 4;
      if (c >= '0' && c <= '9') {
        v |= static_cast<unsigned>(c - '0');
      } else if (c >= 'a' && c <= 'f') {
        v |= static_cast<unsigned>(c - 'a' + 10);
      } else if (c >= 'A' && c <= 'F') {
        v |= static_cast<unsigned>(c - 'A' + 10);
      } else {
        fail("bad hex digit in a \\u escape");
      }
    }
    return v;
  }

  void parse_escape(std::string& out) {
    if (pos_ >= text_.size()) fail("unterminated string");
    const char e = text_[pos_++];
    switch (e) {
      case '"':
        out += '"';
        return;
      case '\\':
        out += '\\';
        return;
      case '/':
        out += '/';
        return;
      case 'b':
        out += '\b';
        return;
      case 'f':
        out += '\f';
        return;
      case 'n':
        out += '\n';
        return;
      case 'r':
        out += '\r';
        return;
      case 't':
        out += '\t';
        return;
      case 'u':
        break;
      default:
        --pos_;
        fail(format("unknown escape '\\{}'", printable(e)));
    }
    unsigned cp = parse_hex4();
    if (cp >= 0xD800 && cp < 0xDC00 && text_.substr(pos_, 2) == "\\u") {
      const size_t save = pos_;
      pos_ += 2;
      const unsigned low = parse_hex4();
      if (low >= 0xDC00 && low < 0xE000) {
        cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
      } else {
        pos_ = save;  // not a pair: keep the high surrogate alone, reread the next escape
      }
    }
    // A lone surrogate is kept as its 3-byte (invalid) UTF-8 form, so the UTF-8 check downstream
    // counts it like any other invalid text instead of the parser silently altering it.
    append_utf8(out, cp);
  }

  std::string parse_string() {
    ++pos_;  // opening quote
    std::string out;
    for (;;) {
      const size_t start = pos_;
      while (pos_ < text_.size() && text_[pos_] != '"' && text_[pos_] != '\\' &&
             static_cast<unsigned char>(text_[pos_]) >= 0x20) {
        ++pos_;
      }
      out.append(text_.data() + start, pos_ - start);
      if (pos_ >= text_.size()) fail("unterminated string");
      const char c = text_[pos_];
      if (c == '"') {
        ++pos_;
        return out;
      }
      if (c != '\\') fail("control character in a string (must be escaped)");
      ++pos_;
      parse_escape(out);
    }
  }

  Json parse_number() {
    const size_t start = pos_;
    bool integral = true;
    if (text_[pos_] == '-') ++pos_;
    if (pos_ >= text_.size() || !isdigit(text_[pos_])) fail("expected a digit");
    if (text_[pos_] == '0') {
      ++pos_;
    } else {
      while (pos_ < text_.size() && isdigit(text_[pos_])) ++pos_;
    }
    if (pos_ < text_.size() && text_[pos_] == '.') {
      integral = false;
      ++pos_;
      if (pos_ >= text_.size() || !isdigit(text_[pos_])) fail("expected a digit after '.'");
      while (pos_ < text_.size() && isdigit(text_[pos_])) ++pos_;
    }
    if (pos_ < text_.size() && (text_[pos_] == 'e' || text_[pos_] == 'E')) {
      integral = false;
      ++pos_;
      if (pos_ < text_.size() && (text_[pos_] == '+' || text_[pos_] == '-')) ++pos_;
      if (pos_ >= text_.size() || !isdigit(text_[pos_])) fail("expected a digit in the exponent");
      while (pos_ < text_.size() && isdigit(text_[pos_])) ++pos_;
    }
    const std::string literal(text_.substr(start, pos_ - start));
    if (integral) {
      errno = 0;
      char* end = nullptr;
      const long long v = std::strtoll(literal.c_str(), &end, 10);
      if (errno == 0 && end == literal.c_str() + literal.size()) return Json(int64_t{v});
    }
    const double d = std::strtod(literal.c_str(), nullptr);
    if (!std::isfinite(d)) fail("number out of range");
    return Json(d);
  }

  static bool isdigit(char c) { return c >= '0' && c <= '9'; }

  std::string_view text_;
  const std::string& source_;
  size_t pos_ = 0;
};

Json parse_json(std::string_view text, const std::string& source) {
  return JsonParser(text, source).parse_document();
}

}  // namespace cca
