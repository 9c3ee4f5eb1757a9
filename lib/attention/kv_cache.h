// A growing key/value cache shared by the variants that store per-head keys and values.
#pragma once

#include <ATen/ATen.h>

namespace cca {

struct KeyValueCache {
  at::Tensor keys;    // [B, H, L, Dk]
  at::Tensor values;  // [B, H, L, Dv]

  // Appends [B, H, S, D] keys and values along the sequence and returns the whole cache.
  void append(const at::Tensor& new_keys, const at::Tensor& new_values) {
    keys = keys.defined() ? at::cat({keys, new_keys}, 2) : new_keys;
    values = values.defined() ? at::cat({values, new_values}, 2) : new_values;
  }
  int64_t bytes() const {
    int64_t total = 0;
    for (const at::Tensor* t : {&keys, &values}) {
      if (t->defined()) total += t->numel() * t->element_size();
    }
    return total;
  }
};

}  // namespace cca
