// JSONPath queries for the expression function `jsonpath(json, path)` (engine/expr.h), read the
// way Argo's library (github.com/evilmonkeyinc/jsonpath) reads them.
//
// Supported: `$`, `.key` and `['key']` / `["key"]`, `[n]` (negative counts from the end),
// `[a:b]` / `[a:]` / `[:b]` / `[a:b:step]` (step > 0), `[*]` / `.*`, unions `[0,2]` /
// `['a','b']`, and filters `[?(…)]` whose conditions compare `@` paths (`@.age`, `@['x-y']`,
// `@[0]`), `$` paths, numbers, strings, true, false and null with == != < <= > >=, combined with
// !, && and || and parentheses. Not supported (InvalidArgument): recursive descent `..`, scripts
// `[(…)]`, arithmetic inside filters.
//
// Results: a path without wildcard, slice, union or filter gives its one value; each of those gives
// an array, the rest of the path applied to every element (elements where it fails are dropped). A
// missing key or an index out of range on the definite part of a path is an error, as it is in
// Argo. Pure; thread-safe.
#ifndef DAGD_ENGINE_INTERNAL_JSONPATH_H_
#define DAGD_ENGINE_INTERNAL_JSONPATH_H_

#include <nlohmann/json.hpp>
#include <string_view>

#include "absl/status/statusor.h"

namespace dagd::engine::internal {

absl::StatusOr<nlohmann::json> JsonPathQuery(const nlohmann::json& document, std::string_view path);

}  // namespace dagd::engine::internal

#endif  // DAGD_ENGINE_INTERNAL_JSONPATH_H_
