// Hostile input to the library's entry points: every case must end in an rlxf::Error whose
// one-line message names the file and the field, never a crash, a hang or a wrapped size. The
// main binary's cases are in tests/hostile/main_job.sh. Both are the suite of issue 11.
#include <doctest/doctest.h>

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "error_of.hpp"
#include "temp_dir.hpp"
#include "rlxf/algo/algorithm.hpp"
#include "rlxf/algo/kl_controller.hpp"
#include "rlxf/algo/ppo.hpp"
#include "rlxf/core/checked.hpp"
#include "rlxf/core/error.hpp"
#include "rlxf/core/range.hpp"
#include "rlxf/data/csv.hpp"
#include "rlxf/data/mona.hpp"
#include "rlxf/io/file.hpp"
#include "rlxf/io/json.hpp"
#include "rlxf/io/safetensors.hpp"
#include "rlxf/model/checkpoint.hpp"
#include "rlxf/model/generation.hpp"
#include "rlxf/model/hf_config.hpp"
#include "rlxf/reward/mona_reward_model.hpp"
#include "rlxf/tokenize/bpe.hpp"
#include "rlxf/train/checkpoint.hpp"
#include "rlxf/train/run_lock.hpp"

using namespace rlxf;
using rlxf::test::error_of;
namespace fs = std::filesystem;

namespace {

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// One line, no control byte: what a terminal or a log shows of an error.
bool one_clean_line(const std::string& s) {
  for (const char c : s)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) return false;
  return !s.empty();
}

using rlxf::test::TempDir;

void write_text(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
}

std::string deep_array(std::size_t levels) { return std::string(levels, '[') + std::string(levels, ']'); }

// The error of f(), checked to be one clean line that contains every part.
void check_error(const std::string& err, std::initializer_list<std::string> parts) {
  INFO(err);
  CHECK(one_clean_line(err));
  for (const auto& p : parts) CHECK(contains(err, p));
}

}  // namespace

// ---- JSON ----

TEST_CASE("hostile JSON: a million levels of nesting is refused, not a stack overflow") {
  const std::string text = "{\"seed\": " + deep_array(1'000'000) + "}";
  check_error(error_of([&] { io::parse_json(text, "config.json"); }), {"config.json", "nested deeper than 64"});
}

TEST_CASE("hostile JSON: a key twice, a NUL byte, trailing garbage, a file over the size limit") {
  check_error(error_of([] { io::parse_json(R"({"a": 1, "b": {"c": 1, "c": 2}})", "x.json"); }),
              {"x.json", "key 'c' appears twice"});
  check_error(error_of([] { io::parse_json(std::string_view("{}\0{}", 5), "x.json"); }), {"x.json", "NUL byte at byte 2"});
  check_error(error_of([] { io::parse_json("{} {}", "x.json"); }), {"x.json", "not valid JSON"});
  TempDir dir("json_size");
  write_text(dir.path / "big.json", "[" + std::string(2000, ' ') + "]");
  check_error(error_of([&] { io::read_json(dir.path / "big.json", {.max_depth = 64, .max_bytes = 1000}); }),
              {"big.json", "more than the limit of 1000"});
  // Nested objects with the same key at different depths are fine.
  CHECK(io::parse_json(R"({"a": {"a": {"a": 1}}})", "x.json")["a"]["a"]["a"] == 1);
}

TEST_CASE("hostile JSON: a FIFO or a folder given as a JSON file is refused without blocking") {
  TempDir dir("json_fifo");
  REQUIRE(::mkfifo((dir.path / "pipe.json").c_str(), 0600) == 0);
  check_error(error_of([&] { io::read_json(dir.path / "pipe.json"); }), {"pipe.json", "not a regular file"});
  check_error(error_of([&] { io::read_json(dir.path); }), {"not a regular file"});
}

