#include "engine/limits.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace dagd::engine {
namespace {

absl::Status Check(std::string_view expression, const std::string& where, const std::string& what,
                   const ExpressionLimits& limits) {
  if (expression.size() > limits.max_bytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        where, ": ", what, " of ", expression.size(), " bytes; the limit is ", limits.max_bytes,
        " (dagd --max-expression-bytes): split it, or compute "
        "the value in a step and pass it as a parameter"));
  }
  if (const int depth = ExpressionNesting(expression); depth > limits.max_nesting) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": ", what, " nested ", depth, " brackets deep; the limit is ",
                     limits.max_nesting, " (dagd --max-expression-nesting)"));
  }
  return absl::OkStatus();
}

}  // namespace

int ExpressionNesting(std::string_view expression) {
  int depth = 0;
  int deepest = 0;
  char quote = 0;
  for (size_t i = 0; i < expression.size(); ++i) {
    const char c = expression[i];
    if (quote != 0) {
      if (c == '\\' && quote != '`') {
        ++i;  // an escaped character, the quote included
      } else if (c == quote) {
        quote = 0;
      }
      continue;
    }
    if (c == '{' && i + 1 < expression.size() && expression[i + 1] == '{') {
      // A {{tag}} of a `when`, substituted before it is evaluated: not a bracket of its own.
      const size_t close = expression.find("}}", i + 2);
      if (close == std::string_view::npos) break;
      i = close + 1;
    } else if (c == '\'' || c == '"' || c == '`') {
      quote = c;
    } else if (c == '(' || c == '[' || c == '{') {
      deepest = std::max(deepest, ++depth);
    } else if ((c == ')' || c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return deepest;
}

absl::Status CheckExpressionLimits(std::string_view yaml, const Workflow& workflow,
                                   const std::string& file, const ExpressionLimits& limits) {
  for (size_t start = yaml.find("{{="); start != std::string_view::npos;
       start = yaml.find("{{=", start + 3)) {
    const size_t end = yaml.find("}}", start + 3);
    const std::string_view expression = yaml.substr(
        start + 3, end == std::string_view::npos ? std::string_view::npos : end - start - 3);
    const size_t line = 1 + std::count(yaml.begin(), yaml.begin() + start, '\n');
    if (absl::Status st =
            Check(expression, absl::StrCat(file, ":", line), "a {{= }} expression", limits);
        !st.ok()) {
      return st;
    }
    if (end == std::string_view::npos) break;
  }
  for (const Template& tmpl : workflow.templates) {
    auto check_task = [&](const DagTask& task, const std::string& where) -> absl::Status {
      if (absl::Status st = Check(task.when, where, "when", limits); !st.ok()) return st;
      return Check(task.depends, where, "depends", limits);
    };
    if (tmpl.dag) {
      for (const DagTask& task : tmpl.dag->tasks) {
        if (absl::Status st = check_task(
                task, absl::StrCat(file, ": template ", tmpl.name, ", task ", task.name));
            !st.ok()) {
          return st;
        }
      }
    }
    if (tmpl.steps) {
      for (const auto& group : tmpl.steps->groups) {
        for (const DagTask& step : group) {
          if (absl::Status st = check_task(
                  step, absl::StrCat(file, ": template ", tmpl.name, ", step ", step.name));
              !st.ok()) {
            return st;
          }
        }
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace dagd::engine
