#include "runners/kubernetes/job_spec.h"

#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <string_view>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "engine/duration.h"
#include "engine/status_macros.h"

namespace dagd::runners::kubernetes {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// Pod-spec fields an Argo workflow or template may carry that a Job's pod takes as they are.
// Argo-only ones (podGC, volumeClaimTemplates, archiveLogs, metrics, …) do not apply to a Job.
constexpr std::string_view kPodFields[] = {
    "affinity",          "automountServiceAccountToken",
    "dnsConfig",         "dnsPolicy",
    "hostAliases",       "hostNetwork",
    "imagePullSecrets",  "nodeSelector",
    "priorityClassName", "schedulerName",
    "securityContext",   "serviceAccountName",
    "tolerations",       "volumes",
};

// Container fields kept verbatim from `container:` / `script:` (engine::ContainerSpec).
constexpr std::string_view kContainerFields[] = {
    "envFrom",
    "imagePullPolicy",
    "lifecycle",
    "livenessProbe",
    "ports",
    "readinessProbe",
    "resources",
    "securityContext",
    "startupProbe",
    "stdin",
    "stdinOnce",
    "terminationMessagePath",
    "terminationMessagePolicy",
    "tty",
    "volumeDevices",
    "volumeMounts",
};

// A ConfigMap with the files under keys f0, f1, … (keys may not hold '/'), and the volume that
// puts them back at their paths with their modes.
absl::StatusOr<std::pair<json, json>> FilesConfigMap(const std::vector<PodFile>& files,
                                                     const std::string& name, const json& metadata,
                                                     const JobSpecOptions& options,
                                                     const std::string& where) {
  json config_map = {{"apiVersion", "v1"}, {"kind", "ConfigMap"}, {"metadata", metadata}};
  config_map["metadata"]["name"] = name;
  json binary = json::object();
  json items = json::array();
  size_t bytes = 0;
  for (size_t i = 0; i < files.size(); ++i) {
    const std::string key = absl::StrCat("f", i);
    std::string encoded = absl::Base64Escape(files[i].content);
    bytes += encoded.size() + files[i].path.size() + key.size();
    binary[key] = std::move(encoded);
    items.push_back({{"key", key}, {"path", files[i].path}, {"mode", files[i].mode}});
  }
  if (bytes > options.max_config_map_bytes) {
    return absl::ResourceExhaustedError(absl::StrCat(
        where, ": the attempt's files (bundle, playbook, extra vars, inventory) take ", bytes,
        " bytes in a ConfigMap, more than the ", options.max_config_map_bytes,
        " the kubernetes runner allows (Kubernetes stores at most 1 MiB per object); make the "
        "bundle smaller, bake large files into the image, or run the template with "
        "`runner: local`"));
  }
  config_map["binaryData"] = std::move(binary);
  json volume = {{"name", "dagd-files"},
                 {"configMap", {{"name", name}, {"items", std::move(items)}}}};
  return std::make_pair(std::move(config_map), std::move(volume));
}

json EnvList(const std::vector<engine::EnvVar>& vars) {
  json env = json::array();
  for (const engine::EnvVar& var : vars) env.push_back({{"name", var.name}, {"value", var.value}});
  return env;
}

// Copies the allowed fields of `from` (an object or null) into `to`, later calls winning.
void PassThrough(const json& from, const std::string_view* begin, const std::string_view* end,
                 json* to) {
  if (!from.is_object()) return;
  for (const std::string_view* field = begin; field != end; ++field) {
    auto it = from.find(std::string(*field));
    if (it != from.end()) (*to)[std::string(*field)] = *it;
  }
}

// The smaller of the template's `timeout` and `activeDeadlineSeconds`, in whole seconds.
absl::StatusOr<std::optional<int64_t>> Deadline(const engine::Template& t) {
  std::optional<int64_t> seconds = t.active_deadline_seconds;
  if (!t.timeout.empty()) {
    absl::StatusOr<int64_t> ms = engine::ParseDurationMs(t.timeout);
    if (!ms.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(TemplateWhere(t), ": timeout: ", ms.status().message()));
    }
    const int64_t timeout_seconds = std::max<int64_t>(1, (*ms + 999) / 1000);
    seconds = seconds ? std::min(*seconds, timeout_seconds) : timeout_seconds;
  }
  return seconds;
}

}  // namespace

std::string JobName(const std::string& external_name) {
  std::string name;
  for (char c : external_name) {
    const char lower = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    const bool ok = (lower >= 'a' && lower <= 'z') || (lower >= '0' && lower <= '9');
    name.push_back(ok ? lower : '-');
  }
  const bool changed = name != external_name;
  if (name.size() > 63 || (changed && name.size() > 54)) {
    // Keep the end (node hash and attempt) and mark the shortening with a hash of the whole.
    const std::string hash = Sha256Hex(external_name).substr(0, 8);
    const size_t keep = 63 - hash.size() - 1;
    name = name.substr(0, keep / 2) + name.substr(name.size() - (keep - keep / 2)) + "-" + hash;
  } else if (changed) {
    name += "-" + Sha256Hex(external_name).substr(0, 8);  // "A_b" and "a-b" must not collide
  }
  while (!name.empty() && name.front() == '-') name.erase(name.begin());
  if (name.empty() || !std::isalnum(static_cast<unsigned char>(name.front()))) name = "d" + name;
  while (name.size() > 63) name.pop_back();
  while (!name.empty() && name.back() == '-') name.pop_back();
  return name;
}

