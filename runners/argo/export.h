// ExportArgoWorkflow: a whole dagd workflow (or one run of it) as one Argo Workflow that Argo can
// run on its own — `dagctl export argo RUN|FILE` (issue 4). The YAML is kept as written (the
// workflow language is Argo's) except for what Argo does not know:
//   - every `ansible` template becomes a container template running options.ansible_image with
//     the same command line, files (raw input artifacts: the bundle, extra vars, inventory, dagd's
//     callback plugin) and outputs as the argo runner's one-step Workflows (workflow_spec.h);
//     its input parameters keep their places, so Argo substitutes `{{inputs.parameters.*}}`,
//     `{{workflow.parameters.*}}` and the like in the extra vars itself;
//   - dagd's `runner` fields are dropped (Argo runs everything);
//   - `parameters` set spec.arguments.parameters' values; for a run (run_id set) metadata.name
//     is the run's id and generateName goes, so the Workflow is that run's twin.
// Differences that remain, by Argo's design: input parameters reach the playbook as strings
// (dagd passes JSON-looking values as data; use `| from_json`), and Ansible's events stay in the
// pod log instead of dagd's store.
//
// Pure apart from writing into scratch_dir. Thread-safe.
#ifndef DAGD_RUNNERS_ARGO_EXPORT_H_
#define DAGD_RUNNERS_ARGO_EXPORT_H_

#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "absl/status/statusor.h"
#include "runners/argo/workflow_spec.h"

namespace dagd::runners::argo {

struct ExportRequest {
  std::string yaml;        // the workflow spec, as submitted
  std::string file_name;   // for messages
  std::string bundle_dir;  // the workflow's bundle, "" for none
  // An existing empty directory the export may write into (the caller removes it).
  std::string scratch_dir;
  std::map<std::string, std::string> parameters;  // spec.arguments.parameters values to set
  std::string run_id;                             // "" when exporting a file
};

// The Workflow as JSON (engine::JsonToYaml prints it). Errors: the workflow's own parse and
// validation errors (InvalidArgument "<file>:<line>:<col>: …"); a parameter the workflow does
// not declare (InvalidArgument); what BuildNodeWorkflow refuses for an ansible template
// (credentials: FailedPrecondition; files over options.max_file_bytes: ResourceExhausted).
absl::StatusOr<nlohmann::json> ExportArgoWorkflow(const ExportRequest& request,
                                                  const WorkflowSpecOptions& options);

}  // namespace dagd::runners::argo

#endif  // DAGD_RUNNERS_ARGO_EXPORT_H_
