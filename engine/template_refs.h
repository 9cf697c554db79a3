// `templateRef` and `spec.workflowTemplateRef`: templates of WorkflowTemplate and
// ClusterWorkflowTemplate documents, copied into the workflow that calls them.
//
// dagd keeps the WorkflowTemplates it was given (`dagctl apply`) as stored workflows. When a run
// is submitted, the server appends every WorkflowTemplate the workflow refers to, directly or
// through another template, to the workflow's YAML as further documents: the run's "run spec".
// A run thus executes a snapshot; applying a new version of a template later does not change
// runs already submitted, and a restarted dagd resolves exactly the same templates.
//
// Resolving copies a referenced template into Workflow::templates under the name
// "WORKFLOWTEMPLATE/TEMPLATE" ('/' cannot occur in Argo's names, so it never clashes), together
// with the templates it calls in its own document, and points the call at the copy. Pure
// functions; thread-safe.
#ifndef DAGD_ENGINE_TEMPLATE_REFS_H_
#define DAGD_ENGINE_TEMPLATE_REFS_H_

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "engine/workflow.h"

namespace dagd::engine {

// The WorkflowTemplate (cluster_scope false) or ClusterWorkflowTemplate documents that
// `workflow` names directly (spec.workflowTemplateRef, and templateRef of tasks, steps and exit
// hooks), each name once, in the order written. TemplateRef::template_name is empty.
std::vector<TemplateRef> ReferencedDocuments(const Workflow& workflow);

// Referenced documents by metadata.name.
using TemplateLibrary = std::map<std::string, Workflow>;

// Resolves every reference of `*workflow` against `library`, in place:
// - spec.workflowTemplateRef: the workflow becomes the referenced document's spec with this
//   workflow's fields over it (entrypoint, arguments by name, templates by name, onExit, hooks
//   by name, parallelism, activeDeadlineSeconds, runner and Kubernetes-only fields), keeping
//   its own kind and metadata, as Argo joins them;
// - templateRef: the template is imported as described above and the call names it.
// InvalidArgument naming the reference's line when its document is not in `library`, is of the
// other kind (clusterScope: true needs a ClusterWorkflowTemplate, false a WorkflowTemplate), or
// has no such template.
absl::Status ResolveTemplateRefs(Workflow* workflow, const TemplateLibrary& library);

// Reads a run spec: its first document is the workflow, the others the documents it refers to;
// returns the workflow with its references resolved (not yet validated). Line numbers are the
// run spec's.
absl::StatusOr<Workflow> ParseRunSpec(std::string_view yaml_text, std::string_view file_name);

// A run spec: `workflow_yaml` followed by each of `documents` (YAML texts of WorkflowTemplates)
// as a further document.
std::string JoinRunSpec(std::string_view workflow_yaml, const std::vector<std::string>& documents);

}  // namespace dagd::engine

#endif  // DAGD_ENGINE_TEMPLATE_REFS_H_
