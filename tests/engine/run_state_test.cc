#include "engine/run_state.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/engine/run_state_driver.h"

namespace dagd::engine {
namespace {

using namespace test;  // NOLINT(build/namespaces): the helpers of this test

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;

// ---- tests --------------------------------------------------------------------------------

TEST(RunStateTest, CreateMakesTheRootNode) {
  RunState state = MustCreate(Diamond());
  EXPECT_THAT(state.TakeChangedNodes(), ElementsAre("run"));
  const NodeState& root = NodeOf(state, "run");
  EXPECT_EQ(root.type, NodeType::kDag);
  EXPECT_EQ(root.display_name, "run");
  EXPECT_EQ(root.phase, NodePhase::kRunning);
  EXPECT_EQ(root.started_at_ms, 1000);
  EXPECT_FALSE(state.Done());
}

TEST(RunStateTest, DiamondDispatchesAsSoonAsDependenciesAllow) {
  RunState state = MustCreate(Diamond());
  Driver driver(&state);
  EXPECT_THAT(driver.Advance(), ElementsAre("run.A"));
  EXPECT_THAT(driver.Advance(), IsEmpty());  // nothing new while A runs
  driver.Finish("run.A");
  EXPECT_THAT(driver.Advance(), ElementsAre("run.B", "run.C"));
  driver.Finish("run.B");
  EXPECT_THAT(driver.Advance(), IsEmpty());  // D waits for C
  EXPECT_EQ(state.nodes().count("run.D"), 0u);
  driver.Finish("run.C");
  EXPECT_THAT(driver.Advance(), ElementsAre("run.D"));
  driver.Finish("run.D");
  EXPECT_TRUE(state.Done());
  EXPECT_EQ(state.phase(), NodePhase::kSucceeded);
  EXPECT_THAT(NodeOf(state, "run").children, ElementsAre("run.A", "run.B", "run.C", "run.D"));
  const NodeState& a = NodeOf(state, "run.A");
  EXPECT_EQ(a.type, NodeType::kPod);
  EXPECT_EQ(a.parent, "run");
  EXPECT_EQ(a.task_name, "A");
  ASSERT_EQ(a.attempts.size(), 1u);
  EXPECT_EQ(a.attempts[0].phase, NodePhase::kSucceeded);
  EXPECT_EQ(a.attempts[0].number, 1);
}

TEST(RunStateTest, RetryWithBackoff) {
  Template flaky = Leaf("flaky");
  flaky.retry_strategy.emplace();
  flaky.retry_strategy->limit = "1";
  flaky.retry_strategy->backoff = Backoff{"5s", 2, ""};
  RunState state = MustCreate(MakeWorkflow({Dag("main", {Task("A", "flaky")}), flaky}));
  EXPECT_THAT(state.Advance(1000), testing::SizeIs(1));
  ASSERT_TRUE(state.OnAttemptFinished("run.A", 1, Fail("boom"), 2000));
  const NodeState& a = NodeOf(state, "run.A");
  EXPECT_EQ(a.type, NodeType::kRetry);  // a leaf whose template retries
  EXPECT_EQ(a.phase, NodePhase::kRunning);
  EXPECT_EQ(a.retry_at_ms, 7000);
  EXPECT_EQ(a.message, "Backoff for 5s");
  EXPECT_EQ(state.NextWakeup(), 7000);
  EXPECT_THAT(state.RunningAttempts(), IsEmpty());
  EXPECT_THAT(state.Advance(6999), IsEmpty());
  std::vector<DispatchRequest> retry = state.Advance(7000);
  ASSERT_EQ(retry.size(), 1u);
  EXPECT_EQ(retry[0].attempt, 2);
  EXPECT_EQ(state.NextWakeup(), std::nullopt);
  EXPECT_THAT(state.RunningAttempts(), ElementsAre(std::pair<std::string, int>("run.A", 2)));
  ASSERT_TRUE(state.OnAttemptFinished("run.A", 2, Ok(), 8000));
  EXPECT_EQ(state.phase(), NodePhase::kSucceeded);
  ASSERT_EQ(NodeOf(state, "run.A").attempts.size(), 2u);
  EXPECT_EQ(NodeOf(state, "run.A").attempts[0].phase, NodePhase::kFailed);
  EXPECT_EQ(NodeOf(state, "run.A").attempts[0].message, "boom");
  EXPECT_EQ(NodeOf(state, "run.A").attempts[1].started_at_ms, 7000);
  EXPECT_EQ(NodeOf(state, "run.A").finished_at_ms, 8000);
}

TEST(RunStateTest, BackoffGrowsByFactorAndLimitEnds) {
  Template flaky = Leaf("flaky");
  flaky.retry_strategy.emplace();
  flaky.retry_strategy->limit = "2";
  flaky.retry_strategy->backoff = Backoff{"5s", 2, ""};
  RunState state = MustCreate(MakeWorkflow({Dag("main", {Task("A", "flaky")}), flaky}));
  state.Advance(0);
  state.OnAttemptFinished("run.A", 1, Fail(), 1000);
  EXPECT_EQ(state.NextWakeup(), 6000);  // 5s
  state.Advance(6000);
  state.OnAttemptFinished("run.A", 2, Fail(), 7000);
  EXPECT_EQ(state.NextWakeup(), 17000);  // 5s * 2
  state.Advance(17000);
  state.OnAttemptFinished("run.A", 3, Fail("exit code 3"), 18000);
  EXPECT_TRUE(state.Done());
  EXPECT_EQ(NodeOf(state, "run.A").phase, NodePhase::kFailed);
  EXPECT_EQ(NodeOf(state, "run.A").message, "No more retries left: exit code 3");
  EXPECT_EQ(state.phase(), NodePhase::kFailed);
  EXPECT_EQ(state.message(), "child 'run.A' failed: No more retries left: exit code 3");
}

TEST(RunStateTest, RetryWithoutBackoffIsImmediateAndUnsetLimitIsUnlimited) {
  Template flaky = Leaf("flaky");
  flaky.retry_strategy.emplace();  // no limit: Argo retries without end
  RunState state = MustCreate(MakeWorkflow({Dag("main", {Task("A", "flaky")}), flaky}));
  Driver driver(&state);
  driver.Script("A", std::vector<AttemptResult>(7, Fail()));
  driver.Run();
  EXPECT_EQ(state.phase(), NodePhase::kSucceeded);
  EXPECT_EQ(NodeOf(state, "run.A").attempts.size(), 8u);
}

TEST(RunStateTest, RetryPolicy) {
  Template on_error = Leaf("on-error");
  on_error.retry_strategy.emplace();
  on_error.retry_strategy->limit = "3";
  on_error.retry_strategy->policy = RetryPolicy::kOnError;
  RunState state = MustCreate(MakeWorkflow({Dag("main", {Task("A", "on-error")}), on_error}));
  Driver driver(&state);
  AttemptResult error = Fail("pod deleted");
  error.phase = NodePhase::kError;
  driver.Script("A", {error, Fail("exit code 1")});
  driver.Run();
  // The Error is retried; the Failure is not.
  EXPECT_EQ(NodeOf(state, "run.A").attempts.size(), 2u);
  EXPECT_EQ(NodeOf(state, "run.A").phase, NodePhase::kFailed);
  EXPECT_EQ(NodeOf(state, "run.A").message, "exit code 1");
}

TEST(RunStateTest, MaxDurationStopsRetries) {
  Template flaky = Leaf("flaky");
  flaky.retry_strategy.emplace();
  flaky.retry_strategy->limit = "10";
  flaky.retry_strategy->backoff = Backoff{"10s", 1, "15s"};
  RunState state = MustCreate(MakeWorkflow({Dag("main", {Task("A", "flaky")}), flaky}));
  state.Advance(0);
  state.OnAttemptFinished("run.A", 1, Fail(), 1000);
  EXPECT_EQ(state.NextWakeup(), 11000);
  state.Advance(11000);
  state.OnAttemptFinished("run.A", 2, Fail(), 12000);  // 12s + 10s > 0s + 15s
  EXPECT_EQ(NodeOf(state, "run.A").phase, NodePhase::kFailed);
  EXPECT_EQ(NodeOf(state, "run.A").message, "Backoff would exceed max duration limit");
}

TEST(RunStateTest, FailureWithoutRetriesOmitsDependents) {
  RunState state = MustCreate(Diamond());
  Driver driver(&state);
  driver.Script("B", {Fail()});
  driver.Run();
  EXPECT_TRUE(state.Done());
  EXPECT_EQ(NodeOf(state, "run.B").phase, NodePhase::kFailed);
  EXPECT_EQ(NodeOf(state, "run.C").phase, NodePhase::kSucceeded);
  EXPECT_EQ(NodeOf(state, "run.D").phase, NodePhase::kOmitted);
  EXPECT_EQ(NodeOf(state, "run.D").message, "omitted: depends condition not met");
  EXPECT_THAT(NodeOf(state, "run.D").attempts, IsEmpty());
  EXPECT_EQ(state.phase(), NodePhase::kFailed);
  EXPECT_EQ(state.message(), "child 'run.B' failed: exit code 1");
}

TEST(RunStateTest, HandledFailureDoesNotFailTheRun) {
  RunState state = MustCreate(MakeWorkflow(
      {Dag("main", {Task("A", "echo"), Task("B", "echo", "A.Failed")}), Leaf("echo")}));
  Driver driver(&state);
  driver.Script("A", {Fail()});
  driver.Run();
  EXPECT_EQ(NodeOf(state, "run.A").phase, NodePhase::kFailed);
  EXPECT_EQ(NodeOf(state, "run.B").phase, NodePhase::kSucceeded);
  EXPECT_EQ(state.phase(), NodePhase::kSucceeded);
}

// Argo's examples/dag-enhanced-depends.yaml, expected Succeeded by Argo's own e2e test.
TEST(RunStateTest, EnhancedDependsConformance) {
  RunState state = MustCreate(MakeWorkflow(
      {Dag("diamond",
           {Task("A", "pass"), Task("B", "pass", "A"), Task("C", "fail", "A"),
            Task("should-execute-1", "pass", "A && (C.Succeeded || C.Failed)"),
            Task("should-execute-2", "pass", "B || C"),
            Task("should-not-execute", "pass", "B && C"),
            Task("should-execute-3", "pass", "should-execute-2.Succeeded || should-not-execute")}),
       Leaf("pass"), Leaf("fail")}));
  Driver driver(&state);
  driver.Script("C", {Fail()});
  driver.Run();
  EXPECT_EQ(NodeOf(state, "run.should-execute-1").phase, NodePhase::kSucceeded);
  EXPECT_EQ(NodeOf(state, "run.should-execute-2").phase, NodePhase::kSucceeded);
  EXPECT_EQ(NodeOf(state, "run.should-not-execute").phase, NodePhase::kOmitted);
  EXPECT_EQ(NodeOf(state, "run.should-execute-3").phase, NodePhase::kSucceeded);
  EXPECT_EQ(state.phase(), NodePhase::kSucceeded);
}

// Argo's examples/dag-continue-on-fail.yaml: an Omitted target inherits E's failure.
TEST(RunStateTest, OmittedTargetInheritsTheFailure) {
  RunState state = MustCreate(
      MakeWorkflow({Dag("workflow", {Task("A", "ok"), Task("B", "bad", "A"), Task("C", "ok", "A"),
                                     Task("D", "ok", "B.Failed && C"), Task("E", "bad", "A"),
                                     Task("F", "ok", "A"), Task("G", "ok", "E && F")}),
                    Leaf("ok"), Leaf("bad")}));
  Driver driver(&state);
  driver.Script("B", {Fail()});
  driver.Script("E", {Fail("E broke")});
  driver.Run();
  EXPECT_EQ(NodeOf(state, "run.D").phase, NodePhase::kSucceeded);
  EXPECT_EQ(NodeOf(state, "run.G").phase, NodePhase::kOmitted);
  EXPECT_EQ(state.phase(), NodePhase::kFailed);
  EXPECT_EQ(state.message(), "child 'run.E' failed: E broke");
}

TEST(RunStateTest, ContinueOnTargetDoesNotFailTheRun) {
  DagTask a = Task("A", "echo");
  a.continue_on.failed = true;
  RunState state =
      MustCreate(MakeWorkflow({Dag("main", {a, Task("B", "echo", "A")}), Leaf("echo")}));
  Driver driver(&state);
  driver.Script("A", {Fail()});
  driver.Run();
  EXPECT_EQ(NodeOf(state, "run.B").phase, NodePhase::kSucceeded);  // bare A accepts A.Failed
  EXPECT_EQ(state.phase(), NodePhase::kSucceeded);
}

TEST(RunStateTest, WithItemsFanOutAndFanIn) {
  DagTask gen = Task("gen", "upper", "", {{"x", "{{item}}"}});
  gen.with_items = {"a", "b", "c"};
  RunState state = MustCreate(MakeWorkflow(
      {Dag("main", {gen, Task("sum", "show", "gen", {{"values", "{{tasks.gen.outputs.result}}"}})}),
       Leaf("upper", {"x"}), Leaf("show", {"values"})}));
  Driver driver(&state);
  driver.fallback = [](const DispatchRequest& r) {
    std::string out = r.inputs.at(r.inputs.count("x") ? "x" : "values");
    for (char& c : out) c = static_cast<char>(std::toupper(c));
    return Ok(out);
  };
  std::vector<std::vector<std::string>> batches = driver.Run();
  ASSERT_EQ(batches.size(), 2u);
  EXPECT_THAT(batches[0], ElementsAre("run.gen(0:a)", "run.gen(1:b)", "run.gen(2:c)"));
  EXPECT_THAT(batches[1], ElementsAre("run.sum"));
  const NodeState& group = NodeOf(state, "run.gen");
  EXPECT_EQ(group.type, NodeType::kTaskGroup);
  EXPECT_EQ(group.phase, NodePhase::kSucceeded);
  EXPECT_EQ(group.outputs.result, R"(["A","B","C"])");
  const NodeState& child = NodeOf(state, "run.gen(1:b)");
  EXPECT_EQ(child.parent, "run.gen");
  EXPECT_EQ(child.display_name, "gen(1:b)");
  EXPECT_EQ(child.item, nlohmann::json("b"));
  EXPECT_EQ(child.inputs.at("x"), "b");
  EXPECT_EQ(NodeOf(state, "run.sum").inputs.at("values"), R"(["A","B","C"])");
  EXPECT_EQ(state.phase(), NodePhase::kSucceeded);
}

TEST(RunStateTest, AFanOutWiderThanMaxFanoutIsAnErrorNode) {
  DagTask gen = Task("gen", "upper", "", {{"x", "{{item}}"}});
  gen.with_items = {"a", "b", "c"};
  RunState state = MustCreate(MakeWorkflow({Dag("main", {gen}), Leaf("upper", {"x"})}));
  state.SetLimits({.max_fanout = 2});
  Driver driver(&state);
  EXPECT_THAT(driver.Advance(), IsEmpty());
  const NodeState& group = NodeOf(state, "run.gen");
  EXPECT_EQ(group.phase, NodePhase::kError);
  EXPECT_EQ(group.message, "the fan-out has 3 items; the limit is 2 (dagd --max-fanout)");
  EXPECT_TRUE(group.children.empty());
  EXPECT_EQ(state.phase(), NodePhase::kError);
}

TEST(RunStateTest, NodesPastMaxNodesEndInErrorSayingSo) {
  DagTask gen = Task("gen", "upper", "", {{"x", "{{item}}"}});
  gen.with_items = {"a", "b", "c", "d"};
  RunState state = MustCreate(MakeWorkflow({Dag("main", {gen}), Leaf("upper", {"x"})}));
  // The root, the group and two children fit.
  state.SetLimits({.max_nodes = 4});
  Driver driver(&state);
  EXPECT_THAT(driver.Advance(), ElementsAre("run.gen(0:a)", "run.gen(1:b)"));
  const NodeState& third = NodeOf(state, "run.gen(2:c)");
  EXPECT_EQ(third.phase, NodePhase::kError);
  EXPECT_EQ(third.message, "the run reached its limit of 4 nodes (dagd --max-nodes-per-run)");
  driver.fallback = [](const DispatchRequest&) { return Ok("x"); };
  driver.Run();
  EXPECT_EQ(state.phase(), NodePhase::kError);
}

TEST(RunStateTest, FanInOfOutputsThatAreNotUtf8) {
  // A step may print anything; its fan-in is JSON with invalid UTF-8 replaced by U+FFFD, as Go's
  // encoding/json writes it (json::dump threw, and took dagd down; found by tests/fuzz).
  DagTask gen = Task("gen", "echo", "", {{"x", "{{item}}"}});
  gen.with_items = {"a", "b"};
  RunState state = MustCreate(MakeWorkflow(
      {Dag("main", {gen, Task("sum", "echo", "gen", {{"x", "{{tasks.gen.outputs.result}}"}})}),
       Leaf("echo", {"x"})}));
  Driver driver(&state);
  driver.fallback = [](const DispatchRequest& r) {
    return Ok(r.inputs.at("x") == "a" ? std::string("\xff") : r.inputs.at("x"));
  };
  driver.Run();
  EXPECT_EQ(NodeOf(state, "run.gen").outputs.result, "[\"\xef\xbf\xbd\",\"b\"]");
  EXPECT_EQ(state.phase(), NodePhase::kSucceeded);
}

TEST(RunStateTest, FanOutOverMapsAndAFailingChild) {
  DagTask fan = Task("fan", "echo", "", {{"x", "{{item.host}}:{{item.port}}"}});
  fan.with_items = {nlohmann::json{{"host", "h1"}, {"port", 22}},
                    nlohmann::json{{"host", "h2"}, {"port", 2222}}};
  RunState state = MustCreate(
      MakeWorkflow({Dag("main", {fan, Task("any", "echo", "fan.AnySucceeded", {{"x", "1"}}),
                                 Task("all", "echo", "fan.AllFailed", {{"x", "2"}})}),
                    Leaf("echo", {"x"})}));
  Driver driver(&state);
  driver.Script("fan(1:host:h2,port:2222)", {Fail()});
  driver.Run();
  EXPECT_EQ(NodeOf(state, "run.fan(0:host:h1,port:22)").inputs.at("x"), "h1:22");
  EXPECT_EQ(NodeOf(state, "run.fan").phase, NodePhase::kFailed);
  EXPECT_EQ(NodeOf(state, "run.any").phase, NodePhase::kSucceeded);
  EXPECT_EQ(NodeOf(state, "run.all").phase, NodePhase::kOmitted);
  // The targets are "any" (Succeeded) and "all" (Omitted, inheriting fan's failure).
  EXPECT_EQ(state.phase(), NodePhase::kFailed);
  EXPECT_EQ(state.message(), "child 'run.fan(1:host:h2,port:2222)' failed: exit code 1");
}

TEST(RunStateTest, WithParamFromAnUpstreamOutput) {
  DagTask each = Task("each", "echo", "list", {{"x", "{{item}}"}});
  each.with_param = "{{tasks.list.outputs.result}}";
  RunState state = MustCreate(
      MakeWorkflow({Dag("main", {Task("list", "gen"), each}), Leaf("gen"), Leaf("echo", {"x"})}));
  Driver driver(&state);
  driver.Script("list", {Ok(R"(["x", 2, {"k": "v"}])")});
  driver.Run();
  EXPECT_EQ(state.phase(), NodePhase::kSucceeded);
  EXPECT_THAT(NodeOf(state, "run.each").children,
              ElementsAre("run.each(0:x)", "run.each(1:2)", "run.each(2:k:v)"));
  EXPECT_EQ(NodeOf(state, "run.each(2:k:v)").inputs.at("x"), R"({"k":"v"})");
}

TEST(RunStateTest, WithParamThatIsNotAListIsAnError) {
  DagTask each = Task("each", "echo", "list", {{"x", "{{item}}"}});
  each.with_param = "{{tasks.list.outputs.result}}";
  RunState state = MustCreate(
      MakeWorkflow({Dag("main", {Task("list", "gen"), each}), Leaf("gen"), Leaf("echo", {"x"})}));
  Driver driver(&state);
  driver.Script("list", {Ok("not json")});
  driver.Run();
  EXPECT_EQ(NodeOf(state, "run.each").phase, NodePhase::kError);
  EXPECT_EQ(NodeOf(state, "run.each").message,
            "withParam value could not be parsed as a JSON list: not json");
  EXPECT_EQ(state.phase(), NodePhase::kError);
}

TEST(RunStateTest, EmptyWithParamIsSkipped) {
  DagTask each = Task("each", "echo", "list", {{"x", "{{item}}"}});
  each.with_param = "{{tasks.list.outputs.result}}";
  RunState state = MustCreate(
      MakeWorkflow({Dag("main", {Task("list", "gen"), each, Task("after", "gen", "each")}),
                    Leaf("gen"), Leaf("echo", {"x"})}));
  Driver driver(&state);
  driver.Script("list", {Ok("[]")});
  driver.Run();
  EXPECT_EQ(NodeOf(state, "run.each").phase, NodePhase::kSkipped);
  EXPECT_EQ(NodeOf(state, "run.each").message, "Skipped, empty params");
  EXPECT_EQ(NodeOf(state, "run.after").phase, NodePhase::kSucceeded);
  EXPECT_EQ(state.phase(), NodePhase::kSucceeded);
}

TEST(RunStateTest, OutputParametersPassDownstream) {
  Template provision = Leaf("provision");
  Parameter hosts = Param("hosts");
  hosts.value_from = ValueFrom{"/tmp/hosts", "", "", std::nullopt};
  provision.outputs.parameters.push_back(hosts);
  Parameter zone = Param("zone");
  zone.value_from = ValueFrom{"/tmp/zone", "", "", "eu-1"};
  provision.outputs.parameters.push_back(zone);
  RunState state = MustCreate(
      MakeWorkflow({Dag("main", {Task("provision", "provision"),
                                 Task("configure", "configure", "provision",
                                      {{"host", "{{tasks.provision.outputs.parameters.hosts}}"},
                                       {"zone", "{{tasks.provision.outputs.parameters.zone}}"}})}),
                    provision, Leaf("configure", {"host", "zone"})}));
  Driver driver(&state);
  driver.Script("provision", {Ok(std::nullopt, {{"hosts", "web1"}})});
  driver.Run();
  EXPECT_EQ(NodeOf(state, "run.provision").outputs.parameters.at("hosts"), "web1");
  EXPECT_EQ(NodeOf(state, "run.configure").inputs.at("host"), "web1");
  EXPECT_EQ(NodeOf(state, "run.configure").inputs.at("zone"), "eu-1");  // valueFrom.default
  EXPECT_EQ(state.phase(), NodePhase::kSucceeded);
}

TEST(RunStateTest, MissingInputIsAnErrorNode) {
  RunState state = MustCreate(
      MakeWorkflow({Dag("main", {Task("A", "needs"), Task("B", "needs", "A", {{"x", "1"}})}),
                    Leaf("needs", {"x"})}));
  Driver driver(&state);
  EXPECT_THAT(driver.Advance(), IsEmpty());
  EXPECT_EQ(NodeOf(state, "run.A").phase, NodePhase::kError);
  EXPECT_EQ(NodeOf(state, "run.A").message, "inputs.parameters.x was not supplied");
  EXPECT_EQ(NodeOf(state, "run.B").phase, NodePhase::kOmitted);
  EXPECT_TRUE(state.Done());
  EXPECT_EQ(state.phase(), NodePhase::kError);
}

TEST(RunStateTest, UnresolvedTagIsAnErrorNode) {
  RunState state = MustCreate(
      MakeWorkflow({Dag("main", {Task("A", "echo", "", {{"x", "{{workflow.parameters.nope}}"}})}),
                    Leaf("echo", {"x"})}));
  state.Advance(1000);
  EXPECT_EQ(NodeOf(state, "run.A").phase, NodePhase::kError);
  EXPECT_EQ(NodeOf(state, "run.A").message,
            "arguments.parameters.x: unresolved tag {{workflow.parameters.nope}}");
}

TEST(RunStateTest, InputDefaultsAndTemplateBodyAreResolved) {
  Template deploy;
  deploy.name = "deploy";
  deploy.type = TemplateType::kAnsible;
  deploy.inputs.parameters.push_back(Param("host"));
  Parameter env = Param("env");
  env.default_value = "{{workflow.parameters.env}}";
  deploy.inputs.parameters.push_back(env);
  deploy.ansible.emplace();
  deploy.ansible->playbook = "site.yml";
  deploy.ansible->limit = "{{inputs.parameters.host}}";
  deploy.ansible->extra_vars["env"] = "{{ inputs.parameters.env }}";
  deploy.ansible->extra_vars["nested"] = {{"run", "{{workflow.name}}"}, {"j2", "{{ item }}"}};
  deploy.ansible->extra_vars["jinja"] = "{{ ansible_host | default('x') }}";
  RunState state =
      MustCreate(MakeWorkflow({Dag("main", {Task("A", "deploy", "", {{"host", "web1"}})}), deploy}),
                 {{"env", "staging"}});
  std::vector<DispatchRequest> requests = state.Advance(1000);
  ASSERT_EQ(requests.size(), 1u);
  const AnsibleSpec& a = *requests[0].resolved.ansible;
  EXPECT_EQ(a.limit, "web1");
  EXPECT_EQ(a.extra_vars.at("env"), "staging");
  EXPECT_EQ(a.extra_vars.at("nested"), (nlohmann::json{{"run", "run"}, {"j2", "{{ item }}"}}));
  EXPECT_EQ(a.extra_vars.at("jinja"), "{{ ansible_host | default('x') }}");
  EXPECT_EQ(requests[0].inputs,
            (std::map<std::string, std::string>{{"env", "staging"}, {"host", "web1"}}));
  EXPECT_EQ(requests[0].resolved.inputs.parameters[0].value, "web1");
}

TEST(RunStateTest, CredentialNamesAreResolved) {
  Template deploy;
  deploy.name = "deploy";
  deploy.type = TemplateType::kAnsible;
  deploy.inputs.parameters.push_back(Param("env"));
  deploy.ansible.emplace();
  deploy.ansible->playbook = "site.yml";
  deploy.ansible->vault_password_ref = "vault-{{inputs.parameters.env}}";
  deploy.ansible->private_key_ref = "{{workflow.parameters.key}}";
  deploy.ansible->become_password_ref = "sudo-{{inputs.parameters.env}}";
  deploy.ansible->env_from_refs = {"plain", "{{inputs.parameters.env}}.env"};
  RunState state =
      MustCreate(MakeWorkflow({Dag("main", {Task("A", "deploy", "", {{"env", "prod"}})}), deploy}),
                 {{"key", "deploy.key"}});
  std::vector<DispatchRequest> requests = state.Advance(1000);
  ASSERT_EQ(requests.size(), 1u);
  const AnsibleSpec& a = *requests[0].resolved.ansible;
  EXPECT_EQ(a.vault_password_ref, "vault-prod");
  EXPECT_EQ(a.private_key_ref, "deploy.key");
  EXPECT_EQ(a.become_password_ref, "sudo-prod");
  EXPECT_EQ(a.env_from_refs, (std::vector<std::string>{"plain", "prod.env"}));
}

TEST(RunStateTest, WorkflowParallelismSerialises) {
  RunState state = MustCreate(MakeWorkflow(
      {Dag("main", {Task("A", "echo"), Task("B", "echo"), Task("C", "echo")}), Leaf("echo")},
      /*parallelism=*/1));
  Driver driver(&state);
  EXPECT_THAT(driver.Advance(), ElementsAre("run.A"));
  EXPECT_EQ(NodeOf(state, "run.B").phase, NodePhase::kPending);
  EXPECT_THAT(driver.Advance(), IsEmpty());
  driver.Finish("run.A");
  EXPECT_THAT(driver.Advance(), ElementsAre("run.B"));
  driver.Finish("run.B");
  EXPECT_THAT(driver.Advance(), ElementsAre("run.C"));
  driver.Finish("run.C");
  EXPECT_EQ(state.phase(), NodePhase::kSucceeded);
}

TEST(RunStateTest, DagParallelismCapsItsPods) {
  DagTask fan = Task("fan", "echo");
  fan.with_items = {1, 2, 3, 4, 5};
  Template main = Dag("main", {fan});
  main.parallelism = 2;
  RunState state = MustCreate(MakeWorkflow({main, Leaf("echo")}));
  Driver driver(&state);
  std::vector<std::vector<std::string>> batches = driver.Run();
  ASSERT_EQ(batches.size(), 3u);
  EXPECT_THAT(batches[0], ElementsAre("run.fan(0:1)", "run.fan(1:2)"));
  EXPECT_THAT(batches[1], ElementsAre("run.fan(2:3)", "run.fan(3:4)"));
  EXPECT_THAT(batches[2], ElementsAre("run.fan(4:5)"));
}

TEST(RunStateTest, FailFastStillStartsTasksThatDependenciesAllow) {
  // Argo (#5223): failFast does not stop new tasks while anything in the DAG runs.
  RunState state = MustCreate(MakeWorkflow(
      {Dag("main", {Task("A", "echo"), Task("B", "echo"), Task("C", "echo", "B")}), Leaf("echo")}));
  Driver driver(&state);
  EXPECT_THAT(driver.Advance(), ElementsAre("run.A", "run.B"));
  driver.Script("A", {Fail()});
  driver.Finish("run.A");
  driver.Finish("run.B");
  EXPECT_THAT(driver.Advance(), ElementsAre("run.C"));
  EXPECT_FALSE(state.Done());
  driver.Finish("run.C");
  EXPECT_EQ(state.phase(), NodePhase::kFailed);
}

TEST(RunStateTest, StopEndsTheRun) {
  Template flaky = Leaf("flaky");
  flaky.retry_strategy.emplace();
  flaky.retry_strategy->backoff = Backoff{"1m", 1, ""};
  RunState state =
      MustCreate(MakeWorkflow({Dag("main", {Task("A", "echo"), Task("B", "echo"), Task("C", "echo"),
                                            Task("R", "flaky"), Task("D", "echo", "A")}),
                               Leaf("echo"), flaky},
                              /*parallelism=*/3));
  Driver driver(&state);
  EXPECT_THAT(driver.Advance(), ElementsAre("run.A", "run.B", "run.C"));
  driver.Finish("run.C");
  EXPECT_THAT(driver.Advance(), ElementsAre("run.R"));
  driver.Script("R", {Fail()});
  driver.Finish("run.R");
  EXPECT_EQ(state.NextWakeup(), driver.now() + 60000);
  state.TakeChangedNodes();

  state.Stop("stopped by alice", driver.now());
  EXPECT_TRUE(state.stopping());
  EXPECT_FALSE(state.Done());  // A and B still run
  EXPECT_EQ(NodeOf(state, "run.R").phase, NodePhase::kFailed);
  EXPECT_EQ(NodeOf(state, "run.R").message, "stopped by alice");
  EXPECT_EQ(state.NextWakeup(), std::nullopt);
  EXPECT_THAT(driver.Advance(), IsEmpty());
  EXPECT_THAT(state.TakeChangedNodes(), UnorderedElementsAre("run", "run.R"));

  // The caller cancels what runs and reports it.
  driver.Script("A", {Fail("terminated")});
  driver.Script("B", {Fail("terminated")});
  driver.Finish("run.A");
  EXPECT_FALSE(state.Done());
  driver.Finish("run.B");
  EXPECT_THAT(driver.Advance(), IsEmpty());
  EXPECT_TRUE(state.Done());
  EXPECT_EQ(state.phase(), NodePhase::kFailed);
  EXPECT_EQ(state.message(), "stopped by alice");
  EXPECT_EQ(NodeOf(state, "run.A").message, "stopped by alice");
  EXPECT_EQ(state.nodes().count("run.D"), 0u);  // never started
}

TEST(RunStateTest, StopEndsQueuedNodes) {
  RunState state = MustCreate(MakeWorkflow(
      {Dag("main", {Task("A", "echo"), Task("B", "echo")}), Leaf("echo")}, /*parallelism=*/1));
  Driver driver(&state);
  EXPECT_THAT(driver.Advance(), ElementsAre("run.A"));
  state.Stop("stop", driver.now());
  EXPECT_EQ(NodeOf(state, "run.B").phase, NodePhase::kFailed);
  EXPECT_EQ(NodeOf(state, "run.B").message, "stop");
  driver.Finish("run.A");  // finished successfully just as it was stopped
  EXPECT_TRUE(state.Done());
  EXPECT_EQ(state.phase(), NodePhase::kFailed);
}

// Runs `wf` with `script` in one go, and again with a Restore() from the stored nodes after every
// step; both must end the same.
TEST(RunStateTest, RestoreContinuesWhereItWas) {
  Template flaky = Leaf("flaky");
  flaky.retry_strategy.emplace();
  flaky.retry_strategy->limit = "2";
  flaky.retry_strategy->backoff = Backoff{"5s", 2, ""};
  DagTask fan = Task("fan", "echo", "A", {{"x", "{{item}}"}});
  fan.with_items = {"p", "q"};
  auto wf = MakeWorkflow(
      {Dag("main", {Task("A", "flaky"), fan,
                    Task("D", "echo", "fan", {{"x", "{{tasks.fan.outputs.result}}"}})}),
       flaky, Leaf("echo", {"x"})},
      /*parallelism=*/1);
  auto script = [](Driver* driver) {
    driver->Script("A", {Fail()});
    driver->fallback = [](const DispatchRequest& r) {
      return Ok(r.inputs.count("x") ? r.inputs.at("x") : "a");
    };
  };

  RunState straight = MustCreate(wf);
  Driver straight_driver(&straight);
  script(&straight_driver);
  straight_driver.Run();
  ASSERT_EQ(straight.phase(), NodePhase::kSucceeded);

  RunState state = MustCreate(wf);
  std::map<std::string, NodeState> stored;  // what a store would hold
  auto store = [&](RunState* s) {
    for (const std::string& name : s->TakeChangedNodes()) stored[name] = s->nodes().at(name);
  };
  auto restore = [&](RunState* s) {
    std::vector<NodeState> nodes;
    for (const auto& [name, node] : stored) nodes.push_back(node);
    absl::StatusOr<RunState> restored =
        RunState::Restore(wf, {}, "run", std::move(nodes), s->stop_strategy());
    ASSERT_TRUE(restored.ok()) << restored.status();
    *s = *std::move(restored);
  };
  Driver driver(&state);
  script(&driver);
  store(&state);
  EXPECT_THAT(driver.Advance(), ElementsAre("run.A"));
  store(&state);
  restore(&state);  // A is still Running after the restart
  EXPECT_THAT(state.RunningAttempts(), ElementsAre(std::pair<std::string, int>("run.A", 1)));
  driver.Finish("run.A");
  store(&state);
  const int64_t retry_at = NodeOf(state, "run.A").retry_at_ms;
  restore(&state);  // waiting for the backoff
  EXPECT_EQ(NodeOf(state, "run.A").retry_at_ms, retry_at);
  EXPECT_EQ(state.NextWakeup(), retry_at);
  for (int step = 0; step < 100 && !state.Done(); ++step) {
    std::vector<std::string> batch = driver.Advance();
    store(&state);
    restore(&state);
    if (driver.running().empty()) {
      ASSERT_TRUE(state.NextWakeup().has_value());
      driver.now() = std::max(driver.now(), *state.NextWakeup());
      continue;
    }
    driver.now() += 10;
    driver.Finish(std::string(driver.running().front().node_name));
    store(&state);
    restore(&state);
  }
  ASSERT_TRUE(state.Done());
  EXPECT_EQ(state.phase(), straight.phase());
  ASSERT_EQ(state.nodes().size(), straight.nodes().size());
  for (const auto& [name, node] : straight.nodes()) {
    const NodeState& other = NodeOf(state, name);
    EXPECT_EQ(other.phase, node.phase) << name;
    EXPECT_EQ(other.inputs, node.inputs) << name;
    EXPECT_EQ(other.outputs.result, node.outputs.result) << name;
    EXPECT_EQ(other.attempts.size(), node.attempts.size()) << name;
    EXPECT_EQ(other.children, node.children) << name;
  }
  EXPECT_EQ(NodeOf(state, "run.D").inputs.at("x"), R"(["p","q"])");
}

TEST(RunStateTest, RestoreWhileStoppingKeepsTheMessage) {
  RunState state = MustCreate(Diamond());
  Driver driver(&state);
  driver.Advance();
  state.Stop("stopped by bob", driver.now());
  std::vector<NodeState> nodes;
  for (const auto& [name, node] : state.nodes()) nodes.push_back(node);
  absl::StatusOr<RunState> restored =
      RunState::Restore(Diamond(), {}, "run", std::move(nodes), StopStrategy::kTerminate);
  ASSERT_TRUE(restored.ok());
  EXPECT_THAT(restored->Advance(driver.now()), IsEmpty());
  ASSERT_TRUE(restored->OnAttemptFinished("run.A", 1, Fail("killed"), driver.now()));
  EXPECT_TRUE(restored->Done());
  EXPECT_EQ(restored->phase(), NodePhase::kFailed);
  EXPECT_EQ(restored->message(), "stopped by bob");
}

TEST(RunStateTest, RestoreRejectsNodesWithoutRoot) {
  NodeState orphan;
  orphan.name = "run.A";
  EXPECT_FALSE(RunState::Restore(Diamond(), {}, "run", {orphan}, StopStrategy::kNone).ok());
}

TEST(RunStateTest, NestedDagNodesAreNamedAfterTheirParent) {
  Template inner = Dag("inner", {Task("x", "echo", "", {{"m", "{{inputs.parameters.who}}"}})});
  inner.inputs.parameters.push_back(Param("who"));
  RunState state = MustCreate(
      MakeWorkflow({Dag("main", {Task("outer", "inner", "", {{"who", "{{workflow.name}}"}}),
                                 Task("after", "echo", "outer", {{"m", "done"}})}),
                    inner, Leaf("echo", {"m"})}));
  Driver driver(&state);
  std::vector<std::vector<std::string>> batches = driver.Run();
  EXPECT_THAT(batches, ElementsAre(ElementsAre("run.outer.x"), ElementsAre("run.after")));
  EXPECT_EQ(NodeOf(state, "run.outer").type, NodeType::kDag);
  EXPECT_EQ(NodeOf(state, "run.outer").phase, NodePhase::kSucceeded);
  EXPECT_EQ(NodeOf(state, "run.outer.x").parent, "run.outer");
  EXPECT_EQ(NodeOf(state, "run.outer.x").inputs.at("m"), "run");
  EXPECT_EQ(state.phase(), NodePhase::kSucceeded);
}

TEST(RunStateTest, DagTargetRunsOnlyTargetsAndAncestors) {
  Template main = Dag("main", {Task("A", "echo"), Task("B", "echo", "A"), Task("C", "echo", "A"),
                               Task("D", "echo", "B")});
  main.dag->target = "C";
  RunState state = MustCreate(MakeWorkflow({main, Leaf("echo")}));
  Driver driver(&state);
  driver.Run();
  EXPECT_EQ(state.phase(), NodePhase::kSucceeded);
  EXPECT_EQ(state.nodes().count("run.B"), 0u);
  EXPECT_EQ(state.nodes().count("run.D"), 0u);
  EXPECT_EQ(NodeOf(state, "run.C").phase, NodePhase::kSucceeded);
}

TEST(RunStateTest, DagTargetMayNameAWorkflowParameter) {
  Template main = Dag("main", {Task("A", "echo"), Task("B", "echo", "A"), Task("C", "echo", "A"),
                               Task("D", "echo", "B")});
  main.dag->target = "{{workflow.parameters.target}}";
  RunState state = MustCreate(MakeWorkflow({main, Leaf("echo")}), {{"target", "C"}});
  Driver driver(&state);
  driver.Run();
  EXPECT_EQ(state.phase(), NodePhase::kSucceeded) << state.message();
  EXPECT_EQ(state.nodes().count("run.B"), 0u);
  EXPECT_EQ(state.nodes().count("run.D"), 0u);
  EXPECT_EQ(NodeOf(state, "run.C").phase, NodePhase::kSucceeded);
}

TEST(RunStateTest, ATemplateTimeoutFromAnInputIsSubstituted) {
  Template echo = Leaf("echo", {"limit"});
  echo.timeout = "{{inputs.parameters.limit}}";
  RunState state =
      MustCreate(MakeWorkflow({Dag("main", {Task("A", "echo", "", {{"limit", "10s"}})}), echo}));
  std::vector<DispatchRequest> requests = state.Advance(1000);
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].resolved.timeout, "10s");
}

