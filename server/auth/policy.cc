#include "server/auth/policy.h"

#include <spdlog/spdlog.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "server/auth/file_stamp.h"

namespace dagd::server::auth {
namespace {

absl::Status Bad(const std::string& file, const YAML::Node& node, const std::string& what) {
  return absl::InvalidArgumentError(
      absl::StrCat("policy file ", file, ": line ", node.Mark().line + 1, ": ", what));
}

bool Contains(const std::vector<std::string>& list, const std::string& value) {
  return std::find(list.begin(), list.end(), value) != list.end();
}

// A list of non-empty strings, into *out.
absl::Status ReadList(const std::string& file, const std::string& key, const YAML::Node& node,
                      std::vector<std::string>* out) {
  if (!node.IsSequence()) return Bad(file, node, absl::StrCat(key, " must be a list"));
  for (const YAML::Node& item : node) {
    if (!item.IsScalar() || item.Scalar().empty()) {
      return Bad(file, item, absl::StrCat("the entries of ", key, " are non-empty strings"));
    }
    out->push_back(item.Scalar());
  }
  return absl::OkStatus();
}

}  // namespace

const char* RoleName(Role role) {
  switch (role) {
    case Role::kViewer:
      return "viewer";
    case Role::kOperator:
      return "operator";
    case Role::kAdmin:
      return "admin";
    case Role::kNone:
      break;
  }
  return "none";
}

bool NamespaceScope::Contains(const std::string& ns) const {
  return all || std::binary_search(namespaces.begin(), namespaces.end(), ns);
}

absl::StatusOr<Policy> Policy::Parse(const std::string& text, const std::string& file) {
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat("policy file ", file, ": line ", e.mark.line + 1, ": ", e.msg));
  }
  Policy policy;
  if (root.IsNull()) return policy;  // nobody may do anything
  if (!root.IsMap()) return Bad(file, root, "expected a mapping with `bindings:`");
  for (const auto& entry : root) {
    if (entry.first.Scalar() != "bindings") {
      return Bad(file, entry.first,
                 absl::StrCat("unknown key \"", entry.first.Scalar(),
                              "\"; the file holds `bindings:` only"));
    }
  }
  const YAML::Node bindings = root["bindings"];
  if (!bindings || bindings.IsNull()) return policy;
  if (!bindings.IsSequence()) return Bad(file, bindings, "`bindings` must be a list");
  for (const YAML::Node& item : bindings) {
    if (!item.IsMap()) {
      return Bad(file, item,
                 "each binding is a mapping {role, namespaces, users, groups, serviceAccounts}");
    }
    Binding binding;
    for (const auto& field : item) {
      const std::string key = field.first.Scalar();
      absl::Status st;
      if (key == "role") {
        const std::string role = field.second.IsScalar() ? field.second.Scalar() : "";
        binding.role = role == "viewer"     ? Role::kViewer
                       : role == "operator" ? Role::kOperator
                       : role == "admin"    ? Role::kAdmin
                                            : Role::kNone;
        if (binding.role == Role::kNone) {
          return Bad(file, field.second,
                     absl::StrCat("role \"", role, "\" is not viewer, operator or admin"));
        }
      } else if (key == "namespaces") {
        st = ReadList(file, key, field.second, &binding.namespaces);
      } else if (key == "users") {
        st = ReadList(file, key, field.second, &binding.users);
      } else if (key == "groups") {
        st = ReadList(file, key, field.second, &binding.groups);
      } else if (key == "serviceAccounts") {
        st = ReadList(file, key, field.second, &binding.service_accounts);
        for (const std::string& account : binding.service_accounts) {
          const size_t slash = account.find('/');
          if (!st.ok()) break;
          if (slash == std::string::npos || slash == 0 || slash + 1 == account.size() ||
              account.find('/', slash + 1) != std::string::npos) {
            st = Bad(file, field.second,
                     absl::StrCat("service account \"", account,
                                  "\" is not NAMESPACE/NAME (e.g. ci/deployer)"));
          }
        }
      } else {
        return Bad(file, field.first,
                   absl::StrCat("unknown key \"", key,
                                "\"; a binding has role, namespaces, users, groups, "
                                "serviceAccounts"));
      }
      if (!st.ok()) return st;
    }
    if (binding.role == Role::kNone) return Bad(file, item, "a binding needs a role");
    if (binding.namespaces.empty()) {
      return Bad(file, item, "a binding needs namespaces (a list; [\"*\"] for every namespace)");
    }
    if (binding.users.empty() && binding.groups.empty() && binding.service_accounts.empty()) {
      return Bad(file, item, "a binding needs users, groups or serviceAccounts");
    }
    policy.bindings_.push_back(std::move(binding));
  }
  return policy;
}

