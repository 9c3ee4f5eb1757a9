#include "train/device_batch.h"

#include "util/error.h"

namespace cca {

Documents batch_documents(const data::Batch& batch, const DocumentSeparator& separator,
                          bool reset_positions, const at::Device& device) {
  // from_blob only reads here: find_documents copies what it keeps.
  const at::Tensor inputs =
      at::from_blob(const_cast<int32_t*>(batch.inputs.data()), {batch.batch_size, batch.seq_len},
                    at::TensorOptions().dtype(at::kInt));
  return find_documents(inputs, separator, reset_positions, device);
}

data::Batch shard_batch(const data::Batch& batch, const SequenceShard& shard) {
  data::Batch out;
  out.batch_size = batch.batch_size;
  out.seq_len = 2 * shard.chunk_length;
  out.state = batch.state;
  out.mixture = batch.mixture;
  out.wrapped = batch.wrapped;
  for (int64_t row = 0; row < batch.batch_size; ++row) {
    for (int64_t chunk : shard.chunks) {
      const int64_t begin = row * batch.seq_len + chunk * shard.chunk_length;
      const int64_t end = begin + shard.chunk_length;
      out.inputs.insert(out.inputs.end(), batch.inputs.begin() + begin, batch.inputs.begin() + end);
      out.targets.insert(out.targets.end(), batch.targets.begin() + begin,
                         batch.targets.begin() + end);
    }
  }
  return out;
}

DocumentSeparator document_separator(const data::ShardSet& shards) {
  if (!shards.manifest) {
    throw Error(
        "data.document_masking: true needs the separator token between documents, which "
        "the dataset's manifest.json names, but the shards '" +
        shards.spec +
        "' have none (plain llm.c shards); prepare the data with cca-data, or set "
        "data.document_masking: false");
  }
  const data::Manifest& m = *shards.manifest;
  const bool opens = m.separator == "bos";
  const int32_t id = opens ? m.bos_id : m.eos_id;
  if (id < 0) {
    throw Error("data.document_masking: true needs the separator token between documents, but " +
                shards.manifest_path + " says separator \"" + m.separator + "\" and has no " +
                (opens ? "bos_id" : "eos_id") + "; set data.document_masking: false");
  }
  return {id, opens};
}

}  // namespace cca
