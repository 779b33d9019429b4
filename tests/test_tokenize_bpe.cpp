#include <doctest/doctest.h>

#include "error_of.hpp"

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "rlxf/concepts.hpp"
#include "rlxf/core/error.hpp"
#include "rlxf/core/rng.hpp"
#include "rlxf/tokenize/bpe.hpp"

namespace fs = std::filesystem;
using rlxf::test::error_of;
using rlxf::tokenize::Bpe;
using rlxf::tokenize::SpecialRoles;
using Ids = std::vector<std::int32_t>;

namespace {

struct NoDecode {  // a tokenizer missing decode()
  std::vector<std::int32_t> encode(std::string_view) const { return {}; }
  std::size_t vocab_size() const { return 0; }
};
static_assert(rlxf::Tokenizer<Bpe>);
static_assert(!rlxf::Tokenizer<NoDecode>);
static_assert(!rlxf::Tokenizer<int>);

const fs::path gpt2_dir = fs::path(RLXF_TEST_FIXTURES) / "gpt2-tokenizer";

const Bpe& gpt2() {
  static const Bpe tok = Bpe::load(gpt2_dir / "encoder.json", gpt2_dir / "vocab.bpe");
  return tok;
}

std::string read_text(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void write_text(const fs::path& p, std::string_view text) {
  std::ofstream out(p, std::ios::binary);
  out << text;
}

// A fresh, empty directory under the system temp directory.
fs::path scratch_dir(const std::string& name) {
  const fs::path dir = fs::temp_directory_path() / ("rlxf_test_tokenize_bpe_" + name);
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

std::vector<std::string> pieces(std::string_view text) {
  std::vector<std::string> out;
  rlxf::tokenize::for_each_gpt2_piece(text, [&](std::string_view p) { out.emplace_back(p); });
  return out;
}

// Random bytes drawn from a mix of ASCII words and punctuation, white space, NULs, multi-byte
// UTF-8 (letters, digits, spaces) and arbitrary (mostly invalid UTF-8) bytes.
std::string random_text(rlxf::Rng& rng, std::size_t pieces_wanted) {
  static const std::vector<std::string> atoms = {
      "the", "fiscal", " deficit", " GDP", "'s", "'ll", " ", "  ", "\n", "\t", "\r\n", ".", ",",
      "2024", "3.5%", "é", "日本", "٣", "\u3000", "\u00a0", "\u0085", "\xef\xbb\xbf", "😀",
      std::string(1, '\0'), "!!", "'", " '"};
  std::string s;
  for (std::size_t i = 0; i < pieces_wanted; ++i) {
    const std::uint32_t k = rng.next_below(static_cast<std::uint32_t>(atoms.size() + 4));
    if (k < atoms.size()) {
      s += atoms[k];
    } else {
      const std::uint32_t n = 1 + rng.next_below(6);
      for (std::uint32_t j = 0; j < n; ++j) s += static_cast<char>(rng.next_below(256));
    }
  }
  return s;
}

// Plain BPE written from the definition, as a reference: per piece, repeatedly merge every
// occurrence of the adjacent pair of lowest rank (merges.txt order), left to right.
class ReferenceBpe {
 public:
  ReferenceBpe(const Bpe& tok, const fs::path& merges_txt) : tok_(tok) {
    std::istringstream in(read_text(merges_txt));
    std::string line;
    int rank = 0;
    while (std::getline(in, line)) {
      if (line.empty() || line.starts_with("#version")) continue;
      const auto space = line.find(' ');
      ranks_.emplace(std::pair{line.substr(0, space), line.substr(space + 1)}, rank++);
    }
  }

  Ids encode(std::string_view text) const {
    Ids ids;
    rlxf::tokenize::for_each_gpt2_piece(text, [&](std::string_view piece) {
      std::vector<std::string> word;
      for (const char c : piece) word.push_back(rlxf::tokenize::bytes_to_vocab_string(std::string(1, c)));
      for (;;) {
        std::optional<std::pair<std::string, std::string>> best;
        int best_rank = 0;
        for (std::size_t i = 0; i + 1 < word.size(); ++i) {
          const auto it = ranks_.find({word[i], word[i + 1]});
          if (it != ranks_.end() && (!best || it->second < best_rank)) {
            best = it->first;
            best_rank = it->second;
          }
        }
        if (!best) break;
        std::vector<std::string> merged;
        for (std::size_t i = 0; i < word.size();) {
          if (i + 1 < word.size() && word[i] == best->first && word[i + 1] == best->second) {
            merged.push_back(word[i] + word[i + 1]);
            i += 2;
          } else {
            merged.push_back(word[i++]);
          }
        }
        word = std::move(merged);
      }
      for (const std::string& t : word) ids.push_back(*tok_.token_to_id(t));
    });
    return ids;
  }

 private:
  const Bpe& tok_;
  std::map<std::pair<std::string, std::string>, int> ranks_;
};

std::vector<std::string> small_corpus() {
  std::vector<std::string> corpus;
  rlxf::Rng rng(7);
  for (int i = 0; i < 200; ++i) corpus.push_back(random_text(rng, 40));
  corpus.push_back("Reduce the fiscal deficit to 3% of GDP by end-2024.<|endoftext|>Strengthen revenue.");
  return corpus;
}

}  // namespace

TEST_CASE("pre-tokenizer: GPT-2's pattern on hand-checked inputs") {
  using V = std::vector<std::string>;
  CHECK(pieces("Hello world") == V{"Hello", " world"});
  CHECK(pieces("a  b") == V{"a", " ", " b"});
  CHECK(pieces("x\n\ny") == V{"x", "\n", "\n", "y"});
  CHECK(pieces("end  ") == V{"end", "  "});
  CHECK(pieces("it's we'll I'M") == V{"it", "'s", " we", "'ll", " I", "'", "M"});
  CHECK(pieces("'sam") == V{"'s", "am"});
  CHECK(pieces("!!'s") == V{"!!'", "s"});
  CHECK(pieces("abc123 45.6") == V{"abc", "123", " 45", ".", "6"});
  CHECK(pieces(" \t x") == V{" \t", " x"});
  CHECK(pieces("é٣x") == V{"é", "٣", "x"});                          // letter, Arabic-Indic digit
  CHECK(pieces("a\u3000b") == V{"a", "\u3000", "b"});                // ideographic space is \s
  CHECK(pieces("a\xef\xbb\xbf b") == V{"a", "\xef\xbb\xbf", " b"});  // U+FEFF is \s in JavaScript
  CHECK(pieces("a\u0085b") == V{"a", "\u0085", "b"});                // U+0085 is not
  CHECK(pieces(std::string("a\xff\xfe" "b\xe6\x97", 6)) == V{"a", "\xff\xfe", "b", "\xe6\x97"});
  CHECK(pieces(std::string("\0\0 x", 4)) == V{std::string("\0\0", 2), " x"});
  CHECK(pieces("").empty());
}

TEST_CASE("pre-tokenizer: agrees with JavaScript's regex engine on 1000 random strings") {
  std::istringstream in(read_text(gpt2_dir / "pretokenize.jsonl"));
  std::string line;
  int cases = 0;
  while (std::getline(in, line)) {
    const auto j = nlohmann::json::parse(line);
    const auto text = j.at("text").get<std::string>();
    INFO("text: ", j.at("text").dump());
    CHECK(pieces(text) == j.at("pieces").get<std::vector<std::string>>());
    ++cases;
  }
  CHECK(cases == 1000);
}

TEST_CASE("byte_to_unicode is GPT-2's map") {
  using rlxf::tokenize::byte_to_unicode;
  CHECK(byte_to_unicode[' '] == U'Ġ');
  CHECK(byte_to_unicode['\n'] == U'Ċ');
  CHECK(byte_to_unicode[0] == 256);
  CHECK(byte_to_unicode['!'] == '!');
  CHECK(byte_to_unicode[173] == 256 + 67);  // the last of the 68 remapped bytes
  int self = 0;
  for (unsigned b = 0; b < 256; ++b) {
    self += byte_to_unicode[b] == b;
    CHECK(rlxf::tokenize::unicode_to_byte(byte_to_unicode[b]) == static_cast<unsigned char>(b));
  }
  CHECK(self == 188);
  CHECK(rlxf::tokenize::bytes_to_vocab_string(" the\n") == "Ġthe\xc4\x8a");
  CHECK(rlxf::tokenize::vocab_string_to_bytes("Ġthe") == " the");
  CHECK(!rlxf::tokenize::vocab_string_to_bytes("日本"));
}

TEST_CASE("GPT-2: every reference encoding of gpt-3-encoder matches and decodes back") {
  const Bpe& tok = gpt2();
  CHECK(tok.vocab_size() == 50257);
  CHECK(tok.merge_count() == 50000);
  CHECK(tok.bos() == 50256);
  CHECK(tok.eos() == 50256);
  CHECK(!tok.pad());
  CHECK(tok.special_ids() == Ids{50256});
  std::istringstream in(read_text(gpt2_dir / "encodings.jsonl"));
  std::string line;
  int cases = 0;
  while (std::getline(in, line)) {
    const auto j = nlohmann::json::parse(line);
    const auto text = j.at("text").get<std::string>();
    const auto expected = j.at("ids").get<Ids>();
    INFO("text: ", text);
    CHECK(tok.encode(text) == expected);
    CHECK(tok.decode(expected) == text);
    ++cases;
  }
  CHECK(cases == 32);
}

TEST_CASE("GPT-2: long pieces, special tokens, lookups") {
  const Bpe& tok = gpt2();
  const ReferenceBpe ref(tok, gpt2_dir / "vocab.bpe");
  // Pieces of >= 128 bytes take the heap path; they must agree with the plain definition.
  for (const std::string& text : {std::string(300, 'a'), std::string(1000, ' ') + "x", std::string(257, '-'),
                                  std::string(200, '7'), "supercalifragilistic" + std::string(150, 'z')}) {
    INFO("text: ", text);
    CHECK(tok.encode(text) == ref.encode(text));
    CHECK(tok.decode(tok.encode(text)) == text);
  }
  CHECK(tok.encode("<|endoftext|>", {.allow_special = true}) == Ids{50256});
  const Ids plain = tok.encode("<|endoftext|>");
  CHECK(plain.size() > 1);
  CHECK(tok.decode(plain) == "<|endoftext|>");
  CHECK(tok.encode("a<|endoftext|>b", {.allow_special = true}) == Ids{64, 50256, 65});
  CHECK(tok.decode(Ids{64, 50256, 65}, {.skip_special = true}) == "ab");
  CHECK(tok.token_to_id("Ġthe") == 262);
  CHECK(tok.token_to_id("<|endoftext|>") == 50256);
  CHECK(!tok.token_to_id("Ġnot-a-token"));
  CHECK(tok.id_to_token(262) == "Ġthe");
  CHECK(tok.token_bytes(262) == " the");
  CHECK(tok.byte_token(' ') == 220);
  CHECK(tok.is_special(50256));
  CHECK(!tok.is_special(262));
  CHECK(!tok.is_special(-1));
  const std::string msg = error_of([&] { (void)tok.decode(Ids{15496, 50257}); });
  CHECK(msg.find("unknown token id 50257") != std::string::npos);
  CHECK(error_of([&] { (void)tok.decode(Ids{-3}); }).find("unknown token id -3") != std::string::npos);
}

TEST_CASE("train: the first merges of a hand-checkable corpus") {
  // Words (one per document, so no spaces): hug x10, pug x5, pun x12, bun x4, hugs x5.
  // Pair counts: ug 20, pu 17, un 16, hu 15, ... -> "ug"; then un 16 -> "un"; then h+ug 15 -> "hug".
  std::vector<std::string> corpus;
  for (const auto& [word, n] : std::vector<std::pair<std::string, int>>{
           {"hug", 10}, {"pug", 5}, {"pun", 12}, {"bun", 4}, {"hugs", 5}})
    for (int i = 0; i < n; ++i) corpus.push_back(word);
  const Bpe tok = Bpe::train(corpus, {.vocab_size = 256 + 3 + 4});
  REQUIRE(tok.vocab_size() == 263);
  CHECK(tok.id_to_token(256) == "ug");
  CHECK(tok.id_to_token(257) == "un");
  CHECK(tok.id_to_token(258) == "hug");
  CHECK(tok.id_to_token(259) == "<|endoftext|>");
  CHECK(tok.id_to_token(262) == "<|cls|>");
  CHECK(tok.encode("hugs") == Ids{258, *tok.token_to_id("s")});
  CHECK(tok.encode("bug") == Ids{*tok.token_to_id("b"), 256});

  // Byte ids follow GPT-2's encoder.json.
  for (unsigned b = 0; b < 256; ++b) CHECK(tok.byte_token(static_cast<unsigned char>(b)) == gpt2().byte_token(static_cast<unsigned char>(b)));

  // "aaaa": aa (count 3) then aa+aa (count 1) with min_frequency 1; with 2 only the first.
  const Bpe a1 = Bpe::train({"aaaa"}, {.vocab_size = 1000, .min_frequency = 1, .special_tokens = {}, .roles = SpecialRoles::unbound()});
  CHECK(a1.vocab_size() == 258);
  CHECK(a1.encode("aaaa") == Ids{257});
  CHECK(a1.encode("aaaaaaa") == Ids{257, 256, *a1.token_to_id("a")});
  const Bpe a2 = Bpe::train({"aaaa"}, {.vocab_size = 1000, .min_frequency = 2, .special_tokens = {}, .roles = SpecialRoles::unbound()});
  CHECK(a2.vocab_size() == 257);

  // Ties go to the smaller (left id, right id): "cd" and "ab" both occur once.
  const Bpe tie = Bpe::train({"cd", "ab"}, {.vocab_size = 257, .min_frequency = 1, .special_tokens = {}, .roles = SpecialRoles::unbound()});
  CHECK(tie.id_to_token(256) == "ab");
}

TEST_CASE("train: vocab_size is honoured exactly, special tokens and roles") {
  const std::vector<std::string> corpus = small_corpus();
  for (const std::size_t size : {260u, 300u, 517u, 900u}) {
    const Bpe tok = Bpe::train(corpus, {.vocab_size = size, .min_frequency = 1});
    CHECK(tok.vocab_size() == size);
  }
  const Bpe tok = Bpe::train(corpus, {.vocab_size = 600, .min_frequency = 1});
  const std::int32_t eot = *tok.token_to_id("<|endoftext|>");
  CHECK(eot == 596);
  CHECK(tok.bos() == eot);
  CHECK(tok.eos() == eot);
  CHECK(tok.pad() == 597);
  CHECK(tok.sep() == 598);
  CHECK(tok.cls() == 599);
  CHECK(tok.special_ids() == Ids{596, 597, 598, 599});
  const std::string text = "x<|pad|>y<|endoftext|>";
  const Ids with = tok.encode(text, {.allow_special = true});
  CHECK(with == Ids{*tok.token_to_id("x"), 597, *tok.token_to_id("y"), eot});
  const Ids without = tok.encode(text);
  for (const std::int32_t id : without) CHECK(!tok.is_special(id));
  CHECK(tok.decode(without) == text);
  CHECK(tok.decode(with) == text);
  CHECK(tok.decode(with, {.skip_special = true}) == "xy");

  // The longest special token wins at a position; roles can be unbound.
  const Bpe nested = Bpe::train(corpus, {.vocab_size = 400,
                                         .special_tokens = {"<s>", "<s>x"},
                                         .roles = {.bos = "<s>", .eos = "<s>x", .pad = {}, .sep = {}, .cls = {}}});
  // With min_frequency 2 this small corpus runs out of pairs before 600 tokens.
  const Bpe short_of_pairs = Bpe::train(corpus, {.vocab_size = 600});
  CHECK(short_of_pairs.vocab_size() < 600);
  CHECK(short_of_pairs.vocab_size() == 256 + short_of_pairs.merge_count() + 4);
  CHECK(nested.encode("<s>x<s>", {.allow_special = true}) == Ids{399, 398});
  CHECK(nested.bos() == 398);
  CHECK(nested.eos() == 399);
  CHECK(!nested.pad());

  CHECK(error_of([&] { (void)Bpe::train(corpus, {.vocab_size = 259}); }).find("vocab_size 259") != std::string::npos);
  CHECK(error_of([&] { (void)Bpe::train(corpus, {.special_tokens = {"<a>", "<a>"}}); }).find("listed twice") !=
        std::string::npos);
  CHECK(error_of([&] { (void)Bpe::train(corpus, {.special_tokens = {"<a>"}}); })
            .find("bos_token '<|endoftext|>' is not one of special_tokens") != std::string::npos);
}

TEST_CASE("train: encode agrees with plain BPE and round-trips random bytes (several seeds)") {
  const fs::path dir = scratch_dir("roundtrip");
  for (const std::uint64_t seed : {1u, 2u, 3u, 4u}) {
    rlxf::Rng rng(seed);
    std::vector<std::string> corpus;
    for (int i = 0; i < 100; ++i) corpus.push_back(random_text(rng, 60));
    const Bpe tok = Bpe::train(corpus, {.vocab_size = 700, .min_frequency = 1});
    tok.save(dir);
    const ReferenceBpe ref(tok, dir / "merges.txt");
    for (int i = 0; i < 50; ++i) {
      std::string text = random_text(rng, 1 + rng.next_below(80));
      if (i % 10 == 0) text += std::string(130 + rng.next_below(100), static_cast<char>(rng.next_below(256)));
      INFO("seed ", seed, ", text ", i);
      const Ids ids = tok.encode(text);
      for (const std::int32_t id : ids) REQUIRE(static_cast<std::size_t>(id) < tok.vocab_size());
      CHECK(tok.decode(ids) == text);
      CHECK(ids == ref.encode(text));
    }
  }
}

TEST_CASE("save -> load encodes identically (trained and GPT-2)") {
  std::vector<std::string> texts = small_corpus();
  texts.push_back("Fiscal deficit <|endoftext|> below 3% <|pad|>");
  const auto check_same = [&](const Bpe& a, const Bpe& b) {
    CHECK(a.vocab_size() == b.vocab_size());
    CHECK(a.merge_count() == b.merge_count());
    CHECK(a.special_ids() == b.special_ids());
    for (const auto r : rlxf::tokenize::special_roles) CHECK(a.role(r) == b.role(r));
    for (const std::string& t : texts) {
      CHECK(a.encode(t) == b.encode(t));
      CHECK(a.encode(t, {.allow_special = true}) == b.encode(t, {.allow_special = true}));
    }
  };
  const Bpe trained = Bpe::train(small_corpus(), {.vocab_size = 800, .min_frequency = 1});
  const fs::path dir = scratch_dir("save_trained");
  trained.save(dir);
  CHECK(read_text(dir / "merges.txt").starts_with("#version: 0.2\n"));
  const auto map = nlohmann::json::parse(read_text(dir / "special_tokens_map.json"));
  CHECK(map.at("bos_token") == "<|endoftext|>");
  CHECK(map.at("pad_token") == "<|pad|>");
  CHECK(!fs::exists(dir / "vocab.json.tmp"));
  check_same(trained, Bpe::load(dir));

  const fs::path gdir = scratch_dir("save_gpt2");
  gpt2().save(gdir);
  const Bpe reloaded = Bpe::load(gdir);
  check_same(gpt2(), reloaded);
  CHECK(reloaded.bos() == 50256);
  // The directory form of the original files loads too.
  check_same(gpt2(), Bpe::load(gpt2_dir));
}

TEST_CASE("load: malformed files give errors naming the file (and line)") {
  const Bpe tok = Bpe::train({"aaaa bbbb aaaa"}, {.vocab_size = 300, .min_frequency = 1});
  const fs::path good = scratch_dir("good");
  tok.save(good);
  const std::string vocab = read_text(good / "vocab.json");
  const std::string merges = read_text(good / "merges.txt");
  const fs::path dir = scratch_dir("bad");
  const fs::path v = dir / "vocab.json", m = dir / "merges.txt", s = dir / "special_tokens_map.json";
  // Loads with `vocab_text` and `merges_text` (and a special_tokens_map if given); returns the error.
  const auto error = [&](std::string_view vocab_text, std::string_view merges_text,
                         std::optional<std::string> map = std::nullopt) {
    fs::remove(s);
    write_text(v, vocab_text);
    write_text(m, merges_text);
    if (map) write_text(s, *map);
    return error_of([&] { (void)Bpe::load(dir); });
  };
  CHECK(error(vocab, merges) == "");
  const auto contains = [](const std::string& msg, std::string_view part) {
    INFO("message: ", msg);
    CHECK(msg.find(part) != std::string::npos);
  };
  contains(error("{\"a\": 1,", merges), v.string() + ": not valid JSON");
  contains(error("[1, 2]", merges), v.string() + ": expected a JSON object");
  // Duplicate id: give "#" the id of "!".
  std::string dup = vocab;
  dup.replace(dup.find("\"#\": 2"), 6, "\"#\": 0");
  contains(error(dup, merges), v.string() + ": duplicate id 0");
  // Missing byte token: rename "!" to a special-looking token.
  std::string missing = vocab;
  missing.replace(missing.find("\"!\": 0"), 6, "\"<x>\": 0");
  contains(error(missing, merges), v.string() + ": missing the byte token for byte 33");
  contains(error(vocab, merges + "a zz\n"), m.string() + ": line ");
  contains(error(vocab, merges + "a zz\n"), "token 'zz' is not in");
  contains(error(vocab, "#version: 0.2\nb a\n"), m.string() + ": line 2: the merged token 'ba' is not in");
  contains(error(vocab, "#version: 0.2\naa\n"), m.string() + ": line 2: expected two tokens");
  contains(error(vocab, merges + merges.substr(merges.find('\n') + 1)), "duplicate merge");
  REQUIRE(tok.token_to_id("aaaa"));
  contains(error(vocab, "#version: 0.2\naa aa\n"), m.string() + ": line 2: token 'aa' is neither a byte token nor made by any merge");
  contains(error(vocab, merges, "{\"bos_token\": \"<nope>\"}"),
           s.string() + ": bos_token '<nope>' is not a special token");
  contains(error(vocab, merges, "{\"eos_token\": \"aa\"}"), "is an ordinary token");
  contains(error(vocab, merges, "{\"pad_token\": 3}"), s.string() + ": 'pad_token' must be a string");
  CHECK(error(vocab, merges, "{\"pad_token\": {\"content\": \"<|pad|>\"}, \"unk_token\": \"x\"}") == "");
  contains(error_of([&] { (void)Bpe::load(scratch_dir("empty")); }), "neither vocab.json nor encoder.json");
  contains(error_of([&] { (void)Bpe::load(dir / "nope.json", m); }), (dir / "nope.json").string() + ": cannot open");
}
