#include "engine/internal/expr_text.h"

#include <charconv>
#include <cmath>
#include <cstdlib>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace dagd::engine::internal {
namespace {

using nlohmann::json;

std::string ToChars(double value, std::chars_format format) {
  char buffer[512];
  const std::to_chars_result result = std::to_chars(buffer, buffer + sizeof(buffer), value, format);
  return std::string(buffer, result.ptr);
}

// The decimal exponent of `value` (≠ 0) as its shortest scientific form writes it.
int DecimalExponent(const std::string& scientific) {
  return std::atoi(scientific.c_str() + scientific.find('e') + 1);
}

// strconv.FormatFloat(value, 'g', -1, 64), which is what fmt's %v uses.
std::string GoFloatText(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  if (value == 0) return std::signbit(value) ? "-0" : "0";
  std::string scientific = ToChars(value, std::chars_format::scientific);
  const int exponent = DecimalExponent(scientific);
  if (exponent < -4 || exponent >= 6) return scientific;  // "shortest" uses precision 6 here
  return ToChars(value, std::chars_format::fixed);
}

void AppendHex4(unsigned code, std::string* out) {
  constexpr char kHex[] = "0123456789abcdef";
  out->append("\\u");
  for (int shift = 12; shift >= 0; shift -= 4) out->push_back(kHex[(code >> shift) & 0xf]);
}

// The length of the valid UTF-8 sequence at text[i], or 0 if there is none.
size_t Utf8Length(std::string_view text, size_t i, unsigned* code) {
  const auto byte = [&](size_t k) { return static_cast<unsigned char>(text[k]); };
  const unsigned lead = byte(i);
  size_t length = 0;
  unsigned value = 0;
  if (lead < 0x80) {
    *code = lead;
    return 1;
  } else if ((lead & 0xe0) == 0xc0) {
    length = 2;
    value = lead & 0x1f;
  } else if ((lead & 0xf0) == 0xe0) {
    length = 3;
    value = lead & 0x0f;
  } else if ((lead & 0xf8) == 0xf0) {
    length = 4;
    value = lead & 0x07;
  } else {
    return 0;
  }
  if (i + length > text.size()) return 0;
  for (size_t k = 1; k < length; ++k) {
    if ((byte(i + k) & 0xc0) != 0x80) return 0;
    value = (value << 6) | (byte(i + k) & 0x3f);
  }
  constexpr unsigned kMinimum[] = {0, 0, 0x80, 0x800, 0x10000};
  if (value < kMinimum[length] || value > 0x10ffff || (value >= 0xd800 && value <= 0xdfff)) {
    return 0;
  }
  *code = value;
  return length;
}

// encoding/json's string encoder.
void AppendJsonString(std::string_view text, bool escape_html, std::string* out) {
  out->push_back('"');
  size_t i = 0;
  while (i < text.size()) {
    const char c = text[i];
    unsigned code = 0;
    const size_t length = Utf8Length(text, i, &code);
    if (length == 0) {
      out->append("\\ufffd");  // invalid UTF-8, as Go replaces it
      ++i;
      continue;
    }
    if (length > 1) {
      if (code == 0x2028 || code == 0x2029) {
        AppendHex4(code, out);
      } else {
        out->append(text.substr(i, length));
      }
      i += length;
      continue;
    }
    switch (c) {
      case '"':
        out->append("\\\"");
        break;
      case '\\':
        out->append("\\\\");
        break;
      case '\b':
        out->append("\\b");
        break;
      case '\f':
        out->append("\\f");
        break;
      case '\n':
        out->append("\\n");
        break;
      case '\r':
        out->append("\\r");
        break;
      case '\t':
        out->append("\\t");
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20 ||
            (escape_html && (c == '<' || c == '>' || c == '&'))) {
          AppendHex4(static_cast<unsigned char>(c), out);
        } else {
          out->push_back(c);
        }
    }
    ++i;
  }
  out->push_back('"');
}

