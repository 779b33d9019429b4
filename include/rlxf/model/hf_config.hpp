#pragma once
// Model configs to and from Hugging Face config.json, so a checkpoint directory written by
// rlxf opens in transformers and one written by transformers (GPT-2, LLaMA, BERT) opens here.
// Keys that change the architecture in ways rlxf does not implement are rejected by name;
// keys that do not affect the forward pass (dropout, token ids, generation) are ignored.
#include <cstddef>
#include <filesystem>
#include <string>

#include <nlohmann/json.hpp>

#include "rlxf/core/error.hpp"
#include "rlxf/io/json.hpp"
#include "rlxf/model/decoder.hpp"
#include "rlxf/model/encoder.hpp"

namespace rlxf::model {

namespace detail {
using json = nlohmann::json;

inline void expect(const json& j, const char* key, const json& supported) {
  if (j.contains(key) && !j[key].is_null() && j[key] != supported)
    fail("field '", key, "' = ", j[key].dump(), " is not supported (rlxf implements ", supported.dump(), ")");
}
}  // namespace detail

// GPT-2 ("model_type": "gpt2") or LLaMA ("llama") config.json -> DecoderConfig.
inline DecoderConfig decoder_config_from_hf(const nlohmann::json& j) {
  using io::json_get, io::json_require;
  const auto type = json_get<std::string>(j, "model_type", "");
  DecoderConfig c;
  if (type == "gpt2") {
    detail::expect(j, "activation_function", "gelu_new");
    detail::expect(j, "scale_attn_weights", true);
    detail::expect(j, "scale_attn_by_inverse_layer_idx", false);
    detail::expect(j, "add_cross_attention", false);
    c.family = DecoderFamily::gpt2;
    c.vocab_size = json_require<std::size_t>(j, "vocab_size");
    c.max_positions = json_require<std::size_t>(j, "n_positions");
    c.d_model = json_require<std::size_t>(j, "n_embd");
    c.n_layers = json_require<std::size_t>(j, "n_layer");
    c.n_heads = json_require<std::size_t>(j, "n_head");
    c.d_hidden = json_get<std::size_t>(j, "n_inner", 4 * c.d_model);
    c.norm_eps = json_get<double>(j, "layer_norm_epsilon", 1e-5);
    c.tie_embeddings = json_get<bool>(j, "tie_word_embeddings", true);
    c.init_std = json_get<double>(j, "initializer_range", 0.02);
  } else if (type == "llama") {
    detail::expect(j, "hidden_act", "silu");
    detail::expect(j, "rope_scaling", nullptr);
    detail::expect(j, "attention_bias", false);
    detail::expect(j, "mlp_bias", false);
    c.family = DecoderFamily::llama;
    c.vocab_size = json_require<std::size_t>(j, "vocab_size");
    c.d_model = json_require<std::size_t>(j, "hidden_size");
    c.n_layers = json_require<std::size_t>(j, "num_hidden_layers");
    c.n_heads = json_require<std::size_t>(j, "num_attention_heads");
    c.n_kv_heads = json_get<std::size_t>(j, "num_key_value_heads", c.n_heads);
    c.d_hidden = json_require<std::size_t>(j, "intermediate_size");
    c.max_positions = json_get<std::size_t>(j, "max_position_embeddings", 2048);
    c.norm_eps = json_get<double>(j, "rms_norm_eps", 1e-6);
    c.rope_theta = json_get<double>(j, "rope_theta", 10000.0);
    c.tie_embeddings = json_get<bool>(j, "tie_word_embeddings", false);
    c.init_std = json_get<double>(j, "initializer_range", 0.02);
    if (c.n_heads == 0) fail("field 'num_attention_heads' = 0: expected an integer >= 1");
    if (j.contains("head_dim") && !j["head_dim"].is_null() && json_get<std::size_t>(j, "head_dim", 0) != c.d_model / c.n_heads)
      fail("field 'head_dim' = ", j["head_dim"].dump(), " differs from hidden_size / num_attention_heads, which rlxf requires");
  } else {
    fail("model_type '", type, "' is not a decoder rlxf implements (gpt2, llama)");
  }
  return c;
}

inline nlohmann::json decoder_config_to_hf(const DecoderConfig& c) {
  if (c.is_gpt2())
    return {{"model_type", "gpt2"}, {"architectures", {"GPT2LMHeadModel"}}, {"activation_function", "gelu_new"},
            {"vocab_size", c.vocab_size}, {"n_positions", c.max_positions}, {"n_embd", c.d_model},
            {"n_layer", c.n_layers}, {"n_head", c.n_heads}, {"n_inner", c.d_hidden},
            {"layer_norm_epsilon", c.norm_eps}, {"tie_word_embeddings", c.tie_embeddings},
            {"initializer_range", c.init_std}, {"resid_pdrop", 0.0}, {"embd_pdrop", 0.0}, {"attn_pdrop", 0.0}};
  return {{"model_type", "llama"}, {"architectures", {"LlamaForCausalLM"}}, {"hidden_act", "silu"},
          {"vocab_size", c.vocab_size}, {"hidden_size", c.d_model}, {"num_hidden_layers", c.n_layers},
          {"num_attention_heads", c.n_heads}, {"num_key_value_heads", c.n_kv_heads ? c.n_kv_heads : c.n_heads},
          {"intermediate_size", c.d_hidden}, {"max_position_embeddings", c.max_positions},
          {"rms_norm_eps", c.norm_eps}, {"rope_theta", c.rope_theta}, {"tie_word_embeddings", c.tie_embeddings},
          {"attention_bias", false}, {"mlp_bias", false}, {"initializer_range", c.init_std}};
}

// BERT ("model_type": "bert") config.json -> EncoderConfig. Pooling is BERT's CLS pooler unless
// the rlxf extension key "rlxf_pooling" says "mean" (a model Hugging Face cannot run as is).
inline EncoderConfig encoder_config_from_hf(const nlohmann::json& j) {
  using io::json_get, io::json_require;
  const auto type = json_get<std::string>(j, "model_type", "");
  if (type != "bert") fail("model_type '", type, "' is not an encoder rlxf implements (bert)");
  detail::expect(j, "hidden_act", "gelu");
  detail::expect(j, "position_embedding_type", "absolute");
  EncoderConfig c;
  c.vocab_size = json_require<std::size_t>(j, "vocab_size");
  c.max_positions = json_require<std::size_t>(j, "max_position_embeddings");
  c.type_vocab_size = json_get<std::size_t>(j, "type_vocab_size", 2);
  c.d_model = json_require<std::size_t>(j, "hidden_size");
  c.n_layers = json_require<std::size_t>(j, "num_hidden_layers");
  c.n_heads = json_require<std::size_t>(j, "num_attention_heads");
  c.d_hidden = json_require<std::size_t>(j, "intermediate_size");
  c.norm_eps = json_get<double>(j, "layer_norm_eps", 1e-12);
  c.init_std = json_get<double>(j, "initializer_range", 0.02);
  const auto pooling = json_get<std::string>(j, "rlxf_pooling", "cls");
  if (pooling != "cls" && pooling != "mean")
    fail("rlxf_pooling is '", pooling, "', expected 'cls' or 'mean'");
  c.pooling = pooling == "mean" ? Pooling::mean : Pooling::cls;
  return c;
}

// Number of classes of a BertForSequenceClassification config (num_labels or id2label).
inline std::size_t num_labels_from_hf(const nlohmann::json& j) {
  if (j.contains("num_labels")) return io::json_get<std::size_t>(j, "num_labels", 2);
  if (j.contains("id2label") && j["id2label"].is_object()) return j["id2label"].size();
  return 2;
}

inline nlohmann::json encoder_config_to_hf(const EncoderConfig& c, std::size_t num_labels) {
  nlohmann::json id2label;
  for (std::size_t i = 0; i < num_labels; ++i) id2label[std::to_string(i)] = "LABEL_" + std::to_string(i);
  return {{"model_type", "bert"}, {"architectures", {"BertForSequenceClassification"}}, {"hidden_act", "gelu"},
          {"vocab_size", c.vocab_size}, {"max_position_embeddings", c.max_positions},
          {"type_vocab_size", c.type_vocab_size}, {"hidden_size", c.d_model}, {"num_hidden_layers", c.n_layers},
          {"num_attention_heads", c.n_heads}, {"intermediate_size", c.d_hidden}, {"layer_norm_eps", c.norm_eps},
          {"initializer_range", c.init_std}, {"position_embedding_type", "absolute"}, {"id2label", id2label},
          {"hidden_dropout_prob", 0.0}, {"attention_probs_dropout_prob", 0.0},
          {"rlxf_pooling", c.pooling == Pooling::mean ? "mean" : "cls"}};
}

}  // namespace rlxf::model
