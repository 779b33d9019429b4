#pragma once
// Scaled dot-product attention on the CPU, FlashAttention-2 style (Dao 2023): keys are
// visited in tiles with an online softmax, so no (q_len x kv_len) matrix is ever formed.
// Scratch per running (batch, head) job is a few (query_tile x key_tile) tiles, whatever the
// sequence length; memory grows linearly with it (the tensors themselves).
//
// With S = scale Q K^T (hidden keys at -inf), for each query block i and key tile j:
//   forward:  m' = max(m, rowmax S_ij);  P = exp(S_ij - m');  l = e^(m - m') l + rowsum P;
//             O_i = diag(e^(m - m')) O_i + P V_j;   finally O_i /= l, lse_i = m + log l.
//   backward: D_i = rowsum(dO_i * O_i);  P = exp(S_ij - lse_i)  (recomputed);
//             dV_j += P^T dO_i;  dP = dO_i V_j^T;  dS = P * (dP - D_i);
//             dQ_i += scale dS K_j;  dK_j += scale dS^T Q_i.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <new>
#include <type_traits>
#include <vector>

#include <Eigen/Core>

#include "rlxf/core/error.hpp"
#include "rlxf/core/threading.hpp"

namespace rlxf::cpu {

struct AttentionShape {
  // q_heads is a multiple of kv_heads (grouped-query attention: q head h reads kv head
  // h / (q_heads / kv_heads)).
  std::size_t batch, q_heads, kv_heads, q_len, kv_len, head_dim;
  // Rows allocated per kv head in k, v (and dk, dv) and per batch row of key_mask: a KV cache
  // holds kv_len filled rows out of kv_capacity. 0 means kv_len (tight packing).
  std::size_t kv_capacity = 0;

  std::size_t kv_stride() const { return kv_capacity ? kv_capacity : kv_len; }
};

struct AttentionOptions {
  bool causal = false;                     // query i sees key j iff j <= i + (kv_len - q_len)
  double scale = 0.0;                      // 0 means 1 / sqrt(head_dim)
  const std::uint8_t* key_mask = nullptr;  // (batch, kv_stride): 1 = attend, 0 = padding; null = all
  std::size_t key_tile = 64;               // keys per tile of the online softmax
};

namespace detail {

// Queries per block (rows of a score tile).
inline constexpr std::size_t attention_query_tile = 64;

// Allocator of cache-line-aligned storage. Eigen's vectorised loops peel scalar iterations
// until an aligned address, which changes their rounding; malloc's alignment varies between
// threads' arenas, so scratch must be aligned for a result not to depend on the thread that
// computed it. (The caller's tensors' alignment matters too, but it is the same whatever the
// thread count.)
template <class T>
struct CacheLineAllocator {
  using value_type = T;
  static constexpr std::align_val_t alignment{64};
  CacheLineAllocator() = default;
  template <class U>
  explicit CacheLineAllocator(const CacheLineAllocator<U>&) {}
  T* allocate(std::size_t n) { return static_cast<T*>(::operator new(n * sizeof(T), alignment)); }
  // The unsized aligned delete: the sized one needs -fsized-deallocation on clang before 19.
  void deallocate(T* p, std::size_t) { ::operator delete(p, alignment); }
  friend bool operator==(const CacheLineAllocator&, const CacheLineAllocator&) { return true; }
};
template <class T>
using Scratch = std::vector<T, CacheLineAllocator<T>>;

template <class T>
using RowMatrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <class T>
using MatrixMap = Eigen::Map<RowMatrix<T>>;
template <class T>
using ConstMatrixMap = Eigen::Map<const RowMatrix<T>>;
template <class T>
using VectorMap = Eigen::Map<Eigen::Matrix<T, Eigen::Dynamic, 1>>;

// What forward and backward share: the checked shape and options, the scale, the tile
// sizes and the masks.
template <class T>
struct AttentionPlan {
  AttentionShape shape;
  AttentionOptions options;
  T scale;
  std::size_t group;       // q heads per kv head
  std::size_t query_tile;  // rows of a score tile, at most q_len
  std::size_t key_tile;    // columns of a score tile, at most kv_len

