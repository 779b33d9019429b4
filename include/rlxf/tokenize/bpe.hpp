#pragma once
// Byte-level BPE, the tokenizer of GPT-2: train a vocabulary on a corpus, load GPT-2's or
// Hugging Face's files, encode text to token ids and decode ids back to bytes, losslessly for
// any byte string.
//
//   auto tok = rlxf::tokenize::Bpe::train(texts, {.vocab_size = 4096});
//   std::vector<std::int32_t> ids = tok.encode("Fiscal deficit below 3% of GDP");
//   std::string text = tok.decode(ids);                       // == the input
//   tok.save("run/tokenizer");                                // vocab.json, merges.txt, ...
//   auto gpt2 = rlxf::tokenize::Bpe::load("gpt2/encoder.json", "gpt2/vocab.bpe");
//
// Encoding: text is split into pieces by GPT-2's pre-tokenizer (pretokenize.hpp); each piece's
// bytes start as byte tokens, and the merge of lowest rank (earliest in merges.txt) present
// among adjacent tokens is applied everywhere in the piece, left to right, until none applies.
// Special tokens (e.g. "<|endoftext|>") are single ids that no merge produces. In encode()
// their text is ordinary text unless EncodeOptions::allow_special is set; then each occurrence
// (leftmost first, the longest special token at a position) becomes its id.
//
// Ids: a trained vocabulary has the 256 byte tokens first (ids 0..255, in GPT-2's order: bytes
// sorted by their byte_to_unicode code point, so "!" is 0 and the space, 'Ġ', is 220, exactly
// as in GPT-2's encoder.json), then the tokens made by merges in the order they were learned,
// then the special tokens in BpeTrainConfig::special_tokens order. A loaded vocabulary keeps
// the file's ids.
//
// Thread safety: a Bpe is immutable after train() or load(); every const member, encode and
// decode included, may be called from many threads at once (encode's word cache is local to
// each call).
#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <limits>
#include <optional>
#include <queue>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "rlxf/concepts.hpp"
#include "rlxf/core/error.hpp"
#include "rlxf/io/file.hpp"
#include "rlxf/io/json.hpp"
#include "rlxf/tokenize/pretokenize.hpp"

namespace rlxf::tokenize {

// The roles a special token can play. Each role is bound to at most one special token; one
// token may hold several roles (GPT-2's "<|endoftext|>" is both BOS and EOS).
enum class SpecialRole { bos, eos, pad, sep, cls };
inline constexpr std::array<SpecialRole, 5> special_roles{SpecialRole::bos, SpecialRole::eos,
                                                          SpecialRole::pad, SpecialRole::sep,
                                                          SpecialRole::cls};

// Hugging Face's name of a role in special_tokens_map.json ("bos_token", ...).
constexpr std::string_view hf_role_name(SpecialRole r) {
  constexpr std::array<std::string_view, 5> names{"bos_token", "eos_token", "pad_token", "sep_token",
                                                  "cls_token"};
  return names[static_cast<std::size_t>(r)];
}

// The special token bound to each role (its text), or nullopt for an unbound role.
struct SpecialRoles {
  std::optional<std::string> bos = "<|endoftext|>";
  std::optional<std::string> eos = "<|endoftext|>";
  std::optional<std::string> pad = "<|pad|>";
  std::optional<std::string> sep = "<|sep|>";
  std::optional<std::string> cls = "<|cls|>";

  // No role bound (e.g. for a vocabulary without special tokens).
  static SpecialRoles unbound() { return {.bos = {}, .eos = {}, .pad = {}, .sep = {}, .cls = {}}; }

  std::optional<std::string>& operator[](SpecialRole r) { return this->*member(r); }
  const std::optional<std::string>& operator[](SpecialRole r) const { return this->*member(r); }

 private:
  static constexpr std::optional<std::string> SpecialRoles::*member(SpecialRole r) {
    switch (r) {
      case SpecialRole::bos: return &SpecialRoles::bos;
      case SpecialRole::eos: return &SpecialRoles::eos;
      case SpecialRole::pad: return &SpecialRoles::pad;
      case SpecialRole::sep: return &SpecialRoles::sep;
      case SpecialRole::cls: break;
    }
    return &SpecialRoles::cls;
  }
};

struct BpeTrainConfig {
  // The exact size of the trained vocabulary: 256 byte tokens + merged tokens + special tokens.
  // It is smaller only when the corpus runs out of pairs seen min_frequency times.
  std::size_t vocab_size = 4096;
  // A pair of adjacent tokens is merged only if it occurs at least this often in the corpus.
  std::size_t min_frequency = 2;
  // Special tokens, non-empty and valid UTF-8, distinct; their ids follow the merged tokens in
  // this order. Their occurrences in the corpus are cut out before counting (never learned).
  std::vector<std::string> special_tokens = {"<|endoftext|>", "<|pad|>", "<|sep|>", "<|cls|>"};
  // Each bound role must name one of special_tokens.
  SpecialRoles roles{};
};

struct EncodeOptions {
  // When true, special-token text in the input becomes the special token's id; when false it
  // is encoded as ordinary text (safe for untrusted input).
  bool allow_special = false;
};

struct DecodeOptions {
  // When true, special tokens produce no text; when false they produce their own text.
  bool skip_special = false;
};

class Bpe {
 public:
  // ---- training ----

