#include "server/convert.h"

#include <google/protobuf/util/time_util.h>
#include <grpcpp/server_context.h>
#include <grpcpp/support/server_callback.h>

#include <cstdlib>
#include <map>
#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "engine/yaml_json.h"

namespace dagd::server {
namespace {

void SetTime(int64_t ms, google::protobuf::Timestamp* out) {
  if (ms <= 0) return;
  *out = google::protobuf::util::TimeUtil::MillisecondsToTimestamp(ms);
}

v1::NodeType ToProtoType(engine::NodeType type) {
  switch (type) {
    case engine::NodeType::kDag:
      return v1::NODE_TYPE_DAG;
    case engine::NodeType::kTaskGroup:
      return v1::NODE_TYPE_TASK_GROUP;
    case engine::NodeType::kPod:
      return v1::NODE_TYPE_POD;
    case engine::NodeType::kSteps:
      return v1::NODE_TYPE_STEPS;
    case engine::NodeType::kStepGroup:
      return v1::NODE_TYPE_STEP_GROUP;
    case engine::NodeType::kSuspend:
      return v1::NODE_TYPE_SUSPEND;
    case engine::NodeType::kRetry:
      return v1::NODE_TYPE_RETRY;
  }
  return v1::NODE_TYPE_UNSPECIFIED;
}

}  // namespace

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message()));
}

grpc::ServerUnaryReactor* Done(grpc::CallbackServerContext* context, const absl::Status& status) {
  auto* reactor = context->DefaultReactor();
  reactor->Finish(ToGrpcStatus(status));
  return reactor;
}

v1::Phase ToProtoPhase(engine::NodePhase phase) {
  switch (phase) {
    case engine::NodePhase::kPending:
      return v1::PHASE_PENDING;
    case engine::NodePhase::kRunning:
      return v1::PHASE_RUNNING;
    case engine::NodePhase::kSucceeded:
      return v1::PHASE_SUCCEEDED;
    case engine::NodePhase::kFailed:
      return v1::PHASE_FAILED;
    case engine::NodePhase::kError:
      return v1::PHASE_ERROR;
    case engine::NodePhase::kSkipped:
      return v1::PHASE_SKIPPED;
    case engine::NodePhase::kOmitted:
      return v1::PHASE_OMITTED;
  }
  return v1::PHASE_UNSPECIFIED;
}

bool FromProtoPhase(v1::Phase phase, engine::NodePhase* out) {
  switch (phase) {
    case v1::PHASE_PENDING:
      *out = engine::NodePhase::kPending;
      return true;
    case v1::PHASE_RUNNING:
      *out = engine::NodePhase::kRunning;
      return true;
    case v1::PHASE_SUCCEEDED:
      *out = engine::NodePhase::kSucceeded;
      return true;
    case v1::PHASE_FAILED:
      *out = engine::NodePhase::kFailed;
      return true;
    case v1::PHASE_ERROR:
      *out = engine::NodePhase::kError;
      return true;
    case v1::PHASE_SKIPPED:
      *out = engine::NodePhase::kSkipped;
      return true;
    case v1::PHASE_OMITTED:
      *out = engine::NodePhase::kOmitted;
      return true;
    default:
      return false;
  }
}

void ToProto(const storage::WorkflowRecord& record, v1::Workflow* out) {
  out->set_name(record.name);
  out->set_version(record.version);
  out->set_yaml(record.yaml);
  out->set_spec_sha256(record.spec_sha256);
  out->set_entrypoint(record.entrypoint);
  out->set_bundle_digest(record.bundle.digest);
  out->set_bundle_files(static_cast<int32_t>(record.bundle.file_count));
  out->set_bundle_bytes(record.bundle.total_bytes);
  out->set_namespace_(record.namespace_name);
  SetTime(record.created_at_ms, out->mutable_create_time());
  // Every stored version parsed when it was applied; the kind is read back from its YAML.
  absl::StatusOr<nlohmann::json> document = engine::YamlToJson(record.yaml, record.name);
  if (document.ok() && document->is_object() && document->contains("kind") &&
      (*document)["kind"].is_string()) {
    out->set_kind((*document)["kind"].get<std::string>());
  }
}

