#include "engine/duration.h"

#include <cmath>
#include <cstdlib>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace dagd::engine {
namespace {

absl::Status BadDuration(std::string_view text, std::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat("invalid duration \"", std::string(text),
                                                 "\": ", std::string(why),
                                                 " (expected e.g. \"30\", \"500ms\", \"5s\", "
                                                 "\"1m30s\", \"2h\")"));
}

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// Nanoseconds per unit, longest units first so "ms" wins over "m".
struct Unit {
  std::string_view name;
  double nanos;
};
constexpr Unit kUnits[] = {{"ns", 1},  {"us", 1e3}, {"\xC2\xB5s", 1e3}, {"ms", 1e6},
                           {"s", 1e9}, {"m", 60e9}, {"h", 3600e9}};

}  // namespace

absl::StatusOr<int64_t> ParseDurationMs(std::string_view text) {
  if (text.empty()) return BadDuration(text, "empty");
  bool all_digits = true;
  for (char c : text) all_digits = all_digits && IsDigit(c);
  if (all_digits) {
    // Argo: a plain integer is a number of seconds.
    if (text.size() > 12) return BadDuration(text, "too large");
    return std::stoll(std::string(text)) * 1000;
  }
  if (text[0] == '-') return BadDuration(text, "negative");
  std::string_view rest = text;
  if (rest[0] == '+') rest.remove_prefix(1);
  if (rest == "0") return 0;
  double total_nanos = 0;
  while (!rest.empty()) {
    size_t i = 0;
    while (i < rest.size() && (IsDigit(rest[i]) || rest[i] == '.')) ++i;
    if (i == 0) return BadDuration(text, "expected a number");
    std::string number(rest.substr(0, i));
    if (number == "." || number.find('.') != number.rfind('.')) {
      return BadDuration(text, absl::StrCat("bad number \"", number, "\""));
    }
    rest.remove_prefix(i);
    size_t unit_len = 0;
    while (unit_len < rest.size() && !IsDigit(rest[unit_len]) && rest[unit_len] != '.') {
      ++unit_len;
    }
    std::string_view unit_text = rest.substr(0, unit_len);
    if (unit_text.empty()) return BadDuration(text, "missing unit");
    const Unit* unit = nullptr;
    for (const Unit& u : kUnits) {
      if (u.name == unit_text) unit = &u;
    }
    if (unit == nullptr) {
      return BadDuration(text, absl::StrCat("unknown unit \"", std::string(unit_text), "\""));
    }
    total_nanos += std::strtod(number.c_str(), nullptr) * unit->nanos;
    rest.remove_prefix(unit_len);
  }
  if (total_nanos / 1e6 > 9.2e15) return BadDuration(text, "too large");
  return static_cast<int64_t>(std::floor(total_nanos / 1e6));
}

std::string FormatDurationMs(int64_t ms) {
  if (ms < 1000) return absl::StrCat(ms, "ms");
  const int64_t hours = ms / 3600000;
  const int64_t minutes = (ms / 60000) % 60;
  const int64_t millis = ms % 60000;
  std::string out;
  if (hours > 0) absl::StrAppend(&out, hours, "h");
  if (minutes > 0 || (hours > 0 && millis > 0)) absl::StrAppend(&out, minutes, "m");
  if (millis > 0) {
    if (millis % 1000 == 0) {
      absl::StrAppend(&out, millis / 1000, "s");
    } else {
      // Trailing zeros of the fraction are dropped: 1500 -> "1.5s".
      std::string fraction = std::to_string(1000 + millis % 1000).substr(1);
      while (fraction.back() == '0') fraction.pop_back();
      absl::StrAppend(&out, millis / 1000, ".", fraction, "s");
    }
  }
  return out;
}

}  // namespace dagd::engine
