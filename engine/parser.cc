#include "engine/parser.h"

#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/parser.h>
#include <yaml-cpp/yaml.h>

#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/types/span.h"
#include "engine/internal/diagnostics.h"
#include "engine/status_macros.h"
#include "engine/yaml_json.h"

namespace dagd::engine {
namespace {

using Fields = absl::Span<const absl::string_view>;

// The field names of each object: Argo's, from ../shared/schemas/argo-workflow.schema.json
// (io.argoproj.workflow.v1alpha1.* and io.k8s.api.core.v1.Container), plus dagd's additions,
// which are marked. A key outside its object's list is an "unknown field" error.
constexpr absl::string_view kWorkflowFields[] = {"apiVersion", "kind", "metadata", "spec",
                                                 "status"};
constexpr absl::string_view kConfigMapFields[] = {"apiVersion", "data", "kind", "metadata"};
constexpr absl::string_view kMetadataFields[] = {"annotations",
                                                 "creationTimestamp",
                                                 "deletionGracePeriodSeconds",
                                                 "deletionTimestamp",
                                                 "finalizers",
                                                 "generateName",
                                                 "generation",
                                                 "labels",
                                                 "managedFields",
                                                 "name",
                                                 "namespace",
                                                 "ownerReferences",
                                                 "resourceVersion",
                                                 "selfLink",
                                                 "uid"};
constexpr absl::string_view kSpecFields[] = {
    "activeDeadlineSeconds",
    "affinity",
    "archiveLogs",
    "arguments",
    "artifactGC",
    "artifactRepositoryRef",
    "automountServiceAccountToken",
    "dnsConfig",
    "dnsPolicy",
    "entrypoint",
    "executor",
    "executorPlugins",
    "hooks",
    "hostAliases",
    "hostNetwork",
    "imagePullSecrets",
    "metrics",
    "nodeSelector",
    "onExit",
    "parallelism",
    "podDisruptionBudget",
    "podGC",
    "podMetadata",
    "podPriorityClassName",
    "podResources",
    "podSpecPatch",
    "priority",
    "resourceClaims",
    "retryStrategy",
    "schedulerName",
    "securityContext",
    "serviceAccountName",
    "shutdown",
    "suspend",
    "synchronization",
    "templateDefaults",
    "templates",
    "tolerations",
    "ttlStrategy",
    "volumeClaimGC",
    "volumeClaimTemplates",
    "volumes",
    "workflowMetadata",
    "workflowTemplateRef",
    "runner",  // dagd
};
constexpr absl::string_view kTemplateFields[] = {
    "activeDeadlineSeconds",
    "affinity",
    "annotations",
    "archiveLocation",
    "automountServiceAccountToken",
    "container",
    "containerSet",
    "daemon",
    "dag",
    "data",
    "executor",
    "failFast",
    "hostAliases",
    "http",
    "initContainers",
    "inputs",
    "memoize",
    "metadata",
    "metrics",
    "name",
    "nodeSelector",
    "outputs",
    "parallelism",
    "pendingTimeout",
    "plugin",
    "podResources",
    "podSpecPatch",
    "priorityClassName",
    "resource",
    "resourceClaims",
    "retryStrategy",
    "schedulerName",
    "script",
    "securityContext",
    "serviceAccountName",
    "sidecars",
    "steps",
    "suspend",
    "synchronization",
    "timeout",
    "tolerations",
    "volumes",
    "runner",
    "ansible",  // dagd
};
// The keys of a template that give its type; a template has exactly one.
constexpr absl::string_view kTemplateTypeFields[] = {
    "container", "script", "ansible", "dag",          "steps", "suspend",
    "resource",  "http",   "plugin",  "containerSet", "data"};
constexpr absl::string_view kDagFields[] = {"failFast", "target", "tasks"};
constexpr absl::string_view kTaskFields[] = {
    "arguments", "continueOn", "dependencies", "depends", "hooks",     "inline",    "name",
    "onExit",    "template",   "templateRef",  "when",    "withItems", "withParam", "withSequence"};
constexpr absl::string_view kStepFields[] = {
    "arguments", "continueOn",  "hooks", "inline",    "name",      "onExit",
    "template",  "templateRef", "when",  "withItems", "withParam", "withSequence"};
constexpr absl::string_view kHookFields[] = {"arguments", "expression", "template", "templateRef"};
constexpr absl::string_view kTemplateRefFields[] = {"clusterScope", "name", "template"};
constexpr absl::string_view kSynchronizationFields[] = {"mutex", "mutexes", "semaphore",
                                                        "semaphores"};
constexpr absl::string_view kMutexFields[] = {"database", "name", "namespace"};
constexpr absl::string_view kSemaphoreFields[] = {"configMapKeyRef", "database", "namespace"};
constexpr absl::string_view kDatabaseSemaphoreFields[] = {"key"};
constexpr absl::string_view kConfigMapKeyFields[] = {"key", "name", "optional"};
constexpr absl::string_view kWorkflowTemplateRefFields[] = {"clusterScope", "name"};
constexpr absl::string_view kSequenceFields[] = {"count", "end", "format", "start"};
constexpr absl::string_view kArgumentsFields[] = {"artifacts", "parameters"};
constexpr absl::string_view kOutputsFields[] = {"artifacts", "exitCode", "parameters", "result"};
constexpr absl::string_view kArtifactFields[] = {
    "archive",     "archiveLogs", "artifactGC",     "artifactory", "azure",
    "deleted",     "from",        "fromExpression", "gcs",         "git",
    "globalName",  "hdfs",        "http",           "mode",        "name",
    "optional",    "oss",         "path",           "plugin",      "raw",
    "recurseMode", "s3",          "subPath"};
constexpr absl::string_view kArchiveFields[] = {"none", "tar", "zip"};
constexpr absl::string_view kMemoizeFields[] = {"cache", "key", "maxAge"};
constexpr absl::string_view kMemoizeCacheFields[] = {"configMap"};
constexpr absl::string_view kConfigMapRefFields[] = {"key", "name"};
constexpr absl::string_view kRawFields[] = {"data"};
constexpr absl::string_view kParameterFields[] = {
    "default", "description", "enum", "globalName", "name", "value", "valueFrom"};
constexpr absl::string_view kValueFromFields[] = {
    "configMapKeyRef", "default",   "event", "expression", "jqFilter",
    "jsonPath",        "parameter", "path",  "supplied",
    "stats",  // dagd
};
constexpr absl::string_view kRetryStrategyFields[] = {"affinity", "backoff", "expression", "limit",
                                                      "retryPolicy"};
constexpr absl::string_view kBackoffFields[] = {"cap", "duration", "factor", "maxDuration"};
constexpr absl::string_view kContinueOnFields[] = {"error", "failed"};
constexpr absl::string_view kContainerFields[] = {"args",
                                                  "command",
                                                  "env",
                                                  "envFrom",
                                                  "image",
                                                  "imagePullPolicy",
                                                  "lifecycle",
                                                  "livenessProbe",
                                                  "name",
                                                  "ports",
                                                  "readinessProbe",
                                                  "resizePolicy",
                                                  "resources",
                                                  "restartPolicy",
                                                  "restartPolicyRules",
                                                  "securityContext",
                                                  "startupProbe",
                                                  "stdin",
                                                  "stdinOnce",
                                                  "terminationMessagePath",
                                                  "terminationMessagePolicy",
                                                  "tty",
                                                  "volumeDevices",
                                                  "volumeMounts",
                                                  "workingDir"};
constexpr absl::string_view kScriptFields[] = {"args",
                                               "command",
                                               "env",
                                               "envFrom",
                                               "image",
                                               "imagePullPolicy",
                                               "lifecycle",
                                               "livenessProbe",
                                               "name",
                                               "ports",
                                               "readinessProbe",
                                               "resizePolicy",
                                               "resources",
                                               "restartPolicy",
                                               "restartPolicyRules",
                                               "securityContext",
                                               "source",
                                               "startupProbe",
                                               "stdin",
                                               "stdinOnce",
                                               "terminationMessagePath",
                                               "terminationMessagePolicy",
                                               "tty",
                                               "volumeDevices",
                                               "volumeMounts",
                                               "workingDir"};
constexpr absl::string_view kEnvVarFields[] = {"name", "value", "valueFrom"};
constexpr absl::string_view kSuspendFields[] = {"duration"};
// dagd's `ansible:` template type and its `env` entries.
constexpr absl::string_view kAnsibleFields[] = {"playbook",
                                                "source",
                                                "inventory",
                                                "extraVars",
                                                "limit",
                                                "env",
                                                "check",
                                                "diff",
                                                "tags",
                                                "skipTags",
                                                "forks",
                                                "verbosity",
                                                "become",
                                                "becomeUser",
                                                "hostKeyChecking",
                                                "vaultPasswordRef",
                                                "privateKeyRef",
                                                "becomePasswordRef",
                                                "envFromRef"};
constexpr absl::string_view kAnsibleEnvFields[] = {"name", "value"};

constexpr absl::string_view kRetryPolicies[] = {"Always", "OnFailure", "OnError",
                                                "OnTransientError"};

bool Contains(Fields fields, absl::string_view key) {
  for (absl::string_view field : fields) {
    if (field == key) return true;
  }
  return false;
}

std::vector<std::string> ToStrings(Fields fields) {
  return std::vector<std::string>(fields.begin(), fields.end());
}

nlohmann::json ToJson(const YAML::Node& node) { return YamlNodeToJson(node); }

bool IsNullValue(const YAML::Node& node) {
  return !node.IsDefined() || node.IsNull() ||
         (node.IsScalar() && node.Tag() == "?" && PlainScalarToJson(node.Scalar()).is_null());
}

// Stores `value` under `key` of the bag `*bag` (making it an object) unless it is null, so that
// bags stay null when a workflow uses nothing dagd keeps verbatim.
void Keep(nlohmann::json* bag, const std::string& key, nlohmann::json value) {
  if (!value.is_null()) (*bag)[key] = std::move(value);
}

using FieldVisitor = absl::FunctionRef<absl::Status(const std::string& key, const YAML::Node& value,
                                                    const std::string& path)>;
using ElementVisitor =
    absl::FunctionRef<absl::Status(const YAML::Node& element, const std::string& path)>;

// One parse of one document. Builds `*workflow` and records where each field was written.
class Parser {
 public:
  Parser(absl::string_view file_name, Workflow* workflow) : file_(file_name), wf_(workflow) {}

