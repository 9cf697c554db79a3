// Error-message helpers shared by the parser (engine/parser.cc) and the validator
// (engine/validate.cc), so that every complaint about a workflow reads the same way:
//   "<file>:<line>:<column>: <field path>: <what is wrong>; <how to fix it>"
// Pure functions; thread-safe.
#ifndef DAGD_ENGINE_INTERNAL_DIAGNOSTICS_H_
#define DAGD_ENGINE_INTERNAL_DIAGNOSTICS_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "engine/workflow.h"

namespace dagd::engine::internal {

// InvalidArgument in the form above. `fix` may be empty, and then "; <fix>" is left out.
absl::Status WorkflowError(const SourceLocation& where, absl::string_view field_path,
                           absl::string_view what, absl::string_view fix);

// The candidate that `word` is most likely a typo of (case-insensitive edit distance of at most
// a third of the word, at least 1, and less than the whole word); empty if none is that close.
std::string ClosestMatch(absl::string_view word, const std::vector<std::string>& candidates);

// "did you mean 'x'?" when ClosestMatch finds one, otherwise "<label> are: a, b, c"
// (or "there are no <label>" when `candidates` is empty).
std::string SuggestFix(absl::string_view word, const std::vector<std::string>& candidates,
                       absl::string_view label);

}  // namespace dagd::engine::internal

#endif  // DAGD_ENGINE_INTERNAL_DIAGNOSTICS_H_
