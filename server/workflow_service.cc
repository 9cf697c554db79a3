#include "server/workflow_service.h"

#include <stdlib.h>

#include <filesystem>
#include <set>

#include "absl/strings/str_cat.h"
#include "engine/parser.h"
#include "engine/status_macros.h"
#include "engine/validate.h"
#include "engine/yaml_json.h"
#include "runners/argo/export.h"
#include "server/bundle_check.h"
#include "server/convert.h"

namespace dagd::server {
namespace {

// Parses and validates; the workflow on success.
absl::StatusOr<engine::Workflow> Check(const std::string& yaml, const std::string& file) {
  if (yaml.size() > kMaxSpecBytes) {
    return absl::InvalidArgumentError(absl::StrCat(file, ": the workflow is ", yaml.size(),
                                                   " bytes; the limit is ", kMaxSpecBytes));
  }
  auto workflow = engine::ParseWorkflow(yaml, file);
  if (!workflow.ok()) return workflow.status();
  if (absl::Status valid = engine::ValidateWorkflow(*workflow); !valid.ok()) return valid;
  return workflow;
}

grpc::ServerUnaryReactor* Done(grpc::CallbackServerContext* context, const absl::Status& status) {
  auto* reactor = context->DefaultReactor();
  reactor->Finish(ToGrpcStatus(status));
  return reactor;
}

}  // namespace

grpc::ServerUnaryReactor* WorkflowServiceImpl::CreateWorkflow(
    grpc::CallbackServerContext* context, const v1::CreateWorkflowRequest* request,
    v1::CreateWorkflowResponse* response) {
  const std::string file = request->file_name().empty() ? "<request>" : request->file_name();
  auto workflow = Check(request->yaml(), file);
  if (!workflow.ok()) return Done(context, workflow.status());
  if (workflow->name.empty()) {
    return Done(context, absl::InvalidArgumentError(absl::StrCat(
                             file,
                             ": metadata.name: a stored workflow needs a name; set "
                             "metadata.name (generateName alone is for submitting runs)")));
  }
  auto bundle = BundleFromProto(request->bundle(), bundle_limits_);
  if (!bundle.ok()) return Done(context, bundle.status());
  std::set<std::string> paths;
  for (const storage::BundleFile& file : *bundle) paths.insert(file.path);
  if (absl::Status held = CheckPlaybooksInBundle(*workflow, paths, "apply with --bundle DIR");
      !held.ok()) {
    return Done(context, held);
  }
  bool created = false;
  auto record = store_->PutWorkflow(workflow->name, request->yaml(), workflow->entrypoint,
                                    *std::move(bundle), clock_->NowMs(), &created);
  if (!record.ok()) return Done(context, record.status());
  ToProto(*record, response->mutable_workflow());
  response->set_created(created);
  return Done(context, absl::OkStatus());
}

grpc::ServerUnaryReactor* WorkflowServiceImpl::GetWorkflow(grpc::CallbackServerContext* context,
                                                           const v1::GetWorkflowRequest* request,
                                                           v1::Workflow* response) {
  auto record = store_->GetWorkflow(request->name(), request->version());
  if (!record.ok()) return Done(context, record.status());
  ToProto(*record, response);
  return Done(context, absl::OkStatus());
}

grpc::ServerUnaryReactor* WorkflowServiceImpl::ListWorkflows(
    grpc::CallbackServerContext* context, const v1::ListWorkflowsRequest* request,
    v1::ListWorkflowsResponse* response) {
  const int limit = request->page_size() > 0 ? std::min(request->page_size(), 1000) : 100;
  auto records = store_->ListWorkflows(request->page_token(), limit + 1);
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
  return Done(context, store_->DeleteWorkflow(request->name()));
}

grpc::ServerUnaryReactor* WorkflowServiceImpl::LintWorkflow(grpc::CallbackServerContext* context,
                                                            const v1::LintWorkflowRequest* request,
                                                            v1::LintWorkflowResponse* response) {
  const std::string file = request->file_name().empty() ? "<request>" : request->file_name();
  // A parse error stops at the first (the rest of the file is not known); validation lists
  // every problem it finds.
  if (request->yaml().size() > kMaxSpecBytes) {
    *response->add_diagnostics() = ToDiagnostic(Check(request->yaml(), file).status(), file);
    return Done(context, absl::OkStatus());
  }
  absl::StatusOr<engine::Workflow> workflow = engine::ParseWorkflow(request->yaml(), file);
  if (!workflow.ok()) {
    *response->add_diagnostics() = ToDiagnostic(workflow.status(), file);
    return Done(context, absl::OkStatus());
  }
  for (const absl::Status& problem : engine::FindWorkflowProblems(*workflow)) {
    *response->add_diagnostics() = ToDiagnostic(problem, file);
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
    RETURN_IF_ERROR(Check(request.yaml(), export_request.file_name).status());
    export_request.yaml = request.yaml();
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
  absl::StatusOr<std::string> yaml = Export(*request);
  if (yaml.ok()) response->set_yaml(*std::move(yaml));
  return Done(context, yaml.status());
}

}  // namespace dagd::server
