// WorkflowSpec: the Argo Workflow the `argo` runner submits for one attempt — a Workflow whose
// only template is the node's resolved template (DESIGN.md §1: dagd keeps the control flow, Argo
// runs the step). Pure apart from the attempt's working directory; no API calls. Stateless.
//
//   metadata     name JobName(external_name) (deterministic: a restarted dagd finds it again),
//                labels and annotations as the kubernetes runner's Job (dagd.io/run, node,
//                attempt).
//   spec         entrypoint "main"; the workflow spec's Kubernetes fields that Argo's
//                WorkflowSpec has (serviceAccountName, nodeSelector, tolerations, volumes,
//                podGC, …) verbatim; ttlStrategy.secondsAfterCompletion; no retries (dagd
//                retries). The template keeps its `timeout` and `activeDeadlineSeconds`.
//   template     container and script templates as written, with their Kubernetes fields and
//                valueFrom.path outputs (Argo reads those files itself). An ansible template
//                becomes a container template running options.ansible_image with the same
//                command line as everywhere (runners/kubernetes/ansible_pod.h); its files travel
//                as raw input artifacts under /dagd/bundle; dagd's callback plugin writes every
//                set_stats key to /dagd/work/.dagd/stats/KEY (DAGD_STATS_DIR), so that
//                `valueFrom.stats` outputs become `valueFrom.path` ones, and the whole map to
//                the output parameter kResultParameter (the node's result).
#ifndef DAGD_RUNNERS_ARGO_WORKFLOW_SPEC_H_
#define DAGD_RUNNERS_ARGO_WORKFLOW_SPEC_H_

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "absl/status/statusor.h"
#include "runners/runner.h"

namespace dagd::runners::argo {

// The output parameter that carries an ansible node's set_stats map (its result).
inline constexpr char kResultParameter[] = "dagd-result";

struct WorkflowSpecOptions {
  std::string namespace_name = "argo";
  std::string ansible_image = "docker.io/library/dagd-ansible:latest";
  int64_t seconds_after_completion = 3600;  // ttlStrategy
  // An Argo Workflow is one object (etcd keeps at most ~1.5 MiB); the shipped files get this.
  size_t max_file_bytes = 900 * 1024;
};

// The parts of an Argo template that run the ansible template spec.resolved as a container:
// {"inputs": {"artifacts": [the attempt's files, raw]}, "container": {…}, "outputs":
// {"parameters": [its outputs, valueFrom.stats as valueFrom.path, and kResultParameter]}}.
// Writes the attempt's files into spec.work_dir (as BuildAnsiblePod). Errors as
// BuildNodeWorkflow's for an ansible template.
absl::StatusOr<nlohmann::json> AnsibleContainerTemplate(const AttemptSpec& spec,
                                                        const WorkflowSpecOptions& options);

// The Workflow (apiVersion argoproj.io/v1alpha1) for `spec`. Errors: InvalidArgument for a
// template the runner cannot run, FailedPrecondition for ansible credentials (local runner
// only so far), ResourceExhausted when the ansible files exceed max_file_bytes.
absl::StatusOr<nlohmann::json> BuildNodeWorkflow(const AttemptSpec& spec,
                                                 const WorkflowSpecOptions& options);

}  // namespace dagd::runners::argo

#endif  // DAGD_RUNNERS_ARGO_WORKFLOW_SPEC_H_
