#include "engine/internal/expr_functions.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "engine/internal/expr_text.h"
#include "engine/internal/jsonpath.h"
#include "engine/status_macros.h"

namespace dagd::engine::internal {
namespace {

using nlohmann::json;
using Value = ExprValue;

constexpr int kMaxJsonNesting = 256;  // fromJSON / jsonpath documents

// Debian's Abseil has its own string_view, distinct from std::string_view.
absl::string_view Sv(std::string_view text) { return absl::string_view(text.data(), text.size()); }

bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsInt(const json& v) { return v.is_number_integer(); }  // unsigned counts as integer too
int64_t AsInt(const json& v) { return v.get<int64_t>(); }
double AsFloat(const json& v) { return v.get<double>(); }
int64_t NumberToInt(const json& v) { return IsInt(v) ? AsInt(v) : TruncateToInt(AsFloat(v)); }

// Wrapping int arithmetic, as Go's.
int64_t Wrap(uint64_t value) { return static_cast<int64_t>(value); }

// The start of `text` for a message.
std::string Abbreviate(std::string_view text) {
  constexpr size_t kShown = 60;
  if (text.size() <= kShown) return std::string(text);
  size_t cut = kShown;
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xc0) == 0x80) --cut;  // UTF-8
  return absl::StrCat(Sv(text.substr(0, cut)), "…");
}

// Checks that JSON text nests at most kMaxJsonNesting deep before it is parsed.
bool JsonNestingOk(std::string_view text) {
  int depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > kMaxJsonNesting) return false;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return true;
}

// Go's encoding/json reads every number as a float64.
void NumbersToFloats(json* value) {
  if (value->is_number()) {
    *value = value->get<double>();
  } else if (value->is_structured()) {
    for (json& element : *value) NumbersToFloats(&element);
  }
}

}  // namespace

absl::StatusOr<json> ParseGoJson(std::string_view text) {
  if (!JsonNestingOk(text)) {
    return absl::InvalidArgumentError(
        absl::StrCat("JSON nested more than ", kMaxJsonNesting, " levels deep"));
  }
  json parsed = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) {
    return absl::InvalidArgumentError(absl::StrCat("not valid JSON: '", Abbreviate(text), "'"));
  }
  NumbersToFloats(&parsed);
  return parsed;
}

std::string ExprTypeName(const json& value) {
  switch (value.type()) {
    case json::value_t::null:
      return "nil";
    case json::value_t::boolean:
      return "bool";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
      return "int";
    case json::value_t::number_float:
      return "float";
    case json::value_t::string:
      return "string";
    case json::value_t::array:
      return "array";
    case json::value_t::object:
      return "map";
    default:
      return "unknown";
  }
}

// Go's int(f) for a float, saturated instead of undefined.
int64_t TruncateToInt(double value) {
  if (std::isnan(value)) return 0;
  if (value >= 9.2233720368547758e18) return std::numeric_limits<int64_t>::max();
  if (value <= -9.2233720368547758e18) return std::numeric_limits<int64_t>::min();
  return static_cast<int64_t>(value);
}

namespace {

absl::Status ArgumentError(size_t index, std::string_view wanted, const json& got) {
  return absl::InvalidArgumentError(
      absl::StrCat("argument ", index + 1, " must be ", Sv(wanted), ", not ", ExprTypeName(got)));
}

absl::StatusOr<std::string_view> StringArgument(const std::vector<Value>& args, size_t index) {
  if (!args[index]->is_string()) return ArgumentError(index, "a string", *args[index]);
  const std::string& text = args[index]->get_ref<const std::string&>();
  return std::string_view{text};
}

absl::StatusOr<int64_t> IntArgument(const std::vector<Value>& args, size_t index) {
  if (!IsInt(*args[index])) return ArgumentError(index, "an int", *args[index]);
  return AsInt(*args[index]);
}

absl::StatusOr<const json*> ArrayArgument(const std::vector<Value>& args, size_t index) {
  if (!args[index]->is_array()) return ArgumentError(index, "an array", *args[index]);
  return args[index].get();
}

absl::Status CheckTextSize(size_t size) {
  if (size > kMaxExprTextBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("the result would be longer than ", kMaxExprTextBytes, " bytes"));
  }
  return absl::OkStatus();
}

