// The gRPC metrics interceptor in front of the real services: calls over loopback are counted by
// method and status code, and timed.
#include "server/grpc_metrics.h"

#include <gtest/gtest.h>

#include <string>

#include "tests/server/server_stack.h"

namespace dagd::server {
namespace {

using testing::ContextWithDeadline;
using testing::ServerStack;

double Sample(metrics::Registry& registry, const std::string& series) {
  const std::string body = registry.Render();
  const size_t at = body.find("\n" + series + " ");
  return at == std::string::npos ? -1 : std::stod(body.substr(at + series.size() + 2));
}

TEST(GrpcMetricsTest, CallsAreCountedByMethodAndCodeAndTimed) {
  metrics::Registry registry;  // outlives the stack
  ServerStack stack;
  ServerOptions options;
  options.metrics = &registry;
  ASSERT_NO_FATAL_FAILURE(stack.Start(options));

  for (int i = 0; i < 3; ++i) {
    v1::ListRunsResponse response;
    ASSERT_TRUE(stack.runs()->ListRuns(ContextWithDeadline().get(), {}, &response).ok());
  }
  v1::GetRunRequest get;
  get.set_run_id("no-such-run");
  v1::Run run;
  EXPECT_EQ(stack.runs()->GetRun(ContextWithDeadline().get(), get, &run).error_code(),
            grpc::StatusCode::NOT_FOUND);
  // A server stream counts once, with the status it ends with.
  v1::WatchRunRequest watch;
  watch.set_run_id("no-such-run");
  auto context = ContextWithDeadline();
  auto reader = stack.runs()->WatchRun(context.get(), watch);
  v1::RunEvent event;
  while (reader->Read(&event)) {
  }
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::NOT_FOUND);

  EXPECT_EQ(Sample(registry,
                   "dagd_grpc_requests_total{method=\"/dagd.v1.RunService/ListRuns\",code=\"OK\"}"),
            3);
  EXPECT_EQ(Sample(registry,
                   "dagd_grpc_requests_total{method=\"/dagd.v1.RunService/GetRun\","
                   "code=\"NOT_FOUND\"}"),
            1);
  EXPECT_EQ(Sample(registry,
                   "dagd_grpc_requests_total{method=\"/dagd.v1.RunService/WatchRun\","
                   "code=\"NOT_FOUND\"}"),
            1);
  EXPECT_EQ(Sample(registry,
                   "dagd_grpc_request_duration_seconds_count{method=\"/dagd.v1."
                   "RunService/ListRuns\"}"),
            3);
  EXPECT_GT(Sample(registry,
                   "dagd_grpc_request_duration_seconds_sum{method=\"/dagd.v1."
                   "RunService/ListRuns\"}"),
            0);
}

TEST(GrpcMetricsTest, CodeNamesAreTheCanonicalOnes) {
  EXPECT_STREQ(GrpcCodeName(0), "OK");
  EXPECT_STREQ(GrpcCodeName(5), "NOT_FOUND");
  EXPECT_STREQ(GrpcCodeName(8), "RESOURCE_EXHAUSTED");
  EXPECT_STREQ(GrpcCodeName(16), "UNAUTHENTICATED");
  EXPECT_STREQ(GrpcCodeName(17), "UNKNOWN");
  EXPECT_STREQ(GrpcCodeName(-1), "UNKNOWN");
}

}  // namespace
}  // namespace dagd::server
