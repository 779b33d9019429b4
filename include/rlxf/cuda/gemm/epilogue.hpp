#pragma once
// The GEMM epilogue, applied to each f32 result before its one rounding to C's type:
// v = alpha acc + beta C_old (C_old read only when beta != 0), + bias[n], then GELU.
#include "rlxf/cuda/elementwise/activations.hpp"
#include "rlxf/cuda/gemm/params.hpp"
#include "rlxf/cuda/numeric.hpp"

namespace rlxf::cuda {

template <class T, class TOut>
RLXF_DEVICE void write_result(const GemmParams<T, TOut>& p, TOut* c, int row, int col, float acc) {
  TOut* dst = c + static_cast<long>(row) * p.ldc + col;
  float v = p.alpha * acc;
  if (p.beta != 0.0f) v += p.beta * to_float(*dst);
  if (p.epilogue != Epilogue::none) v += p.bias[col];
  if (p.epilogue == Epilogue::bias_gelu) v = elementwise::gelu<GeluForm::tanh>(v);
  *dst = from_float<TOut>(v);
}

}  // namespace rlxf::cuda
