#include "engine/expr.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <regex>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "engine/internal/expr_functions.h"
#include "engine/internal/expr_text.h"
#include "engine/status_macros.h"

namespace dagd::engine {
namespace {

using internal::ExprTypeName;
using internal::TruncateToInt;
using nlohmann::json;

// Limits for expressions from untrusted workflows.
constexpr size_t kMaxExpressionBytes = size_t{64} * 1024;
constexpr int kMaxNesting = 100;          // brackets, calls, unary and right-associative operators
constexpr int kMaxTreeDepth = 1000;       // operations chained one inside the other (a + b + c …)
constexpr int64_t kMaxSteps = 2'000'000;  // evaluation steps plus the size of values built
constexpr size_t kMaxTextBytes = internal::kMaxExprTextBytes;
constexpr size_t kMaxKeySegments = 64;  // dots in a scope key
constexpr int kMaxValueDepth = 300;     // values built by the expression

// Debian's Abseil has its own string_view, distinct from std::string_view.
absl::string_view Sv(std::string_view text) { return absl::string_view(text.data(), text.size()); }

// ---------------------------------------------------------------------------------------------
// Errors

std::string Abbreviate(std::string_view text) {
  std::string out;
  bool space = false;
  for (char c : text) {
    if (std::isspace(static_cast<unsigned char>(c))) {
      space = !out.empty();
      continue;
    }
    if (space) out.push_back(' ');
    space = false;
    out.push_back(c);
  }
  constexpr size_t kShown = 60;
  if (out.size() > kShown) {
    size_t cut = kShown;
    while (cut > 0 && (static_cast<unsigned char>(out[cut]) & 0xc0) == 0x80) --cut;  // UTF-8
    out = absl::StrCat(out.substr(0, cut), "…");
  }
  return out;
}

std::string Where(std::string_view source, size_t offset) {
  offset = std::min(offset, source.size());
  const size_t line_start = source.rfind('\n', offset == 0 ? 0 : offset - 1);
  const bool first_line = line_start == std::string_view::npos || offset == 0;
  const size_t column = first_line ? offset + 1 : offset - line_start;
  if (source.find('\n') == std::string_view::npos) return absl::StrCat("column ", column);
  const size_t line = 1 + std::count(source.begin(), source.begin() + offset, '\n');
  return absl::StrCat("line ", line, ", column ", column);
}

absl::Status ExpressionError(std::string_view source, size_t offset, std::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("expression '", Abbreviate(source),
                                                 "': ", Sv(what), " at ", Where(source, offset)));
}

// ---------------------------------------------------------------------------------------------
// Values: shared, immutable JSON. A member of a value aliases it (no copy); the alias keeps the
// whole value alive.

using Value = internal::ExprValue;

Value Make(json value) { return std::make_shared<const json>(std::move(value)); }

const Value& Nil() {
  static const Value* const nil = new Value(Make(nullptr));
  return *nil;
}

bool IsInt(const json& v) { return v.is_number_integer(); }  // unsigned counts as integer too
int64_t AsInt(const json& v) { return v.get<int64_t>(); }
double AsFloat(const json& v) { return v.get<double>(); }

int64_t NumberToInt(const json& v) { return IsInt(v) ? AsInt(v) : TruncateToInt(AsFloat(v)); }

// Wrapping int arithmetic, as Go's.
int64_t Wrap(uint64_t value) { return static_cast<int64_t>(value); }

// How a key reads in messages.
std::string KeyText(const json& key) {
  return key.is_string() ? absl::StrCat("'", key.get<std::string>(), "'") : internal::GoText(key);
}

// What building a copy of a value costs (one per node, strings by their size) and how deeply it
// nests. Iterative: values are only known to be shallow once measured.
struct Measure {
  int64_t cost = 0;
  int depth = 0;
};

Measure MeasureValue(const json& value) {
  Measure measure;
  std::vector<std::pair<const json*, int>> pending = {{&value, 1}};
  while (!pending.empty()) {
    const auto [node, depth] = pending.back();
    pending.pop_back();
    measure.depth = std::max(measure.depth, depth);
    measure.cost += 1;
    if (node->is_string()) {
      measure.cost += static_cast<int64_t>(node->get_ref<const std::string&>().size() / 16);
    } else if (node->is_structured()) {
      for (const json& element : *node) pending.push_back({&element, depth + 1});
    }
  }
  return measure;
}

bool Equal(const json& a, const json& b) {
  if (a.is_number() && b.is_number()) {
    if (IsInt(a) && IsInt(b)) return AsInt(a) == AsInt(b);
    return AsFloat(a) == AsFloat(b);
  }
  if (a.type() != b.type()) return false;
  if (a.is_array()) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i) {
      if (!Equal(a[i], b[i])) return false;
    }
    return true;
  }
  if (a.is_object()) {
    if (a.size() != b.size()) return false;
    for (auto it = a.begin(), jt = b.begin(); it != a.end(); ++it, ++jt) {
      if (it.key() != jt.key() || !Equal(*it, *jt)) return false;
    }
    return true;
  }
  return a == b;
}

// ---------------------------------------------------------------------------------------------
// Lexer

struct Token {
  enum Kind { kIdentifier, kNumber, kString, kOperator, kBracket, kEnd };
  Kind kind = kEnd;
  std::string value;
  size_t offset = 0;

  bool Is(Kind k) const { return kind == k; }
  bool Is(Kind k, std::string_view v) const { return kind == k && value == v; }
};

constexpr std::string_view kWordOperators[] = {
    "not", "and", "or", "in", "matches", "contains", "startsWith", "endsWith", "let"};

bool IsWordOperator(std::string_view word) {
  return std::find(std::begin(kWordOperators), std::end(kWordOperators), word) !=
         std::end(kWordOperators);
}

bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsIdentifierStart(char c) {
  return std::isalpha(static_cast<unsigned char>(c)) || c == '_' || c == '$' ||
         static_cast<unsigned char>(c) >= 0x80;
}
bool IsIdentifierPart(char c) { return IsIdentifierStart(c) || IsDigit(c); }

void AppendUtf8(uint32_t code, std::string* out) {
  if (code < 0x80) {
    out->push_back(static_cast<char>(code));
  } else if (code < 0x800) {
    out->push_back(static_cast<char>(0xc0 | (code >> 6)));
    out->push_back(static_cast<char>(0x80 | (code & 0x3f)));
  } else if (code < 0x10000) {
    out->push_back(static_cast<char>(0xe0 | (code >> 12)));
    out->push_back(static_cast<char>(0x80 | ((code >> 6) & 0x3f)));
    out->push_back(static_cast<char>(0x80 | (code & 0x3f)));
  } else {
    out->push_back(static_cast<char>(0xf0 | (code >> 18)));
    out->push_back(static_cast<char>(0x80 | ((code >> 12) & 0x3f)));
    out->push_back(static_cast<char>(0x80 | ((code >> 6) & 0x3f)));
    out->push_back(static_cast<char>(0x80 | (code & 0x3f)));
  }
}

class Lexer {
 public:
  explicit Lexer(std::string_view source) : s_(source) {}

