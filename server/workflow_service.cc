#include "server/workflow_service.h"

#include <stdlib.h>

#include <filesystem>
#include <map>
#include <set>

#include "absl/strings/str_cat.h"
#include "engine/parser.h"
#include "engine/status_macros.h"
#include "engine/template_refs.h"
#include "engine/validate.h"
#include "engine/yaml_json.h"
#include "runners/argo/export.h"
#include "server/bundle_check.h"
#include "server/convert.h"
#include "server/template_library.h"

namespace dagd::server {

absl::Status CheckWorkflowSize(const std::string& yaml, const std::string& file,
                               int64_t max_bytes) {
  if (static_cast<int64_t>(yaml.size()) <= max_bytes) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(
      file, ": the workflow is ", yaml.size(), " bytes; the limit is ", max_bytes,
      " (dagd --max-workflow-bytes): split it, or move data into the bundle or parameters"));
}

namespace {}  // namespace

absl::Status WorkflowServiceImpl::Apply(const v1::CreateWorkflowRequest& request,
                                        const Caller& caller,
                                        v1::CreateWorkflowResponse* response) {
  const std::string file = request.file_name().empty() ? "<request>" : request.file_name();
  RETURN_IF_ERROR(CheckWorkflowSize(request.yaml(), file, max_workflow_bytes_));
  ASSIGN_OR_RETURN(std::vector<engine::Workflow> workflows,
                   engine::ParseWorkflowDocuments(request.yaml(), file));
  std::vector<engine::YamlDocument> texts;
  if (workflows.size() == 1) {
    texts.push_back(engine::YamlDocument{request.yaml(), 1});  // stored exactly as applied
  } else {
    texts = engine::SplitYamlDocuments(request.yaml());
    if (texts.size() != workflows.size()) {
      return absl::InvalidArgumentError(
          absl::StrCat(file, ": the YAML parser finds ", workflows.size(),
                       " documents, but dagd cuts the file "
                       "into ",
                       texts.size(), " at its `---` lines; put each `---` on a line of its own"));
    }
  }
  std::map<std::string, TemplateDocument> same_file;
  std::vector<std::string> namespaces;
  for (size_t i = 0; i < workflows.size(); ++i) {
    const engine::Workflow& workflow = workflows[i];
    const std::string where = absl::StrCat(file, ":", texts[i].first_line);
    ASSIGN_OR_RETURN(std::string ns,
                     ResolveNamespace(request.namespace_(), workflow.namespace_name, where));
    RETURN_IF_ERROR(caller.Authorize(ns, "workflow/" + workflow.name));
    RETURN_IF_ERROR(
        engine::CheckExpressionLimits(texts[i].text, workflow, file, expression_limits_));
    namespaces.push_back(std::move(ns));
    if (workflow.name.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat(where,
                       ": metadata.name: a stored workflow needs a name; set "
                       "metadata.name (generateName alone is for submitting runs)"));
    }
    if (!same_file.emplace(workflow.name, TemplateDocument{texts[i].text, workflow}).second) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": metadata.name: a document above is named \"", workflow.name,
                       "\" too; names are unique"));
    }
    RETURN_IF_ERROR(CheckKindUnchanged(workflow, where));
  }
  ASSIGN_OR_RETURN(std::vector<storage::BundleFile> bundle,
                   BundleFromProto(request.bundle(), bundle_limits_));
  std::set<std::string> paths;
  for (const storage::BundleFile& bundle_file : bundle) paths.insert(bundle_file.path);
  std::vector<storage::WorkflowDocument> documents;
  for (size_t i = 0; i < workflows.size(); ++i) {
    ASSIGN_OR_RETURN(engine::Workflow resolved, Resolve(workflows[i], same_file));
    RETURN_IF_ERROR(engine::ValidateWorkflow(resolved));
    RETURN_IF_ERROR(CheckPlaybooksInBundle(resolved, paths, "apply with --bundle DIR"));
    documents.push_back(storage::WorkflowDocument{.name = workflows[i].name,
                                                  .yaml = texts[i].text,
                                                  .entrypoint = workflows[i].entrypoint,
                                                  .namespace_name = namespaces[i]});
  }
  std::vector<bool> created;
  ASSIGN_OR_RETURN(std::vector<storage::WorkflowRecord> records,
                   store_->PutWorkflows(documents, std::move(bundle), clock_->NowMs(), &created));
  for (size_t i = 0; i < records.size(); ++i) {
    v1::AppliedDocument* applied = response->add_documents();
    ToProto(records[i], applied->mutable_workflow());
    applied->set_created(created[i]);
  }
  *response->mutable_workflow() = response->documents(0).workflow();
  response->set_created(response->documents(0).created());
  return absl::OkStatus();
}

