#include "server/access.h"

#include <grpcpp/grpcpp.h>
#include <grpcpp/support/server_interceptor.h>
#include <spdlog/spdlog.h>

#include <cctype>
#include <chrono>
#include <cstdlib>
#include <random>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "logging/log.h"
#include "server/convert.h"
#include "server/grpc_metrics.h"

namespace dagd::server {
namespace {

using auth::Role;

constexpr RpcRule kRules[] = {
    {"/dagd.v1.WorkflowService/CreateWorkflow", Role::kAdmin, true},
    {"/dagd.v1.WorkflowService/GetWorkflow", Role::kViewer, false},
    {"/dagd.v1.WorkflowService/ListWorkflows", Role::kViewer, false},
    {"/dagd.v1.WorkflowService/DeleteWorkflow", Role::kAdmin, true},
    {"/dagd.v1.WorkflowService/LintWorkflow", Role::kViewer, false},
    {"/dagd.v1.WorkflowService/ExportWorkflow", Role::kViewer, false},
    {"/dagd.v1.RunService/SubmitRun", Role::kOperator, true},
    {"/dagd.v1.RunService/GetRun", Role::kViewer, false},
    {"/dagd.v1.RunService/ListRuns", Role::kViewer, false},
    {"/dagd.v1.RunService/WatchRun", Role::kViewer, false},
    {"/dagd.v1.RunService/StopRun", Role::kOperator, true},
    {"/dagd.v1.RunService/TerminateRun", Role::kOperator, true},
    {"/dagd.v1.RunService/ResumeRun", Role::kOperator, true},
    {"/dagd.v1.RunService/SetNode", Role::kOperator, true},
    {"/dagd.v1.RunService/RetryRun", Role::kOperator, true},
    {"/dagd.v1.RunService/ResubmitRun", Role::kOperator, true},
    {"/dagd.v1.RunService/GetNodeLogs", Role::kViewer, false},
    {"/dagd.v1.RunService/ListAnsibleEvents", Role::kViewer, false},
    {"/dagd.v1.RunService/WatchAnsibleEvents", Role::kViewer, false},
    {"/dagd.v1.AuditService/ListAuditRecords", Role::kAdmin, false},
};

std::shared_ptr<spdlog::logger> Logger() {
  static const std::shared_ptr<spdlog::logger> logger = logging::Get("rpc");
  return logger;
}

// The last part of "/dagd.v1.RunService/SubmitRun".
std::string ShortName(const std::string& method) { return method.substr(method.rfind('/') + 1); }

// The organizations (O=) of an RFC 2253 subject, "CN=alice,O=team-a,O=ops".
std::vector<std::string> Organizations(const std::string& subject) {
  std::vector<std::string> groups;
  for (absl::string_view part : absl::StrSplit(subject, ',')) {
    if (absl::ConsumePrefix(&part, "O=") && !part.empty()) groups.emplace_back(part);
  }
  return groups;
}

// A request id a caller may choose: up to 128 printable ASCII characters.
bool IsRequestId(absl::string_view id) {
  if (id.empty() || id.size() > 128) return false;
  for (char c : id) {
    if (c < 0x21 || c > 0x7e) return false;
  }
  return true;
}

std::string NewRequestId() {
  static std::mt19937_64 random(std::random_device{}());
  static std::mutex mutex;
  std::lock_guard<std::mutex> lock(mutex);
  return absl::StrFormat("dagd-%016x", random());
}

}  // namespace

absl::StatusOr<std::string> ResolveNamespace(const std::string& requested,
                                             const std::string& in_spec, const std::string& where) {
  if (!requested.empty() && !in_spec.empty() && requested != in_spec) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": metadata.namespace is ", in_spec,
                                                   " but the request says ", requested,
                                                   "; drop one of them or make them agree"));
  }
  const std::string ns = !requested.empty() ? requested : !in_spec.empty() ? in_spec : "default";
  const bool valid =
      ns.size() <= 63 && std::isalnum(static_cast<unsigned char>(ns.front())) &&
      std::isalnum(static_cast<unsigned char>(ns.back())) &&
      ns.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789-") == std::string::npos;
  if (!valid) {
    return absl::InvalidArgumentError(absl::StrCat(
        where, ": namespace \"", ns,
        "\" is not a namespace name: 1-63 lowercase letters, digits and '-', starting and ending "
        "with a letter or digit"));
  }
  return ns;
}

std::span<const RpcRule> RpcRules() { return kRules; }

