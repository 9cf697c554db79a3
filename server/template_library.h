// The WorkflowTemplates a workflow refers to (templateRef, workflowTemplateRef), loaded from the
// store: what the server resolves a workflow against when it is applied, linted or submitted
// (engine/template_refs.h). Thread-safe as the store is.
#ifndef DAGD_SERVER_TEMPLATE_LIBRARY_H_
#define DAGD_SERVER_TEMPLATE_LIBRARY_H_

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/template_refs.h"
#include "engine/workflow.h"
#include "storage/store.h"

namespace dagd::server {

// A document and its YAML as stored (or as applied in the same file).
struct TemplateDocument {
  std::string yaml;
  engine::Workflow workflow;
};

// Every document `workflow` refers to, directly or through those documents, in the order first
// referred to: from `same_file` (documents applied together with it, by name) when there, else
// the latest stored version. A name found in neither is left out; resolving then names the
// reference and its line. At most engine::kMaxWorkflowDocuments documents. Errors: the store's,
// or a stored document that no longer parses.
absl::StatusOr<std::vector<TemplateDocument>> LoadReferencedDocuments(
    storage::Store* store, const engine::Workflow& workflow,
    const std::map<std::string, TemplateDocument>& same_file);

// `documents` by name, as engine::ResolveTemplateRefs takes them.
engine::TemplateLibrary ToLibrary(const std::vector<TemplateDocument>& documents);

// The run spec of `yaml` (one workflow document, already parsed as `workflow`): the YAML
// followed by every stored document it refers to (engine::JoinRunSpec).
absl::StatusOr<std::string> BuildRunSpec(storage::Store* store, const std::string& yaml,
                                         const engine::Workflow& workflow);

}  // namespace dagd::server

#endif  // DAGD_SERVER_TEMPLATE_LIBRARY_H_
