// Artifacts in RunState: keys resolved from `from`, key-only artifacts, raw data, optional
// inputs and outputs, dag/steps inputs and outputs, and globalName outputs (Argo's
// artifact-passing, key-only-artifact, map-reduce, conditional-artifacts, nested-workflow and
// global-outputs examples).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "engine/run_state.h"
#include "tests/engine/run_state_driver.h"

namespace dagd::engine::test {
namespace {

using ::testing::HasSubstr;
using ::testing::MatchesRegex;

Artifact Art(const std::string& name, const std::string& path = "") {
  Artifact a;
  a.name = name;
  a.path = path;
  return a;
}

Artifact From(const std::string& name, const std::string& from) {
  Artifact a;
  a.name = name;
  a.from = from;
  return a;
}

// What the local runner reports: every output artifact saved under the key it was given.
AttemptResult SavesEveryArtifact(const DispatchRequest& request) {
  AttemptResult result;
  for (const Artifact& output : request.resolved.outputs.artifacts) {
    result.artifacts[output.name] = output.key;
  }
  return result;
}

// artifact-passing.yaml: generate leaves /tmp/hello_world.txt, consume reads it as /tmp/message.
std::shared_ptr<const Workflow> Passing(const std::string& sub_path = "") {
  Template gen = Leaf("gen");
  gen.outputs.artifacts = {Art("hello-art", "/tmp/hello_world.txt")};
  Template print = Leaf("print");
  print.inputs.artifacts = {Art("message", "/tmp/message")};
  DagTask consume = Task("consume", "print");
  consume.arguments.artifacts = {From("message", "{{steps.generate.outputs.artifacts.hello-art}}")};
  consume.arguments.artifacts[0].sub_path = sub_path;
  return MakeWorkflow({Steps("main", {{Task("generate", "gen")}, {consume}}), gen, print});
}

TEST(RunStateArtifactsTest, AnOutputsKeyIsTheNextNodesInput) {
  RunState state = MustCreate(Passing("hello_world.txt"));
  Driver driver(&state);
  driver.fallback = SavesEveryArtifact;
  ASSERT_EQ(driver.Advance(), std::vector<std::string>{"run[0].generate"});
  const Artifact& output = driver.Request("run[0].generate")->resolved.outputs.artifacts[0];
  // Stored per run and node, as a tgz by default.
  EXPECT_THAT(output.key, MatchesRegex("run/_0_\\.generate-[0-9a-f]{8}/hello-art\\.tgz"));
  const std::string key = output.key;
  driver.Finish("run[0].generate");
  EXPECT_EQ(NodeOf(state, "run[0].generate").outputs.artifacts.at("hello-art"), key);

  ASSERT_EQ(driver.Advance(), std::vector<std::string>{"run[1].consume"});
  const NodeState& consume = NodeOf(state, "run[1].consume");
  EXPECT_EQ(consume.input_artifacts.at("message"), (ArtifactRef{key, "hello_world.txt", {}}));
  const Artifact& input = driver.Request("run[1].consume")->resolved.inputs.artifacts[0];
  EXPECT_EQ(input.key, key);
  EXPECT_EQ(input.sub_path, "hello_world.txt");
  EXPECT_EQ(input.path, "/tmp/message");
  driver.Run();
  EXPECT_EQ(state.phase(), NodePhase::kSucceeded);
}

TEST(RunStateArtifactsTest, AMissingInputIsAnErrorUnlessOptional) {
  Template print = Leaf("print");
  print.inputs.artifacts = {Art("message", "/tmp/message"), Art("extra", "/tmp/extra")};
  print.inputs.artifacts[1].optional = true;
  DagTask consume = Task("consume", "print");
  // Names an output its producer did not leave: the optional input is simply absent.
  consume.arguments.artifacts = {From("extra", "{{tasks.nothing.outputs.artifacts.x}}")};
  RunState state = MustCreate(MakeWorkflow({Dag("main", {consume}), print}));
  Driver driver(&state);
  driver.Run();
  const NodeState& node = NodeOf(state, "run.consume");
  EXPECT_EQ(node.phase, NodePhase::kError);
  EXPECT_EQ(node.message, "inputs.artifacts.message was not supplied");

  print.inputs.artifacts[0].optional = true;
  RunState optional = MustCreate(MakeWorkflow({Dag("main", {consume}), print}));
  Driver optional_driver(&optional);
  ASSERT_EQ(optional_driver.Advance(), std::vector<std::string>{"run.consume"});
  for (const Artifact& input : optional_driver.Request("run.consume")->resolved.inputs.artifacts) {
    EXPECT_EQ(input.key, "") << input.name;  // nothing for the runner to place
  }
}

// key-only-artifact.yaml and map-reduce.yaml: keys with tags, raw inputs, archive none.
TEST(RunStateArtifactsTest, KeyOnlyArtifactsAndRawDataKeepTheirPlace) {
  Template split = Leaf("split");
  split.outputs.artifacts = {Art("parts", "/mnt/out")};
  split.outputs.artifacts[0].key = "{{workflow.name}}/parts/";
  split.outputs.artifacts[0].archive_none = true;
  Template map = Leaf("map", {"partId"});
  map.inputs.artifacts = {Art("part", "/mnt/in/part.json"), Art("note", "/etc/note")};
  map.inputs.artifacts[1].raw = "part {{inputs.parameters.partId}}";
  map.outputs.artifacts = {Art("out", "/mnt/out/part.json")};
  map.outputs.artifacts[0].key = "{{workflow.name}}/results/{{inputs.parameters.partId}}.json";
  DagTask map_task = Task("map", "map", "split");
  map_task.arguments.parameters = {Param("partId", "3")};
  Artifact part = Art("part");
  part.key = "{{workflow.name}}/parts/{{tasks.split.status}}.json";
  map_task.arguments.artifacts = {part};
  RunState state =
      MustCreate(MakeWorkflow({Dag("main", {Task("split", "split"), map_task}), split, map}));
  Driver driver(&state);
  driver.fallback = SavesEveryArtifact;
  driver.Advance();
  EXPECT_EQ(driver.Request("run.split")->resolved.outputs.artifacts[0].key, "run/parts/");
  driver.Finish("run.split");
  driver.Advance();
  const DispatchRequest* request = driver.Request("run.map");
  ASSERT_NE(request, nullptr);
  EXPECT_EQ(request->resolved.inputs.artifacts[0].key, "run/parts/Succeeded.json");
  EXPECT_EQ(request->resolved.inputs.artifacts[1].raw, "part 3");
  EXPECT_EQ(request->resolved.inputs.artifacts[1].key, "");
  EXPECT_EQ(request->resolved.outputs.artifacts[0].key, "run/results/3.json");
}

// conditional-artifacts.yaml: a steps template's output artifact chosen by an expression.
TEST(RunStateArtifactsTest, StepsOutputsComeFromFromOrFromExpression) {
  Template heads = Leaf("heads");
  heads.outputs.artifacts = {Art("result", "/result.txt")};
  Template main = Steps("main", {{Task("flip", "echo")}, {Task("heads", "heads")}});
  main.outputs.artifacts = {From("direct", "{{steps.heads.outputs.artifacts.result}}"),
                            Art("chosen"), From("absent", "{{steps.flip.outputs.artifacts.x}}")};
  main.outputs.artifacts[1].from_expression =
      "steps['flip'].outputs.result == 'heads' ? steps.heads.outputs.artifacts.result : 'none'";
  main.outputs.artifacts[2].optional = true;
  RunState state = MustCreate(MakeWorkflow({main, heads, Leaf("echo")}));
  Driver driver(&state);
  driver.fallback = SavesEveryArtifact;
  driver.Script("flip", {Ok("heads")});
  driver.Run();
  ASSERT_EQ(state.phase(), NodePhase::kSucceeded) << state.message();
  const std::string key = NodeOf(state, "run[1].heads").outputs.artifacts.at("result");
  const std::map<std::string, std::string> expected = {{"direct", key}, {"chosen", key}};
  EXPECT_EQ(NodeOf(state, "run").outputs.artifacts, expected);

  // A source that does not resolve, not optional: the node is an Error naming the output.
  main.outputs.artifacts[2].optional = false;
  RunState strict = MustCreate(MakeWorkflow({main, heads, Leaf("echo")}));
  Driver strict_driver(&strict);
  strict_driver.fallback = SavesEveryArtifact;
  strict_driver.Script("flip", {Ok("heads")});
  strict_driver.Run();
  EXPECT_EQ(strict.phase(), NodePhase::kError);
  EXPECT_THAT(NodeOf(strict, "run").message, HasSubstr("outputs.artifacts.absent: "));
}

// global-outputs.yaml: outputs with a globalName are {{workflow.outputs.…}} once produced, also
// after a restart.
TEST(RunStateArtifactsTest, AStepsTemplatePassesItsInputArtifactsOn) {
  // nested-workflow.yaml: `nested` takes an artifact and hands it to its own step by
  // {{inputs.artifacts.NAME}}.
  Template gen = Leaf("gen");
  gen.outputs.artifacts = {Art("out", "/tmp/out")};
  Template print = Leaf("print");
  print.inputs.artifacts = {Art("in", "/tmp/in")};
  DagTask inner = Task("consume", "print");
  inner.arguments.artifacts = {From("in", "{{inputs.artifacts.nested-in}}")};
  Template nested = Steps("nested", {{inner}});
  nested.inputs.artifacts = {Art("nested-in")};
  DagTask call = Task("nested", "nested");
  call.arguments.artifacts = {From("nested-in", "{{steps.generate.outputs.artifacts.out}}")};
  RunState state = MustCreate(
      MakeWorkflow({Steps("main", {{Task("generate", "gen")}, {call}}), gen, print, nested}));
  Driver driver(&state);
  driver.fallback = SavesEveryArtifact;
  ASSERT_EQ(driver.Advance(), std::vector<std::string>{"run[0].generate"});
  const std::string key = driver.Request("run[0].generate")->resolved.outputs.artifacts[0].key;
  driver.Finish("run[0].generate");
  ASSERT_EQ(driver.Advance(), std::vector<std::string>{"run[1].nested[0].consume"});
  EXPECT_EQ(NodeOf(state, "run[1].nested").input_artifacts.at("nested-in").key, key);
  EXPECT_EQ(NodeOf(state, "run[1].nested[0].consume").input_artifacts.at("in").key, key);
  driver.Run();
  EXPECT_EQ(state.phase(), NodePhase::kSucceeded);

  // Raw data cannot be passed on by key: the steps node ends in Error naming the input.
  nested.inputs.artifacts[0].raw = "text";
  call.arguments.artifacts.clear();
  RunState raw = MustCreate(MakeWorkflow({Steps("main", {{call}}), print, nested}));
  Driver raw_driver(&raw);
  raw_driver.Run();
  EXPECT_EQ(NodeOf(raw, "run[0].nested").phase, NodePhase::kError);
  EXPECT_THAT(NodeOf(raw, "run[0].nested").message,
              HasSubstr("inputs.artifacts.nested-in: a steps template passes artifacts on by key"));
}

TEST(RunStateArtifactsTest, GlobalOutputsReachLaterNodesAndSurviveRestore) {
  Template gen = Leaf("gen");
  Parameter param = Param("hello-param");
  param.value_from.emplace();
  param.value_from->path = "/tmp/hello_world.txt";
  param.global_name = "my-global-param";
  gen.outputs.parameters = {param};
  gen.outputs.artifacts = {Art("hello-art", "/tmp/hello_world.txt")};
  gen.outputs.artifacts[0].global_name = "my-global-art";
  Template consume = Leaf("consume", {"param"});
  consume.inputs.artifacts = {Art("art", "/art")};
  DagTask use = Task("use", "consume");
  use.arguments.parameters = {Param("param", "{{workflow.outputs.parameters.my-global-param}}")};
  use.arguments.artifacts = {From("art", "{{workflow.outputs.artifacts.my-global-art}}")};
  auto wf = MakeWorkflow({Steps("main", {{Task("generate", "gen")}, {use}}), gen, consume});
  RunState state = MustCreate(wf);
  Driver driver(&state);
  driver.fallback = [](const DispatchRequest& request) {
    AttemptResult result = SavesEveryArtifact(request);
    result.parameters["hello-param"] = "hello world";
    return result;
  };
  driver.Advance();
  driver.Finish("run[0].generate");
  const std::string key = NodeOf(state, "run[0].generate").outputs.artifacts.at("hello-art");

  // After a restart the globals are rebuilt from the stored nodes.
  std::vector<NodeState> stored;
  for (const auto& [name, node] : state.nodes()) stored.push_back(node);
  absl::StatusOr<RunState> restored = RunState::Restore(wf, {}, "run", stored, StopStrategy::kNone);
  ASSERT_TRUE(restored.ok()) << restored.status();
  for (RunState* run : {&state, &*restored}) {
    Driver next(run, driver.now());
    ASSERT_EQ(next.Advance(), std::vector<std::string>{"run[1].use"});
    const NodeState& node = NodeOf(*run, "run[1].use");
    EXPECT_EQ(node.inputs.at("param"), "hello world");
    EXPECT_EQ(node.input_artifacts.at("art").key, key);
  }
}

}  // namespace
}  // namespace dagd::engine::test
