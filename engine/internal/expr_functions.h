// The functions Argo's expression language (engine/expr.h) calls with plain values: expr-lang's
// builtins (len, split, toJSON, …), Argo's additions (asInt, asFloat, toJson, jsonpath) and
// sprig's, named "sprig.<name>". The builtins that take a predicate (filter, map, …) are the
// evaluator's own, in engine/expr.cc. Also the few value helpers the two share. Pure; thread-safe.
#ifndef DAGD_ENGINE_INTERNAL_EXPR_FUNCTIONS_H_
#define DAGD_ENGINE_INTERNAL_EXPR_FUNCTIONS_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace dagd::engine::internal {

// A value during evaluation: shared and immutable, so that a member of a value can alias it
// instead of copying it (the alias keeps the whole value alive).
using ExprValue = std::shared_ptr<const nlohmann::json>;

struct ExprFunction {
  int min_args;
  int max_args;  // -1: any number
  // The result, or InvalidArgument saying what is wrong with the arguments; the caller adds the
  // function's name and the position in the expression.
  absl::StatusOr<nlohmann::json> (*call)(const std::vector<ExprValue>& args);
};

// The function called `name` ("len", "asInt", "sprig.add"), or nullptr if there is none.
const ExprFunction* FindExprFunction(std::string_view name);

// expr-lang's name for the type of `value`: nil, bool, int, float, string, array or map.
std::string ExprTypeName(const nlohmann::json& value);

// Go's int(f): truncated toward zero, saturated at the int64 range, NaN as 0.
int64_t TruncateToInt(double value);

// JSON text read the way Go's encoding/json reads it into an `any`: every number a float.
// InvalidArgument for text that is not JSON or that nests more than 256 levels deep.
absl::StatusOr<nlohmann::json> ParseGoJson(std::string_view text);

// The longest string an expression may build.
inline constexpr size_t kMaxExprTextBytes = size_t{16} << 20;

}  // namespace dagd::engine::internal

#endif  // DAGD_ENGINE_INTERNAL_EXPR_FUNCTIONS_H_
