// DagdServer: the standard health service, server reflection, and the request size limits.
// Debian's libgrpc++ ships no generated client stubs for health or reflection, so these calls go
// through grpc::GenericStub with hand-encoded protobuf bytes.
#include <grpcpp/generic/generic_stub.h>
#include <gtest/gtest.h>

#include <future>

#include "server/workflow_service.h"
#include "tests/server/server_stack.h"

namespace dagd::server::testing {
namespace {

using std::chrono::seconds;

grpc::ByteBuffer ToByteBuffer(const std::string& bytes) {
  grpc::Slice slice(bytes);
  return grpc::ByteBuffer(&slice, 1);
}

std::string FromByteBuffer(const grpc::ByteBuffer& buffer) {
  std::vector<grpc::Slice> slices;
  if (!buffer.Dump(&slices).ok()) return "";
  std::string bytes;
  for (const grpc::Slice& s : slices) {
    bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  }
  return bytes;
}

// One unary call by method name; waits (bounded) for its end.
grpc::Status GenericUnary(grpc::GenericStub* stub, const std::string& method,
                          const std::string& request, std::string* response) {
  auto context = ContextWithDeadline(seconds(10));
  grpc::ByteBuffer request_buffer = ToByteBuffer(request);
  grpc::ByteBuffer response_buffer;
  std::promise<grpc::Status> done;
  stub->UnaryCall(context.get(), method, grpc::StubOptions(), &request_buffer, &response_buffer,
                  [&done](grpc::Status status) { done.set_value(std::move(status)); });
  grpc::Status status = done.get_future().get();  // bounded by the context's deadline
  *response = FromByteBuffer(response_buffer);
  return status;
}

// One bidi call by method name that sends `request`, half-closes, and reads every response.
class GenericBidiCall : public grpc::ClientBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
 public:
  GenericBidiCall(grpc::GenericStub* stub, const std::string& method, const std::string& request)
      : context_(ContextWithDeadline(seconds(10))), request_(ToByteBuffer(request)) {
    stub->PrepareBidiStreamingCall(context_.get(), method, grpc::StubOptions(), this);
    StartWriteLast(&request_, grpc::WriteOptions());
    StartRead(&response_);
    StartCall();
  }

  void OnReadDone(bool ok) override {
    if (!ok) return;
    responses_.push_back(FromByteBuffer(response_));
    StartRead(&response_);
  }
  void OnDone(const grpc::Status& status) override { done_.set_value(status); }

  // Waits (bounded by the call's deadline) for the end of the call.
  grpc::Status Await() { return done_.get_future().get(); }
  // Valid after Await().
  const std::vector<std::string>& responses() const { return responses_; }

 private:
  std::unique_ptr<grpc::ClientContext> context_;
  grpc::ByteBuffer request_;
  grpc::ByteBuffer response_;
  std::vector<std::string> responses_;
  std::promise<grpc::Status> done_;
};

class DagdServerTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_NO_FATAL_FAILURE(stack_.Start()); }

  ServerStack stack_;
};

TEST_F(DagdServerTest, ListensOnAChosenPort) { EXPECT_GT(stack_.port(), 0); }

TEST_F(DagdServerTest, StartOnATakenPortIsUnavailable) {
  ServerOptions options;
  options.listen = "127.0.0.1:" + std::to_string(stack_.port());
  auto second = DagdServer::Start(options, stack_.store(), stack_.scheduler(), stack_.hub());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable)
      << "a second server shares port " << stack_.port();
  EXPECT_NE(second.status().message().find("--listen"), std::string::npos) << second.status();
}