  absl::StatusOr<std::vector<Token>> Run() {
    std::vector<Token> tokens;
    while (i_ < s_.size()) {
      const char c = s_[i_];
      const char next = i_ + 1 < s_.size() ? s_[i_ + 1] : '\0';
      if (std::isspace(static_cast<unsigned char>(c))) {
        ++i_;
        continue;
      }
      if (c == '/' && next == '/') {
        while (i_ < s_.size() && s_[i_] != '\n') ++i_;
        continue;
      }
      if (c == '/' && next == '*') {
        const size_t end = s_.find("*/", i_ + 2);
        if (end == std::string_view::npos) return Error(i_, "unterminated comment");
        i_ = end + 2;
        continue;
      }
      const size_t start = i_;
      if (IsDigit(c) || (c == '.' && IsDigit(next))) {
        tokens.push_back({Token::kNumber, std::string(Number()), start});
      } else if (IsIdentifierStart(c)) {
        while (i_ < s_.size() && IsIdentifierPart(s_[i_])) ++i_;
        std::string word(s_.substr(start, i_ - start));
        const Token::Kind kind = IsWordOperator(word) ? Token::kOperator : Token::kIdentifier;
        tokens.push_back({kind, std::move(word), start});
      } else if (c == '\'' || c == '"') {
        ASSIGN_OR_RETURN(std::string text, Quoted());
        tokens.push_back({Token::kString, std::move(text), start});
      } else if (c == '`') {
        const size_t end = s_.find('`', i_ + 1);
        if (end == std::string_view::npos) return Error(i_, "unterminated string");
        tokens.push_back({Token::kString, std::string(s_.substr(i_ + 1, end - i_ - 1)), start});
        i_ = end + 1;
      } else if (std::string_view("()[]{}").find(c) != std::string_view::npos) {
        tokens.push_back({Token::kBracket, std::string(1, c), start});
        ++i_;
      } else {
        std::string op = Operator();
        if (op.empty()) {
          return Error(i_, absl::StrCat("unexpected character '", std::string(1, c), "'"));
        }
        tokens.push_back({Token::kOperator, std::move(op), start});
      }
    }
    tokens.push_back({Token::kEnd, "", s_.size()});
    return tokens;
  }

 private:
  absl::Status Error(size_t at, std::string_view what) const {
    return ExpressionError(s_, at, what);
  }

  std::string_view Number() {
    const size_t start = i_;
    const auto digits = [&](bool hex) {
      while (i_ < s_.size() && (IsDigit(s_[i_]) || s_[i_] == '_' ||
                                (hex && std::isxdigit(static_cast<unsigned char>(s_[i_]))))) {
        ++i_;
      }
    };
    if (s_[i_] == '0' && i_ + 1 < s_.size() &&
        std::string_view("xXoObB").find(s_[i_ + 1]) != std::string_view::npos) {
      i_ += 2;
      digits(/*hex=*/true);
      return s_.substr(start, i_ - start);
    }
    digits(false);
    // "1..3" is a range, not the float "1." followed by ".3".
    if (i_ < s_.size() && s_[i_] == '.' && !(i_ + 1 < s_.size() && s_[i_ + 1] == '.')) {
      ++i_;
      digits(false);
    }
    if (i_ < s_.size() && (s_[i_] == 'e' || s_[i_] == 'E')) {
      size_t k = i_ + 1;
      if (k < s_.size() && (s_[k] == '+' || s_[k] == '-')) ++k;
      if (k < s_.size() && IsDigit(s_[k])) {
        i_ = k;
        digits(false);
      }
    }
    return s_.substr(start, i_ - start);
  }

  absl::StatusOr<std::string> Quoted() {
    const size_t start = i_;
    const char quote = s_[i_++];
    std::string out;
    while (true) {
      if (i_ >= s_.size() || s_[i_] == '\n') return Error(start, "unterminated string");
      const char c = s_[i_];
      if (c == quote) {
        ++i_;
        return out;
      }
      if (c != '\\') {
        out.push_back(c);
        ++i_;
        continue;
      }
      const size_t escape = i_;
      if (++i_ >= s_.size()) return Error(start, "unterminated string");
      const char e = s_[i_++];
      const auto hex = [&](int count) -> std::optional<uint32_t> {
        uint32_t value = 0;
        for (int k = 0; k < count; ++k, ++i_) {
          if (i_ >= s_.size() || !std::isxdigit(static_cast<unsigned char>(s_[i_]))) {
            return std::nullopt;
          }
          const char h = static_cast<char>(std::tolower(static_cast<unsigned char>(s_[i_])));
          value = value * 16 + (IsDigit(h) ? h - '0' : h - 'a' + 10);
        }
        return value;
      };
      switch (e) {
        case 'a':
          out.push_back('\a');
          break;
        case 'b':
          out.push_back('\b');
          break;
        case 'f':
          out.push_back('\f');
          break;
        case 'n':
          out.push_back('\n');
          break;
        case 'r':
          out.push_back('\r');
          break;
        case 't':
          out.push_back('\t');
          break;
        case 'v':
          out.push_back('\v');
          break;
        case '\\':
        case '\'':
        case '"':
          out.push_back(e);
          break;
        case 'x':
        case 'u':
        case 'U': {
          std::optional<uint32_t> code = hex(e == 'x' ? 2 : e == 'u' ? 4 : 8);
          if (!code || *code > 0x10ffff) return Error(escape, "invalid escape in string");
          if (e == 'x') {
            out.push_back(static_cast<char>(*code));
          } else {
            AppendUtf8(*code, &out);
          }
          break;
        }
        default:
          if (e >= '0' && e <= '7') {
            uint32_t value = e - '0';
            for (int k = 0; k < 2; ++k, ++i_) {
              if (i_ >= s_.size() || s_[i_] < '0' || s_[i_] > '7') {
                return Error(escape, "invalid escape in string");
              }
              value = value * 8 + (s_[i_] - '0');
            }
            if (value > 255) return Error(escape, "invalid escape in string");
            out.push_back(static_cast<char>(value));
            break;
          }
          return Error(escape, absl::StrCat("unknown escape \\", std::string(1, e), " in string"));
      }
    }
  }

  std::string Operator() {
    constexpr std::string_view kLong[] = {
        "**", "??", "?.", "==", "!=", "<=", ">=", "&&", "||", ".."};
    for (std::string_view op : kLong) {
      if (s_.substr(i_, 2) != op) continue;
      // "a ? .5 : 1" is a conditional, not an optional member.
      if (op == "?." && i_ + 2 < s_.size() && IsDigit(s_[i_ + 2])) continue;
      i_ += 2;
      return std::string(op);
    }
    constexpr std::string_view kSingle = "+-*/%^<>!?:,.|#;=";
    if (kSingle.find(s_[i_]) != std::string_view::npos) return std::string(1, s_[i_++]);
    return "";
  }

  std::string_view s_;
  size_t i_ = 0;
};

// ---------------------------------------------------------------------------------------------
// Syntax tree and parser (after expr-lang's parser/parser.go)

enum class Kind {
  kLiteral,      // literal
  kArray,        // children: elements
  kMap,          // children: key, value, key, value, …
  kIdentifier,   // name
  kPointer,      // # (name ""), #index, #acc
  kMember,       // children: object, key; optional for ?.
  kSlice,        // children: object, from (may be null), to (may be null)
  kUnary,        // name: operator; children: operand
  kBinary,       // name: operator; children: left, right
  kComparison,   // operators; children: the operands of a chain a < b < c
  kConditional,  // children: condition, then, else
  kCall,         // name: function; children: arguments (kPredicate for predicates)
  kPredicate,    // children: body
  kChain,        // children: a member chain with ?. somewhere: nil there makes the chain nil
};

struct Node {
  Kind kind = Kind::kLiteral;
  size_t offset = 0;
  int depth = 1;
  Value literal;
  std::string name;
  std::vector<std::string> operators;
  bool optional = false;
  std::vector<std::unique_ptr<Node>> children;
};
using NodePtr = std::unique_ptr<Node>;

struct BinaryOperator {
  int precedence;
  bool right_associative;
};