  AttentionPlan(const AttentionShape& s, const AttentionOptions& opt) : shape(s), options(opt) {
    static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>,
                  "attention kernels are defined for float and double");
    RLXF_REQUIRE(s.kv_heads > 0 && s.q_heads >= s.kv_heads && s.q_heads % s.kv_heads == 0,
                 "q_heads (", s.q_heads, ") must be a positive multiple of kv_heads (",
                 s.kv_heads, ")");
    RLXF_REQUIRE(s.head_dim > 0, "head_dim must be positive");
    RLXF_REQUIRE(s.kv_capacity == 0 || s.kv_capacity >= s.kv_len, "kv_capacity (", s.kv_capacity,
                 ") is smaller than kv_len (", s.kv_len, ")");
    RLXF_REQUIRE(opt.key_tile > 0, "key_tile must be positive");
    RLXF_REQUIRE(std::isfinite(opt.scale), "scale must be finite, got ", opt.scale);
    scale = static_cast<T>(opt.scale != 0.0 ? opt.scale
                                            : 1.0 / std::sqrt(static_cast<double>(s.head_dim)));
    group = s.q_heads / s.kv_heads;
    query_tile = std::min(attention_query_tile, s.q_len);
    key_tile = std::min(opt.key_tile, s.kv_len);
  }

  // True when there is no query row to compute.
  bool empty() const { return shape.batch == 0 || shape.q_len == 0; }

  // parallel_for's min_parallel for jobs of `work` (q rows x keys x head_dim) each. A job of
  // at least a grain always runs inside a parallel region, even alone, where Eigen's products
  // stay single-threaded, so no summation order depends on the thread count. Smaller calls
  // run serially, and then every product is below Eigen's threading threshold (1e5).
  static std::size_t min_parallel_jobs(std::size_t work) {
    return work >= parallel_grain ? 1 : min_parallel_tasks(work);
  }

  // Query i may see keys [0, visible_end(i)), padding aside.
  std::size_t visible_end(std::size_t i) const {
    if (!options.causal) return shape.kv_len;
    const auto end = static_cast<std::ptrdiff_t>(i + 1 + shape.kv_len) -
                     static_cast<std::ptrdiff_t>(shape.q_len);
    return static_cast<std::size_t>(
        std::clamp<std::ptrdiff_t>(end, 0, static_cast<std::ptrdiff_t>(shape.kv_len)));
  }

  // Sets to -inf the hidden entries of the score tile `s` (rows = queries from i0, columns =
  // keys from j0, of batch b): padding keys, and keys past each row's causal end.
  void hide_keys(MatrixMap<T> s, std::size_t b, std::size_t i0, std::size_t j0) const {
    constexpr T inf = std::numeric_limits<T>::infinity();
    const auto cols = static_cast<std::size_t>(s.cols());
    if (options.key_mask != nullptr) {
      const std::uint8_t* mask = options.key_mask + b * shape.kv_stride() + j0;
      for (std::size_t c = 0; c < cols; ++c)
        if (mask[c] == 0) s.col(c).setConstant(-inf);
    }
    if (!options.causal || visible_end(i0) >= j0 + cols) return;  // no row ends inside the tile
    for (std::size_t r = 0; r < static_cast<std::size_t>(s.rows()); ++r) {
      const std::size_t end = std::max(visible_end(i0 + r), j0);
      if (end < j0 + cols) s.row(r).tail(j0 + cols - end).setConstant(-inf);
    }
  }
};

// row = exp(row - shift) (Eigen's vectorised exp), with results below the smallest normal
// number flushed to 0. The flush makes hidden entries (-inf) exact zeros (Eigen's exp gives
// ~1e-38 at -inf, not 0) and is negligible anywhere else, next to the row's total weight (at
// least 1 in forward, where the shift is the running max; 1 in backward). An infinite shift
// (a row with nothing visible) gives a zero row.
template <class Row, class T>
void exp_shifted(Row&& row, T shift) {
  if (!std::isfinite(shift)) {
    row.setZero();
    return;
  }
  row = (row.array() - shift).exp();
  T* x = row.data();  // a row of a row-major tile: contiguous
  for (Eigen::Index c = 0; c < row.size(); ++c)
    x[c] = x[c] < std::numeric_limits<T>::min() ? T(0) : x[c];
}

}  // namespace detail

