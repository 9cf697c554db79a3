#include "engine/when.h"

#include <cctype>
#include <regex>
#include <string>
#include <variant>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "engine/status_macros.h"

namespace dagd::engine {
namespace {

struct Token {
  enum Kind { kValue, kQuoted, kOp, kOpen, kClose, kEnd } kind;
  std::string text;
};

// Operators, longest first so that "<=" is not read as "<".
constexpr std::string_view kOperators[] = {
    "&&", "||", "==", "!=", "<=", ">=", "=~", "!~", "<", ">", "!"};

absl::StatusOr<std::vector<Token>> Tokenize(std::string_view text) {
  std::vector<Token> tokens;
  size_t i = 0;
  while (i < text.size()) {
    const char c = text[i];
    if (std::isspace(static_cast<unsigned char>(c))) {
      ++i;
      continue;
    }
    if (c == '(' || c == ')') {
      tokens.push_back({c == '(' ? Token::kOpen : Token::kClose, std::string(1, c)});
      ++i;
      continue;
    }
    if (c == '\'' || c == '"') {
      const size_t end = text.find(c, i + 1);
      if (end == std::string_view::npos) {
        return absl::InvalidArgumentError(absl::StrCat("unterminated string at position ", i + 1));
      }
      tokens.push_back({Token::kQuoted, std::string(text.substr(i + 1, end - i - 1))});
      i = end + 1;
      continue;
    }
    bool matched = false;
    for (std::string_view op : kOperators) {
      if (text.substr(i, op.size()) == op) {
        tokens.push_back({Token::kOp, std::string(op)});
        i += op.size();
        matched = true;
        break;
      }
    }
    if (matched) continue;
    // A bare word or number: up to whitespace, a parenthesis or an operator.
    size_t end = i;
    while (end < text.size()) {
      const char d = text[end];
      if (std::isspace(static_cast<unsigned char>(d)) || d == '(' || d == ')') break;
      bool op = false;
      for (std::string_view o : kOperators) {
        if (text.substr(end, o.size()) == o) op = true;
      }
      if (op) break;
      ++end;
    }
    tokens.push_back({Token::kValue, std::string(text.substr(i, end - i))});
    i = end;
  }
  tokens.push_back({Token::kEnd, ""});
  return tokens;
}

// A value during evaluation: a boolean, or text (which may read as a number).
using Value = std::variant<bool, std::string>;

class Parser {
 public:
  explicit Parser(std::vector<Token> tokens) : tokens_(std::move(tokens)) {}

  absl::StatusOr<Value> Parse() {
    absl::StatusOr<Value> value = Or();
    if (!value.ok()) return value;
    if (Peek().kind != Token::kEnd) {
      return absl::InvalidArgumentError(absl::StrCat("unexpected '", Peek().text, "'"));
    }
    return value;
  }

 private:
  const Token& Peek() const { return tokens_[pos_]; }
  bool TakeOp(std::string_view op) {
    if (Peek().kind == Token::kOp && Peek().text == op) {
      ++pos_;
      return true;
    }
    return false;
  }

  static absl::StatusOr<bool> AsBool(const Value& v, std::string_view where) {
    if (const bool* b = std::get_if<bool>(&v)) return *b;
    const std::string& text = std::get<std::string>(v);
    if (text == "true") return true;
    if (text == "false") return false;
    return absl::InvalidArgumentError(absl::StrCat("'", text, "' is not a boolean (",
                                                   std::string(where), " needs true or false)"));
  }

  absl::StatusOr<Value> Or() {
    absl::StatusOr<Value> left = And();
    while (left.ok() && TakeOp("||")) {
      absl::StatusOr<Value> right = And();
      if (!right.ok()) return right;
      absl::StatusOr<bool> a = AsBool(*left, "||");
      absl::StatusOr<bool> b = AsBool(*right, "||");
      if (!a.ok()) return a.status();
      if (!b.ok()) return b.status();
      left = Value(*a || *b);
    }
    return left;
  }

  absl::StatusOr<Value> And() {
    absl::StatusOr<Value> left = Not();
    while (left.ok() && TakeOp("&&")) {
      absl::StatusOr<Value> right = Not();
      if (!right.ok()) return right;
      absl::StatusOr<bool> a = AsBool(*left, "&&");
      absl::StatusOr<bool> b = AsBool(*right, "&&");
      if (!a.ok()) return a.status();
      if (!b.ok()) return b.status();
      left = Value(*a && *b);
    }
    return left;
  }

  absl::StatusOr<Value> Not() {
    if (Peek().kind == Token::kOp && Peek().text == "!") {
      RETURN_IF_ERROR(Nest());
      ++pos_;
      absl::StatusOr<Value> inner = Not();
      --depth_;
      if (!inner.ok()) return inner;
      absl::StatusOr<bool> b = AsBool(*inner, "!");
      if (!b.ok()) return b.status();
      return Value(!*b);
    }
    return Comparison();
  }