const std::map<std::string_view, BinaryOperator>& BinaryOperators() {
  static const auto* const operators = new std::map<std::string_view, BinaryOperator>{
      {"|", {0, false}},         {"or", {10, false}},       {"||", {10, false}},
      {"and", {15, false}},      {"&&", {15, false}},       {"==", {20, false}},
      {"!=", {20, false}},       {"<", {20, false}},        {">", {20, false}},
      {">=", {20, false}},       {"<=", {20, false}},       {"in", {20, false}},
      {"matches", {20, false}},  {"contains", {20, false}}, {"startsWith", {20, false}},
      {"endsWith", {20, false}}, {"..", {25, false}},       {"+", {30, false}},
      {"-", {30, false}},        {"*", {60, false}},        {"/", {60, false}},
      {"%", {60, false}},        {"**", {100, true}},       {"^", {100, true}},
      {"??", {500, false}}};
  return *operators;
}

int UnaryPrecedence(std::string_view op) {
  if (op == "not" || op == "!") return 50;
  if (op == "-" || op == "+") return 90;
  return -1;
}

bool IsComparison(std::string_view op) {
  auto it = BinaryOperators().find(op);
  return it != BinaryOperators().end() && it->second.precedence == 20;
}

bool IsNegatable(std::string_view op) {
  return op == "contains" || op == "matches" || op == "startsWith" || op == "endsWith" ||
         op == "in";
}

// Builtins that take a predicate: their arguments, 'e' an expression, 'p' a predicate, upper case
// optional.
const std::map<std::string_view, std::string_view>& PredicateFunctions() {
  static const auto* const functions = new std::map<std::string_view, std::string_view>{
      {"all", "ep"},    {"none", "ep"},      {"any", "ep"},      {"one", "ep"},
      {"filter", "ep"}, {"map", "ep"},       {"count", "eP"},    {"sum", "eP"},
      {"find", "ep"},   {"findIndex", "ep"}, {"findLast", "ep"}, {"findLastIndex", "ep"},
      {"reduce", "epE"}};
  return *functions;
}

class Parser {
 public:
  Parser(std::string_view source, std::vector<Token> tokens)
      : source_(source), tokens_(std::move(tokens)) {}

  absl::StatusOr<NodePtr> Parse() {
    NodePtr node = Expression(0);
    if (status_.ok() && !Current().Is(Token::kEnd)) Unexpected(Current());
    if (!status_.ok()) return status_;
    return node;
  }

 private:
  const Token& Current() const { return tokens_[pos_]; }
  void Next() {
    if (pos_ + 1 < tokens_.size()) ++pos_;
  }
  bool Failed() const { return !status_.ok(); }

  NodePtr Fail(size_t offset, std::string_view what) {
    if (status_.ok()) status_ = ExpressionError(source_, offset, what);
    return Literal(offset, Nil());
  }
  static std::string Describe(const Token& token) {
    if (token.Is(Token::kEnd)) return "end";
    if (token.Is(Token::kString)) return absl::StrCat("string '", token.value, "'");
    return absl::StrCat("'", token.value, "'");
  }
  NodePtr Unexpected(const Token& token) {
    return Fail(token.offset, absl::StrCat("unexpected ", Describe(token)));
  }
  void Expect(Token::Kind kind, std::string_view value) {
    if (Current().Is(kind, value)) {
      Next();
    } else if (!Failed()) {
      Fail(Current().offset,
           absl::StrCat("expected '", Sv(value), "' but found ", Describe(Current())));
    }
  }

  NodePtr NewNode(Kind kind, size_t offset, std::vector<NodePtr> children = {}) {
    auto node = std::make_unique<Node>();
    node->kind = kind;
    node->offset = offset;
    for (const NodePtr& child : children) {
      if (child) node->depth = std::max(node->depth, child->depth + 1);
    }
    node->children = std::move(children);
    if (node->depth > kMaxTreeDepth) {
      Fail(offset, absl::StrCat("expression too deeply chained (more than ", kMaxTreeDepth,
                                " operations inside one another)"));
    }
    return node;
  }
  static NodePtr Literal(size_t offset, Value value) {
    auto node = std::make_unique<Node>();
    node->kind = Kind::kLiteral;
    node->offset = offset;
    node->literal = std::move(value);
    return node;
  }

  NodePtr Expression(int precedence) {
    if (Failed()) return Literal(Current().offset, Nil());
    if (nesting_ >= kMaxNesting) {
      return Fail(Current().offset, absl::StrCat("expression nested too deeply (more than ",
                                                 kMaxNesting, " levels)"));
    }
    ++nesting_;
    NodePtr node = ExpressionBody(precedence);
    --nesting_;
    return node;
  }

  NodePtr ExpressionBody(int precedence) {
    if (Current().Is(Token::kOperator, "let")) {
      return Fail(Current().offset, "variables (let) are not supported");
    }
    NodePtr left = Primary();
    std::string previous;
    while (!Failed() && Current().Is(Token::kOperator)) {
      Token op = Current();
      std::optional<Token> negation;
      if (op.value == "not") {
        const size_t saved = pos_;
        Next();
        if (!Current().Is(Token::kOperator) || !IsNegatable(Current().value)) {
          Unexpected(Current());
          break;
        }
        if (BinaryOperators().at(Current().value).precedence < precedence) {
          pos_ = saved;
          break;
        }
        negation = op;
        op = Current();
      }
      auto it = BinaryOperators().find(op.value);
      if (it == BinaryOperators().end() || it->second.precedence < precedence) break;
      Next();
      if (op.value == "|") {
        const Token function = Current();
        if (!function.Is(Token::kIdentifier)) {
          Fail(function.offset, "expected a function name after '|'");
          break;
        }
        Next();
        std::vector<NodePtr> arguments;
        arguments.push_back(std::move(left));
        left = Call(function, std::move(arguments));
        previous = op.value;
        continue;
      }
      if (previous == "??" && op.value != "??") {
        Fail(op.offset,
             absl::StrCat("operator ", op.value, " and ?? cannot be mixed: add parentheses"));
        break;
      }
      if (IsComparison(op.value)) {
        left = Comparison(std::move(left), op, it->second.precedence);
      } else {
        const int next =
            it->second.right_associative ? it->second.precedence : it->second.precedence + 1;
        NodePtr right = Expression(next);
        std::vector<NodePtr> operands;
        operands.push_back(std::move(left));
        operands.push_back(std::move(right));
        left = NewNode(Kind::kBinary, op.offset, std::move(operands));
        left->name = op.value;
      }
      if (negation) {
        std::vector<NodePtr> operand;
        operand.push_back(std::move(left));
        left = NewNode(Kind::kUnary, negation->offset, std::move(operand));
        left->name = "not";
      }
      previous = op.value;
    }
    if (precedence == 0) left = Conditional(std::move(left));
    return left;
  }

  // a < b < c reads as a < b && b < c, with b evaluated once.
  NodePtr Comparison(NodePtr left, const Token& first, int precedence) {
    std::vector<NodePtr> operands;
    std::vector<std::string> operators;
    operands.push_back(std::move(left));
    std::string op = first.value;
    while (true) {
      operands.push_back(Expression(precedence + 1));
      operators.push_back(op);
      if (Failed() || !Current().Is(Token::kOperator) || !IsComparison(Current().value)) break;
      op = Current().value;
      Next();
    }
    if (operators.size() == 1) {
      NodePtr node = NewNode(Kind::kBinary, first.offset, std::move(operands));
      node->name = operators[0];
      return node;
    }
    NodePtr node = NewNode(Kind::kComparison, first.offset, std::move(operands));
    node->operators = std::move(operators);
    return node;
  }