// Forward. q, o: (batch, q_heads, q_len, head_dim); k, v: (batch, kv_heads, kv_stride, head_dim)
// with the first kv_len rows of each head used;
// lse: (batch, q_heads, q_len), the log-sum-exp of each row's scaled, masked scores (what
// backward needs). A row with no visible key gets o = 0 and lse = +inf.
// Parallel over (batch, q head); results do not depend on the thread count.
template <class T>
void attention_forward(const T* q, const T* k, const T* v, T* o, T* lse, const AttentionShape& s,
                       const AttentionOptions& opt) {
  const detail::AttentionPlan<T> plan(s, opt);
  if (plan.empty()) return;
  RLXF_REQUIRE(q && o && lse && ((k && v) || s.kv_len == 0), "null tensor pointer");
  using Map = detail::MatrixMap<T>;
  using ConstMap = detail::ConstMatrixMap<T>;
  constexpr T inf = std::numeric_limits<T>::infinity();
  const std::size_t d = s.head_dim;
  parallel_for(
      s.batch * s.q_heads,
      [&](std::size_t job) {  // job = b * q_heads + h
        const std::size_t b = job / s.q_heads;
        const std::size_t kv_job = b * s.kv_heads + (job % s.q_heads) / plan.group;
        const T* qh = q + job * s.q_len * d;
        const T* kh = k + kv_job * s.kv_stride() * d;
        const T* vh = v + kv_job * s.kv_stride() * d;
        T* oh = o + job * s.q_len * d;
        T* lseh = lse + job * s.q_len;
        detail::Scratch<T> scores(plan.query_tile * plan.key_tile);
        detail::Scratch<T> row_max(plan.query_tile), row_sum(plan.query_tile);
        for (std::size_t i0 = 0; i0 < s.q_len; i0 += plan.query_tile) {
          const std::size_t rows = std::min(plan.query_tile, s.q_len - i0);
          const ConstMap qi(qh + i0 * d, rows, d);
          Map oi(oh + i0 * d, rows, d);  // accumulates O_i in place
          oi.setZero();
          std::fill_n(row_max.begin(), rows, -inf);
          std::fill_n(row_sum.begin(), rows, T(0));
          // Keys past the block's last visible one: whole tiles the causal mask hides are skipped.
          const std::size_t key_end = plan.visible_end(i0 + rows - 1);
          for (std::size_t j0 = 0; j0 < key_end; j0 += plan.key_tile) {
            const std::size_t cols = std::min(plan.key_tile, key_end - j0);
            Map p(scores.data(), rows, cols);
            p.noalias() = plan.scale * qi * ConstMap(kh + j0 * d, cols, d).transpose();
            plan.hide_keys(p, b, i0, j0);
            for (std::size_t r = 0; r < rows; ++r) {
              const T m_new = std::max(row_max[r], p.row(r).maxCoeff());
              detail::exp_shifted(p.row(r), m_new);
              if (m_new != row_max[r]) {  // also skips -inf == -inf (nothing visible yet)
                const T alpha = std::exp(row_max[r] - m_new);
                row_sum[r] *= alpha;
                oi.row(r) *= alpha;
                row_max[r] = m_new;
              }
              row_sum[r] += p.row(r).sum();
            }
            oi.noalias() += p * ConstMap(vh + j0 * d, cols, d);
          }
          for (std::size_t r = 0; r < rows; ++r) {
            if (row_sum[r] > T(0)) {
              oi.row(r) /= row_sum[r];
              lseh[i0 + r] = row_max[r] + std::log(row_sum[r]);
            } else {
              lseh[i0 + r] = inf;  // nothing visible: O_i row stayed 0
            }
          }
        }
      },
      plan.min_parallel_jobs(s.q_len * s.kv_len * d));
}