  // Learns a vocabulary from `corpus` (each string a document; pieces never span documents).
  // Each step merges the pair of adjacent tokens with the highest count over the corpus
  // (counted per pre-tokenized word times the word's frequency); ties go to the pair whose
  // (left id, right id) is smallest. A merge whose text equals a special token's text is
  // skipped (it could not be told apart in vocab.json). When a merge's text already is a token
  // (reached by another split), the merge is recorded but adds no token. Training stops at
  // cfg.vocab_size tokens or when no pair occurs cfg.min_frequency times.
  static Bpe train(const std::vector<std::string>& corpus, const BpeTrainConfig& cfg) {
    check_train_config(cfg);
    Bpe bpe;
    bpe.init_byte_tokens();
    Trainer trainer(bpe, corpus, cfg);
    trainer.run(cfg.vocab_size - cfg.special_tokens.size(), cfg.min_frequency);
    for (const std::string& s : cfg.special_tokens) bpe.add_special(s);
    for (const SpecialRole r : special_roles)
      if (cfg.roles[r]) bpe.bind_role(r, *cfg.roles[r], "BpeTrainConfig::roles");
    bpe.finish();
    return bpe;
  }

  // ---- files ----

  // Loads a tokenizer directory: vocab.json (or GPT-2's encoder.json), merges.txt (or GPT-2's
  // vocab.bpe) and, if present, special_tokens_map.json.
  static Bpe load(const std::filesystem::path& dir) {
    const auto pick = [&](const char* hf, const char* gpt2) {
      if (std::filesystem::exists(dir / hf)) return dir / hf;
      if (std::filesystem::exists(dir / gpt2)) return dir / gpt2;
      fail("loading tokenizer from ", dir.string(), ": neither ", hf, " nor ", gpt2, " exists");
    };
    const std::filesystem::path vocab = pick("vocab.json", "encoder.json");
    const std::filesystem::path merges = pick("merges.txt", "vocab.bpe");
    const std::filesystem::path map = dir / "special_tokens_map.json";
    return load(vocab, merges, std::filesystem::exists(map) ? std::optional(map) : std::nullopt);
  }

  // Loads from explicit files, e.g. GPT-2's load("encoder.json", "vocab.bpe").
  //
  // vocab_json: a JSON object {token: id}, ids 0..n-1 each used once. Ordinary tokens are
  //   written with byte_to_unicode; all 256 byte tokens must be present.
  // merges: one merge "left right" per line (both in the byte_to_unicode form), rank = order;
  //   an optional first line "#version: ..." and blank lines are ignored. Both parts and their
  //   concatenation must be in the vocabulary, each part must be a byte token or made by some
  //   merge, and no pair may appear twice.
  // Every vocabulary entry that is neither a byte token nor made by a merge is a special token,
  //   its key being its literal text (GPT-2's "<|endoftext|>", id 50256).
  // special_tokens_map: Hugging Face's file; bos_token, eos_token, pad_token, sep_token and
  //   cls_token (a string or {"content": ...}) bind roles, additional_special_tokens may list
  //   more; each named token must be a special token of the vocabulary; other keys (e.g.
  //   unk_token) are ignored. Without it, the roles of SpecialRoles' defaults whose token
  //   exists are bound (for GPT-2: BOS = EOS = "<|endoftext|>").
  // Malformed input throws rlxf::Error naming the file (and the line, for merges).
  static Bpe load(const std::filesystem::path& vocab_json, const std::filesystem::path& merges,
                  const std::optional<std::filesystem::path>& special_tokens_map = std::nullopt) {
    Bpe bpe;
    const std::vector<std::string> keys = read_vocab_json(vocab_json);
    bpe.read_vocab_and_merges(keys, vocab_json, merges);
    if (special_tokens_map) {
      bpe.read_special_tokens_map(*special_tokens_map);
    } else {
      const SpecialRoles defaults;
      for (const SpecialRole r : special_roles)
        if (const auto id = bpe.special_id(*defaults[r])) bpe.roles_[static_cast<std::size_t>(r)] = *id;
    }
    bpe.finish();
    return bpe;
  }

  // Writes vocab.json, merges.txt ("#version: 0.2" first) and special_tokens_map.json into
  // `dir` (created if needed), in the formats load() reads; load(dir) encodes identically.
  // Each file is written atomically (io::AtomicFile: a unique temporary file, fsync, rename).
  void save(const std::filesystem::path& dir) const {
    std::filesystem::create_directories(dir);
    std::string vocab = "{";
    for (std::size_t id = 0; id < tokens_.size(); ++id) {
      if (id) vocab += ", ";
      vocab += nlohmann::json(id_to_token(static_cast<std::int32_t>(id))).dump();
      vocab += ": " + std::to_string(id);
    }
    vocab += "}\n";
    std::string merges = "#version: 0.2\n";
    for (const Merge& m : merges_)
      merges += bytes_to_vocab_string(tokens_[m.left]) + ' ' + bytes_to_vocab_string(tokens_[m.right]) + '\n';
    nlohmann::ordered_json map = nlohmann::ordered_json::object();
    std::vector<bool> has_role(tokens_.size(), false);
    for (const SpecialRole r : special_roles)
      if (const auto id = role(r)) {
        map[std::string(hf_role_name(r))] = tokens_[*id];
        has_role[*id] = true;
      }
    nlohmann::ordered_json additional = nlohmann::ordered_json::array();
    for (const std::int32_t id : special_list_)
      if (!has_role[id]) additional.push_back(tokens_[id]);
    map["additional_special_tokens"] = additional;
    write_file(dir / "vocab.json", vocab);
    write_file(dir / "merges.txt", merges);
    write_file(dir / "special_tokens_map.json", map.dump(2) + "\n");
  }

  // ---- encoding and decoding ----

  // The token ids of `text` (any bytes). Every id is < vocab_size().
  std::vector<std::int32_t> encode(std::string_view text, EncodeOptions options = {}) const {
    std::vector<std::int32_t> ids;
    ids.reserve(text.size() / 3 + 4);
    WordCache cache;
    if (!options.allow_special || special_list_.empty()) {
      encode_ordinary(text, ids, cache);
      return ids;
    }
    std::size_t start = 0;  // text[start, i) is ordinary text not yet encoded
    for (std::size_t i = 0; i < text.size();) {
      const std::optional<std::int32_t> special = special_at(text, i);
      if (!special) {
        ++i;
        continue;
      }
      encode_ordinary(text.substr(start, i - start), ids, cache);
      ids.push_back(*special);
      i += tokens_[*special].size();
      start = i;
    }
    encode_ordinary(text.substr(start), ids, cache);
    return ids;
  }

