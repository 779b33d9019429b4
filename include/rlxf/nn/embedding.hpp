#pragma once
// Embedding table: row lookup by token id.
#include <cstddef>
#include <cstdint>
#include <string>

#include "rlxf/core/parameter.hpp"
#include "rlxf/core/rng.hpp"
#include "rlxf/core/tensor.hpp"
#include "rlxf/nn/linear.hpp"

namespace rlxf::nn {

// Token ids of a batch: (batch, time).
using Tokens = Tensor<std::int32_t, 2>;

template <class T>
class Embedding {
 public:
  // Rows drawn from N(0, init_std^2) (GPT-2 and BERT use 0.02).
  Embedding(std::size_t vocab, std::size_t dim, Rng& rng, double init_std = 0.02)
      : weight({vocab, dim}), vocab_(vocab), dim_(dim) {
    RLXF_REQUIRE(vocab > 0 && dim > 0, "Embedding needs vocab > 0 and dim > 0");
    rng.fill_normal(std::span<T>(weight.value.data(), weight.size()), 0.0, init_std);
  }

  std::size_t vocab() const { return vocab_; }
  std::size_t dim() const { return dim_; }

  // ids (B, T) -> (B, T, dim). An id outside [0, vocab) is an error naming its position.
  Activation<T> forward(const Tokens& ids) const {
    const std::size_t b = ids.shape()[0], t = ids.shape()[1];
    Activation<T> y({b, t, dim_});
    for (std::size_t i = 0; i < b * t; ++i)
      std::copy_n(weight.value.data() + row(ids, i) * dim_, dim_, y.data() + i * dim_);
    return y;
  }

  // dW[id] += dy at each position of `ids`.
  void backward(const Activation<T>& dy, const Tokens& ids) {
    const std::size_t b = ids.shape()[0], t = ids.shape()[1];
    require_shape(dy, {b, t, dim_}, "Embedding::backward dy");
    for (std::size_t i = 0; i < b * t; ++i) {
      T* g = weight.grad.data() + row(ids, i) * dim_;
      const T* d = dy.data() + i * dim_;
      for (std::size_t c = 0; c < dim_; ++c) g[c] += d[c];
    }
  }

  void collect(ParameterList<T>& out, const std::string& prefix) {
    out.push_back({prefix + "weight", &weight});
  }

  Parameter<T> weight;  // (vocab, dim)

 private:
  std::size_t row(const Tokens& ids, std::size_t i) const {
    const std::int32_t id = ids.data()[i];
    if (id < 0 || static_cast<std::size_t>(id) >= vocab_)
      fail("Embedding: token id ", id, " at (", i / ids.shape()[1], ", ", i % ids.shape()[1],
           ") is outside the vocabulary [0, ", vocab_, ")");
    return static_cast<std::size_t>(id);
  }
  std::size_t vocab_, dim_;
};

}  // namespace rlxf::nn
