#include "server/grpc_metrics.h"

#include <grpcpp/support/status.h>

#include <chrono>
#include <string>

namespace dagd::server {
namespace {

using grpc::experimental::InterceptionHookPoints;

struct GrpcFamilies {
  metrics::CounterFamily* requests;
  metrics::HistogramFamily* duration;
};

class MetricsInterceptor : public grpc::experimental::Interceptor {
 public:
  MetricsInterceptor(const GrpcFamilies* families, const char* method)
      // Method names come from the registered services, so they are bounded; an unknown method
      // (a client calling what dagd does not serve) never reaches an interceptor.
      : families_(families),
        method_(method != nullptr ? method : "unknown"),
        start_(std::chrono::steady_clock::now()) {}

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_STATUS)) {
      const grpc::Status status = methods->GetSendStatus();
      const double seconds =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
      families_->requests->Labels({method_, GrpcCodeName(status.error_code())}).Increment();
      families_->duration->Labels({method_}).Observe(seconds);
    }
    methods->Proceed();
  }

 private:
  const GrpcFamilies* families_;
  const std::string method_;
  const std::chrono::steady_clock::time_point start_;
};

class MetricsInterceptorFactory : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit MetricsInterceptorFactory(metrics::Registry* registry)
      : families_{registry->AddCounter("dagd_grpc_requests_total",
                                       "gRPC calls handled, by method and status code.",
                                       {"method", "code"}),
                  registry->AddHistogram(
                      "dagd_grpc_request_duration_seconds",
                      "gRPC call latency from arrival to status (streams: their whole life).",
                      {"method"}, metrics::LatencyBuckets())} {}

  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override {
    return new MetricsInterceptor(&families_, info->method());
  }

 private:
  const GrpcFamilies families_;
};

}  // namespace

const char* GrpcCodeName(int code) {
  static constexpr const char* kNames[] = {"OK",
                                           "CANCELLED",
                                           "UNKNOWN",
                                           "INVALID_ARGUMENT",
                                           "DEADLINE_EXCEEDED",
                                           "NOT_FOUND",
                                           "ALREADY_EXISTS",
                                           "PERMISSION_DENIED",
                                           "RESOURCE_EXHAUSTED",
                                           "FAILED_PRECONDITION",
                                           "ABORTED",
                                           "OUT_OF_RANGE",
                                           "UNIMPLEMENTED",
                                           "INTERNAL",
                                           "UNAVAILABLE",
                                           "DATA_LOSS",
                                           "UNAUTHENTICATED"};
  if (code < 0 || code >= static_cast<int>(std::size(kNames))) return "UNKNOWN";
  return kNames[code];
}

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> NewGrpcMetricsInterceptor(
    metrics::Registry* registry) {
  return std::make_unique<MetricsInterceptorFactory>(registry);
}

}  // namespace dagd::server
