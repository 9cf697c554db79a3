#include "engine/depends.h"

#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace dagd::engine {

// A result a reference asks about; kBare is a name without suffix.
enum class DependsResult {
  kBare,
  kSucceeded,
  kFailed,
  kErrored,
  kSkipped,
  kOmitted,
  kDaemoned,
  kAnySucceeded,
  kAllFailed,
};

struct DependsExpression::Node {
  enum class Kind { kTrue, kRef, kNot, kAnd, kOr };
  Kind kind = Kind::kTrue;
  std::string task;                             // kRef
  DependsResult result = DependsResult::kBare;  // kRef
  // kNot: its one operand. kAnd, kOr: all of theirs, in order -- a chain `A && B && C` is one node,
  // so that no chain, however long, nests (evaluating and freeing the tree recurse on nesting).
  std::vector<std::shared_ptr<const Node>> operands;
};

namespace {

using Node = DependsExpression::Node;
using NodePtr = std::shared_ptr<const Node>;

struct Suffix {
  std::string_view name;
  DependsResult result;
};
constexpr Suffix kSuffixes[] = {
    {"Succeeded", DependsResult::kSucceeded},       {"Failed", DependsResult::kFailed},
    {"Errored", DependsResult::kErrored},           {"Skipped", DependsResult::kSkipped},
    {"Omitted", DependsResult::kOmitted},           {"Daemoned", DependsResult::kDaemoned},
    {"AnySucceeded", DependsResult::kAnySucceeded}, {"AllFailed", DependsResult::kAllFailed},
};

bool IsNameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_';
}

enum class TokenKind { kName, kAnd, kOr, kNot, kOpen, kClose, kEnd };

struct Token {
  TokenKind kind;
  std::string text;  // as written; for kName the name and its suffix, e.g. "A.Failed"
  std::string name;
  DependsResult result = DependsResult::kBare;
  size_t position = 0;  // 1-based
};

// Recursive descent over the token list:
//   or   := and ("||" and)*
//   and  := unary ("&&" unary)*
//   unary:= "!" unary | "(" or ")" | name
class Parser {
 public:
  explicit Parser(std::string_view text) : text_(text) {}

  absl::StatusOr<NodePtr> Parse(std::set<std::string>* tasks) {
    tasks_ = tasks;
    absl::Status lexed = Lex();
    if (!lexed.ok()) return lexed;
    if (tokens_.front().kind == TokenKind::kEnd) return Error(tokens_.front(), "a task name");
    absl::StatusOr<NodePtr> root = ParseOr();
    if (!root.ok()) return root;
    if (Peek().kind != TokenKind::kEnd) return Error(Peek(), "'&&', '||' or the end");
    return root;
  }

