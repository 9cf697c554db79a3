#include "server/access_config.h"

#include "runners/kubernetes/client/kube_client.h"
#include "server/auth/oidc.h"
#include "server/auth/static_tokens.h"
#include "server/auth/token_review.h"

namespace dagd::server {
namespace {

// A TokenReviewAuthenticator that owns its Kubernetes client.
class OwningTokenReview : public auth::TokenAuthenticator {
 public:
  OwningTokenReview(std::unique_ptr<runners::kubernetes::KubeClient> client,
                    std::unique_ptr<auth::TokenReviewAuthenticator> review)
      : client_(std::move(client)), review_(std::move(review)) {}
  const char* method() const override { return review_->method(); }
  absl::StatusOr<auth::Principal> Authenticate(const std::string& token) override {
    return review_->Authenticate(token);
  }

 private:
  std::unique_ptr<runners::kubernetes::KubeClient> client_;  // outlives review_
  std::unique_ptr<auth::TokenReviewAuthenticator> review_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<AccessControl>> NewAccessControl(
    const AuthSettings& auth, const TlsFiles& tls,
    const runners::KubernetesRunnerSettings& cluster) {
  AccessOptions options;
  if (!auth.authenticating()) {
    if (!auth.policy_file.empty()) {
      return absl::InvalidArgumentError(
          "--auth-policy needs an authentication method to tell callers apart: "
          "--auth-static-tokens, --auth-oidc-issuer, --auth-tokenreview or "
          "--auth-client-certificates");
    }
    return std::make_unique<AccessControl>(std::move(options));
  }
  if (auth.policy_file.empty()) {
    return absl::InvalidArgumentError(
        "authentication is on but --auth-policy is not set: name the policy file that says who "
        "holds which role (docs/security.md)");
  }
  auto policy = auth::PolicyFile::Open(auth.policy_file);
  if (!policy.ok()) return policy.status();
  options.policy = *std::move(policy);
  if (!auth.static_tokens_file.empty()) {
    auto tokens = auth::StaticTokenAuthenticator::Create(auth.static_tokens_file);
    if (!tokens.ok()) return tokens.status();
    options.authenticators.push_back(*std::move(tokens));
  }
  if (!auth.oidc_issuer.empty()) {
    if (auth.oidc_audiences.empty()) {
      return absl::InvalidArgumentError(
          "--auth-oidc-issuer needs --auth-oidc-audience: the client id(s) tokens must be "
          "issued for");
    }
    auth::OidcOptions oidc;
    oidc.issuer = auth.oidc_issuer;
    oidc.audiences = auth.oidc_audiences;
    oidc.jwks_file = auth.oidc_jwks_file;
    oidc.username_claim = auth.oidc_username_claim;
    oidc.username_prefix = auth.oidc_username_prefix;
    oidc.groups_claim = auth.oidc_groups_claim;
    oidc.groups_prefix = auth.oidc_groups_prefix;
    oidc.ca_file = auth.oidc_ca_file;
    auto authenticator = auth::OidcAuthenticator::Create(std::move(oidc));
    if (!authenticator.ok()) return authenticator.status();
    options.authenticators.push_back(*std::move(authenticator));
  }
  if (auth.tokenreview) {
    auto client = runners::NewClusterClient(cluster);
    if (!client.ok()) {
      return absl::Status(client.status().code(), std::string("--auth-tokenreview: ") +
                                                      std::string(client.status().message()));
    }
    auth::TokenReviewOptions review_options;
    review_options.audiences = auth.tokenreview_audiences;
    auto review = auth::TokenReviewAuthenticator::Create(client->get(), std::move(review_options));
    if (!review.ok()) return review.status();
    options.authenticators.push_back(
        std::make_unique<OwningTokenReview>(*std::move(client), *std::move(review)));
  }
  if (auth.client_certificates) {
    if (!tls.mutual()) {
      return absl::InvalidArgumentError(
          "--auth-client-certificates needs mutual TLS: set --tls-client-ca-file (and the "
          "server's --tls-cert-file and --tls-key-file)");
    }
    options.client_certificates = true;
  }
  return std::make_unique<AccessControl>(std::move(options));
}

}  // namespace dagd::server
