#pragma once
// An encoder with a classifier head on its pooled state: BertForSequenceClassification's
// shape, and the shape of RLXF's reward model (P(MET) = softmax(logits)[MET]).
#include <cstddef>

#include "rlxf/model/encoder.hpp"
#include "rlxf/model/heads.hpp"

namespace rlxf::model {

template <class B>
class BasicSequenceClassifier {
 public:
  using Backend = B;
  using T = typename B::value_type;
  struct Cache {
    typename BasicEncoder<B>::Cache encoder;
    typename nn::BasicLinear<B>::Cache head;
  };

  BasicSequenceClassifier(const EncoderConfig& cfg, std::size_t n_classes, Rng& rng, nn::BackendRef<B> backend = {})
      : encoder(cfg, rng, backend), classifier(classifier_head<B>(cfg.d_model, n_classes, rng, cfg.init_std, backend)) {}

  std::size_t classes() const { return classifier.out_features(); }
  nn::BackendRef<B> backend() const { return encoder.backend(); }

  // ids, types, mask (B, T) (types and mask may be null) -> logits (B, 1, classes).
  nn::Activation<B> forward(const nn::Tokens& ids, const nn::Tokens* types, const Mask* mask, Cache& cache) const {
    return classifier.forward(encoder.forward(ids, types, mask, cache.encoder), cache.head);
  }
  // dlogits (B, 1, classes): accumulates every parameter's gradient.
  void backward(const nn::Activation<B>& dlogits, const Cache& cache) {
    encoder.backward(classifier.backward(dlogits, cache.head), cache.encoder);
  }

  nn::Params<B> parameters() {
    nn::Params<B> ps = encoder.parameters();
    classifier.collect(ps, "classifier.");
    return ps;
  }

  BasicEncoder<B> encoder;
  nn::BasicLinear<B> classifier;
};

// model::SequenceClassifier<float>, <double>, or <B> for a backend B (nn/backend.hpp).
template <class X>
using SequenceClassifier = BasicSequenceClassifier<nn::backend_for_t<X>>;

}  // namespace rlxf::model