void ToProto(const engine::AttemptRecord& a, v1::Attempt* attempt) {
  attempt->set_number(a.number);
  attempt->set_phase(ToProtoPhase(a.phase));
  attempt->set_runner(a.runner);
  attempt->set_external_name(a.external_name);
  attempt->set_exit_code(a.exit_code);
  attempt->set_message(a.message);
  SetTime(a.started_at_ms, attempt->mutable_start_time());
  SetTime(a.finished_at_ms, attempt->mutable_finish_time());
}

void ToProto(const engine::NodeState& node, v1::Node* out) {
  out->set_name(node.name);
  out->set_display_name(node.display_name);
  out->set_parent(node.parent);
  out->set_template_name(node.template_name);
  out->set_type(ToProtoType(node.type));
  out->set_phase(ToProtoPhase(node.phase));
  out->set_message(node.message);
  SetTime(node.started_at_ms, out->mutable_start_time());
  SetTime(node.finished_at_ms, out->mutable_finish_time());
  for (const auto& [k, v] : node.inputs) (*out->mutable_inputs())[k] = v;
  for (const auto& [k, v] : node.outputs.parameters) (*out->mutable_output_parameters())[k] = v;
  for (const auto& [name, ref] : node.input_artifacts) {
    (*out->mutable_input_artifacts())[name] = ref.raw                ? "raw"
                                              : ref.sub_path.empty() ? ref.key
                                                                     : ref.key + ":" + ref.sub_path;
  }
  for (const auto& [k, v] : node.outputs.artifacts) (*out->mutable_output_artifacts())[k] = v;
  if (node.outputs.result) out->set_result(*node.outputs.result);
  for (const auto& a : node.attempts) ToProto(a, out->add_attempts());
  if (node.type == engine::NodeType::kRetry) {
    for (size_t i = 0; i < node.attempts.size(); ++i) {
      out->add_children(RetryChildName(node.name, static_cast<int>(i)));
    }
  }
  for (const auto& child : node.children) out->add_children(child);
}

std::string RetryChildName(const std::string& node, int index) {
  return absl::StrCat(node, "(", index, ")");
}

namespace {

void AddRetryChildren(const engine::NodeState& node, v1::Run* out) {
  if (node.type != engine::NodeType::kRetry) return;
  for (size_t i = 0; i < node.attempts.size(); ++i) {
    const engine::AttemptRecord& a = node.attempts[i];
    v1::Node* child = out->add_nodes();
    child->set_name(RetryChildName(node.name, static_cast<int>(i)));
    child->set_display_name(RetryChildName(node.display_name, static_cast<int>(i)));
    child->set_parent(node.name);
    child->set_template_name(node.template_name);
    child->set_type(v1::NODE_TYPE_POD);
    child->set_phase(ToProtoPhase(a.phase));
    child->set_message(a.message);
    SetTime(a.started_at_ms, child->mutable_start_time());
    SetTime(a.finished_at_ms, child->mutable_finish_time());
    for (const auto& [k, v] : node.inputs) (*child->mutable_inputs())[k] = v;
    ToProto(a, child->add_attempts());
    // The outputs are those of the attempt that succeeded: the last one.
    if (i + 1 == node.attempts.size() && a.phase == engine::NodePhase::kSucceeded) {
      for (const auto& [k, v] : node.outputs.parameters)
        (*child->mutable_output_parameters())[k] = v;
      for (const auto& [k, v] : node.outputs.artifacts) (*child->mutable_output_artifacts())[k] = v;
      if (node.outputs.result) child->set_result(*node.outputs.result);
    }
  }
}

}  // namespace

void ToProto(const storage::RunRecord& record, const std::vector<engine::NodeState>& nodes,
             v1::Run* out) {
  out->set_id(record.id);
  out->set_workflow_name(record.workflow_name);
  out->set_workflow_version(record.workflow_version);
  out->set_phase(ToProtoPhase(record.phase));
  out->set_message(record.message);
  for (const auto& [k, v] : record.parameters) (*out->mutable_parameters())[k] = v;
  out->set_request_id(record.request_id);
  out->set_namespace_(record.namespace_name);
  out->set_submitted_by(record.submitted_by);
  SetTime(record.created_at_ms, out->mutable_create_time());
  SetTime(record.started_at_ms, out->mutable_start_time());
  SetTime(record.finished_at_ms, out->mutable_finish_time());
  out->set_last_sequence(record.last_sequence);
  out->set_bundle_digest(record.bundle_digest);
  for (const auto& [k, v] : record.labels) (*out->mutable_labels())[k] = v;
  for (const auto& node : nodes) {
    ToProto(node, out->add_nodes());
    AddRetryChildren(node, out);
  }
}

