// AnsiblePod: how an ansible attempt runs in a container of a cluster runner (the kubernetes
// runner's Job, the argo runner's Workflow). Shared by both so that a playbook runs the same
// everywhere: exactly the ansible-playbook command line of the local runner
// (runners/local/command.h BuildPodAnsibleCommand), with the attempt's working directory — the
// bundle, extra vars, inventory and dagd's callback plugin — shipped as files that appear
// read-only under kBundleMountPath, copied into the writable kWorkDirPath before ansible-playbook
// starts there. Pure apart from writing and reading the attempt's working directory.
#ifndef DAGD_RUNNERS_KUBERNETES_ANSIBLE_POD_H_
#define DAGD_RUNNERS_KUBERNETES_ANSIBLE_POD_H_

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "runners/runner.h"

namespace dagd::runners::kubernetes {

// Starts every event line in an ansible container's log: ASCII record separator, then a tag.
inline constexpr char kEventLinePrefix[] =
    "\x1e"
    "dagd-event:";
// Where an ansible container finds its files, and where it runs.
inline constexpr char kBundleMountPath[] = "/dagd/bundle";
inline constexpr char kWorkDirPath[] = "/dagd/work";

struct PodFile {
  std::string path;  // relative to kBundleMountPath
  std::string content;
  int mode = 0644;
};

struct AnsiblePod {
  nlohmann::json command;  // sh -c "copy the files, then exec ansible-playbook …"
  nlohmann::json args;     // ansible-playbook's argv, paths in the container
  nlohmann::json env;      // [{"name", "value"}], paths in the container
  std::vector<PodFile> files;
};

// Writes the attempt's files into spec.work_dir (which holds the bundle already) and returns the
// container's command, args and environment (plus `extra_env`) and every file to ship (Ansible's
// own temp dir left out). Errors as BuildPodAnsibleCommand() (credentials: FailedPrecondition);
// Unavailable if the directory cannot be read.
absl::StatusOr<AnsiblePod> BuildAnsiblePod(const AttemptSpec& spec,
                                           const std::map<std::string, std::string>& extra_env);

// The total size of `files` as the API stores them (base64), for the object size limits.
size_t ShippedBytes(const std::vector<PodFile>& files);

// Hex SHA-256 of `text`, for labels and names that must be short and stable.
std::string Sha256Hex(const std::string& text);

// A label value: at most 63 characters of [A-Za-z0-9._-], alphanumeric at both ends.
std::string LabelValue(const std::string& text);

// "template \"NAME\" (file:line:col)" for messages.
std::string TemplateWhere(const engine::Template& t);

}  // namespace dagd::runners::kubernetes

#endif  // DAGD_RUNNERS_KUBERNETES_ANSIBLE_POD_H_
