// server/convert.cc: status codes, phases, diagnostics, Ansible recaps and retry children.
#include "server/convert.h"

#include <gtest/gtest.h>

namespace dagd::server {
namespace {

TEST(ToGrpcStatusTest, OkStaysOk) { EXPECT_TRUE(ToGrpcStatus(absl::OkStatus()).ok()); }

TEST(ToGrpcStatusTest, KeepsEveryCanonicalCodeAndTheMessage) {
  for (int code = 1; code <= 16; ++code) {
    const absl::Status status(static_cast<absl::StatusCode>(code), "what went wrong");
    const grpc::Status converted = ToGrpcStatus(status);
    EXPECT_EQ(static_cast<int>(converted.error_code()), code) << status;
    EXPECT_EQ(converted.error_message(), "what went wrong") << status;
  }
  EXPECT_EQ(ToGrpcStatus(absl::NotFoundError("no run x")).error_code(),
            grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(ToGrpcStatus(absl::FailedPreconditionError("done")).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
}

TEST(PhaseTest, EveryPhaseRoundTrips) {
  for (engine::NodePhase phase :
       {engine::NodePhase::kPending, engine::NodePhase::kRunning, engine::NodePhase::kSucceeded,
        engine::NodePhase::kFailed, engine::NodePhase::kError, engine::NodePhase::kSkipped,
        engine::NodePhase::kOmitted}) {
    const v1::Phase proto = ToProtoPhase(phase);
    EXPECT_NE(proto, v1::PHASE_UNSPECIFIED) << engine::NodePhaseName(phase);
    engine::NodePhase back = engine::NodePhase::kPending;
    ASSERT_TRUE(FromProtoPhase(proto, &back)) << engine::NodePhaseName(phase);
    EXPECT_EQ(back, phase) << engine::NodePhaseName(phase);
  }
  EXPECT_EQ(ToProtoPhase(engine::NodePhase::kFailed), v1::PHASE_FAILED);
  EXPECT_EQ(ToProtoPhase(engine::NodePhase::kOmitted), v1::PHASE_OMITTED);
}

TEST(PhaseTest, UnspecifiedIsNotAPhase) {
  engine::NodePhase out = engine::NodePhase::kRunning;
  EXPECT_FALSE(FromProtoPhase(v1::PHASE_UNSPECIFIED, &out));
  EXPECT_FALSE(FromProtoPhase(static_cast<v1::Phase>(42), &out));
  EXPECT_EQ(out, engine::NodePhase::kRunning);
}

TEST(ToDiagnosticTest, SplitsFileLineColumnFieldAndMessage) {
  const v1::Diagnostic d = ToDiagnostic(
      absl::InvalidArgumentError("flow.yaml:12:5: spec.x: unknown field; did you mean 'y'?"),
      "flow.yaml");
  EXPECT_EQ(d.file(), "flow.yaml");
  EXPECT_EQ(d.line(), 12);
  EXPECT_EQ(d.column(), 5);
  EXPECT_EQ(d.field(), "spec.x");
  EXPECT_EQ(d.message(), "unknown field; did you mean 'y'?");
}

TEST(ToDiagnosticTest, MessageMayItselfHoldColons) {
  const v1::Diagnostic d = ToDiagnostic(
      absl::InvalidArgumentError("<request>:3:1: spec.templates[0].name: duplicate: 'a'"),
      "<request>");
  EXPECT_EQ(d.file(), "<request>");
  EXPECT_EQ(d.line(), 3);
  EXPECT_EQ(d.column(), 1);
  EXPECT_EQ(d.field(), "spec.templates[0].name");
  EXPECT_EQ(d.message(), "duplicate: 'a'");
}

TEST(ToDiagnosticTest, ErrorThatNamesNoFieldKeepsTheLocation) {
  // The engine's YAML syntax errors: a location, then prose.
  v1::Diagnostic d = ToDiagnostic(
      absl::InvalidArgumentError("bad.yaml:10:15: malformed YAML: illegal map value"), "bad.yaml");
  EXPECT_EQ(d.file(), "bad.yaml");
  EXPECT_EQ(d.line(), 10);
  EXPECT_EQ(d.column(), 15);
  EXPECT_EQ(d.field(), "");
  EXPECT_EQ(d.message(), "malformed YAML: illegal map value");

  d = ToDiagnostic(absl::InvalidArgumentError("bad.yaml:4:2: something is off"), "bad.yaml");
  EXPECT_EQ(d.line(), 4);
  EXPECT_EQ(d.column(), 2);
  EXPECT_EQ(d.field(), "");
  EXPECT_EQ(d.message(), "something is off");
}

TEST(ToDiagnosticTest, LeavesOtherTextWhole) {
  for (const std::string text :
       {"the workflow is 5000000 bytes; the limit is 4194304", "flow.yaml: is empty", "a: b: c",
        "flow.yaml:12: spec: no column"}) {
    const v1::Diagnostic d = ToDiagnostic(absl::InvalidArgumentError(text), "flow.yaml");
    EXPECT_EQ(d.file(), "flow.yaml") << text;
    EXPECT_EQ(d.line(), 0) << text;
    EXPECT_EQ(d.column(), 0) << text;
    EXPECT_EQ(d.field(), "") << text;
    EXPECT_EQ(d.message(), text);
  }
}

storage::AnsibleEventRecord Stats(const std::string& node, int attempt, const std::string& json) {
  storage::AnsibleEventRecord event;
  event.node_name = node;
  event.attempt = attempt;
  event.kind = "stats";
  event.payload = json;
  return event;
}

TEST(SetAnsibleRecapsTest, LatestAttemptSummedOverHosts) {
  v1::Run run;
  run.add_nodes()->set_name("r.a");
  run.add_nodes()->set_name("r.b");
  run.add_nodes()->set_name("r.c");
  SetAnsibleRecaps({Stats("r.a", 2, R"({"stats": {"h1": {"ok": 3, "changed": 1, "failures": 0},
                                     "h2": {"ok": 2, "changed": 2, "unreachable": 1,
                                            "skipped": 4, "rescued": 1, "ignored": 1}}})"),
                    Stats("r.a", 1, R"({"stats": {"h1": {"ok": 1, "failures": 1}}})"),
                    Stats("r.b", 1, "not json"), Stats("r.b", 1, R"({"stats": []})")},
                   &run);
  ASSERT_TRUE(run.nodes(0).has_ansible_recap());
  const v1::AnsibleRecap& recap = run.nodes(0).ansible_recap();
  EXPECT_EQ(recap.attempt(), 2);
  EXPECT_EQ(recap.ok(), 5);
  EXPECT_EQ(recap.changed(), 3);
  EXPECT_EQ(recap.failed(), 0);
  EXPECT_EQ(recap.unreachable(), 1);
  EXPECT_EQ(recap.skipped(), 4);
  EXPECT_EQ(recap.rescued(), 1);
  EXPECT_EQ(recap.ignored(), 1);
  EXPECT_FALSE(run.nodes(1).has_ansible_recap());
  EXPECT_FALSE(run.nodes(2).has_ansible_recap());
}

TEST(RunToProtoTest, ARetryNodeListsItsAttemptsAsArgosRetryChildren) {
  engine::NodeState node;
  node.name = "run.B";
  node.display_name = "B";
  node.parent = "run";
  node.template_name = "step";
  node.type = engine::NodeType::kRetry;
  node.phase = engine::NodePhase::kSucceeded;
  node.inputs = {{"x", "1"}};
  node.outputs.parameters = {{"out", "v"}};
  node.outputs.result = "done";
  node.children = {"run.B.onExit"};
  engine::AttemptRecord failed;
  failed.number = 1;
  failed.phase = engine::NodePhase::kFailed;
  failed.exit_code = 2;
  failed.message = "exit code 2";
  failed.started_at_ms = 1000;
  failed.finished_at_ms = 2000;
  engine::AttemptRecord succeeded = failed;
  succeeded.number = 2;
  succeeded.phase = engine::NodePhase::kSucceeded;
  succeeded.exit_code = 0;
  succeeded.message = "";
  v1::Run run;
  ToProto(storage::RunRecord{}, {node}, &run);
  ASSERT_EQ(run.nodes_size(), 1);  // no attempts, no children
  node.attempts = {failed, succeeded};
  run.Clear();
  ToProto(storage::RunRecord{}, {node}, &run);
  ASSERT_EQ(run.nodes_size(), 3);
  const v1::Node& retry = run.nodes(0);
  EXPECT_EQ(retry.type(), v1::NODE_TYPE_RETRY);
  ASSERT_EQ(retry.children_size(), 3);
  EXPECT_EQ(retry.children(0), "run.B(0)");
  EXPECT_EQ(retry.children(1), "run.B(1)");
  EXPECT_EQ(retry.children(2), "run.B.onExit");
  EXPECT_EQ(retry.attempts_size(), 2);
  const v1::Node& first = run.nodes(1);
  EXPECT_EQ(first.name(), "run.B(0)");
  EXPECT_EQ(first.display_name(), "B(0)");
  EXPECT_EQ(first.parent(), "run.B");
  EXPECT_EQ(first.type(), v1::NODE_TYPE_POD);
  EXPECT_EQ(first.phase(), v1::PHASE_FAILED);
  EXPECT_EQ(first.message(), "exit code 2");
  EXPECT_EQ(first.inputs().at("x"), "1");
  ASSERT_EQ(first.attempts_size(), 1);
  EXPECT_EQ(first.attempts(0).exit_code(), 2);
  EXPECT_TRUE(first.output_parameters().empty());
  EXPECT_FALSE(first.has_result());
  const v1::Node& second = run.nodes(2);
  EXPECT_EQ(second.name(), "run.B(1)");
  EXPECT_EQ(second.phase(), v1::PHASE_SUCCEEDED);
  EXPECT_EQ(second.output_parameters().at("out"), "v");
  EXPECT_EQ(second.result(), "done");
  EXPECT_EQ(RetryChildName("run.B", 7), "run.B(7)");
}

}  // namespace
}  // namespace dagd::server
