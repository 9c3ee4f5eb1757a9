// cca-data: tokenizers and token shards.
#include "cli.h"
#include "util/error.h"

int main(int argc, char** argv) {
  CLI::App app{"cca-data: train tokenizers, turn text into token shards, inspect shards."};
  app.require_subcommand(1);
  auto* tokenizer = app.add_subcommand("tokenizer", "Train a SentencePiece tokenizer");
  tokenizer->add_subcommand("train", "Train BPE or unigram on text, folders, globs or JSONL");
  auto* prepare = app.add_subcommand("prepare", "Text/JSONL -> llm.c-format token shards");
  auto* inspect = app.add_subcommand("inspect", "Show a shard's header, tokens and checksums");
  std::vector<std::string> inputs;
  inspect->add_option("files", inputs, "Shard files");
  bool done = false;
  const int status = cca::cli::parse(app, argc, argv, done);
  if (done) return status;
  return cca::guarded_main([&]() -> int {
    const std::string which = app.get_subcommands().front()->get_name();
    (void)prepare;
    throw cca::Error("cca-data " + which + " is not available in this build yet (data issue)");
  });
}
