#include "server/auth/token_review.h"

#include <openssl/evp.h>

#include <algorithm>
#include <iterator>
#include <optional>
#include <string_view>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"
#include "runners/kubernetes/client/errors.h"

namespace dagd::server::auth {
namespace {

using nlohmann::json;
using runners::kubernetes::HttpStatusOf;
using runners::kubernetes::KubeClient;
using runners::kubernetes::RequestOptions;
using runners::kubernetes::Response;

constexpr char kTokenReviewPath[] = "/apis/authentication.k8s.io/v1/tokenreviews";

constexpr char kRbacHint[] =
    "dagd's own credential may not review tokens: its service account needs `create` on "
    "`tokenreviews` (authentication.k8s.io), e.g. a ClusterRoleBinding to the ClusterRole "
    "system:auth-delegator";

// The cache key: SHA-256 of the token, 32 raw bytes.
std::string TokenKey(const std::string& token) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  if (EVP_Digest(token.data(), token.size(), digest, &size, EVP_sha256(), nullptr) != 1) {
    return "";  // not cached (Store and Lookup skip the empty key)
  }
  return std::string(reinterpret_cast<const char*>(digest), size);
}

// The token must never reach a message, even if the API server quotes it back.
std::string Scrub(absl::string_view text, const std::string& token) {
  return absl::StrReplaceAll(text, {{token, "<token>"}});
}

// Why `token` cannot be a bearer token worth asking about, or nullopt.
std::optional<std::string> Malformed(const std::string& token) {
  if (token.empty()) return "empty token";
  if (token.size() >= TokenReviewAuthenticator::kMaxTokenBytes) {
    return absl::StrCat("token of ", token.size(), " bytes refused unread (the limit is ",
                        TokenReviewAuthenticator::kMaxTokenBytes - 1, ")");
  }
  const bool printable = std::all_of(token.begin(), token.end(), [](char c) {
    return static_cast<unsigned char>(c) > 0x20 && static_cast<unsigned char>(c) < 0x7f;
  });
  if (!printable) return "not a bearer token: a character outside printable ASCII";
  return std::nullopt;
}

std::vector<std::string> Strings(const json& list) {
  std::vector<std::string> out;
  if (!list.is_array()) return out;
  for (const json& item : list) {
    if (item.is_string()) out.push_back(item.get<std::string>());
  }
  return out;
}

}  // namespace

absl::StatusOr<std::unique_ptr<TokenReviewAuthenticator>> TokenReviewAuthenticator::Create(
    KubeClient* client, TokenReviewOptions options) {
  if (client == nullptr) return absl::InvalidArgumentError("token review: no Kubernetes client");
  for (const std::string& audience : options.audiences) {
    if (audience.empty()) return absl::InvalidArgumentError("token review: an empty audience");
  }
  if (options.cache_ttl.count() < 0) {
    return absl::InvalidArgumentError("token review: cache_ttl is negative");
  }
  if (options.request_timeout.count() <= 0) {
    return absl::InvalidArgumentError("token review: request_timeout must be positive");
  }
  return std::unique_ptr<TokenReviewAuthenticator>(
      new TokenReviewAuthenticator(client, std::move(options)));
}

TokenReviewAuthenticator::TokenReviewAuthenticator(KubeClient* client, TokenReviewOptions options)
    : client_(client), options_(std::move(options)) {}

TokenReviewAuthenticator::Clock::time_point TokenReviewAuthenticator::Now() const {
  return options_.now ? options_.now() : Clock::now();
}

absl::StatusOr<Principal> TokenReviewAuthenticator::Authenticate(const std::string& token) {
  if (std::optional<std::string> why = Malformed(token)) {
    return absl::UnauthenticatedError(absl::StrCat("token review: ", *why));
  }
  const std::string key = TokenKey(token);
  absl::StatusOr<Principal> verdict;
  if (Lookup(key, &verdict)) return verdict;
  bool cacheable = false;
  verdict = Review(token, &cacheable);
  if (cacheable) Store(key, verdict);
  return verdict;
}

