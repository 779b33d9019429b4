// rlxf's decoders and encoder against Hugging Face transformers: weights written by
// save_pretrained load through the name rules, and logits, per-token log-probs, gradients and
// greedy generations match those PyTorch computed in float64 (tools/make_model_fixtures.py,
// fixtures under tests/fixtures/models/, described in their README).
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <string>

#include <unistd.h>

#include "rlxf/model/checkpoint.hpp"
#include "rlxf/model/generation.hpp"
#include "rlxf/model/hf_config.hpp"
#include "rlxf/model/logprobs.hpp"

using namespace rlxf;
namespace fs = std::filesystem;

namespace {

const fs::path fixtures = fs::path(RLXF_TEST_FIXTURES) / "models";

template <class I, std::size_t N>
Tensor<I, N> read_ints(const io::Safetensors& f, const std::string& name) {
  const auto* info = f.find(name);
  REQUIRE(info);
  REQUIRE(info->shape.size() == N);
  std::array<std::size_t, N> shape{};
  std::copy(info->shape.begin(), info->shape.end(), shape.begin());
  Tensor<I, N> t = zeros<I, N>(shape);
  const auto v = f.read<std::int64_t>(name);
  for (std::size_t i = 0; i < v.size(); ++i) t.data()[i] = static_cast<I>(v[i]);
  return t;
}

// Largest |a - b| over entries where `keep(i)` holds.
template <class A, class B, class Keep>
double max_abs_diff(const A& a, const B& b, Keep keep) {
  double m = 0;
  for (std::size_t i = 0; i < b.size(); ++i)
    if (keep(i)) m = std::max(m, std::abs(static_cast<double>(a[i]) - static_cast<double>(b[i])));
  return m;
}

// Compares accumulated gradients with the fixture's "grad.<HF name>" tensors by writing them
// through save_hf (as if they were weights) and reading the file back. Returns the largest
// difference relative to each tensor's largest reference value, floored at 1e-6: attention's
// key bias has a gradient that is zero in exact arithmetic (~1e-17 in both implementations).
template <class T>
double grad_mismatch(const ParameterList<T>& params, const std::vector<model::NameRule>& rules,
                     const std::string& prefix, const io::Safetensors& ref) {
  std::vector<Parameter<T>> grads(params.size());
  ParameterList<T> as_values;
  for (std::size_t i = 0; i < params.size(); ++i) {
    grads[i].value = params[i].param->grad;
    as_values.push_back({params[i].name, &grads[i]});
  }
  const fs::path tmp = fs::temp_directory_path() / ("rlxf_grads_" + std::to_string(::getpid()) + ".safetensors");
  model::save_hf(as_values, rules, prefix, tmp, DType::f64);
  const auto ours = io::Safetensors::load(tmp);
  fs::remove(tmp);
  double worst = 0;
  for (const auto& t : ours.tensors()) {
    CAPTURE(t.name);
    REQUIRE(ref.find("grad." + t.name));
    const auto a = ours.read<double>(t.name);
    const auto b = ref.read<double>("grad." + t.name);
    REQUIRE(a.size() == b.size());
    double scale = 1e-6, diff = 0;
    for (std::size_t i = 0; i < b.size(); ++i) {
      scale = std::max(scale, std::abs(b[i]));
      diff = std::max(diff, std::abs(a[i] - b[i]));
    }
    INFO(t.name, ": max |diff| ", diff, " relative to max |grad| ", scale);
    CHECK(diff / scale < 1e-6);
    worst = std::max(worst, diff / scale);
  }
  return worst;
}

template <class T>
struct LoadedDecoder {
  model::Decoder<T> decoder;
  std::vector<model::NameRule> rules;
  std::string prefix;
};

template <class T>
LoadedDecoder<T> load_decoder(const std::string& name) {
  const auto cfg = model::decoder_config_from_hf(io::read_json(fixtures / name / "config.json"));
  Rng rng(0);
  model::Decoder<T> dec(cfg, rng);
  const auto file = io::Safetensors::load(fixtures / name / "model.safetensors");
  const auto rules = model::hf_rules(cfg);
  const std::string prefix = cfg.is_gpt2() ? "transformer." : "model.";
  const auto unused = model::load_hf(dec.parameters(), file, rules, {prefix, ""});
  CHECK(unused.empty());
  return {std::move(dec), rules, prefix};
}

template <class T>
void check_decoder(const std::string& name, double logits_tol) {
  CAPTURE(name);
  auto m = load_decoder<T>(name);
  const auto ref = io::Safetensors::load(fixtures / name / "reference.safetensors");
  const auto ids = read_ints<std::int32_t, 2>(ref, "input_ids");
  const auto mask = read_ints<std::uint8_t, 2>(ref, "attention_mask");
  const std::size_t b = ids.shape()[0], t = ids.shape()[1];
  const std::size_t v = m.decoder.config().vocab_size;

  // Positions: ours (cumsum - 1, clamped) equal the fixture's at every real token.
  const auto pos = read_ints<std::int32_t, 2>(ref, "position_ids");
  const auto our_pos = model::positions_from_mask(&mask, b, t);
  for (std::size_t i = 0; i < b * t; ++i)
    if (mask.data()[i]) CHECK(our_pos.data()[i] == pos.data()[i]);

  typename model::Decoder<T>::Cache cache;
  const auto logits = m.decoder.forward(ids, &mask, cache);
  const auto want_logits = ref.read<double>("logits");
  const double logit_err =
      max_abs_diff(logits, want_logits, [&](std::size_t i) { return mask.data()[i / v] != 0; });
  MESSAGE(name, " ", sizeof(T) == 4 ? "f32" : "f64", ": max |logit - HF| at real tokens = ", logit_err);
  CHECK(logit_err < logits_tol);

  const auto targets = model::next_token_targets(ids, &mask);
  model::LogprobCache<T> lc;
  const auto logp = model::token_logprobs(logits, targets, lc);
  const auto want_logp = ref.read<double>("logprobs");  // (B, T - 1)
  double lp_err = 0;
  for (std::size_t i = 0; i < b; ++i)
    for (std::size_t j = 0; j + 1 < t; ++j)
      if (targets(i, j) != model::ignore_target)
        lp_err = std::max(lp_err, std::abs(static_cast<double>(logp(i, j)) - want_logp[i * (t - 1) + j]));
  CHECK(lp_err < logits_tol);

  if constexpr (std::is_same_v<T, double>) {
    // loss = sum over valid (t, t+1) of w * logp: gradients of every parameter.
    const auto w = ref.read<double>("loss_weights");  // (B, T - 1)
    Tensor<T, 2> dlogp = zeros<T, 2>({b, t});
    for (std::size_t i = 0; i < b; ++i)
      for (std::size_t j = 0; j + 1 < t; ++j) dlogp(i, j) = w[i * (t - 1) + j];
    auto params = m.decoder.parameters();
    for (auto& p : params) p.param->zero_grad();
    auto dlogits = zeros<T, 3>({b, t, v});
    model::token_logprobs_backward(logits, targets, lc, dlogp, dlogits);
    m.decoder.backward(dlogits, cache);
    double loss = 0;
    for (std::size_t i = 0; i < b * t; ++i) loss += static_cast<double>(dlogp.data()[i] * logp.data()[i]);
    CHECK(loss == doctest::Approx(ref.read<double>("loss")[0]).epsilon(1e-10));
    MESSAGE(name, ": max gradient mismatch (relative to each tensor's max) = ",
            grad_mismatch(params, m.rules, m.prefix, ref));

    // Greedy generation with the KV cache gives HF's tokens, and HF's log-probs.
    const auto prompt = read_ints<std::int32_t, 2>(ref, "gen.prompt_ids");
    const auto prompt_mask = read_ints<std::uint8_t, 2>(ref, "gen.prompt_mask");
    const auto want = read_ints<std::int32_t, 2>(ref, "gen.output_ids");
    const std::size_t new_tokens = want.shape()[1] - prompt.shape()[1];
    Rng rng(1);
    const auto g = model::generate(m.decoder, prompt, prompt_mask, {.max_new_tokens = new_tokens, .greedy = true}, rng);
    CHECK(g.tokens == want);
    const auto want_lp = ref.read<double>("gen.logprobs");
    for (std::size_t i = 0; i < g.logprobs.size(); ++i)
      CHECK(static_cast<double>(g.logprobs.data()[i]) == doctest::Approx(want_lp[i]).epsilon(1e-9));
  }
}

}  // namespace

