// tiny_lm: a byte-level GPT-style language model trained from scratch on a text file, with
// nothing but rlxf's layers and optimizer. It shows how the pieces compose: embeddings,
// pre-norm transformer blocks, a final LayerNorm, an LM head, cross-entropy, AdamW with
// warm-up and cosine decay, gradient clipping, and sampling from the trained model.
//
//   tiny_lm [text-file] [steps]      (default: the repository's LICENSE and README, 300 steps)
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <rlxf/rlxf.hpp>

using namespace rlxf;
using Act = nn::Activation<float>;

struct Config {
  std::size_t vocab = 256;  // bytes
  std::size_t context = 64;
  std::size_t d_model = 64;
  std::size_t n_layers = 2;
  std::size_t n_heads = 4;
  std::size_t batch = 16;
};

// Token and position embeddings, pre-norm blocks, final LayerNorm, untied LM head.
class TinyLm {
 public:
  struct Cache {
    std::vector<nn::TransformerBlock<float>::Cache> blocks;
    nn::LayerNorm<float>::Cache final_norm;
    nn::Linear<float>::Cache head;
  };

  TinyLm(const Config& c, Rng& rng)
      : cfg_(c), wte_(c.vocab, c.d_model, rng), wpe_(c.context, c.d_model, rng), ln_f_(c.d_model),
        head_(c.d_model, c.vocab, false, rng) {
    const nn::BlockConfig block{
        .attention = {.d_model = c.d_model, .n_heads = c.n_heads, .causal = true},
        .mlp = {.d_model = c.d_model, .d_hidden = 4 * c.d_model, .kind = nn::MlpKind::gelu_tanh}};
    for (std::size_t l = 0; l < c.n_layers; ++l) blocks_.emplace_back(block, rng);
  }

  ParameterList<float> parameters() {
    ParameterList<float> ps;
    wte_.collect(ps, "wte.");
    wpe_.collect(ps, "wpe.");
    for (std::size_t l = 0; l < blocks_.size(); ++l) blocks_[l].collect(ps, "h." + std::to_string(l) + ".");
    ln_f_.collect(ps, "ln_f.");
    head_.collect(ps, "lm_head.");
    return ps;
  }

  // tokens (B, T) -> logits (B, T, vocab)
  Act forward(const nn::Tokens& tokens, Cache& cache) const {
    const std::size_t b = tokens.shape()[0], t = tokens.shape()[1];
    Act x = wte_.forward(tokens) + wpe_.forward(positions(b, t));
    cache.blocks.resize(blocks_.size());
    for (std::size_t l = 0; l < blocks_.size(); ++l) x = blocks_[l].forward(x, {}, cache.blocks[l]);
    return head_.forward(ln_f_.forward(x, cache.final_norm), cache.head);
  }

  void backward(const Act& dlogits, const nn::Tokens& tokens, const Cache& cache) {
    Act dx = ln_f_.backward(head_.backward(dlogits, cache.head), cache.final_norm);
    for (std::size_t l = blocks_.size(); l-- > 0;) dx = blocks_[l].backward(dx, cache.blocks[l]);
    wte_.backward(dx, tokens);
    wpe_.backward(dx, positions(tokens.shape()[0], tokens.shape()[1]));
  }

 private:
  static nn::Tokens positions(std::size_t b, std::size_t t) {
    nn::Tokens p = zeros<std::int32_t, 2>({b, t});
    for (std::size_t i = 0; i < b; ++i)
      for (std::size_t j = 0; j < t; ++j) p(i, j) = static_cast<std::int32_t>(j);
    return p;
  }
  Config cfg_;
  nn::Embedding<float> wte_, wpe_;
  std::vector<nn::TransformerBlock<float>> blocks_;
  nn::LayerNorm<float> ln_f_;
  nn::Linear<float> head_;
};

// Mean next-byte cross-entropy (nats) of a batch; fills dlogits with its gradient if given.
float next_token_loss(const Act& logits, const nn::Tokens& targets, Act* dlogits) {
  const std::size_t n = targets.size(), v = logits.shape()[2];
  std::vector<float> losses(n), lse(n);
  const std::size_t counted = cpu::cross_entropy_forward<float>(logits.data(), targets.data(), losses.data(),
                                                               lse.data(), n, v);
  double total = 0;
  for (float l : losses) total += l;
  if (dlogits) {
    *dlogits = zeros<float, 3>({logits.shape()[0], logits.shape()[1], v});
    const std::vector<float> dloss(n, 1.0f / static_cast<float>(counted));
    cpu::cross_entropy_backward<float>(logits.data(), targets.data(), lse.data(), dloss.data(),
                                       dlogits->data(), n, v);
  }
  return static_cast<float>(total / static_cast<double>(counted));
}