absl::Status AppendJson(const json& value, bool escape_html, std::string_view indent, int level,
                        std::string* out) {
  const auto newline = [&](int depth) {
    if (indent.empty()) return;
    out->push_back('\n');
    for (int k = 0; k < depth; ++k) out->append(indent);
  };
  switch (value.type()) {
    case json::value_t::null:
      out->append("null");
      return absl::OkStatus();
    case json::value_t::boolean:
      out->append(value.get<bool>() ? "true" : "false");
      return absl::OkStatus();
    case json::value_t::number_integer:
      absl::StrAppend(out, value.get<int64_t>());
      return absl::OkStatus();
    case json::value_t::number_unsigned:
      absl::StrAppend(out, value.get<uint64_t>());
      return absl::OkStatus();
    case json::value_t::number_float: {
      const double number = value.get<double>();
      if (!std::isfinite(number)) {
        return absl::InvalidArgumentError(
            absl::StrCat("json: unsupported value: ", GoFloatText(number)));
      }
      out->append(GoJsonFloat(number));
      return absl::OkStatus();
    }
    case json::value_t::string:
      AppendJsonString(value.get_ref<const std::string&>(), escape_html, out);
      return absl::OkStatus();
    case json::value_t::array: {
      if (value.empty()) {
        out->append("[]");
        return absl::OkStatus();
      }
      out->push_back('[');
      bool first = true;
      for (const json& element : value) {
        if (!first) out->push_back(',');
        first = false;
        newline(level + 1);
        absl::Status status = AppendJson(element, escape_html, indent, level + 1, out);
        if (!status.ok()) return status;
      }
      newline(level);
      out->push_back(']');
      return absl::OkStatus();
    }
    case json::value_t::object: {
      if (value.empty()) {
        out->append("{}");
        return absl::OkStatus();
      }
      out->push_back('{');
      bool first = true;
      for (const auto& [key, element] : value.items()) {
        if (!first) out->push_back(',');
        first = false;
        newline(level + 1);
        AppendJsonString(key, escape_html, out);
        out->append(indent.empty() ? ":" : ": ");
        absl::Status status = AppendJson(element, escape_html, indent, level + 1, out);
        if (!status.ok()) return status;
      }
      newline(level);
      out->push_back('}');
      return absl::OkStatus();
    }
    default:
      return absl::InvalidArgumentError("json: unsupported value");
  }
}

// Howard Hinnant's days_from_civil / civil_from_days (proleptic Gregorian calendar).
int64_t DaysFromCivil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

struct Civil {
  int64_t year;
  unsigned month;  // 1..12
  unsigned day;    // 1..31
};

Civil CivilFromDays(int64_t z) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const unsigned doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t y = static_cast<int64_t>(yoe) + era * 400;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  const unsigned d = doy - (153 * mp + 2) / 5 + 1;
  const unsigned m = mp < 10 ? mp + 3 : mp - 9;
  return {y + (m <= 2), m, d};
}

std::string Padded(int64_t value, int width, char pad = '0') {
  std::string digits = absl::StrCat(value < 0 ? -value : value);
  if (static_cast<int>(digits.size()) < width) digits.insert(0, width - digits.size(), pad);
  return value < 0 ? "-" + digits : digits;
}

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

}  // namespace

std::string GoJsonFloat(double value) {
  const double magnitude = std::fabs(value);
  if (magnitude != 0 && (magnitude < 1e-6 || magnitude >= 1e21)) {
    std::string text = ToChars(value, std::chars_format::scientific);
    // encoding/json writes e-7, not e-07.
    const size_t n = text.size();
    if (n >= 4 && text[n - 4] == 'e' && text[n - 3] == '-' && text[n - 2] == '0') {
      text.erase(n - 2, 1);
    }
    return text;
  }
  return ToChars(value, std::chars_format::fixed);
}

std::string GoText(const json& value) {
  switch (value.type()) {
    case json::value_t::null:
      return "<nil>";
    case json::value_t::boolean:
      return value.get<bool>() ? "true" : "false";
    case json::value_t::number_integer:
      return absl::StrCat(value.get<int64_t>());
    case json::value_t::number_unsigned:
      return absl::StrCat(value.get<uint64_t>());
    case json::value_t::number_float:
      return GoFloatText(value.get<double>());
    case json::value_t::string:
      return value.get<std::string>();
    case json::value_t::array: {
      std::string out = "[";
      for (size_t i = 0; i < value.size(); ++i) {
        if (i > 0) out.push_back(' ');
        out.append(GoText(value[i]));
      }
      out.push_back(']');
      return out;
    }
    case json::value_t::object: {
      std::string out = "map[";
      bool first = true;
      for (const auto& [key, element] : value.items()) {
        if (!first) out.push_back(' ');
        first = false;
        absl::StrAppend(&out, key, ":", GoText(element));
      }
      out.push_back(']');
      return out;
    }
    default:
      return "";
  }
}

