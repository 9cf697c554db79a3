#include "engine/internal/diagnostics.h"

#include <algorithm>
#include <cctype>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace dagd::engine::internal {
namespace {

// Edit distance counting an insertion, deletion, substitution or swap of neighbours as one
// ("optimal string alignment"), so "dependecies" and "mian" are one or two edits from the intended
// word. The words compared are field and task names: O(n*m) is fine.
size_t EditDistance(absl::string_view a, absl::string_view b) {
  std::vector<std::vector<size_t>> d(a.size() + 1, std::vector<size_t>(b.size() + 1));
  for (size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
  for (size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    for (size_t j = 1; j <= b.size(); ++j) {
      d[i][j] = std::min(
          {d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) {
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[a.size()][b.size()];
}

}  // namespace

absl::Status WorkflowError(const SourceLocation& where, absl::string_view field_path,
                           absl::string_view what, absl::string_view fix) {
  std::string message = absl::StrCat(where.ToString(), ": ", field_path, ": ", what);
  if (!fix.empty()) absl::StrAppend(&message, "; ", fix);
  return absl::InvalidArgumentError(message);
}

std::string ClosestMatch(absl::string_view word, const std::vector<std::string>& candidates) {
  const std::string lower_word = absl::AsciiStrToLower(word);
  if (word.empty()) return "";
  // A third of the word may differ, but never all of it: "E" is not a typo of "A".
  const size_t allowed = std::min(std::max<size_t>(1, word.size() / 3), word.size() - 1);
  std::string best;
  size_t best_distance = allowed + 1;
  for (const std::string& candidate : candidates) {
    const size_t distance = EditDistance(lower_word, absl::AsciiStrToLower(candidate));
    if (distance < best_distance) {
      best = candidate;
      best_distance = distance;
    }
  }
  return best;
}

std::string SuggestFix(absl::string_view word, const std::vector<std::string>& candidates,
                       absl::string_view label) {
  if (candidates.empty()) return absl::StrCat("there are no ", label);
  const std::string match = ClosestMatch(word, candidates);
  if (!match.empty()) return absl::StrCat("did you mean '", match, "'?");
  return absl::StrCat(label, " are: ", absl::StrJoin(candidates, ", "));
}

}  // namespace dagd::engine::internal
