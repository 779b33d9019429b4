#pragma once
// Test support for the backend parity tests: the same weights on two backends, and the tiny
// encoder they run (head dim 64, what the CUDA attention kernels take).
#include <cstddef>
#include <span>
#include <vector>

#include <doctest/doctest.h>

#include "rlxf/model/encoder.hpp"
#include "rlxf/nn/parameter.hpp"
#include "bf16_check.hpp"

namespace rlxf::test {

// Rounds the weights of the first list (a CPU model's parameters()) to bf16 and gives the
// second (the same model on another backend, same names in the same order) the same values.
template <class CpuList, class OtherList>
void share_weights(const CpuList& cpu, const OtherList& other) {
  REQUIRE(cpu.size() == other.size());
  for (std::size_t i = 0; i < cpu.size(); ++i) {
    REQUIRE(cpu[i].name == other[i].name);
    std::vector<float> v = nn::values_of(*cpu[i].param);
    for (float& x : v) x = round_bf16(x);
    nn::set_values(*cpu[i].param, std::span<const float>(v));
    nn::set_values(*other[i].param, std::span<const float>(v));
  }
}

// A BERT-family encoder of `layers` blocks, width 128, two heads of 64.
inline model::EncoderConfig tiny_encoder_config(std::size_t vocab, std::size_t layers) {
  model::EncoderConfig c;
  c.vocab_size = vocab;
  c.max_positions = 16;
  c.d_model = 128;
  c.n_layers = layers;
  c.n_heads = 2;
  c.d_hidden = 256;
  return c;
}

}  // namespace rlxf::test