TEST_CASE("hostile JSON: numbers are type- and range-checked, never coerced") {
  const auto j = io::parse_json(R"({"neg": -1, "frac": 2.7, "big": 1e30, "huge": 18446744073709551615,
                                    "str": "3", "flag": 1, "obj": {"x": [1]}})",
                                "c.json");
  check_error(error_of([&] { io::json_get<std::size_t>(j, "neg", 0); }), {"field 'neg' = -1", "expected an integer"});
  check_error(error_of([&] { io::json_get<std::size_t>(j, "frac", 0); }), {"field 'frac' = 2.7"});
  check_error(error_of([&] { io::json_get<std::size_t>(j, "big", 0); }), {"field 'big'"});
  check_error(error_of([&] { io::json_get<std::uint32_t>(j, "huge", 0); }), {"field 'huge'", "[0, 4294967295]"});
  check_error(error_of([&] { io::json_get<double>(j, "str", 0); }), {"field 'str' = \"3\"", "a finite number"});
  check_error(error_of([&] { io::json_get<bool>(j, "flag", false); }), {"field 'flag' = 1", "true or false"});
  check_error(error_of([&] { io::json_get<double>(j, "obj", 0); }), {"field 'obj' = an object"});
  check_error(error_of([&] { io::json_require<double>(j, "missing"); }), {"field 'missing' is missing"});
  check_error(error_of([&] { io::json_section(j, "neg"); }), {"section 'neg' = -1", "expected an object"});
  CHECK(io::json_get<std::size_t>(j, "huge", 0) == std::numeric_limits<std::size_t>::max());
  CHECK(io::json_get<double>(j, "neg", 0) == -1.0);
  CHECK(io::json_get<std::int64_t>(j, "neg", 0) == -1);
}

TEST_CASE("hostile text: control characters in an error message are escaped to keep it one line") {
  const std::string err = error_of([] { fail("token 'a\nb\x1b[31m' in ", "file\r.json"); });
  CHECK(err == "token 'a\\x0ab\\x1b[31m' in file\\x0d.json");
  Error e("x");
  e.add_context("ctx\n");
  CHECK(std::string(e.what()) == "ctx\\x0a: x");
}

// ---- configs ----

TEST_CASE("hostile configs: ranges name the field, its value and the allowed range") {
  check_error(error_of([] { require_in("PpoConfig.lr", -1e-3, Range::above(0, 1)); }),
              {"PpoConfig.lr = -0.001", "(0, 1]"});
  check_error(error_of([] { require_in("steps", std::size_t(-1), Range::closed(1, 1e6)); }),
              {"steps = 18446744073709551615", "[1, 1000000]"});
  check_error(error_of([] { require_in("x", std::numeric_limits<double>::quiet_NaN(), Range::at_least(0)); }),
              {"x = nan", ">= 0"});
  CHECK(!Range::at_least(0).contains(std::numeric_limits<double>::infinity()));
  CHECK(Range::closed(1, 160).describe() == "[1, 160]");
}

TEST_CASE("hostile configs: DecoderConfig and EncoderConfig refuse impossible shapes before allocating") {
  Rng rng(0);
  model::DecoderConfig d{.vocab_size = 10, .max_positions = 8, .d_model = 12, .n_layers = 1, .n_heads = 5, .d_hidden = 8};
  check_error(error_of([&] { model::Decoder<float> m(d, rng); }), {"n_heads = 5 must divide d_model = 12"});
  d.n_heads = 4;
  d.n_kv_heads = 3;
  check_error(error_of([&] { model::Decoder<float> m(d, rng); }), {"n_kv_heads = 3 must divide n_heads = 4"});
  d.n_kv_heads = 0;
  d.norm_eps = -1;
  check_error(error_of([&] { model::Decoder<float> m(d, rng); }), {"DecoderConfig.norm_eps = -1"});
  d.norm_eps = 1e-5;
  d.vocab_size = std::size_t{1} << 24;
  d.d_model = std::size_t{1} << 24;
  d.n_heads = 1;
  check_error(error_of([&] { model::Decoder<float> m(d, rng); }), {"parameters"});
  model::EncoderConfig e{.vocab_size = 10, .max_positions = 0};
  check_error(error_of([&] { model::Encoder<float> m(e, rng); }), {"EncoderConfig.max_positions = 0"});
}