// expr's int(): ints as they are, floats truncated, strings as strconv.Atoi reads them.
absl::StatusOr<json> ToInt(const json& value) {
  if (IsInt(value)) return value;
  if (value.is_number_float()) return TruncateToInt(AsFloat(value));
  if (value.is_string()) {
    const std::string& text = value.get_ref<const std::string&>();
    size_t i = !text.empty() && (text[0] == '+' || text[0] == '-') ? 1 : 0;
    bool digits = i < text.size();
    for (size_t k = i; k < text.size(); ++k) digits = digits && IsDigit(text[k]);
    errno = 0;
    const int64_t parsed = digits ? std::strtoll(text.c_str(), nullptr, 10) : 0;
    if (!digits || errno == ERANGE) {
      return absl::InvalidArgumentError(absl::StrCat("cannot convert '", text, "' to int"));
    }
    return static_cast<int64_t>(parsed);
  }
  return absl::InvalidArgumentError(
      absl::StrCat("cannot convert ", ExprTypeName(value), " to int"));
}

std::optional<double> ParseGoFloat(const std::string& text) {
  if (text.empty() || std::isspace(static_cast<unsigned char>(text[0]))) return std::nullopt;
  char* end = nullptr;
  const double value = std::strtod(text.c_str(), &end);
  if (end != text.c_str() + text.size()) return std::nullopt;
  return value;
}

// expr's float().
absl::StatusOr<json> ToFloat(const json& value) {
  if (value.is_number()) return AsFloat(value);
  if (value.is_string()) {
    if (std::optional<double> parsed = ParseGoFloat(value.get<std::string>())) return *parsed;
    return absl::InvalidArgumentError(
        absl::StrCat("cannot convert '", value.get<std::string>(), "' to float"));
  }
  return absl::InvalidArgumentError(
      absl::StrCat("cannot convert ", ExprTypeName(value), " to float"));
}

// Go's strings.TrimSpace / strings.Trim(s, cutset) on bytes.
std::string_view TrimCutset(std::string_view text, std::string_view cutset) {
  while (!text.empty() && cutset.find(text.front()) != std::string_view::npos) {
    text.remove_prefix(1);
  }
  while (!text.empty() && cutset.find(text.back()) != std::string_view::npos) {
    text.remove_suffix(1);
  }
  return text;
}
constexpr std::string_view kSpaces = " \t\n\v\f\r";

// Go's strings.Split / SplitN.
json Split(std::string_view text, std::string_view separator, int64_t limit) {
  json out = json::array();
  if (limit == 0) return out;
  if (separator.empty()) {
    size_t i = 0;
    while (i < text.size()) {
      size_t length = 1;
      while (i + length < text.size() &&
             (static_cast<unsigned char>(text[i + length]) & 0xc0) == 0x80) {
        ++length;
      }
      if (limit > 0 && static_cast<int64_t>(out.size()) == limit - 1) length = text.size() - i;
      out.push_back(std::string(text.substr(i, length)));
      i += length;
    }
    return out;
  }
  size_t start = 0;
  while (true) {
    if (limit > 0 && static_cast<int64_t>(out.size()) == limit - 1) break;
    const size_t found = text.find(separator, start);
    if (found == std::string_view::npos) break;
    out.push_back(std::string(text.substr(start, found - start)));
    start = found + separator.size();
  }
  out.push_back(std::string(text.substr(start)));
  return out;
}

absl::StatusOr<json> Replace(std::string_view text, std::string_view from, std::string_view to) {
  std::string out;
  if (from.empty()) {  // Go inserts `to` around every rune
    out.append(to);
    for (size_t i = 0; i < text.size(); ++i) {
      out.push_back(text[i]);
      if (i + 1 == text.size() || (static_cast<unsigned char>(text[i + 1]) & 0xc0) != 0x80) {
        out.append(to);
      }
      RETURN_IF_ERROR(CheckTextSize(out.size()));
    }
    return out;
  }
  size_t start = 0;
  while (true) {
    const size_t found = text.find(from, start);
    if (found == std::string_view::npos) break;
    out.append(text.substr(start, found - start));
    out.append(to);
    RETURN_IF_ERROR(CheckTextSize(out.size()));
    start = found + from.size();
  }
  out.append(text.substr(start));
  return out;
}

absl::StatusOr<json> Repeat(std::string_view text, int64_t count) {
  if (count < 0) return absl::InvalidArgumentError("negative repeat count");
  if (text.empty()) return std::string();
  if (!text.empty() && static_cast<uint64_t>(count) > kMaxExprTextBytes / text.size()) {
    return CheckTextSize(kMaxExprTextBytes + 1);
  }
  std::string out;
  for (int64_t i = 0; i < count; ++i) out.append(text);
  return out;
}

