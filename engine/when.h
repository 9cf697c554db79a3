// Argo's `when` conditions, evaluated after tag substitution the way Argo's govaluate-based
// evaluator reads them:
//   - values: numbers (3, -1.5), quoted strings ('a b' or "a b"), true / false, and bare words,
//     which are strings (`heads == heads`, as Argo's coinflip writes it);
//   - comparisons ==, != (numerically when both sides are numbers, else as strings), <, >, <=, >=
//     (numbers only), =~ and !~ (the right side is a regular expression, ECMAScript syntax,
//     searched in the left; at most 1 KiB, without back-references, run in polynomial time on a
//     left side of at most 256 KiB);
//   - !, &&, || (precedence in that order) and parentheses, '(' and '!' nested at most 100 deep.
// The whole condition must come out a boolean: "heads" alone is an error, not "true". Errors
// (InvalidArgument) name the condition and what is wrong with it. Pure; thread-safe.
#ifndef DAGD_ENGINE_WHEN_H_
#define DAGD_ENGINE_WHEN_H_

#include <string_view>

#include "absl/status/statusor.h"

namespace dagd::engine {

absl::StatusOr<bool> EvaluateWhen(std::string_view condition);

}  // namespace dagd::engine

#endif  // DAGD_ENGINE_WHEN_H_
