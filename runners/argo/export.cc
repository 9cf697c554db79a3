#include "runners/argo/export.h"

#include <filesystem>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "engine/parser.h"
#include "engine/status_macros.h"
#include "engine/template_refs.h"
#include "engine/validate.h"
#include "engine/yaml_json.h"
#include "runners/kubernetes/ansible_pod.h"

namespace dagd::runners::argo {
namespace {

using nlohmann::json;

// Sets the values of spec.arguments.parameters from `given`; a name the workflow does not
// declare is an error.
absl::Status SetArguments(const std::map<std::string, std::string>& given,
                          const std::string& file_name, json* spec) {
  if (given.empty()) return absl::OkStatus();
  json& parameters = (*spec)["arguments"]["parameters"];
  if (!parameters.is_array()) parameters = json::array();
  std::set<std::string> declared;
  for (json& parameter : parameters) {
    const std::string name = parameter.value("name", "");
    declared.insert(name);
    auto it = given.find(name);
    if (it == given.end()) continue;
    parameter["value"] = it->second;
    parameter.erase("valueFrom");
  }
  for (const auto& [name, value] : given) {
    if (declared.count(name) == 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          file_name, ": parameter \"", name, "\" is not one of spec.arguments.parameters (",
          declared.empty() ? "none" : absl::StrJoin(declared, ", "),
          "); drop it or declare it in the workflow"));
    }
  }
  return absl::OkStatus();
}

// The template `t` (JSON as written) of ansible template `parsed` as a container template.
absl::Status ConvertAnsibleTemplate(const engine::Template& parsed,
                                    const engine::Workflow& workflow, const ExportRequest& request,
                                    int index, const WorkflowSpecOptions& options, json* t) {
  if (parsed.ansible.has_value() && absl::StrContains(parsed.ansible->inventory, "{{")) {
    return absl::InvalidArgumentError(absl::StrCat(
        kubernetes::TemplateWhere(parsed),
        ": its inventory comes from a parameter, which dagd parses and converts when the node "
        "runs; an Argo Workflow cannot do that. Export a workflow whose ansible templates name "
        "their inventory (a host list, a bundle file or inline text), or run this one on dagd "
        "with `runner: argo`"));
  }
  AttemptSpec spec;
  spec.run_id = request.run_id.empty() ? "export" : request.run_id;
  spec.node_name = parsed.name;
  spec.external_name = absl::StrCat(spec.run_id, "-", parsed.name);
  spec.resolved = parsed;
  for (const engine::Parameter& input : parsed.inputs.parameters) {
    spec.inputs[input.name] = absl::StrCat("{{inputs.parameters.", input.name, "}}");
  }
  spec.work_dir = absl::StrCat(request.scratch_dir, "/template-", index);
  spec.workflow_kubernetes = workflow.kubernetes;
  std::error_code ec;
  std::filesystem::create_directories(spec.work_dir, ec);
  if (!ec && !request.bundle_dir.empty()) {
    std::filesystem::copy(request.bundle_dir, spec.work_dir,
                          std::filesystem::copy_options::recursive, ec);
    spec.bundle_dir = spec.work_dir;
  }
  if (ec) {
    return absl::UnavailableError(absl::StrCat("cannot prepare the files of template \"",
                                               parsed.name, "\" in ", spec.work_dir, ": ",
                                               ec.message()));
  }
  ASSIGN_OR_RETURN(json parts, AnsibleContainerTemplate(spec, options));
  t->erase("ansible");
  (*t)["container"] = std::move(parts["container"]);
  (*t)["inputs"]["artifacts"] = std::move(parts["inputs"]["artifacts"]);
  (*t)["outputs"]["parameters"] = std::move(parts["outputs"]["parameters"]);
  return absl::OkStatus();
}

// Argo types these IntOrString; its published schema says string, so numbers are written as
// strings, which Argo reads the same.
void IntOrStringAsString(json* object, const char* key) {
  if (object->is_object() && object->contains(key) && (*object)[key].is_number()) {
    (*object)[key] = (*object)[key].dump();
  }
}

}  // namespace

absl::StatusOr<json> ExportArgoWorkflow(const ExportRequest& request,
                                        const WorkflowSpecOptions& options) {
  ASSIGN_OR_RETURN(engine::Workflow workflow,
                   engine::ParseRunSpec(request.yaml, request.file_name));
  RETURN_IF_ERROR(engine::ValidateWorkflow(workflow));
  // A run spec's further documents are the WorkflowTemplates it refers to: the export keeps
  // its templateRefs, which Argo resolves from its own WorkflowTemplates.
  const std::vector<engine::YamlDocument> documents = engine::SplitYamlDocuments(request.yaml);
  ASSIGN_OR_RETURN(json document,
                   engine::YamlToJson(documents.empty() ? request.yaml : documents.front().text,
                                      request.file_name));
  json& spec = document["spec"];
  spec.erase("runner");
  RETURN_IF_ERROR(SetArguments(request.parameters, request.file_name, &spec));
  if (!request.run_id.empty()) {
    json& metadata = document["metadata"];
    metadata.erase("generateName");
    metadata["name"] = request.run_id;
    metadata["annotations"]["dagd.io/exported-from-run"] = request.run_id;
  }
  int index = 0;
  for (json& t : spec["templates"]) {
    t.erase("runner");
    IntOrStringAsString(&t, "activeDeadlineSeconds");
    if (t.contains("retryStrategy")) {
      IntOrStringAsString(&t["retryStrategy"], "limit");
      if (t["retryStrategy"].contains("backoff")) {
        IntOrStringAsString(&t["retryStrategy"]["backoff"], "factor");
      }
    }
    if (t.contains("ansible")) {
      const engine::Template* parsed = workflow.FindTemplate(t.value("name", ""));
      if (parsed == nullptr) {
        return absl::InternalError(
            absl::StrCat("template \"", t.value("name", ""),
                         "\" is in the YAML but not in the parsed workflow"));
      }
      RETURN_IF_ERROR(ConvertAnsibleTemplate(*parsed, workflow, request, index, options, &t));
    }
    ++index;
  }
  return document;
}

}  // namespace dagd::runners::argo
