// Conversions between dagd's internal records (engine/, storage/) and the dagd.v1 protos, and
// between absl::Status and grpc::Status. Pure functions; thread-safe.
#ifndef DAGD_SERVER_CONVERT_H_
#define DAGD_SERVER_CONVERT_H_

#include <grpcpp/support/status.h>

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "dagd/v1/run.pb.h"
#include "dagd/v1/workflow.pb.h"
#include "storage/store.h"

namespace grpc {
class CallbackServerContext;
class ServerUnaryReactor;
}  // namespace grpc

namespace dagd::server {

// absl and gRPC share canonical codes, so the code is kept as it is.
grpc::Status ToGrpcStatus(const absl::Status& status);

// Finishes a unary call of the callback API with `status` and returns its reactor, for a
// handler's `return Done(context, status);`.
grpc::ServerUnaryReactor* Done(grpc::CallbackServerContext* context, const absl::Status& status);

v1::Phase ToProtoPhase(engine::NodePhase phase);
// PHASE_UNSPECIFIED is not a phase: returns false.
bool FromProtoPhase(v1::Phase phase, engine::NodePhase* out);

void ToProto(const storage::WorkflowRecord& record, v1::Workflow* out);
void ToProto(const engine::AttemptRecord& attempt, v1::Attempt* out);
// A Retry node (engine::NodeType::kRetry) lists its attempts' nodes (RetryChildName) first
// among its children.
void ToProto(const engine::NodeState& node, v1::Node* out);
// `nodes` may be empty (ListRuns). Each Retry node is followed by one Pod node per attempt, as
// Argo shows retries: "<node>(0)", "<node>(1)", … with that attempt's phase, message, times and
// exit code, the node's inputs, and its outputs on the last attempt if that one succeeded.
void ToProto(const storage::RunRecord& record, const std::vector<engine::NodeState>& nodes,
             v1::Run* out);
// "<node>(<index>)": the node of the attempt numbered index + 1 of the Retry node `node`.
std::string RetryChildName(const std::string& node, int index);
void ToProto(const storage::EventRecord& event, v1::RunEvent* out);
void ToProto(const storage::LogChunkRecord& chunk, v1::LogChunk* out);
void ToProto(const storage::AnsibleEventRecord& event, v1::AnsibleEvent* out);
// Sets Node.ansible_recap of `run`'s nodes from their "stats" Ansible events: per node, the
// latest attempt's stats summed over hosts. Events whose payload is not a stats object are
// skipped.
void SetAnsibleRecaps(const std::vector<storage::AnsibleEventRecord>& stats_events, v1::Run* run);

// Splits an engine error "<file>:<line>:<col>: <field>: <message>" into a Diagnostic (an error
// that names no field, such as "<file>:<line>:<col>: malformed YAML: …", keeps `field` empty);
// text without a location goes whole into `message`.
v1::Diagnostic ToDiagnostic(const absl::Status& status, const std::string& file);

}  // namespace dagd::server

#endif  // DAGD_SERVER_CONVERT_H_
