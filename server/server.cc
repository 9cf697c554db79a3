#include "server/server.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>

#include <chrono>

#include "absl/strings/str_cat.h"
#include "server/run_service.h"
#include "server/workflow_service.h"

namespace dagd::server {

absl::StatusOr<std::unique_ptr<DagdServer>> DagdServer::Start(const ServerOptions& options,
                                                              storage::Store* store,
                                                              scheduler::Scheduler* scheduler,
                                                              RunHub* hub) {
  std::unique_ptr<DagdServer> server(new DagdServer());
  server->workflows_ = std::make_unique<WorkflowServiceImpl>(store, scheduler::SystemClock());
  server->runs_ = std::make_unique<RunServiceImpl>(store, scheduler, hub);

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  // gRPC sets SO_REUSEPORT by default: a second dagd on a taken port would then start and share
  // the port with the first, the kernel spreading connections between them.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.AddListeningPort(options.listen, grpc::InsecureServerCredentials(), &server->port_);
  builder.SetMaxReceiveMessageSize(options.max_request_bytes);
  builder.RegisterService(server->workflows_.get());
  builder.RegisterService(server->runs_.get());
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
