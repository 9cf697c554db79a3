#include "engine/internal/jsonpath.h"

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace dagd::engine::internal {
namespace {

using nlohmann::json;

constexpr int kMaxFilterNesting = 100;

// One `.key` / `['key']` / `[n]` step of a path inside a filter (`@.a[0]`).
struct FieldStep {
  bool is_index = false;
  std::string key;
  int64_t index = 0;
};

struct Filter {  // NOLINT(bugprone-exception-escape): json's constructors may allocate
  enum Kind { kLiteral, kCurrent, kRoot, kNot, kAnd, kOr, kCompare } kind = kLiteral;
  json literal;
  std::vector<FieldStep> path;  // kCurrent, kRoot
  std::string op;               // kCompare
  std::unique_ptr<Filter> left, right;
};

struct Step {
  enum Kind { kKey, kIndex, kWildcard, kSlice, kUnion, kFilter } kind = kKey;
  std::string key;
  int64_t index = 0;
  std::optional<int64_t> start, end;
  int64_t step = 1;
  std::vector<json> members;  // kUnion: strings (keys) and integers (indices)
  std::shared_ptr<const Filter> filter;
};

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// Debian's Abseil has its own string_view, distinct from std::string_view.
absl::string_view Sv(std::string_view text) { return absl::string_view(text.data(), text.size()); }

class PathParser {
 public:
  explicit PathParser(std::string_view text) : text_(text) {}

  absl::StatusOr<std::vector<Step>> Parse() {
    SkipSpaces();
    if (!Take('$')) return Error("a path starts with '$'");
    std::vector<Step> steps;
    while (true) {
      SkipSpaces();
      if (AtEnd()) break;
      if (Take('.')) {
        if (Peek() == '.') return Error("recursive descent (..) is not supported");
        if (Take('*')) {
          steps.push_back(Step{Step::kWildcard});
          continue;
        }
        if (Peek() == '[') continue;
        const size_t start = pos_;
        while (!AtEnd() && Peek() != '.' && Peek() != '[') ++pos_;
        if (pos_ == start) return Error("expected a key after '.'");
        Step step{Step::kKey};
        step.key = std::string(text_.substr(start, pos_ - start));
        while (!step.key.empty() && step.key.back() == ' ') step.key.pop_back();
        steps.push_back(std::move(step));
      } else if (Take('[')) {
        absl::StatusOr<Step> step = Bracket();
        if (!step.ok()) return step.status();
        steps.push_back(*std::move(step));
      } else {
        return Error(absl::StrCat("unexpected '", std::string(1, Peek()), "'"));
      }
    }
    return steps;
  }

 private:
  bool AtEnd() const { return pos_ >= text_.size(); }
  char Peek(size_t ahead = 0) const {
    return pos_ + ahead < text_.size() ? text_[pos_ + ahead] : '\0';
  }
  bool Take(char c) {
    if (Peek() != c || AtEnd()) return false;
    ++pos_;
    return true;
  }
  void SkipSpaces() {
    while (!AtEnd() && (Peek() == ' ' || Peek() == '\t')) ++pos_;
  }
  absl::Status Error(std::string_view what) const {
    return absl::InvalidArgumentError(
        absl::StrCat("jsonpath '", std::string(text_), "': ", Sv(what), " at position ", pos_ + 1));
  }

  absl::StatusOr<std::string> Quoted() {
    const char quote = Peek();
    ++pos_;
    std::string out;
    while (!AtEnd() && Peek() != quote) {
      if (Peek() == '\\' && pos_ + 1 < text_.size()) ++pos_;
      out.push_back(Peek());
      ++pos_;
    }
    if (!Take(quote)) return Error("unterminated string");
    return out;
  }

  std::optional<int64_t> Integer() {
    SkipSpaces();
    const size_t start = pos_;
    if (Peek() == '-' || Peek() == '+') ++pos_;
    int64_t value = 0;
    bool any = false;
    while (IsDigit(Peek()) && !AtEnd()) {
      if (value > (INT64_MAX - 9) / 10) return std::nullopt;
      value = value * 10 + (Peek() - '0');
      ++pos_;
      any = true;
    }
    if (!any) {
      pos_ = start;
      return std::nullopt;
    }
    SkipSpaces();
    return text_[start] == '-' ? -value : value;
  }

  absl::StatusOr<Step> Bracket() {
    SkipSpaces();
    if (Take('*')) {
      SkipSpaces();
      if (!Take(']')) return Error("expected ']'");
      return Step{Step::kWildcard};
    }
    if (Take('?')) {
      SkipSpaces();
      if (Peek() != '(') return Error("expected '(' after '?'");
      absl::StatusOr<std::unique_ptr<Filter>> filter = ParseFilterGroup();
      if (!filter.ok()) return filter.status();
      SkipSpaces();
      if (!Take(']')) return Error("expected ']' after a filter");
      Step step{Step::kFilter};
      step.filter = std::shared_ptr<const Filter>(std::move(*filter));
      return step;
    }
    if (Peek() == '(') return Error("script expressions [(…)] are not supported");
    std::vector<Step> items;
    while (true) {
      SkipSpaces();
      Step item;
      if (Peek() == '\'' || Peek() == '"') {
        absl::StatusOr<std::string> key = Quoted();
        if (!key.ok()) return key.status();
        item.kind = Step::kKey;
        item.key = *std::move(key);
        SkipSpaces();
      } else {
        std::optional<int64_t> first = Integer();
        if (Peek() == ':') {
          item.kind = Step::kSlice;
          item.start = first;
          ++pos_;
          item.end = Integer();
          if (Take(':')) {
            std::optional<int64_t> step = Integer();
            if (step) item.step = *step;
            if (item.step <= 0) return Error("a slice step must be positive");
          }
        } else if (first) {
          item.kind = Step::kIndex;
          item.index = *first;
        } else {
          return Error("expected a key, an index or a slice");
        }
      }
      items.push_back(std::move(item));
      if (Take(']')) break;
      if (!Take(',')) return Error("expected ',' or ']'");
    }
    if (items.size() == 1) return std::move(items[0]);
    Step step{Step::kUnion};
    for (const Step& item : items) {
      if (item.kind == Step::kSlice) return Error("slices cannot be part of a union");
      step.members.push_back(item.kind == Step::kKey ? json(item.key) : json(item.index));
    }
    return step;
  }

  // Filter conditions: or := and ('||' and)*; and := unary ('&&' unary)*;
  // unary := '!' unary | comparison; comparison := operand (op operand)?;
  // operand := '(' or ')' | '@' path | '$' path | number | string | true | false | null.
  absl::StatusOr<std::unique_ptr<Filter>> ParseFilterGroup() {
    if (++depth_ > kMaxFilterNesting) return Error("filter nested too deeply");
    ++pos_;  // '('
    absl::StatusOr<std::unique_ptr<Filter>> inner = ParseOr();
    if (!inner.ok()) return inner;
    SkipSpaces();
    if (!Take(')')) return Error("expected ')'");
    --depth_;
    return inner;
  }

  absl::StatusOr<std::unique_ptr<Filter>> Binary(
      Filter::Kind kind, std::string_view op,
      absl::StatusOr<std::unique_ptr<Filter>> (PathParser::*next)()) {
    absl::StatusOr<std::unique_ptr<Filter>> left = (this->*next)();
    while (left.ok()) {
      SkipSpaces();
      if (text_.substr(pos_, 2) != op) break;
      pos_ += 2;
      absl::StatusOr<std::unique_ptr<Filter>> right = (this->*next)();
      if (!right.ok()) return right;
      auto node = std::make_unique<Filter>();
      node->kind = kind;
      node->left = *std::move(left);
      node->right = *std::move(right);
      left = std::move(node);
    }
    return left;
  }

  absl::StatusOr<std::unique_ptr<Filter>> ParseOr() {
    return Binary(Filter::kOr, "||", &PathParser::ParseAnd);
  }
  absl::StatusOr<std::unique_ptr<Filter>> ParseAnd() {
    return Binary(Filter::kAnd, "&&", &PathParser::ParseUnary);
  }

  absl::StatusOr<std::unique_ptr<Filter>> ParseUnary() {
    SkipSpaces();
    if (Peek() == '!' && Peek(1) != '=') {
      if (++depth_ > kMaxFilterNesting) return Error("filter nested too deeply");
      ++pos_;
      absl::StatusOr<std::unique_ptr<Filter>> operand = ParseUnary();
      --depth_;
      if (!operand.ok()) return operand;
      auto node = std::make_unique<Filter>();
      node->kind = Filter::kNot;
      node->left = *std::move(operand);
      return node;
    }
    absl::StatusOr<std::unique_ptr<Filter>> left = ParseOperand();
    if (!left.ok()) return left;
    SkipSpaces();
    for (std::string_view op : {"==", "!=", "<=", ">=", "<", ">"}) {
      if (text_.substr(pos_, op.size()) != op) continue;
      pos_ += op.size();
      absl::StatusOr<std::unique_ptr<Filter>> right = ParseOperand();
      if (!right.ok()) return right;
      auto node = std::make_unique<Filter>();
      node->kind = Filter::kCompare;
      node->op = std::string(op);
      node->left = *std::move(left);
      node->right = *std::move(right);
      return node;
    }
    return left;
  }

  absl::StatusOr<std::unique_ptr<Filter>> ParseOperand() {
    SkipSpaces();
    auto node = std::make_unique<Filter>();
    const char c = Peek();
    if (c == '(') return ParseFilterGroup();
    if (c == '@' || c == '$') {
      ++pos_;
      node->kind = c == '@' ? Filter::kCurrent : Filter::kRoot;
      while (true) {
        FieldStep step;
        if (Peek() == '.' && Peek(1) != '.') {
          ++pos_;
          const size_t start = pos_;
          while (!AtEnd() && (std::isalnum(static_cast<unsigned char>(Peek())) || Peek() == '_' ||
                              Peek() == '-')) {
            ++pos_;
          }
          if (pos_ == start) return Error("expected a key after '.'");
          step.key = std::string(text_.substr(start, pos_ - start));
        } else if (Peek() == '[') {
          ++pos_;
          SkipSpaces();
          if (Peek() == '\'' || Peek() == '"') {
            absl::StatusOr<std::string> key = Quoted();
            if (!key.ok()) return key.status();
            step.key = *std::move(key);
          } else if (std::optional<int64_t> index = Integer()) {
            step.is_index = true;
            step.index = *index;
          } else {
            return Error("expected a key or an index");
          }
          SkipSpaces();
          if (!Take(']')) return Error("expected ']'");
        } else {
          break;
        }
        node->path.push_back(std::move(step));
      }
      return node;
    }
    if (c == '\'' || c == '"') {
      absl::StatusOr<std::string> text = Quoted();
      if (!text.ok()) return text.status();
      node->literal = *std::move(text);
      return node;
    }
    for (const auto& [word, value] :
         {std::pair<std::string_view, json>{"true", true}, {"false", false}, {"null", nullptr}}) {
      if (text_.substr(pos_, word.size()) == word) {
        pos_ += word.size();
        node->literal = value;
        return node;
      }
    }
    const size_t start = pos_;
    if (Peek() == '-' || Peek() == '+') ++pos_;
    while (!AtEnd() && (IsDigit(Peek()) || Peek() == '.' || Peek() == 'e' || Peek() == 'E')) ++pos_;
    if (pos_ == start) return Error("expected a value");
    const std::string number(text_.substr(start, pos_ - start));
    json parsed = json::parse(number, nullptr, /*allow_exceptions=*/false);
    if (!parsed.is_number()) return Error(absl::StrCat("bad number '", number, "'"));
    node->literal = parsed.is_number_float() ? parsed : json(parsed.get<double>());
    return node;
  }

  std::string_view text_;
  size_t pos_ = 0;
  int depth_ = 0;
};

// The value at `path` from `start`, or nullopt if a key or an index is missing.
std::optional<json> Field(const json& start, const std::vector<FieldStep>& path) {
  const json* current = &start;
  for (const FieldStep& step : path) {
    if (step.is_index) {
      if (!current->is_array()) return std::nullopt;
      int64_t index =
          step.index < 0 ? step.index + static_cast<int64_t>(current->size()) : step.index;
      if (index < 0 || index >= static_cast<int64_t>(current->size())) return std::nullopt;
      current = &(*current)[static_cast<size_t>(index)];
    } else {
      if (!current->is_object()) return std::nullopt;
      auto it = current->find(step.key);
      if (it == current->end()) return std::nullopt;
      current = &*it;
    }
  }
  return *current;
}

bool Truthy(const std::optional<json>& value) {
  if (!value || value->is_null()) return false;
  if (value->is_boolean()) return value->get<bool>();
  if (value->is_string()) {
    std::string_view text = value->get_ref<const std::string&>();
    while (!text.empty() && text.front() == '"') text.remove_prefix(1);
    while (!text.empty() && text.back() == '"') text.remove_suffix(1);
    return !text.empty();
  }
  return true;
}

std::optional<json> Evaluate(const Filter& filter, const json& root, const json& current) {
  switch (filter.kind) {
    case Filter::kLiteral:
      return filter.literal;
    case Filter::kCurrent:
      return Field(current, filter.path);
    case Filter::kRoot:
      return Field(root, filter.path);
    case Filter::kNot:
      return json(!Truthy(Evaluate(*filter.left, root, current)));
    case Filter::kAnd:
      return json(Truthy(Evaluate(*filter.left, root, current)) &&
                  Truthy(Evaluate(*filter.right, root, current)));
    case Filter::kOr:
      return json(Truthy(Evaluate(*filter.left, root, current)) ||
                  Truthy(Evaluate(*filter.right, root, current)));
    case Filter::kCompare: {
      const std::optional<json> a = Evaluate(*filter.left, root, current);
      const std::optional<json> b = Evaluate(*filter.right, root, current);
      if (!a || !b) return json(false);
      const std::string& op = filter.op;
      if (op == "==") return json(*a == *b);  // numbers compare by value whatever their kind
      if (op == "!=") return json(*a != *b);
      const bool numbers = a->is_number() && b->is_number();
      const bool strings = a->is_string() && b->is_string();
      if (!numbers && !strings) return json(false);
      if (op == "<") return json(*a < *b);
      if (op == "<=") return json(*a <= *b);
      if (op == ">") return json(*a > *b);
      return json(*a >= *b);
    }
  }
  return std::nullopt;
}

class Query {
 public:
  Query(const std::vector<Step>& steps, const json& root) : steps_(steps), root_(root) {}

  absl::StatusOr<json> Apply(size_t k, const json& current) const {
    if (k == steps_.size()) return current;
    const Step& step = steps_[k];
    switch (step.kind) {
      case Step::kKey: {
        if (!current.is_object()) {
          return Error(absl::StrCat("key '", step.key, "' asked of a ", current.type_name()));
        }
        auto it = current.find(step.key);
        if (it == current.end()) return Error(absl::StrCat("key '", step.key, "' not found"));
        return Apply(k + 1, *it);
      }
      case Step::kIndex: {
        if (!current.is_array()) {
          return Error(absl::StrCat("index ", step.index, " asked of a ", current.type_name()));
        }
        const int64_t size = static_cast<int64_t>(current.size());
        const int64_t index = step.index < 0 ? step.index + size : step.index;
        if (index < 0 || index >= size) {
          return Error(absl::StrCat("index ", step.index, " out of range (length ", size, ")"));
        }
        return Apply(k + 1, current[static_cast<size_t>(index)]);
      }
      case Step::kWildcard: {
        if (!current.is_array() && !current.is_object()) {
          return Error(absl::StrCat("wildcard asked of a ", current.type_name()));
        }
        std::vector<json> elements;
        for (const json& element : current) elements.push_back(element);
        return Collect(k + 1, elements);
      }
      case Step::kSlice: {
        if (!current.is_array()) {
          return Error(absl::StrCat("slice asked of a ", current.type_name()));
        }
        const int64_t size = static_cast<int64_t>(current.size());
        const auto clamp = [&](std::optional<int64_t> value, int64_t fallback) {
          int64_t v = value.value_or(fallback);
          if (v < 0) v += size;
          return std::max<int64_t>(0, std::min(v, size));
        };
        std::vector<json> elements;
        for (int64_t i = clamp(step.start, 0); i < clamp(step.end, size); i += step.step) {
          elements.push_back(current[static_cast<size_t>(i)]);
        }
        return Collect(k + 1, elements);
      }
      case Step::kUnion: {
        std::vector<json> elements;
        for (const json& member : step.members) {
          if (member.is_string() && current.is_object()) {
            auto it = current.find(member.get<std::string>());
            if (it != current.end()) elements.push_back(*it);
          } else if (member.is_number_integer() && current.is_array()) {
            const int64_t size = static_cast<int64_t>(current.size());
            int64_t index = member.get<int64_t>();
            if (index < 0) index += size;
            if (index >= 0 && index < size) elements.push_back(current[static_cast<size_t>(index)]);
          }
        }
        return Collect(k + 1, elements);
      }
      case Step::kFilter: {
        if (!current.is_array() && !current.is_object()) {
          return Error(absl::StrCat("filter asked of a ", current.type_name()));
        }
        json elements = json::array();
        for (const json& element : current) {
          if (Truthy(Evaluate(*step.filter, root_, element))) elements.push_back(element);
        }
        // An index after a filter picks among the matches (`[?(…)][0]`).
        if (k + 1 < steps_.size() && steps_[k + 1].kind == Step::kIndex) {
          return Apply(k + 1, elements);
        }
        return Collect(k + 1, std::vector<json>(elements.begin(), elements.end()));
      }
    }
    return Error("unknown step");
  }

 private:
  static absl::Status Error(std::string_view what) { return absl::InvalidArgumentError(Sv(what)); }

  absl::StatusOr<json> Collect(size_t next, const std::vector<json>& elements) const {
    json results = json::array();
    for (const json& element : elements) {
      absl::StatusOr<json> result = Apply(next, element);
      if (result.ok() && !result->is_null()) results.push_back(*std::move(result));
    }
    return results;
  }

  const std::vector<Step>& steps_;
  const json& root_;
};

}  // namespace

absl::StatusOr<json> JsonPathQuery(const json& document, std::string_view path) {
  absl::StatusOr<std::vector<Step>> steps = PathParser(path).Parse();
  if (!steps.ok()) return steps.status();
  absl::StatusOr<json> result = Query(*steps, document).Apply(0, document);
  if (!result.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("jsonpath '", std::string(path), "': ", result.status().message()));
  }
  return result;
}

}  // namespace dagd::engine::internal