absl::Status WorkflowServiceImpl::CheckKindUnchanged(const engine::Workflow& workflow,
                                                     const std::string& where) {
  auto stored = store_->GetWorkflow(workflow.name, 0);
  if (absl::IsNotFound(stored.status())) return absl::OkStatus();
  if (!stored.ok()) return stored.status();
  auto parsed = engine::ParseWorkflow(stored->yaml, stored->name);
  if (!parsed.ok() || parsed->kind == workflow.kind) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(
      where, ": kind: \"", workflow.name, "\" is stored as a ",
      engine::WorkflowKindName(parsed->kind),
      "; a name keeps its kind (templateRefs rely on "
      "it): rename this ",
      engine::WorkflowKindName(workflow.kind),
      ", or delete the stored one first (dagctl delete workflow ", workflow.name, ")"));
}

absl::StatusOr<engine::Workflow> WorkflowServiceImpl::Resolve(
    engine::Workflow workflow, const std::map<std::string, TemplateDocument>& same_file) {
  ASSIGN_OR_RETURN(std::vector<TemplateDocument> documents,
                   LoadReferencedDocuments(store_, workflow, same_file));
  RETURN_IF_ERROR(engine::ResolveTemplateRefs(&workflow, ToLibrary(documents)));
  return workflow;
}

grpc::ServerUnaryReactor* WorkflowServiceImpl::CreateWorkflow(
    grpc::CallbackServerContext* context, const v1::CreateWorkflowRequest* request,
    v1::CreateWorkflowResponse* response) {
  absl::StatusOr<Caller> caller =
      access_->Admit(context, "/dagd.v1.WorkflowService/CreateWorkflow");
  if (!caller.ok()) return Done(context, caller.status());
  return Done(context, Apply(*request, *caller, response));
}

grpc::ServerUnaryReactor* WorkflowServiceImpl::GetWorkflow(grpc::CallbackServerContext* context,
                                                           const v1::GetWorkflowRequest* request,
                                                           v1::Workflow* response) {
  absl::StatusOr<Caller> caller = access_->Admit(context, "/dagd.v1.WorkflowService/GetWorkflow");
  if (!caller.ok()) return Done(context, caller.status());
  auto record = store_->GetWorkflow(request->name(), request->version());
  if (!record.ok()) return Done(context, record.status());
  if (auto st = caller->Authorize(record->namespace_name, "workflow/" + record->name); !st.ok()) {
    return Done(context, st);
  }
  ToProto(*record, response);
  return Done(context, absl::OkStatus());
}