  // encode() of each text.
  std::vector<std::vector<std::int32_t>> encode_batch(std::span<const std::string> texts,
                                                      EncodeOptions options = {}) const {
    std::vector<std::vector<std::int32_t>> out;
    out.reserve(texts.size());
    for (const std::string& t : texts) out.push_back(encode(t, options));
    return out;
  }

  // The bytes of `ids`, concatenated; decode(encode(t)) == t for every byte string t. An id
  // outside [0, vocab_size()) throws rlxf::Error naming it.
  std::string decode(std::span<const std::int32_t> ids, DecodeOptions options = {}) const {
    std::string out;
    out.reserve(ids.size() * 4);
    for (const std::int32_t id : ids) {
      if (id < 0 || static_cast<std::size_t>(id) >= tokens_.size())
        fail("Bpe::decode: unknown token id ", id, " (vocabulary size ", tokens_.size(), ")");
      if (options.skip_special && special_[id]) continue;
      out += tokens_[id];
    }
    return out;
  }

  // ---- vocabulary ----

  std::size_t vocab_size() const noexcept { return tokens_.size(); }
  std::size_t merge_count() const noexcept { return merges_.size(); }

  // The id of a token given in its vocab.json form (byte_to_unicode for ordinary tokens, e.g.
  // "Ġthe"; the literal text for special tokens, e.g. "<|endoftext|>").
  std::optional<std::int32_t> token_to_id(std::string_view token) const {
    if (const auto id = special_id(token)) return id;
    const std::optional<std::string> bytes = vocab_string_to_bytes(token);
    if (!bytes) return std::nullopt;
    const auto it = ordinary_ids_.find(*bytes);
    if (it == ordinary_ids_.end()) return std::nullopt;
    return it->second;
  }

  // The vocab.json form of token `id` (the inverse of token_to_id). Throws on an unknown id.
  std::string id_to_token(std::int32_t id) const {
    check_id(id, "id_to_token");
    return special_[id] ? tokens_[id] : bytes_to_vocab_string(tokens_[id]);
  }

  // The bytes token `id` decodes to. Throws on an unknown id.
  std::string_view token_bytes(std::int32_t id) const {
    check_id(id, "token_bytes");
    return tokens_[id];
  }

  // The id of the single-byte token for `byte`.
  std::int32_t byte_token(unsigned char byte) const noexcept { return byte_ids_[byte]; }

  bool is_special(std::int32_t id) const noexcept {
    return id >= 0 && static_cast<std::size_t>(id) < tokens_.size() && special_[id];
  }
  // The special tokens' ids, in increasing order.
  const std::vector<std::int32_t>& special_ids() const noexcept { return special_list_; }

  // The id bound to a role, if any.
  std::optional<std::int32_t> role(SpecialRole r) const { return roles_[static_cast<std::size_t>(r)]; }
  std::optional<std::int32_t> bos() const { return role(SpecialRole::bos); }
  std::optional<std::int32_t> eos() const { return role(SpecialRole::eos); }
  std::optional<std::int32_t> pad() const { return role(SpecialRole::pad); }
  std::optional<std::int32_t> sep() const { return role(SpecialRole::sep); }
  std::optional<std::int32_t> cls() const { return role(SpecialRole::cls); }

 private:
  Bpe() = default;  // built only by train() and load()

  // Merge of rank r = its index in merges_: tokens left and right become token result.
  struct Merge {
    std::int32_t left;
    std::int32_t right;
    std::int32_t result;
  };
  static constexpr std::uint32_t no_rank = std::numeric_limits<std::uint32_t>::max();

  static std::uint64_t pair_key(std::int32_t left, std::int32_t right) {
    return std::uint64_t{static_cast<std::uint32_t>(left)} << 32 | static_cast<std::uint32_t>(right);
  }

  // Open-addressing hash table from a pair of token ids to its merge rank: the inner loop of
  // encode, so kept flat (16 bytes per slot, load factor <= 1/2, linear probing).
  class RankTable {
   public:
    void build(const std::vector<Merge>& merges) {
      std::size_t cap = 16;
      while (cap < 2 * merges.size()) cap *= 2;
      slots_.assign(cap, Slot{empty_key, no_rank});
      mask_ = cap - 1;
      for (std::size_t r = 0; r < merges.size(); ++r) {
        const std::uint64_t key = pair_key(merges[r].left, merges[r].right);
        std::size_t i = hash(key) & mask_;
        while (slots_[i].key != empty_key) i = (i + 1) & mask_;
        slots_[i] = {key, static_cast<std::uint32_t>(r)};
      }
    }
    std::uint32_t rank(std::int32_t left, std::int32_t right) const {
      const std::uint64_t key = pair_key(left, right);
      for (std::size_t i = hash(key) & mask_;; i = (i + 1) & mask_) {
        if (slots_[i].key == key) return slots_[i].rank;
        if (slots_[i].key == empty_key) return no_rank;
      }
    }

   private:
    struct Slot {
      std::uint64_t key;
      std::uint32_t rank;
    };
    static constexpr std::uint64_t empty_key = ~std::uint64_t{0};  // ids are < 2^31
    static std::size_t hash(std::uint64_t key) {
      return static_cast<std::size_t>((key * 0x9E3779B97F4A7C15ull) >> 32);
    }
    std::vector<Slot> slots_;
    std::size_t mask_ = 0;
  };

  // The ids of pieces already encoded in one encode() call (pieces are views into its text):
  // an open-addressing table of pieces whose ids sit one after another in `ids`. It stops
  // taking new pieces at max_pieces, which bounds its memory on huge inputs.
  class WordCache {
   public:
    static constexpr std::size_t max_pieces = std::size_t{1} << 20;

