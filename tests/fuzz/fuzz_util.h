// Helpers shared by the fuzz targets: cutting an input into parts, and the invariants every
// target checks besides "no crash, no sanitizer report".
#ifndef DAGD_TESTS_FUZZ_FUZZ_UTIL_H_
#define DAGD_TESTS_FUZZ_FUZZ_UTIL_H_

#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <utility>

#include "absl/status/status.h"
#include "engine/tags.h"

namespace dagd::fuzz {

// The separator between the parts of an input: a line holding only "---".
inline constexpr std::string_view kSeparator = "\n---\n";

// Splits `input` at its first separator: {before, after}; after is empty if there is none.
inline std::pair<std::string_view, std::string_view> SplitOnce(std::string_view input) {
  const size_t at = input.find(kSeparator);
  if (at == std::string_view::npos) return {input, {}};
  return {input.substr(0, at), input.substr(at + kSeparator.size())};
}

// A TagScope from lines "key=value" (a line without '=' is a key with an empty value).
inline engine::TagScope ParseScope(std::string_view text) {
  engine::TagScope scope;
  while (!text.empty()) {
    const size_t end = text.find('\n');
    std::string_view line = text.substr(0, end);
    text = end == std::string_view::npos ? std::string_view() : text.substr(end + 1);
    if (line.empty()) continue;
    const size_t eq = line.find('=');
    if (eq == std::string_view::npos) {
      scope[std::string(line)] = "";
    } else {
      scope[std::string(line.substr(0, eq))] = std::string(line.substr(eq + 1));
    }
  }
  return scope;
}

// Every error of the engine's language functions is InvalidArgument with a message (their
// headers say so); anything else is a bug the fuzzer reports as a crash.
inline void RequireInvalidArgument(const absl::Status& status, const char* what) {
  if (status.ok()) return;
  if (status.code() == absl::StatusCode::kInvalidArgument && !status.message().empty()) return;
  std::fprintf(stderr, "%s: error is not InvalidArgument with a message: %s\n", what,
               status.ToString().c_str());
  std::abort();
}

// Aborts with `message` unless `condition` holds: an invariant the fuzzer should report.
inline void Require(bool condition, const char* message) {
  if (condition) return;
  std::fprintf(stderr, "invariant broken: %s\n", message);
  std::abort();
}

}  // namespace dagd::fuzz

#endif  // DAGD_TESTS_FUZZ_FUZZ_UTIL_H_
