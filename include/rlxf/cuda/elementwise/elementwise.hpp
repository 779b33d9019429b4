#pragma once
// rlxf's elementwise and row-reduction CUDA kernels, for the GPU (nvcc) and the emulator:
//   layernorm.hpp      layer norm forward (saves mean, rstd) / backward (dx, dgamma, dbeta)
//   rmsnorm.hpp        RMS norm forward (saves rstd) / backward (dx, dgamma)
//   activations.hpp    GELU (tanh, exact) and SwiGLU, forward / backward
//   cross_entropy.hpp  softmax cross-entropy forward (losses, lse) / backward (dlogits)
//   adamw.hpp          the AdamW update of optim::AdamW
//   rope.hpp           rotary embedding forward / backward (rotate_half convention)
//   add.hpp            y += x (f32 / bf16 each): accumulation for kernels that write their result
//   tensor_ops.hpp     embedding gather, deterministic row scatter-add (embedding and bias
//                      gradients), head split / merge, scale, deterministic sum of squares
// Each op has a Params struct, kernel structs (one per variant: 128-bit or scalar access,
// form) with launch_config(params), and a host dispatch function taking a launcher (see
// KernelTag in platform.hpp; StreamLauncher on the GPU). Storage: f32 everywhere; bf16 too
// for the norms, activations, cross-entropy logits and RoPE; AdamW is f32. Math is f32.
#include "rlxf/cuda/elementwise/activations.hpp"
#include "rlxf/cuda/elementwise/add.hpp"
#include "rlxf/cuda/elementwise/adamw.hpp"
#include "rlxf/cuda/elementwise/common.hpp"
#include "rlxf/cuda/elementwise/cross_entropy.hpp"
#include "rlxf/cuda/elementwise/layernorm.hpp"
#include "rlxf/cuda/elementwise/norm_common.hpp"
#include "rlxf/cuda/elementwise/rmsnorm.hpp"
#include "rlxf/cuda/elementwise/rope.hpp"
#include "rlxf/cuda/elementwise/tensor_ops.hpp"
#include "rlxf/cuda/kernel_list.hpp"

namespace rlxf::cuda {

// Every elementwise kernel the dispatch functions can launch: 128-bit and scalar variants,
// f32 and bf16 storage (AdamW, Scale, SumOfSquares: f32), both GELU forms; Add for the four
// (x, y) type pairs.
using shipped_elementwise_kernels = KernelList<
    LayerNormForward<float, 4>,
    LayerNormForward<float, 1>,
    LayerNormForward<bf16, 8>,
    LayerNormForward<bf16, 1>,
    LayerNormBackward<float, 4>,
    LayerNormBackward<float, 1>,
    LayerNormBackward<bf16, 8>,
    LayerNormBackward<bf16, 1>,
    RmsNormForward<float, 4>,
    RmsNormForward<float, 1>,
    RmsNormForward<bf16, 8>,
    RmsNormForward<bf16, 1>,
    RmsNormBackward<float, 4>,
    RmsNormBackward<float, 1>,
    RmsNormBackward<bf16, 8>,
    RmsNormBackward<bf16, 1>,
    ParamGradReduce,
    GeluForward<float, 4, GeluForm::tanh>,
    GeluForward<float, 1, GeluForm::tanh>,
    GeluForward<float, 4, GeluForm::exact>,
    GeluForward<float, 1, GeluForm::exact>,
    GeluForward<bf16, 8, GeluForm::tanh>,
    GeluForward<bf16, 1, GeluForm::tanh>,
    GeluForward<bf16, 8, GeluForm::exact>,
    GeluForward<bf16, 1, GeluForm::exact>,
    GeluBackward<float, 4, GeluForm::tanh>,
    GeluBackward<float, 1, GeluForm::tanh>,
    GeluBackward<float, 4, GeluForm::exact>,
    GeluBackward<float, 1, GeluForm::exact>,
    GeluBackward<bf16, 8, GeluForm::tanh>,
    GeluBackward<bf16, 1, GeluForm::tanh>,
    GeluBackward<bf16, 8, GeluForm::exact>,
    GeluBackward<bf16, 1, GeluForm::exact>,
    SwiGluForward<float, 4>,
    SwiGluForward<float, 1>,
    SwiGluForward<bf16, 8>,
    SwiGluForward<bf16, 1>,
    SwiGluBackward<float, 4>,
    SwiGluBackward<float, 1>,
    SwiGluBackward<bf16, 8>,
    SwiGluBackward<bf16, 1>,
    Tanh<float, 4, false>,
    Tanh<float, 1, false>,
    Tanh<bf16, 8, false>,
    Tanh<bf16, 1, false>,
    Tanh<float, 4, true>,
    Tanh<float, 1, true>,
    Tanh<bf16, 8, true>,
    Tanh<bf16, 1, true>,
    CrossEntropyForward<float, 4>,
    CrossEntropyForward<float, 1>,
    CrossEntropyForward<bf16, 8>,
    CrossEntropyForward<bf16, 1>,
    CrossEntropyBackward<float, 4>,
    CrossEntropyBackward<float, 1>,
    CrossEntropyBackward<bf16, 8>,
    CrossEntropyBackward<bf16, 1>,
    AdamWUpdate<4>,
    AdamWUpdate<1>,
    Rope<float, 4>,
    Rope<float, 1>,
    Rope<bf16, 8>,
    Rope<bf16, 1>,
    Add<float, float, add_vec<float, float>>,
    Add<float, float, 1>,
    Add<bf16, bf16, add_vec<bf16, bf16>>,
    Add<bf16, bf16, 1>,
    Add<float, bf16, add_vec<float, bf16>>,
    Add<float, bf16, 1>,
    Add<bf16, float, add_vec<bf16, float>>,
    Add<bf16, float, 1>,
    Gather<float>,
    Gather<bf16>,
    ScatterAddRows<float>,
    ScatterAddRows<bf16>,
    PermuteHeads<float>,
    PermuteHeads<bf16>,
    Scale<4>,
    Scale<1>,
    SumOfSquares<false>,
    SumOfSquares<true>>;

}  // namespace rlxf::cuda