// A batch of windows from `text` starting at the offsets rng picks in [lo, hi).
void sample_batch(const std::string& text, std::size_t lo, std::size_t hi, const Config& c, Rng& rng,
                  nn::Tokens& inputs, nn::Tokens& targets) {
  inputs = zeros<std::int32_t, 2>({c.batch, c.context});
  targets = zeros<std::int32_t, 2>({c.batch, c.context});
  for (std::size_t b = 0; b < c.batch; ++b) {
    const std::size_t start = lo + rng.next_below(static_cast<std::uint32_t>(hi - lo - c.context - 1));
    for (std::size_t t = 0; t < c.context; ++t) {
      inputs(b, t) = static_cast<unsigned char>(text[start + t]);
      targets(b, t) = static_cast<unsigned char>(text[start + t + 1]);
    }
  }
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("cannot open ", path);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

int main(int argc, char** argv) try {
  const std::string source = std::string(RLXF_SOURCE_DIR);
  const std::string text = argc > 1 ? read_file(argv[1])
                                    : read_file(source + "/LICENSE") + read_file(source + "/README.md");
  const std::size_t steps = argc > 2 ? std::stoul(argv[2]) : 300;
  const Config cfg;
  if (text.size() < 20 * cfg.context) fail("the text has ", text.size(), " bytes; tiny_lm needs at least ", 20 * cfg.context);
  const std::size_t split = text.size() * 9 / 10;  // last 10% held out

  Rng rng(1234);
  Rng model_rng = rng.split(0), data_rng = rng.split(1), eval_rng = rng.split(2);
  TinyLm model(cfg, model_rng);
  ParameterList<float> params = model.parameters();
  std::size_t n_params = 0;
  for (const auto& p : params) n_params += p.param->size();
  // No weight decay on biases and norm weights (the Hugging Face convention).
  optim::AdamW<float> opt(params, {.lr = 3e-3, .beta2 = 0.95, .weight_decay = 0.1},
                          optim::decay_except_bias_and_norm);
  const optim::Cosine schedule(3e-3, steps / 10, steps, 3e-4);

  std::printf("tiny_lm: %zu parameters, %zu bytes of text (%zu train / %zu held out), %zu steps of %zu x %zu tokens\n",
              n_params, text.size(), split, text.size() - split, steps, cfg.batch, cfg.context);
  std::printf("uniform guess: %.3f nats/byte\n", std::log(256.0));

  auto held_out_loss = [&] {
    Rng r = eval_rng;  // the same held-out batches every time
    double total = 0;
    for (int i = 0; i < 8; ++i) {
      nn::Tokens in, tg;
      sample_batch(text, split, text.size(), cfg, r, in, tg);
      TinyLm::Cache cache;
      total += next_token_loss(model.forward(in, cache), tg, nullptr);
    }
    return total / 8;
  };

  const auto t0 = std::chrono::steady_clock::now();
  for (std::size_t step = 0; step < steps; ++step) {
    nn::Tokens in, tg;
    sample_batch(text, 0, split, cfg, data_rng, in, tg);
    TinyLm::Cache cache;
    Act dlogits;
    const float loss = next_token_loss(model.forward(in, cache), tg, &dlogits);
    opt.zero_grad();
    model.backward(dlogits, in, cache);
    const double norm = optim::clip_grad_norm(params, 1.0);
    opt.step(schedule(step));
    if (step % 50 == 0 || step + 1 == steps) {
      const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      std::printf("step %4zu  train %.3f  held-out %.3f  grad-norm %.2f  lr %.2e  %.1f tok/s\n", step, loss,
                  held_out_loss(), norm, schedule(step),
                  static_cast<double>((step + 1) * cfg.batch * cfg.context) / secs);
    }
  }

  // Sample 200 bytes after a prompt, temperature 0.8, recomputing the window each step.
  std::string out = "Permission is ";
  Rng sample_rng = rng.split(3);
  for (int i = 0; i < 200; ++i) {
    const std::size_t t = std::min(out.size(), cfg.context);
    nn::Tokens in = zeros<std::int32_t, 2>({1, t});
    for (std::size_t j = 0; j < t; ++j) in(0, j) = static_cast<unsigned char>(out[out.size() - t + j]);
    TinyLm::Cache cache;
    const Act logits = model.forward(in, cache);
    std::vector<double> p(cfg.vocab);
    double mx = -1e30, sum = 0;
    for (std::size_t v = 0; v < cfg.vocab; ++v) mx = std::max(mx, static_cast<double>(logits(0, t - 1, v)) / 0.8);
    for (std::size_t v = 0; v < cfg.vocab; ++v) sum += p[v] = std::exp(static_cast<double>(logits(0, t - 1, v)) / 0.8 - mx);
    double u = sample_rng.next_uniform() * sum;
    std::size_t pick = 0;
    while (pick + 1 < cfg.vocab && (u -= p[pick]) > 0) ++pick;
    out += static_cast<char>(pick);
  }
  std::printf("\nsample: %s\n", out.c_str());
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "tiny_lm: error: %s\n", e.what());
  return 1;
}
