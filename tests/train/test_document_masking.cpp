// data.document_masking in the trainer: the separator comes from the shards' manifest (an error
// naming the key without one), and a masked run trains, differently from an unmasked one.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <string>
#include <utility>

#include "data/manifest.h"
#include "data/shard.h"
#include "train/train_test_util.h"
#include "train/trainer.h"
#include "util/error.h"
#include "util/hash.h"

namespace cca {
namespace {

using testing::ScratchDir;

// A manifest for write_tiny_dataset's shards, separating documents with `separator` (token 3
// opens them, token 5 closes them; -1 = no id).
void write_tiny_manifest(const std::string& dir, const std::string& separator, int32_t bos,
                         int32_t eos) {
  data::Manifest m;
  m.tokenizer_file = "tokenizer.model";
  std::ofstream(dir + "/tokenizer.model") << "stand-in tokenizer bytes";
  m.tokenizer_xxh64 = xxh64_file(dir + "/tokenizer.model");
  m.vocab_size = testing::kTinyVocab;
  m.bos_id = bos;
  m.eos_id = eos;
  m.separator = separator;
  for (auto [split, name] : {std::pair<data::SplitInfo*, const char*>{&m.train, "train_000000.bin"},
                             {&m.val, "val_000000.bin"}}) {
    const std::string path = dir + "/" + name;
    const data::MappedShard shard(path);
    split->shards.push_back({name, shard.tokens(), shard.file_bytes(), shard.checksum()});
    split->tokens = shard.tokens();
    split->documents = 1;
  }
  data::write_manifest(m, dir + "/manifest.json");
}

class DocumentMaskingTrainer : public ::testing::Test {
 protected:
  ScratchDir dir;
  std::string data = testing::write_tiny_dataset(dir / "data");
  LoadedConfig config(const std::string& run, std::vector<std::string> sets) {
    return testing::tiny_config(data, dir / run, sets);
  }
};

TEST_F(DocumentMaskingTrainer, ShardsWithoutAManifestAreAnErrorNamingTheKey) {
  const std::string message = testing::error_of([&] {
    Trainer trainer(config("plain", {"data.document_masking=true"}), testing::quiet_options());
  });
  EXPECT_NE(message.find("data.document_masking"), std::string::npos) << message;
  EXPECT_NE(message.find("manifest"), std::string::npos) << message;
}

TEST_F(DocumentMaskingTrainer, AManifestWithoutTheSeparatorsIdIsAnErrorNamingTheKey) {
  write_tiny_manifest(data, "eos", 3, -1);
  const std::string message = testing::error_of([&] {
    Trainer trainer(config("no-eos", {"data.document_masking=true"}), testing::quiet_options());
  });
  EXPECT_NE(message.find("data.document_masking"), std::string::npos) << message;
  EXPECT_NE(message.find("eos_id"), std::string::npos) << message;
}

TEST_F(DocumentMaskingTrainer, AMaskedRunTrainsAndDiffersFromAnUnmaskedOne) {
  write_tiny_manifest(data, "bos", 3, 5);
  Trainer masked(config("masked", {"data.document_masking=true", "data.reset_positions=true"}),
                 testing::quiet_options());
  const TrainResult with = masked.run();
  Trainer unmasked(config("unmasked", {}), testing::quiet_options());
  const TrainResult without = unmasked.run();
  ASSERT_TRUE(with.final_val_loss && without.final_val_loss);
  EXPECT_TRUE(std::isfinite(*with.final_val_loss));
  const auto losses = testing::metric_by_step(dir / "masked", "train", "loss");
  EXPECT_LT(losses.at(8), losses.at(1));
  EXPECT_NE(*with.final_val_loss, *without.final_val_loss);
}

}  // namespace
}  // namespace cca