  NodePtr Conditional(NodePtr node) {
    while (!Failed() && Current().Is(Token::kOperator, "?")) {
      const size_t offset = Current().offset;
      Next();
      if (Current().Is(Token::kOperator, ":")) {
        return Fail(Current().offset, "the ?: operator is not supported; use ?? or a ? b : c");
      }
      std::vector<NodePtr> parts;
      parts.push_back(std::move(node));
      parts.push_back(Expression(0));
      Expect(Token::kOperator, ":");
      parts.push_back(Expression(0));
      node = NewNode(Kind::kConditional, offset, std::move(parts));
    }
    return node;
  }

  NodePtr Primary() {
    const Token token = Current();
    if (token.Is(Token::kOperator) && UnaryPrecedence(token.value) >= 0) {
      Next();
      std::vector<NodePtr> operand;
      operand.push_back(Expression(UnaryPrecedence(token.value)));
      NodePtr node = NewNode(Kind::kUnary, token.offset, std::move(operand));
      node->name = token.value;
      return Postfix(std::move(node));
    }
    if (token.Is(Token::kBracket, "(")) {
      Next();
      NodePtr inner = Expression(0);
      Expect(Token::kBracket, ")");
      return Postfix(std::move(inner));
    }
    if (token.Is(Token::kOperator, "#") || token.Is(Token::kOperator, ".")) {
      if (predicate_depth_ == 0) {
        return Fail(token.offset,
                    absl::StrCat("'", token.value, "' can only be used inside a predicate ({…})"));
      }
      NodePtr node = NewNode(Kind::kPointer, token.offset);
      if (token.value == "#") {
        Next();
        if (Current().Is(Token::kIdentifier, "index") || Current().Is(Token::kIdentifier, "acc")) {
          node->name = Current().value;
          Next();
        }
      }
      return Postfix(std::move(node));  // `.name` is a member of the element
    }
    return Secondary();
  }

  NodePtr Secondary() {
    const Token token = Current();
    NodePtr node;
    switch (token.kind) {
      case Token::kIdentifier:
        Next();
        if (token.value == "true" || token.value == "false") {
          return Literal(token.offset, Make(token.value == "true"));
        }
        if (token.value == "nil") return Literal(token.offset, Nil());
        if (Current().Is(Token::kBracket, "(")) {
          node = Call(token, {});
        } else {
          node = NewNode(Kind::kIdentifier, token.offset);
          node->name = token.value;
        }
        break;
      case Token::kNumber:
        Next();
        node = NumberLiteral(token);
        break;
      case Token::kString:
        Next();
        node = Literal(token.offset, Make(token.value));
        break;
      default:
        if (token.Is(Token::kBracket, "[")) {
          node = Array();
        } else if (token.Is(Token::kBracket, "{")) {
          node = MapLiteral();
        } else {
          return Unexpected(token);
        }
    }
    return Postfix(std::move(node));
  }

  NodePtr NumberLiteral(const Token& token) {
    const std::string text = absl::StrReplaceAll(token.value, {{"_", ""}});
    const std::string lower = absl::AsciiStrToLower(text);
    int base = 10;
    std::string digits = text;
    if (absl::StartsWith(lower, "0x") || absl::StartsWith(lower, "0o") ||
        absl::StartsWith(lower, "0b")) {
      base = lower[1] == 'x' ? 16 : lower[1] == 'o' ? 8 : 2;
      digits = text.substr(2);
    } else if (lower.find_first_of(".e") != std::string::npos) {
      errno = 0;
      char* end = nullptr;
      const double value = std::strtod(text.c_str(), &end);
      if (end != text.c_str() + text.size() || !std::isfinite(value)) {
        return Fail(token.offset, absl::StrCat("invalid number ", token.value));
      }
      return Literal(token.offset, Make(value));
    }
    if (digits.empty()) return Fail(token.offset, absl::StrCat("invalid number ", token.value));
    errno = 0;
    char* end = nullptr;
    const int64_t value = std::strtoll(digits.c_str(), &end, base);
    if (end != digits.c_str() + digits.size()) {
      return Fail(token.offset, absl::StrCat("invalid number ", token.value));
    }
    if (errno == ERANGE) return Fail(token.offset, "integer literal is too large");
    return Literal(token.offset, Make(static_cast<int64_t>(value)));
  }

  NodePtr Call(const Token& function, std::vector<NodePtr> arguments) {
    const std::string& name = function.value;
    auto predicate = PredicateFunctions().find(name);
    if (predicate != PredicateFunctions().end()) {
      Expect(Token::kBracket, "(");
      const std::string_view spec =
          predicate->second.substr(std::min(arguments.size(), predicate->second.size()));
      for (size_t i = 0; i < spec.size() && !Failed(); ++i) {
        const bool optional = std::isupper(static_cast<unsigned char>(spec[i]));
        if (Current().Is(Token::kBracket, ")")) {
          if (optional) break;
          const auto required = std::count_if(predicate->second.begin(), predicate->second.end(),
                                              [](char c) { return std::islower(c) != 0; });
          Fail(Current().offset, absl::StrCat(name, "() needs at least ", required, " arguments"));
          break;
        }
        if (i > 0) Expect(Token::kOperator, ",");
        arguments.push_back(spec[i] == 'p' || spec[i] == 'P' ? Predicate() : Expression(0));
      }
      if (Current().Is(Token::kOperator, ",")) Next();
      Expect(Token::kBracket, ")");
    } else if (const internal::ExprFunction* function_spec = internal::FindExprFunction(name)) {
      arguments = Arguments(std::move(arguments));
      const int count = static_cast<int>(arguments.size());
      const internal::ExprFunction& spec = *function_spec;
      if (!Failed() && (count < spec.min_args || (spec.max_args >= 0 && count > spec.max_args))) {
        const std::string wanted = spec.max_args < 0 ? absl::StrCat("at least ", spec.min_args)
                                   : spec.min_args == spec.max_args
                                       ? absl::StrCat(spec.min_args)
                                       : absl::StrCat(spec.min_args, " to ", spec.max_args);
        return Fail(function.offset, absl::StrCat(name, "() takes ", wanted, " argument",
                                                  wanted == "1" ? "" : "s", ", not ", count));
      }
    } else {
      return Fail(function.offset, absl::StrCat("unknown function ", name, "()"));
    }
    NodePtr node = NewNode(Kind::kCall, function.offset, std::move(arguments));
    node->name = name;
    return node;
  }

  std::vector<NodePtr> Arguments(std::vector<NodePtr> arguments) {
    const size_t given = arguments.size();
    Expect(Token::kBracket, "(");
    while (!Failed() && !Current().Is(Token::kBracket, ")")) {
      if (arguments.size() > given) {
        Expect(Token::kOperator, ",");
        if (Current().Is(Token::kBracket, ")")) break;
      }
      arguments.push_back(Expression(0));
    }
    Expect(Token::kBracket, ")");
    return arguments;
  }

  NodePtr Predicate() {
    const size_t offset = Current().offset;
    const bool braces = Current().Is(Token::kBracket, "{");
    if (braces) Next();
    ++predicate_depth_;
    std::vector<NodePtr> body;
    body.push_back(Expression(0));
    --predicate_depth_;
    if (braces) Expect(Token::kBracket, "}");
    return NewNode(Kind::kPredicate, offset, std::move(body));
  }

  NodePtr Array() {
    const size_t offset = Current().offset;
    Expect(Token::kBracket, "[");
    std::vector<NodePtr> elements;
    while (!Failed() && !Current().Is(Token::kBracket, "]")) {
      if (!elements.empty()) {
        Expect(Token::kOperator, ",");
        if (Current().Is(Token::kBracket, "]")) break;
      }
      elements.push_back(Expression(0));
    }
    Expect(Token::kBracket, "]");
    return NewNode(Kind::kArray, offset, std::move(elements));
  }

