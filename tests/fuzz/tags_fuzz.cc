// Fuzz target: `{{…}}` substitution (engine/tags.h), with its `{{=…}}` expressions. The input is
// "<text>" optionally followed by a line "---" and the scope as "key=value" lines. Checks, besides
// no crash, hang or sanitizer report: errors are InvalidArgument; FindDagdTags returns only names
// IsDagdTag accepts; and a text without expressions substitutes without error once every tag it
// mentions has a value.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/tags.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace dagd::engine;  // NOLINT(google-build-using-namespace): a test's entry point
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const auto [text, scope_text] = dagd::fuzz::SplitOnce(input);
  TagScope scope = dagd::fuzz::ParseScope(scope_text);

  absl::StatusOr<std::string> substituted = SubstituteTags(text, scope);
  dagd::fuzz::RequireInvalidArgument(substituted.status(), "SubstituteTags");

  const std::vector<std::string> tags = FindDagdTags(text);
  for (const std::string& tag : tags) {
    dagd::fuzz::Require(IsDagdTag(tag), "FindDagdTags returns dagd tags only");
    scope.emplace(tag, "v");  // keeps a value the input gave
  }
  if (text.find('=') == std::string_view::npos) {
    absl::StatusOr<std::string> complete = SubstituteTags(text, scope);
    if (!complete.ok()) {
      std::fprintf(stderr, "%s\n", complete.status().ToString().c_str());
      dagd::fuzz::Require(false, "every tag FindDagdTags names has a value: substitution succeeds");
    }
  }
  return 0;
}