TEST_CASE("hostile configs: Hugging Face config.json with -1, 2.5, deep nesting or a wrong type names the field") {
  TempDir dir("hf");
  const auto base = R"({"model_type": "gpt2", "vocab_size": 16, "n_positions": 8, "n_embd": 8, "n_layer": 1, "n_head": 2)";
  write_text(dir.path / "config.json", std::string(base) + R"(, "n_inner": -1})");
  check_error(error_of([&] { model::decoder_config_from_hf(io::read_json(dir.path / "config.json")); }),
              {"field 'n_inner' = -1"});
  write_text(dir.path / "config.json", std::string(base) + R"(, "layer_norm_epsilon": "small"})");
  check_error(error_of([&] { model::decoder_config_from_hf(io::read_json(dir.path / "config.json")); }),
              {"field 'layer_norm_epsilon'"});
  write_text(dir.path / "config.json", R"({"model_type": "bert", "vocab_size": 2.5})");
  check_error(error_of([&] { model::encoder_config_from_hf(io::read_json(dir.path / "config.json")); }),
              {"field 'vocab_size' = 2.5"});
  write_text(dir.path / "config.json", std::string(base) + ", \"x\": " + deep_array(100000) + "}");
  check_error(error_of([&] { model::load_decoder<float>(dir.path); }), {"config.json", "nested deeper"});
  // Found by fuzz_json: a LLaMA config with zero heads divided by zero in the head_dim check.
  write_text(dir.path / "config.json",
             R"({"model_type": "llama", "vocab_size": 96, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 0, "intermediate_size": 56, "head_dim": 8})");
  check_error(error_of([&] { model::load_decoder<float>(dir.path); }), {"field 'num_attention_heads' = 0"});
  // Sizes that would overflow: refused by the config check, not by an allocation.
  write_text(dir.path / "config.json",
             R"({"model_type": "gpt2", "vocab_size": 4611686018427387904, "n_positions": 8, "n_embd": 8, "n_layer": 1, "n_head": 2})");
  check_error(error_of([&] { model::load_decoder<float>(dir.path); }), {"DecoderConfig.vocab_size"});
}

TEST_CASE("hostile configs: GenerationConfig and the positions budget") {
  Rng rng(0);
  const model::DecoderConfig d{.vocab_size = 10, .max_positions = 16, .d_model = 8, .n_layers = 1, .n_heads = 2, .d_hidden = 8};
  const model::Decoder<float> m(d, rng);
  nn::Tokens prompt = zeros<std::int32_t, 2>({1, 4});
  model::Mask mask = zeros<std::uint8_t, 2>({1, 4});
  mask.fill(1);
  // 2^59 new tokens: sizes computed from it would wrap; the budget check comes first.
  check_error(error_of([&] { model::generate(m, prompt, mask, {.max_new_tokens = std::size_t{1} << 59}, rng); }),
              {"GenerationConfig.max_new_tokens"});
  check_error(error_of([&] { model::generate(m, prompt, mask, {.max_new_tokens = 13}, rng); }),
              {"prompts of 4 tokens + max_new_tokens 13 exceed the model's max_positions (16)"});
  check_error(error_of([&] { model::generate(m, prompt, mask, {.temperature = 0}, rng); }),
              {"GenerationConfig.temperature = 0"});
  check_error(error_of([&] { model::generate(m, prompt, mask, {.max_new_tokens = 4, .eos = 10}, rng); }), {"GenerationConfig.eos = 10", "[0, 9]"});
  CHECK(model::generate(m, prompt, mask, {.max_new_tokens = 12}, rng).response.shape()[1] == 12);
}

