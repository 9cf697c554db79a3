// RunState on `steps` templates: Argo's executeSteps (groups in order, steps of a group in
// parallel), node names as Argo gives them, `{{steps.X.…}}`, fan-out inside a group, continueOn,
// withSequence, nesting and the depth limit, and the outputs of a steps template.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "engine/run_state.h"
#include "tests/engine/run_state_driver.h"

namespace dagd::engine {
namespace {

using namespace test;  // NOLINT(build/namespaces): the helpers of the RunState tests
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::UnorderedElementsAre;

DagTask Step(const std::string& name, const std::string& tmpl,
             std::vector<std::pair<std::string, std::string>> arguments = {}) {
  return Task(name, tmpl, "", std::move(arguments));
}

TEST(RunStateStepsTest, GroupsRunInOrderAndStepsOfAGroupInParallel) {
  // Argo's steps.yaml: hello1, then hello2a and hello2b together.
  RunState state = MustCreate(MakeWorkflow(
      {Steps("hello-hello-hello", {{Step("hello1", "whalesay", {{"message", "hello1"}})},
                                   {Step("hello2a", "whalesay", {{"message", "hello2a"}}),
                                    Step("hello2b", "whalesay", {{"message", "hello2b"}})}}),
       Leaf("whalesay", {"message"})}));
  EXPECT_EQ(NodeOf(state, "run").type, NodeType::kSteps);
  Driver driver(&state);
  EXPECT_THAT(driver.Run(), ElementsAre(ElementsAre("run[0].hello1"),
                                        UnorderedElementsAre("run[1].hello2a", "run[1].hello2b")));
  EXPECT_EQ(state.phase(), NodePhase::kSucceeded);
  const NodeState& group = NodeOf(state, "run[1]");
  EXPECT_EQ(group.type, NodeType::kStepGroup);
  EXPECT_EQ(group.display_name, "[1]");
  EXPECT_EQ(group.parent, "run");
  EXPECT_THAT(group.children, ElementsAre("run[1].hello2a", "run[1].hello2b"));
  EXPECT_EQ(NodeOf(state, "run[1].hello2b").display_name, "hello2b");
  EXPECT_EQ(NodeOf(state, "run[1].hello2b").inputs.at("message"), "hello2b");
  EXPECT_THAT(NodeOf(state, "run").children, ElementsAre("run[0]", "run[1]"));
}

TEST(RunStateStepsTest, AFailedStepFailsItsGroupAndLaterGroupsNeverStart) {
  RunState state = MustCreate(
      MakeWorkflow({Steps("main", {{Step("a", "echo"), Step("b", "echo")}, {Step("c", "echo")}}),
                    Leaf("echo")}));
  Driver driver(&state);
  driver.Script("b", {Fail("exit code 3")});
  driver.Run();
  EXPECT_EQ(state.phase(), NodePhase::kFailed);
  EXPECT_EQ(NodeOf(state, "run[0]").phase, NodePhase::kFailed);
  EXPECT_EQ(NodeOf(state, "run[0].a").phase, NodePhase::kSucceeded);  // its sibling finished
  EXPECT_THAT(state.message(), HasSubstr("run[0].b"));
  EXPECT_THAT(state.message(), HasSubstr("exit code 3"));
  EXPECT_EQ(state.nodes().count("run[1]"), 0u);
}

TEST(RunStateStepsTest, ContinueOnFailedLetsTheNextGroupRun) {
  // Argo's continue-on-fail.yaml and exit-code-output-variable.yaml.
  DagTask flaky = Step("failing", "echo", {{"x", "1"}});
  flaky.continue_on.failed = true;
  RunState state = MustCreate(MakeWorkflow(
      {Steps("main", {{flaky}, {Step("after", "echo", {{"x", "{{steps.failing.exitCode}}"}})}}),
       Leaf("echo", {"x"})}));
  Driver driver(&state);
  AttemptResult failed = Fail();
  failed.exit_code = 123;
  driver.Script("failing", {failed});
  driver.Run();
  EXPECT_EQ(state.phase(), NodePhase::kSucceeded);
  EXPECT_EQ(NodeOf(state, "run[0].failing").phase, NodePhase::kFailed);
  EXPECT_EQ(NodeOf(state, "run[1].after").inputs.at("x"), "123");
}

TEST(RunStateStepsTest, ContinueOnErrorDoesNotTolerateAFailure) {
  DagTask step = Step("sleep", "echo");
  step.continue_on.error = true;
  RunState state = MustCreate(MakeWorkflow({Steps("main", {{step}}), Leaf("echo")}));
  Driver driver(&state);
  driver.Script("sleep", {Fail()});
  driver.Run();
  EXPECT_EQ(state.phase(), NodePhase::kFailed);
}

TEST(RunStateStepsTest, OutputsOfEarlierStepsAndWhen) {
  // Argo's coinflip.yaml: the flip's result decides which branch runs.
  DagTask heads = Step("heads", "echo");
  heads.when = "{{steps.flip-coin.outputs.result}} == heads";
  DagTask tails = Step("tails", "echo");
  tails.when = "{{steps.flip-coin.outputs.result}} == tails";
  RunState state = MustCreate(MakeWorkflow(
      {Steps("coinflip", {{Step("flip-coin", "echo")}, {heads, tails}}), Leaf("echo")}));
  Driver driver(&state);
  driver.Script("flip-coin", {Ok("tails")});
  driver.Run();
  EXPECT_EQ(state.phase(), NodePhase::kSucceeded);
  EXPECT_EQ(NodeOf(state, "run[1].heads").phase, NodePhase::kSkipped);
  EXPECT_EQ(NodeOf(state, "run[1].heads").message, "when 'tails == heads' evaluated false");
  EXPECT_EQ(NodeOf(state, "run[1].tails").phase, NodePhase::kSucceeded);
}

TEST(RunStateStepsTest, FanOutChildrenSitInTheGroupAndAggregate) {
  // Argo's loops.yaml and parameter-aggregation.yaml.
  DagTask loop = Step("print", "echo", {{"x", "{{item}}"}});
  loop.with_items = {"hello world", "goodbye world"};
  RunState state = MustCreate(MakeWorkflow(
      {Steps("main", {{loop}, {Step("sum", "echo", {{"x", "{{steps.print.outputs.result}}"}})}}),
       Leaf("echo", {"x"})}));
  Driver driver(&state);
  driver.fallback = [](const DispatchRequest& r) { return Ok(r.inputs.at("x") + "!"); };
  driver.Run();
  EXPECT_EQ(state.phase(), NodePhase::kSucceeded);
  EXPECT_THAT(NodeOf(state, "run[0]").children,
              ElementsAre("run[0].print(0:hello world)", "run[0].print(1:goodbye world)"));
  EXPECT_EQ(NodeOf(state, "run[0].print(1:goodbye world)").display_name, "print(1:goodbye world)");
  EXPECT_EQ(NodeOf(state, "run[1].sum").inputs.at("x"), R"(["hello world!","goodbye world!"])");
}

TEST(RunStateStepsTest, WithSequenceCountsUpOrDownWithAFormat) {
  // Argo's loops-sequence.yaml.
  DagTask count = Step("count", "echo", {{"x", "{{item}}"}});
  count.with_sequence = Sequence{"3", "", "", ""};
  DagTask down = Step("down", "echo", {{"x", "{{item}}"}});
  down.with_sequence = Sequence{"", "5", "3", ""};
  DagTask format = Step("format", "echo", {{"x", "{{item}}"}});
  format.with_sequence = Sequence{"2", "10", "", "user%02X"};
  RunState state =
      MustCreate(MakeWorkflow({Steps("main", {{count, down, format}}), Leaf("echo", {"x"})}));
  Driver driver(&state);
  driver.Run();
  EXPECT_EQ(state.phase(), NodePhase::kSucceeded);
  EXPECT_THAT(NodeOf(state, "run[0]").children,
              ElementsAre("run[0].count(0:0)", "run[0].count(1:1)", "run[0].count(2:2)",
                          "run[0].down(0:5)", "run[0].down(1:4)", "run[0].down(2:3)",
                          "run[0].format(0:user0A)", "run[0].format(1:user0B)"));
}

TEST(RunStateStepsTest, ABadSequenceFormatIsAnError) {
  DagTask step = Step("s", "echo");
  step.with_sequence = Sequence{"2", "", "", "%s"};
  RunState state = MustCreate(MakeWorkflow({Steps("main", {{step}}), Leaf("echo")}));
  Driver(&state).Run();
  EXPECT_EQ(NodeOf(state, "run[0].s").phase, NodePhase::kError);
  EXPECT_THAT(NodeOf(state, "run[0].s").message, HasSubstr("withSequence.format"));
  EXPECT_EQ(state.phase(), NodePhase::kFailed);
}

TEST(RunStateStepsTest, EmptyWithParamIsASkippedNode) {
  DagTask step = Step("s", "echo");
  step.with_param = "[]";
  RunState state = MustCreate(MakeWorkflow({Steps("main", {{step}}), Leaf("echo")}));
  Driver(&state).Run();
  EXPECT_EQ(NodeOf(state, "run[0].s").phase, NodePhase::kSkipped);
  EXPECT_EQ(NodeOf(state, "run[0].s").message, "Skipped, empty params");
  EXPECT_EQ(state.phase(), NodePhase::kSucceeded);
}

TEST(RunStateStepsTest, NestedStepsAndDagsAndOutputsOfASteps) {
  // A steps template whose output comes from a step (valueFrom.parameter), called from a DAG.
  Template inner = Steps("inner", {{Step("gen", "gen")}});
  Parameter out = Param("out");
  out.value_from.emplace().parameter = "{{steps.gen.outputs.result}}";
  inner.outputs.parameters.push_back(out);
  RunState state = MustCreate(MakeWorkflow(
      {Dag("main", {Task("A", "inner"),
                    Task("B", "echo", "A", {{"x", "{{tasks.A.outputs.parameters.out}}"}})}),
       inner, Leaf("gen"), Leaf("echo", {"x"})}));
  Driver driver(&state);
  driver.Script("gen", {Ok("42")});
  driver.Run();
  EXPECT_EQ(state.phase(), NodePhase::kSucceeded);
  EXPECT_EQ(NodeOf(state, "run.A").type, NodeType::kSteps);
  EXPECT_EQ(NodeOf(state, "run.A[0].gen").phase, NodePhase::kSucceeded);
  EXPECT_EQ(NodeOf(state, "run.A").outputs.parameters.at("out"), "42");
  EXPECT_EQ(NodeOf(state, "run.B").inputs.at("x"), "42");
}

TEST(RunStateStepsTest, AnOutputExpressionPicksTheBranchThatRan) {
  // Argo's conditional-parameters.yaml.
  DagTask heads = Step("heads", "echo");
  heads.when = "{{steps.flip-coin.outputs.result}} == heads";
  DagTask tails = Step("tails", "echo");
  tails.when = "{{steps.flip-coin.outputs.result}} == tails";
  Template main = Steps("main", {{Step("flip-coin", "echo")}, {heads, tails}});
  Parameter out = Param("stepresult");
  out.value_from.emplace().expression =
      "steps['flip-coin'].outputs.result == 'heads' ? steps.heads.outputs.result : "
      "steps.tails.outputs.result";
  main.outputs.parameters.push_back(out);
  RunState state = MustCreate(MakeWorkflow({main, Leaf("echo")}));
  Driver driver(&state);
  driver.Script("flip-coin", {Ok("tails")});
  driver.Script("tails", {Ok("it was tails")});
  driver.Run();
  EXPECT_EQ(state.phase(), NodePhase::kSucceeded);
  EXPECT_EQ(NodeOf(state, "run").outputs.parameters.at("stepresult"), "it was tails");
}

TEST(RunStateStepsTest, AnOutputExpressionThatFailsIsAnErrorUnlessItHasADefault) {
  Template main = Steps("main", {{Step("a", "echo")}});
  Parameter bad = Param("bad");
  bad.value_from.emplace().expression = "steps.a.outputs.result +";
  main.outputs.parameters.push_back(bad);
  RunState state = MustCreate(MakeWorkflow({main, Leaf("echo")}));
  Driver(&state).Run();
  EXPECT_EQ(state.phase(), NodePhase::kError);
  EXPECT_THAT(state.message(), HasSubstr("outputs.parameters.bad: expression"));

  main.outputs.parameters[0].value_from->default_value = "fallback";
  RunState with_default = MustCreate(MakeWorkflow({main, Leaf("echo")}));
  Driver(&with_default).Run();
  EXPECT_EQ(with_default.phase(), NodePhase::kSucceeded);
  EXPECT_EQ(NodeOf(with_default, "run").outputs.parameters.at("bad"), "fallback");
}

TEST(RunStateStepsTest, RetryExpressionReadsTheLastAttempt) {
  // Argo's retry-conditional.yaml: retry while the exit code is above 1.
  Template flaky = Leaf("flaky");
  flaky.retry_strategy.emplace().limit = "10";
  flaky.retry_strategy->expression = "asInt(lastRetry.exitCode) > 1 && lastRetry.status != 'Error'";
  RunState state = MustCreate(MakeWorkflow({Steps("main", {{Step("a", "flaky")}}), flaky}));
  Driver driver(&state);
  AttemptResult three = Fail();
  three.exit_code = 3;
  driver.Script("a", {three, three, Fail()});  // exit 1 ends the retries
  driver.Run();
  EXPECT_EQ(state.phase(), NodePhase::kFailed);
  const NodeState& a = NodeOf(state, "run[0].a");
  EXPECT_EQ(a.attempts.size(), 3u);
  EXPECT_EQ(a.message, "retryStrategy.expression evaluated to false");
}

TEST(RunStateStepsTest, RecursionStopsAtTheDepthLimit) {
  RunState state =
      MustCreate(MakeWorkflow({Steps("forever", {{Step("again", "forever")}}), Leaf("echo")}));
  Driver(&state).Run();
  EXPECT_EQ(state.phase(), NodePhase::kFailed);
  EXPECT_THAT(state.message(), HasSubstr("nested deeper than 100"));
}

TEST(RunStateStepsTest, TemplateParallelismCapsAStepsFanOut) {
  DagTask loop = Step("s", "echo");
  loop.with_items = {1, 2, 3, 4};
  Template steps = Steps("main", {{loop}});
  steps.parallelism = 2;
  RunState state = MustCreate(MakeWorkflow({steps, Leaf("echo")}));
  Driver driver(&state);
  for (const std::vector<std::string>& batch : driver.Run()) EXPECT_LE(batch.size(), 2u);
  EXPECT_EQ(state.phase(), NodePhase::kSucceeded);
}

TEST(RunStateStepsTest, TemplateParallelismCountsANestedStepsAsOneChild) {
  // Argo's parallelism-nested-workflow.yaml: A (parallelism 1) runs its two B's one after the
  // other; each B runs its two jobs together.
  DagTask jobs = Step("jobs", "job");
  jobs.with_items = {1, 2};
  DagTask seq = Step("seq", "B");
  seq.with_items = {"a", "b"};
  Template a = Steps("A", {{seq}});
  a.parallelism = 1;
  RunState state = MustCreate(MakeWorkflow({a, Steps("B", {{jobs}}), Leaf("job")}));
  Driver driver(&state);
  EXPECT_THAT(
      driver.Run(),
      ElementsAre(ElementsAre("run[0].seq(0:a)[0].jobs(0:1)", "run[0].seq(0:a)[0].jobs(1:2)"),
                  ElementsAre("run[0].seq(1:b)[0].jobs(0:1)", "run[0].seq(1:b)[0].jobs(1:2)")));
  EXPECT_EQ(state.phase(), NodePhase::kSucceeded);
  EXPECT_GE(NodeOf(state, "run[0].seq(1:b)").started_at_ms,
            NodeOf(state, "run[0].seq(0:a)").finished_at_ms);
}

TEST(RunStateStepsTest, StopFailsTheStepsWithTheMessage) {
  RunState state = MustCreate(
      MakeWorkflow({Steps("main", {{Step("a", "echo")}, {Step("b", "echo")}}), Leaf("echo")}));
  Driver driver(&state);
  EXPECT_THAT(driver.Advance(), ElementsAre("run[0].a"));
  state.Stop("Stopped by user", driver.now());
  driver.Finish("run[0].a");
  state.Advance(driver.now());
  EXPECT_EQ(state.phase(), NodePhase::kFailed);
  EXPECT_EQ(state.message(), "Stopped by user");
  EXPECT_EQ(state.nodes().count("run[1]"), 0u);
}

TEST(RunStateStepsTest, RestoreContinuesAtTheNextGroup) {
  auto wf =
      MakeWorkflow({Steps("main", {{Step("a", "gen")},
                                   {Step("b", "echo", {{"x", "{{steps.a.outputs.result}}"}})}}),
                    Leaf("gen"), Leaf("echo", {"x"})});
  RunState state = MustCreate(wf);
  Driver driver(&state);
  driver.Script("a", {Ok("from-a")});
  driver.Advance();
  driver.Finish("run[0].a");
  std::vector<NodeState> stored;
  for (const auto& [name, node] : state.nodes()) stored.push_back(node);
  absl::StatusOr<RunState> restored = RunState::Restore(wf, {}, "run", stored, StopStrategy::kNone);
  ASSERT_TRUE(restored.ok()) << restored.status();
  std::vector<DispatchRequest> requests = restored->Advance(5000);
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].node_name, "run[1].b");
  EXPECT_EQ(requests[0].inputs.at("x"), "from-a");
}

