// OpenBLAS thread control, and which of its kernel tables runs.
#include "ops/blas.h"

#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <string>
#include <vector>

#include "ops/bf16_gemm.h"
#include "util/errors.h"
#include "util/file_io.h"

extern "C" {
void openblas_set_num_threads(int num_threads);
int openblas_get_num_threads(void);
char* openblas_get_corename(void);
}

namespace charlm {

namespace {
// Set by PrepareRuntimeEnvironment for the re-executed program when it held OpenBLAS to one thread at load time
// (a memory limit): SetBlasThreads(0) then asks for the cores OpenBLAS would have taken.
constexpr const char* kDeferredThreadsVariable = "CHARLM_OPENBLAS_THREADS_DEFERRED";

// Whether this thread's OpenBLAS buffer is mapped (by MapCallerBlasBuffer).
bool g_caller_buffer_mapped = false;

// One product big enough to leave OpenBLAS's small-matrix path, which maps the calling thread's buffer now,
// while the room for it has just been checked, instead of in the middle of a command.
void MapCallerBlasBuffer() {
  constexpr int kSize = 256;
  std::vector<float> a(static_cast<std::size_t>(kSize) * kSize, 0.0f), c(a.size());  // (kSize, kSize) each
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, kSize, kSize, kSize, 1.0f, a.data(), kSize, a.data(), kSize,
              0.0f, c.data(), kSize);
  g_caller_buffer_mapped = true;
}
}  // namespace

void SetBlasThreads(int threads) {
  if (threads <= 0 && std::getenv(kDeferredThreadsVariable) != nullptr) {
    threads = static_cast<int>(std::max(1L, ::sysconf(_SC_NPROCESSORS_ONLN)));
  }
  if (threads <= 0) return;
  const std::uint64_t headroom = AddressSpaceHeadroomBytes();
  if (headroom != std::numeric_limits<std::uint64_t>::max()) {
    // Each buffer with the stack of the thread that takes it (8 MB by default).
    const std::uint64_t per_buffer = kBlasBufferBytes + (std::uint64_t{8} << 20);
    const int running = openblas_get_num_threads();
    const std::uint64_t caller = g_caller_buffer_mapped ? 0 : 1;
    if (caller * per_buffer > headroom) {
      throw UserError("OpenBLAS needs " + FormatBytes(per_buffer) + " of address space for its buffer, more than the " +
                      FormatBytes(headroom) + " this process may still map under its memory limit (ulimit -v): "
                      "raise the limit by at least " + FormatBytes(per_buffer - headroom));
    }
    const auto fit = static_cast<int>(std::min<std::uint64_t>((headroom - caller * per_buffer) / per_buffer, 4096));
    if (threads > running + fit) {
      const int fewer = std::max(1, running + fit);
      const auto buffers = static_cast<std::uint64_t>(threads - running) + caller;
      std::fprintf(stderr, "charlm: warning: %d threads would need %s of address space for OpenBLAS's buffers "
                           "(%s each), more than the %s this process may still map under its memory limit "
                           "(ulimit -v): running on %d; raise the limit by %s to use %d\n",
                   threads, FormatBytes(buffers * per_buffer).c_str(), FormatBytes(per_buffer).c_str(),
                   FormatBytes(headroom).c_str(), fewer, FormatBytes(buffers * per_buffer - headroom).c_str(), threads);
      threads = fewer;
    }
  }
  openblas_set_num_threads(threads);
  SetOpenMpThreads(threads);  // oneDNN's bf16 products: train.threads bounds them too
  if (headroom != std::numeric_limits<std::uint64_t>::max() && !g_caller_buffer_mapped) MapCallerBlasBuffer();
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
  if (AddressSpaceHeadroomBytes() != std::numeric_limits<std::uint64_t>::max() &&
      std::getenv("OPENBLAS_NUM_THREADS") == nullptr && std::getenv("OMP_NUM_THREADS") == nullptr &&
      setenv("OPENBLAS_NUM_THREADS", "1", 1) == 0) {
    setenv(kDeferredThreadsVariable, "1", 1);
    changed = true;
  }
  if (changed) execv("/proc/self/exe", argv);  // only returns on failure: then run on as loaded
}

}  // namespace charlm
