// Principal: who is calling dagd, as an authenticator proved it. Authorization (policy.h) binds
// roles to a principal's name, its groups, or — for Kubernetes service accounts — the account.
// A plain value; safe to copy between threads.
#ifndef DAGD_SERVER_AUTH_PRINCIPAL_H_
#define DAGD_SERVER_AUTH_PRINCIPAL_H_

#include <string>
#include <vector>

namespace dagd::server::auth {

struct Principal {
  // The user: a static token's user, an OIDC token's username claim (with the configured
  // prefix), "system:serviceaccount:NAMESPACE:NAME" for a Kubernetes service account (as
  // TokenReview reports it), a client certificate's subject common name.
  std::string name;
  // The groups the credential carries (OIDC groups claim, TokenReview's groups, a static
  // token's groups column). Never used alone to tell principals apart.
  std::vector<std::string> groups;
  // How the principal was proven: "static-token", "oidc", "tokenreview", "client-certificate",
  // or "none" when dagd runs without authentication (every caller is the same anonymous admin).
  std::string method;
};

}  // namespace dagd::server::auth

#endif  // DAGD_SERVER_AUTH_PRINCIPAL_H_