TEST(RunStateTest, LeafEntrypointIsThePodRoot) {
  RunState state = MustCreate(MakeWorkflow({Leaf("hello", {"who"})}), {{"who", "world"}});
  std::vector<DispatchRequest> requests = state.Advance(1000);
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].node_name, "run");
  EXPECT_EQ(requests[0].resolved.container->args, std::vector<std::string>{"world"});
  EXPECT_EQ(NodeOf(state, "run").type, NodeType::kPod);
  ASSERT_TRUE(state.OnAttemptFinished("run", 1, Ok("world"), 2000));
  EXPECT_TRUE(state.Done());
  EXPECT_EQ(state.phase(), NodePhase::kSucceeded);
}

TEST(RunStateTest, WhenFalseSkipsTheTaskAndItsDependentsStillRun) {
  DagTask a = Task("A", "echo");
  a.when = "{{workflow.parameters.coin}} == heads";
  DagTask b = Task("B", "echo");
  b.when = "{{workflow.parameters.coin}} == tails";
  RunState state =
      MustCreate(MakeWorkflow({Dag("main", {a, b, Task("C", "echo", "A && B")}), Leaf("echo")}),
                 {{"coin", "tails"}});
  Driver driver(&state);
  driver.Run();
  EXPECT_EQ(NodeOf(state, "run.A").phase, NodePhase::kSkipped);
  EXPECT_EQ(NodeOf(state, "run.A").message, "when 'tails == heads' evaluated false");
  EXPECT_EQ(NodeOf(state, "run.B").phase, NodePhase::kSucceeded);
  EXPECT_EQ(NodeOf(state, "run.C").phase, NodePhase::kSucceeded) << "A alone accepts Skipped";
  EXPECT_EQ(state.phase(), NodePhase::kSucceeded);
}

