#pragma once
// Embedding table: row lookup by token id.
#include <cstddef>
#include <cstdint>
#include <string>

#include "rlxf/core/rng.hpp"
#include "rlxf/core/tensor.hpp"
#include "rlxf/nn/backend.hpp"
#include "rlxf/nn/parameter.hpp"
#include "rlxf/nn/storage.hpp"

namespace rlxf::nn {

// Token ids of a batch: (batch, time).
using Tokens = Tensor<std::int32_t, 2>;

template <class B>
class BasicEmbedding {
 public:
  using T = typename B::value_type;

  // Rows drawn from N(0, init_std^2) (GPT-2 and BERT use 0.02).
  BasicEmbedding(std::size_t vocab, std::size_t dim, Rng& rng, double init_std = 0.02, BackendRef<B> backend = {})
      : weight(new_param(backend.get(), {vocab, dim})), vocab_(vocab), dim_(dim), backend_(backend) {
    RLXF_REQUIRE(vocab > 0 && dim > 0, "Embedding needs vocab > 0 and dim > 0");
    fill_normal(weight, rng, init_std);
  }

  std::size_t vocab() const { return vocab_; }
  std::size_t dim() const { return dim_; }

  // ids (B, T) -> (B, T, dim). An id outside [0, vocab) is an error naming its position.
  Activation<B> forward(const Tokens& ids) const {
    Activation<B> y = empty_activation(backend_.get(), {ids.shape()[0], ids.shape()[1], dim_});
    gather(ids, y, false);
    return y;
  }
  // y (B, T, dim) += the rows of ids (a second embedding summed with a first).
  void forward_add(const Tokens& ids, Activation<B>& y) const {
    require_shape(y, {ids.shape()[0], ids.shape()[1], dim_}, "Embedding::forward_add y");
    gather(ids, y, true);
  }

  // dW[id] += dy at each position of `ids`.
  void backward(const Activation<B>& dy, const Tokens& ids) {
    require_shape(dy, {ids.shape()[0], ids.shape()[1], dim_}, "Embedding::backward dy");
    check_ids(ids);
    B& b = backend_.get();
    const auto rows = on_backend(b, flat(ids));
    b.embedding_backward(rows.data(), dy.data(), weight.grad.data(), ids.size(), dim_);
  }

  void collect(Params<B>& out, const std::string& prefix) {
    out.push_back({prefix + "weight", &weight});
  }

  Param<B> weight;  // (vocab, dim)

 private:
  void gather(const Tokens& ids, Activation<B>& y, bool accumulate) const {
    check_ids(ids);
    B& b = backend_.get();
    const auto rows = on_backend(b, flat(ids));
    b.embedding_forward(rows.data(), weight.value.data(), y.data(), ids.size(), dim_, accumulate);
  }
  void check_ids(const Tokens& ids) const {
    for (std::size_t i = 0; i < ids.size(); ++i) {
      const std::int32_t id = ids.data()[i];
      if (id < 0 || static_cast<std::size_t>(id) >= vocab_)
        fail("Embedding: token id ", id, " at (", i / ids.shape()[1], ", ", i % ids.shape()[1],
             ") is outside the vocabulary [0, ", vocab_, ")");
    }
  }
  std::size_t vocab_, dim_;
  BackendRef<B> backend_;
};

template <class X>
using Embedding = BasicEmbedding<backend_for_t<X>>;

}  // namespace rlxf::nn
