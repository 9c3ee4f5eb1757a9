#include "data/mixture.h"

#include <algorithm>
#include <sstream>

#include "data/loader.h"
#include "util/error.h"
#include "util/format.h"
#include "util/hash.h"

namespace cca::data {

namespace {

constexpr const char* kMixtureMagic = "cca-mixture-state";

[[noreturn]] void mixture_error(const std::string& problem) {
  throw Error("mixture state: " + problem);
}

int64_t parse_field(const std::string& word, const std::string& key) {
  const std::string prefix = key + "=";
  if (word.compare(0, prefix.size(), prefix) != 0) {
    mixture_error(format("expected {}=<count>, got '{}'", key, word.substr(0, 40)));
  }
  const std::string digits = word.substr(prefix.size());
  if (digits.empty() || digits.size() > 18 ||
      digits.find_first_not_of("0123456789") != std::string::npos) {
    mixture_error(format("{} is not a non-negative integer of at most 18 digits", key));
  }
  return std::stoll(digits);
}

}  // namespace

std::string MixtureState::serialize() const {
  std::string out = format("{} 1 sequences={} stage={}", kMixtureMagic, sequences, stage);
  for (const SourcePosition& p : sources) {
    out += format("\nsource={} tokens={} stage_tokens={} {}", p.name, p.tokens, p.stage_tokens,
                  p.state.serialize());
  }
  return out;
}

bool MixtureState::is_mixture(const std::string& text) {
  return text.compare(0, std::char_traits<char>::length(kMixtureMagic), kMixtureMagic) == 0;
}

MixtureState MixtureState::parse(const std::string& text) {
  std::istringstream lines(text);
  std::string line;
  std::getline(lines, line);
  std::istringstream head(line);
  std::string magic, version, sequences, stage, extra;
  head >> magic >> version >> sequences >> stage;
  if (magic != kMixtureMagic) mixture_error("not a cca mixture state");
  if (version != "1") mixture_error("unsupported version '" + version + "' (this build reads 1)");
  MixtureState state;
  state.sequences = parse_field(sequences, "sequences");
  state.stage = parse_field(stage, "stage");
  if (head >> extra) mixture_error("unexpected '" + extra.substr(0, 40) + "' after stage");
  while (std::getline(lines, line)) {
    std::istringstream words(line);
    std::string name, tokens, stage_tokens;
    words >> name >> tokens >> stage_tokens;
    if (name.compare(0, 7, "source=") != 0 || name.size() == 7) {
      mixture_error(format("expected source=<name>, got '{}'", name.substr(0, 40)));
    }
    SourcePosition p;
    p.name = name.substr(7);
    p.tokens = parse_field(tokens, "tokens");
    p.stage_tokens = parse_field(stage_tokens, "stage_tokens");
    std::string rest;
    std::getline(words, rest);
    try {
      p.state = LoaderState::parse(rest);
    } catch (const Error& e) {
      mixture_error(format("source '{}': {}", p.name, e.what()));
    }
    for (const SourcePosition& other : state.sources) {
      if (other.name == p.name) mixture_error(format("source '{}' is listed twice", p.name));
    }
    state.sources.push_back(std::move(p));
  }
  if (state.sources.empty()) mixture_error("lists no source");
  return state;
}

MixtureState MixtureState::for_world_size(int64_t world_size) const {
  MixtureState out = *this;
  for (SourcePosition& p : out.sources) p.state = p.state.for_world_size(world_size);
  return out;
}

bool MixtureState::operator==(const MixtureState& o) const {
  if (sequences != o.sequences || stage != o.stage || sources.size() != o.sources.size()) {
    return false;
  }
  for (size_t i = 0; i < sources.size(); ++i) {
    const SourcePosition& a = sources[i];
    const SourcePosition& b = o.sources[i];
    if (a.name != b.name || a.tokens != b.tokens || a.stage_tokens != b.stage_tokens ||
        a.state != b.state) {
      return false;
    }
  }
  return true;
}

int64_t stage_at(const std::vector<MixtureStage>& stages, int64_t sequences) {
  int64_t index = 0;
  for (size_t i = 1; i < stages.size(); ++i) {
    if (stages[i].start_sequence <= sequences) index = static_cast<int64_t>(i);
  }
  return index;
}

size_t pick_source(const MixtureStage& stage, const std::vector<int64_t>& stage_tokens) {
  double total_weight = 0;
  int64_t total_tokens = 0;
  for (size_t i = 0; i < stage.weights.size(); ++i) {
    total_weight += stage.weights[i];
    total_tokens += stage_tokens[i];
  }
  size_t best = stage.weights.size();
  double best_deficit = 0;
  for (size_t i = 0; i < stage.weights.size(); ++i) {
    if (stage.weights[i] <= 0) continue;
    // Tokens this source is short of its share, counting the sequence about to be drawn.
    const double share = stage.weights[i] / total_weight;
    const double deficit =
        share * static_cast<double>(total_tokens + 1) - static_cast<double>(stage_tokens[i]);
    if (best == stage.weights.size() || deficit > best_deficit) {
      best = i;
      best_deficit = deficit;
    }
  }
  if (best == stage.weights.size()) throw Error(format("stage '{}' has no weight > 0", stage.name));
  return best;
}

namespace {

// The tokenizer facts of a source, each as text, for a field-by-field comparison.
std::vector<std::pair<std::string, std::string>> tokenizer_facts(const ShardSet& set) {
  std::vector<std::pair<std::string, std::string>> facts;
  if (set.manifest) {
    const Manifest& m = *set.manifest;
    facts.emplace_back("vocab_size", std::to_string(m.vocab_size));
    facts.emplace_back("bos_id", std::to_string(m.bos_id));
    facts.emplace_back("eos_id", std::to_string(m.eos_id));
    facts.emplace_back("separator", m.separator);
    facts.emplace_back("tokenizer (xxh64)", hex64(m.tokenizer_xxh64));
  }
  for (const auto& shard : set.shards) {
    if (shard->header_vocab_size() > 0) {
      facts.emplace_back("shard header vocabulary", std::to_string(shard->header_vocab_size()));
      break;
    }
  }
  return facts;
}

}  // namespace

void check_same_tokenizer(const std::vector<MixtureSource>& sources, const std::string& key) {
  for (size_t i = 1; i < sources.size(); ++i) {
    const MixtureSource& a = sources[0];
    const MixtureSource& b = sources[i];
    const auto facts_a = tokenizer_facts(*a.shards);
    const auto facts_b = tokenizer_facts(*b.shards);
    for (const auto& [field, value_a] : facts_a) {
      for (const auto& [other_field, value_b] : facts_b) {
        if (field != other_field || value_a == value_b) continue;
        throw Error(format(
            "{}: sources '{}' ({}) and '{}' ({}) were not made with the same tokenizer: {} {} vs "
            "{}; every source of a mixture must share the tokenizer",
            key, a.name, a.shards->spec, b.name, b.shards->spec, field, value_a, value_b));
      }
    }
  }
}

}  // namespace cca::data