    // Appends the cached ids of `piece` to `out` and returns true, or returns false.
    bool append(std::string_view piece, std::uint64_t hash, std::vector<std::int32_t>& out) const {
      if (slots_.empty()) return false;
      for (std::size_t i = hash & mask_;; i = (i + 1) & mask_) {
        const Slot& s = slots_[i];
        if (!s.data) return false;
        if (s.hash == hash && std::string_view(s.data, s.size) == piece) {
          out.insert(out.end(), ids_.begin() + s.offset, ids_.begin() + s.offset + s.count);
          return true;
        }
      }
    }

    // Caches the ids of `piece` (not cached yet), ids[0..count).
    void insert(std::string_view piece, std::uint64_t hash, const std::int32_t* ids, std::size_t count) {
      if (used_ >= max_pieces) return;
      if (2 * (used_ + 1) > slots_.size()) grow();
      const Slot slot{piece.data(), static_cast<std::uint32_t>(piece.size()), static_cast<std::uint32_t>(ids_.size()),
                      static_cast<std::uint32_t>(count), hash};
      place(slot);
      ids_.insert(ids_.end(), ids, ids + count);
      ++used_;
    }

   private:
    struct Slot {
      const char* data = nullptr;  // nullptr: empty
      std::uint32_t size = 0;
      std::uint32_t offset = 0;  // into ids_
      std::uint32_t count = 0;
      std::uint64_t hash = 0;
    };
    void place(const Slot& slot) {
      std::size_t i = slot.hash & mask_;
      while (slots_[i].data) i = (i + 1) & mask_;
      slots_[i] = slot;
    }
    void grow() {
      std::vector<Slot> old = std::move(slots_);
      slots_.assign(old.empty() ? 1024 : 2 * old.size(), Slot{});
      mask_ = slots_.size() - 1;
      for (const Slot& s : old)
        if (s.data) place(s);
    }
    std::vector<Slot> slots_;
    std::size_t mask_ = 0;
    std::size_t used_ = 0;
    std::vector<std::int32_t> ids_;
  };

  // A 64-bit hash of a piece for WordCache (8 bytes at a time; pieces are short).
  static std::uint64_t hash_piece(std::string_view s) {
    const auto mix = [](std::uint64_t h) {
      h ^= h >> 32;
      h *= 0xD6E8FEB86659FD93ull;
      return h ^ (h >> 32);
    };
    std::uint64_t h = 0x9E3779B97F4A7C15ull ^ s.size();
    std::size_t i = 0;
    for (; i + 8 <= s.size(); i += 8) {
      std::uint64_t w;
      std::memcpy(&w, s.data() + i, 8);
      h = mix(h ^ w);
    }
    if (i < s.size()) {
      std::uint64_t w = 0;
      std::memcpy(&w, s.data() + i, s.size() - i);
      h = mix(h ^ w ^ 0x5555555555555555ull);
    }
    return mix(h);
  }

  // Pieces at least this long are merged with a heap (O(n log n)) instead of by rescanning
  // (O(n) per merge), and are not cached.
  static constexpr std::size_t long_piece_bytes = 128;

  // ---- encoding ----

  void encode_ordinary(std::string_view text, std::vector<std::int32_t>& ids, WordCache& cache) const {
    for_each_gpt2_piece(text, [&](std::string_view piece) {
      if (piece.size() == 1) {
        ids.push_back(byte_ids_[static_cast<unsigned char>(piece[0])]);
      } else if (piece.size() >= long_piece_bytes) {
        merge_long_piece(piece, ids);
      } else if (const std::uint64_t hash = hash_piece(piece); !cache.append(piece, hash, ids)) {
        const std::size_t before = ids.size();
        merge_piece(piece, ids);
        cache.insert(piece, hash, ids.data() + before, ids.size() - before);
      }
    });
  }

  // Appends the BPE of a piece shorter than long_piece_bytes: each pass finds the lowest rank
  // among adjacent pairs and merges every occurrence of that pair, left to right.
  void merge_piece(std::string_view piece, std::vector<std::int32_t>& out) const {
    std::array<std::int32_t, long_piece_bytes> sym;
    std::array<std::uint32_t, long_piece_bytes> rank;   // rank[i]: of pair (sym[i], sym[i+1])
    std::array<bool, long_piece_bytes> merged;           // sym[i] made in this pass
    std::size_t n = piece.size();
    for (std::size_t i = 0; i < n; ++i) sym[i] = byte_ids_[static_cast<unsigned char>(piece[i])];
    for (std::size_t i = 0; i + 1 < n; ++i)
      rank[i] = byte_pair_ranks_[static_cast<unsigned char>(piece[i]) << 8 | static_cast<unsigned char>(piece[i + 1])];
    rank[n - 1] = no_rank;
    while (n > 1) {
      const std::uint32_t best = *std::min_element(rank.begin(), rank.begin() + static_cast<std::ptrdiff_t>(n - 1));
      if (best == no_rank) break;
      const std::int32_t result = merges_[best].result;
      std::size_t w = 0;
      for (std::size_t r = 0; r < n; ++w) {
        if (rank[r] == best) {  // rank identifies the pair: sym[r], sym[r + 1] merge
          sym[w] = result;
          merged[w] = true;
          r += 2;
        } else {
          sym[w] = sym[r];
          rank[w] = rank[r];
          merged[w] = false;
          r += 1;
        }
      }
      n = w;
      for (std::size_t i = 0; i + 1 < n; ++i)
        if (merged[i] || merged[i + 1]) rank[i] = ranks_.rank(sym[i], sym[i + 1]);
      rank[n - 1] = no_rank;
    }
    out.insert(out.end(), sym.begin(), sym.begin() + static_cast<std::ptrdiff_t>(n));
  }

