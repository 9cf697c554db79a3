// Static checks of a parsed workflow, and the merge of submitted parameters.
//
// ValidateWorkflow() finds what would make a run fail for reasons visible before it starts:
// missing or unknown entrypoint, duplicate template or task names, a task calling an unknown
// template, dependencies / depends naming unknown tasks or not parsing, cycles (reported with
// their path, "a -> b -> c -> a", found on a Boost.Graph of each dag template), `{{tasks.X…}}`
// naming a task that is not an ancestor, `{{inputs.parameters.p}}` naming an undeclared input,
// a task that does not pass an input its template requires (no value, no default), and an
// ansible credential reference (vaultPasswordRef, …) that is not a credential name
// (IsCredentialName; names holding a dagd tag are checked at launch).
// Errors are absl::InvalidArgumentError in the parser's "<file>:<line>:<col>: <field>: …" form.
// Pure functions; thread-safe.
#ifndef DAGD_ENGINE_VALIDATE_H_
#define DAGD_ENGINE_VALIDATE_H_

#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "engine/workflow.h"

namespace dagd::engine {

// The first problem FindWorkflowProblems() finds, or OK.
absl::Status ValidateWorkflow(const Workflow& workflow);

// Every problem, the way `argo lint` lists them: one per template-level check, per task and per
// step (a check stops at its first problem within one of those). Empty when the workflow is
// valid.
std::vector<absl::Status> FindWorkflowProblems(const Workflow& workflow);

// Merges `submitted` over spec.arguments.parameters. Errors: a submitted name the workflow does
// not declare; a declared parameter with neither a value nor a submitted one; a value outside a
// parameter's `enum`.
absl::StatusOr<std::map<std::string, std::string>> ResolveWorkflowArguments(
    const Workflow& workflow, const std::map<std::string, std::string>& submitted);

// Task names of `dag` in a topological order (dependencies first). REQUIRES: validated.
std::vector<std::string> TopologicalTaskOrder(const DagTemplate& dag);

}  // namespace dagd::engine

#endif  // DAGD_ENGINE_VALIDATE_H_