grpc::ServerUnaryReactor* WorkflowServiceImpl::ListWorkflows(
    grpc::CallbackServerContext* context, const v1::ListWorkflowsRequest* request,
    v1::ListWorkflowsResponse* response) {
  absl::StatusOr<Caller> caller = access_->Admit(context, "/dagd.v1.WorkflowService/ListWorkflows");
  if (!caller.ok()) return Done(context, caller.status());
  std::vector<std::string> namespaces = caller->scope().namespaces;  // empty when all
  if (!request->namespace_().empty()) {
    if (auto st = caller->Authorize(request->namespace_(), ""); !st.ok()) return Done(context, st);
    namespaces = {request->namespace_()};
  }
  const int limit = request->page_size() > 0 ? std::min(request->page_size(), 1000) : 100;
  auto records = store_->ListWorkflows(request->page_token(), limit + 1, namespaces);
  if (!records.ok()) return Done(context, records.status());
  for (size_t i = 0; i < records->size() && i < static_cast<size_t>(limit); ++i) {
    ToProto((*records)[i], response->add_workflows());
  }
  if (records->size() > static_cast<size_t>(limit)) {
    response->set_next_page_token((*records)[limit - 1].name);
  }
  return Done(context, absl::OkStatus());
}

grpc::ServerUnaryReactor* WorkflowServiceImpl::DeleteWorkflow(
    grpc::CallbackServerContext* context, const v1::DeleteWorkflowRequest* request,
    v1::DeleteWorkflowResponse* response) {
  absl::StatusOr<Caller> caller =
      access_->Admit(context, "/dagd.v1.WorkflowService/DeleteWorkflow", [&] {
        auto record = store_->GetWorkflow(request->name(), 0);
        return AccessControl::Located{record.ok() ? record->namespace_name : "",
                                      "workflow/" + request->name()};
      });
  if (!caller.ok()) return Done(context, caller.status());
  auto record = store_->GetWorkflow(request->name(), 0);
  if (!record.ok()) return Done(context, record.status());
  if (auto st = caller->Authorize(record->namespace_name, "workflow/" + record->name); !st.ok()) {
    return Done(context, st);
  }
  return Done(context, store_->DeleteWorkflow(request->name()));
}

grpc::ServerUnaryReactor* WorkflowServiceImpl::LintWorkflow(grpc::CallbackServerContext* context,
                                                            const v1::LintWorkflowRequest* request,
                                                            v1::LintWorkflowResponse* response) {
  absl::StatusOr<Caller> caller = access_->Admit(context, "/dagd.v1.WorkflowService/LintWorkflow");
  if (!caller.ok()) return Done(context, caller.status());
  const std::string file = request->file_name().empty() ? "<request>" : request->file_name();
  // A parse error stops at the first (the rest of the file is not known); validation lists
  // every problem it finds.
  if (absl::Status size = CheckWorkflowSize(request->yaml(), file, max_workflow_bytes_);
      !size.ok()) {
    *response->add_diagnostics() = ToDiagnostic(size, file);
    return Done(context, absl::OkStatus());
  }
  auto workflows = engine::ParseWorkflowDocuments(request->yaml(), file);
  if (!workflows.ok()) {
    *response->add_diagnostics() = ToDiagnostic(workflows.status(), file);
    return Done(context, absl::OkStatus());
  }
  std::map<std::string, TemplateDocument> same_file;
  for (const engine::Workflow& workflow : *workflows) {
    same_file.emplace(workflow.name, TemplateDocument{"", workflow});
  }
  for (const engine::Workflow& workflow : *workflows) {
    // A reference that does not resolve hides what the template would have shown.
    absl::StatusOr<engine::Workflow> resolved = Resolve(workflow, same_file);
    if (!resolved.ok()) {
      *response->add_diagnostics() = ToDiagnostic(resolved.status(), file);
      continue;
    }
    for (const absl::Status& problem : engine::FindWorkflowProblems(*resolved)) {
      *response->add_diagnostics() = ToDiagnostic(problem, file);
    }
  }
  return Done(context, absl::OkStatus());
}

namespace {

// A directory under $TMPDIR (or /tmp) that is removed with this object.
class ScratchDir {
 public:
  ScratchDir() {
    std::error_code ec;
    std::string pattern =
        (std::filesystem::temp_directory_path(ec) / "dagd-export-XXXXXX").string();
    if (mkdtemp(pattern.data()) != nullptr) path_ = pattern;
  }
  ~ScratchDir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  const std::string& path() const { return path_; }  // "" if it could not be made

