#pragma once
// Tags naming WMMA fragments, as nvcuda::wmma does: which operand (matrix_a is M x K,
// matrix_b is K x N, accumulator is M x N) and how an operand tile is laid out in memory.
// The device context maps them onto nvcuda::wmma's tags; the emulator reads them directly.
namespace rlxf::cuda::wmma {

struct matrix_a {};
struct matrix_b {};
struct accumulator {};
struct row_major {};
struct col_major {};

// Memory layout of an accumulator tile in load_matrix_sync / store_matrix_sync.
enum class Layout { row_major, col_major };

}  // namespace rlxf::cuda::wmma
