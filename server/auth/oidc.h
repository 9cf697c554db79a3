// OidcAuthenticator: proves OpenID Connect ID tokens — JWTs in compact serialization, signed
// RS256 or ES256 — against the keys their issuer publishes (a JWKS), then maps the token's
// claims onto a Principal.
//
// Keys come either from a local JWKS file (re-read whenever its mtime, size or inode changes) or
// from the issuer: GET {issuer}/.well-known/openid-configuration, then its `jwks_uri`. Fetched
// keys are cached for jwks_cache_ttl. A token whose `kid` is not in the cache makes the
// authenticator refetch, at most once per 30 s, so forged kids cannot hammer the issuer; after a
// failed fetch no other fetch is tried for 10 s. While a fetch fails, the cached keys keep
// serving; with none cached, Authenticate() returns Unavailable. Fetches are https with
// certificate verification (ca_file, or the system CAs); plain http only to a loopback host.
// Every request is bounded by 5 s to connect and 5 s in all.
//
// What a token must satisfy: header `alg` RS256 or ES256 (never "none" or HMAC); `kid` names a
// key whose kty fits the alg (no `kid`: the JWKS must hold exactly one key of that kty); the
// signature verifies; `iss` equals OidcOptions::issuer exactly; `aud` (string or array) holds
// one of OidcOptions::audiences; `exp` is present and now < exp + clock_skew; `nbf`, if present,
// now >= nbf - clock_skew; `iat`, if present, iat <= now + clock_skew; the username claim is a
// non-empty string. Tokens over 16 KiB are refused unread.
//
// THREADS. Authenticate() is thread-safe and may block while keys are fetched (at most two
// requests of 5 s; callers needing a fetch wait for one another, callers served by the cache do
// not wait). The authenticator owns its key cache; OidcOptions::now is called from any thread.
#ifndef DAGD_SERVER_AUTH_OIDC_H_
#define DAGD_SERVER_AUTH_OIDC_H_

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "server/auth/principal.h"
#include "server/auth/token_authenticator.h"

namespace dagd::server::auth {

struct OidcOptions {
  // The `iss` every token must carry, compared byte for byte (e.g. "https://accounts.example.com").
  // Also where the keys are discovered unless jwks_file is set: must be https, or http to a
  // loopback host (127.0.0.0/8, ::1, localhost).
  std::string issuer;
  // A token's `aud` must hold at least one of these (the client ids dagd accepts).
  std::vector<std::string> audiences;
  // A JWKS file ({"keys": [...]}) to take the keys from instead of fetching them.
  std::string jwks_file;
  // The claim that names the user (a non-empty string), and the prefix put before it (e.g.
  // "oidc:"), so an OIDC user cannot pass for a user of another method.
  std::string username_claim = "sub";
  std::string username_prefix;
  // The claim listing the groups: an array of strings or one string; absent or null: no groups.
  std::string groups_claim = "groups";
  std::string groups_prefix;
  // How far the issuer's clock and dagd's may disagree: widens exp, nbf and iat by this much.
  std::chrono::seconds clock_skew{60};
  // PEM bundle of the CAs trusted for https fetches; empty: the system's CAs.
  std::string ca_file;
  // How long fetched keys are used before they are fetched again.
  std::chrono::seconds jwks_cache_ttl{3600};
  // The clock for token times, the cache TTL and the refetch rate limit; empty: the system clock.
  std::function<std::chrono::system_clock::time_point()> now;
};

namespace internal {
class KeySet;
}  // namespace internal

class OidcAuthenticator : public TokenAuthenticator {
 public:
  // A token refers to an unknown key: the keys are fetched again at most this often.
  static constexpr std::chrono::seconds kUnknownKidRefetchInterval{30};
  // After a failed fetch, no fetch is tried for this long (cached keys serve meanwhile).
  static constexpr std::chrono::seconds kFailedFetchBackoff{10};
  // Longer tokens are refused without being decoded.
  static constexpr size_t kMaxTokenBytes = 16 * 1024;

  // Checks the options and, with jwks_file, reads the keys. InvalidArgument naming the option
  // when issuer is empty or not https/loopback http (without jwks_file), audiences is empty or
  // holds an empty string, username_claim is empty, clock_skew or jwks_cache_ttl is negative,
  // or jwks_file cannot be read or holds no usable RS256/ES256 key. Never fetches: an issuer
  // that is down at startup only makes Authenticate() return Unavailable until it is back.
  static absl::StatusOr<std::unique_ptr<OidcAuthenticator>> Create(OidcOptions options);

  ~OidcAuthenticator() override;

  const char* method() const override { return "oidc"; }

  // See TokenAuthenticator. Principal::name is username_prefix + the username claim,
  // Principal::groups each group with groups_prefix, Principal::method "oidc".
  absl::StatusOr<Principal> Authenticate(const std::string& token) override;

 private:
  explicit OidcAuthenticator(OidcOptions options);

  std::chrono::system_clock::time_point Now() const;

  // The keys to verify with. With jwks_file: re-read if the file changed. Fetched: fetched
  // again when there are none or the TTL ran out, unless a fetch failed within
  // kFailedFetchBackoff; `unknown_kid` also forces a fetch, rate-limited by
  // kUnknownKidRefetchInterval. Unavailable only when no keys are cached at all.
  absl::StatusOr<std::shared_ptr<const internal::KeySet>> Keys(bool unknown_kid);
  absl::StatusOr<std::shared_ptr<const internal::KeySet>> FileKeys();
  absl::StatusOr<std::shared_ptr<const internal::KeySet>> FetchedKeys(bool unknown_kid);
  // GETs the discovery document and the JWKS it points at.
  absl::StatusOr<std::shared_ptr<const internal::KeySet>> Fetch();

  const OidcOptions options_;

  // Serialises fetches, so concurrent callers that all need new keys cause one fetch. Taken
  // before mu_, never while holding it.
  std::mutex fetch_mu_;

  std::mutex mu_;
  std::shared_ptr<const internal::KeySet> keys_ ABSL_GUARDED_BY(mu_);
  // jwks_file: the identity of the file keys_ came from.
  struct FileStamp {
    long long mtime_ns = -1;
    long long size = -1;
    unsigned long long inode = 0;
    bool operator==(const FileStamp&) const = default;
  };
  FileStamp file_stamp_ ABSL_GUARDED_BY(mu_);
  // The version of the file that last failed to parse, so that it is reported once.
  std::optional<FileStamp> bad_file_stamp_ ABSL_GUARDED_BY(mu_);
  // Fetched keys: when keys_ arrived, when an unknown kid last caused a fetch, when a fetch last
  // failed and why.
  std::chrono::system_clock::time_point fetched_at_ ABSL_GUARDED_BY(mu_);
  std::chrono::system_clock::time_point last_kid_refetch_ ABSL_GUARDED_BY(mu_);
  std::chrono::system_clock::time_point last_failure_ ABSL_GUARDED_BY(mu_);
  absl::Status last_failure_status_ ABSL_GUARDED_BY(mu_);
  bool has_kid_refetched_ ABSL_GUARDED_BY(mu_) = false;
  bool has_failed_ ABSL_GUARDED_BY(mu_) = false;
};

namespace internal {

// base64url without padding (RFC 7515 §2): InvalidArgument on '=', characters outside the
// alphabet, a length of 4n+1, or non-zero unused bits in the last character.
absl::StatusOr<std::string> Base64UrlDecode(absl::string_view in);

}  // namespace internal

}  // namespace dagd::server::auth

#endif  // DAGD_SERVER_AUTH_OIDC_H_
