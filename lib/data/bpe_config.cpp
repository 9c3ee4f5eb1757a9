#include "data/bpe_config.h"

#include <algorithm>
#include <initializer_list>

#include "data/unicode_regex.h"
#include "util/error.h"
#include "util/format.h"
#include "util/json.h"

namespace cca::data {

const char* const kGpt2SplitPattern =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

namespace {

// "pre_tokenizer.pretokenizers[1]"
std::string item(const std::string& path, size_t index) {
  return format("{}[{}]", path, index);
}
std::string member(const std::string& path, const std::string& key) {
  return path + "." + key;
}

// Errors name the JSON path and the value found, and say what would have been accepted.
[[noreturn]] void unsupported(const std::string& path, const std::string& value,
                              const std::string& supported) {
  throw Error(format("{} is {}: not supported ({})", path, value, supported));
}

bool optional_bool(const Json& object, const std::string& key, const std::string& path,
                   bool fallback) {
  const Json* value = object.find(key);
  if (value == nullptr || value->is_null()) return fallback;
  return value->as_bool(member(path, key));
}

std::string type_of(const Json& object, const std::string& path) {
  return object.at("type", path).as_string(member(path, "type"));
}

// A string that must be null or empty: the feature it switches on is not implemented.
void require_empty(const Json& object, const std::string& key, const std::string& path,
                   const std::string& supported) {
  const Json* value = object.find(key);
  if (value == nullptr || value->is_null()) return;
  const std::string& text = value->as_string(member(path, key));
  if (!text.empty()) unsupported(member(path, key), "\"" + text + "\"", supported);
}

void parse_vocab(const Json& model, BpeConfig& out) {
  const Json::Object& vocab = model.at("vocab", "model").as_object("model.vocab");
  if (vocab.empty()) throw Error("model.vocab is empty");
  out.vocab.reserve(vocab.size());
  for (const auto& [token, id] : vocab) {
    out.vocab.emplace_back(
        token, static_cast<int32_t>(id.as_int("model.vocab[\"" + token + "\"]", 0, INT32_MAX - 1)));
  }
}

// "a b" (the older form) or ["a", "b"].
void parse_merges(const Json& model, BpeConfig& out) {
  const Json::Array& merges = model.at("merges", "model").as_array("model.merges");
  out.merges.reserve(merges.size());
  for (size_t i = 0; i < merges.size(); ++i) {
    const std::string path = item("model.merges", i);
    if (merges[i].is_string()) {
      const std::string& line = merges[i].as_string(path);
      const size_t space = line.find(' ');
      if (space == std::string::npos || line.find(' ', space + 1) != std::string::npos) {
        throw Error(format("{} is \"{}\": a merge is \"LEFT RIGHT\" (one space)", path, line));
      }
      out.merges.emplace_back(line.substr(0, space), line.substr(space + 1));
    } else {
      const Json::Array& pair = merges[i].as_array(path);
      if (pair.size() != 2) {
        throw Error(format("{} has {} items: a merge is [\"LEFT\", \"RIGHT\"]", path, pair.size()));
      }
      out.merges.emplace_back(pair[0].as_string(item(path, 0)), pair[1].as_string(item(path, 1)));
    }
  }
}

void parse_model(const Json& root, BpeConfig& out) {
  const Json& model = root.at("model", "tokenizer");
  const Json* type = model.find("type");
  if (type != nullptr && type->as_string("model.type") != "BPE") {
    unsupported("model.type", "\"" + type->as_string("model.type") + "\"",
                "only \"BPE\" models are read from tokenizer.json; use SentencePiece's .model "
                "file for unigram tokenizers");
  }
  if (optional_bool(model, "byte_fallback", "model", false)) {
    unsupported("model.byte_fallback", "true",
                "byte-fallback BPE is SentencePiece-style (e.g. Llama-2), not byte-level: pass "
                "its tokenizer.model instead");
  }
  const Json* dropout = model.find("dropout");
  if (dropout != nullptr && !dropout->is_null() && dropout->as_double("model.dropout") != 0) {
    unsupported("model.dropout", format("{}", dropout->as_double("model.dropout")),
                "BPE dropout makes encoding random; only null or 0");
  }
  require_empty(model, "continuing_subword_prefix", "model", "only null or \"\"");
  require_empty(model, "end_of_word_suffix", "model", "only null or \"\"");
  const Json* unk = model.find("unk_token");
  if (unk != nullptr && !unk->is_null()) out.unk_token = unk->as_string("model.unk_token");
  out.fuse_unk = optional_bool(model, "fuse_unk", "model", false);
  out.ignore_merges = optional_bool(model, "ignore_merges", "model", false);
  parse_vocab(model, out);
  parse_merges(model, out);
}

void parse_added_tokens(const Json& root, BpeConfig& out) {
  const Json* tokens = root.find("added_tokens");
  if (tokens == nullptr || tokens->is_null()) return;
  const Json::Array& list = tokens->as_array("added_tokens");
  for (size_t i = 0; i < list.size(); ++i) {
    const std::string path = item("added_tokens", i);
    const Json& t = list[i];
    BpeAddedToken token;
    token.id = static_cast<int32_t>(t.at("id", path).as_int(member(path, "id"), 0, INT32_MAX - 1));
    token.content = t.at("content", path).as_string(member(path, "content"));
    token.special = optional_bool(t, "special", path, false);
    token.single_word = optional_bool(t, "single_word", path, false);
    token.lstrip = optional_bool(t, "lstrip", path, false);
    token.rstrip = optional_bool(t, "rstrip", path, false);
    token.normalized = optional_bool(t, "normalized", path, !token.special);
    if (token.content.empty()) continue;  // `tokenizers` ignores empty added tokens too
    out.added_tokens.push_back(std::move(token));
  }
}

void parse_normalizer(const Json& node, const std::string& path, BpeConfig& out) {
  if (node.is_null()) return;
  const std::string type = type_of(node, path);
  if (type == "Sequence") {
    const Json::Array& steps = node.at("normalizers", path).as_array(member(path, "normalizers"));
    for (size_t i = 0; i < steps.size(); ++i) {
      parse_normalizer(steps[i], item(member(path, "normalizers"), i), out);
    }
  } else if (type == "NFC") {
    out.normalizers.push_back(UnicodeForm::nfc);
  } else if (type == "NFD") {
    out.normalizers.push_back(UnicodeForm::nfd);
  } else if (type == "NFKC") {
    out.normalizers.push_back(UnicodeForm::nfkc);
  } else if (type == "NFKD") {
    out.normalizers.push_back(UnicodeForm::nfkd);
  } else {
    unsupported(member(path, "type"), "\"" + type + "\"",
                "normalizers: NFC, NFD, NFKC, NFKD and Sequence of them");
  }
}

SplitBehavior parse_behavior(const Json& node, const std::string& path) {
  const std::string key = member(path, "behavior");
  const std::string& name = node.at("behavior", path).as_string(key);
  if (name == "Isolated") return SplitBehavior::isolated;
  if (name == "Removed") return SplitBehavior::removed;
  if (name == "MergedWithPrevious") return SplitBehavior::merged_with_previous;
  if (name == "MergedWithNext") return SplitBehavior::merged_with_next;
  if (name == "Contiguous") return SplitBehavior::contiguous;
  unsupported(key, "\"" + name + "\"",
              "Isolated, Removed, MergedWithPrevious, MergedWithNext, Contiguous");
}

PreTokenizerStep parse_split(const Json& node, const std::string& path) {
  PreTokenizerStep step;
  const Json& pattern = node.at("pattern", path);
  const std::string pattern_path = member(path, "pattern");
  if (const Json* regex = pattern.find("Regex")) {
    step.pattern = regex->as_string(member(pattern_path, "Regex"));
  } else if (const Json* literal = pattern.find("String")) {
    step.pattern = quote_regex(literal->as_string(member(pattern_path, "String")));
  } else {
    throw Error(format("{} must be {{\"Regex\": ...}} or {{\"String\": ...}}", pattern_path));
  }
  step.behavior = parse_behavior(node, path);
  step.invert = optional_bool(node, "invert", path, false);
  return step;
}

void parse_pre_tokenizer(const Json& node, const std::string& path, BpeConfig& out) {
  const std::string type = type_of(node, path);
  if (type == "Sequence") {
    const std::string list = member(path, "pretokenizers");
    const Json::Array& steps = node.at("pretokenizers", path).as_array(list);
    for (size_t i = 0; i < steps.size(); ++i) parse_pre_tokenizer(steps[i], item(list, i), out);
  } else if (type == "Split") {
    out.pre_tokenizer.push_back(parse_split(node, path));
  } else if (type == "Digits") {
    // `tokenizers` cuts around numeric characters: one piece per digit, or per run of digits.
    PreTokenizerStep step;
    const bool single = optional_bool(node, "individual_digits", path, false);
    step.pattern = single ? "\\p{N}" : "\\p{N}+";
    out.pre_tokenizer.push_back(step);
  } else if (type == "ByteLevel") {
    PreTokenizerStep step;
    step.kind = PreTokenizerStep::Kind::byte_level;
    step.add_prefix_space = optional_bool(node, "add_prefix_space", path, true);
    step.use_regex = optional_bool(node, "use_regex", path, true);
    if (step.use_regex) step.pattern = kGpt2SplitPattern;
    out.pre_tokenizer.push_back(step);
  } else {
    unsupported(member(path, "type"), "\"" + type + "\"",
                "pre-tokenizers: ByteLevel, Split, Digits and Sequence of them");
  }
}

void check_pre_tokenizer_chain(const BpeConfig& config) {
  const auto is_byte_level = [](const PreTokenizerStep& s) {
    return s.kind == PreTokenizerStep::Kind::byte_level;
  };
  const auto count =
      std::count_if(config.pre_tokenizer.begin(), config.pre_tokenizer.end(), is_byte_level);
  if (count != 1 || !is_byte_level(config.pre_tokenizer.back())) {
    throw Error(
        "pre_tokenizer: a byte-level BPE needs exactly one ByteLevel pre-tokenizer, as the last "
        "step (alone, or last in a Sequence after Split/Digits steps)");
  }
}

void check_decoder(const Json& node, const std::string& path) {
  if (node.is_null()) {
    throw Error("decoder is null: a byte-level BPE needs the ByteLevel decoder");
  }
  const std::string type = type_of(node, path);
  if (type == "ByteLevel") return;
  if (type == "Sequence") {
    const std::string list = member(path, "decoders");
    const Json::Array& steps = node.at("decoders", path).as_array(list);
    if (steps.size() == 1) return check_decoder(steps[0], item(list, 0));
  }
  unsupported(member(path, "type"), "\"" + type + "\"",
              "decoders: ByteLevel (alone or as the only step of a Sequence)");
}

int32_t special_id(const Json& processor, const std::string& key, const std::string& path) {
  const Json& pair = processor.at(key, path);
  const Json::Array& items = pair.as_array(member(path, key));
  if (items.size() != 2) throw Error(format("{} must be [\"TOKEN\", ID]", member(path, key)));
  return static_cast<int32_t>(items[1].as_int(item(member(path, key), 1), 0, INT32_MAX - 1));
}

// The template's special tokens before $A begin a document; those after it end one.
void parse_template(const Json& node, const std::string& path, BpeConfig& out) {
  const std::string single = member(path, "single");
  const Json::Array& pieces = node.at("single", path).as_array(single);
  const std::string specials = member(path, "special_tokens");
  bool seen_sequence = false;
  for (size_t i = 0; i < pieces.size(); ++i) {
    if (pieces[i].find("Sequence") != nullptr) {
      seen_sequence = true;
      continue;
    }
    const Json* special = pieces[i].find("SpecialToken");
    if (special == nullptr) continue;
    const std::string& name = special->at("id", item(single, i)).as_string(item(single, i));
    const Json& entry = node.at("special_tokens", path).at(name, specials);
    const Json::Array& ids = entry.at("ids", member(specials, name)).as_array("ids");
    if (ids.size() != 1) continue;
    const auto id = static_cast<int32_t>(ids[0].as_int(member(specials, name), 0, INT32_MAX - 1));
    (seen_sequence ? out.eos_id : out.bos_id) = id;
  }
}

void parse_post_processor(const Json& node, const std::string& path, BpeConfig& out) {
  if (node.is_null()) return;
  const std::string type = type_of(node, path);
  if (type == "ByteLevel") return;  // offsets only
  if (type == "TemplateProcessing") return parse_template(node, path, out);
  if (type == "RobertaProcessing" || type == "BertProcessing") {
    out.bos_id = special_id(node, "cls", path);
    out.eos_id = special_id(node, "sep", path);
    return;
  }
  if (type == "Sequence") {
    const std::string list = member(path, "processors");
    const Json::Array& steps = node.at("processors", path).as_array(list);
    for (size_t i = 0; i < steps.size(); ++i) parse_post_processor(steps[i], item(list, i), out);
    return;
  }
  unsupported(member(path, "type"), "\"" + type + "\"",
              "post-processors: ByteLevel, TemplateProcessing, RobertaProcessing, "
              "BertProcessing and Sequence of them");
}

int32_t find_special(const BpeConfig& config, std::initializer_list<const char*> names) {
  for (const char* name : names) {
    for (const BpeAddedToken& t : config.added_tokens) {
      if (t.special && t.content == name) return t.id;
    }
  }
  return -1;
}

// tokenizer.json does not say which token begins or ends a document (tokenizer_config.json
// does); the post-processor's template tells for some models, the usual names for the rest.
// GPT-2's single <|endoftext|> serves as both, as in llm.c's shards.
void choose_document_tokens(BpeConfig& config) {
  if (config.eos_id < 0) {
    config.eos_id = find_special(config, {"<|end_of_text|>", "<|endoftext|>", "</s>", "<eos>"});
  }
  if (config.bos_id < 0) {
    config.bos_id = find_special(config, {"<|begin_of_text|>", "<s>", "<bos>", "<|startoftext|>"});
  }
  if (config.bos_id < 0) config.bos_id = find_special(config, {"<|endoftext|>"});
}

}  // namespace

BpeConfig parse_bpe_config(const std::string& text, const std::string& path) {
  const Json root = parse_json(text, path);
  BpeConfig config;
  try {
    root.as_object("the top level");
    parse_model(root, config);
    parse_added_tokens(root, config);
    const Json null;
    const Json* normalizer = root.find("normalizer");
    parse_normalizer(normalizer ? *normalizer : null, "normalizer", config);
    const Json* pre = root.find("pre_tokenizer");
    if (pre == nullptr || pre->is_null()) {
      throw Error("pre_tokenizer is null: a byte-level BPE needs the ByteLevel pre-tokenizer");
    }
    parse_pre_tokenizer(*pre, "pre_tokenizer", config);
    check_pre_tokenizer_chain(config);
    const Json* decoder = root.find("decoder");
    check_decoder(decoder ? *decoder : null, "decoder");
    const Json* post = root.find("post_processor");
    parse_post_processor(post ? *post : null, "post_processor", config);
    choose_document_tokens(config);
  } catch (const Error& e) {
    throw Error(format("{}: {}", path, e.what()));
  }
  return config;
}

}  // namespace cca::data