const RpcRule* FindRpcRule(const std::string& method) {
  for (const RpcRule& rule : kRules) {
    if (method == rule.method) return &rule;
  }
  return nullptr;
}

Caller::Caller(AccessControl* access, grpc::ServerContextBase* context, const RpcRule* rule,
               auth::Principal principal, std::shared_ptr<const auth::Policy> policy)
    : access_(access),
      context_(context),
      rule_(rule),
      principal_(std::move(principal)),
      policy_(std::move(policy)),
      scope_(policy_->NamespacesWith(principal_, rule_->role)) {}

bool Caller::Holds(auth::Role role, const std::string& ns) const {
  return policy_->RoleIn(principal_, ns) >= role;
}

absl::Status Caller::Authorize(const std::string& ns, const std::string& target) const {
  if (rule_->mutating) {
    access_->Note(context_, [&](AccessControl::CallNote& note) {
      note.namespace_name = ns;
      // A call that acts on several targets (a file of several workflows) names them all.
      if (note.target.empty() || target.empty()) {
        note.target = target;
      } else if (note.target != target) {
        absl::StrAppend(&note.target, ",", target);
      }
    });
  }
  if (Holds(rule_->role, ns)) return absl::OkStatus();
  return absl::PermissionDeniedError(
      absl::StrCat(principal_.name, " may not call ", ShortName(rule_->method), " in namespace ",
                   ns, " (it needs the ", auth::RoleName(rule_->role), " role there)"));
}

AccessControl::AccessControl(AccessOptions options)
    : authenticators_(std::move(options.authenticators)),
      client_certificates_(options.client_certificates),
      policy_file_(std::move(options.policy)),
      allow_all_(std::make_shared<const auth::Policy>(auth::Policy::AllowAll())),
      authenticating_(!authenticators_.empty() || client_certificates_) {}

AccessControl::~AccessControl() = default;

absl::StatusOr<auth::Principal> AccessControl::Authenticate(grpc::CallbackServerContext* context) {
  if (!authenticating_) return auth::Principal{.name = "anonymous", .method = "none"};
  const auto& metadata = context->client_metadata();
  if (auto header = metadata.find("authorization"); header != metadata.end()) {
    absl::string_view value(header->second.data(), header->second.size());
    if (!absl::ConsumePrefix(&value, "Bearer ") || value.empty() || authenticators_.empty()) {
      Logger()->info("refused a call from {}: {}", context->peer(),
                     authenticators_.empty() ? "dagd takes no bearer tokens"
                                             : "the authorization header is not Bearer TOKEN");
      return absl::UnauthenticatedError(
          authenticators_.empty()
              ? "this dagd accepts client certificates only, no bearer token"
              : "the credential is not valid: send authorization: Bearer TOKEN");
    }
    const std::string token(value);
    bool unavailable = false;
    for (const auto& authenticator : authenticators_) {
      absl::StatusOr<auth::Principal> principal = authenticator->Authenticate(token);
      if (principal.ok()) return principal;
      unavailable = unavailable || absl::IsUnavailable(principal.status());
      Logger()->debug("{} from {}: {}", authenticator->method(), context->peer(),
                      std::string(principal.status().message()));
    }
    if (unavailable) {
      Logger()->warn("could not check the token of a call from {}: an authority is unreachable",
                     context->peer());
      return absl::UnavailableError("cannot check the credential right now; retry later");
    }
    Logger()->info("refused a call from {}: its token is not valid", context->peer());
    return absl::UnauthenticatedError("the credential is not valid");
  }
  if (client_certificates_) {
    const auto auth_context = context->auth_context();
    const auto names = auth_context->FindPropertyValues(GRPC_X509_CN_PROPERTY_NAME);
    if (!names.empty() && !names.front().empty()) {
      auth::Principal principal{.name = std::string(names.front().data(), names.front().size()),
                                .method = "client-certificate"};
      for (const auto& subject :
           auth_context->FindPropertyValues(GRPC_X509_SUBJECT_PROPERTY_NAME)) {
        principal.groups = Organizations(std::string(subject.data(), subject.size()));
      }
      return principal;
    }
  }
  return absl::UnauthenticatedError(
      client_certificates_ && authenticators_.empty()
          ? "no credential: present a client certificate (dagctl --cert-file)"
          : "no credential: send a bearer token (dagctl --token-file or DAGD_TOKEN)");
}