  // Appends the BPE of a long piece, with the same result as merge_piece in O(n log n): tokens
  // form a linked list and a min-heap holds (rank, position) of adjacent pairs. All entries of
  // the lowest rank are taken at once and applied left to right (one pass of merge_piece;
  // entries whose pair has changed are skipped); the pairs they create are queued after.
  void merge_long_piece(std::string_view piece, std::vector<std::int32_t>& out) const {
    const std::size_t n = piece.size();
    const auto none = static_cast<std::uint32_t>(n);
    std::vector<std::int32_t> sym(n);
    std::vector<std::uint32_t> next(n), prev(n);  // `none` at the ends
    for (std::size_t i = 0; i < n; ++i) {
      sym[i] = byte_ids_[static_cast<unsigned char>(piece[i])];
      next[i] = static_cast<std::uint32_t>(i + 1);
      prev[i] = i == 0 ? none : static_cast<std::uint32_t>(i - 1);
    }
    std::vector<bool> dead(n, false);
    using Entry = std::pair<std::uint32_t, std::uint32_t>;  // (rank, position)
    std::priority_queue<Entry, std::vector<Entry>, std::greater<>> heap;
    std::vector<std::uint32_t> created;  // positions whose pairs are queued after the pass
    const auto push = [&](std::uint32_t i) {
      if (i == none || next[i] == none) return;
      if (const std::uint32_t r = ranks_.rank(sym[i], sym[next[i]]); r != no_rank) heap.push({r, i});
    };
    for (std::uint32_t i = 0; i + 1 < n; ++i) push(i);
    while (!heap.empty()) {
      const std::uint32_t r = heap.top().first;
      const Merge& m = merges_[r];
      created.clear();
      while (!heap.empty() && heap.top().first == r) {  // positions pop in increasing order
        const std::uint32_t i = heap.top().second;
        heap.pop();
        if (dead[i] || next[i] == none || sym[i] != m.left || sym[next[i]] != m.right) continue;
        const std::uint32_t j = next[i];
        sym[i] = m.result;
        dead[j] = true;
        next[i] = next[j];
        if (next[j] != none) prev[next[j]] = i;
        created.push_back(prev[i]);
        created.push_back(i);
      }
      for (const std::uint32_t i : created)
        if (i == none || !dead[i]) push(i);
    }
    for (std::uint32_t i = 0; i != none; i = next[i]) out.push_back(sym[i]);
  }

  // The special token whose text starts at text[i] (the longest, if several), if any.
  std::optional<std::int32_t> special_at(std::string_view text, std::size_t i) const {
    if (!special_first_byte_[static_cast<unsigned char>(text[i])]) return std::nullopt;
    for (const std::int32_t id : specials_longest_first_)
      if (text.substr(i).starts_with(tokens_[id])) return id;
    return std::nullopt;
  }

  // ---- construction ----

  // Byte tokens as ids 0..255 in GPT-2's order (by byte_to_unicode code point).
  void init_byte_tokens() {
    std::array<unsigned, 256> order{};
    for (unsigned b = 0; b < 256; ++b) order[b] = b;
    std::sort(order.begin(), order.end(),
              [](unsigned a, unsigned b) { return byte_to_unicode[a] < byte_to_unicode[b]; });
    for (const unsigned b : order) {
      byte_ids_[b] = static_cast<std::int32_t>(tokens_.size());
      add_ordinary(std::string(1, static_cast<char>(b)));
    }
  }

  std::int32_t add_ordinary(std::string bytes) {
    const auto id = static_cast<std::int32_t>(tokens_.size());
    ordinary_ids_.emplace(bytes, id);
    tokens_.push_back(std::move(bytes));
    special_.push_back(false);
    return id;
  }

  void add_special(std::string text) {
    const auto id = static_cast<std::int32_t>(tokens_.size());
    special_ids_.emplace(text, id);
    tokens_.push_back(std::move(text));
    special_.push_back(true);
  }

  std::optional<std::int32_t> special_id(std::string_view text) const {
    const auto it = special_ids_.find(std::string(text));
    if (it == special_ids_.end()) return std::nullopt;
    return it->second;
  }

  void bind_role(SpecialRole r, const std::string& text, const std::string& where) {
    const std::optional<std::int32_t> id = special_id(text);
    if (!id) {
      if (ordinary_ids_.contains(vocab_string_to_bytes(text).value_or(std::string{})))
        fail(where, ": ", hf_role_name(r), " '", text,
             "' is an ordinary token (a byte or made by a merge), not a special token");
      fail(where, ": ", hf_role_name(r), " '", text, "' is not a special token of the vocabulary");
    }
    roles_[static_cast<std::size_t>(r)] = *id;
  }

  // Builds the lookup structures from tokens_, special_ and merges_.
  void finish() {
    ranks_.build(merges_);
    byte_pair_ranks_.resize(256 * 256);
    for (unsigned a = 0; a < 256; ++a)
      for (unsigned b = 0; b < 256; ++b) byte_pair_ranks_[a << 8 | b] = ranks_.rank(byte_ids_[a], byte_ids_[b]);
    special_list_.clear();
    specials_longest_first_.clear();
    special_first_byte_.fill(false);
    for (std::size_t id = 0; id < tokens_.size(); ++id) {
      if (!special_[id]) continue;
      special_list_.push_back(static_cast<std::int32_t>(id));
      special_first_byte_[static_cast<unsigned char>(tokens_[id][0])] = true;
    }
    specials_longest_first_ = special_list_;
    std::stable_sort(specials_longest_first_.begin(), specials_longest_first_.end(),
                     [&](std::int32_t a, std::int32_t b) { return tokens_[a].size() > tokens_[b].size(); });
  }

  void check_id(std::int32_t id, const char* what) const {
    if (id < 0 || static_cast<std::size_t>(id) >= tokens_.size())
      fail("Bpe::", what, ": unknown token id ", id, " (vocabulary size ", tokens_.size(), ")");
  }

