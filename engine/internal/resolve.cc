#include "engine/internal/resolve.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "engine/status_macros.h"

namespace dagd::engine::internal {
namespace {

using nlohmann::json;

// Substitutes `*value` in place; an error is prefixed with `field`.
absl::Status Substitute(const std::string& field, const TagScope& scope, std::string* value) {
  absl::StatusOr<std::string> out = SubstituteTags(*value, scope);
  if (!out.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": ", out.status().message()));
  }
  *value = *std::move(out);
  return absl::OkStatus();
}

absl::Status SubstituteJson(const std::string& field, const TagScope& scope, json* value) {
  if (value->is_string()) {
    std::string text = value->get<std::string>();
    absl::Status status = Substitute(field, scope, &text);
    if (status.ok()) *value = text;
    return status;
  }
  if (value->is_object()) {
    for (auto& [key, child] : value->items()) {
      absl::Status status = SubstituteJson(absl::StrCat(field, ".", key), scope, &child);
      if (!status.ok()) return status;
    }
  } else if (value->is_array()) {
    for (size_t i = 0; i < value->size(); ++i) {
      absl::Status status = SubstituteJson(absl::StrCat(field, "[", i, "]"), scope, &(*value)[i]);
      if (!status.ok()) return status;
    }
  }
  return absl::OkStatus();
}

absl::Status SubstituteList(const std::string& field, const TagScope& scope,
                            std::vector<std::string>* values) {
  for (size_t i = 0; i < values->size(); ++i) {
    absl::Status status = Substitute(absl::StrCat(field, "[", i, "]"), scope, &(*values)[i]);
    if (!status.ok()) return status;
  }
  return absl::OkStatus();
}

absl::Status SubstituteEnv(const std::string& field, const TagScope& scope,
                           std::vector<EnvVar>* env) {
  for (EnvVar& var : *env) {
    absl::Status status = Substitute(absl::StrCat(field, ".", var.name), scope, &var.value);
    if (!status.ok()) return status;
  }
  return absl::OkStatus();
}

absl::Status SubstituteContainer(const std::string& field, const TagScope& scope,
                                 ContainerSpec* c) {
  absl::Status status = Substitute(field + ".image", scope, &c->image);
  if (status.ok()) status = SubstituteList(field + ".command", scope, &c->command);
  if (status.ok()) status = SubstituteList(field + ".args", scope, &c->args);
  if (status.ok()) status = SubstituteEnv(field + ".env", scope, &c->env);
  if (status.ok()) status = Substitute(field + ".workingDir", scope, &c->working_dir);
  if (status.ok()) status = SubstituteJson(field, scope, &c->kubernetes);
  return status;
}

// Compact JSON, invalid UTF-8 replaced by U+FFFD as Go's encoding/json does: strings here come
// from workflows and from what steps printed, and json::dump would throw on them.
std::string DumpJson(const json& value) {
  return value.dump(-1, ' ', false, json::error_handler_t::replace);
}

// A string as is; anything else as compact JSON.
std::string ScalarText(const json& value) {
  return value.is_string() ? value.get<std::string>() : DumpJson(value);
}

// Argo keeps an aggregated value that parses as JSON as that JSON value.
json AsJsonValue(const std::string& text) {
  json parsed = json::parse(text, nullptr, /*allow_exceptions=*/false);
  return parsed.is_discarded() ? json(text) : parsed;
}

}  // namespace

std::string Rfc3339(int64_t ms) {
  const time_t seconds = static_cast<time_t>(ms / 1000);
  struct tm utc {};
  gmtime_r(&seconds, &utc);
  char buffer[32];
  std::strftime(buffer, sizeof(buffer), "%Y-%m-%dT%H:%M:%SZ", &utc);
  return buffer;
}

TagScope WorkflowScope(const Workflow& workflow, const std::map<std::string, std::string>& params,
                       const std::string& run_name) {
  TagScope scope;
  scope["workflow.name"] = run_name;
  if (!workflow.namespace_name.empty()) scope["workflow.namespace"] = workflow.namespace_name;
  for (const auto& [name, value] : params) scope["workflow.parameters." + name] = value;
  // Argo's {{workflow.parameters.json}}: every parameter as a JSON list of {name, value}, in the
  // order declared (unless the workflow declares a parameter called json).
  if (params.count("json") == 0) {
    nlohmann::json all = nlohmann::json::array();
    for (const Parameter& declared : workflow.arguments.parameters) {
      auto it = params.find(declared.name);
      if (it != params.end()) all.push_back({{"name", declared.name}, {"value", it->second}});
    }
    scope["workflow.parameters.json"] = DumpJson(all);
  }
  return scope;
}

TagScope WithInputs(TagScope base, const std::map<std::string, std::string>& inputs) {
  for (const auto& [name, value] : inputs) base["inputs.parameters." + name] = value;
  return base;
}

