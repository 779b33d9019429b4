// Speed of tokenize::Bpe, single-threaded, reported as MB/s of input text (bytes_per_second):
//   encode_gpt2/*    encode with GPT-2's vocabulary (50,257 tokens, 50,000 merges)
//   decode_gpt2/*    decode those ids back to text (MB/s of text produced)
//   train_4096/*     train a 4096-token vocabulary (MB/s of corpus, one run per iteration)
// on two texts:
//   mona   data/mona_synthetic.csv, the shipped MONA-format data set, whole file as one text
//          (skipped with an error when the file is missing);
//   zipf   5 MB of English-like text drawn from a fixed seed: words of GPT-2's vocabulary with
//          Zipf(1) frequencies over 20,000 words, punctuation, digits and line breaks.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include <benchmark/benchmark.h>

#include "rlxf/core/rng.hpp"
#include "rlxf/tokenize/bpe.hpp"

namespace {

namespace fs = std::filesystem;
using rlxf::tokenize::Bpe;

const Bpe& gpt2() {
  static const Bpe tok = Bpe::load(fs::path(RLXF_GPT2_TOKENIZER_DIR));
  return tok;
}

// The MONA data file, or "" when it is missing.
const std::string& mona_text() {
  static const std::string text = [] {
    std::ifstream in(fs::path(RLXF_DATA_DIR) / "mona_synthetic.csv", std::ios::binary);
    std::ostringstream ss;
    if (in) ss << in.rdbuf();
    return ss.str();
  }();
  return text;
}

// About `bytes` bytes of Zipf-distributed words taken from GPT-2's vocabulary (tokens that are
// a space plus 3 or more ASCII lower-case letters), with punctuation, numbers and newlines.
const std::string& zipf_text() {
  static const std::string text = [] {
    const std::size_t bytes = std::size_t{5} << 20;
    std::vector<std::string> words;
    for (std::int32_t id = 0; id < static_cast<std::int32_t>(gpt2().vocab_size()) && words.size() < 20000; ++id) {
      const std::string_view t = gpt2().token_bytes(id);
      bool ok = t.size() >= 4 && t[0] == ' ';
      for (std::size_t i = 1; ok && i < t.size(); ++i) ok = t[i] >= 'a' && t[i] <= 'z';
      if (ok) words.emplace_back(t);
    }
    std::vector<double> cdf(words.size());
    double total = 0;
    for (std::size_t i = 0; i < words.size(); ++i) cdf[i] = total += 1.0 / static_cast<double>(i + 1);
    rlxf::Rng rng(2024);
    std::string s;
    s.reserve(bytes + 64);
    while (s.size() < bytes) {
      const double u = rng.next_uniform() * total;
      s += words[static_cast<std::size_t>(std::lower_bound(cdf.begin(), cdf.end(), u) - cdf.begin()) % words.size()];
      const std::uint32_t r = rng.next_below(100);
      if (r < 6) {
        s += ',';
      } else if (r < 10) {
        s += '.';
      } else if (r < 11) {
        s += ' ';
        s += std::to_string(rng.next_below(10000));
      } else if (r < 12) {
        s += ".\n";
      }
    }
    return s;
  }();
  return text;
}

const std::string* input(benchmark::State& state, std::string_view which) {
  const std::string& text = which == "mona" ? mona_text() : zipf_text();
  if (text.empty()) {
    state.SkipWithError("data/mona_synthetic.csv is missing");
    return nullptr;
  }
  return &text;
}

void encode_gpt2(benchmark::State& state, std::string_view which) {
  const std::string* text = input(state, which);
  if (!text) return;
  for (auto _ : state) {
    auto ids = gpt2().encode(*text);
    benchmark::DoNotOptimize(ids.data());
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * static_cast<std::int64_t>(text->size()));
  state.counters["bytes/token"] = static_cast<double>(text->size()) / static_cast<double>(gpt2().encode(*text).size());
}

void decode_gpt2(benchmark::State& state, std::string_view which) {
  const std::string* text = input(state, which);
  if (!text) return;
  const std::vector<std::int32_t> ids = gpt2().encode(*text);
  for (auto _ : state) {
    auto out = gpt2().decode(ids);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * static_cast<std::int64_t>(text->size()));
}

void train_4096(benchmark::State& state, std::string_view which) {
  const std::string* text = input(state, which);
  if (!text) return;
  // One document per line, as a corpus of rows would be given.
  std::vector<std::string> corpus;
  std::istringstream lines(*text);
  for (std::string line; std::getline(lines, line);) corpus.push_back(line + '\n');
  std::size_t vocab = 0;
  for (auto _ : state) {
    const Bpe tok = Bpe::train(corpus, {.vocab_size = 4096});
    vocab = tok.vocab_size();
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * static_cast<std::int64_t>(text->size()));
  state.counters["vocab"] = static_cast<double>(vocab);
}

}  // namespace

// clang-format off
BENCHMARK_CAPTURE(encode_gpt2, mona, "mona")->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(encode_gpt2, zipf, "zipf")->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(decode_gpt2, mona, "mona")->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(decode_gpt2, zipf, "zipf")->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(train_4096, mona, "mona")->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(1);
BENCHMARK_CAPTURE(train_4096, zipf, "zipf")->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(1);
// clang-format on

BENCHMARK_MAIN();