absl::StatusOr<JobObjects> BuildJobObjects(const AttemptSpec& spec, const JobSpecOptions& options) {
  const engine::Template& t = spec.resolved;
  JobObjects out;
  out.job_name = JobName(spec.external_name);

  json labels = {{"app.kubernetes.io/managed-by", "dagd"},
                 {"dagd.io/run", LabelValue(spec.run_id)},
                 {"dagd.io/node", Sha256Hex(spec.node_name).substr(0, 16)},
                 {"dagd.io/attempt", absl::StrCat(spec.attempt)}};
  json annotations = {{"dagd.io/run", spec.run_id},
                      {"dagd.io/node", spec.node_name},
                      {"dagd.io/attempt", absl::StrCat(spec.attempt)},
                      {"dagd.io/template", t.name}};
  json metadata = {{"name", out.job_name},
                   {"namespace", options.namespace_name},
                   {"labels", labels},
                   {"annotations", annotations}};

  json container = {{"name", "main"}};
  json pod_spec = {{"restartPolicy", "Never"}};
  PassThrough(spec.workflow_kubernetes, std::begin(kPodFields), std::end(kPodFields), &pod_spec);
  PassThrough(t.kubernetes, std::begin(kPodFields), std::end(kPodFields), &pod_spec);
  json volumes = pod_spec.value("volumes", json::array());
  json mounts = json::array();

  switch (t.type) {
    case engine::TemplateType::kContainer:
    case engine::TemplateType::kScript: {
      const engine::ContainerSpec& c =
          t.type == engine::TemplateType::kContainer ? *t.container : t.script->container;
      if (c.image.empty()) {
        return absl::InvalidArgumentError(
            absl::StrCat(TemplateWhere(t), ": the kubernetes runner needs an `image`"));
      }
      PassThrough(c.kubernetes, std::begin(kContainerFields), std::end(kContainerFields),
                  &container);
      container["image"] = c.image;
      json command = c.command;
      json args = c.args;
      if (t.type == engine::TemplateType::kScript) {
        if (c.command.empty()) {
          return absl::InvalidArgumentError(absl::StrCat(
              TemplateWhere(t), ": script has no `command`; name its interpreter, e.g. [python3]"));
        }
        ASSIGN_OR_RETURN(auto config,
                         FilesConfigMap({{"script", t.script->source, 0755}}, out.job_name,
                                        metadata, options, TemplateWhere(t)));
        out.config_map = std::move(config.first);
        volumes.push_back(std::move(config.second));
        mounts.push_back(
            {{"name", "dagd-files"}, {"mountPath", kScriptMountPath}, {"readOnly", true}});
        args.push_back(absl::StrCat(kScriptMountPath, "/script"));
      }
      if (!command.empty()) container["command"] = std::move(command);
      if (!args.empty()) container["args"] = std::move(args);
      if (!c.env.empty()) container["env"] = EnvList(c.env);
      if (!c.working_dir.empty()) container["workingDir"] = c.working_dir;
      break;
    }
    case engine::TemplateType::kAnsible: {
      ASSIGN_OR_RETURN(AnsiblePod ansible, BuildAnsiblePod(spec, {}));
      ASSIGN_OR_RETURN(auto config, FilesConfigMap(ansible.files, out.job_name, metadata, options,
                                                   TemplateWhere(t)));
      out.config_map = std::move(config.first);
      volumes.push_back(std::move(config.second));
      volumes.push_back({{"name", "dagd-work"}, {"emptyDir", json::object()}});
      mounts.push_back(
          {{"name", "dagd-files"}, {"mountPath", kBundleMountPath}, {"readOnly", true}});
      mounts.push_back({{"name", "dagd-work"}, {"mountPath", kWorkDirPath}});
      container["image"] = options.ansible_image;
      container["command"] = std::move(ansible.command);
      container["args"] = std::move(ansible.args);
      container["workingDir"] = kWorkDirPath;
      container["env"] = std::move(ansible.env);
      break;
    }
    default:
      return absl::InvalidArgumentError(
          absl::StrCat(TemplateWhere(t), ": a ", engine::TemplateTypeName(t.type),
                       " template is not run by a runner; only container, script and ansible "
                       "templates are"));
  }

  if (!mounts.empty()) {
    json all_mounts = container.value("volumeMounts", json::array());
    for (json& mount : mounts) all_mounts.push_back(std::move(mount));
    container["volumeMounts"] = std::move(all_mounts);
  }
  if (!volumes.empty()) pod_spec["volumes"] = std::move(volumes);
  pod_spec["containers"] = json::array({std::move(container)});

  json pod_metadata = {{"labels", labels}, {"annotations", annotations}};
  if (auto meta = t.kubernetes.find("metadata"); meta != t.kubernetes.end() && meta->is_object()) {
    for (const char* kind : {"labels", "annotations"}) {
      if (auto extra = meta->find(kind); extra != meta->end() && extra->is_object()) {
        for (const auto& [key, value] : extra->items()) {
          if (!pod_metadata[kind].contains(key)) pod_metadata[kind][key] = value;
        }
      }
    }
  }

  json job_spec = {{"backoffLimit", 0},
                   {"ttlSecondsAfterFinished", options.ttl_seconds_after_finished},
                   {"template", {{"metadata", pod_metadata}, {"spec", pod_spec}}}};
  ASSIGN_OR_RETURN(std::optional<int64_t> deadline, Deadline(t));
  if (deadline) job_spec["activeDeadlineSeconds"] = *deadline;
  out.job = {{"apiVersion", "batch/v1"},
             {"kind", "Job"},
             {"metadata", std::move(metadata)},
             {"spec", std::move(job_spec)}};
  return out;
}

}  // namespace dagd::runners::kubernetes