TEST(RunStateTest, WhenIsEvaluatedPerItemOfAFanOut) {
  DagTask task = Task("A", "echo");
  task.with_items = {1, 5, 9};
  task.when = "{{item}} > 2";
  RunState state = MustCreate(MakeWorkflow({Dag("main", {task}), Leaf("echo")}));
  Driver driver(&state);
  driver.Run();
  EXPECT_EQ(NodeOf(state, "run.A(0:1)").phase, NodePhase::kSkipped);
  EXPECT_EQ(NodeOf(state, "run.A(0:1)").message, "when '1 > 2' evaluated false");
  EXPECT_EQ(NodeOf(state, "run.A(1:5)").phase, NodePhase::kSucceeded);
  EXPECT_EQ(NodeOf(state, "run.A(2:9)").phase, NodePhase::kSucceeded);
  EXPECT_EQ(state.phase(), NodePhase::kSucceeded);
}

TEST(RunStateTest, AWhenThatDoesNotEvaluateIsAnError) {
  DagTask task = Task("A", "echo");
  task.when = "{{workflow.name}}";
  RunState state = MustCreate(MakeWorkflow({Dag("main", {task}), Leaf("echo")}));
  EXPECT_THAT(state.Advance(1000), IsEmpty());
  EXPECT_EQ(NodeOf(state, "run.A").phase, NodePhase::kError);
  EXPECT_EQ(NodeOf(state, "run.A").message,
            "when 'run': 'run' is not a boolean; compare it, e.g. run == value");
}