absl::StatusOr<Principal> TokenReviewAuthenticator::Review(const std::string& token,
                                                           bool* cacheable) {
  *cacheable = false;
  json review = {{"apiVersion", "authentication.k8s.io/v1"},
                 {"kind", "TokenReview"},
                 {"spec", {{"token", token}}}};
  if (!options_.audiences.empty()) review["spec"]["audiences"] = options_.audiences;
  RequestOptions request_options;
  request_options.timeout = options_.request_timeout;
  absl::StatusOr<Response> response =
      client_->Request("POST", kTokenReviewPath, {}, review, request_options);
  if (!response.ok()) {
    const absl::Status& error = response.status();
    const std::optional<int> http = HttpStatusOf(error);
    const std::string what = Scrub(error.message(), token);
    if (error.code() == absl::StatusCode::kUnauthenticated ||
        error.code() == absl::StatusCode::kPermissionDenied || http == 401 || http == 403) {
      return absl::UnavailableError(absl::StrCat("token review: ", what, "; ", kRbacHint));
    }
    return absl::UnavailableError(absl::StrCat("token review: ", what));
  }

  const std::string& server = client_->server();
  const json& body = response->json;
  if (!body.is_object() || !body.contains("status") || !body["status"].is_object()) {
    return absl::UnavailableError(absl::StrCat("token review: kubernetes API ", server,
                                               " answered with no TokenReview status"));
  }
  const json& status = body["status"];
  // Go's omitempty: a token that is not authenticated has no `authenticated` field at all.
  const bool authenticated = status.contains("authenticated") &&
                             status["authenticated"].is_boolean() &&
                             status["authenticated"].get<bool>();
  if (!authenticated) {
    *cacheable = true;
    std::string reason = "not authenticated";
    if (status.contains("error") && status["error"].is_string() &&
        !status["error"].get<std::string>().empty()) {
      absl::StrAppend(&reason, ": ", Scrub(status["error"].get<std::string>(), token));
    }
    return absl::UnauthenticatedError(
        absl::StrCat("token review by kubernetes API ", server, ": ", reason));
  }

  const json empty = json::object();
  const json& user = status.contains("user") && status["user"].is_object() ? status["user"] : empty;
  Principal principal;
  if (user.contains("username") && user["username"].is_string()) {
    principal.name = user["username"].get<std::string>();
  }
  if (principal.name.empty()) {
    return absl::UnauthenticatedError(absl::StrCat("token review by kubernetes API ", server,
                                                   ": authenticated, but named no user"));
  }
  if (user.contains("groups")) principal.groups = Strings(user["groups"]);
  principal.method = method();

  if (!options_.audiences.empty()) {
    // An audience-aware API server confirms which of the requested audiences the token is for;
    // one that ignored spec.audiences would vouch for tokens meant for someone else.
    const std::vector<std::string> confirmed =
        status.contains("audiences") ? Strings(status["audiences"]) : std::vector<std::string>{};
    const bool match = std::any_of(confirmed.begin(), confirmed.end(), [&](const std::string& a) {
      return std::find(options_.audiences.begin(), options_.audiences.end(), a) !=
             options_.audiences.end();
    });
    if (!match) {
      *cacheable = true;
      return absl::UnauthenticatedError(absl::StrCat(
          "token review by kubernetes API ", server, ": authenticated ", principal.name,
          " but confirmed none of the audiences [", absl::StrJoin(options_.audiences, ", "),
          "] (it confirmed [", absl::StrJoin(confirmed, ", "), "])"));
    }
  }
  *cacheable = true;
  return principal;
}

bool TokenReviewAuthenticator::Lookup(const std::string& key, absl::StatusOr<Principal>* verdict) {
  if (key.empty()) return false;
  const Clock::time_point now = Now();
  std::lock_guard<std::mutex> lock(mu_);
  while (!entries_.empty() && entries_.front().expires <= now) {
    index_.erase(entries_.front().key);
    entries_.pop_front();
  }
  auto it = index_.find(key);
  if (it == index_.end() || it->second->expires <= now) return false;
  *verdict = it->second->verdict;
  return true;
}

void TokenReviewAuthenticator::Store(const std::string& key,
                                     const absl::StatusOr<Principal>& verdict) {
  if (key.empty() || options_.cache_ttl.count() == 0 || options_.max_cache_entries == 0) return;
  std::lock_guard<std::mutex> lock(mu_);
  // Under the lock, so that entries_ stays in the order of expiry.
  const Clock::time_point expires = Now() + options_.cache_ttl;
  if (auto it = index_.find(key); it != index_.end()) {
    entries_.erase(it->second);
    index_.erase(it);
  }
  while (entries_.size() >= options_.max_cache_entries) {
    index_.erase(entries_.front().key);
    entries_.pop_front();
  }
  entries_.push_back(Entry{key, verdict, expires});
  index_.emplace(key, std::prev(entries_.end()));
}

}  // namespace dagd::server::auth