absl::StatusOr<std::string> GoJson(const json& value, bool escape_html, std::string_view indent) {
  std::string out;
  absl::Status status = AppendJson(value, escape_html, indent, 0, &out);
  if (!status.ok()) return status;
  return out;
}

std::optional<Instant> ParseRfc3339(std::string_view text) {
  // YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)
  const auto number = [&](size_t at, size_t width, int64_t* out) {
    if (at + width > text.size()) return false;
    int64_t value = 0;
    for (size_t k = at; k < at + width; ++k) {
      if (!IsDigit(text[k])) return false;
      value = value * 10 + (text[k] - '0');
    }
    *out = value;
    return true;
  };
  int64_t year, month, day, hour, minute, second;
  if (!number(0, 4, &year) || text.size() < 20 || text[4] != '-' || !number(5, 2, &month) ||
      text[7] != '-' || !number(8, 2, &day) || (text[10] != 'T' && text[10] != 't') ||
      !number(11, 2, &hour) || text[13] != ':' || !number(14, 2, &minute) || text[16] != ':' ||
      !number(17, 2, &second)) {
    return std::nullopt;
  }
  if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 59) {
    return std::nullopt;
  }
  size_t i = 19;
  int64_t nanos = 0;
  if (i < text.size() && text[i] == '.') {
    ++i;
    int digits = 0;
    while (i < text.size() && IsDigit(text[i])) {
      if (digits < 9) nanos = nanos * 10 + (text[i] - '0');
      ++digits;
      ++i;
    }
    if (digits == 0) return std::nullopt;
    for (int k = digits; k < 9; ++k) nanos *= 10;
  }
  int64_t offset = 0;
  if (i < text.size() && (text[i] == 'Z' || text[i] == 'z')) {
    ++i;
  } else if (i < text.size() && (text[i] == '+' || text[i] == '-')) {
    int64_t zone_hours, zone_minutes;
    if (!number(i + 1, 2, &zone_hours) || i + 3 >= text.size() || text[i + 3] != ':' ||
        !number(i + 4, 2, &zone_minutes) || zone_hours > 23 || zone_minutes > 59) {
      return std::nullopt;
    }
    offset = (zone_hours * 60 + zone_minutes) * 60 * (text[i] == '-' ? -1 : 1);
    i += 6;
  } else {
    return std::nullopt;
  }
  if (i != text.size()) return std::nullopt;
  const int64_t days =
      DaysFromCivil(year, static_cast<unsigned>(month), static_cast<unsigned>(day));
  return Instant{days * 86400 + hour * 3600 + minute * 60 + second - offset,
                 static_cast<int32_t>(nanos)};
}

