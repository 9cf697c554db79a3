#include "cmd/dagctl/graph.h"

#include <string>

#include "engine/parser.h"
#include "gtest/gtest.h"

namespace dagd::dagctl {
namespace {

constexpr char kDiamond[] = R"yaml(apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {generateName: diamond-}
spec:
  entrypoint: main
  templates:
  - name: main
    dag:
      tasks:
      - {name: A, template: step}
      - {name: B, template: step, dependencies: [A]}
      - {name: C, template: inner, depends: A.Succeeded}
      - {name: D, template: step, depends: "B && (C || C.Failed)"}
  - name: inner
    dag:
      tasks:
      - {name: x, template: step}
  - name: step
    container: {image: alpine, command: ["true"]}
)yaml";

DagGraph Diamond() {
  absl::StatusOr<engine::Workflow> workflow = engine::ParseWorkflow(kDiamond, "diamond.yaml");
  EXPECT_TRUE(workflow.ok()) << workflow.status();
  absl::StatusOr<DagGraph> graph = BuildDagGraph(*workflow);
  EXPECT_TRUE(graph.ok()) << graph.status();
  return graph.ok() ? *graph : DagGraph{};
}

TEST(GraphTest, DiamondVerticesAndEdgesInTaskOrder) {
  const DagGraph graph = Diamond();
  EXPECT_EQ(graph.name, "diamond-");
  ASSERT_EQ(graph.vertices.size(), 4u);
  EXPECT_EQ(graph.vertices[2].task, "C");
  EXPECT_TRUE(graph.vertices[2].nested_dag);
  EXPECT_FALSE(graph.vertices[0].nested_dag);
  EXPECT_EQ(graph.edges, (std::vector<std::pair<size_t, size_t>>{{0, 1}, {0, 2}, {1, 3}, {2, 3}}));
}

TEST(GraphTest, DotOfAFileHasUnfilledBoxesAndEveryEdge) {
  const std::string dot = RenderDot(Diamond());
  EXPECT_EQ(dot.rfind("digraph G {\n", 0), 0u) << dot;
  EXPECT_NE(dot.find("label=\"diamond-\";\nlabelloc=t;\nrankdir=LR;\n"), std::string::npos) << dot;
  EXPECT_NE(dot.find("0[label=\"A\", tooltip=\"template step\", fillcolor=\"white\"];\n"),
            std::string::npos)
      << dot;
  EXPECT_NE(dot.find("2[label=\"C\", tooltip=\"template inner\", fillcolor=\"white\", "
                     "shape=component];\n"),
            std::string::npos)
      << dot;
  for (const char* edge : {"0->1 ;\n", "0->2 ;\n", "1->3 ;\n", "2->3 ;\n"}) {
    EXPECT_NE(dot.find(edge), std::string::npos) << edge << " in " << dot;
  }
  EXPECT_EQ(dot.find("->0"), std::string::npos) << dot;
  EXPECT_EQ(dot.substr(dot.size() - 2), "}\n");
}

TEST(GraphTest, RunPhasesBecomeLabelsAndFillColors) {
  v1::Run run;
  run.set_id("diamond-x1");
  const auto add = [&run](const std::string& name, const std::string& display,
                          const std::string& parent, v1::Phase phase) {
    v1::Node* node = run.add_nodes();
    node->set_name(name);
    node->set_display_name(display);
    node->set_parent(parent);
    node->set_phase(phase);
  };
  add("diamond-x1", "diamond-x1", "", v1::PHASE_FAILED);
  add("diamond-x1.A", "A", "diamond-x1", v1::PHASE_SUCCEEDED);
  add("diamond-x1.B", "B", "diamond-x1", v1::PHASE_FAILED);
  add("diamond-x1.C", "C", "diamond-x1", v1::PHASE_RUNNING);
  add("diamond-x1.C.x", "x", "diamond-x1.C", v1::PHASE_ERROR);  // nested: not a vertex
  DagGraph graph = Diamond();
  ApplyRunPhases(run, &graph);
  EXPECT_EQ(graph.name, "diamond-x1");
  EXPECT_EQ(graph.vertices[0].phase, v1::PHASE_SUCCEEDED);
  EXPECT_EQ(graph.vertices[2].phase, v1::PHASE_RUNNING);
  EXPECT_EQ(graph.vertices[3].phase, v1::PHASE_UNSPECIFIED);  // D has no node yet
  const std::string dot = RenderDot(graph);
  EXPECT_NE(dot.find("1[label=\"B\\nFailed\", tooltip=\"template step\", fillcolor=\"" +
                     PhaseFillColor(v1::PHASE_FAILED) + "\"];"),
            std::string::npos)
      << dot;
  EXPECT_NE(dot.find("3[label=\"D\", tooltip=\"template step\", fillcolor=\"white\"];"),
            std::string::npos)
      << dot;
  EXPECT_NE(PhaseFillColor(v1::PHASE_SUCCEEDED), PhaseFillColor(v1::PHASE_FAILED));

  const nlohmann::ordered_json json = GraphJson(graph);
  EXPECT_EQ(json["name"], "diamond-x1");
  EXPECT_EQ(json["nodes"][1],
            (nlohmann::ordered_json{{"task", "B"}, {"template", "step"}, {"phase", "Failed"}}));
  EXPECT_FALSE(json["nodes"][3].contains("phase"));
  EXPECT_EQ(json["edges"][3], (nlohmann::ordered_json{{"from", "C"}, {"to", "D"}}));
}

TEST(GraphTest, ANonDagEntrypointIsOneVertex) {
  absl::StatusOr<engine::Workflow> workflow = engine::ParseWorkflow(
      "apiVersion: argoproj.io/v1alpha1\nkind: Workflow\nmetadata: {name: one}\nspec:\n"
      "  entrypoint: step\n  templates:\n  - name: step\n"
      "    container: {image: alpine, command: [\"true\"]}\n",
      "one.yaml");
  ASSERT_TRUE(workflow.ok()) << workflow.status();
  absl::StatusOr<DagGraph> graph = BuildDagGraph(*workflow);
  ASSERT_TRUE(graph.ok()) << graph.status();
  ASSERT_EQ(graph->vertices.size(), 1u);
  EXPECT_EQ(graph->vertices[0].task, "step");
  EXPECT_TRUE(graph->edges.empty());
}

}  // namespace
}  // namespace dagd::dagctl
