#pragma once
// How rlxf's parameter names map onto Hugging Face checkpoints of GPT-2, LLaMA and BERT, and
// the layout change each needs. One rule per rlxf parameter.
#include <cstddef>
#include <string>
#include <vector>

#include "rlxf/model/decoder.hpp"
#include "rlxf/model/encoder.hpp"

namespace rlxf::model {

struct NameRule {
  enum class Kind {
    copy,        // same shape, same layout
    transpose,   // HF Conv1D weight (in, out) -> rlxf (out, in)
    fused_rows,  // HF fused Conv1D weight (in, parts * out): rlxf (out, in) = columns [part * out, (part + 1) * out)^T
    fused_bias,  // HF fused bias (parts * out): rlxf (out) = elements [part * out, (part + 1) * out)
  };
  std::string ours;
  std::string hf;  // without the model-class prefix ("transformer.", "model.", "bert.")
  Kind kind = Kind::copy;
  std::size_t part = 0, parts = 1;
  bool prefixed = true;  // false for tensors outside the base model (lm_head, classifier)
};

// HF names of a checkpoint's buffers that are not parameters (ignored when loading).
inline bool is_hf_buffer(const std::string& name) {
  return name.ends_with(".attn.bias") || name.ends_with(".attn.masked_bias") || name.ends_with("rotary_emb.inv_freq") ||
         name.ends_with("embeddings.position_ids");
}

inline std::vector<NameRule> hf_rules(const DecoderConfig& cfg) {
  using K = NameRule::Kind;
  std::vector<NameRule> r;
  if (cfg.is_gpt2()) {
    r.push_back({"embed_tokens.weight", "wte.weight"});
    r.push_back({"embed_positions.weight", "wpe.weight"});
    for (std::size_t l = 0; l < cfg.n_layers; ++l) {
      const std::string o = "layers." + std::to_string(l) + ".", h = "h." + std::to_string(l) + ".";
      r.push_back({o + "input_layernorm.weight", h + "ln_1.weight"});
      r.push_back({o + "input_layernorm.bias", h + "ln_1.bias"});
      const char* qkv[] = {"q_proj", "k_proj", "v_proj"};
      for (std::size_t p = 0; p < 3; ++p) {
        r.push_back({o + "self_attn." + qkv[p] + ".weight", h + "attn.c_attn.weight", K::fused_rows, p, 3});
        r.push_back({o + "self_attn." + qkv[p] + ".bias", h + "attn.c_attn.bias", K::fused_bias, p, 3});
      }
      r.push_back({o + "self_attn.o_proj.weight", h + "attn.c_proj.weight", K::transpose});
      r.push_back({o + "self_attn.o_proj.bias", h + "attn.c_proj.bias"});
      r.push_back({o + "post_attention_layernorm.weight", h + "ln_2.weight"});
      r.push_back({o + "post_attention_layernorm.bias", h + "ln_2.bias"});
      r.push_back({o + "mlp.c_fc.weight", h + "mlp.c_fc.weight", K::transpose});
      r.push_back({o + "mlp.c_fc.bias", h + "mlp.c_fc.bias"});
      r.push_back({o + "mlp.c_proj.weight", h + "mlp.c_proj.weight", K::transpose});
      r.push_back({o + "mlp.c_proj.bias", h + "mlp.c_proj.bias"});
    }
    r.push_back({"norm.weight", "ln_f.weight"});
    r.push_back({"norm.bias", "ln_f.bias"});
  } else {
    r.push_back({"embed_tokens.weight", "embed_tokens.weight"});
    for (std::size_t l = 0; l < cfg.n_layers; ++l) {
      const std::string o = "layers." + std::to_string(l) + ".";
      for (const char* n : {"input_layernorm.weight", "self_attn.q_proj.weight", "self_attn.k_proj.weight",
                            "self_attn.v_proj.weight", "self_attn.o_proj.weight", "post_attention_layernorm.weight",
                            "mlp.gate_proj.weight", "mlp.up_proj.weight", "mlp.down_proj.weight"})
        r.push_back({o + n, o + n});
    }
    r.push_back({"norm.weight", "norm.weight"});
  }
  if (!cfg.tie_embeddings) r.push_back({"lm_head.weight", "lm_head.weight", K::copy, 0, 1, false});
  return r;
}

// BERT's rules; `classifier` adds BertForSequenceClassification's head ("classifier.weight/bias"
// in rlxf and in HF).
inline std::vector<NameRule> hf_rules(const EncoderConfig& cfg, bool classifier) {
  std::vector<NameRule> r;
  const auto both = [&](const std::string& o, const std::string& h) {
    r.push_back({o + "weight", h + "weight"});
    r.push_back({o + "bias", h + "bias"});
  };
  r.push_back({"embeddings.word.weight", "embeddings.word_embeddings.weight"});
  r.push_back({"embeddings.position.weight", "embeddings.position_embeddings.weight"});
  r.push_back({"embeddings.token_type.weight", "embeddings.token_type_embeddings.weight"});
  both("embeddings.norm.", "embeddings.LayerNorm.");
  for (std::size_t l = 0; l < cfg.n_layers; ++l) {
    const std::string o = "layers." + std::to_string(l) + ".", h = "encoder.layer." + std::to_string(l) + ".";
    both(o + "self_attn.q_proj.", h + "attention.self.query.");
    both(o + "self_attn.k_proj.", h + "attention.self.key.");
    both(o + "self_attn.v_proj.", h + "attention.self.value.");
    both(o + "self_attn.o_proj.", h + "attention.output.dense.");
    both(o + "input_layernorm.", h + "attention.output.LayerNorm.");
    both(o + "mlp.c_fc.", h + "intermediate.dense.");
    both(o + "mlp.c_proj.", h + "output.dense.");
    both(o + "post_attention_layernorm.", h + "output.LayerNorm.");
  }
  if (cfg.pooling == Pooling::cls) both("pooler.", "pooler.dense.");
  if (classifier) {
    r.push_back({"classifier.weight", "classifier.weight", NameRule::Kind::copy, 0, 1, false});
    r.push_back({"classifier.bias", "classifier.bias", NameRule::Kind::copy, 0, 1, false});
  }
  return r;
}

}  // namespace rlxf::model
