#include "cmd/dagctl/client.h"

#include <grpcpp/support/client_interceptor.h>

#include <algorithm>
#include <initializer_list>
#include <mutex>
#include <random>
#include <thread>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "cmd/dagctl/format.h"

namespace dagd::dagctl {

namespace {

// Adds the bearer token and a request id to the initial metadata of every call.
class CallMetadataInterceptor : public grpc::experimental::Interceptor {
 public:
  explicit CallMetadataInterceptor(const std::string* token) : token_(token) {}

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(
            grpc::experimental::InterceptionHookPoints::PRE_SEND_INITIAL_METADATA)) {
      auto* metadata = methods->GetSendInitialMetadata();
      if (!token_->empty()) metadata->emplace("authorization", "Bearer " + *token_);
      metadata->emplace("x-request-id", NewRequestId());
    }
    methods->Proceed();
  }

 private:
  static std::string NewRequestId() {
    static std::mt19937_64 random(std::random_device{}());
    static std::mutex mutex;
    std::lock_guard<std::mutex> lock(mutex);
    return absl::StrFormat("dagctl-%016x%016x", random(), random());
  }

  const std::string* token_;
};

class CallMetadataFactory : public grpc::experimental::ClientInterceptorFactoryInterface {
 public:
  explicit CallMetadataFactory(const std::string* token) : token_(token) {}
  grpc::experimental::Interceptor* CreateClientInterceptor(
      grpc::experimental::ClientRpcInfo*) override {
    return new CallMetadataInterceptor(token_);
  }

 private:
  const std::string* token_;
};

std::shared_ptr<grpc::Channel> NewChannel(const ClientOptions& options) {
  std::shared_ptr<grpc::ChannelCredentials> credentials = grpc::InsecureChannelCredentials();
  grpc::ChannelArguments args;
  if (options.tls) {
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = options.ca_pem;
    ssl.pem_cert_chain = options.cert_pem;
    ssl.pem_private_key = options.key_pem;
    credentials = grpc::SslCredentials(ssl);
    if (!options.tls_server_name.empty()) {
      args.SetSslTargetNameOverride(options.tls_server_name);
    }
  }
  std::vector<std::unique_ptr<grpc::experimental::ClientInterceptorFactoryInterface>> factories;
  factories.push_back(std::make_unique<CallMetadataFactory>(&options.token));
  return grpc::experimental::CreateCustomChannelWithInterceptors(options.server, credentials, args,
                                                                 std::move(factories));
}

}  // namespace

Client::Client(ClientOptions options)
    : options_(std::move(options)),
      channel_(NewChannel(options_)),
      runs_(v1::RunService::NewStub(channel_)),
      workflows_(v1::WorkflowService::NewStub(channel_)),
      audit_(v1::AuditService::NewStub(channel_)) {}

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
  const std::string lower = absl::AsciiStrToLower(status.error_message());
  if (status.error_code() == grpc::StatusCode::UNAVAILABLE &&
      (lower.find("handshake") != std::string::npos || lower.find("ssl") != std::string::npos)) {
    return absl::StrCat("cannot reach dagd at ", server,
                        ": the TLS handshake failed; check --ca-file (the CA of dagd's "
                        "certificate), --tls-server-name, and for mutual TLS --cert-file and "
                        "--key-file");
  }
  if (const std::string reason = UnreachableReason(status); !reason.empty()) {
    return absl::StrCat("cannot reach dagd at ", server, " (", reason,
                        "); is dagd running? set --server HOST:PORT or DAGD_SERVER");
  }
  std::string out = absl::StrCat(StatusCodeName(status.error_code()), ": ", status.error_message());
  if (status.error_code() == grpc::StatusCode::UNAVAILABLE) {
    absl::StrAppend(&out, " (server ", server,
                    "; choose another with --server HOST:PORT or DAGD_SERVER)");
  }
  if (status.error_code() == grpc::StatusCode::UNAUTHENTICATED) {
    absl::StrAppend(&out,
                    " (authenticate with --token-file, DAGD_TOKEN or a client certificate: "
                    "--cert-file and --key-file)");
  }
  if (status.error_code() == grpc::StatusCode::PERMISSION_DENIED) {
    absl::StrAppend(&out, " (roles are granted in dagd's policy file: ask its admin)");
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
