#include "engine/depends.h"

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

namespace dagd::engine {
namespace {

using Outcomes = std::map<std::string, TaskOutcome>;

TaskOutcome Phase(NodePhase phase) {
  TaskOutcome outcome;
  outcome.phase = phase;
  return outcome;
}

bool Eval(const std::string& text, const Outcomes& outcomes) {
  absl::StatusOr<DependsExpression> expression = DependsExpression::Parse(text);
  EXPECT_TRUE(expression.ok()) << expression.status();
  return expression->Evaluate([&](const std::string& task) { return outcomes.at(task); });
}

TEST(DependsTest, BareNameMeansSucceededOrSkipped) {
  EXPECT_TRUE(Eval("A", {{"A", Phase(NodePhase::kSucceeded)}}));
  EXPECT_TRUE(Eval("A", {{"A", Phase(NodePhase::kSkipped)}}));
  EXPECT_FALSE(Eval("A", {{"A", Phase(NodePhase::kFailed)}}));
  EXPECT_FALSE(Eval("A", {{"A", Phase(NodePhase::kError)}}));
  EXPECT_FALSE(Eval("A", {{"A", Phase(NodePhase::kOmitted)}}));
}

TEST(DependsTest, BareNameHonoursContinueOn) {
  TaskOutcome failed = Phase(NodePhase::kFailed);
  failed.continue_on.failed = true;
  EXPECT_TRUE(Eval("A", {{"A", failed}}));
  TaskOutcome errored = Phase(NodePhase::kError);
  errored.continue_on.failed = true;
  EXPECT_FALSE(Eval("A", {{"A", errored}}));
  errored.continue_on.error = true;
  EXPECT_TRUE(Eval("A", {{"A", errored}}));
}

TEST(DependsTest, EverySuffix) {
  const std::pair<const char*, NodePhase> cases[] = {
      {"Succeeded", NodePhase::kSucceeded}, {"Failed", NodePhase::kFailed},
      {"Errored", NodePhase::kError},       {"Skipped", NodePhase::kSkipped},
      {"Omitted", NodePhase::kOmitted},
  };
  for (const auto& [suffix, phase] : cases) {
    for (const auto& [unused, other] : cases) {
      EXPECT_EQ(Eval(std::string("A.") + suffix, {{"A", Phase(other)}}), other == phase)
          << suffix << " vs " << NodePhaseName(other);
    }
  }
  // No daemons in dagd yet.
  EXPECT_FALSE(Eval("A.Daemoned", {{"A", Phase(NodePhase::kSucceeded)}}));
}

TEST(DependsTest, FanOutSuffixesLookAtChildren) {
  TaskOutcome group = Phase(NodePhase::kFailed);
  group.child_phases = {NodePhase::kFailed, NodePhase::kSucceeded};
  EXPECT_TRUE(Eval("A.AnySucceeded", {{"A", group}}));
  EXPECT_FALSE(Eval("A.AllFailed", {{"A", group}}));
  group.child_phases = {NodePhase::kFailed, NodePhase::kFailed};
  EXPECT_FALSE(Eval("A.AnySucceeded", {{"A", group}}));
  EXPECT_TRUE(Eval("A.AllFailed", {{"A", group}}));
  group.child_phases = {NodePhase::kFailed, NodePhase::kError};
  EXPECT_FALSE(Eval("A.AllFailed", {{"A", group}}));
  // Not a fan-out: both false, as in Argo.
  EXPECT_FALSE(Eval("A.AnySucceeded", {{"A", Phase(NodePhase::kSucceeded)}}));
  EXPECT_FALSE(Eval("A.AllFailed", {{"A", Phase(NodePhase::kFailed)}}));
}

TEST(DependsTest, OperatorsAndPrecedence) {
  const Outcomes outcomes = {{"A", Phase(NodePhase::kSucceeded)},
                             {"B", Phase(NodePhase::kFailed)},
                             {"c-1_x", Phase(NodePhase::kSucceeded)}};
  EXPECT_TRUE(Eval("A && c-1_x", outcomes));
  EXPECT_FALSE(Eval("A && B", outcomes));
  EXPECT_TRUE(Eval("A || B", outcomes));
  EXPECT_TRUE(Eval("!B", outcomes));
  EXPECT_TRUE(Eval("!!A", outcomes));
  // && binds tighter than ||: B && A || A  ==  (B && A) || A
  EXPECT_TRUE(Eval("B && A || A", outcomes));
  EXPECT_FALSE(Eval("B && (A || A)", outcomes));
  EXPECT_TRUE(Eval("A && (B.Succeeded || B.Failed)", outcomes));
  EXPECT_TRUE(Eval("  (\tA ) ", outcomes));
}

TEST(DependsTest, ListsMentionedTasks) {
  absl::StatusOr<DependsExpression> expression =
      DependsExpression::Parse("A && (B.Failed || !C) || A.Succeeded");
  ASSERT_TRUE(expression.ok());
  EXPECT_EQ(expression->tasks(), (std::set<std::string>{"A", "B", "C"}));
}

TEST(DependsTest, FromDependencies) {
  DependsExpression both = DependsExpression::FromDependencies({"A", "B"});
  EXPECT_EQ(both.tasks(), (std::set<std::string>{"A", "B"}));
  EXPECT_TRUE(both.Evaluate([](const std::string&) { return Phase(NodePhase::kSucceeded); }));
  EXPECT_FALSE(both.Evaluate([](const std::string& t) {
    return Phase(t == "B" ? NodePhase::kFailed : NodePhase::kSucceeded);
  }));
  DependsExpression none = DependsExpression::FromDependencies({});
  EXPECT_TRUE(none.tasks().empty());
  EXPECT_TRUE(none.Evaluate([](const std::string&) { return Phase(NodePhase::kFailed); }));
}

TEST(DependsTest, LongChainsAndDeepNesting) {
  // A chain of && is one node, however long: evaluating (and freeing) a nested tree of 100000
  // operands overflowed the stack (found by tests/fuzz).
  std::string chain = "A";
  for (int i = 0; i < 100000; ++i) chain += i % 2 ? " && A" : " || B.Failed";
  EXPECT_TRUE(Eval(chain, {{"A", Phase(NodePhase::kSucceeded)}, {"B", Phase(NodePhase::kFailed)}}));
  std::vector<std::string> names(100000, "A");
  EXPECT_TRUE(DependsExpression::FromDependencies(names).Evaluate(
      [](const std::string&) { return Phase(NodePhase::kSucceeded); }));
  // '(' and '!' nest up to 100 levels, as in expressions.
  EXPECT_TRUE(Eval(std::string(100, '(') + "A" + std::string(100, ')'),
                   {{"A", Phase(NodePhase::kSucceeded)}}));
  EXPECT_TRUE(Eval(std::string(100, '!') + "A", {{"A", Phase(NodePhase::kSucceeded)}}));
  for (const std::string& deep : {std::string(101, '(') + "A" + std::string(101, ')'),
                                  "A && " + std::string(100000, '!') + "A"}) {
    absl::StatusOr<DependsExpression> parsed = DependsExpression::Parse(deep);
    ASSERT_FALSE(parsed.ok());
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(parsed.status().message().find("more than 100 levels deep"), absl::string_view::npos)
        << parsed.status();
  }
}

TEST(DependsTest, ErrorsNamePositionAndToken) {
  struct Case {
    const char* text;
    const char* expected;
  };
  const Case cases[] = {
      {"", "unexpected end of expression at position 1"},
      {"A &&", "unexpected end of expression at position 5; expected a task name"},
      {"A && )", "unexpected ')' at position 6"},
      {"(A", "unexpected end of expression at position 3; expected ')'"},
      {"A B", "unexpected 'B' at position 3"},
      {"A & B", "unexpected '&' at position 3"},
      {"A.Finished", "unknown result 'Finished' at position 3"},
      {"A.", "unknown result '' at position 3"},
  };
  for (const Case& c : cases) {
    absl::StatusOr<DependsExpression> parsed = DependsExpression::Parse(c.text);
    ASSERT_FALSE(parsed.ok()) << c.text;
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(parsed.status().message().find(c.expected), absl::string_view::npos)
        << c.text << " -> " << parsed.status();
  }
}

}  // namespace
}  // namespace dagd::engine