// max()/min(): numbers, or one array of numbers.
absl::StatusOr<json> Extreme(const std::vector<Value>& args, bool maximum) {
  std::vector<const json*> values;
  if (args.size() == 1 && args[0]->is_array()) {
    for (const json& element : *args[0]) values.push_back(&element);
  } else {
    for (const Value& arg : args) values.push_back(arg.get());
  }
  if (values.empty()) return absl::InvalidArgumentError("needs at least one number");
  const json* best = nullptr;
  for (size_t i = 0; i < values.size(); ++i) {
    if (!values[i]->is_number()) return ArgumentError(i, "a number", *values[i]);
    if (!best ||
        (maximum ? AsFloat(*values[i]) > AsFloat(*best) : AsFloat(*values[i]) < AsFloat(*best))) {
      best = values[i];
    }
  }
  return *best;
}

absl::StatusOr<json> Rounded(const json& value, double (*round)(double)) {
  if (IsInt(value)) return value;
  if (value.is_number_float()) return round(AsFloat(value));
  return ArgumentError(0, "a number", value);
}

// spf13/cast's ToInt64 / ToFloat64, which sprig uses: anything unreadable is 0.
int64_t CastInt(const json& value) {
  if (IsInt(value)) return AsInt(value);
  if (value.is_number_float()) return TruncateToInt(AsFloat(value));
  if (value.is_boolean()) return value.get<bool>() ? 1 : 0;
  if (!value.is_string()) return 0;
  std::string text = value.get<std::string>();
  if (const size_t dot = text.find('.');
      dot != std::string::npos && text.find_first_not_of('0', dot + 1) == std::string::npos) {
    text.erase(dot);  // "3.00" reads as 3
  }
  int base = 0;
  std::string digits = text;
  size_t sign = !digits.empty() && (digits[0] == '-' || digits[0] == '+') ? 1 : 0;
  if (digits.size() > sign + 1 && digits[sign] == '0' &&
      (digits[sign + 1] == 'b' || digits[sign + 1] == 'B' || digits[sign + 1] == 'o' ||
       digits[sign + 1] == 'O')) {
    base = (digits[sign + 1] == 'b' || digits[sign + 1] == 'B') ? 2 : 8;
    digits.erase(sign, 2);
  }
  if (digits.empty() || std::isspace(static_cast<unsigned char>(digits[0]))) return 0;
  errno = 0;
  char* end = nullptr;
  const int64_t parsed = std::strtoll(digits.c_str(), &end, base);
  if (end != digits.c_str() + digits.size() || errno == ERANGE) return 0;
  return parsed;
}

double CastFloat(const json& value) {
  if (value.is_number()) return AsFloat(value);
  if (value.is_boolean()) return value.get<bool>() ? 1 : 0;
  if (value.is_string()) return ParseGoFloat(value.get<std::string>()).value_or(0);
  return 0;
}

// sprig's empty().
bool Empty(const json& value) {
  switch (value.type()) {
    case json::value_t::null:
      return true;
    case json::value_t::boolean:
      return !value.get<bool>();
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
      return AsInt(value) == 0;
    case json::value_t::number_float:
      return AsFloat(value) == 0;
    case json::value_t::string:
      return value.get_ref<const std::string&>().empty();
    default:
      return value.empty();
  }
}

// sprig's strval(): strings as they are, anything else as fmt's %v.
std::string StringValue(const json& value) {
  return value.is_string() ? value.get<std::string>() : internal::GoText(value);
}

absl::StatusOr<json> SprigDate(const std::vector<Value>& args) {
  ASSIGN_OR_RETURN(std::string_view layout, StringArgument(args, 0));
  const json* date_value = args[1].get();
  // Argo's scope also has workflow.creationTimestamp.<strftime char> keys, which make
  // workflow.creationTimestamp a map; its RFC3339 member is the timestamp.
  if (date_value->is_object() && date_value->contains("RFC3339")) {
    date_value = &date_value->at("RFC3339");
  }
  const json& date = *date_value;
  internal::Instant instant;
  if (date.is_string()) {
    std::optional<internal::Instant> parsed = internal::ParseRfc3339(date.get<std::string>());
    if (!parsed) {
      return absl::InvalidArgumentError(
          absl::StrCat("'", date.get<std::string>(), "' is not an RFC 3339 timestamp"));
    }
    instant = *parsed;
  } else if (date.is_number()) {
    instant.seconds = NumberToInt(date);
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("needs an RFC 3339 timestamp or Unix seconds, not ", ExprTypeName(date),
                     " (there is no clock to read the time from)"));
  }
  return internal::FormatGoTime(layout, instant);
}

