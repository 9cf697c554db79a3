// Access control of the gRPC API: who is calling (authentication), whether they may (the role
// each RPC needs, in the namespace of what it acts on), and the audit record of every call to
// an RPC that changes something.
//
// Every RPC of dagd's services has a rule in RpcRules(): the role it needs and whether it
// mutates. A handler begins with Admit(context, method), which authenticates the caller and
// checks that it holds that role in some namespace; once the handler knows the namespace of its
// target it calls Caller::Authorize(namespace, target). List RPCs filter by Caller::scope().
// tests/server/access_test.cc calls every RPC as every role, and fails for an RPC without a
// rule.
//
// The audit interceptor (NewAuditInterceptor) writes one record per call of a mutating RPC when
// its status is sent — principal, method, namespace, target, request id, code, peer — and holds
// the status back until the record is committed, so a caller never sees an answer whose audit
// record could still be lost.
//
// THREADS. AccessControl is thread-safe; a Caller belongs to one call.
#ifndef DAGD_SERVER_ACCESS_H_
#define DAGD_SERVER_ACCESS_H_

#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "absl/status/statusor.h"
#include "server/auth/policy.h"
#include "server/auth/principal.h"
#include "server/auth/token_authenticator.h"
#include "storage/store.h"

namespace grpc {
class CallbackServerContext;
class ServerContextBase;
namespace experimental {
class ServerInterceptorFactoryInterface;
}
}  // namespace grpc

namespace dagd::server {

struct RpcRule {
  const char* method;  // "/dagd.v1.RunService/SubmitRun"
  auth::Role role;     // the least role that may call it
  bool mutating;       // audited
};

// The namespace of a workflow or run: `requested` (a request's namespace field), else
// `in_spec` (the YAML's metadata.namespace), else "default". InvalidArgument (at `where`) when
// both are set and differ, or the name is not a Kubernetes namespace name (1-63 of [a-z0-9-],
// starting and ending alphanumeric).
absl::StatusOr<std::string> ResolveNamespace(const std::string& requested,
                                             const std::string& in_spec, const std::string& where);

// One rule per RPC of WorkflowService, RunService and AuditService.
std::span<const RpcRule> RpcRules();
// The rule of `method`, or null.
const RpcRule* FindRpcRule(const std::string& method);

struct AccessOptions {
  // Tried in order on a call's bearer token; the first that accepts it names the caller.
  std::vector<std::unique_ptr<auth::TokenAuthenticator>> authenticators;
  // A call without a token is the subject of its verified client certificate (mutual TLS):
  // name = common name, groups = organizations, as Kubernetes' x509 authentication does.
  bool client_certificates = false;
  // Who holds which role. Null only without any authentication: then every caller is
  // "anonymous", admin in every namespace.
  std::unique_ptr<auth::PolicyFile> policy;
};

class AccessControl;

// An authenticated call, admitted to its method.
class Caller {
 public:
  const auth::Principal& principal() const { return principal_; }
  // PERMISSION_DENIED unless the caller holds the method's role in `ns`. Either way the audit
  // record of the call names `ns` and `target` ("run/NAME", "workflow/NAME").
  absl::Status Authorize(const std::string& ns, const std::string& target) const;
  // Where the caller holds the method's role (what list RPCs may show).
  const auth::NamespaceScope& scope() const { return scope_; }
  // Whether the caller holds `role` in `ns` (e.g. admin for records of every namespace).
  bool Holds(auth::Role role, const std::string& ns) const;

 private:
  friend class AccessControl;
  Caller(AccessControl* access, grpc::ServerContextBase* context, const RpcRule* rule,
         auth::Principal principal, std::shared_ptr<const auth::Policy> policy);

  AccessControl* access_;
  grpc::ServerContextBase* context_;
  const RpcRule* rule_;
  auth::Principal principal_;
  std::shared_ptr<const auth::Policy> policy_;
  auth::NamespaceScope scope_;
};

class AccessControl {
 public:
  explicit AccessControl(AccessOptions options);
  ~AccessControl();

  // Whether callers must prove who they are (false: everyone is the anonymous admin).
  bool authenticating() const { return authenticating_; }

  // Authenticates the call and checks that the caller holds `method`'s role in at least one
  // namespace. UNAUTHENTICATED when the call carries no credential or one that is not valid
  // (the message says which, never why: the reason goes to dagd's log); UNAVAILABLE when the
  // authority that would tell cannot be asked right now; PERMISSION_DENIED for a caller with no
  // such role anywhere. `method` must have a rule (a programmer error otherwise: abort).
  //
  // `locate` (optional) finds the namespace and target the call acts on; it is asked only for
  // the audit record of a caller refused here, whose handler never gets to name them.
  struct Located {
    std::string namespace_name;
    std::string target;
  };
  absl::StatusOr<Caller> Admit(grpc::CallbackServerContext* context, const std::string& method,
                               const std::function<Located()>& locate = nullptr);

  // What the audit record of the call on `context` says so far; the interceptor takes it when the
  // call ends.
  struct CallNote {
    auth::Principal principal;
    std::string namespace_name;
    std::string target;
    std::string request_id;  // SubmitRunRequest.request_id, when the metadata has none
  };
  void Note(const grpc::ServerContextBase* context, const std::function<void(CallNote&)>& change);
  CallNote TakeNote(const grpc::ServerContextBase* context);

 private:
  absl::StatusOr<auth::Principal> Authenticate(grpc::CallbackServerContext* context);

  std::vector<std::unique_ptr<auth::TokenAuthenticator>> authenticators_;
  const bool client_certificates_;
  std::unique_ptr<auth::PolicyFile> policy_file_;
  const std::shared_ptr<const auth::Policy> allow_all_;
  const bool authenticating_;

  std::mutex notes_mutex_;
  std::unordered_map<const grpc::ServerContextBase*, CallNote> notes_;
};

// The interceptor that writes the audit record of each call to a mutating RPC into `store`
// before its status is sent. Not owned; both must outlive the server.
std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> NewAuditInterceptor(
    AccessControl* access, storage::Store* store);

}  // namespace dagd::server

#endif  // DAGD_SERVER_ACCESS_H_
