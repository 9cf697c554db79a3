#include "engine/tags.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

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

// Calls `on_tag(start, end, trimmed name)` for every `{{…}}` in `text` ([start, end) spans the
// braces) and `on_text(piece)` for the text between them, in order.
template <typename OnText, typename OnTag>
void Scan(std::string_view text, OnText on_text, OnTag on_tag) {
  size_t position = 0;
  while (position < text.size()) {
    const size_t open = text.find("{{", position);
    if (open == std::string_view::npos) break;
    const size_t close = text.find("}}", open + 2);
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
  Scan(
      text, [&](std::string_view piece) { out.append(piece); },
      [&](std::string_view whole, std::string_view name) {
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