absl::StatusOr<json> Jsonpath(const std::vector<Value>& args) {
  ASSIGN_OR_RETURN(std::string_view text, StringArgument(args, 0));
  ASSIGN_OR_RETURN(std::string_view path, StringArgument(args, 1));
  ASSIGN_OR_RETURN(json document, ParseGoJson(text));
  return internal::JsonPathQuery(document, path);
}

json IntJson(int64_t value) { return json(value); }

const std::map<std::string_view, ExprFunction>& Functions() {
  using Args = std::vector<Value>;
  using Result = absl::StatusOr<json>;
  static const auto* const functions = new std::map<std::string_view, ExprFunction>{
      // expr-lang builtins.
      {"len", {1, 1, [](const Args& a) -> Result {
         const json& v = *a[0];
         if (v.is_string()) {
           return IntJson(static_cast<int64_t>(v.get_ref<const std::string&>().size()));
         }
         if (v.is_structured()) return IntJson(static_cast<int64_t>(v.size()));
         return absl::InvalidArgumentError(absl::StrCat("invalid argument for len (type ",
                                                        ExprTypeName(v), ")"));
       }}},
      {"abs", {1, 1, [](const Args& a) -> Result {
         if (IsInt(*a[0])) {
           const int64_t x = AsInt(*a[0]);
           return IntJson(x < 0 ? Wrap(0 - static_cast<uint64_t>(x)) : x);
         }
         if (a[0]->is_number_float()) return std::fabs(AsFloat(*a[0]));
         return ArgumentError(0, "a number", *a[0]);
       }}},
      {"int", {1, 1, [](const Args& a) -> Result { return ToInt(*a[0]); }}},
      {"float", {1, 1, [](const Args& a) -> Result { return ToFloat(*a[0]); }}},
      {"string", {1, 1, [](const Args& a) -> Result { return internal::GoText(*a[0]); }}},
      {"upper", {1, 1, [](const Args& a) -> Result {
         ASSIGN_OR_RETURN(std::string_view s, StringArgument(a, 0));
         return absl::AsciiStrToUpper(Sv(s));
       }}},
      {"lower", {1, 1, [](const Args& a) -> Result {
         ASSIGN_OR_RETURN(std::string_view s, StringArgument(a, 0));
         return absl::AsciiStrToLower(Sv(s));
       }}},
      {"trim", {1, 2, [](const Args& a) -> Result {
         ASSIGN_OR_RETURN(std::string_view s, StringArgument(a, 0));
         std::string_view cutset = kSpaces;
         if (a.size() == 2) {
           ASSIGN_OR_RETURN(cutset, StringArgument(a, 1));
         }
         return std::string(TrimCutset(s, cutset));
       }}},
      {"trimPrefix", {2, 2, [](const Args& a) -> Result {
         ASSIGN_OR_RETURN(std::string_view s, StringArgument(a, 0));
         ASSIGN_OR_RETURN(std::string_view prefix, StringArgument(a, 1));
         if (s.starts_with(prefix)) s.remove_prefix(prefix.size());
         return std::string(s);
       }}},
      {"trimSuffix", {2, 2, [](const Args& a) -> Result {
         ASSIGN_OR_RETURN(std::string_view s, StringArgument(a, 0));
         ASSIGN_OR_RETURN(std::string_view suffix, StringArgument(a, 1));
         if (s.ends_with(suffix)) s.remove_suffix(suffix.size());
         return std::string(s);
       }}},
      {"split", {2, 3, [](const Args& a) -> Result {
         ASSIGN_OR_RETURN(std::string_view s, StringArgument(a, 0));
         ASSIGN_OR_RETURN(std::string_view separator, StringArgument(a, 1));
         int64_t limit = -1;
         if (a.size() == 3) {
           ASSIGN_OR_RETURN(limit, IntArgument(a, 2));
         }
         return Split(s, separator, limit);
       }}},
      {"join", {1, 2, [](const Args& a) -> Result {
         ASSIGN_OR_RETURN(const json* elements, ArrayArgument(a, 0));
         std::string_view separator;
         if (a.size() == 2) {
           ASSIGN_OR_RETURN(separator, StringArgument(a, 1));
         }
         std::string out;
         for (size_t i = 0; i < elements->size(); ++i) {
           const json& element = (*elements)[i];
           if (!element.is_string()) {
             return absl::InvalidArgumentError(
                 absl::StrCat("element ", i, " is a ", ExprTypeName(element), ", not a string"));
           }
           if (i > 0) out.append(separator);
           out.append(element.get_ref<const std::string&>());
           RETURN_IF_ERROR(CheckTextSize(out.size()));
         }
         return out;
       }}},
      {"replace", {3, 3, [](const Args& a) -> Result {
         ASSIGN_OR_RETURN(std::string_view s, StringArgument(a, 0));
         ASSIGN_OR_RETURN(std::string_view from, StringArgument(a, 1));
         ASSIGN_OR_RETURN(std::string_view to, StringArgument(a, 2));
         return Replace(s, from, to);
       }}},
      {"repeat", {2, 2, [](const Args& a) -> Result {
         ASSIGN_OR_RETURN(std::string_view s, StringArgument(a, 0));
         ASSIGN_OR_RETURN(int64_t count, IntArgument(a, 1));
         return Repeat(s, count);
       }}},
      {"indexOf", {2, 2, [](const Args& a) -> Result {
         ASSIGN_OR_RETURN(std::string_view s, StringArgument(a, 0));
         ASSIGN_OR_RETURN(std::string_view sub, StringArgument(a, 1));
         const size_t found = s.find(sub);
         return IntJson(found == std::string_view::npos ? -1 : static_cast<int64_t>(found));
       }}},
      {"lastIndexOf", {2, 2, [](const Args& a) -> Result {
         ASSIGN_OR_RETURN(std::string_view s, StringArgument(a, 0));
         ASSIGN_OR_RETURN(std::string_view sub, StringArgument(a, 1));
         const size_t found = s.rfind(sub);
         return IntJson(found == std::string_view::npos ? -1 : static_cast<int64_t>(found));
       }}},
      {"hasPrefix", {2, 2, [](const Args& a) -> Result {
         ASSIGN_OR_RETURN(std::string_view s, StringArgument(a, 0));
         ASSIGN_OR_RETURN(std::string_view prefix, StringArgument(a, 1));
         return s.starts_with(prefix);
       }}},
      {"hasSuffix", {2, 2, [](const Args& a) -> Result {
         ASSIGN_OR_RETURN(std::string_view s, StringArgument(a, 0));
         ASSIGN_OR_RETURN(std::string_view suffix, StringArgument(a, 1));
         return s.ends_with(suffix);
       }}},
      {"max", {1, -1, [](const Args& a) -> Result { return Extreme(a, true); }}},
      {"min", {1, -1, [](const Args& a) -> Result { return Extreme(a, false); }}},
      {"ceil", {1, 1, [](const Args& a) -> Result {
         return Rounded(*a[0], [](double x) { return std::ceil(x); });
       }}},
      {"floor", {1, 1, [](const Args& a) -> Result {
         return Rounded(*a[0], [](double x) { return std::floor(x); });
       }}},
      {"round", {1, 1, [](const Args& a) -> Result {
         return Rounded(*a[0], [](double x) { return std::round(x); });  // half away from zero
       }}},
      {"toJSON", {1, 1, [](const Args& a) -> Result {
         return internal::GoJson(*a[0], /*escape_html=*/true, "  ");
       }}},
      {"fromJSON", {1, 1, [](const Args& a) -> Result {
         ASSIGN_OR_RETURN(std::string_view s, StringArgument(a, 0));
         return ParseGoJson(s);
       }}},
      {"toBase64", {1, 1, [](const Args& a) -> Result {
         ASSIGN_OR_RETURN(std::string_view s, StringArgument(a, 0));
         return absl::Base64Escape(Sv(s));
       }}},
      {"fromBase64", {1, 1, [](const Args& a) -> Result {
         ASSIGN_OR_RETURN(std::string_view s, StringArgument(a, 0));
         std::string out;
         if (!absl::Base64Unescape(Sv(s), &out)) return absl::InvalidArgumentError("not base64");
         return out;
       }}},
      {"keys", {1, 1, [](const Args& a) -> Result {
         if (!a[0]->is_object()) return ArgumentError(0, "a map", *a[0]);
         json out = json::array();
         for (const auto& [key, value] : a[0]->items()) out.push_back(key);
         return out;
       }}},
      {"values", {1, 1, [](const Args& a) -> Result {
         if (!a[0]->is_object()) return ArgumentError(0, "a map", *a[0]);
         json out = json::array();
         for (const json& value : *a[0]) out.push_back(value);
         return out;
       }}},
      {"first", {1, 1, [](const Args& a) -> Result {
         if (a[0]->is_null()) return json();
         ASSIGN_OR_RETURN(const json* elements, ArrayArgument(a, 0));
         return elements->empty() ? json() : elements->front();
       }}},
      {"last", {1, 1, [](const Args& a) -> Result {
         if (a[0]->is_null()) return json();
         ASSIGN_OR_RETURN(const json* elements, ArrayArgument(a, 0));
         return elements->empty() ? json() : elements->back();
       }}},
      {"get", {2, 2, [](const Args& a) -> Result {
         const json& v = *a[0];
         const json& key = *a[1];
         if (v.is_object() && key.is_string()) {
           auto it = v.find(key.get<std::string>());
           return it == v.end() ? json() : *it;
         }
         if (v.is_array() && key.is_number()) {
           int64_t index = NumberToInt(key);
           if (index < 0) index += static_cast<int64_t>(v.size());
           if (index < 0 || index >= static_cast<int64_t>(v.size())) return json();
           return v[static_cast<size_t>(index)];
         }
         return json();
       }}},
      {"type", {1, 1, [](const Args& a) -> Result { return ExprTypeName(*a[0]); }}},
      {"reverse", {1, 1, [](const Args& a) -> Result {
         ASSIGN_OR_RETURN(const json* elements, ArrayArgument(a, 0));
         json out = json::array();
         for (auto it = elements->rbegin(); it != elements->rend(); ++it) out.push_back(*it);
         return out;
       }}},
      {"take", {2, 2, [](const Args& a) -> Result {
         ASSIGN_OR_RETURN(const json* elements, ArrayArgument(a, 0));
         ASSIGN_OR_RETURN(int64_t n, IntArgument(a, 1));
         const size_t count = std::min<size_t>(std::max<int64_t>(n, 0), elements->size());
         return json(elements->begin(), elements->begin() + static_cast<ptrdiff_t>(count));
       }}},
      {"concat", {1, -1, [](const Args& a) -> Result {
         json out = json::array();
         for (size_t i = 0; i < a.size(); ++i) {
           ASSIGN_OR_RETURN(const json* elements, ArrayArgument(a, i));
           for (const json& element : *elements) out.push_back(element);
         }
         return out;
       }}},

      // Argo's additions (util/expr/env).
      {"asInt", {1, 1, [](const Args& a) -> Result { return ToInt(*a[0]); }}},
      {"asFloat", {1, 1, [](const Args& a) -> Result { return ToFloat(*a[0]); }}},
      {"toJson", {1, 1, [](const Args& a) -> Result {
         return internal::GoJson(*a[0], /*escape_html=*/true);
       }}},
      {"jsonpath", {2, 2, &Jsonpath}},

      // Sprig (github.com/Masterminds/sprig), as Argo exposes it under `sprig.`.
      {"sprig.date", {2, 2, &SprigDate}},
      {"sprig.toString", {1, 1, [](const Args& a) -> Result { return StringValue(*a[0]); }}},
      {"sprig.int", {1, 1, [](const Args& a) -> Result { return IntJson(CastInt(*a[0])); }}},
      {"sprig.int64", {1, 1, [](const Args& a) -> Result { return IntJson(CastInt(*a[0])); }}},
      {"sprig.float64", {1, 1, [](const Args& a) -> Result { return CastFloat(*a[0]); }}},
      {"sprig.atoi", {1, 1, [](const Args& a) -> Result {
         ASSIGN_OR_RETURN(std::string_view s, StringArgument(a, 0));
         absl::StatusOr<json> parsed = ToInt(json(std::string(s)));
         return parsed.ok() ? *parsed : IntJson(0);
       }}},
      {"sprig.add", {0, -1, [](const Args& a) -> Result {
         uint64_t sum = 0;
         for (const Value& v : a) sum += static_cast<uint64_t>(CastInt(*v));
         return IntJson(Wrap(sum));
       }}},
      {"sprig.add1", {1, 1, [](const Args& a) -> Result {
         return IntJson(Wrap(static_cast<uint64_t>(CastInt(*a[0])) + 1));
       }}},
      {"sprig.sub", {2, 2, [](const Args& a) -> Result {
         return IntJson(
             Wrap(static_cast<uint64_t>(CastInt(*a[0])) - static_cast<uint64_t>(CastInt(*a[1]))));
       }}},
      {"sprig.mul", {1, -1, [](const Args& a) -> Result {
         uint64_t product = 1;
         for (const Value& v : a) product *= static_cast<uint64_t>(CastInt(*v));
         return IntJson(Wrap(product));
       }}},
      {"sprig.div", {2, 2, [](const Args& a) -> Result {
         const int64_t x = CastInt(*a[0]), y = CastInt(*a[1]);
         if (y == 0) return absl::InvalidArgumentError("integer divide by zero");
         return IntJson(y == -1 ? Wrap(0 - static_cast<uint64_t>(x)) : x / y);
       }}},
      {"sprig.mod", {2, 2, [](const Args& a) -> Result {
         const int64_t x = CastInt(*a[0]), y = CastInt(*a[1]);
         if (y == 0) return absl::InvalidArgumentError("integer divide by zero");
         return IntJson(y == -1 ? 0 : x % y);
       }}},
      {"sprig.max", {1, -1, [](const Args& a) -> Result {
         int64_t best = CastInt(*a[0]);
         for (const Value& v : a) best = std::max(best, CastInt(*v));
         return IntJson(best);
       }}},
      {"sprig.min", {1, -1, [](const Args& a) -> Result {
         int64_t best = CastInt(*a[0]);
         for (const Value& v : a) best = std::min(best, CastInt(*v));
         return IntJson(best);
       }}},
      {"sprig.empty", {1, 1, [](const Args& a) -> Result { return Empty(*a[0]); }}},
      {"sprig.default", {1, -1, [](const Args& a) -> Result {
         // default(fallback, value): the value unless it is empty.
         if (a.size() < 2 || Empty(*a[1])) return *a[0];
         return *a[1];
       }}},
      {"sprig.coalesce", {0, -1, [](const Args& a) -> Result {
         for (const Value& v : a) {
           if (!Empty(*v)) return *v;
         }
         return json();
       }}},
      {"sprig.ternary", {3, 3, [](const Args& a) -> Result {
         if (!a[2]->is_boolean()) return ArgumentError(2, "a bool", *a[2]);
         return a[2]->get<bool>() ? *a[0] : *a[1];
       }}},
      {"sprig.trim", {1, 1, [](const Args& a) -> Result {
         ASSIGN_OR_RETURN(std::string_view s, StringArgument(a, 0));
         return std::string(TrimCutset(s, kSpaces));
       }}},
      {"sprig.trimAll", {2, 2, [](const Args& a) -> Result {
         ASSIGN_OR_RETURN(std::string_view cutset, StringArgument(a, 0));
         ASSIGN_OR_RETURN(std::string_view s, StringArgument(a, 1));
         return std::string(TrimCutset(s, cutset));
       }}},
      {"sprig.trimPrefix", {2, 2, [](const Args& a) -> Result {
         ASSIGN_OR_RETURN(std::string_view prefix, StringArgument(a, 0));
         ASSIGN_OR_RETURN(std::string_view s, StringArgument(a, 1));
         if (s.starts_with(prefix)) s.remove_prefix(prefix.size());
         return std::string(s);
       }}},
      {"sprig.trimSuffix", {2, 2, [](const Args& a) -> Result {
         ASSIGN_OR_RETURN(std::string_view suffix, StringArgument(a, 0));
         ASSIGN_OR_RETURN(std::string_view s, StringArgument(a, 1));
         if (s.ends_with(suffix)) s.remove_suffix(suffix.size());
         return std::string(s);
       }}},
      {"sprig.upper", {1, 1, [](const Args& a) -> Result {
         ASSIGN_OR_RETURN(std::string_view s, StringArgument(a, 0));
         return absl::AsciiStrToUpper(Sv(s));
       }}},
      {"sprig.lower", {1, 1, [](const Args& a) -> Result {
         ASSIGN_OR_RETURN(std::string_view s, StringArgument(a, 0));
         return absl::AsciiStrToLower(Sv(s));
       }}},
      {"sprig.contains", {2, 2, [](const Args& a) -> Result {
         ASSIGN_OR_RETURN(std::string_view sub, StringArgument(a, 0));
         ASSIGN_OR_RETURN(std::string_view s, StringArgument(a, 1));
         return s.find(sub) != std::string_view::npos;
       }}},
      {"sprig.hasPrefix", {2, 2, [](const Args& a) -> Result {
         ASSIGN_OR_RETURN(std::string_view prefix, StringArgument(a, 0));
         ASSIGN_OR_RETURN(std::string_view s, StringArgument(a, 1));
         return s.starts_with(prefix);
       }}},
      {"sprig.hasSuffix", {2, 2, [](const Args& a) -> Result {
         ASSIGN_OR_RETURN(std::string_view suffix, StringArgument(a, 0));
         ASSIGN_OR_RETURN(std::string_view s, StringArgument(a, 1));
         return s.ends_with(suffix);
       }}},
      {"sprig.replace", {3, 3, [](const Args& a) -> Result {
         ASSIGN_OR_RETURN(std::string_view from, StringArgument(a, 0));
         ASSIGN_OR_RETURN(std::string_view to, StringArgument(a, 1));
         ASSIGN_OR_RETURN(std::string_view s, StringArgument(a, 2));
         return Replace(s, from, to);
       }}},
      {"sprig.repeat", {2, 2, [](const Args& a) -> Result {
         ASSIGN_OR_RETURN(std::string_view s, StringArgument(a, 1));
         return Repeat(s, CastInt(*a[0]));
       }}},
      {"sprig.substr", {3, 3, [](const Args& a) -> Result {
         const int64_t start = CastInt(*a[0]), end = CastInt(*a[1]);
         ASSIGN_OR_RETURN(std::string_view s, StringArgument(a, 2));
         const int64_t size = static_cast<int64_t>(s.size());
         const int64_t from = start < 0 ? 0 : start;
         const int64_t to = start < 0 || (end >= 0 && end <= size) ? end : size;
         if (from > size || to < from || to > size) {
           return absl::InvalidArgumentError(
               absl::StrCat("slice bounds out of range [", from, ":", to, "]"));
         }
         return std::string(s.substr(from, to - from));
       }}},
      {"sprig.nospace", {1, 1, [](const Args& a) -> Result {
         ASSIGN_OR_RETURN(std::string_view s, StringArgument(a, 0));
         std::string out;
         for (char c : s) {
           if (!std::isspace(static_cast<unsigned char>(c))) out.push_back(c);
         }
         return out;
       }}},
      {"sprig.join", {2, 2, [](const Args& a) -> Result {
         ASSIGN_OR_RETURN(std::string_view separator, StringArgument(a, 0));
         if (a[1]->is_string()) return *a[1];
         if (!a[1]->is_array()) return StringValue(*a[1]);
         std::string out;
         bool first = true;
         for (const json& element : *a[1]) {
           if (element.is_null()) continue;
           if (!first) out.append(separator);
           first = false;
           out.append(StringValue(element));
           RETURN_IF_ERROR(CheckTextSize(out.size()));
         }
         return out;
       }}},
      {"sprig.splitList", {2, 2, [](const Args& a) -> Result {
         ASSIGN_OR_RETURN(std::string_view separator, StringArgument(a, 0));
         ASSIGN_OR_RETURN(std::string_view s, StringArgument(a, 1));
         return Split(s, separator, -1);
       }}},
      {"sprig.list", {0, -1, [](const Args& a) -> Result {
         json out = json::array();
         for (const Value& v : a) out.push_back(*v);
         return out;
       }}},
      {"sprig.b64enc", {1, 1, [](const Args& a) -> Result {
         return absl::Base64Escape(StringValue(*a[0]));
       }}},
      {"sprig.b64dec", {1, 1, [](const Args& a) -> Result {
         std::string out;
         if (!absl::Base64Unescape(StringValue(*a[0]), &out)) {
           return std::string("illegal base64 data");  // sprig returns the error's text
         }
         return out;
       }}},
      {"sprig.toJson", {1, 1, [](const Args& a) -> Result {
         absl::StatusOr<std::string> text = internal::GoJson(*a[0], /*escape_html=*/true);
         return text.ok() ? *text : std::string();
       }}},
  };
  return *functions;
}

}  // namespace

const ExprFunction* FindExprFunction(std::string_view name) {
  auto it = Functions().find(name);
  return it == Functions().end() ? nullptr : &it->second;
}

}  // namespace dagd::engine::internal
