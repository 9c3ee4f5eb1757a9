// Every attention variant, one line each, in the order help texts and error messages list them.
// A line X(name) promises two functions:
//   const AttentionVariant& cca::variants::name_variant()   its descriptor, lib/config/variants/
//   std::shared_ptr<Attention> cca::make_name_attention(const AttentionGeometry&,
//                                                       const AttentionOptions&)
//                                                  its module factory, lib/attention/
// lib/config/variants/registry.cpp and lib/attention/registry.cpp expand this list; nothing else
// names the variants. docs/architecture.md: "Adding an attention variant".
#pragma once

#define CCA_ATTENTION_VARIANTS(X) \
  X(mha)                          \
  X(gqa)                          \
  X(mla)                          \
  X(cca)                          \
  X(ccgqa)                        \
  X(swa)                          \
  /* a new variant: one line above this one */