 private:
  absl::Status Lex() {
    size_t i = 0;
    while (i < text_.size()) {
      const char c = text_[i];
      const size_t position = i + 1;
      if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
        ++i;
      } else if (text_.substr(i, 2) == "&&") {
        tokens_.push_back({TokenKind::kAnd, "&&", "", DependsResult::kBare, position});
        i += 2;
      } else if (text_.substr(i, 2) == "||") {
        tokens_.push_back({TokenKind::kOr, "||", "", DependsResult::kBare, position});
        i += 2;
      } else if (c == '!') {
        tokens_.push_back({TokenKind::kNot, "!", "", DependsResult::kBare, position});
        ++i;
      } else if (c == '(') {
        tokens_.push_back({TokenKind::kOpen, "(", "", DependsResult::kBare, position});
        ++i;
      } else if (c == ')') {
        tokens_.push_back({TokenKind::kClose, ")", "", DependsResult::kBare, position});
        ++i;
      } else if (IsNameChar(c)) {
        size_t end = i;
        while (end < text_.size() && IsNameChar(text_[end])) ++end;
        Token token{TokenKind::kName, "", std::string(text_.substr(i, end - i)),
                    DependsResult::kBare, position};
        if (end < text_.size() && text_[end] == '.') {
          size_t suffix_end = end + 1;
          while (suffix_end < text_.size() && IsNameChar(text_[suffix_end])) ++suffix_end;
          std::string_view suffix = text_.substr(end + 1, suffix_end - end - 1);
          bool known = false;
          for (const Suffix& s : kSuffixes) {
            if (s.name == suffix) {
              token.result = s.result;
              known = true;
            }
          }
          if (!known) {
            return absl::InvalidArgumentError(absl::StrCat(
                "depends \"", std::string(text_), "\": unknown result '", std::string(suffix),
                "' at position ", end + 2,
                "; expected one of Succeeded, Failed, Errored, Skipped, Omitted, Daemoned, "
                "AnySucceeded, AllFailed"));
          }
          end = suffix_end;
        }
        token.text = std::string(text_.substr(i, end - i));
        tokens_.push_back(std::move(token));
        i = end;
      } else {
        return absl::InvalidArgumentError(absl::StrCat(
            "depends \"", std::string(text_), "\": unexpected '", std::string(1, c),
            "' at position ", position, "; expected a task name, '&&', '||', '!', '(' or ')'"));
      }
    }
    tokens_.push_back({TokenKind::kEnd, "", "", DependsResult::kBare, text_.size() + 1});
    return absl::OkStatus();
  }

  const Token& Peek() const { return tokens_[next_]; }

  absl::Status Error(const Token& token, std::string_view expected) const {
    const std::string found = token.kind == TokenKind::kEnd ? std::string("end of expression")
                                                            : absl::StrCat("'", token.text, "'");
    return absl::InvalidArgumentError(
        absl::StrCat("depends \"", std::string(text_), "\": unexpected ", found, " at position ",
                     token.position, "; expected ", std::string(expected)));
  }

  static NodePtr Operator(Node::Kind kind, std::vector<NodePtr> operands) {
    auto node = std::make_shared<Node>();
    node->kind = kind;
    node->operands = std::move(operands);
    return node;
  }

  // One operand, or a chain of them joined by `op` (one node, see Node::operands).
  absl::StatusOr<NodePtr> ParseChain(TokenKind op, Node::Kind kind,
                                     absl::StatusOr<NodePtr> (Parser::*parse_operand)()) {
    std::vector<NodePtr> operands;
    while (true) {
      absl::StatusOr<NodePtr> operand = (this->*parse_operand)();
      if (!operand.ok()) return operand;
      operands.push_back(*std::move(operand));
      if (Peek().kind != op) break;
      ++next_;
    }
    if (operands.size() == 1) return std::move(operands.front());
    return Operator(kind, std::move(operands));
  }

  absl::StatusOr<NodePtr> ParseOr() {
    return ParseChain(TokenKind::kOr, Node::Kind::kOr, &Parser::ParseAnd);
  }

  absl::StatusOr<NodePtr> ParseAnd() {
    return ParseChain(TokenKind::kAnd, Node::Kind::kAnd, &Parser::ParseUnary);
  }

  absl::StatusOr<NodePtr> ParseUnary() {
    const Token& token = Peek();
    // The parser recurses on '!' and '(': an expression from an untrusted workflow may not nest
    // them deeper than expressions may (engine/expr.h).
    constexpr int kMaxNesting = 100;
    if ((token.kind == TokenKind::kNot || token.kind == TokenKind::kOpen) &&
        depth_ == kMaxNesting) {
      return absl::InvalidArgumentError(absl::StrCat(
          "depends \"", std::string(text_), "\": '", token.text, "' at position ", token.position,
          " nests '(' and '!' more than ", kMaxNesting, " levels deep; simplify the expression"));
    }
    switch (token.kind) {
      case TokenKind::kNot: {
        ++next_;
        ++depth_;
        absl::StatusOr<NodePtr> operand = ParseUnary();
        --depth_;
        if (!operand.ok()) return operand;
        return Operator(Node::Kind::kNot, {*std::move(operand)});
      }
      case TokenKind::kOpen: {
        ++next_;
        ++depth_;
        absl::StatusOr<NodePtr> inner = ParseOr();
        --depth_;
        if (!inner.ok()) return inner;
        if (Peek().kind != TokenKind::kClose) return Error(Peek(), "')'");
        ++next_;
        return inner;
      }
      case TokenKind::kName: {
        ++next_;
        auto node = std::make_shared<Node>();
        node->kind = Node::Kind::kRef;
        node->task = token.name;
        node->result = token.result;
        tasks_->insert(token.name);
        return NodePtr(std::move(node));
      }
      default:
        return Error(token, "a task name, '!' or '('");
    }
  }

  std::string_view text_;
  std::vector<Token> tokens_;
  size_t next_ = 0;
  int depth_ = 0;  // the '!' and '(' being parsed
  std::set<std::string>* tasks_ = nullptr;
};