  absl::Status ParseDocument(const YAML::Node& root);

 private:
  SourceLocation Where(const YAML::Node& node) const {
    const YAML::Mark mark = node.Mark();
    if (mark.is_null()) return SourceLocation{file_, 0, 0};
    return SourceLocation{file_, mark.line + 1, mark.column + 1};
  }

  absl::Status Fail(const YAML::Node& at, absl::string_view path, absl::string_view what,
                    absl::string_view fix) const {
    return internal::WorkflowError(Where(at), path, what, fix);
  }

  // Checks that `node` is a mapping whose keys are all in `known` and unique, records each
  // key's location, then calls `visit` for each field in the order written.
  absl::Status ForEachField(const YAML::Node& node, const std::string& path, Fields known,
                            FieldVisitor visit);
  // Checks that `node` is a list and calls `visit` for each element.
  absl::Status ForEachElement(const YAML::Node& node, const std::string& path,
                              ElementVisitor visit);

  absl::StatusOr<std::string> String(const YAML::Node& node, const std::string& path) const;
  absl::StatusOr<std::vector<std::string>> StringList(const YAML::Node& node,
                                                      const std::string& path);
  absl::StatusOr<int64_t> Integer(const YAML::Node& node, const std::string& path) const;
  absl::StatusOr<bool> Bool(const YAML::Node& node, const std::string& path) const;
  absl::Status ParseMemoize(const YAML::Node& node, const std::string& path, Memoize* memoize);
  absl::Status ParseConfigMap(const YAML::Node& root);
  absl::Status ParseSynchronization(const YAML::Node& node, const std::string& path,
                                    Synchronization* sync);
  // `templateRef` (known: kTemplateRefFields) or `spec.workflowTemplateRef`.
  absl::Status ParseTemplateRef(const YAML::Node& node, const std::string& path, Fields known,
                                std::optional<TemplateRef>* ref);
  absl::StatusOr<double> Number(const YAML::Node& node, const std::string& path) const;
  // A parameter value: a scalar's text as written, a map or list as JSON text, null as unset.
  absl::StatusOr<std::optional<std::string>> ValueText(const YAML::Node& node,
                                                       const std::string& path) const;

  absl::Status ParseMetadata(const YAML::Node& node, const std::string& path);
  absl::Status ParseSpec(const YAML::Node& node, const std::string& path);
  absl::Status ParseTemplate(const YAML::Node& node, const std::string& path, Template* tmpl);
  absl::Status ParseDag(const YAML::Node& node, const std::string& path, DagTemplate* dag);
  // A dag task (`known` = kTaskFields) or a step (kStepFields).
  absl::Status ParseTask(const YAML::Node& node, const std::string& path, Fields known,
                         DagTask* task);
  absl::Status ParseSteps(const YAML::Node& node, const std::string& path, StepsTemplate* steps);
  absl::Status ParseSequence(const YAML::Node& node, const std::string& path, Sequence* sequence);
  // `onExit: TEMPLATE` or `hooks:` of the spec or a task: the `exit` hook into `*exit`, the
  // others into `*hooks`.
  absl::Status ParseHooks(const std::string& key, const YAML::Node& value, const std::string& path,
                          std::optional<LifecycleHook>* exit, std::vector<LifecycleHook>* hooks);
  absl::Status ParseParameters(const YAML::Node& node, const std::string& path,
                               std::vector<Parameter>* parameters);
  absl::Status ParseParameter(const YAML::Node& node, const std::string& path, Parameter* param);
  absl::Status ParseValueFrom(const YAML::Node& node, const std::string& path, ValueFrom* from,
                              nlohmann::json* unsupported);
  // `arguments` and `inputs` (same fields).
  absl::Status ParseParameterHolder(const YAML::Node& node, const std::string& path,
                                    std::vector<Parameter>* parameters,
                                    std::vector<Artifact>* artifacts);
  absl::Status ParseArtifact(const YAML::Node& node, const std::string& path, Artifact* artifact);
  absl::Status ParseOutputs(const YAML::Node& node, const std::string& path, Outputs* outputs,
                            nlohmann::json* extras);
  absl::Status ParseRetryStrategy(const YAML::Node& node, const std::string& path,
                                  RetryStrategy* retry, nlohmann::json* extras);
  absl::Status ParseBackoff(const YAML::Node& node, const std::string& path, Backoff* backoff,
                            nlohmann::json* extras);
  absl::Status ParseContinueOn(const YAML::Node& node, const std::string& path,
                               ContinueOn* continue_on);
  absl::Status ParseContainer(const YAML::Node& node, const std::string& path, Fields known,
                              ContainerSpec* container, std::string* source);
  absl::Status ParseAnsible(const YAML::Node& node, const std::string& path, AnsibleSpec* ansible);

