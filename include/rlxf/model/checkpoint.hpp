#pragma once
// Reading and writing model weights in Hugging Face's safetensors layout, so real GPT-2,
// LLaMA and BERT weights load and rlxf's checkpoints open in transformers.
#include <algorithm>
#include <cstddef>
#include <filesystem>
#include <map>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "rlxf/core/parameter.hpp"
#include "rlxf/io/safetensors.hpp"
#include "rlxf/model/hf_config.hpp"
#include "rlxf/model/hf_names.hpp"
#include "rlxf/model/sequence_classifier.hpp"
#include "rlxf/nn/parameter.hpp"

namespace rlxf::model {

namespace detail {
// The HF name a rule reads, with the base-model prefix when the file uses one.
inline std::string full_name(const NameRule& rule, const std::string& prefix) {
  return rule.prefixed ? prefix + rule.hf : rule.hf;
}
}  // namespace detail

// Copies a checkpoint's tensors into `params` (named as rlxf names them) following `rules`.
// `prefixes` are the base-model prefixes the file may use (e.g. "transformer." for
// GPT2LMHeadModel, "" for GPT2Model); the first under which the first rule's tensor exists is
// taken. Every parameter must be found with the right shape, or an rlxf::Error names it.
// Returns the names of the file's tensors that were not used (buffers excluded).
template <class P>
std::vector<std::string> load_hf(const std::vector<BasicParameterRef<P>>& params, const io::Safetensors& file,
                                 const std::vector<NameRule>& rules, const std::vector<std::string>& prefixes) {
  using T = typename nn::parameter_traits<P>::accum_type;
  RLXF_REQUIRE(!rules.empty(), "no name rules");
  std::string prefix;
  bool found = false;
  for (const auto& p : prefixes)
    if (file.find(detail::full_name(rules.front(), p))) {
      prefix = p;
      found = true;
      break;
    }
  if (!found) fail(file.source(), ": no tensor '", rules.front().hf, "' under any expected prefix: not a checkpoint of this model family?");
  std::map<std::string, const NameRule*> by_ours;
  for (const auto& r : rules) by_ours[r.ours] = &r;
  std::set<std::string> used;
  for (const auto& ref : params) {
    const auto it = by_ours.find(ref.name);
    if (it == by_ours.end()) fail("load_hf: parameter '", ref.name, "' has no Hugging Face name rule");
    const NameRule& rule = *it->second;
    const std::string hf = detail::full_name(rule, prefix);
    with_context(file.source() + ": tensor '" + hf + "' (rlxf '" + ref.name + "')", [&] {
      const io::TensorInfo* info = file.find(hf);
      if (!info) fail("missing");
      used.insert(hf);
      const std::vector<T> src = file.read<T>(hf);
      P& dst = *ref.param;
      const std::vector<std::size_t> ours = nn::shape_of(dst);
      const std::vector<std::size_t>& theirs = info->shape;
      std::vector<T> values(dst.size());
      T* out = values.data();
      switch (rule.kind) {
        case NameRule::Kind::copy:
          if (theirs != ours) fail("shape ", shape_string(theirs), ", expected ", shape_string(ours));
          std::copy(src.begin(), src.end(), out);
          break;
        case NameRule::Kind::transpose:
        case NameRule::Kind::fused_rows: {
          // theirs (in, parts * out), ours (out, in)
          const std::size_t o = ours[0], in = ours[1];
          if (theirs.size() != 2 || theirs[0] != in || theirs[1] != rule.parts * o)
            fail("shape ", shape_string(theirs), ", expected (", in, ", ", rule.parts * o, ")");
          for (std::size_t r = 0; r < o; ++r)
            for (std::size_t c = 0; c < in; ++c) out[r * in + c] = src[c * rule.parts * o + rule.part * o + r];
          break;
        }
        case NameRule::Kind::fused_bias: {
          const std::size_t o = ours[0];
          if (theirs.size() != 1 || theirs[0] != rule.parts * o)
            fail("shape ", shape_string(theirs), ", expected (", rule.parts * o, ")");
          std::copy_n(src.begin() + static_cast<std::ptrdiff_t>(rule.part * o), o, out);
          break;
        }
      }
      nn::set_values(dst, std::span<const T>(values));
    });
  }
  std::vector<std::string> unused;
  for (const auto& t : file.tensors())
    if (!used.contains(t.name) && !is_hf_buffer(t.name)) unused.push_back(t.name);
  return unused;
}

// Writes `params` under their HF names (with `prefix` on base-model tensors), fusing and
// transposing as the rules say, stored as `dtype` (F32, F16 or BF16). The file is written
// to a temporary name and renamed into place.
template <class P>
void save_hf(const std::vector<BasicParameterRef<P>>& params, const std::vector<NameRule>& rules, const std::string& prefix,
             const std::filesystem::path& path, DType dtype = DType::f32,
             const std::map<std::string, std::string>& metadata = {{"format", "pt"}}) {
  using T = typename nn::parameter_traits<P>::accum_type;
  std::map<std::string, const NameRule*> by_ours;
  for (const auto& r : rules) by_ours[r.ours] = &r;
  struct Out {
    std::vector<std::size_t> shape;
    std::vector<T> data;
  };
  std::map<std::string, Out> out;
  for (const auto& ref : params) {
    const auto it = by_ours.find(ref.name);
    if (it == by_ours.end()) fail("save_hf: parameter '", ref.name, "' has no Hugging Face name rule");
    const NameRule& rule = *it->second;
    const P& p = *ref.param;
    const std::vector<std::size_t> ours = nn::shape_of(p);
    Out& o = out[detail::full_name(rule, prefix)];
    const std::vector<T> values = nn::values_of(p);
    const T* src = values.data();
    switch (rule.kind) {
      case NameRule::Kind::copy:
        o.shape = ours;
        o.data.assign(src, src + p.size());
        break;
      case NameRule::Kind::transpose:
      case NameRule::Kind::fused_rows: {
        const std::size_t n = ours[0], in = ours[1], cols = rule.parts * n;
        o.shape = {in, cols};
        o.data.resize(in * cols);
        for (std::size_t r = 0; r < n; ++r)
          for (std::size_t c = 0; c < in; ++c) o.data[c * cols + rule.part * n + r] = src[r * in + c];
        break;
      }
      case NameRule::Kind::fused_bias: {
        const std::size_t n = ours[0];
        o.shape = {rule.parts * n};
        o.data.resize(rule.parts * n);
        std::copy_n(src, n, o.data.begin() + static_cast<std::ptrdiff_t>(rule.part * n));
        break;
      }
    }
  }
  io::SafetensorsWriter writer;
  for (auto& [name, o] : out) writer.add(name, o.data, o.shape, dtype);
  for (const auto& [k, v] : metadata) writer.set_metadata(k, v);
  writer.write(path);
}

namespace detail {
inline void write_config(const std::filesystem::path& path, const nlohmann::json& config) {
  const std::string text = config.dump(2) + "\n";
  io::AtomicFile file(path);
  file.append(std::as_bytes(std::span(text.data(), text.size())));
  file.commit();
}
}  // namespace detail

// Base-model prefix of a family's Hugging Face causal-LM class ("transformer." for
// GPT2LMHeadModel, "model." for LlamaForCausalLM).
inline std::string hf_prefix(const DecoderConfig& cfg) { return cfg.is_gpt2() ? "transformer." : "model."; }

// Writes a decoder as a Hugging Face model directory: model.safetensors and config.json, each
// written to a temporary file and renamed into place.
template <class B>
void save_decoder(const std::filesystem::path& dir, BasicDecoder<B>& decoder, DType dtype = DType::f32) {
  std::filesystem::create_directories(dir);
  save_hf(decoder.parameters(), hf_rules(decoder.config()), hf_prefix(decoder.config()), dir / "model.safetensors",
          dtype);
  detail::write_config(dir / "config.json", decoder_config_to_hf(decoder.config()));
}

// Loads a Hugging Face GPT-2 or LLaMA model directory (config.json + model.safetensors), from
// save_pretrained of the causal-LM class or the bare model class. A tensor the model does not
// use is an error (a tied lm_head.weight excepted), so a wrong architecture is not half-loaded.
// T: float / double for the CPU, or a backend (given as `backend` when it has state).
template <class T>
Decoder<T> load_decoder(const std::filesystem::path& dir, nn::BackendRef<nn::backend_for_t<T>> backend = {}) {
  return with_context("loading " + dir.string(), [&] {
    const DecoderConfig cfg = with_context("config.json", [&] { return decoder_config_from_hf(io::read_json(dir / "config.json")); });
    Rng rng(0);
    Decoder<T> decoder(cfg, rng, backend);
    const auto file = io::Safetensors::load(dir / "model.safetensors");
    auto unused = load_hf(decoder.parameters(), file, hf_rules(cfg), {hf_prefix(cfg), ""});
    std::erase_if(unused, [&](const std::string& n) { return cfg.tie_embeddings && n == "lm_head.weight"; });
    if (!unused.empty())
      fail("model.safetensors has ", unused.size(), " tensor(s) this ", cfg.is_gpt2() ? "GPT-2" : "LLaMA",
           " model does not use, e.g. '", unused.front(), "'");
    return decoder;
  });
}


// Writes a sequence classifier as a Hugging Face BertForSequenceClassification directory.
template <class B>
void save_classifier(const std::filesystem::path& dir, BasicSequenceClassifier<B>& model, DType dtype = DType::f32) {
  std::filesystem::create_directories(dir);
  save_hf(model.parameters(), hf_rules(model.encoder.config(), true), "bert.", dir / "model.safetensors", dtype);
  detail::write_config(dir / "config.json", encoder_config_to_hf(model.encoder.config(), model.classes()));
}

// Loads a BertForSequenceClassification directory (config.json + model.safetensors). Tensors
// the model does not use (e.g. a pre-training head) are an error.
template <class T>
SequenceClassifier<T> load_classifier(const std::filesystem::path& dir,
                                      nn::BackendRef<nn::backend_for_t<T>> backend = {}) {
  return with_context("loading " + dir.string(), [&] {
    const auto json = with_context("config.json", [&] { return io::read_json(dir / "config.json"); });
    const EncoderConfig cfg = with_context("config.json", [&] { return encoder_config_from_hf(json); });
    Rng rng(0);
    SequenceClassifier<T> model(cfg, num_labels_from_hf(json), rng, backend);
    const auto unused = load_hf(model.parameters(), io::Safetensors::load(dir / "model.safetensors"),
                                hf_rules(cfg, true), {"bert.", ""});
    if (!unused.empty())
      fail("model.safetensors has ", unused.size(), " tensor(s) this classifier does not use, e.g. '",
           unused.front(), "'");
    return model;
  });
}

}  // namespace rlxf::model