  NodePtr MapLiteral() {
    const size_t offset = Current().offset;
    Expect(Token::kBracket, "{");
    std::vector<NodePtr> pairs;
    while (!Failed() && !Current().Is(Token::kBracket, "}")) {
      if (!pairs.empty()) {
        Expect(Token::kOperator, ",");
        if (Current().Is(Token::kBracket, "}")) break;
      }
      const Token key = Current();
      if (key.Is(Token::kNumber) || key.Is(Token::kString) || key.Is(Token::kIdentifier)) {
        pairs.push_back(Literal(key.offset, Make(key.value)));
        Next();
      } else if (key.Is(Token::kBracket, "(")) {
        pairs.push_back(Expression(0));
      } else {
        Fail(key.offset, absl::StrCat("a map key must be a quoted string, a number, a name or an "
                                      "expression in parentheses, not ",
                                      Describe(key)));
        break;
      }
      Expect(Token::kOperator, ":");
      pairs.push_back(Expression(0));
    }
    Expect(Token::kBracket, "}");
    return NewNode(Kind::kMap, offset, std::move(pairs));
  }

  // A member `object.key`, or a chain when ?. appears: nil there makes the whole chain nil.
  NodePtr Member(NodePtr object, NodePtr key, size_t offset, bool optional) {
    const bool chained = object->kind == Kind::kChain;
    if (chained) object = std::move(object->children[0]);
    std::vector<NodePtr> parts;
    parts.push_back(std::move(object));
    parts.push_back(std::move(key));
    NodePtr member = NewNode(Kind::kMember, offset, std::move(parts));
    member->optional = optional;
    if (!chained && !optional) return member;
    std::vector<NodePtr> inner;
    inner.push_back(std::move(member));
    return NewNode(Kind::kChain, offset, std::move(inner));
  }

  NodePtr Postfix(NodePtr node) {
    while (!Failed()) {
      const Token token = Current();
      if (token.Is(Token::kOperator, ".") || token.Is(Token::kOperator, "?.")) {
        const bool optional = token.value == "?.";
        Next();
        if (optional && Current().Is(Token::kBracket, "[")) {
          node = Index(std::move(node), /*optional=*/true);
          continue;
        }
        const Token property = Current();
        if (!property.Is(Token::kIdentifier) &&
            !(property.Is(Token::kOperator) && IsWordOperator(property.value))) {
          return Fail(property.offset, absl::StrCat("expected a name after '", token.value,
                                                    "' but found ", Describe(property)));
        }
        Next();
        if (Current().Is(Token::kBracket, "(")) {
          if (node->kind == Kind::kIdentifier && node->name == "sprig" && !optional) {
            Token function = property;
            function.value = absl::StrCat("sprig.", property.value);
            node = Call(function, {});
            continue;
          }
          return Fail(property.offset,
                      absl::StrCat("method calls are not supported (.", property.value, "())"));
        }
        node = Member(std::move(node), Literal(property.offset, Make(property.value)),
                      property.offset, optional);
      } else if (token.Is(Token::kBracket, "[")) {
        node = Index(std::move(node), /*optional=*/false);
      } else {
        break;
      }
    }
    return node;
  }

  // object[key], object[from:to]; the current token is '['.
  NodePtr Index(NodePtr object, bool optional) {
    const size_t offset = Current().offset;
    Next();
    NodePtr from;
    if (!Current().Is(Token::kOperator, ":")) {
      from = Expression(0);
      if (!Current().Is(Token::kOperator, ":")) {
        Expect(Token::kBracket, "]");
        return Member(std::move(object), std::move(from), offset, optional);
      }
    }
    Next();  // ':'
    NodePtr to;
    if (!Current().Is(Token::kBracket, "]")) to = Expression(0);
    Expect(Token::kBracket, "]");
    std::vector<NodePtr> parts;
    parts.push_back(std::move(object));
    parts.push_back(std::move(from));
    parts.push_back(std::move(to));
    return NewNode(Kind::kSlice, offset, std::move(parts));
  }

  std::string_view source_;
  std::vector<Token> tokens_;
  size_t pos_ = 0;
  int nesting_ = 0;
  int predicate_depth_ = 0;
  absl::Status status_;
};

absl::StatusOr<NodePtr> Parse(std::string_view source) {
  if (source.size() > kMaxExpressionBytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "expression '", Abbreviate(source), "': longer than ", kMaxExpressionBytes, " bytes"));
  }
  ASSIGN_OR_RETURN(std::vector<Token> tokens, Lexer(source).Run());
  return Parser(source, std::move(tokens)).Parse();
}

// ---------------------------------------------------------------------------------------------
// Evaluator

class Evaluator {
 public:
  Evaluator(std::string_view source, Value environment)
      : source_(source), environment_(std::move(environment)) {}

  absl::StatusOr<Value> Eval(const Node& node) {
    RETURN_IF_ERROR(Charge(node.offset, 1));
    switch (node.kind) {
      case Kind::kLiteral:
        return node.literal;
      case Kind::kArray: {
        json out = json::array();
        for (const NodePtr& child : node.children) {
          ASSIGN_OR_RETURN(Value element, Eval(*child));
          RETURN_IF_ERROR(ChargeValue(node.offset, *element, 1));
          out.push_back(*element);
        }
        return Make(std::move(out));
      }
      case Kind::kMap: {
        json out = json::object();
        for (size_t i = 0; i + 1 < node.children.size(); i += 2) {
          ASSIGN_OR_RETURN(Value key, Eval(*node.children[i]));
          if (!key->is_string()) {
            return Fail(node.children[i]->offset,
                        absl::StrCat("map keys must be strings, not ", ExprTypeName(*key)));
          }
          ASSIGN_OR_RETURN(Value value, Eval(*node.children[i + 1]));
          RETURN_IF_ERROR(ChargeValue(node.offset, *value, 1));
          out[key->get<std::string>()] = *value;
        }
        return Make(std::move(out));
      }
      case Kind::kIdentifier:
        return Lookup(node, /*lenient=*/false);
      case Kind::kPointer:
        return Pointer(node);
      case Kind::kMember:
        return MemberValue(node, /*lenient=*/false);
      case Kind::kSlice:
        return Slice(node);
      case Kind::kUnary:
        return Unary(node);
      case Kind::kBinary:
        return Binary(node);
      case Kind::kComparison:
        return ComparisonChain(node);
      case Kind::kConditional: {
        ASSIGN_OR_RETURN(Value condition, Eval(*node.children[0]));
        if (!condition->is_boolean()) {
          return Fail(node.offset, absl::StrCat("the condition before ? must be a bool, not ",
                                                ExprTypeName(*condition)));
        }
        return Eval(*node.children[condition->get<bool>() ? 1 : 2]);
      }
      case Kind::kCall:
        return Call(node);
      case Kind::kChain:
        return Chain(node, /*lenient=*/false);
      case Kind::kPredicate:
        return Fail(node.offset, "a predicate can only be a function argument");
    }
    return Fail(node.offset, "unknown syntax");
  }

 private:
  struct Frame {
    Value element;
    int64_t index = 0;
    Value accumulator;
  };

  absl::Status Fail(size_t offset, std::string_view what) const {
    return ExpressionError(source_, offset, what);
  }

  absl::Status Charge(size_t offset, int64_t cost) {
    steps_ = cost > kMaxSteps - steps_ ? kMaxSteps + 1 : steps_ + cost;
    if (steps_ > kMaxSteps) {
      return Fail(offset, absl::StrCat("expression too costly to evaluate (more than ", kMaxSteps,
                                       " steps)"));
    }
    return absl::OkStatus();
  }

