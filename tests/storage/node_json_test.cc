#include "storage/node_json.h"

#include "gtest/gtest.h"

namespace dagd::storage {
namespace {

using engine::NodePhase;
using engine::NodeState;
using nlohmann::json;

NodeState FullNode() {
  NodeState node;
  node.name = "run.deploy(0:a)";
  node.display_name = "deploy(0:a)";
  node.parent = "run.deploy";
  node.task_name = "deploy";
  node.template_name = "deploy-tmpl";
  node.type = engine::NodeType::kTaskGroup;
  node.phase = NodePhase::kError;
  node.message = "boom";
  node.inputs = {{"host", "a"}};
  node.outputs.parameters = {{"ip", "10.0.0.1"}};
  node.outputs.result = "";
  node.outputs.artifacts = {{"log", "run/deploy-0a1b2c3d/log.tgz"}};
  node.input_artifacts = {{"code", {"run/build-00000000/code", "src", std::nullopt}},
                          {"note", {"", "", "hello"}}};
  engine::AttemptRecord attempt;
  attempt.number = 1;
  attempt.phase = NodePhase::kError;
  attempt.runner = "local";
  attempt.external_name = "pid-1";
  attempt.exit_code = 137;
  attempt.message = "killed";
  attempt.started_at_ms = 5;
  attempt.finished_at_ms = 6;
  node.attempts = {attempt};
  node.children = {"x", "y"};
  node.item = json{{"name", "a"}, {"n", 1}};
  node.started_at_ms = 1;
  node.finished_at_ms = 2;
  node.retry_at_ms = 3;
  return node;
}

TEST(NodeJsonTest, RoundTripsEveryField) {
  const NodeState node = FullNode();
  absl::StatusOr<NodeState> back = NodeStateFromJson(json::parse(NodeStateToJson(node).dump()));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->name, node.name);
  EXPECT_EQ(back->display_name, node.display_name);
  EXPECT_EQ(back->parent, node.parent);
  EXPECT_EQ(back->task_name, node.task_name);
  EXPECT_EQ(back->template_name, node.template_name);
  EXPECT_EQ(back->type, node.type);
  EXPECT_EQ(back->phase, node.phase);
  EXPECT_EQ(back->message, node.message);
  EXPECT_EQ(back->inputs, node.inputs);
  EXPECT_EQ(back->outputs.parameters, node.outputs.parameters);
  EXPECT_EQ(back->outputs.result, std::optional<std::string>(""));
  EXPECT_EQ(back->outputs.artifacts, node.outputs.artifacts);
  EXPECT_EQ(back->input_artifacts, node.input_artifacts);
  ASSERT_EQ(back->attempts.size(), 1u);
  const engine::AttemptRecord& attempt = back->attempts[0];
  EXPECT_EQ(attempt.number, 1);
  EXPECT_EQ(attempt.phase, NodePhase::kError);
  EXPECT_EQ(attempt.runner, "local");
  EXPECT_EQ(attempt.external_name, "pid-1");
  EXPECT_EQ(attempt.exit_code, 137);
  EXPECT_EQ(attempt.message, "killed");
  EXPECT_EQ(attempt.started_at_ms, 5);
  EXPECT_EQ(attempt.finished_at_ms, 6);
  EXPECT_EQ(back->children, node.children);
  EXPECT_EQ(back->item, node.item);
  EXPECT_EQ(back->started_at_ms, 1);
  EXPECT_EQ(back->finished_at_ms, 2);
  EXPECT_EQ(back->retry_at_ms, 3);
}

TEST(NodeJsonTest, UnsetOptionalsStayUnset) {
  NodeState node;
  node.name = "n";
  absl::StatusOr<NodeState> back = NodeStateFromJson(NodeStateToJson(node));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_FALSE(back->outputs.result.has_value());
  EXPECT_FALSE(back->item.has_value());
}

TEST(NodeJsonTest, MissingFieldsTakeDefaultsAndUnknownOnesAreIgnored) {
  absl::StatusOr<NodeState> node =
      NodeStateFromJson(json{{"name", "n"}, {"phase", "Succeeded"}, {"added_later", 1}});
  ASSERT_TRUE(node.ok()) << node.status();
  EXPECT_EQ(node->name, "n");
  EXPECT_EQ(node->phase, NodePhase::kSucceeded);
  EXPECT_EQ(node->type, engine::NodeType::kPod);
  EXPECT_TRUE(node->attempts.empty());
}

TEST(NodeJsonTest, RejectsBadValues) {
  EXPECT_EQ(NodeStateFromJson(json::array()).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(NodeStateFromJson(json{{"phase", "Done"}}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(NodeStateFromJson(json{{"type", "Plugin"}}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(NodeStateFromJson(json{{"name", 3}}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(NodeStateFromJson(json{{"attempts", {{{"phase", "Later"}}}}}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace dagd::storage
