// The PTX ISA release table (PTX ISA manual, "Release History"; the same as cuda-python's
// _ptx_utils.py). CUDA 12.6 kept ISA 8.5; ISA 8.6 came with 12.7.
#include "tessera/env/ptx.hpp"

#include "tessera/env/report.hpp"

#include <iterator>

namespace tessera::env {

namespace {
constexpr PtxIsaRow kRows[] = {
    {9, 0, 6, 0},   {9, 1, 6, 1},   {9, 2, 6, 2},   {10, 0, 6, 3},  {10, 1, 6, 4},  {10, 2, 6, 5},  {11, 0, 7, 0},
    {11, 1, 7, 1},  {11, 2, 7, 2},  {11, 3, 7, 3},  {11, 4, 7, 4},  {11, 5, 7, 5},  {11, 6, 7, 6},  {11, 7, 7, 7},
    {11, 8, 7, 8},  {12, 0, 8, 0},  {12, 1, 8, 1},  {12, 2, 8, 2},  {12, 3, 8, 3},  {12, 4, 8, 4},  {12, 5, 8, 5},
    {12, 6, 8, 5},  {12, 7, 8, 6},  {12, 8, 8, 7},  {12, 9, 8, 8},  {13, 0, 9, 0},  {13, 1, 9, 1},
};
constexpr int kCount = static_cast<int>(std::size(kRows));
}  // namespace

const PtxIsaRow* ptx_isa_table(int* rows) {
  if (rows) *rows = kCount;
  return kRows;
}

Version ptx_isa_of_toolkit(const Version& cuda) {
  if (!cuda.known()) return {};
  for (const auto& r : kRows)
    if (r.cuda_major == cuda.major && r.cuda_minor == cuda.minor) return Version(r.ptx_major, r.ptx_minor);
  return {};
}

Version max_ptx_isa_of_driver(const Version& driver_cuda, bool* beyond_table) {
  if (beyond_table) *beyond_table = false;
  if (!driver_cuda.known()) return {};
  const Version d(driver_cuda.major, driver_cuda.minor);
  Version best;
  for (const auto& r : kRows)
    if (!(d < Version(r.cuda_major, r.cuda_minor))) best = Version(r.ptx_major, r.ptx_minor);
  const auto& last = kRows[kCount - 1];
  if (beyond_table && Version(last.cuda_major, last.cuda_minor) < d) *beyond_table = true;
  return best;
}

}  // namespace tessera::env