TEST_CASE("GPT-2 matches Hugging Face: logits, log-probs, gradients, greedy generation") {
  check_decoder<double>("gpt2", 1e-10);
  check_decoder<float>("gpt2", 1e-4);
}

TEST_CASE("LLaMA matches Hugging Face: logits, log-probs, gradients, greedy generation") {
  check_decoder<double>("llama", 1e-10);
  check_decoder<float>("llama", 1e-4);
}

TEST_CASE("BERT sequence classifier matches Hugging Face: logits and gradients") {
  auto clf = model::load_classifier<double>(fixtures / "bert");
  auto params = clf.parameters();
  const auto rules = model::hf_rules(clf.encoder.config(), true);
  const auto ref = io::Safetensors::load(fixtures / "bert" / "reference.safetensors");
  const auto ids = read_ints<std::int32_t, 2>(ref, "input_ids");
  const auto types = read_ints<std::int32_t, 2>(ref, "token_type_ids");
  const auto mask = read_ints<std::uint8_t, 2>(ref, "attention_mask");
  typename model::SequenceClassifier<double>::Cache cache;
  const auto logits = clf.forward(ids, &types, &mask, cache);  // (B, 1, classes)
  const auto want = ref.read<double>("logits");
  const double err = max_abs_diff(logits, want, [](std::size_t) { return true; });
  MESSAGE("bert f64: max |logit - HF| = ", err);
  CHECK(err < 1e-10);

  // loss = sum w * log_softmax(logits): dlogits = w - softmax * rowsum(w).
  const auto w = ref.read<double>("loss_weights");
  const std::size_t b = logits.shape()[0], k = logits.shape()[2];
  auto dlogits = zeros<double, 3>({b, 1, k});
  for (std::size_t i = 0; i < b; ++i) {
    double mx = -1e300, sum = 0, wsum = 0;
    for (std::size_t c = 0; c < k; ++c) mx = std::max(mx, logits(i, 0, c));
    for (std::size_t c = 0; c < k; ++c) sum += std::exp(logits(i, 0, c) - mx);
    for (std::size_t c = 0; c < k; ++c) wsum += w[i * k + c];
    for (std::size_t c = 0; c < k; ++c)
      dlogits(i, 0, c) = w[i * k + c] - std::exp(logits(i, 0, c) - mx) / sum * wsum;
  }
  for (auto& p : params) p.param->zero_grad();
  clf.backward(dlogits, cache);
  MESSAGE("bert: max gradient mismatch = ", grad_mismatch(params, rules, "bert.", ref));
}

