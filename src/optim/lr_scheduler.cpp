// torch.optim.lr_scheduler: StepLR, CosineAnnealingLR, and the schedulers' state_dict.
#include "tessera/optim/lr_scheduler.hpp"

#include <algorithm>
#include <cmath>

#include "tessera/error.hpp"
#include <nlohmann/json.hpp>

namespace tessera::optim {

StepLR::StepLR(Optimizer& optimizer, int64_t step_size, double gamma)
    : LRScheduler(optimizer), step_size_(step_size), gamma_(gamma) {
  TESSERA_CHECK(step_size > 0, ValueError, "StepLR: step_size must be positive, got ", step_size);
  TESSERA_CHECK(std::isfinite(gamma) && gamma >= 0.0, ValueError, "StepLR: gamma must be finite and >= 0, got ",
                gamma);
}

void StepLR::step() {
  ++epoch_;
  optimizer_.set_lr(base_lr_ * std::pow(gamma_, double(epoch_ / step_size_)));
}

CosineAnnealingLR::CosineAnnealingLR(Optimizer& optimizer, int64_t t_max, double eta_min)
    : LRScheduler(optimizer), t_max_(t_max), eta_min_(eta_min) {
  TESSERA_CHECK(t_max > 0, ValueError, "CosineAnnealingLR: t_max must be positive, got ", t_max);
  TESSERA_CHECK(std::isfinite(eta_min) && eta_min >= 0.0, ValueError,
                "CosineAnnealingLR: eta_min must be finite and >= 0, got ", eta_min);
}

void CosineAnnealingLR::step() {
  ++epoch_;
  const double pi = std::acos(-1.0);
  const double progress = double(std::min(epoch_, t_max_)) / double(t_max_);
  optimizer_.set_lr(eta_min_ + (base_lr_ - eta_min_) * (1.0 + std::cos(pi * progress)) / 2.0);
}

using json = nlohmann::json;

SavedState LRScheduler::state_dict() const {
  json doc = json::parse(hyper_json());
  doc["type"] = type_name();
  doc["last_epoch"] = epoch_;
  doc["base_lr"] = base_lr_;
  SavedState out;
  out.json = doc.dump();
  return out;
}

void LRScheduler::load_state_dict(const SavedState& state) {
  const char* who = type_name();
  const json doc = json::parse(state.json, nullptr, false);
  TESSERA_CHECK(!doc.is_discarded() && doc.is_object(), ValueError, who,
                ".load_state_dict: the state is not a JSON object");
  auto type = doc.find("type");
  TESSERA_CHECK(type != doc.end() && type->is_string() && type->get<std::string>() == who, ValueError, who,
                ".load_state_dict: the state is not a ", who, "'s (type ",
                type != doc.end() ? type->dump() : std::string("missing"), ")");
  auto epoch = doc.find("last_epoch");
  auto base = doc.find("base_lr");
  TESSERA_CHECK(epoch != doc.end() && epoch->is_number_integer() && epoch->get<int64_t>() >= 0, ValueError, who,
                ".load_state_dict: last_epoch is missing or negative");
  TESSERA_CHECK(base != doc.end() && base->is_number() && std::isfinite(base->get<double>()) &&
                    base->get<double>() >= 0.0,
                ValueError, who, ".load_state_dict: base_lr is missing or not a finite value >= 0");
  json hyper = doc;
  hyper.erase("type");
  hyper.erase("last_epoch");
  hyper.erase("base_lr");
  std::function<void()> apply = prepare_hyper(hyper.dump());
  epoch_ = epoch->get<int64_t>();
  base_lr_ = base->get<double>();
  apply();
}

namespace {
const json& field(const json& j, const char* key, const char* who) {
  auto it = j.find(key);
  TESSERA_CHECK(it != j.end() && it->is_number(), ValueError, who, ".load_state_dict: ", key,
                " is missing or not a number");
  return *it;
}
}  // namespace

std::string StepLR::hyper_json() const { return json{{"step_size", step_size_}, {"gamma", gamma_}}.dump(); }

std::function<void()> StepLR::prepare_hyper(const std::string& text) {
  const json j = json::parse(text);
  const json& s = field(j, "step_size", "StepLR");
  const double gamma = field(j, "gamma", "StepLR").get<double>();
  TESSERA_CHECK(s.is_number_integer() && s.get<int64_t>() > 0 && std::isfinite(gamma) && gamma >= 0.0,
                ValueError, "StepLR.load_state_dict: invalid step_size/gamma in ", text);
  const int64_t step_size = s.get<int64_t>();
  return [this, step_size, gamma] {
    step_size_ = step_size;
    gamma_ = gamma;
  };
}

std::string CosineAnnealingLR::hyper_json() const { return json{{"T_max", t_max_}, {"eta_min", eta_min_}}.dump(); }

std::function<void()> CosineAnnealingLR::prepare_hyper(const std::string& text) {
  const json j = json::parse(text);
  const json& t = field(j, "T_max", "CosineAnnealingLR");
  const double eta_min = field(j, "eta_min", "CosineAnnealingLR").get<double>();
  TESSERA_CHECK(t.is_number_integer() && t.get<int64_t>() > 0 && std::isfinite(eta_min) && eta_min >= 0.0,
                ValueError, "CosineAnnealingLR.load_state_dict: invalid T_max/eta_min in ", text);
  const int64_t t_max = t.get<int64_t>();
  return [this, t_max, eta_min] {
    t_max_ = t_max;
    eta_min_ = eta_min;
  };
}

}  // namespace tessera::optim
