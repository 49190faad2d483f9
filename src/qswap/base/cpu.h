// Run-time CPU feature detection. Every SIMD path is chosen through here, never by
// compile-time flags alone, so one binary runs on any x86-64 (and elsewhere, scalar).
//
// QSWAP_ISA=scalar|avx2|avx512 caps the level used (to test the fallback paths on one machine).
#pragma once

#include <string>

namespace qswap {

enum class IsaLevel { kScalar = 0, kAvx2 = 1, kAvx512 = 2 };

struct CpuFeatures {
  bool avx2 = false;         // with FMA and F16C
  bool avx512 = false;       // F + BW + VL + DQ, with OS support for ZMM state
  bool avx512_bf16 = false;  // vdpbf16ps, vcvtne2ps2bf16
  bool avx512_fp16 = false;
  bool avx512_vnni = false;
  bool avx512_vbmi = false;  // vpermb / vpermi2b byte permutes
  bool gfni = false;         // GF(2) affine byte transforms; set only with avx512 (its EVEX forms)
  bool amx = false;          // AMX-TILE + AMX-BF16, with OS support for tile state
};

// What the hardware and OS support, regardless of any cap.
const CpuFeatures& detected_cpu_features();
// The level in force: the best supported one, capped by QSWAP_ISA or set_isa_cap().
IsaLevel isa_level();
// Features in force (those above the level cap are cleared).
CpuFeatures cpu_features();
// Test hook: caps the level for the rest of the process (kAvx512 removes the cap).
void set_isa_cap(IsaLevel cap);

std::string isa_name(IsaLevel level);
std::string describe_cpu();  // "avx512 (bf16 fp16 vnni)" for logs and benchmarks

}  // namespace qswap
