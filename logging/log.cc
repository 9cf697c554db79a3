#include "logging/log.h"

#include <spdlog/details/log_msg.h>
#include <spdlog/formatter.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <ctime>
#include <nlohmann/json.hpp>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace dagd::logging {
namespace {

constexpr char kTextPattern[] = "%Y-%m-%dT%H:%M:%S.%e %^%l%$ [%n] %v";

std::string TagValue(std::string_view value) {
  if (value.find_first_of(" \"\\]") == std::string_view::npos && !value.empty()) {
    return std::string(value);
  }
  return nlohmann::json(std::string(value))
      .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// Reads one tag value at `text` (plain up to ' ' or ']', or a JSON string); advances `text`.
bool ReadTagValue(std::string_view& text, std::string* value) {
  if (!text.empty() && text.front() == '"') {
    size_t end = 1;
    while (end < text.size() && text[end] != '"') end += text[end] == '\\' ? 2 : 1;
    if (end >= text.size()) return false;
    nlohmann::json parsed =
        nlohmann::json::parse(text.substr(0, end + 1), nullptr, /*allow_exceptions=*/false);
    if (!parsed.is_string()) return false;
    *value = parsed.get<std::string>();
    text.remove_prefix(end + 1);
    return true;
  }
  const size_t end = text.find_first_of(" ]");
  if (end == std::string_view::npos || end == 0) return false;
  *value = std::string(text.substr(0, end));
  text.remove_prefix(end);
  return true;
}

// Splits a leading RunTag off `message` into `fields`; returns the rest (the whole message if
// it has no well-formed tag).
std::string_view TakeRunTag(std::string_view message, nlohmann::json& fields) {
  if (message.substr(0, 5) != "[run=") return message;
  std::string_view text = message.substr(1);
  nlohmann::json found;
  while (true) {
    const size_t eq = text.find('=');
    if (eq == std::string_view::npos) return message;
    const std::string_view key = text.substr(0, eq);
    text.remove_prefix(eq + 1);
    std::string value;
    if (!ReadTagValue(text, &value)) return message;
    if (key == "run" || key == "node") {
      found[std::string(key)] = value;
    } else if (int attempt = 0; key == "attempt" && absl::SimpleAtoi(value, &attempt)) {
      found["attempt"] = attempt;
    } else {
      return message;
    }
    if (text.substr(0, 2) == "] ") {
      text.remove_prefix(2);
      break;
    }
    if (text.substr(0, 1) == "]") {
      text.remove_prefix(1);
      break;
    }
    if (text.substr(0, 1) != " ") return message;
    text.remove_prefix(1);
  }
  for (auto& [k, v] : found.items()) fields[k] = v;
  return text;
}

class JsonFormatter : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    const auto since_epoch = msg.time.time_since_epoch();
    const std::time_t seconds =
        std::chrono::duration_cast<std::chrono::seconds>(since_epoch).count();
    const int millis = static_cast<int>(
        std::chrono::duration_cast<std::chrono::milliseconds>(since_epoch).count() % 1000);
    std::tm utc{};
    gmtime_r(&seconds, &utc);
    char time[40];
    const size_t n = std::strftime(time, sizeof time, "%Y-%m-%dT%H:%M:%S", &utc);
    std::snprintf(time + n, sizeof time - n, ".%03dZ", millis);

    nlohmann::json line;
    line["time"] = time;
    const auto level = spdlog::level::to_string_view(msg.level);
    line["level"] = std::string(level.data(), level.size());
    line["logger"] = std::string(msg.logger_name.data(), msg.logger_name.size());
    const std::string_view text(msg.payload.data(), msg.payload.size());
    line["msg"] = std::string(TakeRunTag(text, line));
    const std::string out =
        line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
    dest.append(out.data(), out.data() + out.size());
  }

  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<JsonFormatter>();
  }
};

}  // namespace

std::shared_ptr<spdlog::logger> Get(const std::string& name) {
  if (auto existing = spdlog::get(name)) return existing;
  auto created = spdlog::default_logger()->clone(name);
  // A concurrent Get() may have registered it first: use that one.
  try {
    spdlog::register_logger(created);
  } catch (const spdlog::spdlog_ex&) {
    if (auto existing = spdlog::get(name)) return existing;
  }
  return created;
}

std::string RunTag(std::string_view run_id, std::string_view node_name, int attempt) {
  std::string tag = absl::StrCat("[run=", TagValue(run_id));
  if (!node_name.empty()) absl::StrAppend(&tag, " node=", TagValue(node_name));
  if (attempt > 0) absl::StrAppend(&tag, " attempt=", attempt);
  return tag + "] ";
}

absl::Status Configure(const std::string& format, const std::string& level) {
  const spdlog::level::level_enum parsed = spdlog::level::from_str(level);
  if (parsed == spdlog::level::off && level != "off") {
    return absl::InvalidArgumentError(
        absl::StrCat("log level \"", level, "\" is not one of trace, debug, info, warn, error"));
  }
  if (format == "json") {
    spdlog::set_formatter(NewJsonFormatter());
  } else if (format == "text") {
    spdlog::set_pattern(kTextPattern);
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("log format \"", format, "\" is not one of text, json"));
  }
  spdlog::set_level(parsed);
  return absl::OkStatus();
}

std::unique_ptr<spdlog::formatter> NewJsonFormatter() { return std::make_unique<JsonFormatter>(); }

}  // namespace dagd::logging
