// Logging for dagd: named spdlog loggers, the run/node tag every line about a run carries, and
// the two output formats (text for people, JSON lines for log pipelines).
//
// A line about a run, a node or an attempt starts with RunTag(): "[run=R node=N attempt=A] …".
// In text it reads as it is; the JSON format lifts the tag into the fields "run", "node" and
// "attempt", so a log pipeline can select every line of a run without parsing messages.
// Thread-safe, like spdlog.
#ifndef DAGD_LOGGING_LOG_H_
#define DAGD_LOGGING_LOG_H_

#include <spdlog/logger.h>

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/status.h"

namespace dagd::logging {

// The logger named `name` ("scheduler", "storage", "runner.kubernetes", …), created on first use
// from the default logger (its sinks, level and format).
std::shared_ptr<spdlog::logger> Get(const std::string& name);

// "[run=R] ", "[run=R node=N] " or "[run=R node=N attempt=A] "; empty parts are left out. A
// value with a space, '"', '\' or ']' is written as a JSON string.
std::string RunTag(std::string_view run_id, std::string_view node_name = {}, int attempt = 0);

// Sets the format ("text" or "json") and level ("trace" … "error") of the default logger and of
// every logger created so far or later. InvalidArgument naming the value otherwise.
absl::Status Configure(const std::string& format, const std::string& level);

// One JSON object per line: time (RFC 3339, UTC, milliseconds), level, logger, run, node,
// attempt (when the message has a RunTag), msg.
std::unique_ptr<spdlog::formatter> NewJsonFormatter();

}  // namespace dagd::logging

#endif  // DAGD_LOGGING_LOG_H_