TEST_F(DagdServerTest, ShutdownEndsOpenStreamsAfterTheDeadline) {
  v1::Run run = SubmitSpec(
      stack_.runs(), OneTaskWorkflow("forever", {"sh", "-c", "echo started; sleep 30"}, true));
  ASSERT_FALSE(run.id().empty());

  // Two streams that wait for a run that will not end by itself: a watch and a followed log,
  // each known to be open once it has delivered something.
  auto watch_context = ContextWithDeadline();
  v1::WatchRunRequest watch_request;
  watch_request.set_run_id(run.id());
  auto watch = stack_.runs()->WatchRun(watch_context.get(), watch_request);
  v1::RunEvent event;
  ASSERT_TRUE(watch->Read(&event));

  auto logs_context = ContextWithDeadline();
  v1::GetNodeLogsRequest logs_request;
  logs_request.set_run_id(run.id());
  logs_request.set_node("say");
  logs_request.set_follow(true);
  auto logs = stack_.runs()->GetNodeLogs(logs_context.get(), logs_request);
  v1::LogChunk chunk;
  ASSERT_TRUE(logs->Read(&chunk));
  EXPECT_EQ(chunk.data(), "started\n");

  const auto start = std::chrono::steady_clock::now();
  std::future<void> shutdown = std::async(std::launch::async, [&] { stack_.ShutdownServer(200); });
  while (watch->Read(&event)) {
  }
  while (logs->Read(&chunk)) {
  }
  EXPECT_FALSE(watch->Finish().ok());
  EXPECT_FALSE(logs->Finish().ok());
  ASSERT_EQ(shutdown.wait_for(seconds(20)), std::future_status::ready);
  // Ended by the shutdown, not by the client's 30 s deadline.
  EXPECT_LT(std::chrono::steady_clock::now() - start, seconds(20));
}

TEST_F(DagdServerTest, HealthCheckSaysServing) {
  grpc::GenericStub stub(stack_.channel());
  std::string response;
  // An empty HealthCheckRequest (service "" = the whole server) is zero bytes.
  grpc::Status status = GenericUnary(&stub, "/grpc.health.v1.Health/Check", "", &response);
  ASSERT_TRUE(status.ok()) << status.error_code() << ": " << status.error_message();
  // HealthCheckResponse{status: SERVING}: field 1, varint, value 1.
  EXPECT_EQ(response, std::string("\x08\x01", 2));
}

TEST_F(DagdServerTest, HealthCheckOfUnknownServiceIsNotFound) {
  grpc::GenericStub stub(stack_.channel());
  std::string response;
  // HealthCheckRequest{service: "nope"}: field 1, length-delimited.
  grpc::Status status = GenericUnary(&stub, "/grpc.health.v1.Health/Check",
                                     std::string("\x0a\x04nope", 6), &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(DagdServerTest, ReflectionListsDagdServices) {
  grpc::GenericStub stub(stack_.channel());
  // ServerReflectionRequest{list_services: "*"}: field 7, length-delimited.
  GenericBidiCall call(&stub, "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
                       std::string("\x3a\x01*", 3));
  grpc::Status status = call.Await();
  ASSERT_TRUE(status.ok()) << status.error_code() << ": " << status.error_message();
  ASSERT_EQ(call.responses().size(), 1u);
  const std::string& response = call.responses()[0];
  EXPECT_NE(response.find("dagd.v1.RunService"), std::string::npos);
  EXPECT_NE(response.find("dagd.v1.WorkflowService"), std::string::npos);
  EXPECT_NE(response.find("grpc.health.v1.Health"), std::string::npos);
}

TEST_F(DagdServerTest, RequestAboveTheReceiveLimitIsResourceExhausted) {
  v1::SubmitRunRequest request;
  request.set_spec_yaml(std::string((8 << 20) + 1024, '#'));
  v1::Run run;
  auto context = ContextWithDeadline();
  grpc::Status status = stack_.runs()->SubmitRun(context.get(), request, &run);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << status.error_message();

  // The server keeps serving.
  v1::ListRunsResponse listed;
  auto again = ContextWithDeadline();
  EXPECT_TRUE(stack_.runs()->ListRuns(again.get(), v1::ListRunsRequest(), &listed).ok());
}

TEST_F(DagdServerTest, SpecAboveTheSpecLimitIsInvalidArgument) {
  const std::string big(kMaxSpecBytes + 1024, '#');  // a YAML comment, under the 8 MiB cap
  ASSERT_LT(big.size(), size_t{8} << 20);
  const std::string limit = std::to_string(kMaxSpecBytes);

  v1::SubmitRunRequest submit;
  submit.set_spec_yaml(big);
  v1::Run run;
  auto context = ContextWithDeadline();
  grpc::Status status = stack_.runs()->SubmitRun(context.get(), submit, &run);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(status.error_message().find("limit is " + limit), std::string::npos)
      << status.error_message();

  v1::CreateWorkflowRequest create;
  create.set_yaml(big);
  v1::CreateWorkflowResponse created;
  auto create_context = ContextWithDeadline();
  status = stack_.workflows()->CreateWorkflow(create_context.get(), create, &created);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(status.error_message().find("limit is " + limit), std::string::npos)
      << status.error_message();
}

}  // namespace
}  // namespace dagd::server::testing
