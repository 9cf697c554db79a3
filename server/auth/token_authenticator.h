// TokenAuthenticator: the seam of one way of proving a bearer token (static tokens, OIDC ID
// tokens, Kubernetes TokenReview). The gRPC layer hands the token of a call's
// `authorization: Bearer TOKEN` header to each configured authenticator in turn; the first that
// accepts it names the principal.
//
// Implementations are called from gRPC's threads concurrently and must be thread-safe. They may
// block (a JWKS fetch, a TokenReview call) but must bound how long.
#ifndef DAGD_SERVER_AUTH_TOKEN_AUTHENTICATOR_H_
#define DAGD_SERVER_AUTH_TOKEN_AUTHENTICATOR_H_

#include <string>

#include "absl/status/statusor.h"
#include "server/auth/principal.h"

namespace dagd::server::auth {

class TokenAuthenticator {
 public:
  virtual ~TokenAuthenticator() = default;

  // The method's name as Principal::method carries it ("oidc", "tokenreview", …).
  virtual const char* method() const = 0;

  // The principal `token` proves. Otherwise:
  // - Unauthenticated with the reason, for dagd's own log (never sent to the caller: the caller
  //   only learns that its credential is not valid): not a token of this kind, a bad
  //   signature, expired, unknown, revoked;
  // - Unavailable when the authority cannot be asked right now (the JWKS cannot be fetched, the
  //   Kubernetes API does not answer), so the caller can retry.
  virtual absl::StatusOr<Principal> Authenticate(const std::string& token) = 0;
};

}  // namespace dagd::server::auth

#endif  // DAGD_SERVER_AUTH_TOKEN_AUTHENTICATOR_H_