  // Charges for copying `value` into a new value `extra_depth` levels down.
  absl::Status ChargeValue(size_t offset, const json& value, int extra_depth) {
    const Measure measure = MeasureValue(value);
    if (measure.depth + extra_depth > kMaxValueDepth) {
      return Fail(offset, absl::StrCat("value nested more than ", kMaxValueDepth, " levels deep"));
    }
    return Charge(offset, measure.cost);
  }

  // A name of the environment; `lenient` (the left side of ??) makes a missing one nil.
  absl::StatusOr<Value> Lookup(const Node& node, bool lenient) {
    if (node.name == "$env") return environment_;
    if (environment_->is_object()) {
      auto it = environment_->find(node.name);
      if (it != environment_->end()) return Value(environment_, &*it);
    }
    if (lenient) return Nil();
    return Fail(node.offset, absl::StrCat("unknown name ", node.name));
  }

  absl::StatusOr<Value> Pointer(const Node& node) {
    if (frames_.empty()) return Fail(node.offset, "# outside a predicate");
    const Frame& frame = frames_.back();
    if (node.name == "index") return Make(frame.index);
    if (node.name == "acc") return frame.accumulator ? frame.accumulator : Nil();
    return frame.element;
  }

  // The left side of ?? reads members leniently (see expr.h).
  absl::StatusOr<Value> EvalLenient(const Node& node) {
    switch (node.kind) {
      case Kind::kIdentifier:
        return Lookup(node, /*lenient=*/true);
      case Kind::kMember:
        return MemberValue(node, /*lenient=*/true);
      case Kind::kChain:
        return Chain(node, /*lenient=*/true);
      default:
        return Eval(node);
    }
  }

  absl::StatusOr<Value> Chain(const Node& node, bool lenient) {
    const bool saved = chain_broken_;
    chain_broken_ = false;
    absl::StatusOr<Value> result =
        lenient ? EvalLenient(*node.children[0]) : Eval(*node.children[0]);
    const bool broken = chain_broken_;
    chain_broken_ = saved;
    if (!result.ok()) return result;
    return broken ? Nil() : *std::move(result);
  }

  absl::StatusOr<Value> MemberValue(const Node& node, bool lenient) {
    RETURN_IF_ERROR(Charge(node.offset, 1));
    ASSIGN_OR_RETURN(Value object,
                     lenient ? EvalLenient(*node.children[0]) : Eval(*node.children[0]));
    if (chain_broken_) return Nil();
    if (object->is_null()) {
      if (node.optional) {
        chain_broken_ = true;
        return Nil();
      }
      if (lenient) return Nil();
    }
    ASSIGN_OR_RETURN(Value key, Eval(*node.children[1]));
    return Fetch(node.offset, object, *key, lenient);
  }

  absl::StatusOr<Value> Fetch(size_t offset, const Value& object, const json& key, bool lenient) {
    const json& o = *object;
    if (o.is_object()) {
      if (!key.is_string()) {
        return Fail(offset, absl::StrCat("cannot fetch ", KeyText(key),
                                         " from map (its keys are strings)"));
      }
      auto it = o.find(key.get_ref<const std::string&>());
      if (it == o.end()) return Nil();
      return Value(object, &*it);
    }
    if ((o.is_array() || o.is_string()) && key.is_number()) {
      const int64_t size =
          static_cast<int64_t>(o.is_array() ? o.size() : o.get_ref<const std::string&>().size());
      int64_t index = NumberToInt(key);
      if (index < 0) index += size;
      if (index < 0 || index >= size) {
        if (lenient) return Nil();
        return Fail(offset, absl::StrCat("index out of range: ", NumberToInt(key), " (length is ",
                                         size, ")"));
      }
      if (o.is_array()) return Value(object, &o[static_cast<size_t>(index)]);
      // As Go indexes a string: the byte.
      return Make(
          static_cast<int64_t>(static_cast<unsigned char>(o.get_ref<const std::string&>()[index])));
    }
    return Fail(offset, absl::StrCat("cannot fetch ", KeyText(key), " from ", ExprTypeName(o)));
  }

  absl::StatusOr<Value> Slice(const Node& node) {
    ASSIGN_OR_RETURN(Value object, Eval(*node.children[0]));
    if (!object->is_array() && !object->is_string()) {
      return Fail(node.offset, absl::StrCat("cannot slice ", ExprTypeName(*object)));
    }
    const int64_t size = static_cast<int64_t>(
        object->is_array() ? object->size() : object->get_ref<const std::string&>().size());
    const auto bound = [&](const NodePtr& child, int64_t fallback) -> absl::StatusOr<int64_t> {
      if (!child) return fallback;
      ASSIGN_OR_RETURN(Value value, Eval(*child));
      if (!value->is_number()) {
        return Fail(child->offset,
                    absl::StrCat("slice bounds must be ints, not ", ExprTypeName(*value)));
      }
      int64_t bound = NumberToInt(*value);
      if (bound < 0) bound += size;
      return std::clamp<int64_t>(bound, 0, size);
    };
    ASSIGN_OR_RETURN(int64_t from, bound(node.children[1], 0));
    ASSIGN_OR_RETURN(int64_t to, bound(node.children[2], size));
    from = std::min(from, to);
    if (object->is_string()) {
      return Make(object->get_ref<const std::string&>().substr(from, to - from));
    }
    json out = json::array();
    for (int64_t i = from; i < to; ++i) {
      const json& element = (*object)[static_cast<size_t>(i)];
      RETURN_IF_ERROR(ChargeValue(node.offset, element, 1));
      out.push_back(element);
    }
    return Make(std::move(out));
  }

  absl::StatusOr<Value> Unary(const Node& node) {
    ASSIGN_OR_RETURN(Value operand, Eval(*node.children[0]));
    const json& v = *operand;
    if (node.name == "!" || node.name == "not") {
      if (v.is_boolean()) return Make(!v.get<bool>());
    } else if (node.name == "-") {
      if (IsInt(v)) return Make(Wrap(0 - static_cast<uint64_t>(AsInt(v))));
      if (v.is_number_float()) return Make(-AsFloat(v));
    } else if (v.is_number()) {  // unary +
      return operand;
    }
    return Fail(node.offset, absl::StrCat("invalid operation: ", node.name, " ", ExprTypeName(v)));
  }

  absl::StatusOr<bool> Boolean(const Node& operand, const Node& op) {
    ASSIGN_OR_RETURN(Value value, Eval(operand));
    if (!value->is_boolean()) {
      return Fail(op.offset, absl::StrCat("operands of ", op.name, " must be bools, not ",
                                          ExprTypeName(*value)));
    }
    return value->get<bool>();
  }

  absl::StatusOr<Value> Binary(const Node& node) {
    const std::string& op = node.name;
    if (op == "&&" || op == "and" || op == "||" || op == "or") {
      const bool is_and = op == "&&" || op == "and";
      ASSIGN_OR_RETURN(bool left, Boolean(*node.children[0], node));
      if (left != is_and) return Make(left);  // short circuit
      ASSIGN_OR_RETURN(bool right, Boolean(*node.children[1], node));
      return Make(right);
    }
    if (op == "??") {
      ASSIGN_OR_RETURN(Value left, EvalLenient(*node.children[0]));
      if (!left->is_null()) return left;
      return Eval(*node.children[1]);
    }
    ASSIGN_OR_RETURN(Value left, Eval(*node.children[0]));
    ASSIGN_OR_RETURN(Value right, Eval(*node.children[1]));
    return Apply(op, *left, *right, node.offset);
  }

