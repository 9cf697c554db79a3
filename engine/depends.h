// Argo's `depends` expressions: task names with result suffixes joined by &&, || and !, with
// parentheses. "A" alone means (A.Succeeded || A.Skipped || A.Daemoned), widened by A's
// `continueOn` (|| A.Failed, || A.Errored) as Argo's expandDependency does; the suffixes are
// Succeeded, Failed, Errored (phase Error), Skipped, Omitted, Daemoned, AnySucceeded, AllFailed.
// Task names are letters, digits, '-' and '_'. Precedence: ! over && over ||. '(' and '!' nest
// at most 100 levels deep (chains of && and || may be as long as they like).
// `dependencies: [A, B]` is the same as depends "A && B". Thread-safe values.
#ifndef DAGD_ENGINE_DEPENDS_H_
#define DAGD_ENGINE_DEPENDS_H_

#include <functional>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/workflow.h"

namespace dagd::engine {

// What a depends expression may ask about one task.
struct TaskOutcome {
  NodePhase phase = NodePhase::kPending;  // the task node's phase (a fan-out's group phase)
  // For fan-outs: the phases of the children (AnySucceeded / AllFailed look at these; both are
  // false for a task that is not a fan-out, as in Argo).
  std::vector<NodePhase> child_phases;
  // The task's own `continueOn`: a bare "A" also accepts A.Failed / A.Errored when set.
  ContinueOn continue_on;
  // dagd has no daemoned tasks yet, so Daemoned is always false.
};

class DependsExpression {
 public:
  // Parses `text`. InvalidArgument names the 1-based position and the offending token, e.g.
  // `depends "A && )": unexpected ')' at position 6; expected a task name`.
  static absl::StatusOr<DependsExpression> Parse(std::string_view text);
  // The expression equivalent to `dependencies:` — all names joined with &&. No names: an
  // expression that is always true and mentions no task.
  static DependsExpression FromDependencies(const std::vector<std::string>& names);

  // Every task name the expression mentions.
  const std::set<std::string>& tasks() const;

  // Evaluates with the outcome of each mentioned task. REQUIRES: all of tasks() are final.
  bool Evaluate(const std::function<TaskOutcome(const std::string&)>& outcome) const;

  struct Node;  // the expression tree; defined in depends.cc

 private:
  std::shared_ptr<const Node> root_;
  std::set<std::string> tasks_;
};

}  // namespace dagd::engine

#endif  // DAGD_ENGINE_DEPENDS_H_