  std::string file_;
  Workflow* wf_;
};

absl::Status Parser::ForEachField(const YAML::Node& node, const std::string& path, Fields known,
                                  FieldVisitor visit) {
  if (!node.IsMap()) {
    return Fail(node, path, "must be a mapping of fields", "write it as `key: value` lines");
  }
  std::vector<YAML::Node> seen;  // yaml-cpp keeps duplicate keys; the last would silently win
  for (const auto& entry : node) {
    const YAML::Node& key_node = entry.first;
    const std::string key = key_node.Scalar();
    const std::string field_path = path.empty() ? key : absl::StrCat(path, ".", key);
    if (!Contains(known, key)) {
      return Fail(key_node, field_path, "unknown field",
                  internal::SuggestFix(key, ToStrings(known), "known fields"));
    }
    for (const YAML::Node& previous : seen) {
      if (previous.Scalar() == key) {
        return Fail(key_node, field_path,
                    absl::StrCat("duplicate field, first set at line ", Where(previous).line),
                    "write each field once");
      }
    }
    seen.push_back(key_node);
    wf_->field_locations[field_path] = Where(key_node);
    RETURN_IF_ERROR(visit(key, entry.second, field_path));
  }
  return absl::OkStatus();
}

absl::Status Parser::ForEachElement(const YAML::Node& node, const std::string& path,
                                    ElementVisitor visit) {
  if (!node.IsSequence()) return Fail(node, path, "must be a list", "write one `- ` per element");
  for (size_t i = 0; i < node.size(); ++i) {
    const std::string element_path = absl::StrCat(path, "[", i, "]");
    wf_->field_locations[element_path] = Where(node[i]);
    RETURN_IF_ERROR(visit(node[i], element_path));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> Parser::String(const YAML::Node& node, const std::string& path) const {
  if (IsNullValue(node)) return std::string();
  if (!node.IsScalar()) return Fail(node, path, "must be a string", "quote the value");
  return node.Scalar();
}

absl::StatusOr<std::vector<std::string>> Parser::StringList(const YAML::Node& node,
                                                            const std::string& path) {
  std::vector<std::string> list;
  RETURN_IF_ERROR(
      ForEachElement(node, path, [&](const YAML::Node& element, const std::string& element_path) {
        ASSIGN_OR_RETURN(std::string text, String(element, element_path));
        list.push_back(std::move(text));
        return absl::OkStatus();
      }));
  return list;
}

absl::StatusOr<int64_t> Parser::Integer(const YAML::Node& node, const std::string& path) const {
  int64_t value;
  if (!node.IsScalar() || !absl::SimpleAtoi(node.Scalar(), &value)) {
    return Fail(node, path, "must be a whole number", "write digits only, e.g. 10");
  }
  return value;
}

absl::StatusOr<bool> Parser::Bool(const YAML::Node& node, const std::string& path) const {
  if (node.IsScalar()) {
    const nlohmann::json value = PlainScalarToJson(node.Scalar());
    if (value.is_boolean()) return value.get<bool>();
  }
  return Fail(node, path, "must be true or false", "");
}

absl::StatusOr<double> Parser::Number(const YAML::Node& node, const std::string& path) const {
  double value;
  if (!node.IsScalar() || !absl::SimpleAtod(node.Scalar(), &value)) {
    return Fail(node, path, "must be a number", "e.g. 2 or \"1.5\"");
  }
  return value;
}

absl::StatusOr<std::optional<std::string>> Parser::ValueText(const YAML::Node& node,
                                                             const std::string& path) const {
  if (IsNullValue(node)) return std::optional<std::string>();
  if (node.IsScalar()) return std::optional<std::string>(node.Scalar());
  // Invalid UTF-8 replaced by U+FFFD, as Go's encoding/json does (dump would throw).
  return std::optional<std::string>(
      ToJson(node).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
}

absl::Status Parser::ParseDocument(const YAML::Node& root) {
  if (!root.IsMap()) {
    return Fail(root, "(document)", "a workflow must be a mapping",
                "start with `apiVersion: argoproj.io/v1alpha1` and `kind: Workflow`");
  }
  // apiVersion and kind first, whatever their order: with the wrong kind, other errors mislead.
  const YAML::Node api_version = root["apiVersion"];
  if (!api_version.IsDefined()) {
    return Fail(root, "apiVersion", "missing", "add `apiVersion: argoproj.io/v1alpha1`");
  }
  if (api_version.IsScalar() && api_version.Scalar() == "v1" && root["kind"].IsScalar() &&
      root["kind"].Scalar() == "ConfigMap") {
    return ParseConfigMap(root);
  }
  if (!api_version.IsScalar() || api_version.Scalar() != "argoproj.io/v1alpha1") {
    return Fail(api_version, "apiVersion",
                absl::StrCat("unsupported apiVersion '",
                             api_version.IsScalar() ? api_version.Scalar() : "", "'"),
                "dagd reads argoproj.io/v1alpha1 (and ConfigMaps of apiVersion v1)");
  }
  const YAML::Node kind = root["kind"];
  if (!kind.IsDefined()) return Fail(root, "kind", "missing", "add `kind: Workflow`");
  const std::string kind_text = kind.IsScalar() ? kind.Scalar() : "";
  if (kind_text == "Workflow") {
    wf_->kind = WorkflowKind::kWorkflow;
  } else if (kind_text == "WorkflowTemplate") {
    wf_->kind = WorkflowKind::kWorkflowTemplate;
  } else if (kind_text == "ClusterWorkflowTemplate") {
    wf_->kind = WorkflowKind::kClusterWorkflowTemplate;
  } else {
    return Fail(kind, "kind", absl::StrCat("unsupported kind '", kind_text, "'"),
                "dagd reads kind Workflow, WorkflowTemplate or ClusterWorkflowTemplate");
  }
  if (!root["spec"].IsDefined()) {
    return Fail(root, "spec", "missing", "add a `spec:` with entrypoint and templates");
  }
  return ForEachField(root, "", kWorkflowFields,
                      [&](const std::string& key, const YAML::Node& value,
                          const std::string& path) -> absl::Status {
                        if (key == "metadata") return ParseMetadata(value, path);
                        if (key == "spec") return ParseSpec(value, path);
                        // apiVersion and kind are checked above; a status is the server's own
                        // record and means nothing in a submission.
                        return absl::OkStatus();
                      });
}

absl::Status Parser::ParseConfigMap(const YAML::Node& root) {
  wf_->kind = WorkflowKind::kConfigMap;
  return ForEachField(
      root, "", kConfigMapFields,
      [&](const std::string& key, const YAML::Node& value,
          const std::string& path) -> absl::Status {
        if (key == "metadata") return ParseMetadata(value, path);
        if (key != "data") return absl::OkStatus();
        if (IsNullValue(value)) return absl::OkStatus();
        if (!value.IsMap()) {
          return Fail(value, path, "must be a mapping of keys to strings", "write `key: \"3\"`");
        }
        for (const auto& entry : value) {
          const std::string data_path = absl::StrCat(path, ".", entry.first.Scalar());
          if (!entry.second.IsScalar()) {
            return Fail(entry.second, data_path, "must be a string", "quote the value");
          }
          wf_->config_data[entry.first.Scalar()] = entry.second.Scalar();
        }
        return absl::OkStatus();
      });
}

absl::Status Parser::ParseMetadata(const YAML::Node& node, const std::string& path) {
  return ForEachField(
      node, path, kMetadataFields,
      [&](const std::string& key, const YAML::Node& value,
          const std::string& field_path) -> absl::Status {
        if (key == "name") {
          ASSIGN_OR_RETURN(wf_->name, String(value, field_path));
        } else if (key == "generateName") {
          ASSIGN_OR_RETURN(wf_->generate_name, String(value, field_path));
        } else if (key == "namespace") {
          ASSIGN_OR_RETURN(wf_->namespace_name, String(value, field_path));
        } else if (key == "labels") {
          if (!value.IsMap()) {
            return Fail(value, field_path, "must be a mapping of label names to values", "");
          }
          for (const auto& label : value) {
            ASSIGN_OR_RETURN(
                wf_->labels[label.first.Scalar()],
                String(label.second, absl::StrCat(field_path, ".", label.first.Scalar())));
          }
        }
        // Annotations and server-set fields (uid, resourceVersion, …) do not affect a run.
        return absl::OkStatus();
      });
}

absl::Status Parser::ParseSpec(const YAML::Node& node, const std::string& path) {
  return ForEachField(
      node, path, kSpecFields,
      [&](const std::string& key, const YAML::Node& value,
          const std::string& field_path) -> absl::Status {
        if (key == "entrypoint") {
          ASSIGN_OR_RETURN(wf_->entrypoint, String(value, field_path));
        } else if (key == "arguments") {
          return ParseParameterHolder(value, field_path, &wf_->arguments.parameters,
                                      &wf_->arguments.artifacts);
        } else if (key == "templates") {
          return ForEachElement(
              value, field_path, [&](const YAML::Node& element, const std::string& element_path) {
                wf_->templates.emplace_back();
                return ParseTemplate(element, element_path, &wf_->templates.back());
              });
        } else if (key == "runner") {
          ASSIGN_OR_RETURN(wf_->runner, String(value, field_path));
        } else if (key == "parallelism") {
          ASSIGN_OR_RETURN(wf_->parallelism, Integer(value, field_path));
        } else if (key == "activeDeadlineSeconds") {
          ASSIGN_OR_RETURN(wf_->active_deadline_seconds, Integer(value, field_path));
        } else if (key == "onExit" || key == "hooks") {
          return ParseHooks(key, value, field_path, &wf_->exit_hook, &wf_->hooks);
        } else if (key == "workflowTemplateRef") {
          return ParseTemplateRef(value, field_path, kWorkflowTemplateRefFields,
                                  &wf_->workflow_template_ref);
        } else if (key == "synchronization") {
          return ParseSynchronization(value, field_path, &wf_->synchronization.emplace());
        } else {
          // Kubernetes-only fields, and Argo features a later issue implements.
          Keep(&wf_->kubernetes, key, ToJson(value));
        }
        return absl::OkStatus();
      });
}

absl::Status Parser::ParseTemplate(const YAML::Node& node, const std::string& path,
                                   Template* tmpl) {
  tmpl->location = Where(node);
  std::vector<std::pair<std::string, YAML::Node>> type_keys;  // every type key, with its node
  RETURN_IF_ERROR(ForEachField(
      node, path, kTemplateFields,
      [&](const std::string& key, const YAML::Node& value,
          const std::string& field_path) -> absl::Status {
        if (key == "name") {
          ASSIGN_OR_RETURN(tmpl->name, String(value, field_path));
        } else if (key == "inputs") {
          return ParseParameterHolder(value, field_path, &tmpl->inputs.parameters,
                                      &tmpl->inputs.artifacts);
        } else if (key == "outputs") {
          nlohmann::json extras;
          RETURN_IF_ERROR(ParseOutputs(value, field_path, &tmpl->outputs, &extras));
          Keep(&tmpl->kubernetes, key, std::move(extras));
        } else if (key == "retryStrategy") {
          nlohmann::json extras;
          RETURN_IF_ERROR(
              ParseRetryStrategy(value, field_path, &tmpl->retry_strategy.emplace(), &extras));
          Keep(&tmpl->kubernetes, key, std::move(extras));
        } else if (key == "runner") {
          ASSIGN_OR_RETURN(tmpl->runner, String(value, field_path));
        } else if (key == "timeout") {
          ASSIGN_OR_RETURN(tmpl->timeout, String(value, field_path));
        } else if (key == "activeDeadlineSeconds") {
          ASSIGN_OR_RETURN(tmpl->active_deadline_seconds, Integer(value, field_path));
        } else if (key == "parallelism") {
          ASSIGN_OR_RETURN(tmpl->parallelism, Integer(value, field_path));
        } else if (key == "synchronization") {
          return ParseSynchronization(value, field_path, &tmpl->synchronization.emplace());
        } else if (key == "memoize") {
          return ParseMemoize(value, field_path, &tmpl->memoize.emplace());
        } else if (Contains(kTemplateTypeFields, key)) {
          type_keys.emplace_back(key, value);
          if (key == "dag") {
            tmpl->type = TemplateType::kDag;
            return ParseDag(value, field_path, &tmpl->dag.emplace());
          }
          if (key == "container") {
            tmpl->type = TemplateType::kContainer;
            return ParseContainer(value, field_path, kContainerFields, &tmpl->container.emplace(),
                                  nullptr);
          }
          if (key == "script") {
            tmpl->type = TemplateType::kScript;
            ScriptSpec& script = tmpl->script.emplace();
            return ParseContainer(value, field_path, kScriptFields, &script.container,
                                  &script.source);
          }
          if (key == "ansible") {
            tmpl->type = TemplateType::kAnsible;
            return ParseAnsible(value, field_path, &tmpl->ansible.emplace());
          }
          if (key == "steps") {
            tmpl->type = TemplateType::kSteps;
            return ParseSteps(value, field_path, &tmpl->steps.emplace());
          }
          if (key == "suspend") {
            tmpl->type = TemplateType::kSuspend;
            SuspendSpec& suspend = tmpl->suspend.emplace();
            if (IsNullValue(value)) return absl::OkStatus();
            return ForEachField(value, field_path, kSuspendFields,
                                [&](const std::string&, const YAML::Node& duration,
                                    const std::string& duration_path) -> absl::Status {
                                  ASSIGN_OR_RETURN(suspend.duration,
                                                   String(duration, duration_path));
                                  return absl::OkStatus();
                                });
          }
          // Types whose body the model does not hold: kept verbatim.
          tmpl->type = TemplateType::kUnsupported;
          tmpl->kubernetes[key] = ToJson(value);
        } else {
          Keep(&tmpl->kubernetes, key, ToJson(value));
        }
        return absl::OkStatus();
      }));
  if (tmpl->name.empty()) {
    return Fail(node, absl::StrCat(path, ".name"), "missing", "every template needs a name");
  }
  const std::string kinds = absl::StrJoin(kTemplateTypeFields, ", ");
  if (type_keys.empty()) {
    return Fail(node, path, absl::StrCat("template '", tmpl->name, "' has no type"),
                absl::StrCat("give it exactly one of: ", kinds));
  }
  if (type_keys.size() > 1) {
    return Fail(type_keys[1].second, absl::StrCat(path, ".", type_keys[1].first),
                absl::StrCat("template '", tmpl->name, "' has both '", type_keys[0].first,
                             "' and '", type_keys[1].first, "'"),
                absl::StrCat("keep exactly one of: ", kinds));
  }
  return absl::OkStatus();
}

absl::Status Parser::ParseDag(const YAML::Node& node, const std::string& path, DagTemplate* dag) {
  bool has_tasks = false;
  RETURN_IF_ERROR(ForEachField(
      node, path, kDagFields,
      [&](const std::string& key, const YAML::Node& value,
          const std::string& field_path) -> absl::Status {
        if (key == "tasks") {
          has_tasks = true;
          return ForEachElement(
              value, field_path, [&](const YAML::Node& element, const std::string& element_path) {
                dag->tasks.emplace_back();
                return ParseTask(element, element_path, kTaskFields, &dag->tasks.back());
              });
        }
        if (key == "target") {
          ASSIGN_OR_RETURN(dag->target, String(value, field_path));
        } else {  // failFast
          ASSIGN_OR_RETURN(dag->fail_fast, Bool(value, field_path));
        }
        return absl::OkStatus();
      }));
  if (!has_tasks) return Fail(node, path + ".tasks", "missing", "a dag needs a list of tasks");
  return absl::OkStatus();
}

absl::Status Parser::ParseTask(const YAML::Node& node, const std::string& path, Fields known,
                               DagTask* task) {
  task->location = Where(node);
  RETURN_IF_ERROR(ForEachField(
      node, path, known,
      [&](const std::string& key, const YAML::Node& value,
          const std::string& field_path) -> absl::Status {
        if (key == "name") {
          ASSIGN_OR_RETURN(task->name, String(value, field_path));
        } else if (key == "template") {
          ASSIGN_OR_RETURN(task->template_name, String(value, field_path));
        } else if (key == "dependencies") {
          ASSIGN_OR_RETURN(task->dependencies, StringList(value, field_path));
        } else if (key == "depends") {
          ASSIGN_OR_RETURN(task->depends, String(value, field_path));
        } else if (key == "arguments") {
          return ParseParameterHolder(value, field_path, &task->arguments.parameters,
                                      &task->arguments.artifacts);
        } else if (key == "withItems") {
          if (!value.IsSequence()) {
            return Fail(value, field_path, "must be a list", "write one `- ` per item");
          }
          for (const YAML::Node& item : value) task->with_items.push_back(ToJson(item));
        } else if (key == "withParam") {
          ASSIGN_OR_RETURN(task->with_param, String(value, field_path));
        } else if (key == "withSequence") {
          return ParseSequence(value, field_path, &task->with_sequence.emplace());
        } else if (key == "when") {
          ASSIGN_OR_RETURN(task->when, String(value, field_path));
        } else if (key == "continueOn") {
          return ParseContinueOn(value, field_path, &task->continue_on);
        } else if (key == "inline") {
          auto inline_template = std::make_shared<Template>();
          inline_template->name = "inline";  // named when it is hoisted (HoistInlineTemplates)
          RETURN_IF_ERROR(ParseTemplate(value, field_path, inline_template.get()));
          task->inline_template = std::move(inline_template);
        } else if (key == "onExit" || key == "hooks") {
          return ParseHooks(key, value, field_path, &task->exit_hook, &task->hooks);
        } else if (key == "templateRef") {
          return ParseTemplateRef(value, field_path, kTemplateRefFields, &task->template_ref);
        }
        return absl::OkStatus();
      }));
  if (task->name.empty()) {
    return Fail(node, absl::StrCat(path, ".name"), "missing", "every task needs a name");
  }
  const int callees = (task->inline_template ? 1 : 0) + (task->template_name.empty() ? 0 : 1) +
                      (task->template_ref ? 1 : 0);
  if (callees > 1) {
    return Fail(node, path,
                absl::StrCat("'", task->name,
                             "' names more than one of `template`, `templateRef` "
                             "and `inline`"),
                "keep one: `template` names a template of this workflow, `templateRef` one of a "
                "WorkflowTemplate, `inline` is the template itself");
  }
  return absl::OkStatus();
}

absl::Status Parser::ParseSteps(const YAML::Node& node, const std::string& path,
                                StepsTemplate* steps) {
  return ForEachElement(node, path, [&](const YAML::Node& group, const std::string& group_path) {
    std::vector<DagTask>& steps_of_group = steps->groups.emplace_back();
    return ForEachElement(group, group_path,
                          [&](const YAML::Node& step, const std::string& step_path) {
                            steps_of_group.emplace_back();
                            return ParseTask(step, step_path, kStepFields, &steps_of_group.back());
                          });
  });
}

absl::Status Parser::ParseHooks(const std::string& key, const YAML::Node& value,
                                const std::string& path, std::optional<LifecycleHook>* exit,
                                std::vector<LifecycleHook>* hooks) {
  if (key == "onExit") {
    if (exit->has_value()) {
      return Fail(value, path, "a second exit hook (hooks.exit is one too)",
                  "keep either `onExit` or `hooks.exit`");
    }
    LifecycleHook& hook = exit->emplace();
    hook.name = "exit";
    hook.location = Where(value);
    ASSIGN_OR_RETURN(hook.template_name, String(value, path));
    return absl::OkStatus();
  }
  if (!value.IsMap()) {
    return Fail(value, path, "must be a mapping of hook names to hooks",
                "write `exit: {template: NAME}`, or `NAME: {expression: EXPR, template: NAME}`");
  }
  // Hook names are the user's: any key goes, each once.
  std::set<std::string> names;
  for (const auto& entry : value) {
    const std::string name = entry.first.Scalar();
    const std::string hook_path = absl::StrCat(path, ".", name);
    const YAML::Node& node = entry.second;
    if (!names.insert(name).second) {
      return Fail(entry.first, hook_path, "duplicate hook", "write each hook once");
    }
    wf_->field_locations[hook_path] = Where(entry.first);
    if (name == "exit" && exit->has_value()) {
      return Fail(node, hook_path, "a second exit hook (onExit is one too)",
                  "keep either `onExit` or `hooks.exit`");
    }
    LifecycleHook hook;
    hook.name = name;
    hook.location = Where(node);
    RETURN_IF_ERROR(ForEachField(
        node, hook_path, kHookFields,
        [&](const std::string& field, const YAML::Node& field_value,
            const std::string& field_path) -> absl::Status {
          if (field == "template") {
            ASSIGN_OR_RETURN(hook.template_name, String(field_value, field_path));
          } else if (field == "arguments") {
            return ParseParameterHolder(field_value, field_path, &hook.arguments.parameters,
                                        &hook.arguments.artifacts);
          } else if (field == "templateRef") {
            return ParseTemplateRef(field_value, field_path, kTemplateRefFields,
                                    &hook.template_ref);
          } else {  // expression
            ASSIGN_OR_RETURN(hook.expression, String(field_value, field_path));
          }
          return absl::OkStatus();
        }));
    if (hook.template_name.empty() && !hook.template_ref) {
      return Fail(entry.first, hook_path + ".template", "missing",
                  "name the template the hook runs (`template: NAME`)");
    }
    if (name != "exit" && hook.expression.empty()) {
      return Fail(entry.first, hook_path + ".expression", "missing",
                  "say when the hook runs, e.g. `expression: workflow.status == \"Running\"`; "
                  "a hook that runs when its owner ends is named `exit`");
    }
    if (name == "exit") {
      *exit = std::move(hook);
    } else {
      hooks->push_back(std::move(hook));
    }
  }
  return absl::OkStatus();
}

absl::Status Parser::ParseTemplateRef(const YAML::Node& node, const std::string& path, Fields known,
                                      std::optional<TemplateRef>* ref) {
  TemplateRef& parsed = ref->emplace();
  parsed.path = path;
  // Where the `templateRef:` key is, like every other field's error.
  auto key = wf_->field_locations.find(path);
  parsed.location = key != wf_->field_locations.end() ? key->second : Where(node);
  RETURN_IF_ERROR(ForEachField(node, path, known,
                               [&](const std::string& key, const YAML::Node& value,
                                   const std::string& field_path) -> absl::Status {
                                 if (key == "clusterScope") {
                                   ASSIGN_OR_RETURN(parsed.cluster_scope, Bool(value, field_path));
                                 } else if (key == "name") {
                                   ASSIGN_OR_RETURN(parsed.name, String(value, field_path));
                                 } else {
                                   ASSIGN_OR_RETURN(parsed.template_name,
                                                    String(value, field_path));
                                 }
                                 return absl::OkStatus();
                               }));
  if (parsed.name.empty()) {
    return Fail(node, path + ".name", "missing", "name the WorkflowTemplate");
  }
  if (Contains(known, "template") && parsed.template_name.empty()) {
    return Fail(node, path + ".template", "missing",
                "name the template within the WorkflowTemplate");
  }
  return absl::OkStatus();
}

absl::Status Parser::ParseMemoize(const YAML::Node& node, const std::string& path,
                                  Memoize* memoize) {
  memoize->location = Where(node);
  RETURN_IF_ERROR(ForEachField(
      node, path, kMemoizeFields,
      [&](const std::string& key, const YAML::Node& value,
          const std::string& field_path) -> absl::Status {
        if (key == "key") {
          ASSIGN_OR_RETURN(memoize->key, String(value, field_path));
        } else if (key == "maxAge") {
          ASSIGN_OR_RETURN(memoize->max_age, String(value, field_path));
        } else {  // cache
          return ForEachField(value, field_path, kMemoizeCacheFields,
                              [&](const std::string&, const YAML::Node& config_map,
                                  const std::string& config_map_path) -> absl::Status {
                                return ForEachField(
                                    config_map, config_map_path, kConfigMapRefFields,
                                    [&](const std::string& ref_key, const YAML::Node& ref_value,
                                        const std::string& ref_path) -> absl::Status {
                                      if (ref_key != "name") return absl::OkStatus();
                                      ASSIGN_OR_RETURN(memoize->cache, String(ref_value, ref_path));
                                      return absl::OkStatus();
                                    });
                              });
        }
        return absl::OkStatus();
      }));
  if (memoize->key.empty()) {
    return Fail(node, path + ".key", "missing",
                "give the key results are cached under, e.g. key: \"{{inputs.parameters.x}}\"");
  }
  if (memoize->cache.empty()) {
    return Fail(node, path + ".cache", "missing",
                "name the cache: `cache: {configMap: {name: my-cache}}`");
  }
  return absl::OkStatus();
}

absl::Status Parser::ParseSynchronization(const YAML::Node& node, const std::string& path,
                                          Synchronization* sync) {
  // One mutex or semaphore: its name into `names`, fields dagd does not act on kept.
  auto lock = [&](const YAML::Node& value, const std::string& lock_path, bool mutex,
                  const std::string& unsupported_key) -> absl::Status {
    std::string name;
    RETURN_IF_ERROR(ForEachField(
        value, lock_path, mutex ? Fields(kMutexFields) : Fields(kSemaphoreFields),
        [&](const std::string& key, const YAML::Node& field,
            const std::string& field_path) -> absl::Status {
          if (key == "name") {
            ASSIGN_OR_RETURN(name, String(field, field_path));
          } else if (key == "configMapKeyRef") {
            std::string map, map_key;
            RETURN_IF_ERROR(
                ForEachField(field, field_path, kConfigMapKeyFields,
                             [&](const std::string& ref_key, const YAML::Node& ref_value,
                                 const std::string& ref_path) -> absl::Status {
                               if (ref_key == "optional") return absl::OkStatus();
                               ASSIGN_OR_RETURN((ref_key == "name" ? map : map_key),
                                                String(ref_value, ref_path));
                               return absl::OkStatus();
                             }));
            if (map.empty() || map_key.empty()) {
              return Fail(field, field_path, "needs name and key",
                          "write `configMapKeyRef: {name: CONFIGMAP, key: KEY}`");
            }
            name = absl::StrCat(map, "/", map_key);
          } else if (key == "database" && mutex) {
            // Argo keeps the mutex in a database shared by its controllers; dagd is one
            // daemon, whose lock table serves every run: `database` changes nothing.
            ASSIGN_OR_RETURN(bool unused, Bool(field, field_path));
            (void)unused;
          } else if (key == "database") {
            std::string database_key;
            RETURN_IF_ERROR(ForEachField(field, field_path, kDatabaseSemaphoreFields,
                                         [&](const std::string&, const YAML::Node& ref_value,
                                             const std::string& ref_path) -> absl::Status {
                                           ASSIGN_OR_RETURN(database_key,
                                                            String(ref_value, ref_path));
                                           return absl::OkStatus();
                                         }));
            if (database_key.empty()) {
              return Fail(field, field_path + ".key", "missing", "write `database: {key: KEY}`");
            }
            // Sized by dagd's configuration (--semaphore database/KEY=N), where Argo reads the
            // limit from its database.
            name = absl::StrCat("database/", database_key);
          } else {  // namespace
            Keep(&sync->unsupported, absl::StrCat(unsupported_key, ".", key), ToJson(field));
          }
          return absl::OkStatus();
        }));
    if (name.empty() && !sync->unsupported.is_object()) {
      return Fail(value, lock_path,
                  mutex ? "a mutex needs a name"
                        : "a semaphore needs a "
                          "configMapKeyRef",
                  mutex ? "write `name: NAME`" : "write `configMapKeyRef: {name: CM, key: KEY}`");
    }
    if (!name.empty()) (mutex ? sync->mutexes : sync->semaphores).push_back(std::move(name));
    return absl::OkStatus();
  };
  return ForEachField(node, path, kSynchronizationFields,
                      [&](const std::string& key, const YAML::Node& value,
                          const std::string& field_path) -> absl::Status {
                        const bool mutex = key == "mutex" || key == "mutexes";
                        if (key == "mutex" || key == "semaphore") {
                          return lock(value, field_path, mutex, key);
                        }
                        return ForEachElement(
                            value, field_path,
                            [&](const YAML::Node& element, const std::string& element_path) {
                              return lock(element, element_path, mutex, key);
                            });
                      });
}

absl::Status Parser::ParseSequence(const YAML::Node& node, const std::string& path,
                                   Sequence* sequence) {
  RETURN_IF_ERROR(ForEachField(node, path, kSequenceFields,
                               [&](const std::string& key, const YAML::Node& value,
                                   const std::string& field_path) -> absl::Status {
                                 ASSIGN_OR_RETURN(std::string text, String(value, field_path));
                                 if (key == "count") sequence->count = std::move(text);
                                 if (key == "start") sequence->start = std::move(text);
                                 if (key == "end") sequence->end = std::move(text);
                                 if (key == "format") sequence->format = std::move(text);
                                 return absl::OkStatus();
                               }));
  if (sequence->count.empty() == sequence->end.empty()) {
    return Fail(node, path, "needs exactly one of count and end",
                "write `count: N` for N items, or `end: M` to count from start to M");
  }
  return absl::OkStatus();
}

absl::Status Parser::ParseParameterHolder(const YAML::Node& node, const std::string& path,
                                          std::vector<Parameter>* parameters,
                                          std::vector<Artifact>* artifacts) {
  return ForEachField(node, path, kArgumentsFields,
                      [&](const std::string& key, const YAML::Node& value,
                          const std::string& field_path) -> absl::Status {
                        if (key == "parameters")
                          return ParseParameters(value, field_path, parameters);
                        return ForEachElement(
                            value, field_path,  // artifacts
                            [&](const YAML::Node& element, const std::string& element_path) {
                              artifacts->emplace_back();
                              return ParseArtifact(element, element_path, &artifacts->back());
                            });
                      });
}

absl::Status Parser::ParseArtifact(const YAML::Node& node, const std::string& path,
                                   Artifact* artifact) {
  artifact->location = Where(node);
  RETURN_IF_ERROR(ForEachField(
      node, path, kArtifactFields,
      [&](const std::string& key, const YAML::Node& value,
          const std::string& field_path) -> absl::Status {
        if (key == "name") {
          ASSIGN_OR_RETURN(artifact->name, String(value, field_path));
        } else if (key == "path") {
          ASSIGN_OR_RETURN(artifact->path, String(value, field_path));
        } else if (key == "from") {
          ASSIGN_OR_RETURN(artifact->from, String(value, field_path));
        } else if (key == "fromExpression") {
          ASSIGN_OR_RETURN(artifact->from_expression, String(value, field_path));
        } else if (key == "subPath") {
          ASSIGN_OR_RETURN(artifact->sub_path, String(value, field_path));
        } else if (key == "globalName") {
          ASSIGN_OR_RETURN(artifact->global_name, String(value, field_path));
        } else if (key == "optional") {
          ASSIGN_OR_RETURN(artifact->optional, Bool(value, field_path));
        } else if (key == "raw") {
          return ForEachField(value, field_path, kRawFields,
                              [&](const std::string&, const YAML::Node& data,
                                  const std::string& data_path) -> absl::Status {
                                ASSIGN_OR_RETURN(artifact->raw, String(data, data_path));
                                return absl::OkStatus();
                              });
        } else if (key == "archive") {
          return ForEachField(value, field_path, kArchiveFields,
                              [&](const std::string& kind, const YAML::Node& settings,
                                  const std::string& kind_path) -> absl::Status {
                                // tar's compressionLevel only changes the size.
                                if (kind == "none") artifact->archive_none = true;
                                if (kind == "zip")
                                  Keep(&artifact->unsupported, "archive", ToJson(value));
                                return absl::OkStatus();
                              });
        } else if ((key == "s3" || key == "gcs" || key == "oss" || key == "azure") &&
                   value.IsMap() && value.size() == 1 &&
                   value[key == "azure" ? "blob" : "key"].IsDefined()) {
          // A key-only artifact: its place in the artifact repository, which is dagd's store.
          ASSIGN_OR_RETURN(artifact->key,
                           String(value[key == "azure" ? "blob" : "key"], field_path));
        } else {
          // Other repositories (and settings of a repository besides its key), `mode`,
          // `recurseMode`, `archiveLogs`, `artifactGC`, `deleted`.
          Keep(&artifact->unsupported, key, ToJson(value));
        }
        return absl::OkStatus();
      }));
  if (artifact->name.empty()) {
    return Fail(node, absl::StrCat(path, ".name"), "missing", "every artifact needs a name");
  }
  return absl::OkStatus();
}

absl::Status Parser::ParseOutputs(const YAML::Node& node, const std::string& path, Outputs* outputs,
                                  nlohmann::json* extras) {
  return ForEachField(
      node, path, kOutputsFields,
      [&](const std::string& key, const YAML::Node& value,
          const std::string& field_path) -> absl::Status {
        if (key == "parameters") {
          return ParseParameters(value, field_path, &outputs->parameters);
        }
        if (key == "artifacts") {
          return ForEachElement(
              value, field_path, [&](const YAML::Node& element, const std::string& element_path) {
                outputs->artifacts.emplace_back();
                return ParseArtifact(element, element_path, &outputs->artifacts.back());
              });
        }
        Keep(extras, key, ToJson(value));  // result, exitCode
        return absl::OkStatus();
      });
}

absl::Status Parser::ParseParameters(const YAML::Node& node, const std::string& path,
                                     std::vector<Parameter>* parameters) {
  return ForEachElement(node, path, [&](const YAML::Node& element, const std::string& el_path) {
    parameters->emplace_back();
    return ParseParameter(element, el_path, &parameters->back());
  });
}

absl::Status Parser::ParseParameter(const YAML::Node& node, const std::string& path,
                                    Parameter* param) {
  param->location = Where(node);
  RETURN_IF_ERROR(
      ForEachField(node, path, kParameterFields,
                   [&](const std::string& key, const YAML::Node& value,
                       const std::string& field_path) -> absl::Status {
                     if (key == "name") {
                       ASSIGN_OR_RETURN(param->name, String(value, field_path));
                     } else if (key == "value") {
                       ASSIGN_OR_RETURN(param->value, ValueText(value, field_path));
                     } else if (key == "default") {
                       ASSIGN_OR_RETURN(param->default_value, ValueText(value, field_path));
                     } else if (key == "description") {
                       ASSIGN_OR_RETURN(param->description, String(value, field_path));
                     } else if (key == "enum") {
                       ASSIGN_OR_RETURN(param->enum_values, StringList(value, field_path));
                     } else if (key == "valueFrom") {
                       nlohmann::json unsupported;
                       RETURN_IF_ERROR(ParseValueFrom(value, field_path,
                                                      &param->value_from.emplace(), &unsupported));
                       Keep(&param->unsupported, key, std::move(unsupported));
                     } else {  // globalName
                       ASSIGN_OR_RETURN(param->global_name, String(value, field_path));
                     }
                     return absl::OkStatus();
                   }));
  if (param->name.empty()) {
    return Fail(node, absl::StrCat(path, ".name"), "missing", "every parameter needs a name");
  }
  return absl::OkStatus();
}

absl::Status Parser::ParseValueFrom(const YAML::Node& node, const std::string& path,
                                    ValueFrom* from, nlohmann::json* unsupported) {
  return ForEachField(node, path, kValueFromFields,
                      [&](const std::string& key, const YAML::Node& value,
                          const std::string& field_path) -> absl::Status {
                        if (key == "path") {
                          ASSIGN_OR_RETURN(from->path, String(value, field_path));
                        } else if (key == "stats") {
                          ASSIGN_OR_RETURN(from->stats, String(value, field_path));
                        } else if (key == "expression") {
                          ASSIGN_OR_RETURN(from->expression, String(value, field_path));
                        } else if (key == "parameter") {
                          ASSIGN_OR_RETURN(from->parameter, String(value, field_path));
                        } else if (key == "default") {
                          ASSIGN_OR_RETURN(from->default_value, ValueText(value, field_path));
                        } else if (key == "supplied") {
                          from->supplied = true;  // `supplied: {}`: SuppliedValueFrom is empty
                        } else {
                          Keep(unsupported, key, ToJson(value));
                        }
                        return absl::OkStatus();
                      });
}

absl::Status Parser::ParseRetryStrategy(const YAML::Node& node, const std::string& path,
                                        RetryStrategy* retry, nlohmann::json* extras) {
  retry->location = Where(node);
  if (IsNullValue(node)) return absl::OkStatus();  // `retryStrategy: {}`-like: Argo's defaults
  return ForEachField(
      node, path, kRetryStrategyFields,
      [&](const std::string& key, const YAML::Node& value,
          const std::string& field_path) -> absl::Status {
        if (key == "limit") {
          ASSIGN_OR_RETURN(retry->limit, String(value, field_path));
        } else if (key == "retryPolicy") {
          ASSIGN_OR_RETURN(const std::string policy, String(value, field_path));
          bool found = false;
          for (RetryPolicy p : {RetryPolicy::kAlways, RetryPolicy::kOnFailure,
                                RetryPolicy::kOnError, RetryPolicy::kOnTransientError}) {
            if (policy == RetryPolicyName(p)) {
              retry->policy = p;
              found = true;
            }
          }
          if (!found) {
            return Fail(value, field_path, absl::StrCat("unknown retryPolicy '", policy, "'"),
                        absl::StrCat("use one of: ", absl::StrJoin(kRetryPolicies, ", ")));
          }
        } else if (key == "backoff") {
          nlohmann::json backoff_extras;
          RETURN_IF_ERROR(
              ParseBackoff(value, field_path, &retry->backoff.emplace(), &backoff_extras));
          Keep(extras, key, std::move(backoff_extras));
        } else if (key == "expression") {
          ASSIGN_OR_RETURN(retry->expression, String(value, field_path));
        } else {  // affinity
          Keep(extras, key, ToJson(value));
        }
        return absl::OkStatus();
      });
}

absl::Status Parser::ParseBackoff(const YAML::Node& node, const std::string& path, Backoff* backoff,
                                  nlohmann::json* extras) {
  return ForEachField(node, path, kBackoffFields,
                      [&](const std::string& key, const YAML::Node& value,
                          const std::string& field_path) -> absl::Status {
                        if (key == "duration") {
                          ASSIGN_OR_RETURN(backoff->duration, String(value, field_path));
                        } else if (key == "factor") {
                          ASSIGN_OR_RETURN(backoff->factor, Number(value, field_path));
                        } else if (key == "maxDuration") {
                          ASSIGN_OR_RETURN(backoff->max_duration, String(value, field_path));
                        } else {  // cap: deprecated in Argo
                          Keep(extras, key, ToJson(value));
                        }
                        return absl::OkStatus();
                      });
}

absl::Status Parser::ParseContinueOn(const YAML::Node& node, const std::string& path,
                                     ContinueOn* continue_on) {
  return ForEachField(node, path, kContinueOnFields,
                      [&](const std::string& key, const YAML::Node& value,
                          const std::string& field_path) -> absl::Status {
                        ASSIGN_OR_RETURN(const bool flag, Bool(value, field_path));
                        (key == "failed" ? continue_on->failed : continue_on->error) = flag;
                        return absl::OkStatus();
                      });
}

absl::Status Parser::ParseContainer(const YAML::Node& node, const std::string& path, Fields known,
                                    ContainerSpec* container, std::string* source) {
  return ForEachField(
      node, path, known,
      [&](const std::string& key, const YAML::Node& value,
          const std::string& field_path) -> absl::Status {
        if (key == "image") {
          ASSIGN_OR_RETURN(container->image, String(value, field_path));
        } else if (key == "command") {
          ASSIGN_OR_RETURN(container->command, StringList(value, field_path));
        } else if (key == "args") {
          ASSIGN_OR_RETURN(container->args, StringList(value, field_path));
        } else if (key == "workingDir") {
          ASSIGN_OR_RETURN(container->working_dir, String(value, field_path));
        } else if (key == "source") {  // only in kScriptFields
          ASSIGN_OR_RETURN(*source, String(value, field_path));
        } else if (key == "env") {
          bool from_elsewhere = false;
          RETURN_IF_ERROR(ForEachElement(
              value, field_path, [&](const YAML::Node& element, const std::string& el_path) {
                EnvVar var;
                bool has_value_from = false;
                RETURN_IF_ERROR(
                    ForEachField(element, el_path, kEnvVarFields,
                                 [&](const std::string& env_key, const YAML::Node& env_value,
                                     const std::string& env_path) -> absl::Status {
                                   if (env_key == "name") {
                                     ASSIGN_OR_RETURN(var.name, String(env_value, env_path));
                                   } else if (env_key == "value") {
                                     ASSIGN_OR_RETURN(var.value, String(env_value, env_path));
                                   } else {
                                     has_value_from = true;
                                   }
                                   return absl::OkStatus();
                                 }));
                // A variable read from a Secret or ConfigMap exists only on Kubernetes: it is
                // left out of `env` (the local runner would set it empty) and kept verbatim.
                if (has_value_from) {
                  from_elsewhere = true;
                } else {
                  container->env.push_back(std::move(var));
                }
                return absl::OkStatus();
              }));
          if (from_elsewhere) container->kubernetes[key] = ToJson(value);
        } else {
          Keep(&container->kubernetes, key, ToJson(value));
        }
        return absl::OkStatus();
      });
}

absl::Status Parser::ParseAnsible(const YAML::Node& node, const std::string& path,
                                  AnsibleSpec* ansible) {
  RETURN_IF_ERROR(ForEachField(
      node, path, kAnsibleFields,
      [&](const std::string& key, const YAML::Node& value,
          const std::string& field_path) -> absl::Status {
        if (key == "playbook") {
          ASSIGN_OR_RETURN(ansible->playbook, String(value, field_path));
        } else if (key == "source") {
          ASSIGN_OR_RETURN(ansible->source, String(value, field_path));
        } else if (key == "inventory") {
          ASSIGN_OR_RETURN(ansible->inventory, String(value, field_path));
        } else if (key == "limit") {
          ASSIGN_OR_RETURN(ansible->limit, String(value, field_path));
        } else if (key == "check") {
          ASSIGN_OR_RETURN(ansible->check, Bool(value, field_path));
        } else if (key == "diff") {
          ASSIGN_OR_RETURN(ansible->diff, Bool(value, field_path));
        } else if (key == "become") {
          ASSIGN_OR_RETURN(ansible->become, Bool(value, field_path));
        } else if (key == "hostKeyChecking") {
          ASSIGN_OR_RETURN(ansible->host_key_checking, Bool(value, field_path));
        } else if (key == "becomeUser") {
          ASSIGN_OR_RETURN(ansible->become_user, String(value, field_path));
        } else if (key == "vaultPasswordRef") {
          ASSIGN_OR_RETURN(ansible->vault_password_ref, String(value, field_path));
        } else if (key == "privateKeyRef") {
          ASSIGN_OR_RETURN(ansible->private_key_ref, String(value, field_path));
        } else if (key == "becomePasswordRef") {
          ASSIGN_OR_RETURN(ansible->become_password_ref, String(value, field_path));
        } else if (key == "envFromRef") {
          if (IsNullValue(value)) {
            ansible->env_from_refs.clear();
          } else if (value.IsSequence()) {
            ASSIGN_OR_RETURN(ansible->env_from_refs, StringList(value, field_path));
          } else if (value.IsScalar()) {
            ansible->env_from_refs = {value.Scalar()};
          } else {
            return Fail(value, field_path, "must be a credential name or a list of them",
                        "e.g. envFromRef: api-token or envFromRef: [api-token, db-env]");
          }
        } else if (key == "tags" || key == "skipTags") {
          std::vector<std::string>& tags = key == "tags" ? ansible->tags : ansible->skip_tags;
          if (value.IsSequence()) {
            ASSIGN_OR_RETURN(tags, StringList(value, field_path));
          } else if (value.IsScalar()) {
            tags = {value.Scalar()};
          } else if (!IsNullValue(value)) {
            return Fail(value, field_path, "must be a list of tags or a comma-separated string",
                        "e.g. [web, db] or \"web,db\"");
          }
        } else if (key == "forks") {
          ASSIGN_OR_RETURN(const int64_t forks, Integer(value, field_path));
          if (forks < 1) {
            return Fail(value, field_path, "must be at least 1", "e.g. forks: 10");
          }
          ansible->forks = forks;
        } else if (key == "verbosity") {
          ASSIGN_OR_RETURN(const int64_t verbosity, Integer(value, field_path));
          if (verbosity < 0 || verbosity > 4) {
            return Fail(value, field_path, "must be between 0 and 4",
                        "0 is Ansible's default output, 4 is -vvvv");
          }
          ansible->verbosity = static_cast<int>(verbosity);
        } else if (key == "extraVars") {
          if (!value.IsMap()) {
            return Fail(value, field_path, "must be a mapping of variable names to values", "");
          }
          for (const auto& var : value)
            ansible->extra_vars[var.first.Scalar()] = ToJson(var.second);
        } else {  // env
          return ForEachElement(
              value, field_path, [&](const YAML::Node& element, const std::string& el_path) {
                EnvVar& var = ansible->env.emplace_back();
                return ForEachField(element, el_path, kAnsibleEnvFields,
                                    [&](const std::string& env_key, const YAML::Node& env_value,
                                        const std::string& env_path) -> absl::Status {
                                      ASSIGN_OR_RETURN((env_key == "name" ? var.name : var.value),
                                                       String(env_value, env_path));
                                      return absl::OkStatus();
                                    });
              });
        }
        return absl::OkStatus();
      }));
  if (ansible->playbook.empty() == ansible->source.empty()) {
    return Fail(node, path, "needs exactly one of 'playbook' or 'source'",
                "name a playbook file of the bundle, or write the playbook inline in `source`");
  }
  return absl::OkStatus();
}

// yaml-cpp reports an unclosed double quote where its scanner finally gives up, often lines
// later. Returns the line and column (1-based) of a quote opened before `error_line` and never
// closed, by pairing lines with an odd number of unescaped quotes; {0, 0} if there is none.
std::pair<int, int> UnclosedQuote(absl::string_view text, int error_line) {
  std::pair<int, int> open = {0, 0};
  int line_number = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (++line_number > error_line) break;
    if (absl::StartsWith(absl::StripLeadingAsciiWhitespace(line), "#")) continue;
    int quotes = 0;
    int last_quote = 0;
    for (size_t i = 0; i < line.size(); ++i) {
      if (line[i] == '"' && (i == 0 || line[i - 1] != '\\')) {
        ++quotes;
        last_quote = static_cast<int>(i) + 1;
      }
    }
    if (quotes % 2 == 1)
      open = open.first == 0 ? std::make_pair(line_number, last_quote) : std::make_pair(0, 0);
  }
  return open;
}

}  // namespace

namespace {

// Gives every `inline:` template of a task or step a place in workflow->templates, named
// "<calling template>.<task>" (Argo's template names cannot hold a '.', so this never clashes),
// and points the task at it. Inline templates inside inline templates are reached too: the
// loop runs over the templates it appends.
void HoistInlineTemplates(Workflow* workflow) {
  for (size_t i = 0; i < workflow->templates.size(); ++i) {
    std::vector<Template> hoisted;
    const std::string caller = workflow->templates[i].name;
    auto hoist = [&](DagTask& task) {
      if (!task.inline_template) return;
      Template tmpl = *task.inline_template;
      tmpl.name = caller + "." + task.name;
      task.template_name = tmpl.name;
      task.inline_template.reset();
      hoisted.push_back(std::move(tmpl));
    };
    Template& tmpl = workflow->templates[i];
    if (tmpl.dag) {
      for (DagTask& task : tmpl.dag->tasks) hoist(task);
    }
    if (tmpl.steps) {
      for (std::vector<DagTask>& group : tmpl.steps->groups) {
        for (DagTask& step : group) hoist(step);
      }
    }
    for (Template& inline_template : hoisted) {
      workflow->templates.push_back(std::move(inline_template));
    }
  }
}

// Where yaml-cpp's parser would stop making progress in `text`, if it would. Debian 12's
// yaml-cpp 0.7 reports a top-level token that cannot start a node (a line holding just `,`, say)
// as an empty document without reading past it, so YAML::LoadAll collects empty documents until
// memory runs out (fixed upstream in jbeder/yaml-cpp#1319). This pass over the parser's events
// builds nothing and stops at the first document that starts where the one before it started.
// Throws YAML::Exception where LoadAll would.
std::optional<YAML::Mark> FindStuckDocument(const std::string& text) {
  class DocumentStarts : public YAML::EventHandler {
   public:
    void OnDocumentStart(const YAML::Mark& mark) override { start = mark; }
    void OnDocumentEnd() override {}
    void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
    void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
    void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t,
                  const std::string&) override {}
    void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                         YAML::EmitterStyle::value) override {}
    void OnSequenceEnd() override {}
    void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                    YAML::EmitterStyle::value) override {}
    void OnMapEnd() override {}
    YAML::Mark start = YAML::Mark::null_mark();
  };
  std::istringstream in(text);
  YAML::Parser parser(in);
  DocumentStarts events;
  int previous = -1;
  while (parser.HandleNextDocument(events)) {
    if (events.start.pos == previous) return events.start;
    previous = events.start.pos;
  }
  return std::nullopt;
}

// The non-empty documents of `yaml_text`, each parsed; at most `max_documents` of them.
absl::StatusOr<std::vector<Workflow>> ParseDocuments(std::string_view yaml_text,
                                                     std::string_view file_name,
                                                     size_t max_documents) {
  const std::string file(file_name);
  std::vector<Workflow> workflows;
  // yaml-cpp reports errors by exception; they stop here (CONVENTIONS.md habit 4).
  try {
    const std::string text(yaml_text);
    if (const std::optional<YAML::Mark> stuck = FindStuckDocument(text)) {
      const SourceLocation where{file, stuck->line + 1, stuck->column + 1};
      const char found = static_cast<size_t>(stuck->pos) < text.size() ? text[stuck->pos] : ' ';
      return absl::InvalidArgumentError(
          absl::StrCat(where.ToString(), ": malformed YAML: unexpected '", std::string(1, found),
                       "'; a value cannot start with it (quote it if it is text)"));
    }
    for (const YAML::Node& document : YAML::LoadAll(text)) {
      if (IsNullValue(document)) continue;  // `---` with nothing after it
      if (workflows.size() == max_documents) {
        return internal::WorkflowError(
            SourceLocation{file, document.Mark().line + 1, document.Mark().column + 1},
            absl::StrCat("(document ", max_documents + 1, ")"),
            max_documents == 1 ? "a file holds one workflow"
                               : absl::StrCat("a file holds at most ", max_documents, " documents"),
            "submit each document separately");
      }
      Workflow& workflow = workflows.emplace_back();
      workflow.file = file;
      Parser parser(workflow.file, &workflow);
      RETURN_IF_ERROR(parser.ParseDocument(document));
      HoistInlineTemplates(&workflow);
    }
  } catch (const YAML::Exception& e) {
    SourceLocation where{file};
    if (!e.mark.is_null()) {
      where.line = e.mark.line + 1;
      where.column = e.mark.column + 1;
    }
    const auto [quote_line, quote_column] =
        UnclosedQuote(absl::string_view(yaml_text.data(), yaml_text.size()), where.line);
    if (quote_line != 0 && quote_line < where.line) {
      return absl::InvalidArgumentError(
          absl::StrCat(file, ":", quote_line, ":", quote_column,
                       ": malformed YAML: this double quote is never closed (the YAML parser "
                       "stopped at line ",
                       where.line, ": ", e.msg, "); add the closing quote"));
    }
    return absl::InvalidArgumentError(absl::StrCat(where.ToString(), ": malformed YAML: ", e.msg));
  }
  if (workflows.empty()) {
    return internal::WorkflowError(SourceLocation{file}, "(document)", "the file holds no workflow",
                                   "write a Workflow with apiVersion, kind, metadata and spec");
  }
  return workflows;
}

}  // namespace