Policy Policy::AllowAll() {
  Policy policy;
  policy.bindings_.push_back(Binding{.role = Role::kAdmin, .namespaces = {"*"}});
  return policy;
}

bool Policy::Matches(const Binding& binding, const Principal& principal) const {
  if (binding.users.empty() && binding.groups.empty() && binding.service_accounts.empty()) {
    return true;  // AllowAll's binding; Parse never makes one
  }
  if (Contains(binding.users, principal.name)) return true;
  for (const std::string& group : principal.groups) {
    if (Contains(binding.groups, group)) return true;
  }
  for (const std::string& account : binding.service_accounts) {
    const size_t slash = account.find('/');
    if (principal.name == absl::StrCat("system:serviceaccount:", account.substr(0, slash), ":",
                                       account.substr(slash + 1))) {
      return true;
    }
  }
  return false;
}

Role Policy::RoleIn(const Principal& principal, const std::string& ns) const {
  Role best = Role::kNone;
  for (const Binding& binding : bindings_) {
    if (binding.role <= best || !Matches(binding, principal)) continue;
    if (Contains(binding.namespaces, "*") || Contains(binding.namespaces, ns)) best = binding.role;
  }
  return best;
}

NamespaceScope Policy::NamespacesWith(const Principal& principal, Role role) const {
  NamespaceScope scope;
  for (const Binding& binding : bindings_) {
    if (binding.role < role || !Matches(binding, principal)) continue;
    for (const std::string& ns : binding.namespaces) {
      if (ns == "*") scope.all = true;
      scope.namespaces.push_back(ns);
    }
  }
  if (scope.all) scope.namespaces.clear();
  std::sort(scope.namespaces.begin(), scope.namespaces.end());
  scope.namespaces.erase(std::unique(scope.namespaces.begin(), scope.namespaces.end()),
                         scope.namespaces.end());
  return scope;
}

absl::StatusOr<std::unique_ptr<PolicyFile>> PolicyFile::Open(std::string path,
                                                             std::chrono::seconds reload_interval) {
  std::unique_ptr<PolicyFile> file(new PolicyFile(std::move(path), reload_interval));
  std::lock_guard<std::mutex> lock(file->mutex_);
  if (absl::Status st = file->Load(); !st.ok()) return st;
  file->last_check_ = std::chrono::steady_clock::now();
  return file;
}

absl::Status PolicyFile::Load() {
  const std::string stamp = FileStamp(path_);
  std::ifstream in(path_);
  std::stringstream text;
  if (!in || !(text << in.rdbuf())) {
    return absl::NotFoundError(absl::StrCat("policy file ", path_, " cannot be read"));
  }
  auto policy = Policy::Parse(text.str(), path_);
  stamp_ = stamp;  // a bad file is reported once per change
  if (!policy.ok()) return policy.status();
  policy_ = std::make_shared<const Policy>(*std::move(policy));
  return absl::OkStatus();
}

std::shared_ptr<const Policy> PolicyFile::Current() {
  std::lock_guard<std::mutex> lock(mutex_);
  const auto now = std::chrono::steady_clock::now();
  if (now - last_check_ >= reload_interval_) {
    last_check_ = now;
    if (FileStamp(path_) != stamp_) {
      if (absl::Status st = Load(); !st.ok()) {
        spdlog::error("{}; the policy read before stays in force", std::string(st.message()));
      } else {
        spdlog::info("policy file {} reloaded", path_);
      }
    }
  }
  return policy_;
}

}  // namespace dagd::server::auth