  absl::StatusOr<Value> Comparison() {
    absl::StatusOr<Value> left = Primary();
    if (!left.ok()) return left;
    if (Peek().kind != Token::kOp) return left;
    const std::string op = Peek().text;
    if (op == "&&" || op == "||" || op == "!") return left;
    ++pos_;
    absl::StatusOr<Value> right = Primary();
    if (!right.ok()) return right;
    return Compare(*left, op, *right);
  }

  static std::string Text(const Value& v) {
    if (const bool* b = std::get_if<bool>(&v)) return *b ? "true" : "false";
    return std::get<std::string>(v);
  }

  static absl::StatusOr<Value> Compare(const Value& l, const std::string& op, const Value& r) {
    const std::string a = Text(l);
    const std::string b = Text(r);
    if (op == "=~" || op == "!~") {
      // As expr's `matches` (expr.cc): libstdc++'s breadth-first matcher (__polynomial), so that
      // a pattern such as (a+)+b cannot take exponential time, bounded sizes, and one linear
      // regex_match pass instead of regex_search's match from every position.
      constexpr size_t kMaxPattern = 1024;
      constexpr size_t kMaxSubject = size_t{256} * 1024;
      if (b.size() > kMaxPattern) {
        return absl::InvalidArgumentError(
            absl::StrCat("the regular expression is longer than ", kMaxPattern, " bytes"));
      }
      if (a.size() > kMaxSubject) {
        return absl::InvalidArgumentError(
            absl::StrCat("the text matched is longer than ", kMaxSubject, " bytes"));
      }
      try {
        const auto flags = std::regex::ECMAScript | std::regex_constants::__polynomial;
        const std::regex alone(b, flags);  // rejects "a)|(b", which the wrapping would mend
        const bool found =
            std::regex_match(a, std::regex(absl::StrCat("[\\s\\S]*?(?:", b, ")[\\s\\S]*"), flags));
        return Value(op == "=~" ? found : !found);
      } catch (const std::regex_error& e) {
        return absl::InvalidArgumentError(
            absl::StrCat("'", b, "' is not a regular expression: ", e.what()));
      }
    }
    double x = 0;
    double y = 0;
    const bool numbers = absl::SimpleAtod(a, &x) && absl::SimpleAtod(b, &y);
    if (op == "==") return Value(numbers ? x == y : a == b);
    if (op == "!=") return Value(numbers ? x != y : a != b);
    if (!numbers) {
      return absl::InvalidArgumentError(
          absl::StrCat("'", a, "' ", op, " '", b, "' compares values that are not both numbers"));
    }
    if (op == "<") return Value(x < y);
    if (op == ">") return Value(x > y);
    if (op == "<=") return Value(x <= y);
    return Value(x >= y);  // ">="
  }

  absl::StatusOr<Value> Primary() {
    const Token token = Peek();
    switch (token.kind) {
      case Token::kOpen: {
        RETURN_IF_ERROR(Nest());
        ++pos_;
        absl::StatusOr<Value> inner = Or();
        --depth_;
        if (!inner.ok()) return inner;
        if (Peek().kind != Token::kClose) {
          return absl::InvalidArgumentError("missing ')'");
        }
        ++pos_;
        return inner;
      }
      case Token::kQuoted:
        ++pos_;
        return Value(token.text);
      case Token::kValue:
        ++pos_;
        if (token.text == "true") return Value(true);
        if (token.text == "false") return Value(false);
        return Value(token.text);
      case Token::kEnd:
        return absl::InvalidArgumentError("unexpected end; expected a value");
      default:
        return absl::InvalidArgumentError(
            absl::StrCat("unexpected '", token.text, "'; expected a value"));
    }
  }

  // Enters one more level of '(' or '!': the parser recurses on them, so a condition from an
  // untrusted workflow may not nest them deeper than expressions may (engine/expr.h).
  absl::Status Nest() {
    constexpr int kMaxNesting = 100;
    if (depth_ == kMaxNesting) {
      return absl::InvalidArgumentError(
          absl::StrCat("'(' and '!' nested more than ", kMaxNesting, " levels deep"));
    }
    ++depth_;
    return absl::OkStatus();
  }

  std::vector<Token> tokens_;
  size_t pos_ = 0;
  int depth_ = 0;  // the '(' and '!' being parsed
};

}  // namespace

absl::StatusOr<bool> EvaluateWhen(std::string_view condition) {
  auto fail = [&](const absl::Status& status) {
    return absl::InvalidArgumentError(
        absl::StrCat("when '", std::string(condition), "': ", status.message()));
  };
  absl::StatusOr<std::vector<Token>> tokens = Tokenize(condition);
  if (!tokens.ok()) return fail(tokens.status());
  Parser parser(*std::move(tokens));
  absl::StatusOr<Value> value = parser.Parse();
  if (!value.ok()) return fail(value.status());
  if (const bool* b = std::get_if<bool>(&*value)) return *b;
  const std::string& text = std::get<std::string>(*value);
  if (text == "true") return true;
  if (text == "false") return false;
  return fail(absl::InvalidArgumentError(
      absl::StrCat("'", text, "' is not a boolean; compare it, e.g. ", text, " == value")));
}

}  // namespace dagd::engine
