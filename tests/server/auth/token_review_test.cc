// TokenReviewAuthenticator against the Kubernetes API fake (tests/fakes/): real TokenReviews over
// HTTP on loopback, every request checked against ../shared/schemas (the fake exits 3 on a
// violation, which fails the test), service account tokens from --service-account-tokens, and
// the fake's request log to see which verdicts came from the cache.
#include "server/auth/token_review.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "runners/kubernetes/client/kube_client.h"
#include "tests/fakes/fake_kube_process.h"

namespace dagd::server::auth {
namespace {

using ::dagd::runners::kubernetes::ClusterConfig;
using ::dagd::runners::kubernetes::KubeClient;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using json = nlohmann::json;

constexpr char kReviewPath[] = "/apis/authentication.k8s.io/v1/tokenreviews";

std::string MakeTempDir() {
  std::string pattern = ::testing::TempDir() + "dagd-token-review-XXXXXX";
  if (mkdtemp(pattern.data()) == nullptr) ADD_FAILURE() << "mkdtemp " << pattern;
  return pattern;
}

class TokenReviewTest : public ::testing::Test {
 protected:
  TokenReviewTest()
      : dir_(MakeTempDir()),
        tokens_file_(dir_ + "/sa-tokens.json"),
        fake_(dir_, {"--service-account-tokens", tokens_file_}) {}

  ~TokenReviewTest() override {
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }

  void SetUp() override {
    WriteTokens({
        {"sa-token-builder", {{"namespace", "ci"}, {"name", "builder"}}},
        {"sa-token-dagd", {{"namespace", "ci"}, {"name", "deployer"}, {"audiences", {"dagd"}}}},
        {"sa-token-vault", {{"namespace", "ci"}, {"name", "vault"}, {"audiences", {"vault"}}}},
    });
    client_ = NewClient(fake_.token_file());
  }

  void TearDown() override {
    EXPECT_EQ(fake_.Stop(), 0) << "schema violations: " << fake_.violations();
    EXPECT_EQ(fake_.violations(), "");
  }

  // Replaces the fake's service account tokens (atomically: it re-reads them on every review).
  void WriteTokens(const json& tokens) {
    std::ofstream(tokens_file_ + ".tmp") << tokens.dump();
    std::filesystem::rename(tokens_file_ + ".tmp", tokens_file_);
  }

  // A client of the fake whose own bearer token is read from `token_file`.
  std::unique_ptr<KubeClient> NewClient(const std::string& token_file) {
    ClusterConfig config;
    config.server = fake_.server();
    config.token_file = token_file;
    auto client = KubeClient::Create(config);
    EXPECT_TRUE(client.ok()) << client.status();
    return client.ok() ? std::move(client).value() : nullptr;
  }

  std::unique_ptr<TokenReviewAuthenticator> NewAuthenticator(TokenReviewOptions options = {},
                                                             KubeClient* client = nullptr) {
    options.now = [this] { return now_.load(); };
    auto authenticator =
        TokenReviewAuthenticator::Create(client ? client : client_.get(), std::move(options));
    EXPECT_TRUE(authenticator.ok()) << authenticator.status();
    return authenticator.ok() ? std::move(authenticator).value() : nullptr;
  }

  // How many TokenReviews the fake has answered (its request log).
  int Reviews() {
    json log = json::parse(fake_.Get("/fake/requests"), nullptr, /*allow_exceptions=*/false);
    EXPECT_TRUE(log.is_object()) << "the fake's request log";
    int n = 0;
    for (const json& request : log.value("requests", json::array())) {
      if (request.value("path", "") == kReviewPath) ++n;
    }
    return n;
  }

  void Advance(std::chrono::seconds by) { now_.store(now_.load() + by); }