absl::StatusOr<std::map<std::string, std::string>> ResolveInputs(
    const Template& tmpl, const std::map<std::string, std::string>& arguments,
    const TagScope& workflow_scope) {
  std::map<std::string, std::string> inputs;
  for (const Parameter& input : tmpl.inputs.parameters) {
    auto argument = arguments.find(input.name);
    if (argument != arguments.end()) {
      inputs[input.name] = argument->second;
      continue;
    }
    std::optional<std::string> value = input.value ? input.value : input.default_value;
    if (!value) {
      return absl::InvalidArgumentError(
          absl::StrCat("inputs.parameters.", input.name, " was not supplied"));
    }
    absl::Status status =
        Substitute(absl::StrCat("inputs.parameters.", input.name), workflow_scope, &*value);
    if (!status.ok()) return status;
    inputs[input.name] = *value;
  }
  return inputs;
}

absl::StatusOr<Template> ResolveTemplate(const Template& tmpl, const TagScope& scope,
                                         const std::map<std::string, std::string>& inputs) {
  Template out = tmpl;
  for (Parameter& input : out.inputs.parameters) {
    auto it = inputs.find(input.name);
    if (it != inputs.end()) input.value = it->second;
  }
  absl::Status status;
  if (out.container) status = SubstituteContainer("container", scope, &*out.container);
  if (status.ok() && out.script) {
    status = SubstituteContainer("script", scope, &out.script->container);
    if (status.ok()) status = Substitute("script.source", scope, &out.script->source);
  }
  if (status.ok() && out.ansible) {
    AnsibleSpec& a = *out.ansible;
    status = Substitute("ansible.playbook", scope, &a.playbook);
    if (status.ok()) status = Substitute("ansible.source", scope, &a.source);
    if (status.ok()) status = Substitute("ansible.inventory", scope, &a.inventory);
    if (status.ok()) status = Substitute("ansible.limit", scope, &a.limit);
    for (std::string& tag : a.tags) {
      if (status.ok()) status = Substitute("ansible.tags", scope, &tag);
    }
    for (std::string& tag : a.skip_tags) {
      if (status.ok()) status = Substitute("ansible.skipTags", scope, &tag);
    }
    if (status.ok()) status = Substitute("ansible.becomeUser", scope, &a.become_user);
    // Credential names; the runner checks the substituted names (runners/local/credentials.h).
    if (status.ok()) status = Substitute("ansible.vaultPasswordRef", scope, &a.vault_password_ref);
    if (status.ok()) status = Substitute("ansible.privateKeyRef", scope, &a.private_key_ref);
    if (status.ok()) {
      status = Substitute("ansible.becomePasswordRef", scope, &a.become_password_ref);
    }
    for (std::string& ref : a.env_from_refs) {
      if (status.ok()) status = Substitute("ansible.envFromRef", scope, &ref);
    }
    for (auto& [key, value] : a.extra_vars) {
      if (status.ok()) status = SubstituteJson("ansible.extraVars." + key, scope, &value);
    }
    if (status.ok()) status = SubstituteEnv("ansible.env", scope, &a.env);
  }
  // Where artifacts are in the pod and in the store (map-reduce keys its parts by input).
  for (auto [field, artifacts] : {std::pair{"inputs.artifacts", &out.inputs.artifacts},
                                  std::pair{"outputs.artifacts", &out.outputs.artifacts}}) {
    for (Artifact& artifact : *artifacts) {
      const std::string base = absl::StrCat(field, ".", artifact.name);
      if (status.ok()) status = Substitute(base + ".path", scope, &artifact.path);
      if (status.ok()) status = Substitute(base + ".key", scope, &artifact.key);
      if (status.ok()) status = Substitute(base + ".subPath", scope, &artifact.sub_path);
      if (status.ok() && artifact.raw) status = Substitute(base + ".raw", scope, &*artifact.raw);
    }
  }
  // Argo substitutes a template's timeout too ("{{inputs.parameters.timeout}}").
  if (status.ok()) status = Substitute("timeout", scope, &out.timeout);
  if (status.ok()) status = SubstituteJson("template", scope, &out.kubernetes);
  if (!status.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("template '", tmpl.name, "': ", status.message()));
  }
  return out;
}

std::string ItemText(const json& item) {
  if (!item.is_object()) return ScalarText(item);
  std::vector<std::string> pairs;
  for (const auto& [key, value] : item.items()) {
    pairs.push_back(absl::StrCat(key, ":", ScalarText(value)));
  }
  return absl::StrJoin(pairs, ",");  // nlohmann::json objects iterate in key order
}