 private:
  std::string path_;
};

}  // namespace

absl::StatusOr<std::string> WorkflowServiceImpl::Export(const v1::ExportWorkflowRequest& request) {
  if (request.format() != v1::ExportWorkflowRequest::FORMAT_ARGO) {
    return absl::InvalidArgumentError("format: say which format to export to (FORMAT_ARGO)");
  }
  if (request.run_id().empty() == request.yaml().empty()) {
    return absl::InvalidArgumentError(
        "give exactly one of run_id (a run's workflow) and yaml (a workflow file)");
  }
  ScratchDir scratch;
  if (scratch.path().empty()) {
    return absl::UnavailableError(
        "cannot create a scratch directory for the export under $TMPDIR (or /tmp); check that "
        "it exists, is writable by dagd and has space");
  }
  runners::argo::ExportRequest export_request;
  export_request.scratch_dir = scratch.path() + "/work";
  std::vector<storage::BundleFile> bundle;
  if (!request.run_id().empty()) {
    ASSIGN_OR_RETURN(storage::RunRecord run, store_->GetRun(request.run_id()));
    export_request.yaml = run.workflow_yaml;
    export_request.file_name = run.file_name.empty() ? run.workflow_name : run.file_name;
    export_request.parameters = run.parameters;
    export_request.run_id = run.id;
    ASSIGN_OR_RETURN(bundle, store_->GetBundle(run.bundle_digest));
  } else {
    export_request.file_name = request.file_name().empty() ? "<request>" : request.file_name();
    RETURN_IF_ERROR(
        CheckWorkflowSize(request.yaml(), export_request.file_name, max_workflow_bytes_));
    ASSIGN_OR_RETURN(engine::Workflow workflow,
                     engine::ParseWorkflow(request.yaml(), export_request.file_name));
    ASSIGN_OR_RETURN(export_request.yaml, BuildRunSpec(store_, request.yaml(), workflow));
    export_request.parameters = {request.parameters().begin(), request.parameters().end()};
    ASSIGN_OR_RETURN(bundle, BundleFromProto(request.bundle(), bundle_limits_));
  }
  std::error_code ec;
  if (!bundle.empty()) {
    export_request.bundle_dir = scratch.path() + "/bundle";
    std::filesystem::create_directory(export_request.bundle_dir, ec);
    if (!ec) RETURN_IF_ERROR(storage::MaterialiseBundle(bundle, export_request.bundle_dir));
  }
  if (!ec) std::filesystem::create_directory(export_request.scratch_dir, ec);
  if (ec) {
    return absl::UnavailableError(
        absl::StrCat("cannot write the export's files under ", scratch.path(), ": ", ec.message()));
  }
  ASSIGN_OR_RETURN(nlohmann::json workflow,
                   runners::argo::ExportArgoWorkflow(export_request, argo_export_));
  return engine::JsonToYaml(workflow);
}

grpc::ServerUnaryReactor* WorkflowServiceImpl::ExportWorkflow(
    grpc::CallbackServerContext* context, const v1::ExportWorkflowRequest* request,
    v1::ExportWorkflowResponse* response) {
  absl::StatusOr<Caller> caller =
      access_->Admit(context, "/dagd.v1.WorkflowService/ExportWorkflow");
  if (!caller.ok()) return Done(context, caller.status());
  if (!request->run_id().empty()) {
    auto run = store_->GetRun(request->run_id());
    if (!run.ok()) return Done(context, run.status());
    if (auto st = caller->Authorize(run->namespace_name, "run/" + run->id); !st.ok()) {
      return Done(context, st);
    }
  }
  absl::StatusOr<std::string> yaml = Export(*request);
  if (yaml.ok()) response->set_yaml(*std::move(yaml));
  return Done(context, yaml.status());
}

}  // namespace dagd::server