std::string FormatGoTime(std::string_view layout, Instant instant) {
  constexpr std::string_view kMonths[] = {"January",   "February", "March",    "April",
                                          "May",       "June",     "July",     "August",
                                          "September", "October",  "November", "December"};
  constexpr std::string_view kDays[] = {"Sunday",   "Monday", "Tuesday", "Wednesday",
                                        "Thursday", "Friday", "Saturday"};
  int64_t days = instant.seconds / 86400;
  int64_t second_of_day = instant.seconds % 86400;
  if (second_of_day < 0) {
    second_of_day += 86400;
    --days;
  }
  const Civil civil = CivilFromDays(days);
  const int64_t hour = second_of_day / 3600;
  const int64_t minute = second_of_day / 60 % 60;
  const int64_t second = second_of_day % 60;
  const int64_t hour12 = hour % 12 == 0 ? 12 : hour % 12;
  const int64_t weekday = ((days % 7) + 11) % 7;  // 1970-01-01 was a Thursday
  const int64_t year_day = days - DaysFromCivil(civil.year, 1, 1) + 1;
  const std::string_view month_name = kMonths[civil.month - 1];
  const std::string_view day_name = kDays[weekday];

  std::string out;
  size_t i = 0;
  const auto starts = [&](std::string_view chunk) {
    return layout.substr(i, chunk.size()) == chunk;
  };
  while (i < layout.size()) {
    const char c = layout[i];
    if (starts("January")) {
      out.append(month_name);
      i += 7;
    } else if (starts("Jan")) {
      out.append(month_name.substr(0, 3));
      i += 3;
    } else if (starts("Monday")) {
      out.append(day_name);
      i += 6;
    } else if (starts("Mon")) {
      out.append(day_name.substr(0, 3));
      i += 3;
    } else if (starts("MST")) {
      out.append("UTC");
      i += 3;
    } else if (starts("2006")) {
      out.append(Padded(civil.year, 4));
      i += 4;
    } else if (starts("002")) {
      out.append(Padded(year_day, 3));
      i += 3;
    } else if (c == '0' && i + 1 < layout.size() && layout[i + 1] >= '1' && layout[i + 1] <= '6') {
      const int64_t values[] = {static_cast<int64_t>(civil.month),
                                static_cast<int64_t>(civil.day),
                                hour12,
                                minute,
                                second,
                                ((civil.year % 100) + 100) % 100};
      out.append(Padded(values[layout[i + 1] - '1'], 2));
      i += 2;
    } else if (starts("15")) {
      out.append(Padded(hour, 2));
      i += 2;
    } else if (c == '1') {
      absl::StrAppend(&out, civil.month);
      ++i;
    } else if (c == '2') {
      absl::StrAppend(&out, civil.day);
      ++i;
    } else if (starts("_2006")) {
      out.push_back('_');
      ++i;  // the year follows
    } else if (starts("__2")) {
      out.append(Padded(year_day, 3, ' '));
      i += 3;
    } else if (starts("_2")) {
      out.append(Padded(civil.day, 2, ' '));
      i += 2;
    } else if (c == '3' || c == '4' || c == '5') {
      absl::StrAppend(&out, c == '3' ? hour12 : c == '4' ? minute : second);
      ++i;
    } else if (starts("PM") || starts("pm")) {
      const bool pm = hour >= 12;
      out.append(c == 'P' ? (pm ? "PM" : "AM") : (pm ? "pm" : "am"));
      i += 2;
    } else if (c == '-' || c == 'Z') {
      // Zone offsets: always UTC here, which the Z forms write as "Z".
      constexpr std::string_view kZones[] = {"070000", "07:00:00", "0700", "07:00", "07"};
      constexpr std::string_view kUtc[] = {"+000000", "+00:00:00", "+0000", "+00:00", "+00"};
      bool matched = false;
      for (size_t k = 0; k < 5 && !matched; ++k) {
        if (layout.substr(i + 1, kZones[k].size()) == kZones[k]) {
          out.append(c == 'Z' ? std::string_view("Z") : kUtc[k]);
          i += 1 + kZones[k].size();
          matched = true;
        }
      }
      if (!matched) {
        out.push_back(c);
        ++i;
      }
    } else if ((c == '.' || c == ',') && i + 1 < layout.size() &&
               (layout[i + 1] == '0' || layout[i + 1] == '9')) {
      const char digit = layout[i + 1];
      size_t end = i + 1;
      while (end < layout.size() && layout[end] == digit) ++end;
      if (end < layout.size() && IsDigit(layout[end])) {
        out.push_back(c);  // not a fraction: ".01" is a separator and a month
        ++i;
        continue;
      }
      const size_t width = std::min<size_t>(end - i - 1, 9);
      std::string fraction = Padded(instant.nanos, 9).substr(0, width);
      if (digit == '9') {
        while (!fraction.empty() && fraction.back() == '0') fraction.pop_back();
        if (!fraction.empty()) out.push_back(c);
      } else {
        out.push_back(c);
      }
      out.append(fraction);
      i = end;
    } else {
      out.push_back(c);
      ++i;
    }
  }
  return out;
}

}  // namespace dagd::engine::internal
