// Parses Argo Workflow / WorkflowTemplate YAML (plus dagd's `ansible` type and `runner` field)
// into the typed model of engine/workflow.h.
//
// Every error is absl::InvalidArgumentError with a message of the form
//   "<file>:<line>:<column>: <field path>: <what is wrong>; <how to fix it>"
// e.g. "wf.yaml:14:9: spec.templates[1].dag.tasks[0].dependecies: unknown field; did you mean
// 'dependencies'?". A field that is neither Argo's nor dagd's is an error; Kubernetes-only fields
// (volumes, securityContext, resources, …) are kept verbatim in the model's `kubernetes` members.
// Pure function; thread-safe.
#ifndef DAGD_ENGINE_PARSER_H_
#define DAGD_ENGINE_PARSER_H_

#include <string_view>

#include "absl/status/statusor.h"
#include "engine/workflow.h"

namespace dagd::engine {

absl::StatusOr<Workflow> ParseWorkflow(std::string_view yaml_text, std::string_view file_name);

}  // namespace dagd::engine

#endif  // DAGD_ENGINE_PARSER_H_