TEST(RunStateTest, TemplateTypesDagdCannotRunAreNamed) {
  Template resource;
  resource.name = "create-cm";
  resource.type = TemplateType::kUnsupported;
  absl::StatusOr<RunState> root = RunState::Create(MakeWorkflow({resource}), {}, "run", 0);
  EXPECT_EQ(root.status().code(), absl::StatusCode::kUnimplemented);

  RunState state = MustCreate(MakeWorkflow({Dag("main", {Task("A", "create-cm")}), resource}));
  state.Advance(1000);
  EXPECT_EQ(NodeOf(state, "run.A").phase, NodePhase::kError);
  EXPECT_EQ(NodeOf(state, "run.A").message,
            "template 'create-cm' is of a type dagd cannot run yet");
}

TEST(RunStateTest, ChangedNodesAreReportedOnce) {
  RunState state = MustCreate(Diamond());
  EXPECT_THAT(state.TakeChangedNodes(), ElementsAre("run"));
  state.Advance(1000);
  EXPECT_THAT(state.TakeChangedNodes(), ElementsAre("run", "run.A"));  // run: new child
  EXPECT_THAT(state.TakeChangedNodes(), IsEmpty());
  EXPECT_TRUE(state.SetAttemptRunner("run.A", 1, "local", "run-a-1"));
  EXPECT_FALSE(state.SetAttemptRunner("run.A", 2, "local", "x"));
  EXPECT_THAT(state.TakeChangedNodes(), ElementsAre("run.A"));
  EXPECT_EQ(NodeOf(state, "run.A").attempts[0].external_name, "run-a-1");
  EXPECT_FALSE(state.OnAttemptFinished("run.A", 2, Ok(), 1100));
  EXPECT_FALSE(state.OnAttemptFinished("run.nope", 1, Ok(), 1100));
  EXPECT_TRUE(state.OnAttemptFinished("run.A", 1, Ok(), 1100));
  EXPECT_FALSE(state.OnAttemptFinished("run.A", 1, Ok(), 1100));  // already finished
}

TEST(RunStateTest, CycleIsAnErrorOfTheDag) {
  RunState state = MustCreate(MakeWorkflow(
      {Dag("main", {Task("A", "echo", "B"), Task("B", "echo", "A"), Task("C", "echo")}),
       Leaf("echo")}));
  state.Advance(1000);
  EXPECT_EQ(state.phase(), NodePhase::kError);
  EXPECT_THAT(state.message(), HasSubstr("tasks A, B are in a cycle"));
}

TEST(NodeTypeTest, NamesRoundTrip) {
  for (NodeType type : {NodeType::kDag, NodeType::kTaskGroup, NodeType::kPod, NodeType::kSteps,
                        NodeType::kStepGroup, NodeType::kSuspend, NodeType::kRetry}) {
    NodeType parsed = NodeType::kPod;
    ASSERT_TRUE(ParseNodeType(NodeTypeName(type), &parsed));
    EXPECT_EQ(parsed, type);
  }
  NodeType ignored;
  EXPECT_FALSE(ParseNodeType("Plugin", &ignored));  // an Argo node type dagd has no use for
}

}  // namespace
}  // namespace dagd::engine
