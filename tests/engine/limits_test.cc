#include "engine/limits.h"

#include <gtest/gtest.h>

#include "engine/parser.h"

namespace dagd::engine {
namespace {

TEST(ExpressionNestingTest, CountsBracketsOutsideStringLiterals) {
  EXPECT_EQ(ExpressionNesting(""), 0);
  EXPECT_EQ(ExpressionNesting("a + b"), 0);
  EXPECT_EQ(ExpressionNesting("f(g([1, {a: 2}]))"), 4);
  EXPECT_EQ(ExpressionNesting("'((((' + \"[[[\" + `{{{`"), 0);
  EXPECT_EQ(ExpressionNesting("'it\\'s (' + (x)"), 1);
  EXPECT_EQ(ExpressionNesting(")))((("), 3);  // unbalanced: never below zero
  EXPECT_EQ(ExpressionNesting("{{tasks.a.status}} == (x)"), 1);
}

Workflow MustParse(const std::string& yaml) {
  absl::StatusOr<Workflow> workflow = ParseWorkflow(yaml, "wf.yaml");
  EXPECT_TRUE(workflow.ok()) << workflow.status();
  return workflow.ok() ? *workflow : Workflow();
}

constexpr char kWorkflow[] = R"yaml(apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {name: wf}
spec:
  entrypoint: main
  templates:
  - name: main
    dag:
      tasks:
      - name: a
        template: echo
        arguments:
          parameters: [{name: x, value: "{{=sprig.upper(string(1 + (2 * (3))))}}"}]
      - name: b
        template: echo
        depends: "a.Succeeded && (a.Failed || (a.Errored))"
        when: "{{tasks.a.status}} == Succeeded"
        arguments:
          parameters: [{name: x, value: "y"}]
  - name: echo
    inputs: {parameters: [{name: x}]}
    container: {image: alpine, command: [echo, "{{inputs.parameters.x}}"]}
)yaml";

TEST(CheckExpressionLimitsTest, WithinTheLimitsIsOk) {
  const Workflow workflow = MustParse(kWorkflow);
  EXPECT_TRUE(CheckExpressionLimits(kWorkflow, workflow, "wf.yaml", {}).ok());
}

TEST(CheckExpressionLimitsTest, ALongTagExpressionIsRefusedAtItsLine) {
  const Workflow workflow = MustParse(kWorkflow);
  absl::Status status = CheckExpressionLimits(kWorkflow, workflow, "wf.yaml", {.max_bytes = 20});
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(std::string(status.message()),
            "wf.yaml:13: a {{= }} expression of 34 bytes; the limit is 20 (dagd "
            "--max-expression-bytes): split it, or compute the value in a step and pass it as a "
            "parameter");
}

TEST(CheckExpressionLimitsTest, DeepNestingIsRefused) {
  const Workflow workflow = MustParse(kWorkflow);
  absl::Status status =
      CheckExpressionLimits(kWorkflow, workflow, "wf.yaml", {.max_bytes = 100, .max_nesting = 2});
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(std::string(status.message()),
            "wf.yaml:13: a {{= }} expression nested 4 brackets deep; the limit is 2 (dagd "
            "--max-expression-nesting)");
}

TEST(CheckExpressionLimitsTest, WhenAndDependsCountToo) {
  const std::string yaml = std::string(kWorkflow);
  Workflow workflow = MustParse(yaml);
  absl::Status status =
      CheckExpressionLimits("", workflow, "wf.yaml", {.max_bytes = 100, .max_nesting = 1});
  EXPECT_EQ(std::string(status.message()),
            "wf.yaml: template main, task b: depends nested 2 brackets deep; the limit is 1 "
            "(dagd --max-expression-nesting)");
  status = CheckExpressionLimits("", workflow, "wf.yaml", {.max_bytes = 30, .max_nesting = 5});
  EXPECT_EQ(std::string(status.message()),
            "wf.yaml: template main, task b: when of 31 bytes; the limit is 30 (dagd "
            "--max-expression-bytes): split it, or compute the value in a step and pass it as a "
            "parameter");
}

}  // namespace
}  // namespace dagd::engine
