// Causal scaled-dot-product attention for every variant: one function that picks the kernel.
#pragma once

#include <ATen/ATen.h>

#include <string>

#include "ops/documents.h"

namespace cca {

enum class CoreBackend { automatic, math, flash, cudnn, efficient };

// Parses attention.core ("auto" | "math" | "flash" | "cudnn" | "efficient").
CoreBackend parse_core_backend(const std::string& name);

// q: [B, Hq, Sq, D], k: [B, Hkv, Sk, D], v: [B, Hkv, Sk, Dv], Hq a multiple of Hkv; query head h
// reads kv head h / (Hq / Hkv). Queries sit at the last Sq absolute positions of the Sk keys
// (Sq == Sk for training, Sq < Sk when continuing from a cache), and each sees keys up to its own
// position. Returns [B, Hq, Sq, Dv].
//
// CPU: exact math (softmax in float32, or float64 for float64 inputs). CUDA: LibTorch's SDPA with
// the backend chosen explicitly (automatic = resolve_core_backend) and GQA without repeating K/V.
at::Tensor core_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                          double scale, CoreBackend backend = CoreBackend::automatic);

// core_attention for a training pass over packed documents (Sq == Sk, no cache): query i sees key j
// only inside its own document (documents.ids), causally, and with window > 0 (sliding window)
// only the window - 1 keys before it. CPU: exact math under that block-diagonal mask. CUDA:
// LibTorch's variable-length flash kernel over the documents (documents.cu_seqlens; bf16/fp16,
// equal q/k head dims up to 256, values padded to them), so the cost follows the documents'
// lengths; other inputs take SDPA with the mask. `backend` math forces the masked SDPA; cudnn
// takes cuDNN's ragged attention where it applies (sm90+, Hq == Hkv, no window), else flash.
at::Tensor document_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                              double scale, const Documents& documents, int64_t window = 0,
                              CoreBackend backend = CoreBackend::automatic);

// Context parallelism (documents.shard set): this rank's queries q [B, Hq, S/N, D] against the
// keys and values of the whole sequence as gather_sequence returns them ([B, Hkv, S, D], in
// the shard's gathered order), under the causal, document and window mask of the tokens' global
// positions. document_attention calls it after gathering k and v; MLA gathers its compressed
// latent instead and decompresses the keys and values itself.
at::Tensor sharded_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                             double scale, const Documents& documents, int64_t window = 0);

// x [B, H, S/N, D] of every rank of documents.shard's group, with autograd: [B, H, S, D] in the
// shard's gathered order (rank by rank, each rank's tokens as it holds them).
at::Tensor gather_sequence(const at::Tensor& x, const Documents& documents);

// Whether attention.core: cudnn gives document_attention cuDNN's ragged kernel for these query
// and key/value head counts, q/k head dim and window (then also bf16/fp16 on sm90+; otherwise
// varlen flash runs).
bool cudnn_ragged_shape(int64_t q_heads, int64_t kv_heads, int64_t head_dim, int64_t window);

// The backend `automatic` runs for these inputs (never `automatic`). CPU: math. CUDA, by measured
// rule (docs/benchmarks.md): cuDNN on sm90+ when LibTorch's cuDNN SDPA takes the call
// core_attention makes for these shapes, else flash, else memory-efficient, else math.
CoreBackend resolve_core_backend(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v);

// "auto", "math", "flash", "cudnn", "efficient".
const char* core_backend_name(CoreBackend backend);

}  // namespace cca
