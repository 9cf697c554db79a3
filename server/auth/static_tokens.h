// StaticTokenAuthenticator: bearer tokens listed in a file, for small setups without an identity
// provider. The file holds only SHA-256 hashes of the tokens, never the tokens themselves, so a
// leaked file (or backup of it) grants nothing:
//
//   # dagd static tokens. Make a token:  head -c 32 /dev/urandom | base64 | tr -d '=+/'
//   # and its hash:                      printf %s "$TOKEN" | sha256sum
//   tokens:
//     - sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
//       user: alice
//       groups: [platform]
//
// A presented token is hashed and compared with every entry in constant time (no early exit,
// CRYPTO_memcmp), so timing tells nothing about which bytes matched. The file is re-read when it
// changes (modification time or size, checked at most once per `reload_interval`); a file that
// no longer parses leaves the previous tokens in force and is reported in dagd's log.
//
// Thread-safe.
#ifndef DAGD_SERVER_AUTH_STATIC_TOKENS_H_
#define DAGD_SERVER_AUTH_STATIC_TOKENS_H_

#include <array>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "server/auth/token_authenticator.h"

namespace dagd::server::auth {

struct StaticToken {
  std::array<unsigned char, 32> sha256{};
  std::string user;
  std::vector<std::string> groups;
};

// The entries of a static token file's text; InvalidArgument naming `file` and the line for
// anything else than the format above (unknown keys, a hash that is not 64 hex digits, an
// entry without a user, the same hash twice).
absl::StatusOr<std::vector<StaticToken>> ParseStaticTokens(const std::string& text,
                                                           const std::string& file);

class StaticTokenAuthenticator : public TokenAuthenticator {
 public:
  // Reads `path` once; its errors (NotFound, InvalidArgument) stop dagd from starting.
  static absl::StatusOr<std::unique_ptr<StaticTokenAuthenticator>> Create(
      std::string path, std::chrono::seconds reload_interval = std::chrono::seconds(5));

  const char* method() const override { return "static-token"; }
  absl::StatusOr<Principal> Authenticate(const std::string& token) override;

 private:
  StaticTokenAuthenticator(std::string path, std::chrono::seconds reload_interval)
      : path_(std::move(path)), reload_interval_(reload_interval) {}
  // Re-reads the file if it changed since the last read (at most once per reload interval).
  absl::Status Reload(bool force) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);

  const std::string path_;
  const std::chrono::seconds reload_interval_;
  std::mutex mutex_;
  std::vector<StaticToken> tokens_ ABSL_GUARDED_BY(mutex_);
  std::string stamp_ ABSL_GUARDED_BY(mutex_);  // mtime and size of the file last read
  std::chrono::steady_clock::time_point last_check_ ABSL_GUARDED_BY(mutex_);
};

}  // namespace dagd::server::auth

#endif  // DAGD_SERVER_AUTH_STATIC_TOKENS_H_
