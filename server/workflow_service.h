// WorkflowService (proto/dagd/v1/workflow.proto) on gRPC's callback API. Handlers run on gRPC's
// threads; they parse and validate with the engine and read and write through the Store.
#ifndef DAGD_SERVER_WORKFLOW_SERVICE_H_
#define DAGD_SERVER_WORKFLOW_SERVICE_H_

#include <map>
#include <string>
#include <utility>

#include "dagd/v1/workflow.grpc.pb.h"
#include "engine/limits.h"
#include "runners/argo/workflow_spec.h"
#include "scheduler/clock.h"
#include "server/access.h"
#include "server/template_library.h"
#include "storage/bundle.h"
#include "storage/store.h"

namespace dagd::server {

// Largest workflow YAML accepted by default, in bytes (dagd --max-workflow-bytes).
inline constexpr size_t kMaxSpecBytes = 4 << 20;

// InvalidArgument naming `file`, the size, the limit and the flag when `yaml` is over
// `max_bytes`.
absl::Status CheckWorkflowSize(const std::string& yaml, const std::string& file, int64_t max_bytes);

class WorkflowServiceImpl final : public v1::WorkflowService::CallbackService {
 public:
  // None owned; all must outlive the service. Uploaded bundles must keep `bundle_limits`;
  // ExportWorkflow writes Argo Workflows with `argo_export`.
  WorkflowServiceImpl(storage::Store* store, scheduler::Clock* clock, AccessControl* access,
                      storage::BundleLimits bundle_limits, int64_t max_workflow_bytes,
                      engine::ExpressionLimits expression_limits,
                      runners::argo::WorkflowSpecOptions argo_export)
      : store_(store),
        clock_(clock),
        access_(access),
        max_workflow_bytes_(max_workflow_bytes),
        expression_limits_(expression_limits),
        bundle_limits_(bundle_limits),
        argo_export_(std::move(argo_export)) {}

  grpc::ServerUnaryReactor* CreateWorkflow(grpc::CallbackServerContext* context,
                                           const v1::CreateWorkflowRequest* request,
                                           v1::CreateWorkflowResponse* response) override;
  grpc::ServerUnaryReactor* GetWorkflow(grpc::CallbackServerContext* context,
                                        const v1::GetWorkflowRequest* request,
                                        v1::Workflow* response) override;
  grpc::ServerUnaryReactor* ListWorkflows(grpc::CallbackServerContext* context,
                                          const v1::ListWorkflowsRequest* request,
                                          v1::ListWorkflowsResponse* response) override;
  grpc::ServerUnaryReactor* DeleteWorkflow(grpc::CallbackServerContext* context,
                                           const v1::DeleteWorkflowRequest* request,
                                           v1::DeleteWorkflowResponse* response) override;
  grpc::ServerUnaryReactor* LintWorkflow(grpc::CallbackServerContext* context,
                                         const v1::LintWorkflowRequest* request,
                                         v1::LintWorkflowResponse* response) override;
  grpc::ServerUnaryReactor* ExportWorkflow(grpc::CallbackServerContext* context,
                                           const v1::ExportWorkflowRequest* request,
                                           v1::ExportWorkflowResponse* response) override;

 private:
  // CreateWorkflow's work: every document of the file checked (templateRefs resolved against
  // the file's other documents and the store), then all stored in one transaction.
  absl::Status Apply(const v1::CreateWorkflowRequest& request, const Caller& caller,
                     v1::CreateWorkflowResponse* response);
  // InvalidArgument (at `where`) if `workflow.name` is stored with another kind.
  absl::Status CheckKindUnchanged(const engine::Workflow& workflow, const std::string& where);
  // `workflow` with its templateRefs resolved against `same_file`, then the store.
  absl::StatusOr<engine::Workflow> Resolve(
      engine::Workflow workflow, const std::map<std::string, TemplateDocument>& same_file);
  // ExportWorkflow's work: the YAML, or the status to answer.
  absl::StatusOr<std::string> Export(const v1::ExportWorkflowRequest& request);

  storage::Store* store_;
  scheduler::Clock* clock_;
  AccessControl* access_;
  const int64_t max_workflow_bytes_;
  const engine::ExpressionLimits expression_limits_;
  const storage::BundleLimits bundle_limits_;
  const runners::argo::WorkflowSpecOptions argo_export_;
};

}  // namespace dagd::server

#endif  // DAGD_SERVER_WORKFLOW_SERVICE_H_
