// Configurable bounds on the expressions of a workflow (dagd --max-expression-bytes and
// --max-expression-nesting), checked when a workflow is stored or submitted, before anything is
// evaluated. The evaluators keep hard bounds of their own (engine/expr.h, when.h, depends.h) for
// expressions that parameters lengthen at run time; these are the operator's, usually tighter.
// Pure functions; thread-safe.
#ifndef DAGD_ENGINE_LIMITS_H_
#define DAGD_ENGINE_LIMITS_H_

#include <cstddef>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "engine/workflow.h"

namespace dagd::engine {

struct ExpressionLimits {
  // The longest expression: the text of a `{{= … }}` tag, a `when` or a `depends`.
  size_t max_bytes = 16 * 1024;
  // The deepest nesting of brackets ( [ { outside string literals.
  int max_nesting = 32;
};

// The deepest bracket nesting of `expression`, string literals ('…', "…", `…`) and {{tags}}
// skipped.
int ExpressionNesting(std::string_view expression);

// InvalidArgument "<file>:<line>: …" naming the expression's start, its size or nesting, the
// limit and the flag, for the first `{{= … }}` of `yaml` (up to the next `}}`, as Argo reads
// it) or `when` / `depends` of `workflow` over `limits`; OK otherwise.
absl::Status CheckExpressionLimits(std::string_view yaml, const Workflow& workflow,
                                   const std::string& file, const ExpressionLimits& limits);

}  // namespace dagd::engine

#endif  // DAGD_ENGINE_LIMITS_H_
