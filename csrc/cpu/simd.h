// Run-time choice of the CPU instruction set for the hot loops.
//
// The kernels are written once as always-inline templates over fixed 16-wide
// chunks of the rank dimension; thin entry points compiled with GCC/Clang
// `target` attributes let the vectoriser emit AVX-512 or AVX2 code for them,
// and the best one the processor supports is picked at run time. The build
// itself needs no -march flag, so one binary runs on any x86-64 machine.
// SYMSATNET_CPU_ISA=avx512|avx2|baseline forces a choice (tests compare them).
#pragma once

#include <cstdlib>
#include <cstring>
#include <string>

#define SYMSATNET_INLINE inline __attribute__((always_inline))

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define SYMSATNET_X86 1
#define SYMSATNET_TARGET_AVX512 \
  __attribute__((target("avx512f,avx512vl,avx512dq,avx512bw,avx2,fma,prefer-vector-width=512")))
#define SYMSATNET_TARGET_AVX2 __attribute__((target("avx2,fma")))
#else
#define SYMSATNET_X86 0
#endif

namespace symsatnet {

enum class CpuIsa { baseline, avx2, avx512 };

inline CpuIsa detect_isa() {
  CpuIsa best = CpuIsa::baseline;
#if SYMSATNET_X86
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) best = CpuIsa::avx2;
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
      __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512bw"))
    best = CpuIsa::avx512;
#endif
  const char* forced = std::getenv("SYMSATNET_CPU_ISA");
  if (forced != nullptr && forced[0] != '\0') {
    std::string want(forced);
    // A forced choice the processor lacks would crash with SIGILL: fall back.
    if (want == "baseline") return CpuIsa::baseline;
    if (want == "avx2" && best != CpuIsa::baseline) return CpuIsa::avx2;
    if (want == "avx512" && best == CpuIsa::avx512) return CpuIsa::avx512;
  }
  return best;
}

// Read on every call (cheap) so tests can switch it with the environment.
inline CpuIsa cpu_isa() { return detect_isa(); }

}  // namespace symsatnet
