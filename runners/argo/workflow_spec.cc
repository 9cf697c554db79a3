#include "runners/argo/workflow_spec.h"

#include <iterator>
#include <string_view>

#include "absl/strings/str_cat.h"
#include "engine/status_macros.h"
#include "runners/kubernetes/ansible_pod.h"
#include "runners/kubernetes/job_spec.h"

namespace dagd::runners::argo {
namespace {

using kubernetes::TemplateWhere;
using nlohmann::json;

constexpr char kStatsDir[] = "/dagd/work/.dagd/stats";

// WorkflowSpec fields a dagd workflow may carry verbatim that apply to a one-step Workflow.
constexpr std::string_view kSpecFields[] = {
    "affinity",
    "automountServiceAccountToken",
    "dnsConfig",
    "dnsPolicy",
    "hostAliases",
    "hostNetwork",
    "imagePullSecrets",
    "nodeSelector",
    "podDisruptionBudget",
    "podGC",
    "podMetadata",
    "podPriorityClassName",
    "priority",
    "schedulerName",
    "securityContext",
    "serviceAccountName",
    "tolerations",
    "volumeClaimTemplates",
    "volumes",
    "archiveLogs",
    "artifactRepositoryRef",
    "podSpecPatch",
    "executor",
};

// Template fields kept verbatim (engine::Template::kubernetes) that Argo's Template has.
constexpr std::string_view kTemplateFields[] = {
    "affinity",          "annotations",
    "archiveLocation",   "automountServiceAccountToken",
    "executor",          "hostAliases",
    "initContainers",    "metadata",
    "nodeSelector",      "podSpecPatch",
    "priorityClassName", "schedulerName",
    "securityContext",   "serviceAccountName",
    "sidecars",          "tolerations",
    "volumes",           "memoize",
    "synchronization",   "podResources",
};

void PassThrough(const json& from, const std::string_view* begin, const std::string_view* end,
                 json* to) {
  if (!from.is_object()) return;
  for (const std::string_view* field = begin; field != end; ++field) {
    auto it = from.find(std::string(*field));
    if (it != from.end()) (*to)[std::string(*field)] = *it;
  }
}

json ContainerBody(const engine::ContainerSpec& c) {
  json body = c.kubernetes.is_object() ? c.kubernetes : json::object();
  body["image"] = c.image;
  if (!c.command.empty()) body["command"] = c.command;
  if (!c.args.empty()) body["args"] = c.args;
  if (!c.env.empty()) {
    json env = json::array();
    for (const engine::EnvVar& var : c.env)
      env.push_back({{"name", var.name}, {"value", var.value}});
    body["env"] = std::move(env);
  }
  if (!c.working_dir.empty()) body["workingDir"] = c.working_dir;
  return body;
}

// outputs.parameters with their sources; valueFrom.stats read from the plugin's files.
json OutputParameters(const engine::Template& t, bool ansible) {
  json parameters = json::array();
  for (const engine::Parameter& p : t.outputs.parameters) {
    json out = {{"name", p.name}};
    if (p.value) out["value"] = *p.value;
    if (p.value_from) {
      json from = json::object();
      if (!p.value_from->stats.empty()) {
        from["path"] = absl::StrCat(kStatsDir, "/", p.value_from->stats);
      } else if (!p.value_from->path.empty()) {
        const bool relative = p.value_from->path.front() != '/';
        from["path"] = ansible && relative
                           ? absl::StrCat(kubernetes::kWorkDirPath, "/", p.value_from->path)
                           : p.value_from->path;
      }
      if (p.value_from->default_value) from["default"] = *p.value_from->default_value;
      out["valueFrom"] = std::move(from);
    }
    parameters.push_back(std::move(out));
  }
  if (ansible) {
    parameters.push_back(
        {{"name", kResultParameter},
         {"valueFrom", {{"path", absl::StrCat(kStatsDir, "/_all.json")}, {"default", "{}"}}}});
  }
  return parameters;
}

}  // namespace

absl::StatusOr<json> AnsibleContainerTemplate(const AttemptSpec& spec,
                                              const WorkflowSpecOptions& options) {
  const engine::Template& t = spec.resolved;
  ASSIGN_OR_RETURN(kubernetes::AnsiblePod pod,
                   kubernetes::BuildAnsiblePod(spec, {{"DAGD_STATS_DIR", kStatsDir}}));
  const size_t bytes = kubernetes::ShippedBytes(pod.files);
  if (bytes > options.max_file_bytes) {
    return absl::ResourceExhaustedError(absl::StrCat(
        TemplateWhere(t), ": the attempt's files (bundle, playbook, extra vars, inventory) take ",
        bytes, " bytes in the Workflow, more than the ", options.max_file_bytes,
        " the argo runner allows (Kubernetes stores one object in at most ~1.5 MiB); make "
        "the bundle smaller, bake large files into the image, or run the template with "
        "`runner: local`"));
  }
  json artifacts = json::array();
  for (size_t i = 0; i < pod.files.size(); ++i) {
    artifacts.push_back(
        {{"name", absl::StrCat("dagd-file-", i)},
         {"path", absl::StrCat(kubernetes::kBundleMountPath, "/", pod.files[i].path)},
         {"mode", pod.files[i].mode},
         {"raw", {{"data", pod.files[i].content}}}});
  }
  return json{{"inputs", {{"artifacts", std::move(artifacts)}}},
              {"container",
               {{"image", options.ansible_image},
                {"command", std::move(pod.command)},
                {"args", std::move(pod.args)},
                {"env", std::move(pod.env)},
                {"workingDir", kubernetes::kWorkDirPath}}},
              {"outputs", {{"parameters", OutputParameters(t, /*ansible=*/true)}}}};
}

absl::StatusOr<json> BuildNodeWorkflow(const AttemptSpec& spec,
                                       const WorkflowSpecOptions& options) {
  const engine::Template& t = spec.resolved;
  const std::string name = kubernetes::JobName(spec.external_name);
  json labels = {{"app.kubernetes.io/managed-by", "dagd"},
                 {"dagd.io/run", kubernetes::LabelValue(spec.run_id)},
                 {"dagd.io/node", kubernetes::Sha256Hex(spec.node_name).substr(0, 16)},
                 {"dagd.io/attempt", absl::StrCat(spec.attempt)}};
  json annotations = {{"dagd.io/run", spec.run_id},
                      {"dagd.io/node", spec.node_name},
                      {"dagd.io/attempt", absl::StrCat(spec.attempt)},
                      {"dagd.io/template", t.name}};

  json tmpl = {{"name", "main"}};
  PassThrough(t.kubernetes, std::begin(kTemplateFields), std::end(kTemplateFields), &tmpl);
  bool ansible = false;
  switch (t.type) {
    case engine::TemplateType::kContainer:
      if (t.container->image.empty()) {
        return absl::InvalidArgumentError(
            absl::StrCat(TemplateWhere(t), ": the argo runner needs an `image`"));
      }
      tmpl["container"] = ContainerBody(*t.container);
      break;
    case engine::TemplateType::kScript: {
      if (t.script->container.image.empty()) {
        return absl::InvalidArgumentError(
            absl::StrCat(TemplateWhere(t), ": the argo runner needs an `image`"));
      }
      json script = ContainerBody(t.script->container);
      script["source"] = t.script->source;
      tmpl["script"] = std::move(script);
      break;
    }
    case engine::TemplateType::kAnsible: {
      ansible = true;
      ASSIGN_OR_RETURN(json parts, AnsibleContainerTemplate(spec, options));
      tmpl.update(parts);
      break;
    }
    default:
      return absl::InvalidArgumentError(
          absl::StrCat(TemplateWhere(t), ": a ", engine::TemplateTypeName(t.type),
                       " template is not run by a runner; only container, script and ansible "
                       "templates are"));
  }
  if (!t.outputs.parameters.empty() && !ansible) {
    tmpl["outputs"] = {{"parameters", OutputParameters(t, false)}};
  }
  // Argo has both, with dagd's meaning (IntOrString is a string in its schema).
  if (!t.timeout.empty()) tmpl["timeout"] = t.timeout;
  if (t.active_deadline_seconds) {
    tmpl["activeDeadlineSeconds"] = absl::StrCat(*t.active_deadline_seconds);
  }

  json workflow_spec = json::object();
  PassThrough(spec.workflow_kubernetes, std::begin(kSpecFields), std::end(kSpecFields),
              &workflow_spec);
  workflow_spec["entrypoint"] = "main";
  workflow_spec["templates"] = json::array({std::move(tmpl)});
  workflow_spec["ttlStrategy"] = {{"secondsAfterCompletion", options.seconds_after_completion}};
  return json{{"apiVersion", "argoproj.io/v1alpha1"},
              {"kind", "Workflow"},
              {"metadata",
               {{"name", name},
                {"namespace", options.namespace_name},
                {"labels", std::move(labels)},
                {"annotations", std::move(annotations)}}},
              {"spec", std::move(workflow_spec)}};
}

}  // namespace dagd::runners::argo
