// The connection from dagctl to one dagd server, and the resuming watch of a run's events.
//
// A Client owns one channel and the two service stubs on it. It is thread-compatible: dagctl
// uses it from its main thread only.
#ifndef DAGD_CMD_DAGCTL_CLIENT_H_
#define DAGD_CMD_DAGCTL_CLIENT_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "dagd/v1/audit.grpc.pb.h"
#include "dagd/v1/run.grpc.pb.h"
#include "dagd/v1/workflow.grpc.pb.h"
#include "grpcpp/grpcpp.h"

namespace dagd::dagctl {

struct ClientOptions {
  // host:port of the dagd server.
  std::string server = "127.0.0.1:7233";
  // The deadline of each unary call; streams have none.
  std::chrono::milliseconds timeout{std::chrono::seconds(30)};
  // TLS: the server's certificate verified against ca_pem (empty: the system's CAs), for the
  // name tls_server_name (empty: the host of `server`). A client certificate (cert_pem and
  // key_pem) for mutual TLS. Without `tls`, plaintext.
  bool tls = false;
  std::string ca_pem;
  std::string cert_pem;
  std::string key_pem;
  std::string tls_server_name;
  // Sent as "authorization: Bearer TOKEN" with every call; empty: none.
  std::string token;
};

class Client {
 public:
  // Connects lazily, over TLS or in plaintext as `options` say. Every call carries the token
  // (if any) and a fresh x-request-id, which dagd's audit log records.
  explicit Client(ClientOptions options);

  v1::RunService::StubInterface& runs() { return *runs_; }
  v1::WorkflowService::StubInterface& workflows() { return *workflows_; }
  v1::AuditService::StubInterface& audit() { return *audit_; }
  const ClientOptions& options() const { return options_; }

  // A fresh context for one unary call, its deadline `timeout` from now.
  std::unique_ptr<grpc::ClientContext> UnaryContext() const;

 private:
  ClientOptions options_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::RunService::StubInterface> runs_;
  std::unique_ptr<v1::WorkflowService::StubInterface> workflows_;
  std::unique_ptr<v1::AuditService::StubInterface> audit_;
};

// The canonical name of a gRPC status code: "NOT_FOUND", "UNAVAILABLE", …
std::string StatusCodeName(grpc::StatusCode code);

// Why no connection to the server could be made ("connection refused", "name not resolved", …),
// from an UNAVAILABLE status gRPC made up itself; "" for any other status.
std::string UnreachableReason(const grpc::Status& status);

// The line dagctl prints for a failed call, without "dagctl: " or a newline:
// "NOT_FOUND: no run x". When the server cannot be reached: "cannot reach dagd at SERVER
// (connection refused); is dagd running? set --server HOST:PORT or DAGD_SERVER". Another
// UNAVAILABLE also names `server` and how to choose another one.
std::string FormatRpcError(const grpc::Status& status, const std::string& server);

struct WatchOptions {
  // Broken streams tolerated in a row; a stream that delivers an event resets the count.
  int max_retries = 5;
  // The wait before the first reconnect, doubled per retry up to max_backoff.
  std::chrono::milliseconds initial_backoff{500};
  std::chrono::milliseconds max_backoff{std::chrono::seconds(8)};
};

// Streams the events of run `run_id` with a sequence greater than `after_sequence` to
// `on_event`, in order and each exactly once, until the run's final event.
//
// When the stream breaks (UNAVAILABLE, or an end before the final event) it reconnects from
// the last sequence delivered, calling `on_retry` (may be empty) with the cause and the wait
// before it. A stream that ends early for a run that is already finished, with nothing newer
// than what was delivered, counts as done.
//
// With `ansible_events`, the run's Ansible events come too (RunEvent.ansible_event set), each
// exactly once across reconnects.
//
// Returns OK after the final event, or the error that ended the watch: a non-retryable one
// (NOT_FOUND, …) or the last one once `max_retries` is exhausted.
grpc::Status WatchRunEvents(
    Client& client, const std::string& run_id, int64_t after_sequence, bool ansible_events,
    const WatchOptions& options, const std::function<void(const v1::RunEvent&)>& on_event,
    const std::function<void(const grpc::Status&, std::chrono::milliseconds)>& on_retry);

}  // namespace dagd::dagctl

#endif  // DAGD_CMD_DAGCTL_CLIENT_H_
