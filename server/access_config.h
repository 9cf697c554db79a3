// How dagd's flags turn into its AccessControl: which authentication methods are on, and the
// policy file. Used by cmd/dagd; kept here so the rules about which settings go together are
// tested with the rest of the server.
#ifndef DAGD_SERVER_ACCESS_CONFIG_H_
#define DAGD_SERVER_ACCESS_CONFIG_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "runners/builtin.h"
#include "server/access.h"
#include "server/tls.h"

namespace dagd::server {

struct AuthSettings {
  // Static tokens: a file of token hashes (auth/static_tokens.h). Empty: off.
  std::string static_tokens_file;
  // OIDC ID tokens from this issuer (auth/oidc.h). Empty: off.
  std::string oidc_issuer;
  std::vector<std::string> oidc_audiences;
  std::string oidc_jwks_file;
  std::string oidc_username_claim = "sub";
  std::string oidc_username_prefix;
  std::string oidc_groups_claim = "groups";
  std::string oidc_groups_prefix;
  std::string oidc_ca_file;
  // Kubernetes service account tokens, through TokenReview on the kubernetes runner's cluster.
  bool tokenreview = false;
  std::vector<std::string> tokenreview_audiences;
  // Client certificate subjects under mutual TLS.
  bool client_certificates = false;
  // Who holds which role (auth/policy.h). Required with any method above; refused without.
  std::string policy_file;

  bool authenticating() const {
    return !static_tokens_file.empty() || !oidc_issuer.empty() || tokenreview ||
           client_certificates;
  }
};

// The AccessControl of `auth`: its files read and checked now. InvalidArgument (or the
// loaders' errors) naming the flag: a method without --auth-policy, a policy without a method,
// OIDC without an audience, client certificates without --tls-client-ca-file, TokenReview
// without a cluster.
absl::StatusOr<std::unique_ptr<AccessControl>> NewAccessControl(
    const AuthSettings& auth, const TlsFiles& tls,
    const runners::KubernetesRunnerSettings& cluster);

}  // namespace dagd::server

#endif  // DAGD_SERVER_ACCESS_CONFIG_H_
