// OpenBLAS thread control.
#include "blas.h"

extern "C" {
void openblas_set_num_threads(int num_threads);
int openblas_get_num_threads(void);
}

namespace charlm {

void SetBlasThreads(int threads) {
  if (threads > 0) openblas_set_num_threads(threads);
}

int BlasThreads() { return openblas_get_num_threads(); }

}  // namespace charlm
