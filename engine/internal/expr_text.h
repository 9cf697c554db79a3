// How Go writes values as text, for the expression evaluator (engine/expr.h): Argo evaluates
// expressions in Go, so a value printed into a workflow (`{{=…}}`, `string(x)`, `toJson(x)`,
// `sprig.date(…)`) must read the way Go's fmt, encoding/json and time packages write it.
//
// Values are nlohmann::json: integers are Go ints, floats float64, objects maps with string keys.
// Pure functions; thread-safe.
#ifndef DAGD_ENGINE_INTERNAL_EXPR_TEXT_H_
#define DAGD_ENGINE_INTERNAL_EXPR_TEXT_H_

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace dagd::engine::internal {

// fmt.Sprint(value): "<nil>", "true", "42", "3.5", "1e+06", "[a 1 <nil>]", "map[a:1 b:x]".
std::string GoText(const nlohmann::json& value);

// encoding/json: Marshal when `indent` is empty (compact), else MarshalIndent(value, "", indent).
// Object keys sorted; `<`, `>` and `&` written as \u003c, \u003e, \u0026 when `escape_html` (as
// json.Marshal does). InvalidArgument for NaN and infinities, which JSON cannot hold.
absl::StatusOr<std::string> GoJson(const nlohmann::json& value, bool escape_html,
                                   std::string_view indent = "");

// A float the way encoding/json writes it: 30, 35.8, 1e-7, 1e+21.
std::string GoJsonFloat(double value);

// A point in time: seconds since the Unix epoch plus nanoseconds (0 ≤ nanos < 1e9).
struct Instant {
  int64_t seconds = 0;
  int32_t nanos = 0;
};

// An RFC 3339 timestamp ("2024-05-01T10:00:00Z", "2024-05-01T12:00:00.5+02:00"), or nullopt.
std::optional<Instant> ParseRfc3339(std::string_view text);

// `instant` in UTC written with a Go time layout ("2006-01-02T15:04:05Z07:00", "Jan _2", "15:04").
// Supported layout elements: 2006 06 January Jan 01 1 Monday Mon 02 _2 2 002 15 03 3 04 4 05 5
// PM pm MST, the zone forms -0700 -07:00 -07 Z0700 Z07:00 Z07, and fractions .000 / .999;
// everything else is copied as it is.
std::string FormatGoTime(std::string_view layout, Instant instant);

}  // namespace dagd::engine::internal

#endif  // DAGD_ENGINE_INTERNAL_EXPR_TEXT_H_
