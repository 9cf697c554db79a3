#include "engine/tags.h"

#include <optional>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "engine/expr.h"

namespace dagd::engine {
namespace {

constexpr std::string_view kPrefixes[] = {"inputs", "outputs", "workflow", "tasks",
                                          "steps",  "item",    "pod",      "node"};

bool IsSegmentChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_';
}

std::string_view Trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

std::string_view FirstWord(std::string_view name) { return name.substr(0, name.find('.')); }

// Where the `}}` closing an expression tag is, the expression starting at `start`: the first `}}`
// outside string literals and outside braces the expression opened (`{{={a: {b: 1}}}}`,
// `{{=filter(x, {# > 1})}}`). npos if there is none (say, an unterminated string); the caller then
// takes the first `}}`, and evaluation reports what is wrong.
size_t ExpressionEnd(std::string_view text, size_t start) {
  int depth = 0;
  for (size_t i = start; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '\'' || c == '"' || c == '`') {
      size_t j = i + 1;
      while (j < text.size() && text[j] != c) {
        if (c != '`' && text[j] == '\n') return std::string_view::npos;  // strings are one line
        if (c != '`' && text[j] == '\\') ++j;
        ++j;
      }
      if (j >= text.size()) return std::string_view::npos;
      i = j;
    } else if (c == '{') {
      ++depth;
    } else if (c == '}') {
      if (depth > 0) {
        --depth;
      } else if (i + 1 < text.size() && text[i + 1] == '}') {
        return i;
      }
    }
  }
  return std::string_view::npos;
}

// An expression tag's text for a message: on one line, at most about 40 characters.
std::string ShownTag(std::string_view name) {
  std::string shown;
  for (char c : name) {
    const bool space = c == ' ' || c == '\t' || c == '\n' || c == '\r';
    if (space && (shown.empty() || shown.back() == ' ')) continue;
    shown.push_back(space ? ' ' : c);
  }
  constexpr size_t kShown = 40;
  if (shown.size() > kShown) {
    size_t cut = kShown;
    while (cut > 0 && (static_cast<unsigned char>(shown[cut]) & 0xc0) == 0x80) --cut;  // UTF-8
    shown = absl::StrCat(shown.substr(0, cut), "…");
  }
  return shown;
}

// Calls `on_tag(start, end, trimmed name)` for every `{{…}}` in `text` ([start, end) spans the
// braces) and `on_text(piece)` for the text between them, in order.
template <typename OnText, typename OnTag>
void Scan(std::string_view text, OnText on_text, OnTag on_tag) {
  size_t position = 0;
  while (position < text.size()) {
    const size_t open = text.find("{{", position);
    if (open == std::string_view::npos) break;
    size_t inner = open + 2;
    while (inner < text.size() && (text[inner] == ' ' || text[inner] == '\t')) ++inner;
    size_t close = std::string_view::npos;
    if (inner < text.size() && text[inner] == '=') close = ExpressionEnd(text, inner + 1);
    if (close == std::string_view::npos) close = text.find("}}", open + 2);
    if (close == std::string_view::npos) break;
    on_text(text.substr(position, open - position));
    on_tag(text.substr(open, close + 2 - open), Trim(text.substr(open + 2, close - open - 2)));
    position = close + 2;
  }
  on_text(text.substr(position));
}

}  // namespace

bool IsDagdTag(std::string_view name) {
  bool known = false;
  for (std::string_view prefix : kPrefixes) known = known || FirstWord(name) == prefix;
  if (!known) return false;
  // Every segment after the prefix must be a plain name: anything else is Jinja2 or an
  // expression that only happens to start with a dagd word.
  size_t segment_start = FirstWord(name).size();
  while (segment_start < name.size()) {
    size_t end = segment_start + 1;  // skip the '.'
    while (end < name.size() && IsSegmentChar(name[end])) ++end;
    if (end == segment_start + 1) return false;  // empty segment
    if (end < name.size() && name[end] != '.') return false;
    segment_start = end;
  }
  return true;
}

absl::StatusOr<std::string> SubstituteTags(std::string_view text, const TagScope& scope) {
  std::string out;
  out.reserve(text.size());
  absl::Status status;
  const bool item_in_scope = scope.count("item") > 0;
  std::optional<nlohmann::json> environment;  // for expressions, built at the first one
  Scan(
      text, [&](std::string_view piece) { out.append(piece); },
      [&](std::string_view whole, std::string_view name) {
        if (status.ok() && !name.empty() && name.front() == '=') {
          if (!environment) environment = ExpressionEnvironment(scope);
          absl::StatusOr<nlohmann::json> value = EvaluateExpressionIn(name.substr(1), *environment);
          if (!value.ok()) {
            status = absl::InvalidArgumentError(
                absl::StrCat("tag {{", ShownTag(name), "}}: ", value.status().message()));
            return;
          }
          out.append(ExpressionValueText(*value));
          return;
        }
        if (!status.ok() || !IsDagdTag(name) || (FirstWord(name) == "item" && !item_in_scope)) {
          out.append(whole);
          return;
        }
        auto it = scope.find(std::string(name));
        if (it == scope.end()) {
          status = absl::InvalidArgumentError(
              absl::StrCat("unresolved tag {{", std::string(name), "}}"));
          return;
        }
        out.append(it->second);
      });
  if (!status.ok()) return status;
  return out;
}

std::vector<std::string> FindDagdTags(std::string_view text) {
  std::vector<std::string> tags;
  Scan(
      text, [](std::string_view) {},
      [&](std::string_view, std::string_view name) {
        if (IsDagdTag(name)) tags.emplace_back(name);
      });
  return tags;
}

}  // namespace dagd::engine
