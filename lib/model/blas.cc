// OpenBLAS thread control, and which of its kernel tables runs.
#include "model/blas.h"

#include <string>

#include "model/bf16_gemm.h"

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

}  // namespace charlm
