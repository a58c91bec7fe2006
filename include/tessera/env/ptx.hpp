// PTX ISA versions: which one a CUDA toolkit's nvcc writes and which ones a driver can
// JIT-compile. A driver refuses PTX of a newer ISA with cudaErrorUnsupportedPtxVersion (222,
// "the provided PTX was compiled with an unsupported toolchain") at the first launch.
//
// Source: the PTX ISA manual's "Release History" table (docs.nvidia.com/cuda/
// parallel-thread-execution, "PTX ISA Version / CUDA Release"), as NVIDIA's cuda-python
// encodes it (cuda.bindings.utils.get_minimal_required_cuda_ver_from_ptx_ver).
#pragma once

namespace tessera::env {

struct Version;

/// One row: the CUDA release and the PTX ISA version its nvcc writes (and its driver JITs).
struct PtxIsaRow {
  int cuda_major, cuda_minor;
  int ptx_major, ptx_minor;
};

/// The table, oldest first, from CUDA 9.0 (PTX ISA 6.0) to the newest release it knows.
const PtxIsaRow* ptx_isa_table(int* rows);

/// The PTX ISA version the nvcc of CUDA `cuda` (major.minor) writes; unknown when the table
/// has no row for that release (older than 9.0 or newer than the table).
Version ptx_isa_of_toolkit(const Version& cuda);

/// The newest PTX ISA a driver that supports CUDA `driver_cuda` can JIT-compile: that of the
/// newest release not newer than the driver. `beyond_table` is set when the driver is newer
/// than the table's newest release (it may JIT newer PTX than the table says).
Version max_ptx_isa_of_driver(const Version& driver_cuda, bool* beyond_table = nullptr);

}  // namespace tessera::env
