// GradScaler (see tessera/amp/grad_scaler.hpp).
#include "tessera/amp/grad_scaler.hpp"

#include <cmath>
#include <nlohmann/json.hpp>

#include "tessera/autograd/autograd.hpp"
#include "tessera/error.hpp"
#include "tessera/ops.hpp"

namespace tessera::amp {

namespace {
using json = nlohmann::json;
Tensor device_scalar(double v, Device d) { return scalar_tensor(v, TensorOptions(kFloat32, d)); }
}  // namespace

GradScaler::GradScaler(const GradScalerOptions& o) : options_(o) {
  TESSERA_CHECK(std::isfinite(o.init_scale_) && o.init_scale_ > 0, ValueError,
                "GradScaler: init_scale must be finite and > 0, got ", o.init_scale_);
  TESSERA_CHECK(o.growth_factor_ > 1.0, ValueError, "GradScaler: growth_factor must be > 1, got ", o.growth_factor_);
  TESSERA_CHECK(o.backoff_factor_ > 0.0 && o.backoff_factor_ < 1.0, ValueError,
                "GradScaler: backoff_factor must be in (0, 1), got ", o.backoff_factor_);
  TESSERA_CHECK(o.growth_interval_ >= 1, ValueError, "GradScaler: growth_interval must be >= 1, got ",
                o.growth_interval_);
}

Tensor GradScaler::scale(const Tensor& loss) {
  if (!options_.enabled_) return loss;
  TESSERA_CHECK(loss.defined(), ValueError, "GradScaler.scale: the loss is undefined");
  TESSERA_CHECK(is_floating_point(loss.dtype()), DTypeError, "GradScaler.scale: the loss must be a float tensor, got ",
                dtype_name(loss.dtype()));
  if (!scale_.defined() || scale_.device() != loss.device()) {
    const double s = scale_.defined() ? get_scale() : loaded_scale_ > 0 ? loaded_scale_ : options_.init_scale_;
    const double t = growth_tracker_.defined() ? growth_tracker_.item<double>() : loaded_tracker_;
    scale_ = device_scalar(s, loss.device());
    growth_tracker_ = device_scalar(t, loss.device());
  }
  // float32 or wider, so a float16 loss times 65536 does not overflow.
  const Tensor l = is_reduced_floating_point(loss.dtype()) ? loss.to(kFloat32) : loss;
  return mul(l, scale_.to(l.dtype()));
}

void GradScaler::unscale_(optim::Optimizer& optimizer) {
  if (!options_.enabled_) return;
  PerOptimizer& st = per_optimizer_[&optimizer];
  TESSERA_CHECK(!st.unscaled, ValueError,
                "GradScaler.unscale_: already called for this optimizer since the last update()");
  TESSERA_CHECK(!st.stepped, ValueError, "GradScaler.unscale_: called after step(); call update() first");
  TESSERA_CHECK(scale_.defined(), ValueError, "GradScaler.unscale_: no scale yet; call scale(loss) first");
  NoGradGuard no_grad;
  // The reciprocal in double, then float32, as PyTorch (scale.double().reciprocal().float()).
  const Tensor inv = div(device_scalar(1.0, scale_.device()).to(kFloat64), scale_.to(kFloat64)).to(kFloat32);
  Tensor found = device_scalar(0.0, scale_.device());
  for (const Tensor& p : optimizer.parameters()) {
    Tensor g = p.grad();
    if (!g.defined()) continue;
    TESSERA_CHECK(g.device() == scale_.device(), DeviceError, "GradScaler.unscale_: a gradient on ", g.device().str(),
                  " while the loss was scaled on ", scale_.device().str());
    // sum(g * 0) is NaN exactly when g holds an inf or a NaN, else 0.
    const Tensor probe = sum(mul(g, 0.0)).to(kFloat32);
    found = maximum(found, ne(probe, probe).to(kFloat32));
    g.mul_(inv.to(g.dtype()));
  }
  st.found_inf = found;
  st.unscaled = true;
}

bool GradScaler::step(optim::Optimizer& optimizer) {
  if (!options_.enabled_) {
    optimizer.step();
    return true;
  }
  PerOptimizer& st = per_optimizer_[&optimizer];
  TESSERA_CHECK(!st.stepped, ValueError, "GradScaler.step: already called for this optimizer since the last update()");
  if (!st.unscaled) unscale_(optimizer);
  st.stepped = true;
  if (st.found_inf.item<float>() != 0.0f) {  // the one host read of the step
    ++skipped_;
    return false;
  }
  optimizer.step();
  return true;
}

void GradScaler::update() {
  if (!options_.enabled_) return;
  TESSERA_CHECK(scale_.defined(), ValueError, "GradScaler.update: no scale yet; call scale(loss) first");
  NoGradGuard no_grad;
  Tensor found = device_scalar(0.0, scale_.device());
  for (auto& [opt, st] : per_optimizer_)
    if (st.found_inf.defined()) found = maximum(found, st.found_inf.to(scale_.device()));
  // PyTorch's _amp_update_scale_: on inf/NaN back off and reset the count; otherwise count
  // the good step and grow after growth_interval of them (if the grown scale is finite).
  const Tensor inf = ne(found, 0.0);
  const Tensor good = add(growth_tracker_, 1.0);
  const Tensor grow = ge(good, double(options_.growth_interval_));
  const Tensor grown = mul(scale_, options_.growth_factor_);
  const Tensor grown_ok = logical_and(grow, lt(abs(grown), std::numeric_limits<double>::infinity()));
  Tensor new_scale = where(inf, mul(scale_, options_.backoff_factor_), where(grown_ok, grown, scale_));
  Tensor new_tracker = where(logical_or(inf, grow), zeros_like(good), good);
  scale_.copy_(new_scale);
  growth_tracker_.copy_(new_tracker);
  per_optimizer_.clear();
}

double GradScaler::get_scale() const {
  if (!options_.enabled_) return 1.0;
  if (!scale_.defined()) return loaded_scale_ > 0 ? loaded_scale_ : options_.init_scale_;
  return scale_.item<double>();
}

SavedState GradScaler::state_dict() const {
  SavedState s;
  json j;
  if (options_.enabled_) {
    j["scale"] = get_scale();
    j["growth_factor"] = options_.growth_factor_;
    j["backoff_factor"] = options_.backoff_factor_;
    j["growth_interval"] = options_.growth_interval_;
    j["_growth_tracker"] = int64_t(growth_tracker_.defined() ? growth_tracker_.item<double>() : loaded_tracker_);
  }
  s.json = j.is_null() ? "{}" : j.dump();
  return s;
}

void GradScaler::load_state_dict(const SavedState& state) {
  json j;
  try {
    j = json::parse(state.json);
  } catch (const json::exception& e) {
    throw ValueError(std::string("GradScaler.load_state_dict: the state is not JSON: ") + e.what());
  }
  TESSERA_CHECK(j.is_object() && !j.empty(), ValueError,
                "GradScaler.load_state_dict: empty state (it came from a disabled scaler)");
  auto number = [&](const char* key) {
    TESSERA_CHECK(j.contains(key) && j[key].is_number(), ValueError, "GradScaler.load_state_dict: missing or non-numeric '",
                  key, "'");
    return j[key].get<double>();
  };
  const double s = number("scale"), gf = number("growth_factor"), bf = number("backoff_factor"),
               gi = number("growth_interval"), gt = number("_growth_tracker");
  TESSERA_CHECK(std::isfinite(s) && s > 0, ValueError, "GradScaler.load_state_dict: invalid 'scale' ", s);
  TESSERA_CHECK(gf > 1 && bf > 0 && bf < 1 && gi >= 1 && gt >= 0, ValueError,
                "GradScaler.load_state_dict: invalid growth_factor/backoff_factor/growth_interval/_growth_tracker");
  options_.growth_factor_ = gf;
  options_.backoff_factor_ = bf;
  options_.growth_interval_ = int64_t(gi);
  loaded_scale_ = s;
  loaded_tracker_ = gt;
  if (scale_.defined()) {
    scale_.fill_(s);
    growth_tracker_.fill_(gt);
  }
}

}  // namespace tessera::amp
