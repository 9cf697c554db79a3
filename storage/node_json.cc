#include "storage/node_json.h"

#include <string>

#include "absl/strings/str_cat.h"

namespace dagd::storage {
namespace {

using engine::AttemptRecord;
using engine::NodePhase;
using engine::NodeState;
using engine::NodeType;
using nlohmann::json;

// Thrown inside NodeStateFromJson for values nlohmann accepts but dagd does not; caught there.
struct BadValue {
  std::string message;
};

NodePhase PhaseField(const json& object, const char* key, NodePhase fallback) {
  if (!object.contains(key)) return fallback;
  const std::string text = object.at(key).get<std::string>();
  NodePhase phase;
  if (!engine::ParseNodePhase(text, &phase)) {
    throw BadValue{absl::StrCat("unknown phase \"", text, "\" in field \"", key, "\"")};
  }
  return phase;
}

json AttemptToJson(const AttemptRecord& attempt) {
  return json{{"number", attempt.number},
              {"phase", engine::NodePhaseName(attempt.phase)},
              {"runner", attempt.runner},
              {"external_name", attempt.external_name},
              {"exit_code", attempt.exit_code},
              {"message", attempt.message},
              {"started_at_ms", attempt.started_at_ms},
              {"finished_at_ms", attempt.finished_at_ms}};
}

AttemptRecord AttemptFromJson(const json& object) {
  AttemptRecord attempt;
  attempt.number = object.value("number", attempt.number);
  attempt.phase = PhaseField(object, "phase", attempt.phase);
  attempt.runner = object.value("runner", attempt.runner);
  attempt.external_name = object.value("external_name", attempt.external_name);
  attempt.exit_code = object.value("exit_code", attempt.exit_code);
  attempt.message = object.value("message", attempt.message);
  attempt.started_at_ms = object.value("started_at_ms", attempt.started_at_ms);
  attempt.finished_at_ms = object.value("finished_at_ms", attempt.finished_at_ms);
  return attempt;
}

}  // namespace

json NodeOutputsToJson(const engine::NodeOutputs& node_outputs) {
  json outputs = {{"parameters", node_outputs.parameters}};
  if (node_outputs.result.has_value()) outputs["result"] = *node_outputs.result;
  if (!node_outputs.artifacts.empty()) outputs["artifacts"] = node_outputs.artifacts;
  return outputs;
}

absl::StatusOr<engine::NodeOutputs> NodeOutputsFromJson(const json& outputs) {
  if (!outputs.is_object()) return absl::InvalidArgumentError("outputs: not a JSON object");
  try {
    engine::NodeOutputs out;
    out.parameters = outputs.value("parameters", out.parameters);
    if (outputs.contains("result")) out.result = outputs.at("result").get<std::string>();
    out.artifacts = outputs.value("artifacts", out.artifacts);
    return out;
  } catch (const json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("outputs: ", e.what()));
  }
}

json NodeStateToJson(const NodeState& node) {
  json attempts = json::array();
  for (const AttemptRecord& attempt : node.attempts) attempts.push_back(AttemptToJson(attempt));
  json outputs = NodeOutputsToJson(node.outputs);
  json input_artifacts = json::object();
  for (const auto& [name, ref] : node.input_artifacts) {
    input_artifacts[name] = {{"key", ref.key}, {"sub_path", ref.sub_path}};
    if (ref.raw) input_artifacts[name]["raw"] = *ref.raw;
  }
  json out = {{"name", node.name},
              {"display_name", node.display_name},
              {"parent", node.parent},
              {"task_name", node.task_name},
              {"template_name", node.template_name},
              {"type", engine::NodeTypeName(node.type)},
              {"phase", engine::NodePhaseName(node.phase)},
              {"message", node.message},
              {"inputs", node.inputs},
              {"input_artifacts", std::move(input_artifacts)},
              {"outputs", std::move(outputs)},
              {"attempts", std::move(attempts)},
              {"children", node.children},
              {"started_at_ms", node.started_at_ms},
              {"finished_at_ms", node.finished_at_ms},
              {"retry_at_ms", node.retry_at_ms},
              {"resume_at_ms", node.resume_at_ms}};
  if (node.item.has_value()) out["item"] = *node.item;
  return out;
}

absl::StatusOr<NodeState> NodeStateFromJson(const json& object) {
  try {
    if (!object.is_object()) throw BadValue{"a node must be a JSON object"};
    NodeState node;
    node.name = object.value("name", node.name);
    node.display_name = object.value("display_name", node.display_name);
    node.parent = object.value("parent", node.parent);
    node.task_name = object.value("task_name", node.task_name);
    node.template_name = object.value("template_name", node.template_name);
    if (object.contains("type")) {
      const std::string type = object.at("type").get<std::string>();
      if (!engine::ParseNodeType(type, &node.type)) {
        throw BadValue{absl::StrCat("unknown node type \"", type, "\"")};
      }
    }
    node.phase = PhaseField(object, "phase", node.phase);
    node.message = object.value("message", node.message);
    node.inputs = object.value("inputs", node.inputs);
    if (object.contains("outputs")) {
      absl::StatusOr<engine::NodeOutputs> outputs = NodeOutputsFromJson(object.at("outputs"));
      if (!outputs.ok()) throw BadValue{std::string(outputs.status().message())};
      node.outputs = *std::move(outputs);
    }
    if (object.contains("input_artifacts")) {
      for (const auto& [name, ref] : object.at("input_artifacts").items()) {
        engine::ArtifactRef& artifact = node.input_artifacts[name];
        artifact.key = ref.value("key", "");
        artifact.sub_path = ref.value("sub_path", "");
        if (ref.contains("raw")) artifact.raw = ref.at("raw").get<std::string>();
      }
    }
    if (object.contains("attempts")) {
      for (const json& attempt : object.at("attempts")) {
        node.attempts.push_back(AttemptFromJson(attempt));
      }
    }
    node.children = object.value("children", node.children);
    if (object.contains("item")) node.item = object.at("item");
    node.started_at_ms = object.value("started_at_ms", node.started_at_ms);
    node.finished_at_ms = object.value("finished_at_ms", node.finished_at_ms);
    node.retry_at_ms = object.value("retry_at_ms", node.retry_at_ms);
    node.resume_at_ms = object.value("resume_at_ms", node.resume_at_ms);
    return node;
  } catch (const BadValue& e) {
    return absl::InvalidArgumentError(absl::StrCat("bad node JSON: ", e.message));
  } catch (const json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("bad node JSON: ", e.what()));
  }
}

}  // namespace dagd::storage
