#include "engine/task_graph.h"

#include <gtest/gtest.h>

#include "engine/parser.h"

namespace dagd::engine {
namespace {

Workflow Parse(const std::string& yaml) {
  absl::StatusOr<Workflow> parsed = ParseWorkflow(yaml, "wf.yaml");
  EXPECT_TRUE(parsed.ok()) << parsed.status();
  return parsed.ok() ? *parsed : Workflow{};
}

constexpr char kDiamond[] = R"YAML(
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {generateName: diamond-}
spec:
  entrypoint: main
  templates:
  - name: main
    dag:
      tasks:
      - {name: A, template: step}
      - {name: B, template: step, depends: "A"}
      - {name: C, template: inner, dependencies: [A]}
      - {name: D, template: step, depends: "B && (C.Succeeded || C.Failed)"}
  - name: inner
    dag:
      tasks:
      - {name: X, template: step}
  - name: step
    container: {image: alpine, command: [x]}
)YAML";

TEST(TaskGraphTest, OneVertexPerTaskAndAnEdgePerDependency) {
  absl::StatusOr<TaskGraph> graph = BuildTaskGraph(Parse(kDiamond));
  ASSERT_TRUE(graph.ok()) << graph.status();
  EXPECT_TRUE(graph->entrypoint_is_dag);
  ASSERT_EQ(graph->vertices.size(), 4u);
  EXPECT_EQ(graph->vertices[0].task, "A");
  EXPECT_EQ(graph->vertices[2].task, "C");
  EXPECT_EQ(graph->vertices[2].template_name, "inner");
  EXPECT_TRUE(graph->vertices[2].nested_dag);
  EXPECT_FALSE(graph->vertices[3].nested_dag);
  // D names C twice (C.Succeeded || C.Failed): one edge.
  EXPECT_EQ(graph->edges, (std::vector<std::pair<size_t, size_t>>{{0, 1}, {0, 2}, {1, 3}, {2, 3}}));
}

TEST(TaskGraphTest, ANonDagEntrypointIsOneVertex) {
  absl::StatusOr<TaskGraph> graph = BuildTaskGraph(Parse(R"(
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {name: one}
spec:
  entrypoint: step
  templates:
  - name: step
    container: {image: alpine, command: [x]}
)"));
  ASSERT_TRUE(graph.ok()) << graph.status();
  EXPECT_FALSE(graph->entrypoint_is_dag);
  ASSERT_EQ(graph->vertices.size(), 1u);
  EXPECT_EQ(graph->vertices[0].task, "step");
  EXPECT_TRUE(graph->edges.empty());
}

TEST(TaskGraphTest, UnknownTasksAndBadExpressionsAreErrors) {
  std::string unknown = kDiamond;
  unknown.replace(unknown.find("depends: \"A\""), 12, "depends: \"Z\"");
  absl::StatusOr<TaskGraph> graph = BuildTaskGraph(Parse(unknown));
  EXPECT_EQ(graph.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(graph.status().message().find("task B depends on Z, which is not a task"),
            std::string::npos)
      << graph.status();

  std::string bad = kDiamond;
  bad.replace(bad.find("depends: \"A\""), 12, "depends: \"A &&\"");
  graph = BuildTaskGraph(Parse(bad));
  EXPECT_EQ(graph.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(graph.status().message().find("task B: "), std::string::npos) << graph.status();

  Workflow no_entry = Parse(kDiamond);
  no_entry.entrypoint = "missing";
  EXPECT_EQ(BuildTaskGraph(no_entry).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace dagd::engine
