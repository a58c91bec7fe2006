// CPU threading controls.
#pragma once

namespace tessera {

/// Threads the CPU backend uses for one op (OpenMP and Eigen's GEMM); default: all cores
/// (or OMP_NUM_THREADS). Throws ValueError for n < 1.
void set_num_threads(int n);
int get_num_threads();

}  // namespace tessera