bool EvaluateRef(const Node& node, const TaskOutcome& outcome) {
  const NodePhase phase = outcome.phase;
  switch (node.result) {
    case DependsResult::kBare:
      return phase == NodePhase::kSucceeded || phase == NodePhase::kSkipped ||
             (outcome.continue_on.failed && phase == NodePhase::kFailed) ||
             (outcome.continue_on.error && phase == NodePhase::kError);
    case DependsResult::kSucceeded:
      return phase == NodePhase::kSucceeded;
    case DependsResult::kFailed:
      return phase == NodePhase::kFailed;
    case DependsResult::kErrored:
      return phase == NodePhase::kError;
    case DependsResult::kSkipped:
      return phase == NodePhase::kSkipped;
    case DependsResult::kOmitted:
      return phase == NodePhase::kOmitted;
    case DependsResult::kDaemoned:
      return false;
    case DependsResult::kAnySucceeded:
      for (NodePhase child : outcome.child_phases) {
        if (child == NodePhase::kSucceeded) return true;
      }
      return false;
    case DependsResult::kAllFailed:
      for (NodePhase child : outcome.child_phases) {
        if (child != NodePhase::kFailed) return false;
      }
      return !outcome.child_phases.empty();
  }
  return false;
}

bool EvaluateNode(const Node& node, const std::function<TaskOutcome(const std::string&)>& outcome) {
  switch (node.kind) {
    case Node::Kind::kTrue:
      return true;
    case Node::Kind::kRef:
      return EvaluateRef(node, outcome(node.task));
    case Node::Kind::kNot:
      return !EvaluateNode(*node.operands.front(), outcome);
    case Node::Kind::kAnd:
      for (const NodePtr& operand : node.operands) {
        if (!EvaluateNode(*operand, outcome)) return false;
      }
      return true;
    case Node::Kind::kOr:
      for (const NodePtr& operand : node.operands) {
        if (EvaluateNode(*operand, outcome)) return true;
      }
      return false;
  }
  return false;
}

}  // namespace

absl::StatusOr<DependsExpression> DependsExpression::Parse(std::string_view text) {
  DependsExpression expression;
  absl::StatusOr<NodePtr> root = Parser(text).Parse(&expression.tasks_);
  if (!root.ok()) return root.status();
  expression.root_ = *std::move(root);
  return expression;
}

DependsExpression DependsExpression::FromDependencies(const std::vector<std::string>& names) {
  DependsExpression expression;
  auto root = std::make_shared<Node>();  // kTrue for no names, kAnd of them all for several
  for (const std::string& name : names) {
    auto ref = std::make_shared<Node>();
    ref->kind = Node::Kind::kRef;
    ref->task = name;
    expression.tasks_.insert(name);
    root->operands.push_back(std::move(ref));
  }
  if (root->operands.size() == 1) {
    expression.root_ = root->operands.front();
  } else {
    if (!root->operands.empty()) root->kind = Node::Kind::kAnd;
    expression.root_ = std::move(root);
  }
  return expression;
}

const std::set<std::string>& DependsExpression::tasks() const { return tasks_; }

bool DependsExpression::Evaluate(
    const std::function<TaskOutcome(const std::string&)>& outcome) const {
  return root_ == nullptr || EvaluateNode(*root_, outcome);
}

}  // namespace dagd::engine