void ToProto(const storage::EventRecord& event, v1::RunEvent* out) {
  out->set_sequence(event.sequence);
  SetTime(event.time_ms, out->mutable_time());
  out->set_node_name(event.node_name);
  out->set_type(event.type);
  out->set_phase(ToProtoPhase(event.phase));
  out->set_message(event.message);
  out->set_attempt(event.attempt);
  out->set_final(event.type == "RunPhase" && engine::IsFinal(event.phase));
}

void ToProto(const storage::LogChunkRecord& chunk, v1::LogChunk* out) {
  out->set_attempt(chunk.attempt);
  out->set_stream(chunk.stream);
  out->set_data(chunk.data);
  SetTime(chunk.time_ms, out->mutable_time());
  out->set_node_name(chunk.node_name);
}

void ToProto(const storage::AnsibleEventRecord& event, v1::AnsibleEvent* out) {
  out->set_sequence(event.sequence);
  SetTime(event.time_ms, out->mutable_time());
  out->set_node_name(event.node_name);
  out->set_attempt(event.attempt);
  out->set_kind(event.kind);
  out->set_play(event.play);
  out->set_task(event.task);
  out->set_host(event.host);
  out->set_changed(event.changed);
  out->set_failed(event.failed);
  out->set_item(event.item);
  out->set_result_json(event.payload);
}

void SetAnsibleRecaps(const std::vector<storage::AnsibleEventRecord>& stats_events, v1::Run* run) {
  std::map<std::string, v1::AnsibleRecap> recaps;  // by node name
  for (const storage::AnsibleEventRecord& event : stats_events) {
    nlohmann::json payload = nlohmann::json::parse(event.payload, nullptr, false);
    if (!payload.is_object()) continue;
    auto stats = payload.find("stats");
    if (stats == payload.end() || !stats->is_object()) continue;
    v1::AnsibleRecap recap;
    recap.set_attempt(event.attempt);
    for (const auto& [host, counts] : stats->items()) {
      if (!counts.is_object()) continue;
      auto count = [&counts](const char* key) {
        auto it = counts.find(key);
        return it != counts.end() && it->is_number_integer() ? it->get<int32_t>() : 0;
      };
      recap.set_ok(recap.ok() + count("ok"));
      recap.set_changed(recap.changed() + count("changed"));
      recap.set_unreachable(recap.unreachable() + count("unreachable"));
      recap.set_failed(recap.failed() + count("failures"));
      recap.set_skipped(recap.skipped() + count("skipped"));
      recap.set_rescued(recap.rescued() + count("rescued"));
      recap.set_ignored(recap.ignored() + count("ignored"));
    }
    auto [it, inserted] = recaps.emplace(event.node_name, recap);
    if (!inserted && it->second.attempt() <= recap.attempt()) it->second = recap;
  }
  for (v1::Node& node : *run->mutable_nodes()) {
    auto it = recaps.find(node.name());
    if (it != recaps.end()) *node.mutable_ansible_recap() = it->second;
  }
}

v1::Diagnostic ToDiagnostic(const absl::Status& status, const std::string& file) {
  v1::Diagnostic d;
  d.set_file(file);
  std::string text(status.message());
  // "<file>:<line>:<col>: <field>: <message>" — the file name itself may hold no ": ".
  std::vector<std::string> parts = absl::StrSplit(text, absl::MaxSplits(": ", 2));
  if (parts.size() >= 2) {
    std::vector<std::string> where = absl::StrSplit(parts[0], ':');
    if (where.size() >= 3) {
      d.set_file(where[0]);
      d.set_line(std::atoi(where[1].c_str()));
      d.set_column(std::atoi(where[2].c_str()));
      // A field path has no spaces: "<file>:<l>:<c>: malformed YAML: …" names no field.
      if (parts.size() == 3 && parts[1].find(' ') == std::string::npos) {
        d.set_field(parts[1]);
        d.set_message(parts[2]);
      } else {
        d.set_message(text.substr(parts[0].size() + 2));
      }
      return d;
    }
  }
  d.set_message(text);
  return d;
}

}  // namespace dagd::server
