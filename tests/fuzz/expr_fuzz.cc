// Fuzz target: the three expression languages of a workflow. The first byte picks one (its value
// modulo 4; the letters below are the readable choices the seed corpus uses), the rest is
// "<expression>" optionally followed by a line "---" and the data it is evaluated with:
//   'd' depends (engine/depends.h): the expression, then bytes that decide each task's outcome;
//   'e' {{=…}} expressions (engine/expr.h) with a TagScope of "key=value" lines;
//   'j' the same with a JSON environment (EvaluateExpressionIn, as data templates call it);
//   'w' when conditions (engine/when.h); no data.
// Errors must be InvalidArgument; anything that crashes, hangs or trips a sanitizer is a bug.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/depends.h"
#include "engine/expr.h"
#include "engine/when.h"
#include "engine/workflow.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

using namespace dagd::engine;  // NOLINT(google-build-using-namespace): a test's entry point

bool IsTaskNameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_';
}

// A task's outcome drawn from `data` and the task's name, so that each name gets its own.
TaskOutcome OutcomeFor(const std::string& task, std::string_view data) {
  size_t hash = std::hash<std::string>{}(task);
  auto next = [&]() -> uint8_t {
    if (data.empty()) return static_cast<uint8_t>(hash);
    const uint8_t byte =
        static_cast<uint8_t>(data[hash % data.size()]) ^ static_cast<uint8_t>(hash);
    hash = hash * 31 + byte;
    return byte;
  };
  constexpr NodePhase kFinal[] = {NodePhase::kSucceeded, NodePhase::kFailed, NodePhase::kError,
                                  NodePhase::kSkipped, NodePhase::kOmitted};
  TaskOutcome outcome;
  outcome.phase = kFinal[next() % 5];
  const uint8_t flags = next();
  outcome.continue_on.failed = flags & 1;
  outcome.continue_on.error = flags & 2;
  for (int children = (flags >> 2) % 4; children > 0; --children) {
    outcome.child_phases.push_back(kFinal[next() % 5]);
  }
  return outcome;
}

void FuzzDepends(std::string_view expression, std::string_view data) {
  absl::StatusOr<DependsExpression> parsed = DependsExpression::Parse(expression);
  if (!parsed.ok()) {
    dagd::fuzz::RequireInvalidArgument(parsed.status(), "DependsExpression::Parse");
    return;
  }
  for (const std::string& task : parsed->tasks()) {
    dagd::fuzz::Require(!task.empty(), "depends: task names are not empty");
    for (char c : task) dagd::fuzz::Require(IsTaskNameChar(c), "depends: task name characters");
  }
  auto outcome = [&](const std::string& task) {
    dagd::fuzz::Require(parsed->tasks().count(task) > 0, "depends: asks only about its tasks");
    return OutcomeFor(task, data);
  };
  parsed->Evaluate(outcome);
  // `dependencies:` over the same names: true exactly when each name alone is true.
  const std::vector<std::string> names(parsed->tasks().begin(), parsed->tasks().end());
  bool all = true;
  for (const std::string& name : names) {
    all = all && DependsExpression::Parse(name)->Evaluate(outcome);
  }
  dagd::fuzz::Require(DependsExpression::FromDependencies(names).Evaluate(outcome) == all,
                      "depends: dependencies [A, B] is A && B");
}

void FuzzExpression(std::string_view expression, const absl::StatusOr<nlohmann::json>& value,
                    const char* what) {
  if (!value.ok()) {
    dagd::fuzz::RequireInvalidArgument(value.status(), what);
  } else {
    ExpressionValueText(*value);
  }
  dagd::fuzz::RequireInvalidArgument(CheckExpressionSyntax(expression), "CheckExpressionSyntax");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);
  const auto [expression, rest] = dagd::fuzz::SplitOnce(input);
  switch (data[0] % 4) {
    case 'd' % 4:
      FuzzDepends(expression, rest);
      break;
    case 'e' % 4:
      FuzzExpression(expression, EvaluateExpression(expression, dagd::fuzz::ParseScope(rest)),
                     "EvaluateExpression");
      break;
    case 'j' % 4: {
      nlohmann::json environment =
          nlohmann::json::parse(rest, /*cb=*/nullptr, /*allow_exceptions=*/false);
      if (!environment.is_object()) environment = nlohmann::json::object();
      FuzzExpression(expression, EvaluateExpressionIn(expression, environment),
                     "EvaluateExpressionIn");
      break;
    }
    case 'w' % 4:
      dagd::fuzz::RequireInvalidArgument(EvaluateWhen(input).status(), "EvaluateWhen");
      break;
  }
  return 0;
}
