// NodeState <-> JSON, the form in which the store keeps a node (and may show it to tools).
//
// Every field of engine::NodeState is written. Reading is tolerant in one direction only: a
// missing field takes its default (so nodes written before a field existed still load), an
// unknown field is ignored, but a field of the wrong type or an unknown phase / node type is an
// error. Pure functions; safe from any thread.
#ifndef DAGD_STORAGE_NODE_JSON_H_
#define DAGD_STORAGE_NODE_JSON_H_

#include <nlohmann/json.hpp>

#include "absl/status/statusor.h"
#include "engine/run_state.h"

namespace dagd::storage {

nlohmann::json NodeStateToJson(const engine::NodeState& node);

// A node's outputs alone (as NodeStateToJson writes them; memoization cache entries).
nlohmann::json NodeOutputsToJson(const engine::NodeOutputs& outputs);
absl::StatusOr<engine::NodeOutputs> NodeOutputsFromJson(const nlohmann::json& json);

// InvalidArgument naming the field if `json` is not a NodeState written by NodeStateToJson().
absl::StatusOr<engine::NodeState> NodeStateFromJson(const nlohmann::json& json);

}  // namespace dagd::storage

#endif  // DAGD_STORAGE_NODE_JSON_H_
