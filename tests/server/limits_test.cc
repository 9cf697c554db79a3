// The limits of dagd's --max-* flags on the real server: each is configurable and, when reached,
// answers with an error that names the limit and the flag, and changes nothing it should not.
#include <gtest/gtest.h>

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "tests/server/server_stack.h"

namespace dagd::server::testing {
namespace {

constexpr char kSuspended[] = R"(apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {generateName: wait-}
spec:
  entrypoint: main
  templates:
  - name: main
    suspend: {}
)";

TEST(LimitsTest, AWorkflowOverMaxWorkflowBytesIsRefusedAndNothingIsStored) {
  ServerStack stack;
  ServerOptions options;
  options.max_workflow_bytes = 300;
  ASSERT_NO_FATAL_FAILURE(stack.Start(options));
  const std::string big = std::string(kSuspended) + "# " + std::string(400, 'x') + "\n";
  v1::SubmitRunRequest submit;
  submit.set_spec_yaml(big);
  v1::Run run;
  grpc::Status status = stack.runs()->SubmitRun(ContextWithDeadline().get(), submit, &run);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(status.error_message().find("the limit is 300 (dagd --max-workflow-bytes)"),
            std::string::npos)
      << status.error_message();
  v1::CreateWorkflowRequest create;
  create.set_yaml(big);
  v1::CreateWorkflowResponse created;
  status = stack.workflows()->CreateWorkflow(ContextWithDeadline().get(), create, &created);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  v1::ListRunsResponse runs;
  ASSERT_TRUE(
      stack.runs()->ListRuns(ContextWithDeadline().get(), v1::ListRunsRequest(), &runs).ok());
  EXPECT_EQ(runs.runs_size(), 0);
  // Under the limit it runs.
  submit.set_spec_yaml(kSuspended);
  EXPECT_TRUE(stack.runs()->SubmitRun(ContextWithDeadline().get(), submit, &run).ok());
}

TEST(LimitsTest, AnExpressionOverTheLimitsIsRefusedBeforeAnythingRuns) {
  ServerStack stack;
  ServerOptions options;
  options.expression_limits = {.max_bytes = 100, .max_nesting = 3};
  ASSERT_NO_FATAL_FAILURE(stack.Start(options));
  const std::string spec = R"(apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {generateName: deep-}
spec:
  entrypoint: main
  templates:
  - name: main
    steps:
    - - name: a
        template: echo
        arguments: {parameters: [{name: x, value: "{{=((((1))))}}"}]}
  - name: echo
    inputs: {parameters: [{name: x}]}
    container: {image: alpine, command: [echo, "{{inputs.parameters.x}}"]}
)";
  v1::SubmitRunRequest submit;
  submit.set_spec_yaml(spec);
  submit.set_file_name("deep.yaml");
  v1::Run run;
  grpc::Status status = stack.runs()->SubmitRun(ContextWithDeadline().get(), submit, &run);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(status.error_message(),
            "deep.yaml:11: a {{= }} expression nested 4 brackets deep; the limit is 3 (dagd "
            "--max-expression-nesting)");
  v1::CreateWorkflowRequest create;
  create.set_yaml(std::string(spec).replace(spec.find("generateName: deep-"), 19, "name: deep"));
  v1::CreateWorkflowResponse created;
  status = stack.workflows()->CreateWorkflow(ContextWithDeadline().get(), create, &created);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  v1::ListRunsResponse runs;
  ASSERT_TRUE(
      stack.runs()->ListRuns(ContextWithDeadline().get(), v1::ListRunsRequest(), &runs).ok());
  EXPECT_EQ(runs.runs_size(), 0);
}

