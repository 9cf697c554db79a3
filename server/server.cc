#include "server/server.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>

#include <algorithm>
#include <chrono>
#include <climits>

#include "absl/strings/str_cat.h"
#include "server/audit_service.h"
#include "server/grpc_metrics.h"
#include "server/run_service.h"
#include "server/workflow_service.h"

namespace dagd::server {

int64_t MaxRequestBytes(const storage::BundleLimits& limits, int64_t max_workflow_bytes) {
  // Per file: the path, the mode, and the tags and lengths that frame it.
  constexpr int64_t kPerFile = storage::kMaxBundlePathBytes + 32;
  if (limits.max_bytes >= INT_MAX || limits.max_files >= INT_MAX / kPerFile ||
      max_workflow_bytes >= INT_MAX) {
    return INT_MAX;
  }
  const int64_t bytes =
      limits.max_bytes + max_workflow_bytes + limits.max_files * kPerFile + (int64_t{1} << 20);
  return std::min<int64_t>(bytes, INT_MAX);
}

absl::StatusOr<std::unique_ptr<DagdServer>> DagdServer::Start(const ServerOptions& options,
                                                              storage::Store* store,
                                                              scheduler::Scheduler* scheduler,
                                                              RunHub* hub) {
  std::unique_ptr<DagdServer> server(new DagdServer());
  AccessControl* access = options.access;
  if (access == nullptr) {
    server->own_access_ = std::make_unique<AccessControl>(AccessOptions{});
    access = server->own_access_.get();
  }
  server->workflows_ = std::make_unique<WorkflowServiceImpl>(
      store, scheduler::SystemClock(), access, options.bundle_limits, options.max_workflow_bytes,
      options.expression_limits, options.argo_export);
  server->runs_ = std::make_unique<RunServiceImpl>(
      store, scheduler, hub, access, options.bundle_limits,
      RunServiceLimits{.max_workflow_bytes = options.max_workflow_bytes,
                       .max_watches_per_principal = options.max_watches_per_principal,
                       .expressions = options.expression_limits});
  server->audit_ = std::make_unique<AuditServiceImpl>(store, access);

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  // gRPC sets SO_REUSEPORT by default: a second dagd on a taken port would then start and share
  // the port with the first, the kernel spreading connections between them.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.AddListeningPort(options.listen, GrpcServerCredentials(options.tls), &server->port_);
  const int64_t max_request_bytes =
      options.max_request_bytes > 0
          ? std::min<int64_t>(options.max_request_bytes, INT_MAX)
          : MaxRequestBytes(options.bundle_limits, options.max_workflow_bytes);
  builder.SetMaxReceiveMessageSize(static_cast<int>(max_request_bytes));
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> factories;
  if (options.metrics != nullptr) factories.push_back(NewGrpcMetricsInterceptor(options.metrics));
  factories.push_back(NewAuditInterceptor(access, store));
  builder.experimental().SetInterceptorCreators(std::move(factories));
  builder.RegisterService(server->workflows_.get());
  builder.RegisterService(server->runs_.get());
  builder.RegisterService(server->audit_.get());
  server->server_ = builder.BuildAndStart();
  if (!server->server_ || server->port_ == 0) {
    return absl::UnavailableError(absl::StrCat(
        "cannot listen on ", options.listen,
        ": the address is in use or not local; choose another with --listen HOST:PORT"));
  }
  return server;
}

DagdServer::~DagdServer() { Shutdown(0); }

void DagdServer::Shutdown(int64_t deadline_ms) {
  if (!server_) return;
  server_->Shutdown(std::chrono::system_clock::now() + std::chrono::milliseconds(deadline_ms));
  server_->Wait();
  server_.reset();
}

}  // namespace dagd::server
