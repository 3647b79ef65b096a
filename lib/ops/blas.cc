// OpenBLAS thread control, and which of its kernel tables runs.
#include "ops/blas.h"

#include <unistd.h>

#include <cstdlib>
#include <string>

#include "ops/bf16_gemm.h"

extern "C" {
void openblas_set_num_threads(int num_threads);
int openblas_get_num_threads(void);
char* openblas_get_corename(void);
}

namespace charlm {

void SetBlasThreads(int threads) {
  if (threads <= 0) return;
  openblas_set_num_threads(threads);
  SetOpenMpThreads(threads);  // oneDNN's bf16 products: train.threads bounds them too
}

int BlasThreads() { return openblas_get_num_threads(); }

std::string BlasCoreName() { return openblas_get_corename(); }

namespace {
// Set by PrepareRuntimeEnvironment for the re-executed program: the table OpenBLAS had detected itself.
constexpr const char* kDetectedCoreVariable = "CHARLM_OPENBLAS_DETECTED_CORE";
}  // namespace

std::string BlasCoreChosenOver() {
  const char* detected = std::getenv(kDetectedCoreVariable);
  return detected == nullptr || BlasCoreName() == detected ? "" : detected;
}

std::string BlasCoreDescription() {
  const std::string over = BlasCoreChosenOver();
  return BlasCoreName() + " kernels" +
         (over.empty() ? "" : " (chosen by charlm: OpenBLAS fell back to generic " + over + " on this CPU model)");
}

CpuFeatures DetectCpuFeatures() {
  CpuFeatures cpu;
#if defined(__x86_64__) || defined(__i386__)
  // libgcc's cpu indicator checks XGETBV too: a feature the OS does not save across context switches reads false.
  __builtin_cpu_init();
  cpu.avx2_fma = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  cpu.avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
               __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
  cpu.avx512_bf16 = cpu.avx512 && __builtin_cpu_supports("avx512bf16");
#endif
  return cpu;
}

std::string BetterBlasCore(const std::string& detected, const CpuFeatures& cpu) {
  if (detected != "Prescott") return "";
  if (cpu.avx512_bf16) return "Cooperlake";
  if (cpu.avx512) return "SkylakeX";
  if (cpu.avx2_fma) return "Haswell";
  return "";
}

void PrepareRuntimeEnvironment(char** argv) {
  bool changed = SetPassiveOpenMpWait();
  if (std::getenv("OPENBLAS_CORETYPE") == nullptr) {
    const std::string detected = BlasCoreName();
    const std::string better = BetterBlasCore(detected, DetectCpuFeatures());
    if (!better.empty() && setenv("OPENBLAS_CORETYPE", better.c_str(), 1) == 0) {
      setenv(kDetectedCoreVariable, detected.c_str(), 1);
      changed = true;
    }
  }
  if (changed) execv("/proc/self/exe", argv);  // only returns on failure: then run on as loaded
}

}  // namespace charlm