  static bool valid_utf8(std::string_view s) {
    for (std::size_t i = 0; i < s.size();) {
      const detail::CodePointInfo cp = detail::code_point_at(s, i);
      if (cp.bytes == 1 && static_cast<unsigned char>(s[i]) >= 0x80) return false;
      i += cp.bytes;
    }
    return true;
  }

  static void check_train_config(const BpeTrainConfig& cfg) {
    std::unordered_set<std::string> seen;
    for (const std::string& s : cfg.special_tokens) {
      if (s.empty()) fail("Bpe::train: special tokens must not be empty");
      if (!valid_utf8(s)) fail("Bpe::train: special token '", s, "' is not valid UTF-8");
      if (!seen.insert(s).second) fail("Bpe::train: special token '", s, "' is listed twice");
    }
    if (cfg.vocab_size < 256 + cfg.special_tokens.size() || cfg.vocab_size > std::size_t{1} << 30)
      fail("Bpe::train: vocab_size ", cfg.vocab_size, " must be at least 256 (byte tokens) + ",
           cfg.special_tokens.size(), " (special tokens) and at most 2^30");
    for (const SpecialRole r : special_roles)
      if (cfg.roles[r] && !seen.contains(*cfg.roles[r]))
        fail("Bpe::train: ", hf_role_name(r), " '", *cfg.roles[r], "' is not one of special_tokens");
  }

  static void write_file(const std::filesystem::path& path, const std::string& content) {
    with_context("Bpe::save: writing " + path.string(), [&] {
      io::AtomicFile file(path);
      file.append(std::as_bytes(std::span(content)));
      file.commit();
    });
  }

  // Tokenizer files are read whole; 256 MiB is far more than any real one.
  static constexpr io::JsonLimits file_limits{};

  static std::string read_file(const std::filesystem::path& path) {
    const std::vector<std::byte> bytes =
        with_context(path.string(), [&] { return io::detail::read_file(path, file_limits.max_bytes); });
    return std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  }

  static nlohmann::json parse_json(const std::filesystem::path& path) { return io::read_json(path, file_limits); }

  // The keys of vocab.json by id (ids must be exactly 0..n-1).
  static std::vector<std::string> read_vocab_json(const std::filesystem::path& path) {
    const nlohmann::json j = parse_json(path);
    if (!j.is_object()) fail(path.string(), ": expected a JSON object {token: id}");
    if (j.size() < 256) fail(path.string(), ": ", j.size(), " entries, fewer than the 256 byte tokens");
    std::vector<std::string> keys(j.size());
    std::vector<bool> used(j.size(), false);
    for (const auto& [key, value] : j.items()) {
      if (!value.is_number_integer())
        fail(path.string(), ": token '", key, "': id ", value.dump(), " is not an integer");
      const auto id = value.get<std::int64_t>();
      if (id < 0 || static_cast<std::size_t>(id) >= j.size())
        fail(path.string(), ": token '", key, "': id ", id, " is outside 0..", j.size() - 1,
             " (ids must be 0..n-1 for n entries)");
      if (used[id]) fail(path.string(), ": duplicate id ", id, ": tokens '", keys[id], "' and '", key, "'");
      if (key.empty()) fail(path.string(), ": id ", id, ": empty token");
      used[id] = true;
      keys[id] = key;
    }
    return keys;
  }

  void read_vocab_and_merges(const std::vector<std::string>& keys, const std::filesystem::path& vocab_path,
                             const std::filesystem::path& merges_path) {
    // Every key that is a byte string starts as a candidate ordinary token.
    std::unordered_map<std::string_view, std::int32_t> id_of;
    std::vector<std::optional<std::string>> bytes(keys.size());
    for (std::size_t id = 0; id < keys.size(); ++id) {
      id_of.emplace(keys[id], static_cast<std::int32_t>(id));
      bytes[id] = vocab_string_to_bytes(keys[id]);
    }
    std::vector<bool> ordinary(keys.size(), false);
    for (unsigned b = 0; b < 256; ++b) {
      const std::string key = bytes_to_vocab_string(std::string(1, static_cast<char>(b)));
      const auto it = id_of.find(key);
      if (it == id_of.end())
        fail(vocab_path.string(), ": missing the byte token for byte ", b, " ('", key, "')");
      byte_ids_[b] = it->second;
      ordinary[it->second] = true;
    }
    // Merges, in rank order; the line of each, to name it when a part turns out unreachable.
    const std::string text = read_file(merges_path);
    std::vector<std::size_t> merge_lines;
    std::unordered_set<std::uint64_t> seen;
    std::size_t line_no = 0;
    for (std::size_t pos = 0; pos < text.size();) {
      std::size_t end = text.find('\n', pos);
      if (end == std::string::npos) end = text.size();
      std::string_view line(text.data() + pos, end - pos);
      pos = end + 1;
      ++line_no;
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      if (line.empty() || (line_no == 1 && line.starts_with("#version"))) continue;
      const auto where = [&] { return rlxf::detail::concat(merges_path.string(), ": line ", line_no, ": "); };
      const std::size_t space = line.find(' ');
      if (space == std::string_view::npos || line.find(' ', space + 1) != std::string_view::npos ||
          space == 0 || space + 1 == line.size())
        fail(where(), "expected two tokens separated by one space, got '", line, "'");
      const std::string_view left = line.substr(0, space), right = line.substr(space + 1);
      std::array<std::int32_t, 2> parts{};
      for (int k = 0; k < 2; ++k) {
        const std::string_view part = k == 0 ? left : right;
        const auto it = id_of.find(part);
        if (it == id_of.end()) fail(where(), "token '", part, "' is not in ", vocab_path.string());
        parts[k] = it->second;
      }
      const std::string joined = std::string(left) + std::string(right);
      const auto result = id_of.find(joined);
      if (result == id_of.end())
        fail(where(), "the merged token '", joined, "' is not in ", vocab_path.string());
      if (!seen.insert(pair_key(parts[0], parts[1])).second) fail(where(), "duplicate merge '", line, "'");
      ordinary[result->second] = true;
      merges_.push_back({parts[0], parts[1], result->second});
      merge_lines.push_back(line_no);
    }
    for (std::size_t r = 0; r < merges_.size(); ++r)
      for (const std::int32_t part : {merges_[r].left, merges_[r].right})
        if (!ordinary[part])
          fail(merges_path.string(), ": line ", merge_lines[r], ": token '", keys[part],
               "' is neither a byte token nor made by any merge");
    // Ordinary tokens keep their bytes; the rest are special, their key being their text.
    tokens_.resize(keys.size());
    special_.assign(keys.size(), false);
    for (std::size_t id = 0; id < keys.size(); ++id) {
      if (ordinary[id]) {
        tokens_[id] = *bytes[id];
        ordinary_ids_.emplace(*bytes[id], static_cast<std::int32_t>(id));
      } else {
        tokens_[id] = keys[id];
        special_[id] = true;
        special_ids_.emplace(keys[id], static_cast<std::int32_t>(id));
      }
    }
  }