  absl::StatusOr<Value> ComparisonChain(const Node& node) {
    ASSIGN_OR_RETURN(Value left, Eval(*node.children[0]));
    for (size_t i = 0; i < node.operators.size(); ++i) {
      ASSIGN_OR_RETURN(Value right, Eval(*node.children[i + 1]));
      ASSIGN_OR_RETURN(Value holds, Apply(node.operators[i], *left, *right, node.offset));
      if (!holds->get<bool>()) return holds;
      left = std::move(right);
    }
    return Make(true);
  }

  absl::StatusOr<Value> Mismatch(std::string_view op, const json& a, const json& b, size_t offset) {
    return Fail(offset, absl::StrCat("invalid operation: ", ExprTypeName(a), " ", Sv(op), " ",
                                     ExprTypeName(b)));
  }

  absl::StatusOr<Value> Apply(const std::string& op, const json& a, const json& b, size_t offset) {
    const bool numbers = a.is_number() && b.is_number();
    const bool ints = IsInt(a) && IsInt(b);
    const bool strings = a.is_string() && b.is_string();
    if (op == "+") {
      if (ints) {
        return Make(Wrap(static_cast<uint64_t>(AsInt(a)) + static_cast<uint64_t>(AsInt(b))));
      }
      if (numbers) return Make(AsFloat(a) + AsFloat(b));
      if (strings) {
        const std::string& x = a.get_ref<const std::string&>();
        const std::string& y = b.get_ref<const std::string&>();
        if (x.size() + y.size() > kMaxTextBytes) {
          return Fail(offset, absl::StrCat("string longer than ", kMaxTextBytes, " bytes"));
        }
        RETURN_IF_ERROR(Charge(offset, static_cast<int64_t>((x.size() + y.size()) / 16)));
        return Make(x + y);
      }
      return Mismatch(op, a, b, offset);
    }
    if (op == "-" || op == "*") {
      if (ints) {
        const uint64_t x = static_cast<uint64_t>(AsInt(a)), y = static_cast<uint64_t>(AsInt(b));
        return Make(Wrap(op == "-" ? x - y : x * y));
      }
      if (numbers) return Make(op == "-" ? AsFloat(a) - AsFloat(b) : AsFloat(a) * AsFloat(b));
      return Mismatch(op, a, b, offset);
    }
    if (op == "/") {
      if (numbers) return Make(AsFloat(a) / AsFloat(b));  // always a float, as in expr
      return Mismatch(op, a, b, offset);
    }
    if (op == "%") {
      if (!ints) return Mismatch(op, a, b, offset);
      if (AsInt(b) == 0) return Fail(offset, "integer divide by zero");
      return Make(AsInt(b) == -1 ? int64_t{0} : AsInt(a) % AsInt(b));
    }
    if (op == "**" || op == "^") {
      if (numbers) return Make(std::pow(AsFloat(a), AsFloat(b)));
      return Mismatch(op, a, b, offset);
    }
    if (op == "==" || op == "!=") {
      RETURN_IF_ERROR(Charge(offset, std::min(MeasureValue(a).cost, MeasureValue(b).cost)));
      return Make(Equal(a, b) == (op == "=="));
    }
    if (op == "<" || op == ">" || op == "<=" || op == ">=") {
      int order;
      if (ints) {
        order = AsInt(a) < AsInt(b) ? -1 : AsInt(a) > AsInt(b) ? 1 : 0;
      } else if (numbers) {
        const double x = AsFloat(a), y = AsFloat(b);
        if (std::isnan(x) || std::isnan(y)) return Make(false);
        order = x < y ? -1 : x > y ? 1 : 0;
      } else if (strings) {
        const int c = a.get_ref<const std::string&>().compare(b.get_ref<const std::string&>());
        order = c < 0 ? -1 : c > 0 ? 1 : 0;
      } else {
        return Mismatch(op, a, b, offset);
      }
      const bool holds = op == "<"    ? order < 0
                         : op == ">"  ? order > 0
                         : op == "<=" ? order <= 0
                                      : order >= 0;
      return Make(holds);
    }
    if (op == "in") {
      if (b.is_null()) return Make(false);
      if (b.is_array()) {
        RETURN_IF_ERROR(Charge(offset, static_cast<int64_t>(b.size())));
        for (const json& element : b) {
          if (Equal(element, a)) return Make(true);
        }
        return Make(false);
      }
      if (b.is_object()) {
        if (!a.is_string()) {
          return Fail(offset, absl::StrCat("cannot look for ", ExprTypeName(a),
                                           " in map (its keys are strings)"));
        }
        return Make(b.contains(a.get<std::string>()));
      }
      return Fail(offset, absl::StrCat("operator in not defined on ", ExprTypeName(b)));
    }
    if (op == "contains" || op == "startsWith" || op == "endsWith" || op == "matches") {
      if (!strings) return Mismatch(op, a, b, offset);
      const std::string& x = a.get_ref<const std::string&>();
      const std::string& y = b.get_ref<const std::string&>();
      if (op == "contains") return Make(absl::StrContains(x, y));
      if (op == "startsWith") return Make(absl::StartsWith(x, y));
      if (op == "endsWith") return Make(absl::EndsWith(x, y));
      return Matches(x, y, offset);
    }
    if (op == "..") {
      if (!ints) return Mismatch(op, a, b, offset);
      const int64_t from = AsInt(a), to = AsInt(b);
      json out = json::array();
      if (to >= from) {
        const uint64_t count = static_cast<uint64_t>(to) - static_cast<uint64_t>(from) + 1;
        RETURN_IF_ERROR(Charge(offset, count > static_cast<uint64_t>(kMaxSteps)
                                           ? kMaxSteps + 1
                                           : static_cast<int64_t>(count)));
        for (int64_t i = from; i <= to; ++i) {
          out.push_back(i);
          if (i == std::numeric_limits<int64_t>::max()) break;
        }
      }
      return Make(std::move(out));
    }
    return Fail(offset, absl::StrCat("unknown operator ", op));
  }

  // Go's regexp.MatchString, approximated with ECMAScript regular expressions. Go's RE2 runs in
  // linear time; libstdc++'s __polynomial option picks its breadth-first matcher, so that a
  // pattern such as (a+)+b cannot take exponential time either (back-references are refused).
  absl::StatusOr<Value> Matches(const std::string& text, std::string pattern, size_t offset) {
    auto flags = std::regex::ECMAScript | std::regex_constants::__polynomial;
    if (absl::StartsWith(pattern, "(?i)")) {
      pattern.erase(0, 4);
      flags |= std::regex::icase;
    }
    // The matcher's time grows with the text times the pattern, and its compiler recurses on
    // nested groups: bound both.
    constexpr size_t kMaxPattern = 1024;
    constexpr size_t kMaxSubject = size_t{256} * 1024;
    if (pattern.size() > kMaxPattern) {
      return Fail(offset,
                  absl::StrCat("matches: the pattern is longer than ", kMaxPattern, " bytes"));
    }
    if (text.size() > kMaxSubject) {
      return Fail(offset, absl::StrCat("matches: the text is longer than ", kMaxSubject, " bytes"));
    }
    RETURN_IF_ERROR(Charge(offset, static_cast<int64_t>(text.size()) *
                                       (1 + static_cast<int64_t>(pattern.size()) / 64) / 8));
    try {
      // regex_search would run the matcher from every start position (quadratic); one exact match
      // of "anything, the pattern, anything" is a single linear pass.
      const std::regex alone(pattern, flags);  // reject "a)|(b", which the wrapping would mend
      const std::regex regex(absl::StrCat("[\\s\\S]*?(?:", pattern, ")[\\s\\S]*"), flags);
      return Make(std::regex_match(text, regex));
    } catch (const std::regex_error& error) {
      return Fail(offset,
                  absl::StrCat("invalid regular expression '", pattern, "': ", error.what()));
    }
  }

