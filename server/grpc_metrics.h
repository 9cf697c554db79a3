// gRPC server metrics: a server interceptor that counts every call by method and status code
// (dagd_grpc_requests_total) and times it from arrival to status (dagd_grpc_request_duration_
// seconds). Installed by DagdServer::Start when ServerOptions.metrics is set.
#ifndef DAGD_SERVER_GRPC_METRICS_H_
#define DAGD_SERVER_GRPC_METRICS_H_

#include <grpcpp/support/server_interceptor.h>

#include <memory>

#include "metrics/registry.h"

namespace dagd::server {

// The interceptor factory; declares its two families in `registry` (which must outlive it).
std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> NewGrpcMetricsInterceptor(
    metrics::Registry* registry);

// "OK", "NOT_FOUND", …: the canonical name of a gRPC status code.
const char* GrpcCodeName(int code);

}  // namespace dagd::server

#endif  // DAGD_SERVER_GRPC_METRICS_H_