  void read_special_tokens_map(const std::filesystem::path& path) {
    const nlohmann::json j = parse_json(path);
    if (!j.is_object()) fail(path.string(), ": expected a JSON object");
    const auto content = [&](const nlohmann::json& v, std::string_view key) -> std::string {
      if (v.is_string()) return v.get<std::string>();
      if (v.is_object() && v.contains("content") && v["content"].is_string()) return v["content"].get<std::string>();
      fail(path.string(), ": '", key, "' must be a string or an object with a string \"content\"");
    };
    for (const SpecialRole r : special_roles) {
      const std::string key(hf_role_name(r));
      if (j.contains(key) && !j[key].is_null()) bind_role(r, content(j[key], key), path.string());
    }
    if (j.contains("additional_special_tokens")) {
      const nlohmann::json& list = j["additional_special_tokens"];
      if (!list.is_array()) fail(path.string(), ": 'additional_special_tokens' must be an array");
      for (const nlohmann::json& v : list) {
        const std::string text = content(v, "additional_special_tokens");
        if (!special_id(text)) fail(path.string(), ": additional special token '", text, "' is not a special token of the vocabulary");
      }
    }
  }

  // ---- training ----

  // Incremental BPE training over the distinct words of a corpus. Pair counts are kept exact
  // after every merge by visiting only the words that contain the merged pair (found through
  // an index from pair to words); the best pair comes from a max-heap whose entries may be
  // stale (checked against the exact count when popped).
  class Trainer {
   public:
    Trainer(Bpe& bpe, const std::vector<std::string>& corpus, const BpeTrainConfig& cfg)
        : bpe_(bpe), specials_(cfg.special_tokens.begin(), cfg.special_tokens.end()) {
      count_words(corpus, cfg.special_tokens);
      count_pairs();
    }

    // Merges until the vocabulary has `ordinary_target` tokens or no pair reaches min_frequency.
    void run(std::size_t ordinary_target, std::size_t min_frequency) {
      while (bpe_.tokens_.size() < ordinary_target && !heap_.empty()) {
        const HeapEntry top = heap_.top();
        heap_.pop();
        const std::uint32_t p = pair_index_.at(pair_key(top.left, top.right));
        const std::int64_t count = pairs_[p].count;
        if (count != top.count) {  // stale: re-queue with the exact count if it fell
          if (count > 0 && count < top.count) heap_.push({count, top.left, top.right});
          continue;
        }
        if (count < static_cast<std::int64_t>(min_frequency)) break;
        std::string joined = bpe_.tokens_[top.left] + bpe_.tokens_[top.right];
        if (specials_.contains(bytes_to_vocab_string(joined))) continue;  // clashes with a special token
        const auto existing = bpe_.ordinary_ids_.find(joined);
        const std::int32_t result =
            existing != bpe_.ordinary_ids_.end() ? existing->second : bpe_.add_ordinary(std::move(joined));
        // A pair merged before can reappear when a later merge re-makes one of its tokens; its
        // words are rewritten, but the merge is not recorded twice (encode applies it already).
        if (merged_.insert(pair_key(top.left, top.right)).second) bpe_.merges_.push_back({top.left, top.right, result});
        apply_merge(p, top.left, top.right, result);
      }
    }

   private:
    struct Word {
      std::uint32_t begin;  // into symbols_
      std::uint32_t size;
      std::int64_t count;
      std::uint32_t visited;  // the merge that last rewrote this word
    };
    struct PairStats {
      std::int64_t count = 0;
      std::vector<std::uint32_t> words;  // may hold stale and repeated word indices
      std::uint32_t queued = 0;          // the merge after which it was last queued
    };
    struct HeapEntry {
      std::int64_t count;
      std::int32_t left;
      std::int32_t right;
      // Priority: higher count first, then smaller (left, right).
      bool operator<(const HeapEntry& o) const {
        if (count != o.count) return count < o.count;
        return left != o.left ? left > o.left : right > o.right;
      }
    };

