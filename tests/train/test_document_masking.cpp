// data.document_masking in the trainer: the separator comes from the shards' manifest (an error
// naming the key without one), and a masked run trains, differently from an unmasked one.
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "testing/process.h"
#include "train/train_test_util.h"
#include "train/trainer.h"
#include "util/error.h"

namespace cca {
namespace {

using testing::ScratchDir;

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
  testing::write_tiny_manifest(data, "eos", 3, -1);
  const std::string message = testing::error_of([&] {
    Trainer trainer(config("no-eos", {"data.document_masking=true"}), testing::quiet_options());
  });
  EXPECT_NE(message.find("data.document_masking"), std::string::npos) << message;
  EXPECT_NE(message.find("eos_id"), std::string::npos) << message;
}

TEST_F(DocumentMaskingTrainer, AMaskedRunTrainsAndDiffersFromAnUnmaskedOne) {
  testing::write_tiny_manifest(data, "bos", 3, 5);
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