  absl::StatusOr<Value> Call(const Node& node) {
    if (PredicateFunctions().count(node.name) > 0) return PredicateCall(node);
    std::vector<Value> arguments;
    arguments.reserve(node.children.size());
    for (const NodePtr& child : node.children) {
      ASSIGN_OR_RETURN(Value argument, Eval(*child));
      arguments.push_back(std::move(argument));
    }
    const internal::ExprFunction* function = internal::FindExprFunction(node.name);
    if (function == nullptr) {
      return Fail(node.offset, absl::StrCat("unknown function ", node.name));
    }
    absl::StatusOr<json> result = function->call(arguments);
    if (!result.ok()) {
      return Fail(node.offset, absl::StrCat(node.name, "(): ", result.status().message()));
    }
    RETURN_IF_ERROR(ChargeValue(node.offset, *result, 0));
    return Make(*std::move(result));
  }

  // Keeps the frame of a predicate on the stack while it runs.
  class FrameScope {
   public:
    explicit FrameScope(std::vector<Frame>* frames) : frames_(frames) { frames_->emplace_back(); }
    ~FrameScope() { frames_->pop_back(); }
    Frame& frame() { return frames_->back(); }

   private:
    std::vector<Frame>* frames_;
  };

  absl::StatusOr<Value> PredicateCall(const Node& node) {
    const std::string& name = node.name;
    ASSIGN_OR_RETURN(Value collection, Eval(*node.children[0]));
    if (!collection->is_array()) {
      return Fail(node.offset,
                  absl::StrCat(name, "() needs an array, not ", ExprTypeName(*collection)));
    }
    const Node* body = node.children.size() > 1 ? node.children[1]->children[0].get() : nullptr;
    const size_t size = collection->size();
    FrameScope scope(&frames_);
    const auto run = [&](size_t i) -> absl::StatusOr<Value> {
      scope.frame().element = Value(collection, &(*collection)[i]);
      scope.frame().index = static_cast<int64_t>(i);
      if (!body) return scope.frame().element;
      return Eval(*body);
    };
    const auto test = [&](size_t i) -> absl::StatusOr<bool> {
      ASSIGN_OR_RETURN(Value result, run(i));
      if (!result->is_boolean()) {
        return Fail(body ? body->offset : node.offset,
                    absl::StrCat("the predicate of ", name, "() must give a bool, not ",
                                 ExprTypeName(*result)));
      }
      return result->get<bool>();
    };

    if (name == "all" || name == "any" || name == "none" || name == "one" || name == "count") {
      int64_t matches = 0;
      for (size_t i = 0; i < size; ++i) {
        ASSIGN_OR_RETURN(bool holds, test(i));
        if (name == "all" && !holds) return Make(false);
        if (name == "any" && holds) return Make(true);
        if (name == "none" && holds) return Make(false);
        matches += holds ? 1 : 0;
      }
      if (name == "one") return Make(matches == 1);
      if (name == "count") return Make(matches);
      return Make(name != "any");
    }
    if (name == "filter" || name == "map") {
      json out = json::array();
      for (size_t i = 0; i < size; ++i) {
        Value kept;
        if (name == "filter") {
          ASSIGN_OR_RETURN(bool holds, test(i));
          if (!holds) continue;
          kept = scope.frame().element;
        } else {
          ASSIGN_OR_RETURN(kept, run(i));
        }
        RETURN_IF_ERROR(ChargeValue(node.offset, *kept, 1));
        out.push_back(*kept);
      }
      return Make(std::move(out));
    }
    if (name == "find" || name == "findIndex" || name == "findLast" || name == "findLastIndex") {
      const bool last = name == "findLast" || name == "findLastIndex";
      const bool index = name == "findIndex" || name == "findLastIndex";
      for (size_t k = 0; k < size; ++k) {
        const size_t i = last ? size - 1 - k : k;
        ASSIGN_OR_RETURN(bool holds, test(i));
        if (holds) return index ? Make(static_cast<int64_t>(i)) : scope.frame().element;
      }
      return index ? Make(int64_t{-1}) : Nil();
    }
    if (name == "sum") {
      bool floats = false;
      uint64_t int_sum = 0;
      double float_sum = 0;
      for (size_t i = 0; i < size; ++i) {
        ASSIGN_OR_RETURN(Value value, run(i));
        if (!value->is_number()) {
          return Fail(node.offset, absl::StrCat("sum() adds numbers, not ", ExprTypeName(*value)));
        }
        floats = floats || value->is_number_float();
        if (IsInt(*value)) int_sum += static_cast<uint64_t>(AsInt(*value));
        float_sum += AsFloat(*value);
      }
      return floats ? Make(float_sum) : Make(Wrap(int_sum));
    }
    if (name == "reduce") {
      Value accumulator;
      size_t start = 0;
      if (node.children.size() > 2) {
        ASSIGN_OR_RETURN(accumulator, Eval(*node.children[2]));
      } else if (size > 0) {
        accumulator = Value(collection, &(*collection)[0]);
        start = 1;
      } else {
        return Nil();
      }
      for (size_t i = start; i < size; ++i) {
        scope.frame().accumulator = accumulator;
        ASSIGN_OR_RETURN(accumulator, run(i));
      }
      return accumulator;
    }
    return Fail(node.offset, absl::StrCat("unknown function ", name));
  }

  std::string_view source_;
  Value environment_;
  std::vector<Frame> frames_;
  bool chain_broken_ = false;
  int64_t steps_ = 0;
};

absl::StatusOr<json> Evaluate(std::string_view expression, Value environment) {
  ASSIGN_OR_RETURN(NodePtr tree, Parse(expression));
  Evaluator evaluator(expression, std::move(environment));
  ASSIGN_OR_RETURN(Value value, evaluator.Eval(*tree));
  return *value;
}

}  // namespace

json ExpressionEnvironment(const TagScope& scope) {
  json environment = json::object();
  for (const auto& [key, value] : scope) {
    const std::vector<absl::string_view> parts = absl::StrSplit(key, '.');
    if (parts.size() > kMaxKeySegments) continue;
    json* node = &environment;
    for (size_t i = 0; i + 1 < parts.size(); ++i) {
      const std::string part(parts[i]);
      json& child = (*node)[part];
      if (!child.is_object()) child = json::object();  // the nested map wins over a value
      node = &child;
    }
    const std::string last(parts.back());
    json& leaf = (*node)[last];
    if (leaf.is_object()) continue;  // "a" after "a.b" (scopes are sorted, but be sure)
    leaf = value;
  }
  return environment;
}

absl::StatusOr<json> EvaluateExpression(std::string_view expression, const TagScope& scope) {
  return Evaluate(expression, std::make_shared<const json>(ExpressionEnvironment(scope)));
}

absl::StatusOr<json> EvaluateExpressionIn(std::string_view expression, const json& environment) {
  // Borrowed for the duration of the call: an aliasing pointer with no owner.
  return Evaluate(expression, Value(Value(), &environment));
}

absl::Status CheckExpressionSyntax(std::string_view expression) {
  return Parse(expression).status();
}

std::string ExpressionValueText(const json& value) {
  if (value.is_string()) return value.get<std::string>();
  if (value.is_null()) return "";
  absl::StatusOr<std::string> text = internal::GoJson(value, /*escape_html=*/false);
  return text.ok() ? *text : internal::GoText(value);
}

}  // namespace dagd::engine