TEST_CASE("hostile configs: an adaptive KL horizon too short for the batch is refused, never a negative beta") {
  algo::AdaptiveKlController c({.init = 0.1, .target = 4, .horizon = 1});
  check_error(error_of([&] { c.update(100.0, 32); }), {"horizon = 1", "0.2 x episodes = 6.4"});
  CHECK(c.value() == 0.1);
  algo::AdaptiveKlController ok({.init = 0.1, .target = 4, .horizon = 6.5});
  for (int i = 0; i < 50; ++i) ok.update(0.0, 32);  // shrinks as fast as allowed, stays positive
  CHECK(ok.value() > 0);
}

// ---- CSV ----

TEST_CASE("hostile CSV: a record of a million fields is refused at the field cap") {
  std::istringstream in(std::string(1'000'000, ','));
  data::CsvReader csv(in, "wide.csv");
  std::vector<std::string> fields;
  check_error(error_of([&] { csv.next(fields); }), {"wide.csv", "line 1", "more than 4096 fields"});
}

TEST_CASE("hostile CSV: a record larger than max_record_bytes is refused, however its bytes are split") {
  std::istringstream in("a,b\n" + std::string(60, 'x') + "," + std::string(60, 'y') + "\n");
  data::CsvReader csv(in, "long.csv", {.max_fields = 8, .max_record_bytes = 100});
  std::vector<std::string> fields;
  CHECK(csv.next(fields));
  check_error(error_of([&] { csv.next(fields); }), {"long.csv", "line 2", "longer than 100 bytes"});
}

TEST_CASE("hostile CSV: a MONA file that is empty, header-only, binary or has a broken row") {
  TempDir dir("mona");
  write_text(dir.path / "empty.csv", "");
  check_error(error_of([&] { data::load_mona(dir.path / "empty.csv"); }), {"empty.csv"});
  write_text(dir.path / "binary.csv", std::string("\x7f" "ELF\x01\x01\x01\0\0\0", 10));
  check_error(error_of([&] { data::load_mona(dir.path / "binary.csv"); }), {"binary.csv"});
  write_text(dir.path / "quote.csv", "Country Name,Description\n\"unterminated,x\n");
  check_error(error_of([&] { data::load_mona(dir.path / "quote.csv"); }), {"quote.csv"});
}

// ---- tokenizer files ----

TEST_CASE("hostile tokenizer files: deep, wrong-typed or out-of-range vocab.json and special_tokens_map.json") {
  TempDir dir("bpe");
  const tokenize::Bpe bpe = tokenize::Bpe::train({"the cat sat on the mat", "a dog"}, {.vocab_size = 270});
  bpe.save(dir.path);
  const auto load = [&] { tokenize::Bpe::load(dir.path); };
  CHECK(error_of(load).empty());
  const std::string vocab = [&] {
    std::ifstream in(dir.path / "vocab.json");
    return std::string(std::istreambuf_iterator<char>(in), {});
  }();
  write_text(dir.path / "vocab.json", "{\"a\": " + deep_array(200000) + "}");
  check_error(error_of(load), {"vocab.json", "nested deeper"});
  write_text(dir.path / "vocab.json", vocab.substr(0, vocab.size() - 2) + ", \"zz\": 2.5}");
  check_error(error_of(load), {"vocab.json", "'zz'", "not an integer"});
  write_text(dir.path / "vocab.json", vocab.substr(0, vocab.size() - 2) + ", \"zz\": -1}");
  check_error(error_of(load), {"vocab.json", "outside"});
  write_text(dir.path / "vocab.json", vocab);
  write_text(dir.path / "special_tokens_map.json", R"({"eos_token": 7})");
  check_error(error_of(load), {"special_tokens_map.json", "eos_token"});
  write_text(dir.path / "special_tokens_map.json", R"({"additional_special_tokens": {"a": 1}})");
  check_error(error_of(load), {"special_tokens_map.json", "must be an array"});
  fs::remove(dir.path / "special_tokens_map.json");
  write_text(dir.path / "merges.txt", "#version: 0.2\nnot-a-token x\n");
  check_error(error_of(load), {"merges.txt", "line 2"});
}

