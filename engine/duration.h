// Argo duration strings, as `retryStrategy.backoff.duration`, `backoff.maxDuration` and `timeout`
// spell them: a plain integer is seconds ("30"), anything else is a Go duration ("500ms", "5s",
// "1m30s", "2h", "1.5h"; units ns, us, µs, ms, s, m, h). Pure functions; thread-safe.
#ifndef DAGD_ENGINE_DURATION_H_
#define DAGD_ENGINE_DURATION_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace dagd::engine {

// The duration `text` denotes, in milliseconds (sub-millisecond parts are dropped).
// InvalidArgument, quoting `text`, if it is empty, negative, has an unknown unit or no unit after
// a fraction ("1.5" — Argo reads only whole numbers as seconds).
absl::StatusOr<int64_t> ParseDurationMs(std::string_view text);

// A short human form for messages: "500ms", "5s", "1.5s", "1m30s", "2h", "1h0m5s".
std::string FormatDurationMs(int64_t ms);

}  // namespace dagd::engine

#endif  // DAGD_ENGINE_DURATION_H_
