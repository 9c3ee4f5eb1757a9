#include "train/warm_start.h"

#include <ATen/core/grad_mode.h>

#include <cstring>
#include <fstream>

#include "config/loader.h"
#include "interop/hf_config.h"
#include "interop/hf_convert.h"
#include "interop/hf_target.h"
#include "interop/hf_weights.h"
#include "optim/optimizer.h"
#include "train/checkpoint.h"
#include "train/tensor_io.h"
#include "util/error.h"
#include "util/files.h"
#include "util/json.h"
#include "util/log.h"

namespace cca {
namespace {

interop::Shapes model_shapes(TransformerImpl& model) {
  interop::Shapes shapes;
  for (const NamedTensor& t : model_tensors(model)) shapes[t.name] = t.tensor.sizes().vec();
  return shapes;
}

Json read_hf_config(const std::string& dir) {
  const std::string path = files::join(dir, "config.json");
  return parse_json(files::read_file(path, "Hugging Face config"), path);
}

// The naming of an HF folder's tensors: its model_type's target (Mistral names like Llama; our
// own remote-code folders keep our names).
interop::HfTarget naming_of(const Json& hf, const std::string& source) {
  const Json* type = hf.find("model_type");
  const std::string name = type && type->is_string() ? type->as_string("model_type") : "";
  if (name == "cca_train") return interop::HfTarget::remote_code;
  if (name == "mistral") return interop::HfTarget::llama;
  if (const auto target = interop::target_for_model_type(name)) return *target;
  throw Error(source + ": model_type = '" + name + "' has no weight mapping");
}

void load_hf_weights(const std::string& dir, TransformerImpl& model) {
  const Json hf = read_hf_config(dir);
  const interop::HfTarget naming = naming_of(hf, files::join(dir, "config.json"));
  const interop::Shapes expected = model_shapes(model);
  std::vector<std::string> names;
  for (const auto& item : expected) names.push_back(item.first);
  const interop::TensorMap map = interop::tensor_map(naming, model.config(), names);
  const interop::HfWeights weights(dir);
  const std::map<std::string, interop::HostTensor> ours =
      interop::from_hf_tensors(map, weights, expected);
  for (auto& [name, target] : model_tensors(model)) {
    const interop::HostTensor& source = ours.at(name);
    const at::Tensor values = at::empty(source.shape, at::kFloat);
    std::memcpy(values.data_ptr(), source.bytes.data(), source.bytes.size());
    target.copy_(values);
  }
}

void load_checkpoint_weights(const std::string& path, TransformerImpl& model) {
  std::string folder = path;
  if (!files::exists(files::join(path, "model.safetensors"))) {
    const auto found = find_resume_checkpoint(path, path, "init.from");
    if (!found) throw Error("init.from '" + path + "': no complete checkpoint found");
    folder = *found;
  }
  const std::string file = files::join(folder, "model.safetensors");
  load_model_file(file, model, "init.from '" + file + "'");
}

void copy_if_present(const std::string& from, const std::string& to) {
  if (files::exists(from)) files::copy_file(from, to);
}

}  // namespace

void load_model_file(const std::string& file, TransformerImpl& model, const std::string& what) {
  at::NoGradGuard no_grad;
  std::map<std::string, at::Tensor> saved = read_tensors(file);
  interop::Shapes found;
  for (const auto& [name, tensor] : saved) found[name] = tensor.sizes().vec();
  interop::check_shapes(model_shapes(model), found, what);
  for (auto& [name, target] : model_tensors(model)) target.copy_(saved.at(name));
}

bool is_hf_folder(const std::string& path) {
  return files::exists(files::join(path, "config.json")) &&
         !files::exists(files::join(path, "config.yaml"));
}

void load_initial_weights(const std::string& from, TransformerImpl& model) {
  at::NoGradGuard no_grad;
  if (!files::exists(from)) throw Error("init.from '" + from + "' does not exist");
  if (is_hf_folder(from)) {
    load_hf_weights(from, model);
  } else {
    load_checkpoint_weights(from, model);
  }
}

ImportResult import_hf(const ImportRequest& request) {
  if (!is_hf_folder(request.from)) {
    throw Error("import --from '" + request.from + "': not a Hugging Face folder (no config.json)");
  }
  if (files::exists(request.out) && !files::list_directory(request.out).empty() && !request.force) {
    throw Error("import --out '" + request.out + "' is not empty; pass --force to replace it");
  }
  const std::string hf_config_path = files::join(request.from, "config.json");
  const Json hf = read_hf_config(request.from);
  LoadOptions options;
  options.overrides = interop::overrides_from_hf(hf, hf_config_path);
  // A model built for shorter sequences than the default train.seq_len trains at its own length.
  const Json* positions = hf.find("max_position_embeddings");
  if (positions != nullptr && positions->type() == Json::Type::number) {
    const int64_t longest = positions->as_int("max_position_embeddings");
    if (longest < default_config().train.seq_len) {
      options.overrides.push_back("train.seq_len=" + std::to_string(longest));
    }
  }
  options.overrides.push_back("run.dir=" + request.out);
  const std::string tokenizer = files::join(request.from, "tokenizer.model");
  if (files::exists(tokenizer)) {
    options.overrides.push_back("data.tokenizer=" + files::join(request.out, "tokenizer.model"));
  }
  for (const std::string& o : request.overrides) options.overrides.push_back(o);
  const LoadedConfig loaded = load_config("", options);

  at::manual_seed(static_cast<uint64_t>(loaded.config.train.seed));
  TransformerImpl model(loaded.config);
  load_initial_weights(request.from, model);
  std::vector<NamedTensor> parameters;
  for (const auto& item : model.named_parameters(/*recurse=*/true)) {
    parameters.push_back({item.key(), item.value()});
  }
  ImportResult result;
  for (const NamedTensor& p : parameters) result.parameters += p.tensor.numel();
  const std::unique_ptr<Optimizer> optimizer = make_optimizer(parameters, loaded.config.optim);

  if (files::exists(request.out)) files::remove_tree(request.out);
  files::make_directories(request.out);
  for (const char* name : {"tokenizer.model", "tokenizer.json", "tokenizer_config.json"}) {
    copy_if_present(files::join(request.from, name), files::join(request.out, name));
  }
  TrainProgress progress;
  progress.run_id = "imported";
  result.checkpoint =
      save_checkpoint(files::join(request.out, "checkpoints"), progress, model, *optimizer, loaded);
  result.config_path = files::join(request.out, "config.yaml");
  const std::string staging = result.config_path + ".tmp";
  {
    std::ofstream out(staging, std::ios::binary | std::ios::trunc);
    out << "# Imported from " << request.from << " by cca-train import. Set data.train/val (or\n"
        << "# include this file from your own config) and continue with --resume auto, or\n"
        << "# start a new run from these weights with init.from: " << request.out << "\n"
        << render_config_yaml(loaded, /*with_origins=*/false);
    out.close();
    if (!out) throw Error("cannot write '" + staging + "'");
  }
  files::rename_path(staging, result.config_path);
  return result;
}

}  // namespace cca