    void count_words(const std::vector<std::string>& corpus, const std::vector<std::string>& specials) {
      std::unordered_map<std::string_view, std::int64_t> counts;
      const auto add_text = [&](std::string_view text) {
        for_each_gpt2_piece(text, [&](std::string_view piece) {
          if (piece.size() > 1) ++counts[piece];
        });
      };
      // Cut at the earliest special token (the longest of those starting there). Each token's
      // next occurrence is searched for again only once the cut has passed it, so a document
      // costs O(length x special tokens), however many special tokens it holds.
      std::vector<std::size_t> next(specials.size());
      for (const std::string& doc_text : corpus) {
        const std::string_view doc = doc_text;
        for (std::size_t k = 0; k < specials.size(); ++k) next[k] = doc.find(specials[k]);
        std::size_t pos = 0;
        while (pos < doc.size()) {
          std::size_t cut = doc.size(), cut_len = 0;
          for (std::size_t k = 0; k < specials.size(); ++k) {
            if (next[k] != std::string_view::npos && next[k] < pos) next[k] = doc.find(specials[k], pos);
            if (next[k] < cut || (next[k] == cut && next[k] != doc.size() && specials[k].size() > cut_len)) {
              cut = next[k];
              cut_len = specials[k].size();
            }
          }
          add_text(doc.substr(pos, cut - pos));
          pos = cut + cut_len;
        }
      }
      // Sorted by text, so ids and tie-breaks do not depend on hash order.
      std::vector<std::pair<std::string_view, std::int64_t>> sorted(counts.begin(), counts.end());
      std::sort(sorted.begin(), sorted.end());
      for (const auto& [text, count] : sorted) {
        words_.push_back({static_cast<std::uint32_t>(symbols_.size()), static_cast<std::uint32_t>(text.size()), count, 0});
        for (const char c : text) symbols_.push_back(bpe_.byte_ids_[static_cast<unsigned char>(c)]);
      }
    }

    PairStats& stats(std::int32_t left, std::int32_t right) {
      const auto [it, inserted] = pair_index_.try_emplace(pair_key(left, right), static_cast<std::uint32_t>(pairs_.size()));
      if (inserted) pairs_.emplace_back();
      return pairs_[it->second];
    }

    void add(std::int32_t left, std::int32_t right, std::uint32_t word, std::int64_t count) {
      PairStats& s = stats(left, right);
      s.count += count;
      if (s.words.empty() || s.words.back() != word) s.words.push_back(word);
      if (s.queued != merges_done_) {
        s.queued = merges_done_;
        touched_.push_back({left, right});
      }
    }

    void count_pairs() {
      merges_done_ = 1;  // so every pair is queued once below
      for (std::uint32_t w = 0; w < words_.size(); ++w) {
        const Word& word = words_[w];
        for (std::uint32_t i = 0; i + 1 < word.size; ++i)
          add(symbols_[word.begin + i], symbols_[word.begin + i + 1], w, word.count);
      }
      std::vector<HeapEntry> entries;
      for (const auto& [l, r] : touched_) entries.push_back({stats(l, r).count, l, r});
      touched_.clear();
      heap_ = std::priority_queue<HeapEntry>(std::less<HeapEntry>{}, std::move(entries));
    }

    // Rewrites every word holding (a, b) with the merged token z, updating the pair counts:
    // per occurrence, the pairs (prev, a), (a, b), (b, next) lose the word's count and
    // (prev, z), (z, next) gain it; a pair between two occurrences ((b, a) -> (z, z)) is counted
    // once.
    void apply_merge(std::uint32_t p, std::int32_t a, std::int32_t b, std::int32_t z) {
      ++merges_done_;
      const std::vector<std::uint32_t> holders = std::move(pairs_[p].words);
      pairs_[p].words.clear();
      for (const std::uint32_t w : holders) {
        Word& word = words_[w];
        if (word.visited == merges_done_) continue;
        word.visited = merges_done_;
        std::int32_t* s = symbols_.data() + word.begin;
        const std::int64_t c = word.count;
        std::uint32_t out = 0;
        bool prev_merged = false;
        for (std::uint32_t i = 0; i < word.size;) {
          if (i + 1 < word.size && s[i] == a && s[i + 1] == b) {
            pairs_[p].count -= c;
            if (out > 0) {
              if (!prev_merged) sub(s[out - 1], a, c);
              add(s[out - 1], z, w, c);
            }
            if (i + 2 < word.size) {
              sub(b, s[i + 2], c);
              const bool next_merges = s[i + 2] == a && i + 3 < word.size && s[i + 3] == b;
              if (!next_merges) add(z, s[i + 2], w, c);
            }
            s[out++] = z;
            i += 2;
            prev_merged = true;
          } else {
            s[out++] = s[i++];
            prev_merged = false;
          }
        }
        word.size = out;
      }
      for (const auto& [l, r] : touched_) heap_.push({stats(l, r).count, l, r});
      touched_.clear();
    }

    void sub(std::int32_t left, std::int32_t right, std::int64_t count) {
      pairs_[pair_index_.at(pair_key(left, right))].count -= count;
    }

    Bpe& bpe_;
    std::unordered_set<std::string> specials_;  // their texts, to refuse clashing merges
    std::vector<Word> words_;
    std::vector<std::int32_t> symbols_;
    std::unordered_map<std::uint64_t, std::uint32_t> pair_index_;  // pair_key -> pairs_ index
    std::vector<PairStats> pairs_;
    std::vector<std::pair<std::int32_t, std::int32_t>> touched_;  // pairs that gained in this merge
    std::priority_queue<HeapEntry> heap_;
    std::unordered_set<std::uint64_t> merged_;  // pair_key of every recorded merge
    std::uint32_t merges_done_ = 0;
  };

  std::vector<std::string> tokens_;  // by id: bytes (ordinary) or literal text (special)
  std::vector<bool> special_;        // by id
  std::array<std::int32_t, 256> byte_ids_{};
  std::vector<Merge> merges_;        // by rank
  RankTable ranks_;
  std::vector<std::uint32_t> byte_pair_ranks_;  // [a << 8 | b]: rank of the byte tokens' pair
  std::unordered_map<std::string, std::int32_t> ordinary_ids_;  // bytes -> id
  std::unordered_map<std::string, std::int32_t> special_ids_;   // text -> id
  std::array<std::optional<std::int32_t>, 5> roles_{};          // by SpecialRole
  std::vector<std::int32_t> special_list_;                      // special ids, increasing
  std::vector<std::int32_t> specials_longest_first_;
  std::array<bool, 256> special_first_byte_{};
};

static_assert(Tokenizer<Bpe>, "Bpe must model rlxf::Tokenizer");

}  // namespace rlxf::tokenize