TEST_CASE("a checkpoint directory written and read back gives bit-identical outputs") {
  for (const std::string name : {"gpt2", "llama"}) {
    auto original = model::load_decoder<float>(fixtures / name);
    const fs::path dir = fs::temp_directory_path() / ("rlxf_ckpt_" + std::to_string(::getpid()));
    model::save_decoder(dir, original);
    CHECK(fs::exists(dir / "config.json"));
    auto back = model::load_decoder<float>(dir);
    fs::remove_all(dir);
    CHECK(back.config().family == original.config().family);
    CHECK(back.config().n_kv_heads == original.config().n_kv_heads);
    const auto ref = io::Safetensors::load(fixtures / name / "reference.safetensors");
    const auto ids = read_ints<std::int32_t, 2>(ref, "input_ids");
    typename model::Decoder<float>::Cache c1, c2;
    CHECK(original.forward(ids, nullptr, c1) == back.forward(ids, nullptr, c2));
  }
}

TEST_CASE("a classifier directory written and read back gives bit-identical logits") {
  auto original = model::load_classifier<float>(fixtures / "bert");
  const fs::path dir = fs::temp_directory_path() / ("rlxf_clf_" + std::to_string(::getpid()));
  model::save_classifier(dir, original);
  auto back = model::load_classifier<float>(dir);
  fs::remove_all(dir);
  CHECK(back.classes() == original.classes());
  const auto ref = io::Safetensors::load(fixtures / "bert" / "reference.safetensors");
  const auto ids = read_ints<std::int32_t, 2>(ref, "input_ids");
  typename model::SequenceClassifier<float>::Cache c1, c2;
  CHECK(original.forward(ids, nullptr, nullptr, c1) == back.forward(ids, nullptr, nullptr, c2));
}

TEST_CASE("checkpoints stored as BF16 and F16 hold the rounded weights") {
  auto original = model::load_decoder<float>(fixtures / "llama");
  for (const DType dtype : {DType::bf16, DType::f16}) {
    const fs::path dir = fs::temp_directory_path() / ("rlxf_ckpt16_" + std::to_string(::getpid()));
    model::save_decoder(dir, original, dtype);
    const auto file = io::Safetensors::load(dir / "model.safetensors");
    CHECK(file.find("model.embed_tokens.weight")->dtype == dtype);
    auto back = model::load_decoder<float>(dir);
    fs::remove_all(dir);
    const auto a = original.parameters(), b = back.parameters();
    REQUIRE(a.size() == b.size());
    for (std::size_t p = 0; p < a.size(); ++p)
      for (std::size_t i = 0; i < a[p].param->size(); ++i) {
        const float w = a[p].param->value.data()[i];
        const float rounded = dtype == DType::bf16 ? bf16::from_float(w).to_float() : f16::from_float(w).to_float();
        REQUIRE(b[p].param->value.data()[i] == rounded);
      }
  }
}

TEST_CASE("loading reports what is wrong with a checkpoint") {
  const auto cfg = model::decoder_config_from_hf(io::read_json(fixtures / "gpt2" / "config.json"));
  auto bigger = cfg;
  bigger.d_model = 40;
  bigger.d_hidden = 160;
  Rng rng(0);
  model::Decoder<float> dec(bigger, rng);
  const auto file = io::Safetensors::load(fixtures / "gpt2" / "model.safetensors");
  CHECK_THROWS_WITH_AS(model::load_hf(dec.parameters(), file, model::hf_rules(bigger), {"transformer."}),
                       doctest::Contains("tensor 'transformer.wte.weight'"), rlxf::Error);
  auto llama_cfg = model::decoder_config_from_hf(io::read_json(fixtures / "llama" / "config.json"));
  model::Decoder<float> llama(llama_cfg, rng);
  CHECK_THROWS_WITH_AS(model::load_hf(llama.parameters(), file, model::hf_rules(llama_cfg), {"model.", ""}),
                       doctest::Contains("not a checkpoint of this model family"), rlxf::Error);
  auto j = io::read_json(fixtures / "gpt2" / "config.json");
  j["scale_attn_by_inverse_layer_idx"] = true;
  CHECK_THROWS_WITH_AS(model::decoder_config_from_hf(j), doctest::Contains("scale_attn_by_inverse_layer_idx"),
                       rlxf::Error);
}
