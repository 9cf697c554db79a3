#include "engine/yaml_json.h"

#include <yaml-cpp/yaml.h>

#include <cstdint>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace dagd::engine {
namespace {

// YAML 1.1 spellings other parsers still read as booleans or null; quoted to be safe.
bool IsOtherParsersKeyword(const std::string& text) {
  static const char* const kWords[] = {"y",  "Y",  "yes", "Yes", "YES", "n",   "N",   "no",
                                       "No", "NO", "on",  "On",  "ON",  "off", "Off", "OFF"};
  for (const char* word : kWords) {
    if (text == word) return true;
  }
  return false;
}

// Whether `text` can be written plain and read back as the same string.
bool CanBePlain(const std::string& text) {
  if (text.empty() || !PlainScalarToJson(text).is_string() || IsOtherParsersKeyword(text)) {
    return false;
  }
  if (text.front() == ' ' || text.back() == ' ') return false;
  // Indicators that may not start a plain scalar.
  if (std::string_view(",[]{}#&*!|>'\"%@`").find(text.front()) != std::string_view::npos) {
    return false;
  }
  // "-", "?" and ":" start a plain scalar only when a non-space follows ("-c", not "- c").
  if (std::string_view("-?:").find(text.front()) != std::string_view::npos &&
      (text.size() == 1 || text[1] == ' ')) {
    return false;
  }
  for (size_t i = 0; i < text.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    if (c < 0x20 || c == 0x7f) return false;
    if (c == ':' && (i + 1 == text.size() || text[i + 1] == ' ')) return false;
    if (c == '#' && i > 0 && text[i - 1] == ' ') return false;
    // Flow indicators ({}[],) inside a block-context plain scalar are plain text.
  }
  return true;
}

// A multi-line string that a literal block scalar carries exactly.
bool CanBeLiteralBlock(const std::string& text) {
  if (text.find('\n') == std::string::npos) return false;
  if (text.front() == ' ' || text.front() == '\n') return false;  // would need an indent indicator
  for (unsigned char c : text) {
    if ((c < 0x20 && c != '\n' && c != '\t') || c == 0x7f) return false;
  }
  // Lines made only of spaces would be taken as indentation.
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (!line.empty() && line.find_first_not_of(' ') == absl::string_view::npos) return false;
  }
  return true;
}

std::string Quoted(const std::string& text) {
  // A JSON string is a valid YAML double-quoted scalar.
  return nlohmann::json(text).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string Indent(int n) { return std::string(static_cast<size_t>(n), ' '); }

// Appends `value` written after a key or a list dash: " scalar\n", a literal block, or a newline
// and the nested block at `indent`.
void EmitValue(const nlohmann::json& value, int indent, std::string* out);

void EmitBlock(const nlohmann::json& value, int indent, std::string* out) {
  if (value.is_object()) {
    for (const auto& [key, item] : value.items()) {
      absl::StrAppend(out, Indent(indent), CanBePlain(key) ? key : Quoted(key), ":");
      EmitValue(item, indent + 2, out);
    }
  } else {
    for (const auto& item : value) {
      if ((item.is_object() || item.is_array()) && !item.empty()) {
        // The nested block at indent + 2, its first line's indent replaced by the dash.
        std::string nested;
        EmitBlock(item, indent + 2, &nested);
        absl::StrAppend(out, Indent(indent), "- ", nested.substr(static_cast<size_t>(indent) + 2));
      } else {
        absl::StrAppend(out, Indent(indent), "-");
        EmitValue(item, indent + 2, out);
      }
    }
  }
}

void EmitValue(const nlohmann::json& value, int indent, std::string* out) {
  switch (value.type()) {
    case nlohmann::json::value_t::object:
    case nlohmann::json::value_t::array:
      if (value.empty()) {
        absl::StrAppend(out, value.is_object() ? " {}\n" : " []\n");
      } else {
        absl::StrAppend(out, "\n");
        // Lists sit at their key's indent (indent - 2), as kubectl prints them.
        EmitBlock(value, value.is_array() ? indent - 2 : indent, out);
      }
      return;
    case nlohmann::json::value_t::string: {
      const std::string& text = value.get_ref<const std::string&>();
      if (CanBePlain(text)) {
        absl::StrAppend(out, " ", text, "\n");
      } else if (CanBeLiteralBlock(text)) {
        // Chomping: "-" strips the one missing final newline, "" keeps one, "+" keeps them all.
        const bool ends_in_newline = text.back() == '\n';
        const bool ends_in_more = text.size() >= 2 && text[text.size() - 2] == '\n';
        absl::StrAppend(out, " |", !ends_in_newline ? "-" : ends_in_more ? "+" : "", "\n");
        absl::string_view body = text;
        if (ends_in_newline) body.remove_suffix(1);
        for (absl::string_view line : absl::StrSplit(body, '\n')) {
          absl::StrAppend(out, line.empty() ? "" : Indent(indent), line, "\n");
        }
      } else {
        absl::StrAppend(out, " ", Quoted(text), "\n");
      }
      return;
    }
    default:
      absl::StrAppend(out, " ", value.dump(), "\n");
      return;
  }
}

}  // namespace

nlohmann::json PlainScalarToJson(const std::string& text) {
  if (text.empty() || text == "~" || text == "null" || text == "Null" || text == "NULL") {
    return nullptr;
  }
  if (text == "true" || text == "True" || text == "TRUE") return true;
  if (text == "false" || text == "False" || text == "FALSE") return false;
  int64_t int_value;
  if (absl::SimpleAtoi(text, &int_value)) return int_value;
  uint64_t uint_value;
  if (absl::SimpleAtoi(text, &uint_value)) return uint_value;
  // Only decimal notation counts as a float: strtod alone would also take "inf", "nan", "0x1p3".
  const bool decimal_chars = text.find_first_not_of("0123456789+-.eE") == std::string::npos &&
                             text.find_first_of("0123456789") != std::string::npos;
  double double_value;
  if (decimal_chars && absl::SimpleAtod(text, &double_value)) return double_value;
  return text;
}

nlohmann::json YamlNodeToJson(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Scalar:
      // yaml-cpp tags plain scalars "?"; quoted or explicitly tagged ones stay strings.
      if (node.Tag() == "?") return PlainScalarToJson(node.Scalar());
      return node.Scalar();
    case YAML::NodeType::Sequence: {
      nlohmann::json array = nlohmann::json::array();
      for (const YAML::Node& element : node) array.push_back(YamlNodeToJson(element));
      return array;
    }
    case YAML::NodeType::Map: {
      nlohmann::json object = nlohmann::json::object();
      for (const auto& entry : node) object[entry.first.Scalar()] = YamlNodeToJson(entry.second);
      return object;
    }
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      break;
  }
  return nullptr;
}

absl::StatusOr<nlohmann::json> YamlToJson(std::string_view yaml, std::string_view file_name) {
  try {
    return YamlNodeToJson(YAML::Load(std::string(yaml)));
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(std::string(file_name), ":", e.mark.line + 1,
                                                   ":", e.mark.column + 1, ": ", e.msg));
  }
}

std::string JsonToYaml(const nlohmann::json& value) {
  std::string out;
  if ((value.is_object() || value.is_array()) && !value.empty()) {
    EmitBlock(value, 0, &out);
  } else {
    EmitValue(value, 0, &out);
    out.erase(0, 1);  // the space that follows a key
  }
  return out;
}

}  // namespace dagd::engine
