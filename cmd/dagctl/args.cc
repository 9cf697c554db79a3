#include "cmd/dagctl/args.h"

#include <cctype>
#include <cstdint>
#include <ctime>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "cmd/dagctl/format.h"

namespace dagd::dagctl {
namespace {

// Reads `width` decimal digits at text[*pos], advancing *pos; false when they are not digits.
bool ReadDigits(absl::string_view text, size_t* pos, size_t width, int* value) {
  if (*pos + width > text.size()) {
    return false;
  }
  int result = 0;
  for (size_t i = 0; i < width; ++i) {
    const char c = text[*pos + i];
    if (!std::isdigit(static_cast<unsigned char>(c))) {
      return false;
    }
    result = result * 10 + (c - '0');
  }
  *pos += width;
  *value = result;
  return true;
}

bool Expect(absl::string_view text, size_t* pos, absl::string_view chars) {
  if (*pos >= text.size() || chars.find(text[*pos]) == absl::string_view::npos) {
    return false;
  }
  ++*pos;
  return true;
}

}  // namespace

absl::StatusOr<std::chrono::nanoseconds> ParseDuration(absl::string_view text) {
  const auto invalid = [&] {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid duration \"", text, "\" (want e.g. 90s, 1m30s, 2h, 3d, 250ms)"));
  };
  // Milliseconds; capped at about 100 years so that nanoseconds cannot overflow.
  constexpr int64_t kMaxMillis = INT64_C(100) * 366 * 86400 * 1000;
  int64_t total = 0;
  size_t pos = 0;
  if (text.empty()) {
    return invalid();
  }
  while (pos < text.size()) {
    int64_t number = 0;
    const size_t digits_start = pos;
    while (pos < text.size() && std::isdigit(static_cast<unsigned char>(text[pos]))) {
      number = number * 10 + (text[pos] - '0');
      if (number > kMaxMillis) {
        return invalid();
      }
      ++pos;
    }
    if (pos == digits_start || pos == text.size()) {
      return invalid();
    }
    int64_t unit_millis;
    if (text.substr(pos, 2) == "ms") {
      unit_millis = 1;
      ++pos;
    } else if (text[pos] == 'd') {
      unit_millis = INT64_C(86400000);
    } else if (text[pos] == 'h') {
      unit_millis = INT64_C(3600000);
    } else if (text[pos] == 'm') {
      unit_millis = INT64_C(60000);
    } else if (text[pos] == 's') {
      unit_millis = 1000;
    } else {
      return invalid();
    }
    ++pos;
    if (number > (kMaxMillis - total) / unit_millis) {
      return invalid();
    }
    total += number * unit_millis;
  }
  return std::chrono::milliseconds(total);
}

absl::StatusOr<google::protobuf::Timestamp> ParseRfc3339(absl::string_view text) {
  const auto invalid = [&] {
    return absl::InvalidArgumentError(absl::StrCat(
        "invalid time \"", text, "\" (want RFC 3339, e.g. 2024-05-01T10:00:00Z or +02:00)"));
  };
  std::tm tm{};
  size_t pos = 0;
  int year, month, day, hour, minute, second;
  if (!ReadDigits(text, &pos, 4, &year) || !Expect(text, &pos, "-") ||
      !ReadDigits(text, &pos, 2, &month) || !Expect(text, &pos, "-") ||
      !ReadDigits(text, &pos, 2, &day) || !Expect(text, &pos, "Tt ") ||
      !ReadDigits(text, &pos, 2, &hour) || !Expect(text, &pos, ":") ||
      !ReadDigits(text, &pos, 2, &minute) || !Expect(text, &pos, ":") ||
      !ReadDigits(text, &pos, 2, &second)) {
    return invalid();
  }
  if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 60) {
    return invalid();
  }
  int32_t nanos = 0;
  if (pos < text.size() && text[pos] == '.') {
    ++pos;
    int32_t scale = 100000000;
    const size_t start = pos;
    while (pos < text.size() && std::isdigit(static_cast<unsigned char>(text[pos]))) {
      nanos += (text[pos] - '0') * scale;
      scale /= 10;
      ++pos;
    }
    if (pos == start) {
      return invalid();
    }
  }
  int64_t offset_seconds = 0;
  if (Expect(text, &pos, "Zz")) {
    // UTC.
  } else if (pos < text.size() && (text[pos] == '+' || text[pos] == '-')) {
    const int sign = text[pos] == '-' ? -1 : 1;
    ++pos;
    int offset_hours, offset_minutes;
    if (!ReadDigits(text, &pos, 2, &offset_hours) || !Expect(text, &pos, ":") ||
        !ReadDigits(text, &pos, 2, &offset_minutes)) {
      return invalid();
    }
    offset_seconds = int64_t{sign} * (offset_hours * 3600 + offset_minutes * 60);
  } else {
    return invalid();
  }
  if (pos != text.size()) {
    return invalid();
  }
  tm.tm_year = year - 1900;
  tm.tm_mon = month - 1;
  tm.tm_mday = day;
  tm.tm_hour = hour;
  tm.tm_min = minute;
  tm.tm_sec = second;
  google::protobuf::Timestamp result;
  result.set_seconds(static_cast<int64_t>(timegm(&tm)) - offset_seconds);
  result.set_nanos(nanos);
  return result;
}

absl::StatusOr<google::protobuf::Timestamp> ParseTimeBound(
    absl::string_view text, std::chrono::system_clock::time_point now) {
  if (absl::StatusOr<std::chrono::nanoseconds> ago = ParseDuration(text); ago.ok()) {
    return ToTimestamp(now - std::chrono::duration_cast<std::chrono::system_clock::duration>(*ago));
  }
  if (absl::StatusOr<google::protobuf::Timestamp> time = ParseRfc3339(text); time.ok()) {
    return time;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("invalid time \"", text, "\" (want a duration such as 2h or an RFC 3339 time)"));
}

absl::StatusOr<std::pair<std::string, std::string>> ParseParameter(absl::string_view text) {
  const size_t eq = text.find('=');
  if (eq == absl::string_view::npos || eq == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid parameter \"", text, "\" (want key=value)"));
  }
  return std::make_pair(std::string{text.substr(0, eq)}, std::string{text.substr(eq + 1)});
}

absl::StatusOr<std::map<std::string, std::string>> ParseParameters(
    const std::vector<std::string>& texts) {
  std::map<std::string, std::string> result;
  for (const std::string& text : texts) {
    absl::StatusOr<std::pair<std::string, std::string>> parameter = ParseParameter(text);
    if (!parameter.ok()) {
      return parameter.status();
    }
    result[parameter->first] = std::move(parameter->second);
  }
  return result;
}

absl::StatusOr<v1::Phase> ParsePhase(absl::string_view text) {
  const std::string lower = absl::AsciiStrToLower(text);
  for (int i = v1::Phase_MIN + 1; i <= v1::Phase_MAX; ++i) {
    const auto phase = static_cast<v1::Phase>(i);
    if (!v1::Phase_IsValid(i)) {
      continue;
    }
    if (lower == absl::AsciiStrToLower(PhaseName(phase)) ||
        lower == absl::AsciiStrToLower(v1::Phase_Name(phase))) {
      return phase;
    }
  }
  return absl::InvalidArgumentError(
      absl::StrCat("invalid phase \"", text,
                   "\" (want Pending, Running, Succeeded, Failed, Error, Skipped or Omitted)"));
}

}  // namespace dagd::dagctl