TEST(RunStateStepsTest, AnArgumentNamingASkippedOutputFallsBackToTheInputDefault) {
  // Argo's skipped-output-defaults/consumer-input-default.yaml, and producer-output-default.
  Template produce = Leaf("produce");
  Parameter with_default = Param("msg");
  with_default.value_from.emplace().default_value = "hello-from-producer";
  produce.outputs.parameters.push_back(with_default);
  produce.outputs.parameters.push_back(Param("bare"));
  Template consume = Leaf("consume", {"in", "other"});
  consume.inputs.parameters[0].default_value = "fallback-from-input";
  consume.inputs.parameters[1].default_value = "fallback-2";
  DagTask producer = Task("producer", "produce");
  producer.when = "false";
  DagTask consumer = Task("consumer", "consume", "producer.Succeeded || producer.Skipped",
                          {{"in", "{{tasks.producer.outputs.parameters.msg}}"},
                           {"other", "{{tasks.producer.outputs.parameters.bare}}"}});
  RunState state = MustCreate(MakeWorkflow({Dag("main", {producer, consumer}), produce, consume}));
  Driver(&state).Run();
  EXPECT_EQ(state.phase(), NodePhase::kSucceeded);
  EXPECT_EQ(NodeOf(state, "run.consumer").inputs.at("in"), "hello-from-producer");
  EXPECT_EQ(NodeOf(state, "run.consumer").inputs.at("other"), "fallback-2");
}

}  // namespace
}  // namespace dagd::engine

