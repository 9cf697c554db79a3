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

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/workflow.h"

namespace dagd::engine {

// Exactly one document: a second one is an error naming its line.
absl::StatusOr<Workflow> ParseWorkflow(std::string_view yaml_text, std::string_view file_name);

// Every document of a multi-document file (`---` between them; empty documents are skipped), in
// order, with line numbers counted from the start of the file. At most kMaxWorkflowDocuments.
inline constexpr size_t kMaxWorkflowDocuments = 100;
absl::StatusOr<std::vector<Workflow>> ParseWorkflowDocuments(std::string_view yaml_text,
                                                             std::string_view file_name);

// One document's text, as SplitYamlDocuments cut it from a file.
struct YamlDocument {
  std::string text;    // without the `---` line before it
  int first_line = 1;  // its first line's number in the file
};
// Cuts a file at its document markers (`---` or `...` at the start of a line), dropping
// documents with nothing but blank lines and comments: the same documents, in the same order,
// as ParseWorkflowDocuments parses. Lets each document be stored as written.
std::vector<YamlDocument> SplitYamlDocuments(std::string_view yaml_text);

}  // namespace dagd::engine

#endif  // DAGD_ENGINE_PARSER_H_
