// cca-generate: sample text from a checkpoint.
#include "cli.h"
#include "util/error.h"

int main(int argc, char** argv) {
  CLI::App app{"cca-generate: stream text from a cca-train checkpoint or exported safetensors."};
  std::string checkpoint, prompt;
  int max_new_tokens = 128;
  double temperature = 1.0;
  app.add_option("--checkpoint", checkpoint, "Checkpoint folder")->required();
  app.add_option("--prompt", prompt, "Prompt text");
  app.add_option("--max-new-tokens", max_new_tokens, "Tokens to generate")
      ->check(CLI::PositiveNumber);
  app.add_option("--temperature", temperature, "Sampling temperature; 0 = greedy")
      ->check(CLI::NonNegativeNumber);
  bool done = false;
  const int status = cca::cli::parse(app, argc, argv, done);
  if (done) return status;
  return cca::guarded_main([&]() -> int {
    throw cca::Error("cca-generate is not available in this build yet (generation issue)");
  });
}
