// Policy: who holds which role in which namespace. Roles are ordered — viewer (read runs, logs,
// events, workflows), operator (also submit, stop, terminate, resume, retry, resubmit, set
// nodes), admin (also store and delete workflows, read the audit log) — and each binding grants
// one role in some namespaces ("*": every namespace) to users, groups and Kubernetes service
// accounts:
//
//   bindings:
//     - role: admin
//       namespaces: ["*"]
//       users: [alice]
//     - role: operator
//       namespaces: [team-a]
//       groups: [team-a]
//       serviceAccounts: [ci/deployer]     # NAMESPACE/NAME of the service account
//
// A principal's role in a namespace is the highest any matching binding grants; none means no
// access. A Policy is an immutable value; PolicyFile re-reads the file when it changes and
// hands out the current Policy (thread-safe).
#ifndef DAGD_SERVER_AUTH_POLICY_H_
#define DAGD_SERVER_AUTH_POLICY_H_

#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "server/auth/principal.h"

namespace dagd::server::auth {

enum class Role { kNone = 0, kViewer = 1, kOperator = 2, kAdmin = 3 };

// "none", "viewer", "operator", "admin".
const char* RoleName(Role role);

// The namespaces where a principal holds at least some role.
struct NamespaceScope {
  bool all = false;                     // "*": every namespace, present and future
  std::vector<std::string> namespaces;  // when !all, sorted, without duplicates
  bool Contains(const std::string& ns) const;
  bool empty() const { return !all && namespaces.empty(); }
};

class Policy {
 public:
  struct Binding {
    Role role = Role::kNone;
    std::vector<std::string> namespaces;  // "*" matches every namespace
    std::vector<std::string> users;
    std::vector<std::string> groups;
    std::vector<std::string> service_accounts;  // "NAMESPACE/NAME"
  };

  // The policy of a policy file's text; InvalidArgument naming `file`, the line and the fix for
  // anything else (unknown keys or roles, a binding that names no namespace or nobody, a
  // service account that is not NAMESPACE/NAME).
  static absl::StatusOr<Policy> Parse(const std::string& text, const std::string& file);
  // Every principal is admin everywhere: dagd without authentication.
  static Policy AllowAll();

  // The highest role `principal` holds in namespace `ns`.
  Role RoleIn(const Principal& principal, const std::string& ns) const;
  // Where `principal` holds `role` or a higher one.
  NamespaceScope NamespacesWith(const Principal& principal, Role role) const;

 private:
  bool Matches(const Binding& binding, const Principal& principal) const;

  std::vector<Binding> bindings_;
};

class PolicyFile {
 public:
  // Reads `path` once: its errors stop dagd from starting.
  static absl::StatusOr<std::unique_ptr<PolicyFile>> Open(
      std::string path, std::chrono::seconds reload_interval = std::chrono::seconds(5));

  // The policy in force: re-read when the file changed (checked at most once per reload
  // interval). A file that no longer parses is reported in dagd's log once and leaves the
  // previous policy in force.
  std::shared_ptr<const Policy> Current();

 private:
  PolicyFile(std::string path, std::chrono::seconds reload_interval)
      : path_(std::move(path)), reload_interval_(reload_interval) {}
  absl::Status Load() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);

  const std::string path_;
  const std::chrono::seconds reload_interval_;
  std::mutex mutex_;
  std::shared_ptr<const Policy> policy_ ABSL_GUARDED_BY(mutex_);
  std::string stamp_ ABSL_GUARDED_BY(mutex_);
  std::chrono::steady_clock::time_point last_check_ ABSL_GUARDED_BY(mutex_);
};

}  // namespace dagd::server::auth

#endif  // DAGD_SERVER_AUTH_POLICY_H_
