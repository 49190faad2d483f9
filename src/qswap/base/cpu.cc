#include "qswap/base/cpu.h"

#include <atomic>
#include <cstdlib>
#include <string_view>

#if defined(__x86_64__) || defined(_M_X64)
#include <cpuid.h>
#define QSWAP_X86 1
#endif

namespace qswap {
namespace {

#ifdef QSWAP_X86
struct Regs {
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
};

Regs cpuid(unsigned leaf, unsigned subleaf) {
  Regs r;
  __cpuid_count(leaf, subleaf, r.eax, r.ebx, r.ecx, r.edx);
  return r;
}

unsigned long long xgetbv0() {
  unsigned eax = 0, edx = 0;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return (static_cast<unsigned long long>(edx) << 32) | eax;
}

bool bit(unsigned reg, int n) { return ((reg >> n) & 1u) != 0; }

CpuFeatures detect() {
  CpuFeatures f;
  unsigned max_leaf = __get_cpuid_max(0, nullptr);
  if (max_leaf < 7) return f;
  Regs l1 = cpuid(1, 0);
  bool osxsave = bit(l1.ecx, 27);
  if (!osxsave) return f;
  unsigned long long xcr0 = xgetbv0();
  bool os_avx = (xcr0 & 0x6) == 0x6;             // XMM + YMM state
  bool os_avx512 = os_avx && (xcr0 & 0xE0) == 0xE0;  // opmask + ZMM_Hi256 + Hi16_ZMM
  bool os_amx = (xcr0 & 0x60000) == 0x60000;     // XTILECFG + XTILEDATA
  Regs l7 = cpuid(7, 0);
  Regs l7s1 = cpuid(7, 1);
  bool fma = bit(l1.ecx, 12), f16c = bit(l1.ecx, 29);
  f.avx2 = os_avx && bit(l7.ebx, 5) && fma && f16c;
  f.avx512 = f.avx2 && os_avx512 && bit(l7.ebx, 16) /*F*/ && bit(l7.ebx, 17) /*DQ*/ &&
             bit(l7.ebx, 30) /*BW*/ && bit(l7.ebx, 31) /*VL*/;
  f.avx512_vnni = f.avx512 && bit(l7.ecx, 11);
  f.avx512_vbmi = f.avx512 && bit(l7.ecx, 1);
  f.gfni = f.avx512 && bit(l7.ecx, 8);
  f.avx512_fp16 = f.avx512 && bit(l7.edx, 23);
  f.avx512_bf16 = f.avx512 && bit(l7s1.eax, 5);
  // Linux also requires arch_prctl(ARCH_REQ_XCOMP_PERM) before AMX use; the kernel doing so checks.
  f.amx = f.avx512 && os_amx && bit(l7.edx, 24) /*TILE*/ && bit(l7.edx, 22) /*BF16*/;
  return f;
}
#else
CpuFeatures detect() { return {}; }
#endif

IsaLevel best_level(const CpuFeatures& f) {
  if (f.avx512) return IsaLevel::kAvx512;
  if (f.avx2) return IsaLevel::kAvx2;
  return IsaLevel::kScalar;
}

IsaLevel env_cap() {
  const char* env = std::getenv("QSWAP_ISA");
  if (env == nullptr) return IsaLevel::kAvx512;
  std::string_view v(env);
  if (v == "scalar") return IsaLevel::kScalar;
  if (v == "avx2") return IsaLevel::kAvx2;
  return IsaLevel::kAvx512;
}

std::atomic<int>& cap_storage() {
  static std::atomic<int> cap{static_cast<int>(env_cap())};
  return cap;
}

}  // namespace

const CpuFeatures& detected_cpu_features() {
  static const CpuFeatures features = detect();
  return features;
}

IsaLevel isa_level() {
  int best = static_cast<int>(best_level(detected_cpu_features()));
  int cap = cap_storage().load(std::memory_order_relaxed);
  return static_cast<IsaLevel>(best < cap ? best : cap);
}

CpuFeatures cpu_features() {
  CpuFeatures f = detected_cpu_features();
  IsaLevel level = isa_level();
  if (level < IsaLevel::kAvx512) {
    f.avx512 = f.avx512_bf16 = f.avx512_fp16 = f.avx512_vnni = f.avx512_vbmi = f.gfni = f.amx = false;
  }
  if (level < IsaLevel::kAvx2) f.avx2 = false;
  return f;
}

void set_isa_cap(IsaLevel cap) { cap_storage().store(static_cast<int>(cap), std::memory_order_relaxed); }

std::string isa_name(IsaLevel level) {
  switch (level) {
    case IsaLevel::kScalar: return "scalar";
    case IsaLevel::kAvx2: return "avx2";
    case IsaLevel::kAvx512: return "avx512";
  }
  return "unknown";
}

std::string describe_cpu() {
  CpuFeatures f = cpu_features();
  std::string s = isa_name(isa_level());
  std::string extras;
  if (f.avx512_bf16) extras += " bf16";
  if (f.avx512_fp16) extras += " fp16";
  if (f.avx512_vnni) extras += " vnni";
  if (f.avx512_vbmi) extras += " vbmi";
  if (f.gfni) extras += " gfni";
  if (f.amx) extras += " amx";
  if (!extras.empty()) s += " (" + extras.substr(1) + ")";
  return s;
}

}  // namespace qswap