TEST(LimitsTest, OneCallerMayHaveMaxWatchesPerPrincipalStreamsOpen) {
  ServerStack stack;
  ServerOptions options;
  options.max_watches_per_principal = 2;
  ASSERT_NO_FATAL_FAILURE(stack.Start(options));
  const v1::Run run = SubmitSpec(stack.runs(), kSuspended);
  ASSERT_FALSE(run.id().empty());
  v1::WatchRunRequest request;
  request.set_run_id(run.id());
  struct Open {
    grpc::ClientContext context;
    std::unique_ptr<grpc::ClientReader<v1::RunEvent>> reader;
  };
  std::vector<std::unique_ptr<Open>> open;
  for (int i = 0; i < 2; ++i) {
    auto watch = std::make_unique<Open>();
    watch->reader = stack.runs()->WatchRun(&watch->context, request);
    v1::RunEvent event;
    ASSERT_TRUE(watch->reader->Read(&event)) << "watch " << i << " did not start";
    open.push_back(std::move(watch));
  }
  {
    grpc::ClientContext context;
    auto reader = stack.runs()->WatchRun(&context, request);
    v1::RunEvent event;
    EXPECT_FALSE(reader->Read(&event));
    grpc::Status status = reader->Finish();
    EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
    EXPECT_NE(status.error_message().find("anonymous has 2 streams open"), std::string::npos)
        << status.error_message();
    EXPECT_NE(status.error_message().find("--max-watches-per-principal"), std::string::npos);
  }
  // Closing one frees its place (the server releases it once the stream is done).
  open.back()->context.TryCancel();
  open.back()->reader->Finish().IgnoreError();
  open.pop_back();
  const auto deadline = std::chrono::steady_clock::now() + kDeadline;
  bool reopened = false;
  while (!reopened && std::chrono::steady_clock::now() < deadline) {
    grpc::ClientContext context;
    auto reader = stack.runs()->WatchRun(&context, request);
    v1::RunEvent event;
    reopened = reader->Read(&event);
    context.TryCancel();
    reader->Finish().IgnoreError();
    if (!reopened) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_TRUE(reopened);
  for (auto& watch : open) {
    watch->context.TryCancel();
    watch->reader->Finish().IgnoreError();
  }
}

TEST(LimitsTest, OutputPastMaxLogBytesPerAttemptIsDroppedWithANote) {
  ServerStack stack;
  ASSERT_NO_FATAL_FAILURE(stack.Start(ServerOptions(), [](scheduler::SchedulerOptions* options) {
    options->max_log_bytes_per_attempt = 1000;
  }));
  const v1::Run run =
      RunToEnd(stack.runs(), {"/bin/sh", "-c", "head -c 5000 /dev/zero | tr '\\000' a; echo"});
  ASSERT_EQ(run.phase(), v1::PHASE_SUCCEEDED);
  const LogsResult logs = ReadNodeLogs(stack.runs(), run.id(), "say", /*follow=*/false);
  ASSERT_TRUE(logs.status.ok()) << logs.status.error_message();
  EXPECT_EQ(logs.text.substr(0, 1000), std::string(1000, 'a'));
  EXPECT_NE(logs.text.find("more than 1000 bytes of output; the rest is not stored "
                           "(dagd --max-log-bytes-per-attempt)"),
            std::string::npos)
      << logs.text.size();
  EXPECT_LT(logs.text.size(), 1200u);
}

TEST(InjectionTest, AParameterNeverBecomesAShellCommandOfTheLocalRunner) {
  ServerStack stack;
  ASSERT_NO_FATAL_FAILURE(stack.Start());
  const std::string marker = stack.dir() + "/pwned";
  const std::string hostile =
      "$(touch " + marker + "); `touch " + marker + "` && touch " + marker + " | x; '\"";
  const std::string spec = R"(apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {generateName: hostile-}
spec:
  entrypoint: main
  arguments: {parameters: [{name: x}]}
  templates:
  - name: main
    container: {image: alpine, command: [echo, "{{workflow.parameters.x}}"]}
)";
  v1::SubmitRunRequest submit;
  submit.set_spec_yaml(spec);
  (*submit.mutable_parameters())["x"] = hostile;
  v1::Run run;
  ASSERT_TRUE(stack.runs()->SubmitRun(ContextWithDeadline().get(), submit, &run).ok());
  WatchToEnd(stack.runs(), run.id());
  const LogsResult logs = ReadNodeLogs(stack.runs(), run.id(), run.id(), /*follow=*/false);
  ASSERT_TRUE(logs.status.ok()) << logs.status.error_message();
  EXPECT_EQ(logs.text, hostile + "\n");  // echo got it as one argument, untouched
  EXPECT_FALSE(std::filesystem::exists(marker)) << "a parameter ran as a shell command";
}

}  // namespace
}  // namespace dagd::server::testing
