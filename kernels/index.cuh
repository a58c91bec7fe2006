// Indexing on the GPU: gather and scatter-add along a dim (index_select, embedding, index_add
// and the backward passes are built on them), top-k per row and multinomial sampling.
// Contracts: Backend's "indexing" section (backend.hpp).
#pragma once
#include "tessera/backend.hpp"

namespace tessera::cuda::detail {

/// out[p] = x[p with coordinate dim = index[p]]; a bad index writes NaN (0 for integers) and is
/// reported as an IndexError at the next synchronisation.
void index_gather(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& out, const char* op);
/// out[p with coordinate dim = index[p]] += src[p]: atomicAdd, or in deterministic mode for
/// floating point a kernel with one thread per destination element that adds in the order of
/// the index positions along dim (the CPU's order; index.size(dim) reads per element).
void index_scatter_add(const Tensor& out, int64_t dim, const Tensor& index, const Tensor& src, const char* op);
/// values/indices [M, k] of the k first elements of each row of x [M, N] in the contract's
/// order, found by counting for every element how many precede it (O(N^2) comparisons per
/// row, in shared-memory tiles: meant for rows up to about 1e5 elements).
void topk_rows(const Tensor& x, int64_t k, bool largest, const Tensor& values, const Tensor& indices);
/// Samples with replacement, one thread per sample scanning its row's running sum in float64.
void multinomial_rows(const Tensor& probs, uint64_t seed, uint64_t offset, const Tensor& out);

}  // namespace tessera::cuda::detail