TEST_CASE("hostile tokenizer training: special-token scanning is linear in the corpus") {
  // 200,000 occurrences of one special token, and three that never occur: the old scan searched
  // the rest of the document for every special token at every cut (quadratic in the length).
  std::string doc;
  for (int i = 0; i < 200000; ++i) doc += "ab<|sep|>";
  // (No clock here: CTest's timeout is the bound.) The cuts are right: "ab" is learned from the
  // pieces between them, and no piece spans a special token.
  const tokenize::Bpe bpe = tokenize::Bpe::train({doc}, {.vocab_size = 270});
  CHECK(bpe.encode("ab").size() == 1);
  CHECK(bpe.encode("b<").size() == 2);
}

// ---- files the library writes ----

TEST_CASE("hostile files: AtomicFile skips a leftover temporary file of a crashed writer with the same name") {
  TempDir dir("atomic");
  const fs::path target = dir.path / "config.json";
  std::string first_tmp;
  {
    io::AtomicFile a(target);
    first_tmp = a.temp_path().string();
  }  // destroyed uncommitted: its temporary file is gone
  // The next writer's name (this pid, the next counter) as a crashed process with the same pid
  // would have left it: counters restart at 0 in a new process whose pid is also 1.
  const auto dash = first_tmp.rfind('-');
  const std::string next_tmp = first_tmp.substr(0, dash + 1) + std::to_string(std::stoull(first_tmp.substr(dash + 1)) + 1);
  write_text(next_tmp, "stale");
  {
    io::AtomicFile b(target);
    CHECK(b.temp_path().string() != next_tmp);
    const std::string text = "{}\n";
    b.append(std::as_bytes(std::span(text)));
    b.commit();
  }
  CHECK(io::read_json(target).is_object());
  // A symbolic link at the target is replaced, never written through.
  const fs::path victim = dir.path / "victim";
  write_text(victim, "keep");
  fs::create_symlink(victim, dir.path / "link.json");
  {
    io::AtomicFile c(dir.path / "link.json");
    c.commit();
  }
  CHECK(fs::is_regular_file(fs::symlink_status(dir.path / "link.json")));
  std::ifstream in(victim);
  CHECK(std::string(std::istreambuf_iterator<char>(in), {}) == "keep");
}

TEST_CASE("hostile run folders: a second holder is refused naming the first, a killed holder frees the folder") {
  TempDir dir("lock");
  {
    const train::RunLock first(dir.path);
    check_error(error_of([&] { train::RunLock second(dir.path); }),
                {"locking run folder", "in use by another process", "pid " + std::to_string(::getpid())});
  }
  { train::RunLock again(dir.path); }  // released with its holder
  // A child process takes the lock and is killed with SIGKILL: the kernel releases it.
  int ready[2];
  REQUIRE(::pipe(ready) == 0);
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    ::close(ready[0]);
    try {
      train::RunLock held(dir.path);
      (void)!::write(ready[1], "x", 1);
      ::pause();
    } catch (...) {
    }
    ::_exit(3);
  }
  ::close(ready[1]);
  char c = 0;
  REQUIRE(::read(ready[0], &c, 1) == 1);
  ::close(ready[0]);
  check_error(error_of([&] { train::RunLock blocked(dir.path); }), {"pid " + std::to_string(child)});
  ::kill(child, SIGKILL);
  int status = 0;
  ::waitpid(child, &status, 0);
  CHECK(error_of([&] { train::RunLock after(dir.path); }).empty());
  // A symbolic link planted as the lock file is not followed.
  TempDir other("lock_link");
  fs::create_symlink(dir.path / "elsewhere", other.path / ".lock");
  check_error(error_of([&] { train::RunLock linked(other.path); }), {".lock"});
}

// ---- checkpoints ----

