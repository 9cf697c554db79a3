// Parsing of dagctl's argument values: durations, time bounds, phases and -p parameters.
//
// Pure functions with no I/O; every error is an InvalidArgument status whose message can be
// shown to the user as is.
#ifndef DAGD_CMD_DAGCTL_ARGS_H_
#define DAGD_CMD_DAGCTL_ARGS_H_

#include <chrono>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "dagd/v1/run.pb.h"
#include "google/protobuf/timestamp.pb.h"

namespace dagd::dagctl {

// Parses a duration such as "90s", "1m30s", "2h", "3d" or "250ms": one or more
// <integer><unit> groups, units d, h, m, s, ms. A bare number is an error (no unit).
absl::StatusOr<std::chrono::nanoseconds> ParseDuration(absl::string_view text);

// Parses an RFC 3339 time such as "2024-05-01T10:00:00Z" or "2024-05-01T12:00:00.5+02:00".
absl::StatusOr<google::protobuf::Timestamp> ParseRfc3339(absl::string_view text);

// Parses a --since / --until value: a duration (that long before `now`) or an RFC 3339 time.
absl::StatusOr<google::protobuf::Timestamp> ParseTimeBound(
    absl::string_view text, std::chrono::system_clock::time_point now);

// Parses one "-p key=value" argument. The value may be empty and may contain '='; the key may
// not be empty.
absl::StatusOr<std::pair<std::string, std::string>> ParseParameter(absl::string_view text);

// Parses every -p argument; a later value for the same key replaces an earlier one.
absl::StatusOr<std::map<std::string, std::string>> ParseParameters(
    const std::vector<std::string>& texts);

// Parses a phase as Argo names it ("Succeeded", any case) or as the enum does
// ("PHASE_SUCCEEDED").
absl::StatusOr<v1::Phase> ParsePhase(absl::string_view text);

}  // namespace dagd::dagctl

#endif  // DAGD_CMD_DAGCTL_ARGS_H_
