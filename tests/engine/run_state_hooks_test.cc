// RunState on lifecycle hooks (`hooks.NAME` with an `expression`) of tasks, steps and the
// workflow, on exit hooks with an expression — Argo v4.2's rules (docs/lifecyclehook.md), as
// engine/run_state.h states them — and on Argo's stop, after which exit hooks still run.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "engine/run_state.h"
#include "tests/engine/run_state_driver.h"

namespace dagd::engine {
namespace {

using namespace test;  // NOLINT(build/namespaces): the helpers of the RunState tests
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;

LifecycleHook Hook(const std::string& name, const std::string& expression, const std::string& tmpl,
                   std::vector<std::pair<std::string, std::string>> arguments = {}) {
  LifecycleHook hook;
  hook.name = name;
  hook.expression = expression;
  hook.template_name = tmpl;
  for (auto& [key, value] : arguments) hook.arguments.parameters.push_back(Param(key, value));
  return hook;
}

TEST(RunStateHooksTest, StepHooksRunWhileTheStepRunsAndWhenItSucceeds) {
  // Argo's life-cycle-hooks-tmpl-level.yaml, with a pod for its http template.
  DagTask step1 = Task("step-1", "echo");
  step1.hooks = {Hook("running", "steps[\"step-1\"].status == \"Running\"", "http"),
                 Hook("success", "steps[\"step-1\"].status == \"Succeeded\"", "http")};
  DagTask step2 = Task("step2", "echo");
  step2.hooks = {Hook("running", "steps.step2.status == \"Running\"", "http"),
                 Hook("success", "steps.step2.status == \"Succeeded\"", "http")};
  RunState state =
      MustCreate(MakeWorkflow({Steps("main", {{step1}, {step2}}), Leaf("echo"), Leaf("http")}));
  Driver driver(&state);
  EXPECT_THAT(driver.Run(), ElementsAre(ElementsAre("run[0].step-1", "run[0].step-1.hooks.running"),
                                        ElementsAre("run[0].step-1.hooks.success"),
                                        ElementsAre("run[1].step2", "run[1].step2.hooks.running"),
                                        ElementsAre("run[1].step2.hooks.success")));
  EXPECT_EQ(state.phase(), NodePhase::kSucceeded);
  const NodeState& hook = NodeOf(state, "run[0].step-1.hooks.running");
  EXPECT_EQ(hook.parent, "run[0].step-1");
  EXPECT_EQ(hook.display_name, "step-1.hooks.running");
  EXPECT_EQ(hook.template_name, "http");
  EXPECT_EQ(hook.phase, NodePhase::kSucceeded);
}

TEST(RunStateHooksTest, DependentsWaitForStartedHooksAndTheExitHookComesLast) {
  DagTask a = Task("A", "echo");
  a.hooks = {Hook("running", "tasks.A.status == 'Running'", "hook"),
             Hook("failed", "tasks.A.status == 'Failed'", "hook")};
  LifecycleHook exit = Hook("exit", "", "bye");
  a.exit_hook = exit;
  RunState state = MustCreate(MakeWorkflow(
      {Dag("main", {a, Task("B", "echo", "A")}), Leaf("echo"), Leaf("hook"), Leaf("bye")}));
  Driver driver(&state);
  EXPECT_THAT(driver.Advance(), ElementsAre("run.A", "run.A.hooks.running"));
  driver.Finish("run.A");
  // A has ended, but its running hook has not: no exit hook, no B.
  EXPECT_THAT(driver.Advance(), IsEmpty());
  driver.Finish("run.A.hooks.running");
  EXPECT_THAT(driver.Advance(), ElementsAre("run.A.onExit"));
  driver.Finish("run.A.onExit");
  EXPECT_THAT(driver.Advance(), ElementsAre("run.B"));
  driver.Run();
  EXPECT_EQ(state.phase(), NodePhase::kSucceeded);
  EXPECT_EQ(state.nodes().count("run.A.hooks.failed"), 0u);  // its expression never held
}

TEST(RunStateHooksTest, AHookFiresOnFailureAndItsOwnFailureChangesNothing) {
  DagTask a = Task("A", "echo");
  a.continue_on.failed = true;
  a.hooks = {Hook("failed", "tasks.A.status == 'Failed'", "hook",
                  {{"x", "{{tasks.A.status}} {{workflow.status}}"}})};
  RunState state = MustCreate(MakeWorkflow(
      {Dag("main", {a, Task("B", "echo", "A.Failed")}), Leaf("echo"), Leaf("hook", {"x"})}));
  Driver driver(&state);
  driver.Script("A", {Fail()});
  driver.Script("A.hooks.failed", {Fail("exit code 3")});
  EXPECT_THAT(driver.Run(), ElementsAre(ElementsAre("run.A"), ElementsAre("run.A.hooks.failed"),
                                        ElementsAre("run.B")));
  EXPECT_EQ(NodeOf(state, "run.A.hooks.failed").inputs.at("x"), "Failed Running");
  EXPECT_EQ(NodeOf(state, "run.A.hooks.failed").phase, NodePhase::kFailed);
  EXPECT_EQ(state.phase(), NodePhase::kSucceeded);
}

TEST(RunStateHooksTest, AHookInErrorFailsItsDagWhateverContinueOnSays) {
  DagTask a = Task("A", "echo");
  a.continue_on.error = true;
  a.continue_on.failed = true;
  a.hooks = {Hook("done", "tasks.A.status == 'Succeeded'", "hook")};  // `x` is not passed
  RunState state = MustCreate(
      MakeWorkflow({Dag("main", {a, Task("B", "echo", "A")}), Leaf("echo"), Leaf("hook", {"x"})}));
  Driver driver(&state);
  driver.Run();
  const NodeState& hook = NodeOf(state, "run.A.hooks.done");
  EXPECT_EQ(hook.phase, NodePhase::kError);
  EXPECT_EQ(NodeOf(state, "run.B").phase, NodePhase::kSucceeded);  // dependents still run
  EXPECT_EQ(state.phase(), NodePhase::kFailed);
  EXPECT_THAT(state.message(), HasSubstr("hook 'run.A.hooks.done' errored: "));
  EXPECT_THAT(state.message(), HasSubstr("inputs.parameters.x was not supplied"));
}

TEST(RunStateHooksTest, AHookInErrorFailsItsStepGroup) {
  DagTask step = Task("a", "echo");
  step.hooks = {Hook("bad", "steps.a.status ==", "hook")};  // does not parse
  RunState state = MustCreate(
      MakeWorkflow({Steps("main", {{step}, {Task("b", "echo")}}), Leaf("echo"), Leaf("hook")}));
  Driver driver(&state);
  driver.Run();
  const NodeState& hook = NodeOf(state, "run[0].a.hooks.bad");
  EXPECT_EQ(hook.phase, NodePhase::kError);
  EXPECT_THAT(hook.message, HasSubstr("hooks.bad.expression: expression 'steps.a.status =='"));
  EXPECT_EQ(state.nodes().count("run[1]"), 0u);  // later groups never start
  EXPECT_EQ(state.phase(), NodePhase::kFailed);
}

TEST(RunStateHooksTest, AnExpressionThatIsNotABooleanIsAnError) {
  DagTask a = Task("A", "echo");
  a.hooks = {Hook("odd", "tasks.A.status", "hook")};
  RunState state = MustCreate(MakeWorkflow({Dag("main", {a}), Leaf("echo"), Leaf("hook")}));
  Driver driver(&state);
  driver.Run();
  EXPECT_THAT(NodeOf(state, "run.A.hooks.odd").message,
              HasSubstr("expression 'tasks.A.status' gave Pending, not true or false"));
}

TEST(RunStateHooksTest, EachItemOfAFanOutRunsItsOwnHooks) {
  DagTask a = Task("A", "echo");
  a.with_items = {"x", "y"};
  a.hooks = {Hook("done", "tasks.A.status == 'Succeeded'", "hook", {{"x", "{{item}}"}})};
  RunState state = MustCreate(MakeWorkflow({Dag("main", {a}), Leaf("echo"), Leaf("hook", {"x"})}));
  Driver driver(&state);
  driver.Script("A(1:y)", {Fail()});
  driver.Run();
  EXPECT_EQ(NodeOf(state, "run.A(0:x).hooks.done").inputs.at("x"), "x");
  EXPECT_EQ(NodeOf(state, "run.A(0:x).hooks.done").parent, "run.A(0:x)");
  EXPECT_EQ(state.nodes().count("run.A(1:y).hooks.done"), 0u);
}

TEST(RunStateHooksTest, AnExitHookRunsOnlyIfItsExpressionHolds) {
  DagTask a = Task("A", "echo");
  a.exit_hook = Hook("exit", "tasks.A.status == 'Failed'", "bye");
  DagTask b = Task("B", "echo");
  b.exit_hook = Hook("exit", "tasks.B.status == 'Failed'", "bye");
  b.continue_on.failed = true;
  RunState state = MustCreate(MakeWorkflow(
      {Dag("main", {a, b, Task("C", "echo", "A && B.Failed")}), Leaf("echo"), Leaf("bye")}));
  Driver driver(&state);
  driver.Script("B", {Fail()});
  EXPECT_THAT(driver.Run(), ElementsAre(UnorderedElementsAre("run.A", "run.B"),
                                        ElementsAre("run.B.onExit"), ElementsAre("run.C")));
  EXPECT_EQ(state.nodes().count("run.A.onExit"), 0u);
  EXPECT_EQ(state.phase(), NodePhase::kSucceeded);
}

std::shared_ptr<Workflow> OnePodWorkflow() {
  auto wf = std::make_shared<Workflow>();
  wf->name = "wf";
  wf->entrypoint = "main";
  wf->templates = {Leaf("main"), Leaf("hook", {"x"}), Leaf("bye")};
  return wf;
}

TEST(RunStateHooksTest, WorkflowHooksRunOnTheWorkflowsStatus) {
  // Argo's life-cycle-hooks-wf-level.yaml, plus a hook on success, with pods for its http.
  std::shared_ptr<Workflow> wf = OnePodWorkflow();
  wf->hooks = {Hook("running", "workflow.status == \"Running\"", "hook", {{"x", "r"}}),
               Hook("succeeded", "workflow.status == \"Succeeded\"", "hook", {{"x", "s"}}),
               Hook("failed", "workflow.status == \"Failed\"", "hook", {{"x", "f"}})};
  wf->exit_hook = Hook("exit", "", "bye");
  RunState state = MustCreate(wf);
  Driver driver(&state);
  EXPECT_THAT(driver.Advance(), ElementsAre("run", "run.hooks.running"));
  driver.Finish("run");
  // The root has ended; the succeeded hook starts, and the exit hook waits for both.
  EXPECT_THAT(driver.Advance(), ElementsAre("run.hooks.succeeded"));
  EXPECT_EQ(state.phase(), NodePhase::kRunning);
  driver.Finish("run.hooks.running");
  driver.Finish("run.hooks.succeeded");
  EXPECT_THAT(driver.Advance(), ElementsAre("run.onExit"));
  driver.Finish("run.onExit");
  driver.Run();
  EXPECT_TRUE(state.Done());
  EXPECT_EQ(state.phase(), NodePhase::kSucceeded);
  EXPECT_EQ(NodeOf(state, "run.hooks.running").parent, "");
  EXPECT_EQ(NodeOf(state, "run.hooks.succeeded").inputs.at("x"), "s");
  EXPECT_EQ(state.nodes().count("run.hooks.failed"), 0u);
}

TEST(RunStateHooksTest, AWorkflowExitHookWhoseExpressionIsFalseDoesNotRun) {
  std::shared_ptr<Workflow> wf = OnePodWorkflow();
  wf->exit_hook = Hook("exit", "workflow.status != 'Succeeded'", "bye");
  RunState state = MustCreate(wf);
  Driver driver(&state);
  EXPECT_THAT(driver.Run(), ElementsAre(ElementsAre("run")));
  EXPECT_TRUE(state.Done());
  EXPECT_EQ(state.phase(), NodePhase::kSucceeded);
  EXPECT_EQ(state.nodes().count("run.onExit"), 0u);
}

TEST(RunStateHooksTest, AWorkflowHookInErrorFailsASucceededRun) {
  std::shared_ptr<Workflow> wf = OnePodWorkflow();
  wf->hooks = {Hook("done", "workflow.status == 'Succeeded'", "hook")};  // `x` is not passed
  RunState state = MustCreate(wf);
  Driver driver(&state);
  driver.Run();
  EXPECT_EQ(NodeOf(state, "run").phase, NodePhase::kSucceeded);
  EXPECT_EQ(NodeOf(state, "run.hooks.done").phase, NodePhase::kError);
  EXPECT_EQ(state.phase(), NodePhase::kFailed);
  EXPECT_THAT(state.message(), HasSubstr("hook 'run.hooks.done' errored"));
}

TEST(RunStateHooksTest, NoHookStartsAfterStopAndRestoreKeepsStartedOnes) {
  DagTask a = Task("A", "echo");
  a.hooks = {Hook("running", "tasks.A.status == 'Running'", "hook", {{"x", "1"}}),
             Hook("failed", "tasks.A.status == 'Failed'", "hook", {{"x", "2"}})};
  std::shared_ptr<const Workflow> wf =
      MakeWorkflow({Dag("main", {a}), Leaf("echo"), Leaf("hook", {"x"})});
  RunState state = MustCreate(wf);
  Driver driver(&state);
  EXPECT_THAT(driver.Advance(), ElementsAre("run.A", "run.A.hooks.running"));
  // After a restart the started hook is found again, not started a second time.
  std::vector<NodeState> nodes;
  for (const auto& [name, node] : state.nodes()) nodes.push_back(node);
  absl::StatusOr<RunState> restored = RunState::Restore(wf, {}, "run", nodes, StopStrategy::kNone);
  ASSERT_TRUE(restored.ok()) << restored.status();
  EXPECT_THAT(restored->Advance(driver.now()), IsEmpty());
  state.Stop("Stopped by user", driver.now());
  driver.Script("A", {Fail("terminated")});
  driver.Finish("run.A");
  driver.Finish("run.A.hooks.running");
  driver.Run();
  EXPECT_TRUE(state.Done());
  EXPECT_EQ(state.nodes().count("run.A.hooks.failed"), 0u);
}

// ---- Argo's stop (StopStrategy::kStop): exit hooks still run ---------------------------------

TEST(RunStateStopTest, AfterStopExitHooksRunButLifecycleHooksDoNot) {
  DagTask a = Task("A", "echo");
  a.exit_hook = Hook("exit", "", "bye");
  a.hooks = {Hook("failed", "tasks.A.status == 'Failed'", "hook", {{"x", "1"}})};
  std::shared_ptr<Workflow> wf = std::make_shared<Workflow>(*MakeWorkflow(
      {Dag("main", {a, Task("B", "echo", "A")}), Leaf("echo"), Leaf("hook", {"x"}), Leaf("bye")}));
  wf->exit_hook = Hook("exit", "", "bye");
  RunState state = MustCreate(wf);
  Driver driver(&state);
  EXPECT_THAT(driver.Advance(), ElementsAre("run.A"));
  state.Stop("Stopped with strategy 'Stop'", driver.now(), StopStrategy::kStop);
  EXPECT_TRUE(state.StopHolds("run.A"));
  EXPECT_FALSE(state.StopHolds("run.A.onExit"));
  driver.Script("A", {Fail("terminated")});
  driver.Finish("run.A");
  // A's exit hook runs; its `failed` hook and B do not.
  EXPECT_THAT(driver.Advance(), ElementsAre("run.A.onExit"));
  driver.Finish("run.A.onExit");
  EXPECT_THAT(driver.Advance(), ElementsAre("run.onExit"));
  EXPECT_EQ(state.phase(), NodePhase::kRunning);
  driver.Finish("run.onExit");
  driver.Run();
  EXPECT_TRUE(state.Done());
  EXPECT_EQ(state.phase(), NodePhase::kFailed);
  EXPECT_EQ(state.message(), "Stopped with strategy 'Stop'");
  EXPECT_EQ(state.nodes().count("run.A.hooks.failed"), 0u);
  EXPECT_EQ(state.nodes().count("run.B"), 0u);
  EXPECT_EQ(NodeOf(state, "run.onExit").phase, NodePhase::kSucceeded);
}

TEST(RunStateStopTest, AStoppedRunKeepsRunningItsExitHookAfterARestart) {
  std::shared_ptr<Workflow> wf = OnePodWorkflow();
  wf->exit_hook = Hook("exit", "", "bye");
  RunState state = MustCreate(wf);
  Driver driver(&state);
  EXPECT_THAT(driver.Advance(), ElementsAre("run"));
  state.Stop("stop", driver.now(), StopStrategy::kStop);
  driver.Finish("run");
  std::vector<NodeState> nodes;
  for (const auto& [name, node] : state.nodes()) nodes.push_back(node);
  absl::StatusOr<RunState> restored = RunState::Restore(wf, {}, "run", nodes, StopStrategy::kStop);
  ASSERT_TRUE(restored.ok()) << restored.status();
  std::vector<DispatchRequest> launched = restored->Advance(driver.now());
  ASSERT_EQ(launched.size(), 1u);
  EXPECT_EQ(launched[0].node_name, "run.onExit");
  EXPECT_EQ(restored->phase(), NodePhase::kRunning);
}

TEST(RunStateStopTest, TerminateAfterStopEndsTheExitHooks) {
  std::shared_ptr<Workflow> wf = OnePodWorkflow();
  wf->exit_hook = Hook("exit", "", "bye");
  RunState state = MustCreate(wf);
  Driver driver(&state);
  EXPECT_THAT(driver.Advance(), ElementsAre("run"));
  state.Stop("stop", driver.now(), StopStrategy::kStop);
  state.Stop("stop again", driver.now(), StopStrategy::kStop);  // changes nothing
  EXPECT_EQ(state.stop_strategy(), StopStrategy::kStop);
  driver.Finish("run");
  EXPECT_THAT(driver.Advance(), ElementsAre("run.onExit"));
  state.Stop("terminate", driver.now(), StopStrategy::kTerminate);
  EXPECT_EQ(state.stop_strategy(), StopStrategy::kTerminate);
  EXPECT_TRUE(state.StopHolds("run.onExit"));  // the caller cancels it
  driver.Script("run.onExit", {Fail("terminated")});
  driver.Finish("run.onExit");
  driver.Run();
  EXPECT_TRUE(state.Done());
  EXPECT_EQ(NodeOf(state, "run.onExit").phase, NodePhase::kFailed);
  state.Stop("stop after terminate", driver.now(), StopStrategy::kStop);  // changes nothing
  EXPECT_EQ(state.stop_strategy(), StopStrategy::kTerminate);
}

}  // namespace
}  // namespace dagd::engine
