// Suspend templates over real gRPC: ResumeRun and SetNode on a run of the real scheduler,
// committed before they answer, and their refusals.
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <thread>

#include "absl/strings/match.h"
#include "tests/server/server_stack.h"

namespace dagd::server::testing {
namespace {

using std::chrono::milliseconds;

// As Argo's suspend-template-outputs.yaml, with a second suspended step.
constexpr char kApproval[] = R"(apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata:
  generateName: approval-
spec:
  entrypoint: main
  templates:
  - name: main
    steps:
    - - name: approve
        template: approve
      - name: wait
        template: wait
    - - name: release
        template: print
        arguments:
          parameters:
          - name: message
            value: "{{steps.approve.outputs.parameters.message}}"
  - name: approve
    suspend: {}
    outputs:
      parameters:
      - name: message
        valueFrom:
          supplied: {}
  - name: wait
    suspend: {}
  - name: print
    inputs:
      parameters:
      - name: message
    container:
      image: busybox
      command: [echo, "{{inputs.parameters.message}}"]
)";

class SuspendTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_NO_FATAL_FAILURE(stack_.Start()); }

  // Polls GetRun until node `display_name` exists and is Running (a suspend node waits so).
  bool WaitUntilSuspended(const std::string& run_id, const std::string& display_name) {
    const auto deadline = std::chrono::steady_clock::now() + kDeadline;
    while (std::chrono::steady_clock::now() < deadline) {
      v1::Run run = GetRun(stack_.runs(), run_id);
      const v1::Node* node = FindNode(run, display_name);
      if (node != nullptr && node->phase() == v1::PHASE_RUNNING) {
        EXPECT_EQ(node->type(), v1::NODE_TYPE_SUSPEND);
        return true;
      }
      std::this_thread::sleep_for(milliseconds(20));
    }
    return false;
  }

  grpc::Status Resume(const std::string& run_id, const std::string& node) {
    v1::ResumeRunRequest request;
    request.set_run_id(run_id);
    request.set_node(node);
    v1::Run out;
    return stack_.runs()->ResumeRun(ContextWithDeadline().get(), request, &out);
  }

  grpc::Status Set(const std::string& run_id, const std::string& node,
                   std::map<std::string, std::string> outputs,
                   v1::Phase phase = v1::PHASE_UNSPECIFIED) {
    v1::SetNodeRequest request;
    request.set_run_id(run_id);
    request.set_node(node);
    request.mutable_output_parameters()->insert(outputs.begin(), outputs.end());
    request.set_phase(phase);
    v1::Run out;
    return stack_.runs()->SetNode(ContextWithDeadline().get(), request, &out);
  }

  ServerStack stack_;
};

TEST_F(SuspendTest, SuppliedOutputsAndResumeCarryTheRunToItsEnd) {
  v1::Run run = SubmitSpec(stack_.runs(), kApproval);
  ASSERT_TRUE(WaitUntilSuspended(run.id(), "approve"));
  ASSERT_TRUE(WaitUntilSuspended(run.id(), "wait"));

  // Refusals change nothing.
  grpc::Status status = Set(run.id(), "approve", {{"mesage", "x"}});
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_TRUE(absl::StrContains(status.error_message(), "it has: message"))
      << status.error_message();
  EXPECT_EQ(Set(run.id(), "nope", {}).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(Set(run.id(), "approve", {}, v1::PHASE_SKIPPED).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);

  // The supplied value is stored at once; the node keeps waiting.
  status = Set(run.id(), "approve", {{"message", "ship it"}});
  ASSERT_TRUE(status.ok()) << status.error_message();
  v1::Run after_set = GetRun(stack_.runs(), run.id());
  EXPECT_EQ(FindNode(after_set, "approve")->phase(), v1::PHASE_RUNNING);
  EXPECT_EQ(FindNode(after_set, "approve")->output_parameters().at("message"), "ship it");

  // Resuming one node leaves the other waiting.
  status = Resume(run.id(), "approve");
  ASSERT_TRUE(status.ok()) << status.error_message();
  v1::Run after_one = GetRun(stack_.runs(), run.id());
  EXPECT_EQ(FindNode(after_one, "approve")->phase(), v1::PHASE_SUCCEEDED);
  EXPECT_EQ(FindNode(after_one, "wait")->phase(), v1::PHASE_RUNNING);
  EXPECT_EQ(Resume(run.id(), "approve").error_code(), grpc::StatusCode::FAILED_PRECONDITION);

  status = Resume(run.id(), "");
  ASSERT_TRUE(status.ok()) << status.error_message();
  WatchResult watched = WatchToEnd(stack_.runs(), run.id());
  ASSERT_TRUE(watched.status.ok()) << watched.status.error_message();
  EXPECT_TRUE(std::any_of(watched.events.begin(), watched.events.end(),
                          [](const v1::RunEvent& e) { return e.type() == "NodeSetRequested"; }));
  EXPECT_TRUE(std::any_of(watched.events.begin(), watched.events.end(),
                          [](const v1::RunEvent& e) { return e.type() == "RunResumeRequested"; }));
  v1::Run finished = GetRun(stack_.runs(), run.id());
  EXPECT_EQ(finished.phase(), v1::PHASE_SUCCEEDED) << finished.message();
  EXPECT_EQ(FindNode(finished, "release")->result(), "ship it");
  EXPECT_EQ(Resume(run.id(), "").error_code(), grpc::StatusCode::FAILED_PRECONDITION);
}

TEST_F(SuspendTest, SetCanEndTheNodeFailed) {
  v1::Run run = SubmitSpec(stack_.runs(), kApproval);
  ASSERT_TRUE(WaitUntilSuspended(run.id(), "approve"));
  ASSERT_TRUE(Set(run.id(), "approve", {}, v1::PHASE_FAILED).ok());
  ASSERT_TRUE(Resume(run.id(), "wait").ok());
  WatchResult watched = WatchToEnd(stack_.runs(), run.id());
  ASSERT_TRUE(watched.status.ok());
  v1::Run finished = GetRun(stack_.runs(), run.id());
  EXPECT_EQ(finished.phase(), v1::PHASE_FAILED);
  EXPECT_EQ(FindNode(finished, "release"), nullptr);
}

TEST_F(SuspendTest, ResumeOfAnUnknownRunIsNotFound) {
  EXPECT_EQ(Resume("no-such-run", "").error_code(), grpc::StatusCode::NOT_FOUND);
}

}  // namespace
}  // namespace dagd::server::testing