TagScope WithItem(TagScope base, const json& item) {
  base["item"] = ScalarText(item);
  if (item.is_object()) {
    for (const auto& [key, value] : item.items()) base["item." + key] = ScalarText(value);
  }
  return base;
}

FanIn AggregateOutputs(const std::vector<const NodeState*>& children) {
  json results = json::array();
  json maps = json::array();
  std::map<std::string, json> per_name;
  for (const NodeState* child : children) {
    if (child->phase != NodePhase::kSucceeded) continue;
    if (child->outputs.result) results.push_back(AsJsonValue(*child->outputs.result));
    if (child->outputs.parameters.empty()) continue;
    json map = json::object();
    for (const auto& [name, value] : child->outputs.parameters) {
      map[name] = value;
      auto [it, inserted] = per_name.try_emplace(name, json::array());
      it->second.push_back(AsJsonValue(value));
    }
    maps.push_back(std::move(map));
  }
  FanIn fan_in;
  fan_in.outputs.result = DumpJson(results);
  for (const auto& [name, values] : per_name) fan_in.outputs.parameters[name] = DumpJson(values);
  fan_in.parameter_maps = DumpJson(maps);
  return fan_in;
}

namespace {

absl::StatusOr<int64_t> SequenceNumber(const std::string& field, const std::string& text,
                                       const TagScope& scope) {
  absl::StatusOr<std::string> value = SubstituteTags(text, scope);
  if (!value.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("withSequence.", field, ": ", value.status().message()));
  }
  int64_t number = 0;
  auto [end, error] = std::from_chars(value->data(), value->data() + value->size(), number);
  if (error != std::errc() || end != value->data() + value->size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("withSequence.", field, ": \"", *value, "\" is not an integer"));
  }
  return number;
}

// `format` checked to hold exactly one integer conversion (%d, %i, %x, %X, %o with flags and a
// width), rewritten for an int64 argument. Anything else is refused rather than handed to
// snprintf.
absl::StatusOr<std::string> IntegerFormat(const std::string& format) {
  std::string out;
  int conversions = 0;
  for (size_t i = 0; i < format.size(); ++i) {
    out.push_back(format[i]);
    if (format[i] != '%') continue;
    if (i + 1 < format.size() && format[i + 1] == '%') {
      out.push_back('%');
      ++i;
      continue;
    }
    size_t j = i + 1;
    while (j < format.size() && std::strchr("-+ 0#", format[j]) != nullptr) ++j;
    while (j < format.size() && std::isdigit(static_cast<unsigned char>(format[j])) != 0) ++j;
    if (j >= format.size() || std::strchr("dixXo", format[j]) == nullptr || j - i > 8) {
      return absl::InvalidArgumentError(absl::StrCat(
          "withSequence.format: \"", format,
          "\" must hold one integer conversion such as %d, %03d or %02X, and %% for a '%'"));
    }
    out.append(format, i + 1, j - i - 1);
    out.append("ll");
    out.push_back(format[j]);
    ++conversions;
    i = j;
  }
  if (conversions != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("withSequence.format: \"", format,
                     "\" must hold exactly one integer conversion such as %d or %02X"));
  }
  return out;
}

}  // namespace

absl::StatusOr<std::vector<json>> ExpandSequence(const Sequence& sequence, const TagScope& scope) {
  constexpr int64_t kMaxItems = 100000;
  int64_t start = 0;
  if (!sequence.start.empty()) {
    ASSIGN_OR_RETURN(start, SequenceNumber("start", sequence.start, scope));
  }
  int64_t end = 0;
  if (!sequence.end.empty()) {
    ASSIGN_OR_RETURN(end, SequenceNumber("end", sequence.end, scope));
  } else {
    ASSIGN_OR_RETURN(const int64_t count, SequenceNumber("count", sequence.count, scope));
    if (count < 0) return absl::InvalidArgumentError("withSequence.count: must not be negative");
    if (count == 0) return std::vector<json>();
    end = start + std::min(count, kMaxItems + 1) - 1;  // too many is refused below
  }
  if ((end > start ? end - start : start - end) >= kMaxItems) {
    return absl::InvalidArgumentError(
        absl::StrCat("withSequence: more than ", kMaxItems, " items"));
  }
  ASSIGN_OR_RETURN(const std::string format,
                   IntegerFormat(sequence.format.empty() ? "%d" : sequence.format));
  std::vector<json> items;
  const int64_t step = start <= end ? 1 : -1;
  for (int64_t i = start;; i += step) {
    char buffer[256];
    const int length = std::snprintf(buffer, sizeof(buffer), format.c_str(),
                                     static_cast<long long>(i));  // NOLINT(runtime/int)
    items.emplace_back(
        std::string(buffer, std::min<size_t>(std::max(length, 0), sizeof(buffer) - 1)));
    if (i == end) break;
  }
  return items;
}

}  // namespace dagd::engine::internal
