#pragma once
// An encoder with a classifier head on its pooled state: BertForSequenceClassification's
// shape, and the shape of RLXF's reward model (P(MET) = softmax(logits)[MET]).
#include <cstddef>

#include "rlxf/model/encoder.hpp"
#include "rlxf/model/heads.hpp"

namespace rlxf::model {

template <class T>
class SequenceClassifier {
 public:
  struct Cache {
    typename Encoder<T>::Cache encoder;
    typename nn::Linear<T>::Cache head;
  };

  SequenceClassifier(const EncoderConfig& cfg, std::size_t n_classes, Rng& rng)
      : encoder(cfg, rng), classifier(classifier_head<T>(cfg.d_model, n_classes, rng, cfg.init_std)) {}

  std::size_t classes() const { return classifier.out_features(); }

  // ids, types, mask (B, T) (types and mask may be null) -> logits (B, 1, classes).
  nn::Activation<T> forward(const nn::Tokens& ids, const nn::Tokens* types, const Mask* mask, Cache& cache) const {
    return classifier.forward(encoder.forward(ids, types, mask, cache.encoder), cache.head);
  }
  // dlogits (B, 1, classes): accumulates every parameter's gradient.
  void backward(const nn::Activation<T>& dlogits, const Cache& cache) {
    encoder.backward(classifier.backward(dlogits, cache.head), cache.encoder);
  }

  ParameterList<T> parameters() {
    ParameterList<T> ps = encoder.parameters();
    classifier.collect(ps, "classifier.");
    return ps;
  }

  Encoder<T> encoder;
  nn::Linear<T> classifier;
};

}  // namespace rlxf::model
