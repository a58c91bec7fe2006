// Optimizer::state_dict / load_state_dict in PyTorch's layout, and each optimizer's options
// as a param_group (torch.optim.Optimizer.state_dict: {"state": {i: {...}}, "param_groups":
// [{..., "params": [i, ...]}]}; tensors are stored beside the JSON as "state.<i>.<name>").
#include <cmath>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "tessera/autograd/autograd.hpp"
#include "tessera/error.hpp"
#include "tessera/ops.hpp"
#include "tessera/optim/optimizer.hpp"

namespace tessera::optim {

using json = nlohmann::json;

namespace {

json parse_object(const std::string& text, const char* who) {
  json j = json::parse(text, nullptr, false);
  TESSERA_CHECK(!j.is_discarded() && j.is_object(), ValueError, who,
                ".load_state_dict: the state is not a JSON object");
  return j;
}

double number(const json& group, const char* key, const char* who) {
  auto it = group.find(key);
  TESSERA_CHECK(it != group.end() && it->is_number() && std::isfinite(it->get<double>()), ValueError, who,
                ".load_state_dict: param_groups[0].", key, " is missing or not a finite number");
  return it->get<double>();
}

bool boolean(const json& group, const char* key, const char* who) {
  auto it = group.find(key);
  TESSERA_CHECK(it != group.end() && it->is_boolean(), ValueError, who, ".load_state_dict: param_groups[0].",
                key, " is missing or not true/false");
  return it->get<bool>();
}

}  // namespace

SavedState Optimizer::state_dict() const {
  NoGradGuard no_grad;
  SavedState out;
  const StateSlots slots = state_slots();
  json state = json::object();
  for (std::size_t i = 0; i < params_.size(); ++i) {
    json entry = json::object();
    bool any = false;
    for (const auto& slot : slots.tensors) {
      const Tensor& t = (*slot.second)[i];
      if (!t.defined()) continue;
      out.tensors["state." + std::to_string(i) + "." + slot.first] = t.detach().clone();
      any = true;
    }
    if (slots.steps && (*slots.steps)[i] > 0) any = true;
    // A parameter with state always has its step (PyTorch's Adam state has "step" beside the moments).
    if (any && slots.steps) entry["step"] = (*slots.steps)[i];
    if (any) state[std::to_string(i)] = entry;
  }
  json group = json::parse(options_json());
  group["lr"] = lr_;
  json ids = json::array();
  for (std::size_t i = 0; i < params_.size(); ++i) ids.push_back(i);
  group["params"] = ids;
  json doc = {{"type", type_name()}, {"step_count", step_count_}, {"state", state},
              {"param_groups", json::array({group})}};
  out.json = doc.dump();
  return out;
}

void Optimizer::load_state_dict(const SavedState& saved) {
  const char* who = type_name();
  const json doc = parse_object(saved.json, who);
  // ---- check everything first ----------------------------------------------------------
  auto type = doc.find("type");
  TESSERA_CHECK(type != doc.end() && type->is_string(), ValueError, who,
                ".load_state_dict: the state has no \"type\" (not an optimizer's state_dict?)");
  TESSERA_CHECK(type->get<std::string>() == who, ValueError, who, ".load_state_dict: the state is a ",
                type->get<std::string>(), " optimizer's; load it into a ", type->get<std::string>());
  auto groups = doc.find("param_groups");
  TESSERA_CHECK(groups != doc.end() && groups->is_array() && groups->size() == 1 && (*groups)[0].is_object(),
                ValueError, who, ".load_state_dict: expected \"param_groups\" with one group");
  const json& group = (*groups)[0];
  auto ids = group.find("params");
  TESSERA_CHECK(ids != group.end() && ids->is_array(), ValueError, who,
                ".load_state_dict: param_groups[0] has no \"params\" list");
  TESSERA_CHECK(ids->size() == params_.size(), ValueError, who, ".load_state_dict: the state has ", ids->size(),
                " parameters, this optimizer has ", params_.size());
  const double lr = number(group, "lr", who);
  TESSERA_CHECK(lr >= 0.0, ValueError, who, ".load_state_dict: invalid learning rate ", lr);
  json options = group;
  options.erase("lr");
  options.erase("params");
  std::function<void()> apply_options = prepare_options(options.dump());
  auto step_count = doc.find("step_count");
  TESSERA_CHECK(step_count != doc.end() && step_count->is_number_integer() && step_count->get<int64_t>() >= 0,
                ValueError, who, ".load_state_dict: \"step_count\" is missing or not a count");
  auto state = doc.find("state");
  TESSERA_CHECK(state != doc.end() && state->is_object(), ValueError, who,
                ".load_state_dict: \"state\" is missing or not an object");

  const StateSlots slots = state_slots();
  std::vector<std::string> problems;
  std::set<std::string> known;
  std::vector<std::vector<Tensor>> fresh(slots.tensors.size(), std::vector<Tensor>(params_.size()));
  std::vector<int64_t> steps(params_.size(), 0);
  for (std::size_t i = 0; i < params_.size(); ++i) {
    const std::string id = std::to_string(i);
    std::size_t present_required = 0;
    for (std::size_t s = 0; s < slots.tensors.size(); ++s) {
      const std::string key = "state." + id + "." + slots.tensors[s].first;
      known.insert(key);
      auto it = saved.tensors.find(key);
      if (it == saved.tensors.end()) continue;
      const Tensor& t = it->second;
      if (s < slots.required) ++present_required;  // present, even if unusable (reported below)
      if (!t.defined() || t.shape() != params_[i].shape()) {
        problems.push_back("'" + key + "' has shape " + (t.defined() ? shape_str(t.shape()) : "undefined") +
                           ", parameter " + id + " has " + shape_str(params_[i].shape()));
        continue;
      }
      if (!is_floating_point(t.dtype())) {
        problems.push_back("'" + key + "' has dtype " + dtype_name(t.dtype()) + "; expected a floating-point tensor");
        continue;
      }
      fresh[s][i] = t;
    }
    auto entry = state->find(id);
    if (entry != state->end()) {
      auto st = entry->find("step");
      if (slots.steps) {
        if (st == entry->end() || !st->is_number_integer() || st->get<int64_t>() < 0)
          problems.push_back("state." + id + ".step is missing or not a count");
        else
          steps[i] = st->get<int64_t>();
      }
    }
    if (present_required != 0 && present_required != slots.required) {
      std::string need;
      for (std::size_t s = 0; s < slots.required; ++s) need += (s ? ", " : "") + slots.tensors[s].first;
      problems.push_back("parameter " + id + " has only part of its state (needs " + need + ")");
    }
    if (slots.steps && steps[i] > 0 && slots.required > 0 && present_required == 0)
      problems.push_back("parameter " + id + " has step " + std::to_string(steps[i]) + " but no state tensors");
  }
  for (const auto& kv : saved.tensors)
    if (!known.count(kv.first)) problems.push_back("unexpected tensor '" + kv.first + "'");
  for (const auto& kv : state->items()) {
    char* end = nullptr;
    const long v = std::strtol(kv.key().c_str(), &end, 10);
    if (kv.key().empty() || *end != '\0' || v < 0 || std::size_t(v) >= params_.size())
      problems.push_back("state entry \"" + kv.key() + "\" names no parameter");
  }
  if (!problems.empty()) {
    std::ostringstream os;
    os << who << ".load_state_dict: the state does not fit this optimizer (" << problems.size() << " problem"
       << (problems.size() == 1 ? "" : "s") << "):";
    for (const auto& p : problems) os << "\n  " << p;
    throw ValueError(os.str());
  }
  // ---- apply ------------------------------------------------------------------------------
  NoGradGuard no_grad;
  for (std::size_t s = 0; s < slots.tensors.size(); ++s)
    for (std::size_t i = 0; i < params_.size(); ++i) {
      const Tensor& t = fresh[s][i];
      const Tensor& p = params_[i];
      (*slots.tensors[s].second)[i] = t.defined() ? t.detach().to(p.device(), p.dtype()).clone() : Tensor();
    }
  if (slots.steps) *slots.steps = steps;
  lr_ = lr;
  step_count_ = step_count->get<int64_t>();
  apply_options();
}

// ---- SGD ------------------------------------------------------------------------------------

Optimizer::StateSlots SGD::state_slots() const {
  StateSlots s;
  // The slots are written only by load_state_dict (a non-const member).
  s.tensors.emplace_back("momentum_buffer", const_cast<std::vector<Tensor>*>(&momentum_buffer_));
  s.required = 0;
  return s;
}

std::string SGD::options_json() const {
  return json{{"momentum", options_.momentum_},
              {"dampening", options_.dampening_},
              {"weight_decay", options_.weight_decay_},
              {"nesterov", options_.nesterov_}}
      .dump();
}

std::function<void()> SGD::prepare_options(const std::string& text) {
  const json g = parse_object(text, "SGD");
  SGDOptions o(lr_);
  o.momentum_ = number(g, "momentum", "SGD");
  o.dampening_ = number(g, "dampening", "SGD");
  o.weight_decay_ = number(g, "weight_decay", "SGD");
  o.nesterov_ = boolean(g, "nesterov", "SGD");
  TESSERA_CHECK(o.momentum_ >= 0.0 && o.weight_decay_ >= 0.0 &&
                    (!o.nesterov_ || (o.momentum_ > 0.0 && o.dampening_ == 0.0)),
                ValueError, "SGD.load_state_dict: invalid options ", text);
  return [this, o] { options_ = o; };
}

// ---- Adam / AdamW ---------------------------------------------------------------------------

Optimizer::StateSlots Adam::state_slots() const {
  StateSlots s;
  auto* self = const_cast<Adam*>(this);  // the slots are written only by load_state_dict
  s.tensors.emplace_back("exp_avg", &self->exp_avg_);
  s.tensors.emplace_back("exp_avg_sq", &self->exp_avg_sq_);
  s.tensors.emplace_back("max_exp_avg_sq", &self->max_exp_avg_sq_);
  s.required = options_.amsgrad_ ? 3 : 2;
  s.steps = &self->steps_;
  return s;
}

std::string Adam::options_json() const {
  return json{{"betas", {options_.beta1_, options_.beta2_}},
              {"eps", options_.eps_},
              {"weight_decay", options_.weight_decay_},
              {"amsgrad", options_.amsgrad_}}
      .dump();
}

std::function<void()> Adam::prepare_options(const std::string& text) {
  const char* who = type_name();
  const json g = parse_object(text, who);
  AdamOptions o(lr_);
  auto betas = g.find("betas");
  TESSERA_CHECK(betas != g.end() && betas->is_array() && betas->size() == 2 && (*betas)[0].is_number() &&
                    (*betas)[1].is_number(),
                ValueError, who, ".load_state_dict: param_groups[0].betas is missing or not two numbers");
  o.beta1_ = (*betas)[0].get<double>();
  o.beta2_ = (*betas)[1].get<double>();
  o.eps_ = number(g, "eps", who);
  o.weight_decay_ = number(g, "weight_decay", who);
  o.amsgrad_ = boolean(g, "amsgrad", who);
  TESSERA_CHECK(o.beta1_ >= 0.0 && o.beta1_ < 1.0 && o.beta2_ >= 0.0 && o.beta2_ < 1.0 && o.eps_ >= 0.0 &&
                    o.weight_decay_ >= 0.0,
                ValueError, who, ".load_state_dict: invalid options ", text);
  TESSERA_CHECK(o.amsgrad_ == options_.amsgrad_, ValueError, who,
                ".load_state_dict: the state has amsgrad=", o.amsgrad_ ? "true" : "false",
                ", this optimizer was made with amsgrad=", options_.amsgrad_ ? "true" : "false");
  return [this, o] { options_ = o; };
}

}  // namespace tessera::optim
