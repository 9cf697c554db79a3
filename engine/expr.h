// Argo's expression language: `{{=…}}` tags (engine/tags.h), outputs.parameters[].valueFrom.
// expression, retryStrategy.expression and lifecycle hook expressions. Argo evaluates these with
// expr-lang (github.com/expr-lang/expr); this is the part of that language Argo's workflows use,
// with the functions Argo adds to it.
//
// Variables. The environment is a TagScope expanded on dots, as Argo's expand.Expand does:
// "inputs.parameters.foo" is inputs.parameters.foo, "tasks.flip-coin.outputs.result" is
// tasks['flip-coin'].outputs.result. Where a key is both a value and the prefix of other keys
// ("tasks.A.outputs.parameters" and "tasks.A.outputs.parameters.x"), the nested map wins. Scope
// values stay strings (asInt/asFloat convert them). A name that is not in the environment at all is
// an error ("unknown name"); a missing key of a map is nil.
//
// Language (expr-lang semantics): nil, true, false, ints (42, 0x2A, 1_000), floats (0.5, 1e3),
// 'single', "double" (Go escapes) and `raw` strings, arrays [1, 2], maps {a: 1, 'b-c': 2, (k): 3};
// a.b, a?.b, a['x-y'], a[0], a[-1], a[1:3]; unary ! not - +; + - * / % ** ^ (int / int is a
// float; % needs ints); == != < > <= >= (chained: 1 < x < 3); && and || or; in, not in, matches
// (ECMAScript regular expressions; a leading (?i) is honoured), contains, startsWith, endsWith
// (each may be negated with `not`); a .. b (int ranges); c ? a : b; a ?? b; x | f(y) (pipe);
// comments // and /* */. `.` on nil is an error and `?.` gives nil; the left side of `??` reads
// members leniently — a nil anywhere along `a.b.c`, a missing name or an index out of range there
// gives nil — as expr-lang's deep nil coalescing proposes (issue 573), so
// `tasks.producer.outputs.parameters.msg ?? 'fallback'` works when the producer never ran.
//
// Functions:
//   expr builtins   len abs int float string upper lower trim trimPrefix trimSuffix split join
//                   replace repeat indexOf lastIndexOf hasPrefix hasSuffix max min ceil floor round
//                   toJSON fromJSON toBase64 fromBase64 keys values first last get type reverse
//                   take concat, and with a predicate ({# > 1}, {.name == 'x'}, #index, #acc):
//                   all any none one filter map count find findIndex findLast findLastIndex sum
//                   reduce
//   Argo's          asInt asFloat toJson(v) (compact JSON) jsonpath(jsonText, path) (see
//                   engine/internal/jsonpath.h)
//   sprig.*         date toString int int64 float64 atoi add add1 sub mul div mod max min empty
//                   default coalesce ternary trim trimAll trimPrefix trimSuffix upper lower
//                   contains hasPrefix hasSuffix replace repeat substr nospace join splitList list
//                   b64enc b64dec toJson
// Not supported: let, method calls (now().Unix(), .Seconds()), now/date/duration, the other sprig
// functions, groupBy/sortBy/sort/uniq. sprig.date formats in UTC and needs an RFC 3339 string or
// Unix seconds (there is no clock here; sprig would use the current time for anything else).
//
// Values are nlohmann::json: Go ints are integers, float64s floats (fromJSON and jsonpath give
// floats for every number, as Go's encoding/json does), maps objects.
//
// Errors are InvalidArgument naming the expression and where: "expression 'a +': unexpected end
// at column 4" ("line 2, column 7" in a multi-line expression). Expressions come from untrusted
// workflows, so their length (64 KiB), nesting (100 levels), evaluation steps and the size of
// the values they build are limited, each with an error saying so. Pure functions; thread-safe.
#ifndef DAGD_ENGINE_EXPR_H_
#define DAGD_ENGINE_EXPR_H_

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "engine/tags.h"

namespace dagd::engine {

// Evaluates `expression` with the variables of `scope` (expanded on dots, see above).
absl::StatusOr<nlohmann::json> EvaluateExpression(std::string_view expression,
                                                  const TagScope& scope);

// The same with an environment already built (ExpressionEnvironment, or any JSON object, e.g. one
// holding arrays for Argo's data-template transformations).
absl::StatusOr<nlohmann::json> EvaluateExpressionIn(std::string_view expression,
                                                    const nlohmann::json& environment);

// The environment an expression sees for `scope`: an object of nested objects and strings.
nlohmann::json ExpressionEnvironment(const TagScope& scope);

// OK if `expression` parses and calls known functions with a fitting number of arguments (the
// variables it reads are not checked), else the error evaluation would give. For checking
// workflows before they run.
absl::Status CheckExpressionSyntax(std::string_view expression);

// How an expression's value reads inside a string: a string as it is, nil as "", anything else as
// compact JSON with Go's number format (30 not 30.0, 35.8, 1e+21; NaN and infinities as Go prints
// them). Note that Argo itself prints arrays and maps with Go's %v ("[a b]", "map[k:v]"); dagd
// prints JSON, which a later step can parse.
std::string ExpressionValueText(const nlohmann::json& value);

}  // namespace dagd::engine

#endif  // DAGD_ENGINE_EXPR_H_
