// Starting from existing weights (docs/interop.md): `init.from` (a run folder, a checkpoint or a
// Hugging Face folder, loaded into a freshly built model before step 0), and `cca-train import`,
// which turns a Hugging Face folder into a run folder with a step-0 checkpoint.
#pragma once

#include <string>
#include <vector>

#include "model/transformer.h"

namespace cca {

// True for a Hugging Face folder (config.json, no config.yaml of ours).
bool is_hf_folder(const std::string& path);

// Copies the weights at `from` into `model` (whose config decides the expected names and shapes).
// Any disagreement is one cca::Error listing every mismatched tensor (name, expected, found), and
// every missing and unexpected one.
void load_initial_weights(const std::string& from, TransformerImpl& model);

// Copies a checkpoint's model.safetensors into `model`, checking every name and shape; `what`
// names the source in the error (`init.from '...'`, `eval ...`).
void load_model_file(const std::string& file, TransformerImpl& model, const std::string& what);

struct ImportRequest {
  std::string from;                    // Hugging Face folder
  std::string out;                     // run folder to create
  std::vector<std::string> overrides;  // "key=value", applied after the imported model keys
  bool force = false;                  // replace a non-empty `out`
};

struct ImportResult {
  std::string config_path;  // out/config.yaml
  std::string checkpoint;   // out/checkpoints/step_00000000
  int64_t parameters = 0;
};

// Writes out/config.yaml (the imported model, run.dir = out, the tokenizer if the folder has a
// tokenizer.model) and a step-0 checkpoint with a fresh optimizer: continue with
// `cca-train --config out/config.yaml --set data.train=... --resume auto`, or start another run
// with `init.from: out`.
ImportResult import_hf(const ImportRequest& request);

}  // namespace cca