TEST_CASE("hostile checkpoints: algorithm state with a huge tensor count, wrong types or deep metadata") {
  TempDir dir("algo_state");
  const auto write_state = [&](const std::string& meta) {
    io::SafetensorsWriter w;
    const std::vector<float> x{1, 2};
    w.add("adamw.m.0", std::span<const float>(x), {2});
    w.add("adamw.v.0", std::span<const float>(x), {2});
    w.set_metadata("rlxf.algorithm", meta);
    w.write(dir.path / "algorithm.safetensors");
  };
  const auto load = [&] { algo::AlgorithmState::load(dir.path / "algorithm.safetensors"); };
  const std::string good =
      R"({"adamw_steps": 1, "adamw_lr": 0.1, "tensors": 1, "kl": {"value": 0.1, "target": 4, "horizon": 100, "adaptive": true}, "moments": {"count": 0, "mean": 0, "m2": 0}, "steps": 1})";
  write_state(good);
  CHECK(error_of(load).empty());
  std::string huge = good;
  huge.replace(huge.find("\"tensors\": 1"), 12, "\"tensors\": 1000000000000");
  write_state(huge);
  check_error(error_of(load), {"algorithm.safetensors", "'tensors' = 1000000000000"});
  std::string neg = good;
  neg.replace(neg.find("\"steps\": 1}"), 11, "\"steps\": -3}");
  write_state(neg);
  check_error(error_of(load), {"algorithm.safetensors", "field 'steps' = -3"});
  write_state(R"({"kl": )" + deep_array(100000) + "}");
  check_error(error_of(load), {"algorithm.safetensors", "nested deeper"});
  write_state(R"({"adamw_steps": 1, "adamw_lr": 0.1, "tensors": 1, "kl": 5})");
  check_error(error_of(load), {"algorithm.safetensors", "section 'kl' = 5"});
}

TEST_CASE("hostile checkpoints: a truncated or garbage parameters file leaves the parameters as they were") {
  TempDir dir("params");
  Parameter<float> w({2, 3});
  for (std::size_t i = 0; i < 6; ++i) w.value.data()[i] = static_cast<float>(i);
  ParameterList<float> params{{"w", &w}};
  train::save_parameters(dir.path / "p.safetensors", params);
  std::string bytes;
  {
    std::ifstream in(dir.path / "p.safetensors", std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  for (const std::string& bad : {bytes.substr(0, bytes.size() - 1), bytes.substr(0, 7), std::string(64, '\xff'),
                                 std::string("\x08\0\0\0\0\0\0\0{\"w\":[]}", 16)}) {
    write_text(dir.path / "p.safetensors", bad);
    for (std::size_t i = 0; i < 6; ++i) w.value.data()[i] = -1;
    check_error(error_of([&] { train::load_parameters(dir.path / "p.safetensors", params); }), {"p.safetensors"});
    CHECK(w.value.data()[5] == -1);
  }
}

TEST_CASE("hostile checkpoints: reward.json with wrong types, out-of-range values or not an object") {
  TempDir dir("reward_json");
  const auto parse = [&](const std::string& text) {
    write_text(dir.path / "reward.json", text);
    return error_of([&] { reward::MonaRewardModel::load(dir.path); });
  };
  check_error(parse(R"({"max_tokens": -1})"), {"reward.json", "field 'max_tokens' = -1"});
  check_error(parse(R"({"temperature": "hot"})"), {"reward.json", "field 'temperature'"});
  check_error(parse(R"([1, 2])"), {"reward.json", "expected a JSON object"});
  check_error(parse(R"({"max_tokens": 8, "extra": 1})"), {"reward.json", "unknown key 'extra'"});
}

TEST_CASE("hostile checkpoints: checked size arithmetic names what overflowed") {
  check_error(error_of([] { checked_mul(std::size_t{1} << 40, std::size_t{1} << 30, "KV cache"); }),
              {"KV cache", "overflows"});
  check_error(error_of([] { checked_add(std::numeric_limits<std::size_t>::max(), 1, "positions"); }), {"positions"});
  CHECK(checked_product({2, 3, 4}, "shape") == 24);
}