  std::string dir_;
  std::string tokens_file_;
  dagd::testing::FakeKubeProcess fake_;
  std::unique_ptr<KubeClient> client_;
  std::atomic<std::chrono::steady_clock::time_point> now_{std::chrono::steady_clock::time_point{} +
                                                          std::chrono::hours(1)};
};

TEST_F(TokenReviewTest, ServiceAccountTokenNamesItsAccountAndGroups) {
  auto authenticator = NewAuthenticator();
  EXPECT_STREQ(authenticator->method(), "tokenreview");
  absl::StatusOr<Principal> principal = authenticator->Authenticate("sa-token-builder");
  ASSERT_TRUE(principal.ok()) << principal.status();
  EXPECT_EQ(principal->name, "system:serviceaccount:ci:builder");
  EXPECT_THAT(principal->groups, ElementsAre("system:serviceaccounts", "system:serviceaccounts:ci",
                                             "system:authenticated"));
  EXPECT_EQ(principal->method, "tokenreview");
  EXPECT_EQ(Reviews(), 1);
}

TEST_F(TokenReviewTest, UnknownTokenIsUnauthenticatedWithTheApiServersReason) {
  auto authenticator = NewAuthenticator();
  absl::StatusOr<Principal> principal = authenticator->Authenticate("no-such-token");
  ASSERT_EQ(principal.status().code(), absl::StatusCode::kUnauthenticated) << principal.status();
  EXPECT_THAT(principal.status().message(), HasSubstr("invalid bearer token"));
  EXPECT_THAT(principal.status().message(), Not(HasSubstr("no-such-token")));
}

TEST_F(TokenReviewTest, RevokedTokenIsRefusedOnceItsCacheEntryExpires) {
  auto authenticator = NewAuthenticator({.cache_ttl = std::chrono::seconds(10)});
  ASSERT_TRUE(authenticator->Authenticate("sa-token-builder").ok());
  WriteTokens(json::object());  // revoked

  Advance(std::chrono::seconds(9));
  EXPECT_TRUE(authenticator->Authenticate("sa-token-builder").ok()) << "still cached";
  EXPECT_EQ(Reviews(), 1);

  Advance(std::chrono::seconds(1));
  absl::StatusOr<Principal> principal = authenticator->Authenticate("sa-token-builder");
  EXPECT_EQ(principal.status().code(), absl::StatusCode::kUnauthenticated) << principal.status();
  EXPECT_EQ(Reviews(), 2);
}

TEST_F(TokenReviewTest, AudiencesAreSentAndMustMatch) {
  auto authenticator = NewAuthenticator({.audiences = {"dagd"}});
  absl::StatusOr<Principal> principal = authenticator->Authenticate("sa-token-dagd");
  ASSERT_TRUE(principal.ok()) << principal.status();
  EXPECT_EQ(principal->name, "system:serviceaccount:ci:deployer");

  principal = authenticator->Authenticate("sa-token-vault");  // a token meant for another service
  ASSERT_EQ(principal.status().code(), absl::StatusCode::kUnauthenticated) << principal.status();
  EXPECT_THAT(principal.status().message(), HasSubstr("invalid for the target audiences"));

  // Without configured audiences, the API server decides by its own audience (the fake: any).
  EXPECT_TRUE(NewAuthenticator()->Authenticate("sa-token-vault").ok());
}

TEST_F(TokenReviewTest, ApiServerDownOrFailingIsUnavailableAndNotCached) {
  auto authenticator = NewAuthenticator();
  ASSERT_EQ(fake_
                .Post("/fake/faults", R"({"fail_next": {"count": 1, "code": 500,
                                           "path": "/apis/authentication.k8s.io/"}})")
                .empty(),
            false);
  absl::StatusOr<Principal> principal = authenticator->Authenticate("sa-token-builder");
  EXPECT_EQ(principal.status().code(), absl::StatusCode::kUnavailable) << principal.status();
  EXPECT_TRUE(authenticator->Authenticate("sa-token-builder").ok()) << "the 500 was not cached";

  ASSERT_EQ(fake_.Stop(), 0) << fake_.violations();
  principal = authenticator->Authenticate("no-such-token");
  EXPECT_EQ(principal.status().code(), absl::StatusCode::kUnavailable) << principal.status();
}

TEST_F(TokenReviewTest, RefusedOwnCredentialIsUnavailableWithTheRbacHint) {
  std::ofstream(dir_ + "/not-dagd-token") << "a-token-the-fake-does-not-accept\n";
  std::unique_ptr<KubeClient> stranger = NewClient(dir_ + "/not-dagd-token");
  auto authenticator = NewAuthenticator({}, stranger.get());
  absl::StatusOr<Principal> principal = authenticator->Authenticate("sa-token-builder");
  ASSERT_EQ(principal.status().code(), absl::StatusCode::kUnavailable) << principal.status();
  EXPECT_THAT(principal.status().message(), HasSubstr("401"));
  EXPECT_THAT(principal.status().message(), HasSubstr("`create` on `tokenreviews`"));
  EXPECT_THAT(principal.status().message(), HasSubstr("system:auth-delegator"));

  // 403: authenticated, but not allowed to review tokens (the fake has no RBAC: a fault).
  fake_.Post("/fake/faults", R"({"fail_next": {"count": 1, "code": 403,
                                 "path": "/apis/authentication.k8s.io/"}})");
  principal = NewAuthenticator()->Authenticate("sa-token-builder");
  ASSERT_EQ(principal.status().code(), absl::StatusCode::kUnavailable) << principal.status();
  EXPECT_THAT(principal.status().message(), HasSubstr("system:auth-delegator"));
}

