// Suspend templates: nodes that wait for ResumeRun / SetNode or for their duration, with the
// cases of Argo's suspend-template, suspend-template-outputs and intermediate-parameters
// examples.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "engine/run_state.h"
#include "tests/engine/run_state_driver.h"

namespace dagd::engine::test {
namespace {

using ::testing::HasSubstr;

Template Suspend(const std::string& name, const std::string& duration = "") {
  Template t;
  t.name = name;
  t.type = TemplateType::kSuspend;
  t.suspend.emplace();
  t.suspend->duration = duration;
  return t;
}

Parameter Supplied(const std::string& name) {
  Parameter p;
  p.name = name;
  p.value_from.emplace();
  p.value_from->supplied = true;
  return p;
}

// suspend-template.yaml: build, approve (until resumed), delay (20 s), release.
std::shared_ptr<const Workflow> Release() {
  return MakeWorkflow({Steps("main", {{Task("build", "echo")},
                                      {Task("approve", "approve")},
                                      {Task("delay", "delay")},
                                      {Task("release", "echo")}}),
                       Leaf("echo"), Suspend("approve"), Suspend("delay", "20")});
}

TEST(RunStateSuspendTest, ANodeWaitsUntilResumedAndADurationResumesItself) {
  RunState state = MustCreate(Release());
  Driver driver(&state);
  driver.Run();  // build runs; approve waits with nothing to wake it
  ASSERT_FALSE(state.Done());
  const NodeState& approve = NodeOf(state, "run[1].approve");
  EXPECT_EQ(approve.type, NodeType::kSuspend);
  EXPECT_EQ(approve.phase, NodePhase::kRunning);
  EXPECT_FALSE(state.NextWakeup().has_value());

  ASSERT_TRUE(state.Resume("", driver.now()).ok());
  EXPECT_EQ(NodeOf(state, "run[1].approve").phase, NodePhase::kSucceeded);
  driver.Advance();
  const NodeState& delay = NodeOf(state, "run[2].delay");
  EXPECT_EQ(delay.phase, NodePhase::kRunning);
  EXPECT_EQ(delay.resume_at_ms, driver.now() + 20000);
  EXPECT_EQ(state.NextWakeup(), driver.now() + 20000);
  // Nothing resumes it early; at its time the run goes on by itself.
  driver.now() += 19999;
  driver.Advance();
  EXPECT_EQ(NodeOf(state, "run[2].delay").phase, NodePhase::kRunning);
  driver.Run();
  EXPECT_TRUE(state.Done());
  EXPECT_EQ(state.phase(), NodePhase::kSucceeded);
  EXPECT_EQ(NodeOf(state, "run[3].release").phase, NodePhase::kSucceeded);
}

TEST(RunStateSuspendTest, ResumingWhatIsNotSuspendedIsRefusedAndChangesNothing) {
  RunState state = MustCreate(Release());
  Driver driver(&state);
  driver.Run();
  EXPECT_EQ(state.Resume("run[0].build", driver.now()).code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(state.Resume("run[9].nope", driver.now()).code(), absl::StatusCode::kNotFound);
  ASSERT_TRUE(state.Resume("run[1].approve", driver.now()).ok());
  EXPECT_THAT(state.Resume("run[1].approve", driver.now()).message(),
              HasSubstr("node approve is not suspended: it is already Succeeded"));
  driver.Advance();
  state.TakeChangedNodes();
  // The delay is the only suspended node: resuming "every" node ends it early.
  ASSERT_TRUE(state.Resume("", driver.now()).ok());
  driver.Run();
  EXPECT_EQ(state.phase(), NodePhase::kSucceeded);
  EXPECT_EQ(state.Resume("", driver.now()).code(), absl::StatusCode::kFailedPrecondition);
}

// suspend-template-outputs.yaml: the release step prints the supplied message.
TEST(RunStateSuspendTest, SuppliedOutputsReachTheNextStep) {
  Template approve = Suspend("approve");
  approve.outputs.parameters.push_back(Supplied("message"));
  RunState state = MustCreate(MakeWorkflow(
      {Steps("main", {{Task("approve", "approve")},
                      {Task("release", "print", "",
                            {{"message", "{{steps.approve.outputs.parameters.message}}"}})}}),
       approve, Leaf("print", {"message"})}));
  Driver driver(&state);
  driver.Run();
  // Only declared supplied outputs can be set; a refused set changes nothing.
  absl::Status bad =
      state.SetSuspendedNode("run[0].approve", {{"mesage", "x"}}, std::nullopt, "", driver.now());
  EXPECT_EQ(bad.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.message(), HasSubstr("declares no such output with valueFrom.supplied; it "
                                       "has: message"));
  ASSERT_TRUE(state
                  .SetSuspendedNode("run[0].approve", {{"message", "approved by ops"}},
                                    std::nullopt, "", driver.now())
                  .ok());
  EXPECT_EQ(NodeOf(state, "run[0].approve").phase, NodePhase::kRunning);  // still waits
  ASSERT_TRUE(state.Resume("run[0].approve", driver.now()).ok());
  driver.Run();
  EXPECT_EQ(state.phase(), NodePhase::kSucceeded);
  EXPECT_EQ(NodeOf(state, "run[1].release").inputs.at("message"), "approved by ops");
}

TEST(RunStateSuspendTest, AnOutputNeverSuppliedErrorsUnlessADefaultOrInputGivesIt) {
  Template approve = Suspend("approve");
  approve.outputs.parameters.push_back(Supplied("message"));
  RunState state =
      MustCreate(MakeWorkflow({Steps("main", {{Task("approve", "approve")}}), approve}));
  Driver driver(&state);
  driver.Run();
  ASSERT_TRUE(state.Resume("", driver.now()).ok());
  driver.Run();
  EXPECT_EQ(NodeOf(state, "run[0].approve").phase, NodePhase::kError);
  EXPECT_THAT(NodeOf(state, "run[0].approve").message,
              HasSubstr("output parameter 'message' was not supplied and has no default"));
  EXPECT_EQ(state.phase(), NodePhase::kFailed);  // an errored step fails its steps node

  // intermediate-parameters.yaml: the input of the same name (default NO) answers for it.
  Template approval = Suspend("approval");
  Parameter input = Param("approve");
  input.default_value = "NO";
  approval.inputs.parameters.push_back(input);
  approval.outputs.parameters.push_back(Supplied("approve"));
  DagTask deploy = Task("deploy-prod", "echo");
  deploy.when = "{{steps.approval.outputs.parameters.approve}} == YES";
  RunState pipeline = MustCreate(MakeWorkflow(
      {Steps("main", {{Task("approval", "approval")}, {deploy}}), approval, Leaf("echo")}));
  Driver second(&pipeline);
  second.Run();
  ASSERT_TRUE(pipeline.Resume("", second.now()).ok());
  second.Run();
  EXPECT_EQ(pipeline.phase(), NodePhase::kSucceeded);
  EXPECT_EQ(NodeOf(pipeline, "run[0].approval").outputs.parameters.at("approve"), "NO");
  EXPECT_EQ(NodeOf(pipeline, "run[1].deploy-prod").phase, NodePhase::kSkipped);
}

TEST(RunStateSuspendTest, SetCanFailTheNodeAndStopFailsSuspendedNodes) {
  RunState state = MustCreate(Release());
  Driver driver(&state);
  driver.Run();
  EXPECT_EQ(
      state.SetSuspendedNode("run[1].approve", {}, NodePhase::kRunning, "", driver.now()).code(),
      absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE(
      state.SetSuspendedNode("run[1].approve", {}, NodePhase::kFailed, "rejected", driver.now())
          .ok());
  driver.Run();
  EXPECT_EQ(state.phase(), NodePhase::kFailed);
  EXPECT_EQ(NodeOf(state, "run[1].approve").message, "rejected");

  RunState stopped = MustCreate(Release());
  Driver other(&stopped);
  other.Run();
  stopped.Stop("Stopped with strategy 'Stop'", other.now());
  other.Run();
  EXPECT_TRUE(stopped.Done());
  EXPECT_EQ(NodeOf(stopped, "run[1].approve").phase, NodePhase::kFailed);
  EXPECT_EQ(stopped.Resume("", other.now()).code(), absl::StatusCode::kFailedPrecondition);
}

TEST(RunStateSuspendTest, ASuspendedEntrypointAndABadDuration) {
  RunState state = MustCreate(MakeWorkflow({Suspend("wait", "1m")}));
  EXPECT_EQ(NodeOf(state, "run").type, NodeType::kSuspend);
  EXPECT_EQ(NodeOf(state, "run").resume_at_ms, 1000 + 60000);
  Driver driver(&state);
  driver.Run();
  EXPECT_EQ(state.phase(), NodePhase::kSucceeded);

  RunState bad = MustCreate(MakeWorkflow({Suspend("wait", "soon")}));
  EXPECT_EQ(bad.phase(), NodePhase::kError);
  EXPECT_THAT(bad.message(), HasSubstr("suspend.duration:"));
}

TEST(RunStateSuspendTest, RestoreKeepsWaiting) {
  RunState state = MustCreate(Release());
  Driver driver(&state);
  driver.Run();
  ASSERT_TRUE(state.Resume("", driver.now()).ok());
  driver.Advance();
  std::vector<NodeState> nodes;
  for (const auto& [name, node] : state.nodes()) nodes.push_back(node);
  absl::StatusOr<RunState> restored =
      RunState::Restore(Release(), {}, "run", std::move(nodes), StopStrategy::kNone);
  ASSERT_TRUE(restored.ok()) << restored.status();
  EXPECT_EQ(restored->NextWakeup(), state.NextWakeup());
  Driver after(&*restored, driver.now());
  after.Run();
  EXPECT_EQ(restored->phase(), NodePhase::kSucceeded);
}

}  // namespace
}  // namespace dagd::engine::test
