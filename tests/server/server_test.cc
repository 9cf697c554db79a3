// DagdServer: the standard health service, server reflection, and the request size limits.
// Debian's libgrpc++ ships no generated client stubs for health or reflection, so these calls go
// through grpc::GenericStub with hand-encoded protobuf bytes.
#include <grpcpp/generic/generic_stub.h>
#include <gtest/gtest.h>

#include <climits>
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

TEST_F(DagdServerTest, SpecAboveTheSpecLimitIsInvalidArgument) {
  const std::string big(kMaxSpecBytes + 1024, '#');  // a YAML comment, under the receive limit
  ASSERT_LT(static_cast<int64_t>(big.size()), MaxRequestBytes(storage::BundleLimits()));
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

// The largest request within the limits: a spec of kMaxSpecBytes and a bundle with the most
// files, each with the longest path and all mode bits, holding the most bytes.
template <typename Request>
Request LargestRequest(const storage::BundleLimits& limits, v1::Bundle* (Request::*bundle)()) {
  Request request;
  v1::Bundle* files = (request.*bundle)();
  for (int64_t i = 0; i < limits.max_files; ++i) {
    v1::BundleFile* file = files->add_files();
    std::string path = std::to_string(i) + "/";
    path.resize(storage::kMaxBundlePathBytes, 'p');
    file->set_path(path);
    file->set_mode(0777);
  }
  files->mutable_files(0)->set_content(std::string(limits.max_bytes, 'c'));
  return request;
}

TEST(MaxRequestBytesTest, LetsTheLargestSpecAndBundleThrough) {
  for (const storage::BundleLimits& limits :
       {storage::BundleLimits(), storage::BundleLimits{.max_bytes = 1 << 20, .max_files = 50}}) {
    auto submit = LargestRequest(limits, &v1::SubmitRunRequest::mutable_bundle);
    submit.set_spec_yaml(std::string(kMaxSpecBytes, '#'));
    submit.set_file_name(std::string(4096, 'f'));
    submit.set_request_id(std::string(1024, 'r'));
    EXPECT_LE(static_cast<int64_t>(submit.ByteSizeLong()), MaxRequestBytes(limits))
        << limits.max_bytes;
    auto create = LargestRequest(limits, &v1::CreateWorkflowRequest::mutable_bundle);
    create.set_yaml(std::string(kMaxSpecBytes, '#'));
    create.set_file_name(std::string(4096, 'f'));
    EXPECT_LE(static_cast<int64_t>(create.ByteSizeLong()), MaxRequestBytes(limits))
        << limits.max_bytes;
  }
  // The defaults: 32 MiB of files, a 4 MiB spec, 10000 paths — well above gRPC's 4 MiB default.
  EXPECT_GT(MaxRequestBytes(storage::BundleLimits()), int64_t{36} << 20);
  // Limits beyond what gRPC can receive stop at its maximum, without overflowing.
  EXPECT_EQ(MaxRequestBytes({.max_bytes = int64_t{1} << 40, .max_files = 1}), INT_MAX);
  EXPECT_EQ(MaxRequestBytes({.max_bytes = 1, .max_files = INT64_MAX}), INT_MAX);
}

// A server whose bundles may hold 1 MiB in at most 50 files.
class SmallBundleLimitsTest : public ::testing::Test {
 protected:
  static constexpr storage::BundleLimits kLimits{.max_bytes = 1 << 20, .max_files = 50};

  void SetUp() override {
    ServerOptions options;
    options.bundle_limits = kLimits;
    ASSERT_NO_FATAL_FAILURE(stack_.Start(options));
  }

  // `count` files of `bytes` bytes in all; file i is "data/i.txt".
  static v1::Bundle Bundle(int count, int64_t bytes) {
    v1::Bundle bundle;
    for (int i = 0; i < count; ++i) {
      v1::BundleFile* file = bundle.add_files();
      file->set_path("data/" + std::to_string(i) + ".txt");
      file->set_content(std::string(bytes / count + (i < bytes % count ? 1 : 0), 'x'));
    }
    return bundle;
  }

  grpc::Status SubmitWith(const v1::Bundle& bundle, v1::Run* run) {
    v1::SubmitRunRequest request;
    request.set_spec_yaml(OneTaskWorkflow("bundled", {"sh", "-c", "wc -c < data/0.txt"}, true));
    *request.mutable_bundle() = bundle;
    auto context = ContextWithDeadline();
    return stack_.runs()->SubmitRun(context.get(), request, run);
  }

  grpc::Status CreateWith(const v1::Bundle& bundle) {
    v1::CreateWorkflowRequest request;
    request.set_yaml(OneTaskWorkflow("bundled", {"sh", "-c", "wc -c < data/0.txt"}));
    *request.mutable_bundle() = bundle;
    v1::CreateWorkflowResponse response;
    auto context = ContextWithDeadline();
    return stack_.workflows()->CreateWorkflow(context.get(), request, &response);
  }

  void ExpectNothingStored() {
    v1::ListRunsResponse runs;
    auto runs_context = ContextWithDeadline();
    ASSERT_TRUE(stack_.runs()->ListRuns(runs_context.get(), v1::ListRunsRequest(), &runs).ok());
    EXPECT_EQ(runs.runs_size(), 0);
    v1::ListWorkflowsResponse workflows;
    auto workflows_context = ContextWithDeadline();
    ASSERT_TRUE(stack_.workflows()
                    ->ListWorkflows(workflows_context.get(), v1::ListWorkflowsRequest(), &workflows)
                    .ok());
    EXPECT_EQ(workflows.workflows_size(), 0);
  }

  ServerStack stack_;
};

TEST_F(SmallBundleLimitsTest, ABundleAtTheLimitsIsStoredAndRuns) {
  const v1::Bundle bundle = Bundle(kLimits.max_files, kLimits.max_bytes);
  v1::Run run;
  grpc::Status status = SubmitWith(bundle, &run);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(run.bundle_digest().size(), 64u);
  WatchResult watched = WatchToEnd(stack_.runs(), run.id());
  ASSERT_TRUE(watched.status.ok()) << watched.status.error_message();
  v1::Run finished = GetRun(stack_.runs(), run.id());
  EXPECT_EQ(finished.phase(), v1::PHASE_SUCCEEDED);
  const v1::Node* say = FindNode(finished, "say");
  ASSERT_NE(say, nullptr);
  // 1 MiB over 50 files: the first of them holds 20972 bytes, in the attempt's directory.
  EXPECT_EQ(say->result(), "20972") << say->message();
  grpc::Status created = CreateWith(bundle);
  EXPECT_TRUE(created.ok()) << created.error_message();
}

TEST_F(SmallBundleLimitsTest, ABundleOverALimitIsInvalidArgumentNamingItAndStoresNothing) {
  v1::Run run;
  for (const auto& [bundle, words] :
       {std::pair{Bundle(1, kLimits.max_bytes + 1), std::string("--max-bundle-bytes")},
        std::pair{Bundle(kLimits.max_files + 1, 100), std::string("--max-bundle-files")}}) {
    grpc::Status submitted = SubmitWith(bundle, &run);
    EXPECT_EQ(submitted.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_NE(submitted.error_message().find(words), std::string::npos)
        << submitted.error_message();
    EXPECT_EQ(submitted.error_message().rfind("bundle: ", 0), 0u) << submitted.error_message();
    grpc::Status created = CreateWith(bundle);
    EXPECT_EQ(created.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_NE(created.error_message().find(words), std::string::npos) << created.error_message();
  }
  ExpectNothingStored();
}

TEST_F(SmallBundleLimitsTest, ARequestOverTheReceiveLimitIsResourceExhausted) {
  v1::Run run;
  grpc::Status status = SubmitWith(Bundle(1, MaxRequestBytes(kLimits) + 1), &run);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << status.error_message();
  EXPECT_NE(status.error_message().find("larger than max"), std::string::npos)
      << status.error_message();
  ExpectNothingStored();

  // The server keeps serving.
  grpc::Status small = SubmitWith(Bundle(1, 10), &run);
  EXPECT_TRUE(small.ok()) << small.error_message();
}

}  // namespace
}  // namespace dagd::server::testing
