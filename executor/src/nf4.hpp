#pragma once
// QLoRA's frozen base (Dettmers et al. 2023, "QLoRA: Efficient Finetuning of Quantized LLMs", §3):
// 4-bit NormalFloat (NF4) codes in blocks of 64 weights, each block scaled by its absolute maximum; the
// block maxima double-quantised (§3, "Double Quantization"): their mean subtracted, then 8-bit codes of
// bitsandbytes' dynamic data type (create_dynamic_map; Dettmers 2015) in blocks of 256, each scaled by its
// fp32 absolute maximum. Internal header: includes ATen.
#include <ATen/ATen.h>

#include <cstdint>

namespace paraplan::exec {

struct Nf4Tensor {
  at::Tensor codes;    // uint8 [ceil(n / 2)]: two 4-bit codes per byte, the first in the low nibble
  at::Tensor qabsmax;  // uint8 [ceil(n / 64)]: the blocks' maxima, quantised
  at::Tensor absmax2;  // fp32 [ceil(ceil(n / 64) / 256)]: the second-level scales
  at::Tensor offset;   // fp32 [1]: the mean of the first-level maxima
  int64_t numel = 0;
};

constexpr int64_t kNf4Block = 64, kNf4Block2 = 256;

// Bytes of a quantised tensor of n weights (what the four tensors above allocate).
int64_t nf4_bytes(int64_t n);

// Quantises w (any shape, float, on the CPU); the result lives on `device`.
Nf4Tensor nf4_quantize(const at::Tensor& w, const at::Device& device);
// Writes the dequantised weights into out (float or bf16, numel values, contiguous, on the tensor's
// device). On the CPU a loop over the codes, allocating nothing.
void nf4_dequantize(const Nf4Tensor& q, at::Tensor out);

// The 16 NF4 values and the 256 values of the dynamic 8-bit type (ascending), for tests.
const float* nf4_values();
const float* dynamic8_values();

}  // namespace paraplan::exec
