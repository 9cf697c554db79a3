// DagdServer: the gRPC server of dagd — WorkflowService, RunService, AuditService,
// grpc.health.v1 and server reflection on one listening address. Owns the services; the Store,
// Scheduler, RunHub and AccessControl are passed in and must outlive it. Every call of dagd's own
// services is authenticated and authorized (access.h); health and reflection are open.
#ifndef DAGD_SERVER_SERVER_H_
#define DAGD_SERVER_SERVER_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "engine/limits.h"
#include "metrics/registry.h"
#include "runners/argo/workflow_spec.h"
#include "scheduler/scheduler.h"
#include "server/access.h"
#include "server/run_hub.h"
#include "server/tls.h"
#include "server/workflow_service.h"
#include "storage/bundle.h"
#include "storage/store.h"

namespace grpc {
class Server;
}

namespace dagd::server {

class WorkflowServiceImpl;
class RunServiceImpl;
class AuditServiceImpl;

struct ServerOptions {
  // "host:port"; port 0 picks a free port (see DagdServer::port()).
  std::string listen = "127.0.0.1:7233";
  // What an uploaded bundle may hold (CreateWorkflow, SubmitRun); more is INVALID_ARGUMENT.
  storage::BundleLimits bundle_limits;
  // Largest request accepted, in bytes; larger ones get RESOURCE_EXHAUSTED from gRPC. 0 means
  // MaxRequestBytes(bundle_limits, max_workflow_bytes): room for a bundle at its limits plus a
  // spec at its own.
  int64_t max_request_bytes = 0;
  // Largest workflow YAML (CreateWorkflow, SubmitRun, LintWorkflow, ExportWorkflow).
  int64_t max_workflow_bytes = kMaxSpecBytes;
  // Streams one principal may have open at once (RunServiceLimits).
  int max_watches_per_principal = 64;
  // The expressions of a workflow stored or submitted (engine/limits.h).
  engine::ExpressionLimits expression_limits;
  // ExportWorkflow's Argo Workflows (the Ansible image; the same as the argo runner's).
  runners::argo::WorkflowSpecOptions argo_export;
  // TLS (and mutual TLS) of the port; off by default (tls.h).
  TlsFiles tls;
  // Who may call what, and the audit log. Null: no authentication (every caller is the
  // anonymous admin), calls still audited. Not owned; must outlive the server.
  AccessControl* access = nullptr;
  // Where the gRPC call metrics are declared (grpc_metrics.h); null for none. Not owned; must
  // outlive the server.
  metrics::Registry* metrics = nullptr;
};

// The receive limit that lets every request within the spec and bundle limits through: the
// content, a spec of `max_workflow_bytes`, and per file its longest path and protobuf framing,
// plus 1 MiB for the rest; capped at INT_MAX (gRPC's type).
int64_t MaxRequestBytes(const storage::BundleLimits& limits,
                        int64_t max_workflow_bytes = kMaxSpecBytes);

class DagdServer {
 public:
  // Binds and starts serving. Unavailable if the address cannot be bound.
  static absl::StatusOr<std::unique_ptr<DagdServer>> Start(const ServerOptions& options,
                                                           storage::Store* store,
                                                           scheduler::Scheduler* scheduler,
                                                           RunHub* hub);
  ~DagdServer();

  int port() const { return port_; }
  // Stops accepting calls, ends open streams after `deadline_ms`, and waits for handlers.
  void Shutdown(int64_t deadline_ms);

 private:
  DagdServer() = default;

  std::unique_ptr<AccessControl> own_access_;  // when ServerOptions::access is null
  std::unique_ptr<WorkflowServiceImpl> workflows_;
  std::unique_ptr<RunServiceImpl> runs_;
  std::unique_ptr<AuditServiceImpl> audit_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
};

}  // namespace dagd::server

#endif  // DAGD_SERVER_SERVER_H_
