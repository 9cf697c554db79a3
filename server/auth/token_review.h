// TokenReviewAuthenticator: proves Kubernetes service account tokens (and any other token the
// cluster's API server accepts) by asking that API server: POST
// /apis/authentication.k8s.io/v1/tokenreviews with {"spec": {"token": T, "audiences": [...]}},
// through dagd's KubeClient and so with dagd's own credential.
//
// Verdicts:
//   status.authenticated true  → Principal{name = status.user.username (for a service account
//                                "system:serviceaccount:NS:NAME"), groups = status.user.groups,
//                                method "tokenreview"}. When audiences are configured, the
//                                answer's status.audiences must also name one of them (an API
//                                server that ignored the audiences is not trusted), else
//                                Unauthenticated.
//   authenticated false/absent → Unauthenticated carrying status.error.
//   the API server does not answer, answers 5xx or something that is not a TokenReview, or
//   times out (TokenReviewOptions::request_timeout) → Unavailable.
//   401 or 403 from the API server (dagd's own credential is refused, or lacks the right to
//   review tokens) → Unavailable whose message says that dagd's service account needs `create`
//   on `tokenreviews` (e.g. a ClusterRoleBinding to system:auth-delegator).
// A token of 8 KiB or more, an empty one, or one with characters a bearer token cannot hold
// (anything outside printable ASCII, spaces included) is Unauthenticated without asking.
//
// CACHE. Verdicts of the API server — positive and negative — are kept for cache_ttl, keyed by
// the SHA-256 of the token (the token itself is never kept, logged or put in a message); at
// most max_cache_entries are kept, the oldest evicted first. Failures (Unavailable) are never
// cached. So a revoked token keeps working for up to cache_ttl.
//
// THREADS. Authenticate() is thread-safe and blocks for at most one API request
// (request_timeout, plus the client's connect timeout). The cache lock is never held during a
// request; concurrent misses for one token may each ask the API server. The KubeClient is not
// owned and must outlive the authenticator; TokenReviewOptions::now may be called from any
// thread.
#ifndef DAGD_SERVER_AUTH_TOKEN_REVIEW_H_
#define DAGD_SERVER_AUTH_TOKEN_REVIEW_H_

#include <chrono>
#include <cstddef>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "runners/kubernetes/client/kube_client.h"
#include "server/auth/principal.h"
#include "server/auth/token_authenticator.h"

namespace dagd::server::auth {

struct TokenReviewOptions {
  // spec.audiences of each review: the audiences dagd accepts tokens for (e.g. "dagd"). Empty:
  // none are sent, and the API server checks the token against its own audience.
  std::vector<std::string> audiences;
  // How long a verdict of the API server is reused. 0: never cached.
  std::chrono::seconds cache_ttl{10};
  // The most verdicts kept. 0: never cached.
  size_t max_cache_entries = 1024;
  // The clock of the cache. Empty: std::chrono::steady_clock::now. Tests pass a manual clock.
  std::function<std::chrono::steady_clock::time_point()> now;
  // The bound on one TokenReview request once connected (the client's connect timeout applies
  // before that).
  std::chrono::milliseconds request_timeout{5000};
};

class TokenReviewAuthenticator : public TokenAuthenticator {
 public:
  // Tokens this long or longer are refused without asking the API server.
  static constexpr size_t kMaxTokenBytes = 8 * 1024;

  // `client` (not owned) talks to the API server whose TokenReview API decides. InvalidArgument
  // when client is null, an audience is empty, cache_ttl is negative or request_timeout is not
  // positive. Sends nothing: an API server that is down only makes Authenticate() return
  // Unavailable until it is back.
  static absl::StatusOr<std::unique_ptr<TokenReviewAuthenticator>> Create(
      runners::kubernetes::KubeClient* client, TokenReviewOptions options);

  const char* method() const override { return "tokenreview"; }

  // See TokenAuthenticator and the verdicts above.
  absl::StatusOr<Principal> Authenticate(const std::string& token) override;

 private:
  using Clock = std::chrono::steady_clock;

  // A cached verdict: the principal, or the Unauthenticated status.
  struct Entry {
    std::string key;
    absl::StatusOr<Principal> verdict;
    Clock::time_point expires;
  };

  TokenReviewAuthenticator(runners::kubernetes::KubeClient* client, TokenReviewOptions options);

  Clock::time_point Now() const;
  // The API server's verdict on `token`, and whether it may be cached (Unavailable and
  // malformed answers may not).
  absl::StatusOr<Principal> Review(const std::string& token, bool* cacheable);
  bool Lookup(const std::string& key, absl::StatusOr<Principal>* verdict);
  void Store(const std::string& key, const absl::StatusOr<Principal>& verdict);

  runners::kubernetes::KubeClient* const client_;
  const TokenReviewOptions options_;

  std::mutex mu_;
  // Oldest first; all entries share one TTL, so this is also the order of expiry.
  std::list<Entry> entries_ ABSL_GUARDED_BY(mu_);
  std::unordered_map<std::string, std::list<Entry>::iterator> index_ ABSL_GUARDED_BY(mu_);
};

}  // namespace dagd::server::auth

#endif  // DAGD_SERVER_AUTH_TOKEN_REVIEW_H_