TEST_F(TokenReviewTest, CachedVerdictsDoNotCallTheApi) {
  auto authenticator = NewAuthenticator();
  ASSERT_TRUE(authenticator->Authenticate("sa-token-builder").ok());
  EXPECT_EQ(authenticator->Authenticate("no-such-token").status().code(),
            absl::StatusCode::kUnauthenticated);
  ASSERT_EQ(Reviews(), 2);
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(authenticator->Authenticate("sa-token-builder").ok());
    EXPECT_EQ(authenticator->Authenticate("no-such-token").status().code(),
              absl::StatusCode::kUnauthenticated);
  }
  EXPECT_EQ(Reviews(), 2);

  ASSERT_EQ(fake_.Stop(), 0) << fake_.violations();  // positive and negative verdicts alike
  absl::StatusOr<Principal> principal = authenticator->Authenticate("sa-token-builder");
  ASSERT_TRUE(principal.ok()) << principal.status();
  EXPECT_EQ(principal->name, "system:serviceaccount:ci:builder");
  EXPECT_EQ(authenticator->Authenticate("no-such-token").status().code(),
            absl::StatusCode::kUnauthenticated);
}

TEST_F(TokenReviewTest, CacheIsBoundedAndCanBeTurnedOff) {
  auto bounded = NewAuthenticator({.max_cache_entries = 2});
  for (const char* token : {"sa-token-builder", "sa-token-dagd", "sa-token-vault"}) {
    ASSERT_TRUE(bounded->Authenticate(token).ok()) << token;
  }
  ASSERT_EQ(Reviews(), 3);
  EXPECT_TRUE(bounded->Authenticate("sa-token-vault").ok());
  EXPECT_EQ(Reviews(), 3);
  EXPECT_TRUE(bounded->Authenticate("sa-token-builder").ok());  // the oldest was evicted
  EXPECT_EQ(Reviews(), 4);

  auto uncached = NewAuthenticator({.cache_ttl = std::chrono::seconds(0)});
  EXPECT_TRUE(uncached->Authenticate("sa-token-builder").ok());
  EXPECT_TRUE(uncached->Authenticate("sa-token-builder").ok());
  EXPECT_EQ(Reviews(), 6);
}

TEST_F(TokenReviewTest, OversizeAndMalformedTokensAreRefusedWithoutCallingTheApi) {
  auto authenticator = NewAuthenticator();
  const size_t limit = TokenReviewAuthenticator::kMaxTokenBytes;
  for (const std::string& token :
       {std::string(limit, 'a'), std::string(10 * limit, 'a'), std::string(), std::string("a b"),
        std::string("line\nbreak"), std::string("nul\0byte", 8)}) {
    absl::StatusOr<Principal> principal = authenticator->Authenticate(token);
    EXPECT_EQ(principal.status().code(), absl::StatusCode::kUnauthenticated)
        << token.size() << " bytes: " << principal.status();
  }
  EXPECT_EQ(Reviews(), 0);

  // Just under the limit, and JWT-shaped: asked about (and unknown to the fake).
  const std::string jwt_like = "eyJhbGciOiJSUzI1NiJ9." + std::string(limit - 64, 'x') + ".sig";
  ASSERT_LT(jwt_like.size(), limit);
  EXPECT_EQ(authenticator->Authenticate(jwt_like).status().code(),
            absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(Reviews(), 1);
}

TEST_F(TokenReviewTest, ConcurrentCallersShareTheCache) {
  auto authenticator = NewAuthenticator();
  constexpr int kThreads = 6;
  std::vector<std::thread> threads;
  threads.reserve(kThreads);
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 20; ++i) {
        const bool good = (t + i) % 2 == 0;
        absl::StatusOr<Principal> principal =
            authenticator->Authenticate(good ? "sa-token-builder" : "no-such-token");
        if (principal.ok() != good) ++failures;
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_LE(Reviews(), 2 * kThreads);  // at most one miss per thread and token
}

TEST(TokenReviewCreateTest, RejectsBadOptions) {
  EXPECT_EQ(TokenReviewAuthenticator::Create(nullptr, {}).status().code(),
            absl::StatusCode::kInvalidArgument);
  ClusterConfig config;
  config.server = "http://127.0.0.1:1";
  auto client = KubeClient::Create(config);
  ASSERT_TRUE(client.ok()) << client.status();
  EXPECT_EQ(
      TokenReviewAuthenticator::Create(client->get(), {.audiences = {"dagd", ""}}).status().code(),
      absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(TokenReviewAuthenticator::Create(client->get(), {.cache_ttl = std::chrono::seconds(-1)})
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(TokenReviewAuthenticator::Create(client->get(), {}).ok());
}

}  // namespace
}  // namespace dagd::server::auth
