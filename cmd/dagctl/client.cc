#include "cmd/dagctl/client.h"

#include <algorithm>
#include <initializer_list>
#include <thread>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "cmd/dagctl/format.h"

namespace dagd::dagctl {

Client::Client(ClientOptions options)
    : options_(std::move(options)),
      channel_(grpc::CreateChannel(options_.server, grpc::InsecureChannelCredentials())),
      runs_(v1::RunService::NewStub(channel_)),
      workflows_(v1::WorkflowService::NewStub(channel_)) {}

std::unique_ptr<grpc::ClientContext> Client::UnaryContext() const {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(std::chrono::system_clock::now() + options_.timeout);
  return context;
}

std::string StatusCodeName(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK:
      return "OK";
    case grpc::StatusCode::CANCELLED:
      return "CANCELLED";
    case grpc::StatusCode::UNKNOWN:
      return "UNKNOWN";
    case grpc::StatusCode::INVALID_ARGUMENT:
      return "INVALID_ARGUMENT";
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return "DEADLINE_EXCEEDED";
    case grpc::StatusCode::NOT_FOUND:
      return "NOT_FOUND";
    case grpc::StatusCode::ALREADY_EXISTS:
      return "ALREADY_EXISTS";
    case grpc::StatusCode::PERMISSION_DENIED:
      return "PERMISSION_DENIED";
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return "RESOURCE_EXHAUSTED";
    case grpc::StatusCode::FAILED_PRECONDITION:
      return "FAILED_PRECONDITION";
    case grpc::StatusCode::ABORTED:
      return "ABORTED";
    case grpc::StatusCode::OUT_OF_RANGE:
      return "OUT_OF_RANGE";
    case grpc::StatusCode::UNIMPLEMENTED:
      return "UNIMPLEMENTED";
    case grpc::StatusCode::INTERNAL:
      return "INTERNAL";
    case grpc::StatusCode::UNAVAILABLE:
      return "UNAVAILABLE";
    case grpc::StatusCode::DATA_LOSS:
      return "DATA_LOSS";
    case grpc::StatusCode::UNAUTHENTICATED:
      return "UNAUTHENTICATED";
    default:
      return absl::StrCat("CODE_", static_cast<int>(code));
  }
}

std::string UnreachableReason(const grpc::Status& status) {
  if (status.error_code() != grpc::StatusCode::UNAVAILABLE) return "";
  const std::string message = absl::AsciiStrToLower(status.error_message());
  // gRPC's words when no connection could be made (as opposed to dagd answering UNAVAILABLE).
  for (const auto& [needle, reason] : std::initializer_list<std::pair<const char*, const char*>>{
           {"connection refused", "connection refused"},
           {"dns resolution failed", "name not resolved"},
           {"name or service not known", "name not resolved"},
           {"no route to host", "no route to host"},
           {"network is unreachable", "network unreachable"},
           {"connection timed out", "connection timed out"},
           {"failed to connect", "cannot connect"},
           {"connections to all backends failing", "cannot connect"}}) {
    if (message.find(needle) != std::string::npos) return reason;
  }
  return "";
}

std::string FormatRpcError(const grpc::Status& status, const std::string& server) {
  if (const std::string reason = UnreachableReason(status); !reason.empty()) {
    return absl::StrCat("cannot reach dagd at ", server, " (", reason,
                        "); is dagd running? set --server HOST:PORT or DAGD_SERVER");
  }
  std::string out = absl::StrCat(StatusCodeName(status.error_code()), ": ", status.error_message());
  if (status.error_code() == grpc::StatusCode::UNAVAILABLE) {
    absl::StrAppend(&out, " (server ", server,
                    "; choose another with --server HOST:PORT or DAGD_SERVER)");
  }
  // gRPC's own words when a request is over the server's receive limit.
  if (status.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED &&
      status.error_message().find("larger than max") != std::string::npos) {
    absl::StrAppend(&out,
                    " (the request is larger than dagd accepts: make the bundle smaller, or "
                    "raise dagd's --max-bundle-bytes)");
  }
  return out;
}

grpc::Status WatchRunEvents(
    Client& client, const std::string& run_id, int64_t after_sequence, bool ansible_events,
    const WatchOptions& options, const std::function<void(const v1::RunEvent&)>& on_event,
    const std::function<void(const grpc::Status&, std::chrono::milliseconds)>& on_retry) {
  int64_t last_sequence = after_sequence;
  int64_t last_ansible_sequence = 0;
  int failures = 0;
  std::chrono::milliseconds backoff = options.initial_backoff;
  while (true) {
    v1::WatchRunRequest request;
    request.set_run_id(run_id);
    request.set_after_sequence(last_sequence);
    request.set_ansible_events(ansible_events);
    request.set_after_ansible_sequence(last_ansible_sequence);
    grpc::ClientContext context;
    std::unique_ptr<grpc::ClientReaderInterface<v1::RunEvent>> reader =
        client.runs().WatchRun(&context, request);
    v1::RunEvent event;
    bool progressed = false;
    bool final = false;
    while (!final && reader->Read(&event)) {
      if (event.has_ansible_event()) {
        if (event.ansible_event().sequence() <= last_ansible_sequence) continue;
        last_ansible_sequence = event.ansible_event().sequence();
        progressed = true;
        on_event(event);
        continue;
      }
      // A server that replays from an older sequence must not make us print twice.
      if (event.sequence() <= last_sequence) {
        continue;
      }
      last_sequence = event.sequence();
      progressed = true;
      final = event.final();
      on_event(event);
    }
    if (final) {
      context.TryCancel();
      reader->Finish().IgnoreError();
      return grpc::Status::OK;
    }
    grpc::Status status = reader->Finish();
    if (status.ok()) {
      // The stream ended without the final event: done if the run has nothing newer.
      v1::GetRunRequest get;
      get.set_run_id(run_id);
      v1::Run run;
      std::unique_ptr<grpc::ClientContext> get_context = client.UnaryContext();
      status = client.runs().GetRun(get_context.get(), get, &run);
      if (!status.ok()) {
        return status;
      }
      if (IsFinished(run.phase()) && run.last_sequence() <= last_sequence) {
        return grpc::Status::OK;
      }
      status = grpc::Status(grpc::StatusCode::UNAVAILABLE,
                            "the event stream ended before the run finished");
    } else if (status.error_code() != grpc::StatusCode::UNAVAILABLE) {
      return status;
    }
    if (progressed) {
      failures = 0;
      backoff = options.initial_backoff;
    }
    if (++failures > options.max_retries) {
      return status;
    }
    if (on_retry) {
      on_retry(status, backoff);
    }
    std::this_thread::sleep_for(backoff);
    backoff = std::min(backoff * 2, options.max_backoff);
  }
}

}  // namespace dagd::dagctl