namespace dagd::engine {
namespace {

using namespace test;  // NOLINT(build/namespaces): the helpers of the RunState tests
using ::testing::ElementsAre;
using ::testing::HasSubstr;

LifecycleHook Hook(const std::string& tmpl,
                   std::vector<std::pair<std::string, std::string>> arguments = {}) {
  LifecycleHook hook;
  hook.template_name = tmpl;
  for (auto& [key, value] : arguments) hook.arguments.parameters.push_back(Param(key, value));
  return hook;
}

TEST(RunStateExitHookTest, ATaskHookRunsBeforeItsDependents) {
  // Argo's exit-handler-dag-level.yaml: A's hook ends before B starts.
  DagTask a = Task("A", "echo");
  a.exit_hook = Hook("exit");
  RunState state = MustCreate(
      MakeWorkflow({Dag("main", {a, Task("B", "echo", "A")}), Leaf("echo"), Leaf("exit")}));
  Driver driver(&state);
  EXPECT_THAT(driver.Run(),
              ElementsAre(ElementsAre("run.A"), ElementsAre("run.A.onExit"), ElementsAre("run.B")));
  EXPECT_EQ(state.phase(), NodePhase::kSucceeded);
  const NodeState& hook = NodeOf(state, "run.A.onExit");
  EXPECT_EQ(hook.parent, "run.A");
  EXPECT_EQ(hook.display_name, "A.onExit");
  EXPECT_EQ(hook.template_name, "exit");
}

TEST(RunStateExitHookTest, AHookReadsTheOutputsOfItsStepAndItsFailureChangesNothing) {
  // Argo's exit-handler-with-param.yaml.
  DagTask step = Task("step-1", "echo");
  step.exit_hook = Hook("exit", {{"x", "{{steps.step-1.outputs.result}}"}});
  RunState state = MustCreate(MakeWorkflow(
      {Steps("main", {{step}, {Task("after", "echo")}}), Leaf("echo"), Leaf("exit", {"x"})}));
  Driver driver(&state);
  driver.Script("step-1", {Ok("hello world")});
  driver.Script("step-1.onExit", {Fail()});
  driver.Run();
  EXPECT_EQ(NodeOf(state, "run[0].step-1.onExit").inputs.at("x"), "hello world");
  EXPECT_EQ(NodeOf(state, "run[0].step-1.onExit").phase, NodePhase::kFailed);
  EXPECT_EQ(NodeOf(state, "run[1].after").phase, NodePhase::kSucceeded);
  EXPECT_EQ(state.phase(), NodePhase::kSucceeded);
}

TEST(RunStateExitHookTest, TheWorkflowHookSeesTheStatusAndFailures) {
  // Argo's exit-handlers.yaml: the entrypoint fails, the handler's `when`s read the status.
  Template handler =
      Steps("exit-handler",
            {{Task("notify", "send", "", {{"x", "{{workflow.status}} {{workflow.failures}}"}}),
              Task("celebrate", "echo"), Task("cry", "echo")}});
  handler.steps->groups[0][1].when = "{{workflow.status}} == Succeeded";
  handler.steps->groups[0][2].when = "{{workflow.status}} != Succeeded";
  auto wf = std::make_shared<Workflow>();
  wf->name = "wf";
  wf->entrypoint = "intentional-fail";
  wf->exit_hook = Hook("exit-handler");
  wf->templates = {Leaf("intentional-fail"), handler, Leaf("send", {"x"}), Leaf("echo")};
  RunState state = MustCreate(wf);
  Driver driver(&state);
  driver.Script("run", {Fail("exit code 1")});
  EXPECT_THAT(driver.Advance(), ElementsAre("run"));
  driver.Finish("run");
  EXPECT_EQ(NodeOf(state, "run").phase, NodePhase::kFailed);
  EXPECT_EQ(state.phase(), NodePhase::kRunning);  // the handler still runs
  EXPECT_FALSE(state.Done());
  driver.Run();
  EXPECT_TRUE(state.Done());
  EXPECT_EQ(state.phase(), NodePhase::kFailed);
  EXPECT_EQ(NodeOf(state, "run.onExit").parent, "");
  EXPECT_EQ(NodeOf(state, "run.onExit").type, NodeType::kSteps);
  EXPECT_EQ(NodeOf(state, "run.onExit[0].celebrate").phase, NodePhase::kSkipped);
  EXPECT_EQ(NodeOf(state, "run.onExit[0].cry").phase, NodePhase::kSucceeded);
  const std::string& notified = NodeOf(state, "run.onExit[0].notify").inputs.at("x");
  EXPECT_THAT(notified, HasSubstr("Failed [{\"displayName\":\"run\""));
  EXPECT_THAT(notified, HasSubstr("\"templateName\":\"intentional-fail\""));
}

// A one-pod workflow whose exit hook runs the pod template "bye".
std::shared_ptr<const Workflow> LeafWithExitHook() {
  auto wf = std::make_shared<Workflow>();
  wf->name = "wf";
  wf->entrypoint = "main";
  wf->exit_hook = Hook("bye");
  wf->templates = {Leaf("main"), Leaf("bye")};
  return wf;
}

TEST(RunStateExitHookTest, AFailedWorkflowHookFailsASucceededRun) {
  RunState state = MustCreate(LeafWithExitHook());
  Driver driver(&state);
  driver.Script("run.onExit", {Fail("exit code 2")});
  driver.Run();
  EXPECT_EQ(NodeOf(state, "run").phase, NodePhase::kSucceeded);
  EXPECT_EQ(state.phase(), NodePhase::kFailed);
  EXPECT_THAT(state.message(), HasSubstr("exit handler"));
  EXPECT_THAT(state.message(), HasSubstr("exit code 2"));
}

TEST(RunStateExitHookTest, NoHookStartsAfterStop) {
  RunState state = MustCreate(LeafWithExitHook());
  Driver driver(&state);
  EXPECT_THAT(driver.Advance(), ElementsAre("run"));
  state.Stop("Stopped by user", driver.now());
  driver.Finish("run");
  driver.Run();
  EXPECT_TRUE(state.Done());
  EXPECT_EQ(state.nodes().count("run.onExit"), 0u);
}

// conditionals.yaml: {{workflow.parameters.json}} lists every parameter, as in Argo.
TEST(RunStateStepsTest, WorkflowParametersJsonListsEveryParameter) {
  DagTask expr = Step("print-hello-expr-json", "echo");
  expr.when = "{{=jsonpath(workflow.parameters.json, '$[0].value') == 'true'}}";
  DagTask show = Step("show", "print");
  show.arguments.parameters.push_back(Param("message", "{{workflow.parameters.json}}"));
  auto wf = std::make_shared<Workflow>(
      *MakeWorkflow({Steps("main", {{expr, show}}), Leaf("echo"), Leaf("print", {"message"})}));
  wf->arguments.parameters = {Param("should-print", "true"), Param("count", "2")};
  RunState state = MustCreate(wf, {{"should-print", "true"}, {"count", "2"}});
  Driver driver(&state);
  driver.Run();
  EXPECT_EQ(state.phase(), NodePhase::kSucceeded);
  EXPECT_EQ(NodeOf(state, "run[0].print-hello-expr-json").phase, NodePhase::kSucceeded);
  EXPECT_EQ(NodeOf(state, "run[0].show").inputs.at("message"),
            R"([{"name":"should-print","value":"true"},{"name":"count","value":"2"}])");
}

}  // namespace
}  // namespace dagd::engine