absl::StatusOr<Caller> AccessControl::Admit(grpc::CallbackServerContext* context,
                                            const std::string& method,
                                            const std::function<Located()>& locate) {
  const RpcRule* rule = FindRpcRule(method);
  if (rule == nullptr) {
    spdlog::critical("{} has no access rule (server/access.cc)", method);
    std::abort();
  }
  absl::StatusOr<auth::Principal> principal = Authenticate(context);
  if (!principal.ok()) return principal.status();
  if (rule->mutating) {
    Note(context, [&](CallNote& note) { note.principal = *principal; });
  }
  std::shared_ptr<const auth::Policy> policy =
      policy_file_ != nullptr && authenticating_ ? policy_file_->Current() : allow_all_;
  Caller caller(this, context, rule, *std::move(principal), std::move(policy));
  if (caller.scope().empty()) {
    if (rule->mutating && locate) {
      const Located located = locate();
      Note(context, [&](CallNote& note) {
        note.namespace_name = located.namespace_name;
        note.target = located.target;
      });
    }
    return absl::PermissionDeniedError(absl::StrCat(caller.principal().name, " may not call ",
                                                    ShortName(method),
                                                    " in any namespace (it "
                                                    "needs the ",
                                                    auth::RoleName(rule->role), " role)"));
  }
  return caller;
}

void AccessControl::Note(const grpc::ServerContextBase* context,
                         const std::function<void(CallNote&)>& change) {
  std::lock_guard<std::mutex> lock(notes_mutex_);
  change(notes_[context]);
}

AccessControl::CallNote AccessControl::TakeNote(const grpc::ServerContextBase* context) {
  std::lock_guard<std::mutex> lock(notes_mutex_);
  auto it = notes_.find(context);
  if (it == notes_.end()) return {};
  CallNote note = std::move(it->second);
  notes_.erase(it);
  return note;
}

namespace {

using grpc::experimental::InterceptionHookPoints;

class AuditInterceptor : public grpc::experimental::Interceptor {
 public:
  AuditInterceptor(AccessControl* access, storage::Store* store,
                   grpc::experimental::ServerRpcInfo* info)
      : access_(access), store_(store), context_(info->server_context()), method_(info->method()) {}

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::POST_RECV_INITIAL_METADATA)) {
      const auto* metadata = methods->GetRecvInitialMetadata();
      if (auto id = metadata->find("x-request-id"); id != metadata->end()) {
        absl::string_view value(id->second.data(), id->second.size());
        if (IsRequestId(value)) request_id_ = std::string(value);
      }
    }
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_STATUS)) {
      const grpc::Status status = methods->GetSendStatus();
      AccessControl::CallNote note = access_->TakeNote(context_);
      storage::AuditRecord record{
          .time_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count(),
          .principal = note.principal.name,
          .auth_method = note.principal.method,
          .method = method_,
          .namespace_name = note.namespace_name,
          .target = note.target,
          .request_id = !request_id_.empty()       ? request_id_
                        : !note.request_id.empty() ? note.request_id
                                                   : NewRequestId(),
          .code = GrpcCodeName(status.error_code()),
          .message = status.error_message(),
          .peer = context_->peer()};
      storage::WriteBatch batch;
      batch.audit_records.push_back(std::move(record));
      // The status goes out once the record is committed (or could not be).
      store_->Submit(std::move(batch), [methods, method = method_](absl::Status committed) {
        if (!committed.ok()) {
          Logger()->error("the audit record of a {} call was not stored: {}", method,
                          std::string(committed.message()));
        }
        methods->Proceed();
      });
      return;
    }
    methods->Proceed();
  }

 private:
  AccessControl* access_;
  storage::Store* store_;
  grpc::ServerContextBase* context_;
  const std::string method_;
  std::string request_id_;
};

class AuditInterceptorFactory : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  AuditInterceptorFactory(AccessControl* access, storage::Store* store)
      : access_(access), store_(store) {}

  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override {
    const RpcRule* rule = info->method() != nullptr ? FindRpcRule(info->method()) : nullptr;
    if (rule == nullptr || !rule->mutating) return nullptr;  // not audited
    return new AuditInterceptor(access_, store_, info);
  }

 private:
  AccessControl* access_;
  storage::Store* store_;
};

}  // namespace

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> NewAuditInterceptor(
    AccessControl* access, storage::Store* store) {
  return std::make_unique<AuditInterceptorFactory>(access, store);
}

}  // namespace dagd::server