// Backward, accumulating (+=) into dq (shape of q), dk (shape of k) and dv (shape of v).
// q, o, dout: (batch, q_heads, q_len, head_dim); k, v: (batch, kv_heads, kv_stride, head_dim);
// lse: (batch, q_heads, q_len) from attention_forward. Parallel over (batch, kv head), each
// job looping over its group of q heads, so no two threads write the same dk/dv rows and the
// result does not depend on the thread count.
template <class T>
void attention_backward(const T* q, const T* k, const T* v, const T* o, const T* lse,
                        const T* dout, T* dq, T* dk, T* dv, const AttentionShape& s,
                        const AttentionOptions& opt) {
  const detail::AttentionPlan<T> plan(s, opt);
  if (plan.empty()) return;
  RLXF_REQUIRE(q && o && lse && dout && dq && ((k && v && dk && dv) || s.kv_len == 0),
               "null tensor pointer");
  using Map = detail::MatrixMap<T>;
  using ConstMap = detail::ConstMatrixMap<T>;
  const std::size_t d = s.head_dim;
  parallel_for(
      s.batch * s.kv_heads,
      [&](std::size_t kv_job) {  // kv_job = b * kv_heads + kv head
        const std::size_t b = kv_job / s.kv_heads;
        const T* kh = k + kv_job * s.kv_stride() * d;
        const T* vh = v + kv_job * s.kv_stride() * d;
        T* dkh = dk + kv_job * s.kv_stride() * d;
        T* dvh = dv + kv_job * s.kv_stride() * d;
        detail::Scratch<T> probs(plan.query_tile * plan.key_tile);
        detail::Scratch<T> dprobs(plan.query_tile * plan.key_tile);
        detail::Scratch<T> delta(plan.query_tile);
        for (std::size_t job = kv_job * plan.group; job < (kv_job + 1) * plan.group; ++job) {
          const std::size_t offset = job * s.q_len * d;  // job = b * q_heads + q head
          for (std::size_t i0 = 0; i0 < s.q_len; i0 += plan.query_tile) {
            const std::size_t rows = std::min(plan.query_tile, s.q_len - i0);
            const ConstMap qi(q + offset + i0 * d, rows, d);
            const ConstMap oi(o + offset + i0 * d, rows, d);
            const ConstMap doi(dout + offset + i0 * d, rows, d);
            Map dqi(dq + offset + i0 * d, rows, d);
            const T* lsei = lse + job * s.q_len + i0;
            detail::VectorMap<T> di(delta.data(), rows);
            di = (doi.array() * oi.array()).rowwise().sum();
            const std::size_t key_end = plan.visible_end(i0 + rows - 1);
            for (std::size_t j0 = 0; j0 < key_end; j0 += plan.key_tile) {
              const std::size_t cols = std::min(plan.key_tile, key_end - j0);
              const ConstMap kj(kh + j0 * d, cols, d);
              const ConstMap vj(vh + j0 * d, cols, d);
              Map p(probs.data(), rows, cols);
              Map ds(dprobs.data(), rows, cols);
              p.noalias() = plan.scale * qi * kj.transpose();
              plan.hide_keys(p, b, i0, j0);
              for (std::size_t r = 0; r < rows; ++r) detail::exp_shifted(p.row(r), lsei[r]);
              Map(dvh + j0 * d, cols, d).noalias() += p.transpose() * doi;
              ds.noalias() = doi * vj.transpose();  // dP
              ds = plan.scale * (p.array() * (ds.array().colwise() - di.array())).matrix();
              dqi.noalias() += ds * kj;
              Map(dkh + j0 * d, cols, d).noalias() += ds.transpose() * qi;
            }
          }
        }
      },
      plan.min_parallel_jobs(plan.group * s.q_len * s.kv_len * d));
}

}  // namespace rlxf::cpu
