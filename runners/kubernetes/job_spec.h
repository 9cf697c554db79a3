// JobSpec: the Kubernetes objects of one attempt on the `kubernetes` runner — a batch/v1 Job and,
// when the attempt has files to ship (an ansible playbook, its bundle, extra vars and inventory,
// or a script's source), a ConfigMap holding them. Pure apart from reading the attempt's
// working directory; no API calls. Stateless; thread-compatible.
//
// The Job (checked against the batch/v1 Job schema in ../shared/schemas by the tests):
//   metadata.name   JobName(external_name): a DNS-1123 label of at most 63 characters (the Job
//                   controller copies it into the pod label `job-name`, limited to 63).
//   labels          app.kubernetes.io/managed-by=dagd, dagd.io/run, dagd.io/node (a hash: node
//                   names need not be valid label values), dagd.io/attempt; the full run id and
//                   node name are annotations. Pods carry the same labels.
//   spec            backoffLimit 0 (dagd retries, not Kubernetes), restartPolicy Never,
//                   ttlSecondsAfterFinished, activeDeadlineSeconds from the template's
//                   `timeout` / `activeDeadlineSeconds` (the smaller one).
//   pod spec        one container `main`; the Kubernetes fields the workflow kept verbatim
//                   (DESIGN.md §1) are passed through: from the workflow spec and then the template
//                   (the template wins) serviceAccountName, nodeSelector, tolerations, affinity,
//                   securityContext, imagePullSecrets, volumes, …; from the container its
//                   resources, volumeMounts, imagePullPolicy, securityContext, envFrom, ports, ….
// Template types:
//   container  image, command, args, env, workingDir as written.
//   script     the source in the ConfigMap, mounted at /dagd/script; command + args + the file.
//   ansible    options.ansible_image runs `ansible-playbook` with exactly the command line the
//              local runner would use (runners/local/command.h BuildPodAnsibleCommand): the
//              attempt's working directory (bundle, extra vars, inventory, dagd's callback
//              plugin) travels in the ConfigMap, mounted read-only at /dagd/bundle and copied
//              into a writable emptyDir at /dagd/work, the working directory. The plugin writes
//              its events to stderr, each line starting with kEventLinePrefix, so they come
//              back through the pod log.
#ifndef DAGD_RUNNERS_KUBERNETES_JOB_SPEC_H_
#define DAGD_RUNNERS_KUBERNETES_JOB_SPEC_H_

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "runners/kubernetes/ansible_pod.h"
#include "runners/runner.h"

namespace dagd::runners::kubernetes {

// Where a script's source is mounted.
inline constexpr char kScriptMountPath[] = "/dagd/script";

struct JobSpecOptions {
  std::string namespace_name = "default";
  // Runs ansible templates: needs ansible-playbook, python3 and a POSIX sh with cp.
  std::string ansible_image = "docker.io/library/dagd-ansible:latest";
  // Jobs are deleted this long after they finish (their history stays in dagd).
  int64_t ttl_seconds_after_finished = 3600;
  // A ConfigMap may hold 1 MiB in all; the files of one attempt get at most this much.
  size_t max_config_map_bytes = 900 * 1024;
};

struct JobObjects {
  std::string job_name;
  nlohmann::json job;
  std::optional<nlohmann::json> config_map;  // named like the Job; created before it
};

// A valid DNS-1123 label of at most 63 characters for `external_name` ("<run>-<hash>-<n>"):
// lower-cased, other characters replaced by '-', and, when too long, the run part shortened and
// a hash of the whole name added, so that distinct names stay distinct. Deterministic.
std::string JobName(const std::string& external_name);

// The Job (and ConfigMap) for `spec`. spec.work_dir must exist; for ansible it holds the bundle
// already (the scheduler materialises it) and receives the files BuildPodAnsibleCommand writes.
// Errors: InvalidArgument for a template the runner cannot run (naming it), FailedPrecondition
// for ansible credentials (local runner only so far), ResourceExhausted when the files exceed
// max_config_map_bytes (naming the size, the limit and what to do).
absl::StatusOr<JobObjects> BuildJobObjects(const AttemptSpec& spec, const JobSpecOptions& options);

}  // namespace dagd::runners::kubernetes

#endif  // DAGD_RUNNERS_KUBERNETES_JOB_SPEC_H_
