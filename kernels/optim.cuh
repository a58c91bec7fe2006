// Fused optimizer updates: one kernel per parameter tensor reads the parameter, its gradient
// and its state once and writes them once (formulas: Backend::adam_step / sgd_step).
#pragma once
#include "tessera/backend.hpp"

namespace tessera::cuda::detail {

void adam_step(const Tensor& param, const Tensor& grad, const Tensor& exp_avg, const Tensor& exp_avg_sq,
               const Tensor& max_exp_avg_sq, const AdamStepParams& p);
void sgd_step(const Tensor& param, const Tensor& grad, const Tensor& momentum_buffer, const SgdStepParams& p);

}  // namespace tessera::cuda::detail
