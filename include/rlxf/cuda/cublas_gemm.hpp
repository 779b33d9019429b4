#pragma once
// Row-major GEMM through cuBLAS and cuBLASLt: the reference the hand-written CUDA GEMM
// kernels are measured against. Host C++ over cublas_v2.h / cublasLt.h (link CUDA::cublas,
// CUDA::cublasLt, CUDA::cudart, or rlxf::cuda).
//
//   C (M, N) = alpha * op(A) * op(B) + beta * C,   op(A) (M, K), op(B) (K, N)
//
// with the calling convention of rlxf::cpu::gemm: every matrix is row-major with a row
// stride (leading dimension) as stored: A is stored (M, K) with lda >= K when ta == no and
// (K, M) with lda >= M when ta == yes; B is stored (K, N), ldb >= N, or (N, K), ldb >= K;
// C is (M, N), ldc >= N. All pointers are device pointers.
//
// Element types: inputs A and B are float, rlxf::f16 or rlxf::bf16 (2-byte structs with the
// bit layout of __half and __nv_bfloat16); C is float or the input type. Products are always
// accumulated in f32 (CUBLAS_COMPUTE_32F, never the FAST_16F / FAST_TF32 modes, and split-K
// reductions in f32), alpha and beta are float. With beta == 0, C is only written.
//
// Row-major through a column-major library. cuBLAS reads an array with leading dimension ld
// as a column-major matrix; a row-major (R, S) matrix X with row stride ld is, byte for byte,
// the column-major (S, R) matrix X^T with the same ld. So the row-major product
// C = op(A) op(B) is computed as the column-major product
//   C^T (N, M) = op(B)^T (N, K) * op(A)^T (K, M)
// i.e. cublasGemmEx(opB, opA, m = N, n = M, k = K, B, ldb, A, lda, C, ldc): the operands swap
// places and the dimensions M and N swap, while each transposition flag and leading
// dimension passes through unchanged (transposing a transposed view cancels out).
#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#include <library_types.h>

#include <compare>
#include <cstddef>
#include <cstdint>
#include <algorithm>
#include <map>
#include <memory>
#include <string_view>
#include <type_traits>
#include <utility>

#include "rlxf/core/dtype.hpp"
#include "rlxf/core/error.hpp"
#include "rlxf/cuda/device_buffer.hpp"
#include "rlxf/cuda/runtime.hpp"

