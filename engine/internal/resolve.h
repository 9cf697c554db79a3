// Value plumbing of a run, shared by RunState: the tag scopes, input resolution, template
// substitution, fan-out item naming and fan-in aggregation, each following Argo. Pure functions;
// thread-safe.
#ifndef DAGD_ENGINE_INTERNAL_RESOLVE_H_
#define DAGD_ENGINE_INTERNAL_RESOLVE_H_

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/run_state.h"
#include "engine/tags.h"
#include "engine/workflow.h"

namespace dagd::engine::internal {

// {{workflow.name}} (the run name), {{workflow.namespace}} (when set),
// {{workflow.parameters.<p>}} and {{workflow.parameters.json}} (all of them, as Argo's JSON list
// of {name, value}).
TagScope WorkflowScope(const Workflow& workflow, const std::map<std::string, std::string>& params,
                       const std::string& run_name);

// `ms` since the epoch as RFC 3339 in UTC, to the second: "2026-11-26T21:05:00Z".
std::string Rfc3339(int64_t ms);

// `base` plus {{inputs.parameters.<p>}} for every entry of `inputs`.
TagScope WithInputs(TagScope base, const std::map<std::string, std::string>& inputs);

// The values of `tmpl`'s input parameters (Argo's ProcessArgs): the argument of that name, else
// the input's `value`, else its `default` (those two with `workflow_scope` tags substituted).
// InvalidArgument "inputs.parameters.<p> was not supplied" when there is none.
absl::StatusOr<std::map<std::string, std::string>> ResolveInputs(
    const Template& tmpl, const std::map<std::string, std::string>& arguments,
    const TagScope& workflow_scope);

// `tmpl` with dagd tags substituted in everything a runner reads (container / script / ansible
// fields, env values, extraVars strings at any depth, artifacts' path, key, subPath and raw data,
// the Kubernetes-only JSON) and the inputs' values filled in. InvalidArgument names the field:
// "container.args[1]: unresolved tag {{…}}".
absl::StatusOr<Template> ResolveTemplate(const Template& tmpl, const TagScope& body_scope,
                                         const std::map<std::string, std::string>& inputs);

// How a fan-out item appears in a node name, as Argo's processItem writes it: a string as is,
// numbers and booleans as JSON, a map as its sorted "key:value" pairs joined with ',', a list as
// JSON.
std::string ItemText(const nlohmann::json& item);

// `base` plus {{item}} (string as is, anything else as JSON) and, for a map, {{item.<key>}}.
TagScope WithItem(TagScope base, const nlohmann::json& item);

// Argo's fan-in over the Succeeded children of a fan-out, in index order: "result" is the JSON
// list of their results, "parameters.<p>" the JSON list of each parameter's values (a value that
// is valid JSON is kept as JSON, anything else as a string), and `parameter_maps` the JSON list
// of each child's parameters as a map of strings ({{tasks.X.outputs.parameters}}).
struct FanIn {
  NodeOutputs outputs;
  std::string parameter_maps;
};
FanIn AggregateOutputs(const std::vector<const NodeState*>& children);

// The items of a withSequence (Argo's expandSequence): JSON strings, `format`ted, from start
// counting up or down to end. Fields are read in `scope`. InvalidArgument names the field; a
// format with anything but one integer conversion, or more than 100000 items, is refused.
absl::StatusOr<std::vector<nlohmann::json>> ExpandSequence(const Sequence& sequence,
                                                           const TagScope& scope);

}  // namespace dagd::engine::internal

#endif  // DAGD_ENGINE_INTERNAL_RESOLVE_H_