absl::StatusOr<Workflow> ParseWorkflow(std::string_view yaml_text, std::string_view file_name) {
  ASSIGN_OR_RETURN(std::vector<Workflow> workflows, ParseDocuments(yaml_text, file_name, 1));
  return std::move(workflows.front());
}

absl::StatusOr<std::vector<Workflow>> ParseWorkflowDocuments(std::string_view yaml_text,
                                                             std::string_view file_name) {
  return ParseDocuments(yaml_text, file_name, kMaxWorkflowDocuments);
}

std::vector<YamlDocument> SplitYamlDocuments(std::string_view yaml_text) {
  std::vector<YamlDocument> documents;
  YamlDocument current;
  bool has_content = false;  // something other than blank lines and comments
  int line_number = 0;
  auto flush = [&] {
    if (has_content) documents.push_back(std::move(current));
    current = YamlDocument{};
    has_content = false;
  };
  size_t pos = 0;
  while (pos < yaml_text.size()) {
    size_t end = yaml_text.find('\n', pos);
    end = end == std::string_view::npos ? yaml_text.size() : end + 1;
    const absl::string_view line(yaml_text.data() + pos, end - pos);
    pos = end;
    ++line_number;
    // A document marker: `---` or `...` at column 0, alone or followed by a space.
    const bool marker = (absl::StartsWith(line, "---") || absl::StartsWith(line, "...")) &&
                        (line.size() == 3 || line[3] == ' ' || line[3] == '\t' || line[3] == '\n' ||
                         line[3] == '\r');
    if (marker) {
      flush();
      continue;
    }
    if (current.text.empty()) current.first_line = line_number;
    current.text.append(line.data(), line.size());
    const absl::string_view stripped = absl::StripLeadingAsciiWhitespace(line);
    if (!stripped.empty() && stripped.front() != '#') has_content = true;
  }
  flush();
  return documents;
}

}  // namespace dagd::engine