namespace rlxf::cuda {

static_assert(sizeof(f16) == 2 && alignof(f16) == 2 && std::is_standard_layout_v<f16>,
              "rlxf::f16 must be layout-compatible with __half");
static_assert(sizeof(bf16) == 2 && alignof(bf16) == 2 && std::is_standard_layout_v<bf16>,
              "rlxf::bf16 must be layout-compatible with __nv_bfloat16");

// Whether an operand enters the product transposed (as rlxf::cpu::Trans).
enum class Trans : bool { no = false, yes = true };

// Throws rlxf::Error unless `status` is CUBLAS_STATUS_SUCCESS:
// "rlxf CUDA backend: <what> failed with CUBLAS_STATUS_NOT_SUPPORTED (15): the functionality
//  requested is not supported".
inline void check(cublasStatus_t status, std::string_view what) {
  if (status == CUBLAS_STATUS_SUCCESS) return;
  fail("rlxf CUDA backend: ", what, " failed with ", cublasGetStatusName(status), " (",
       static_cast<int>(status), "): ", cublasGetStatusString(status));
}

namespace blas_detail {
// The cudaDataType of an element type the GEMMs accept.
template <class T> struct blas_type;
template <> struct blas_type<float> { static constexpr cudaDataType_t value = CUDA_R_32F; };
template <> struct blas_type<f16> { static constexpr cudaDataType_t value = CUDA_R_16F; };
template <> struct blas_type<bf16> { static constexpr cudaDataType_t value = CUDA_R_16BF; };

template <class In, class Out>
constexpr void require_gemm_types() {
  static_assert(std::is_same_v<In, float> || std::is_same_v<In, f16> || std::is_same_v<In, bf16>,
                "rlxf::cuda GEMM inputs must be float, rlxf::f16 or rlxf::bf16");
  static_assert(std::is_same_v<Out, float> || std::is_same_v<Out, In>,
                "rlxf::cuda GEMM output must be float or the input type");
}

inline cublasOperation_t blas_op(Trans t) { return t == Trans::yes ? CUBLAS_OP_T : CUBLAS_OP_N; }

// Shape and leading-dimension checks shared by every GEMM entry point (the rules in the
// header comment).
inline void check_gemm_shape(const char* who, Trans ta, Trans tb, std::int64_t M, std::int64_t N,
                             std::int64_t K, std::int64_t lda, std::int64_t ldb, std::int64_t ldc) {
  if (M < 0 || N < 0 || K < 0)
    fail("rlxf CUDA backend: ", who, ": negative dimension (M = ", M, ", N = ", N, ", K = ", K, ")");
  const std::int64_t a_cols = ta == Trans::no ? K : M, b_cols = tb == Trans::no ? N : K;
  // A leading dimension must be at least 1 even for empty matrices (BLAS rule).
  if (lda < std::max<std::int64_t>(a_cols, 1))
    fail("rlxf CUDA backend: ", who, ": lda = ", lda, " is smaller than the ", a_cols, " columns of A");
  if (ldb < std::max<std::int64_t>(b_cols, 1))
    fail("rlxf CUDA backend: ", who, ": ldb = ", ldb, " is smaller than the ", b_cols, " columns of B");
  if (ldc < std::max<std::int64_t>(N, 1))
    fail("rlxf CUDA backend: ", who, ": ldc = ", ldc, " is smaller than the ", N, " columns of C");
}
}  // namespace blas_detail

// An owned cuBLAS handle (cublasCreate / cublasDestroy) bound to the current device. Move-only.
// Math mode: default (no TF32) and split-K reductions in the compute type, so every product
// accumulates in f32. Without a usable GPU the constructor throws the "no usable GPU" error.
class CublasHandle {
 public:
  CublasHandle() {
    runtime_detail::require_any_device("cublasCreate");
    check(cublasCreate(&handle_), "cublasCreate");
    const auto mode = static_cast<cublasMath_t>(CUBLAS_DEFAULT_MATH |
                                                CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION);
    check(cublasSetMathMode(handle_, mode), "cublasSetMathMode");
  }
  ~CublasHandle() {
    if (handle_ != nullptr) (void)cublasDestroy(handle_);
  }
  CublasHandle(CublasHandle&& other) noexcept : handle_(std::exchange(other.handle_, nullptr)) {}
  CublasHandle& operator=(CublasHandle&& other) noexcept {
    if (this != &other) {
      if (handle_ != nullptr) (void)cublasDestroy(handle_);
      handle_ = std::exchange(other.handle_, nullptr);
    }
    return *this;
  }
  CublasHandle(const CublasHandle&) = delete;
  CublasHandle& operator=(const CublasHandle&) = delete;

  cublasHandle_t get() const noexcept { return handle_; }
  // Later calls through this handle are queued on `stream` (the legacy default stream until
  // then). The stream must outlive those calls.
  void set_stream(const Stream& stream) { check(cublasSetStream(handle_, stream.get()), "cublasSetStream"); }

