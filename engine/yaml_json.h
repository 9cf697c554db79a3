// YAML <-> JSON for workflow documents: reading YAML into nlohmann::json with the types its author
// meant (YAML 1.2's core schema for plain scalars; quoted scalars stay strings), and printing
// JSON as block-style YAML that reads back to the same JSON (dagctl export). Pure; thread-safe.
#ifndef DAGD_ENGINE_YAML_JSON_H_
#define DAGD_ENGINE_YAML_JSON_H_

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace YAML {
class Node;
}  // namespace YAML

namespace dagd::engine {

// A plain (unquoted) scalar as YAML 1.2's core schema reads it: null (`~`, `null`, empty),
// booleans (`true`, `False`, …), integers, decimal floats; anything else is a string.
nlohmann::json PlainScalarToJson(const std::string& text);

// A parsed YAML node as JSON: maps, lists, strings, numbers, booleans and null. Plain scalars as
// PlainScalarToJson; quoted or explicitly tagged ones are strings.
nlohmann::json YamlNodeToJson(const YAML::Node& node);

// The first document of `yaml` as JSON. InvalidArgument "<file>:<line>:<col>: …" if it does not
// parse.
absl::StatusOr<nlohmann::json> YamlToJson(std::string_view yaml, std::string_view file_name);

// `value` as block-style YAML (two-space indents, lists at their key's indent, as kubectl
// prints), ending in a newline. Strings stay strings: a string that would read back as another
// type, or that needs escaping, is double-quoted; a multi-line string is a literal block (`|`).
// YamlToJson(JsonToYaml(v)) == v for every v without floats that lose precision.
std::string JsonToYaml(const nlohmann::json& value);

}  // namespace dagd::engine

#endif  // DAGD_ENGINE_YAML_JSON_H_