 private:
  cublasHandle_t handle_ = nullptr;
};

// C (M, N) = alpha op(A) op(B) + beta C (row-major, see the header comment), one call to
// cublasGemmEx_64 with CUBLAS_COMPUTE_32F on the handle's stream (asynchronous).
template <class In, class Out>
void cublas_gemm(const CublasHandle& handle, Trans ta, Trans tb, std::int64_t M, std::int64_t N,
          std::int64_t K, float alpha, const In* A, std::int64_t lda, const In* B,
          std::int64_t ldb, float beta, Out* C, std::int64_t ldc) {
  blas_detail::require_gemm_types<In, Out>();
  blas_detail::check_gemm_shape("cublas_gemm", ta, tb, M, N, K, lda, ldb, ldc);
  if (M == 0 || N == 0) return;
  // Column-major identity: C^T = op(B)^T op(A)^T, so B goes first and m, n = N, M.
  check(cublasGemmEx_64(handle.get(), blas_detail::blas_op(tb), blas_detail::blas_op(ta), N, M, K, &alpha, B,
                        blas_detail::blas_type<In>::value, ldb, A, blas_detail::blas_type<In>::value, lda,
                        &beta, C, blas_detail::blas_type<Out>::value, ldc, CUBLAS_COMPUTE_32F,
                        CUBLAS_GEMM_DEFAULT),
        "cublasGemmEx");
}

// `batch` independent GEMMs as above: product i reads A + i stride_a, B + i stride_b and
// writes C + i stride_c (strides in elements; a stride of 0 reuses one operand for every
// product). One call to cublasGemmStridedBatchedEx_64, asynchronous.
template <class In, class Out>
void cublas_gemm_strided_batched(const CublasHandle& handle, Trans ta, Trans tb, std::int64_t M,
                          std::int64_t N, std::int64_t K, float alpha, const In* A,
                          std::int64_t lda, std::int64_t stride_a, const In* B, std::int64_t ldb,
                          std::int64_t stride_b, float beta, Out* C, std::int64_t ldc,
                          std::int64_t stride_c, std::int64_t batch) {
  blas_detail::require_gemm_types<In, Out>();
  blas_detail::check_gemm_shape("cublas_gemm_strided_batched", ta, tb, M, N, K, lda, ldb, ldc);
  if (batch < 0) fail("rlxf CUDA backend: cublas_gemm_strided_batched: negative batch ", batch);
  if (M == 0 || N == 0 || batch == 0) return;
  check(cublasGemmStridedBatchedEx_64(
            handle.get(), blas_detail::blas_op(tb), blas_detail::blas_op(ta), N, M, K, &alpha, B,
            blas_detail::blas_type<In>::value, ldb, stride_b, A, blas_detail::blas_type<In>::value, lda,
            stride_a, &beta, C, blas_detail::blas_type<Out>::value, ldc, stride_c, batch,
            CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
        "cublasGemmStridedBatchedEx");
}

// ---- cuBLASLt ----

// What the cuBLASLt GEMM applies to alpha op(A) op(B) + beta C before storing it.
enum class LtEpilogue {
  none,       // nothing
  bias,       // + bias[n]: one value per column of C (a linear layer's output feature)
  gelu_bias,  // gelu(... + bias[n]), GELU in the tanh form (GPT-2's, cpu::GeluForm::tanh)
};

namespace blas_detail {
// RAII for the three cuBLASLt descriptor kinds.
struct LtMatmulDesc {
  cublasLtMatmulDesc_t desc = nullptr;
  explicit LtMatmulDesc(cudaDataType_t scale_type) {
    check(cublasLtMatmulDescCreate(&desc, CUBLAS_COMPUTE_32F, scale_type), "cublasLtMatmulDescCreate");
  }
  ~LtMatmulDesc() {
    if (desc != nullptr) (void)cublasLtMatmulDescDestroy(desc);
  }
  LtMatmulDesc(const LtMatmulDesc&) = delete;
  LtMatmulDesc& operator=(const LtMatmulDesc&) = delete;
  template <class V>
  void set(cublasLtMatmulDescAttributes_t attr, const V& value, const char* what) {
    check(cublasLtMatmulDescSetAttribute(desc, attr, &value, sizeof(V)), what);
  }
};

struct LtLayout {
  cublasLtMatrixLayout_t layout = nullptr;
  // A rows x cols matrix with leading dimension ld in `order`, `batch` copies stride apart.
  LtLayout(cudaDataType_t type, std::int64_t rows, std::int64_t cols, std::int64_t ld,
           cublasLtOrder_t order, std::int64_t batch, std::int64_t stride) {
    check(cublasLtMatrixLayoutCreate(&layout, type, static_cast<std::uint64_t>(rows),
                                     static_cast<std::uint64_t>(cols), ld),
          "cublasLtMatrixLayoutCreate");
    set(CUBLASLT_MATRIX_LAYOUT_ORDER, static_cast<std::int32_t>(order));
    if (batch != 1) {
      set(CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, static_cast<std::int32_t>(batch));
      set(CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, stride);
    }
  }
  ~LtLayout() {
    if (layout != nullptr) (void)cublasLtMatrixLayoutDestroy(layout);
  }
  LtLayout(const LtLayout&) = delete;
  LtLayout& operator=(const LtLayout&) = delete;
  template <class V>
  void set(cublasLtMatrixLayoutAttribute_t attr, const V& value) {
    check(cublasLtMatrixLayoutSetAttribute(layout, attr, &value, sizeof(V)),
          "cublasLtMatrixLayoutSetAttribute");
  }
};

struct LtPreference {
  cublasLtMatmulPreference_t pref = nullptr;
  LtPreference() { check(cublasLtMatmulPreferenceCreate(&pref), "cublasLtMatmulPreferenceCreate"); }
  ~LtPreference() {
    if (pref != nullptr) (void)cublasLtMatmulPreferenceDestroy(pref);
  }
  LtPreference(const LtPreference&) = delete;
  LtPreference& operator=(const LtPreference&) = delete;
  template <class V>
  void set(cublasLtMatmulPreferenceAttributes_t attr, const V& value) {
    check(cublasLtMatmulPreferenceSetAttribute(pref, attr, &value, sizeof(V)),
          "cublasLtMatmulPreferenceSetAttribute");
  }
};

// The largest power of two (at most 256) dividing the address; 256 for nullptr. cuBLASLt
// picks kernels by the alignment the pointers are promised to have.
inline std::uint32_t pointer_alignment(const void* p) {
  const auto a = reinterpret_cast<std::uintptr_t>(p);
  if (a == 0) return 256;
  std::uint32_t align = 1;
  while (align < 256 && (a & align) == 0) align <<= 1;
  return align;
}

// Everything a cached cuBLASLt plan depends on.
struct LtKey {
  std::int32_t in_type = 0, out_type = 0;
  bool ta = false, tb = false;
  std::int64_t M = 0, N = 0, K = 0, lda = 0, ldb = 0, ldc = 0;
  std::int64_t batch = 1, stride_a = 0, stride_b = 0, stride_c = 0;
  LtEpilogue epilogue = LtEpilogue::none;
  std::uint32_t align_a = 0, align_b = 0, align_c = 0, align_bias = 0;
  auto operator<=>(const LtKey&) const = default;
};

}  // namespace blas_detail

// cuBLASLt GEMM with plan caching, a workspace and optional fused epilogues.
//
// Layouts. Without an epilogue the problem is given to cuBLASLt as written, every matrix in
// CUBLASLT_ORDER_ROW with its row stride as leading dimension. cuBLASLt's bias vector runs
// along the rows of D (one value per row, length M), while a linear layer needs one value
// per column of the row-major C (length N); so with a bias epilogue the problem is given in
// the column-major identity of the header comment instead (D^T = op(B)^T op(A)^T in
// CUBLASLT_ORDER_COL, m = N), whose rows are C's columns.
//
// Plans. The first call for a shape (types, flags, sizes, leading dimensions, batch strides,
// epilogue, pointer alignments) builds the descriptors and asks cublasLtMatmulAlgoGetHeuristic
// once for the best algorithm fitting the workspace, restricted to f32 split-K reductions;
// later calls with the same key reuse it. Calls are asynchronous on the object's stream.
// Not thread-safe: one LtGemm per thread.
class LtGemm {
 public:
  // NVIDIA recommends 32 MiB of workspace on Hopper and 4 MiB on earlier GPUs.
  static constexpr std::size_t default_workspace_bytes = std::size_t{32} << 20;

  // Creates the cuBLASLt handle and allocates the workspace. Throws the "no usable GPU"
  // error without one.
  explicit LtGemm(std::size_t workspace_bytes = default_workspace_bytes) {
    runtime_detail::require_any_device("cublasLtCreate");
    check(cublasLtCreate(&handle_), "cublasLtCreate");
    workspace_ = DeviceBuffer<std::byte>(workspace_bytes);
  }
  ~LtGemm() {
    plans_.clear();
    if (handle_ != nullptr) (void)cublasLtDestroy(handle_);
  }
  LtGemm(const LtGemm&) = delete;
  LtGemm& operator=(const LtGemm&) = delete;

  cublasLtHandle_t get() const noexcept { return handle_; }
  // Later calls are queued on `stream` (the legacy default stream until then).
  void set_stream(const Stream& stream) { stream_ = stream.get(); }
  // Plans built so far (one per distinct key).
  std::size_t cached_plans() const noexcept { return plans_.size(); }

  // C (M, N) = epilogue(alpha op(A) op(B) + beta C [+ bias]) (row-major, header comment of
  // the file for shapes). bias is a device vector of N elements of the output type, required
  // by (and only read with) the bias epilogues: cuBLASLt takes the bias in D's type, while
  // rlxf's own fused-epilogue kernels (gemm/params.hpp) take it in f32, so comparisons between
  // the two use bias values exact in both types.
  template <class In, class Out>
  void gemm(Trans ta, Trans tb, std::int64_t M, std::int64_t N, std::int64_t K, float alpha,
            const In* A, std::int64_t lda, const In* B, std::int64_t ldb, float beta, Out* C,
            std::int64_t ldc, LtEpilogue epilogue = LtEpilogue::none, const Out* bias = nullptr) {
    gemm_strided_batched(ta, tb, M, N, K, alpha, A, lda, 0, B, ldb, 0, beta, C, ldc, 0, 1,
                         epilogue, bias);
  }

  // `batch` products as in cublas_gemm_strided_batched, one cublasLtMatmul call. The same
  // bias vector is applied to every product.
  template <class In, class Out>
  void gemm_strided_batched(Trans ta, Trans tb, std::int64_t M, std::int64_t N, std::int64_t K,
                            float alpha, const In* A, std::int64_t lda, std::int64_t stride_a,
                            const In* B, std::int64_t ldb, std::int64_t stride_b, float beta,
                            Out* C, std::int64_t ldc, std::int64_t stride_c, std::int64_t batch,
                            LtEpilogue epilogue = LtEpilogue::none, const Out* bias = nullptr) {
    blas_detail::require_gemm_types<In, Out>();
    blas_detail::check_gemm_shape("LtGemm", ta, tb, M, N, K, lda, ldb, ldc);
    if (batch < 1 || batch > std::int64_t{2147483647})
      fail("rlxf CUDA backend: LtGemm: batch = ", batch, " is outside [1, 2^31)");
    const bool with_bias = epilogue != LtEpilogue::none;
    if (with_bias && bias == nullptr)
      fail("rlxf CUDA backend: LtGemm: the bias epilogue needs a bias vector of N = ", N, " elements");
    if (M == 0 || N == 0) return;
    if (K == 0)
      fail("rlxf CUDA backend: LtGemm: K = 0 is not supported by cuBLASLt; use cublas_gemm");

    blas_detail::LtKey key;
    key.in_type = blas_detail::blas_type<In>::value;
    key.out_type = blas_detail::blas_type<Out>::value;
    key.ta = ta == Trans::yes;
    key.tb = tb == Trans::yes;
    key.M = M, key.N = N, key.K = K, key.lda = lda, key.ldb = ldb, key.ldc = ldc;
    key.batch = batch, key.stride_a = stride_a, key.stride_b = stride_b, key.stride_c = stride_c;
    key.epilogue = epilogue;
    key.align_a = blas_detail::pointer_alignment(A);
    key.align_b = blas_detail::pointer_alignment(B);
    key.align_c = blas_detail::pointer_alignment(C);
    key.align_bias = with_bias ? blas_detail::pointer_alignment(bias) : 0;

    auto it = plans_.find(key);
    if (it == plans_.end()) it = plans_.emplace(key, make_plan(key, bias)).first;
    Plan& plan = *it->second;
    if (with_bias) plan.desc.set(CUBLASLT_MATMUL_DESC_BIAS_POINTER, static_cast<const void*>(bias),
                                 "cublasLtMatmulDescSetAttribute(BIAS_POINTER)");
    const void* first = plan.swapped ? static_cast<const void*>(B) : static_cast<const void*>(A);
    const void* second = plan.swapped ? static_cast<const void*>(A) : static_cast<const void*>(B);
    check(cublasLtMatmul(handle_, plan.desc.desc, &alpha, first, plan.first.layout, second,
                         plan.second.layout, &beta, C, plan.c.layout, C, plan.c.layout, &plan.algo,
                         workspace_.data(), workspace_.bytes(), stream_),
          "cublasLtMatmul");
  }

 private:
  struct Plan {
    blas_detail::LtMatmulDesc desc;
    blas_detail::LtLayout first, second, c;  // the operands in the order cuBLASLt sees them
    cublasLtMatmulAlgo_t algo{};
    bool swapped = false;
  };

  std::unique_ptr<Plan> make_plan(const blas_detail::LtKey& k, const void* bias) {
    const auto in = static_cast<cudaDataType_t>(k.in_type);
    const auto out = static_cast<cudaDataType_t>(k.out_type);
    const bool swapped = k.epilogue != LtEpilogue::none;
    // Stored shapes of A and B (row-major rows x cols).
    const std::int64_t a_rows = k.ta ? k.K : k.M, a_cols = k.ta ? k.M : k.K;
    const std::int64_t b_rows = k.tb ? k.N : k.K, b_cols = k.tb ? k.K : k.N;
    auto plan = [&] {
      if (!swapped)  // as written, row-major layouts
        return std::unique_ptr<Plan>(new Plan{
            blas_detail::LtMatmulDesc{CUDA_R_32F},
            blas_detail::LtLayout(in, a_rows, a_cols, k.lda, CUBLASLT_ORDER_ROW, k.batch, k.stride_a),
            blas_detail::LtLayout(in, b_rows, b_cols, k.ldb, CUBLASLT_ORDER_ROW, k.batch, k.stride_b),
            blas_detail::LtLayout(out, k.M, k.N, k.ldc, CUBLASLT_ORDER_ROW, k.batch, k.stride_c), {}, false});
      // Column-major identity: a row-major (r, c) array is a column-major (c, r) one.
      return std::unique_ptr<Plan>(new Plan{
          blas_detail::LtMatmulDesc{CUDA_R_32F},
          blas_detail::LtLayout(in, b_cols, b_rows, k.ldb, CUBLASLT_ORDER_COL, k.batch, k.stride_b),
          blas_detail::LtLayout(in, a_cols, a_rows, k.lda, CUBLASLT_ORDER_COL, k.batch, k.stride_a),
          blas_detail::LtLayout(out, k.N, k.M, k.ldc, CUBLASLT_ORDER_COL, k.batch, k.stride_c), {}, true});
    }();
    const auto op_first = static_cast<std::int32_t>(swapped ? (k.tb ? CUBLAS_OP_T : CUBLAS_OP_N)
                                                            : (k.ta ? CUBLAS_OP_T : CUBLAS_OP_N));
    const auto op_second = static_cast<std::int32_t>(swapped ? (k.ta ? CUBLAS_OP_T : CUBLAS_OP_N)
                                                             : (k.tb ? CUBLAS_OP_T : CUBLAS_OP_N));
    plan->desc.set(CUBLASLT_MATMUL_DESC_TRANSA, op_first, "cublasLtMatmulDescSetAttribute(TRANSA)");
    plan->desc.set(CUBLASLT_MATMUL_DESC_TRANSB, op_second, "cublasLtMatmulDescSetAttribute(TRANSB)");
    if (swapped) {
      const std::uint32_t ep = k.epilogue == LtEpilogue::bias ? CUBLASLT_EPILOGUE_BIAS
                                                              : CUBLASLT_EPILOGUE_GELU_BIAS;
      plan->desc.set(CUBLASLT_MATMUL_DESC_EPILOGUE, ep, "cublasLtMatmulDescSetAttribute(EPILOGUE)");
      plan->desc.set(CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, static_cast<std::int32_t>(out),
                     "cublasLtMatmulDescSetAttribute(BIAS_DATA_TYPE)");
      // The heuristic reads the bias pointer's alignment from the descriptor.
      plan->desc.set(CUBLASLT_MATMUL_DESC_BIAS_POINTER, bias,
                     "cublasLtMatmulDescSetAttribute(BIAS_POINTER)");
    }

    blas_detail::LtPreference pref;
    pref.set(CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, static_cast<std::uint64_t>(workspace_.bytes()));
    // Split-K partial sums only in the compute type (f32), never in f16/bf16.
    pref.set(CUBLASLT_MATMUL_PREF_REDUCTION_SCHEME_MASK,
             static_cast<std::uint32_t>(CUBLASLT_REDUCTION_SCHEME_COMPUTE_TYPE));
    pref.set(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, swapped ? k.align_b : k.align_a);
    pref.set(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, swapped ? k.align_a : k.align_b);
    pref.set(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, k.align_c);
    pref.set(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, k.align_c);

    cublasLtMatmulHeuristicResult_t result{};
    int found = 0;
    check(cublasLtMatmulAlgoGetHeuristic(handle_, plan->desc.desc, plan->first.layout,
                                         plan->second.layout, plan->c.layout, plan->c.layout,
                                         pref.pref, 1, &result, &found),
          "cublasLtMatmulAlgoGetHeuristic");
    if (found == 0)
      fail("rlxf CUDA backend: cuBLASLt has no algorithm for M = ", k.M, ", N = ", k.N, ", K = ", k.K,
           " (", k.ta ? "T" : "N", k.tb ? "T" : "N", ", batch ", k.batch, ", epilogue ",
           k.epilogue == LtEpilogue::none ? "none" : k.epilogue == LtEpilogue::bias ? "bias" : "gelu_bias",
           ") within a workspace of ", workspace_.bytes(), " bytes");
    plan->algo = result.algo;
    return plan;
  }

  cublasLtHandle_t handle_ = nullptr;
  cudaStream_t stream_ = nullptr;
  DeviceBuffer<std::byte> workspace_;
  std::map<blas_detail::LtKey, std::unique_ptr<Plan>> plans_;
};

}  // namespace rlxf::cuda
