// KubeClient against a real HTTP(S) server on loopback (test_server.h): plain HTTP, TLS with a
// generated CA, mutual TLS, bearer tokens and their rotation, Kubernetes Status errors, refused
// connections, timeouts, and watch/log streams with cancellation from another thread.
#include "runners/kubernetes/client/kube_client.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/escaping.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/runners/kubernetes/client/test_server.h"

namespace dagd::runners::kubernetes {
namespace {

using testing::Collector;
using ::testing::ElementsAre;
using testing::Event;
using testing::Feed;
using ::testing::HasSubstr;
using testing::ResponseWriter;
using testing::TempDir;
using testing::TestCerts;
using testing::TestHttpServer;
using testing::TestRequest;
using testing::TestServerOptions;
using testing::WriteFile;
using namespace std::chrono_literals;

constexpr auto kDeadline = 10s;  // for waits that should take milliseconds

nlohmann::json KubeStatus(int code, const std::string& reason, const std::string& message) {
  return {{"kind", "Status"},    {"apiVersion", "v1"}, {"metadata", nlohmann::json::object()},
          {"status", "Failure"}, {"message", message}, {"reason", reason},
          {"code", code}};
}

// Certificates are made once for the whole binary: openssl takes a moment.
class CertsEnvironment {
 public:
  static const TestCerts& Get() {
    static CertsEnvironment* env = new CertsEnvironment();
    return env->certs_;
  }

 private:
  CertsEnvironment() : dir_(new TempDir()) {
    if (!testing::MakeTestCerts(dir_->path(), &certs_)) certs_ = TestCerts{};
  }
  TempDir* dir_;  // leaked on purpose: lives as long as the process
  TestCerts certs_;
};

// A manual clock for the token's age.
class ManualClock {
 public:
  std::chrono::steady_clock::time_point Now() const { return start_ + offset_.load(); }
  void Advance(std::chrono::milliseconds by) { offset_ = offset_.load() + by; }
  std::function<std::chrono::steady_clock::time_point()> Fn() {
    return [this] { return Now(); };
  }

 private:
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
  std::atomic<std::chrono::milliseconds> offset_{0ms};
};

class KubeClientTest : public ::testing::Test {
 protected:
  ~KubeClientTest() override {
    for (Feed* feed : feeds_) feed->Close();  // release blocked handlers before the server dies
    server_.reset();
  }

  // Starts a server with `handler`.
  void Serve(TestServerOptions options, testing::Handler handler) {
    server_ = std::make_unique<TestHttpServer>(std::move(options), std::move(handler));
  }
  void ServePlain(testing::Handler handler) { Serve({}, std::move(handler)); }
  void ServeTls(testing::Handler handler, bool mutual = false) {
    const TestCerts& certs = CertsEnvironment::Get();
    ASSERT_FALSE(certs.ca_cert.empty()) << "no test certificates";
    TestServerOptions options;
    options.tls = true;
    options.cert_file = certs.server_cert;
    options.key_file = certs.server_key;
    if (mutual) options.client_ca_file = certs.ca_cert;
    Serve(options, std::move(handler));
  }

  std::unique_ptr<KubeClient> Client(ClusterConfig config, KubeClientOptions options = {}) {
    if (config.server.empty()) config.server = server_->url();
    absl::StatusOr<std::unique_ptr<KubeClient>> client =
        KubeClient::Create(std::move(config), std::move(options));
    EXPECT_TRUE(client.ok()) << client.status();
    return client.ok() ? std::move(client).value() : nullptr;
  }

  Feed* NewFeed() {
    feeds_.push_back(new Feed());
    owned_feeds_.emplace_back(feeds_.back());
    return feeds_.back();
  }

  // A handler that streams what `feed` gives until it is closed.
  static testing::Handler Streamer(Feed* feed) {
    return [feed](const TestRequest&, ResponseWriter& w) {
      w.StartStream(200, "application/json");
      while (std::optional<std::string> piece = feed->Pop()) {
        if (!w.WriteChunk(*piece)) return;
      }
      w.EndStream();
    };
  }

  TempDir dir_;
  Event release_;  // outlives server_, whose handlers may wait on it
  std::unique_ptr<TestHttpServer> server_;
  std::vector<Feed*> feeds_;
  std::vector<std::unique_ptr<Feed>> owned_feeds_;
};

// ----- plain HTTP -----

TEST_F(KubeClientTest, GetReturnsParsedJsonAndSendsQuery) {
  ServePlain([](const TestRequest&, ResponseWriter& w) {
    w.SendJson(200, {{"kind", "JobList"}, {"items", nlohmann::json::array()}});
  });
  auto client = Client({});
  ASSERT_NE(client, nullptr);
  absl::StatusOr<Response> response =
      client->Request("GET", "/apis/batch/v1/namespaces/ns/jobs",
                      {{"labelSelector", "dagd.dev/run=r1,app in (a b)"}, {"limit", "500"}});
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->http_status, 200);
  EXPECT_EQ(response->json["kind"], "JobList");
  std::vector<TestRequest> requests = server_->requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].method, "GET");
  EXPECT_EQ(requests[0].path, "/apis/batch/v1/namespaces/ns/jobs");
  EXPECT_EQ(requests[0].query,
            "labelSelector=dagd.dev%2Frun%3Dr1%2Capp%20in%20%28a%20b%29&limit=500");
  EXPECT_EQ(requests[0].headers["accept"], "application/json");
  EXPECT_EQ(requests[0].headers.count("authorization"), 0u);
}

TEST_F(KubeClientTest, PostSendsJsonBody) {
  ServePlain([](const TestRequest& r, ResponseWriter& w) {
    nlohmann::json object = nlohmann::json::parse(r.body);
    object["metadata"]["uid"] = "u-1";
    w.SendJson(201, object);
  });
  auto client = Client({});
  ASSERT_NE(client, nullptr);
  nlohmann::json job = {{"apiVersion", "batch/v1"}, {"kind", "Job"}, {"metadata", {{"name", "j"}}}};
  absl::StatusOr<Response> response =
      client->Request("POST", "/apis/batch/v1/namespaces/ns/jobs", {}, job);
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->http_status, 201);
  EXPECT_EQ(response->json["metadata"]["uid"], "u-1");
  TestRequest request = server_->requests().at(0);
  EXPECT_EQ(request.method, "POST");
  EXPECT_EQ(request.headers["content-type"], "application/json");
  EXPECT_EQ(nlohmann::json::parse(request.body), job);
}

TEST_F(KubeClientTest, DeleteWithBodyAndPatchWithContentType) {
  ServePlain([](const TestRequest&, ResponseWriter& w) { w.SendJson(200, {{"kind", "Status"}}); });
  auto client = Client({});
  ASSERT_NE(client, nullptr);
  ASSERT_TRUE(client
                  ->Request("DELETE", "/apis/batch/v1/namespaces/ns/jobs/j", {},
                            nlohmann::json{{"propagationPolicy", "Background"}})
                  .ok());
  RequestOptions patch;
  patch.content_type = "application/merge-patch+json";
  ASSERT_TRUE(client
                  ->Request("PATCH", "/api/v1/namespaces/ns/configmaps/c", {},
                            nlohmann::json{{"data", {{"k", "v"}}}}, patch)
                  .ok());
  std::vector<TestRequest> requests = server_->requests();
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(requests[0].method, "DELETE");
  EXPECT_EQ(nlohmann::json::parse(requests[0].body)["propagationPolicy"], "Background");
  EXPECT_EQ(requests[1].method, "PATCH");
  EXPECT_EQ(requests[1].headers["content-type"], "application/merge-patch+json");
}

TEST_F(KubeClientTest, ConnectionsAreReused) {
  ServePlain(
      [](const TestRequest&, ResponseWriter& w) { w.SendJson(200, nlohmann::json::object()); });
  auto client = Client({});
  ASSERT_NE(client, nullptr);
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(client->Request("GET", "/api").ok());
  EXPECT_EQ(server_->requests().size(), 5u);
  EXPECT_EQ(server_->connections(), 1);
}

TEST_F(KubeClientTest, NonJsonBodyIsKeptRaw) {
  ServePlain(
      [](const TestRequest&, ResponseWriter& w) { w.Send(200, "text/plain", "line 1\nline 2\n"); });
  auto client = Client({});
  ASSERT_NE(client, nullptr);
  absl::StatusOr<Response> response = client->Request("GET", "/api/v1/namespaces/ns/pods/p/log");
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->body, "line 1\nline 2\n");
  EXPECT_TRUE(response->json.is_null());
}

TEST_F(KubeClientTest, JsonThatDoesNotParseIsInternal) {
  ServePlain(
      [](const TestRequest&, ResponseWriter& w) { w.Send(200, "application/json", "{oops"); });
  auto client = Client({});
  ASSERT_NE(client, nullptr);
  absl::StatusOr<Response> response = client->Request("GET", "/api");
  EXPECT_EQ(response.status().code(), absl::StatusCode::kInternal);
  EXPECT_THAT(std::string(response.status().message()), HasSubstr(server_->url()));
}

// ----- errors -----

TEST_F(KubeClientTest, StatusErrorsCarryKubernetesMessage) {
  ServePlain([](const TestRequest& r, ResponseWriter& w) {
    if (r.path == "/404") {
      w.SendJson(404, KubeStatus(404, "NotFound", "jobs.batch \"x\" not found"));
    }
    if (r.path == "/409") {
      w.SendJson(409, KubeStatus(409, "AlreadyExists", "jobs.batch \"x\" already exists"));
    }
    if (r.path == "/422") {
      w.SendJson(422,
                 KubeStatus(422, "Invalid",
                            "Job.batch \"X\" is invalid: metadata.name: Invalid value: \"X\""));
    }
    if (r.path == "/500") w.SendJson(500, KubeStatus(500, "InternalError", "etcdserver: timeout"));
    if (r.path == "/503") w.Send(503, "text/plain", "upstream connect error\n");
    if (r.path == "/410") w.SendJson(410, KubeStatus(410, "Expired", "too old resource version"));
    if (r.path == "/401") w.SendJson(401, KubeStatus(401, "Unauthorized", "Unauthorized"));
    if (r.path == "/403") {
      w.SendJson(403,
                 KubeStatus(403, "Forbidden", "jobs.batch is forbidden: User \"u\" cannot create"));
    }
  });
  auto client = Client({});
  ASSERT_NE(client, nullptr);
  const std::string server = server_->url();

  absl::Status s = client->Request("GET", "/404").status();
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(std::string(s.message()),
            "kubernetes API " + server + ": 404 Not Found: jobs.batch \"x\" not found");

  s = client->Request("POST", "/409", {}, nlohmann::json::object()).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(std::string(s.message()),
            "kubernetes API " + server + ": 409 Conflict: jobs.batch \"x\" already exists");

  s = client->Request("POST", "/422", {}, nlohmann::json::object()).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(std::string(s.message()), "kubernetes API " + server +
                                          ": 422 Unprocessable Entity: Job.batch \"X\" is invalid: "
                                          "metadata.name: Invalid value: \"X\"");

  s = client->Request("GET", "/500").status();
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(std::string(s.message()),
            "kubernetes API " + server + ": 500 Internal Server Error: etcdserver: timeout");

  s = client->Request("GET", "/503").status();
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(std::string(s.message()),
            "kubernetes API " + server + ": 503 Service Unavailable: upstream connect error");

  s = client->Request("GET", "/410").status();
  EXPECT_TRUE(IsGone(s));

  EXPECT_EQ(client->Request("GET", "/401").status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(client->Request("GET", "/403").status().code(), absl::StatusCode::kPermissionDenied);
}

// A port nobody listens on: bound, then closed.
int ClosedPort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

TEST_F(KubeClientTest, ConnectionRefusedIsUnavailableNamingTheServer) {
  ClusterConfig config;
  config.server = "http://127.0.0.1:" + std::to_string(ClosedPort());
  auto client = Client(config);
  ASSERT_NE(client, nullptr);
  absl::Status s = client->Request("GET", "/api").status();
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(s.message()),
              HasSubstr("kubernetes API " + config.server + ": cannot connect: "));
  EXPECT_THAT(std::string(s.message()), HasSubstr("refused"));
  EXPECT_THAT(std::string(s.message()), HasSubstr("check that the server is up"));

  // Streams too.
  s = client->Watch(
      "/api/v1/pods", {{"watch", "1"}}, [](std::string_view) { return absl::OkStatus(); }, nullptr);
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
}

TEST_F(KubeClientTest, ServerThatNeverCompletesTheConnectionIsUnavailable) {
  // A listening socket nobody accept()s: the kernel completes TCP, but the TLS handshake never
  // gets an answer.
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(listen(fd, 8), 0);
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ClusterConfig config;
  config.server = "https://127.0.0.1:" + std::to_string(ntohs(addr.sin_port));
  config.insecure_skip_tls_verify = true;
  KubeClientOptions options;
  options.connect_timeout = 200ms;
  auto client = Client(config, options);
  ASSERT_NE(client, nullptr);
  absl::Status s = client->Request("GET", "/api").status();
  close(fd);
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable) << s;
  EXPECT_THAT(std::string(s.message()),
              HasSubstr("kubernetes API " + config.server + ": cannot connect"));
}

TEST_F(KubeClientTest, TimeoutIsDeadlineExceeded) {
  Event& release = release_;
  ServePlain([&release](const TestRequest&, ResponseWriter& w) {
    release.WaitFor(kDeadline);
    w.SendJson(200, nlohmann::json::object());
  });
  auto client = Client({});
  ASSERT_NE(client, nullptr);
  RequestOptions options;
  options.timeout = 200ms;
  auto start = std::chrono::steady_clock::now();
  absl::Status s = client->Request("GET", "/slow", {}, std::nullopt, options).status();
  auto took = std::chrono::steady_clock::now() - start;
  release.Notify();
  EXPECT_EQ(s.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(std::string(s.message()), HasSubstr(server_->url()));
  EXPECT_GE(took, 200ms);
  EXPECT_LT(took, 5s);
}

TEST_F(KubeClientTest, RequestCanBeCancelled) {
  Event& release = release_;
  Collector arrived;
  ServePlain([&release, &arrived](const TestRequest& r, ResponseWriter& w) {
    arrived.Add(r.path);
    release.WaitFor(kDeadline);
    w.SendJson(200, nlohmann::json::object());
  });
  auto client = Client({});
  ASSERT_NE(client, nullptr);
  CancelToken cancel;
  RequestOptions options;
  options.cancel = &cancel;
  absl::Status result;
  std::thread caller(
      [&] { result = client->Request("GET", "/slow", {}, std::nullopt, options).status(); });
  bool reached = arrived.WaitForCount(1, kDeadline);
  cancel.Cancel();
  caller.join();
  release.Notify();
  server_.reset();  // its handler uses `arrived`
  EXPECT_TRUE(reached);
  EXPECT_EQ(result.code(), absl::StatusCode::kCancelled) << result;
}

TEST_F(KubeClientTest, CreateRejectsBadConfig) {
  ClusterConfig config;
  config.server = "ftp://x";
  EXPECT_EQ(KubeClient::Create(config).status().code(), absl::StatusCode::kInvalidArgument);
  config.server = "https://";
  EXPECT_EQ(KubeClient::Create(config).status().code(), absl::StatusCode::kInvalidArgument);
  config.server = "https://k:6443";
  config.ca_file = dir_.File("missing-ca.crt");
  absl::Status s = KubeClient::Create(config).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(s.message()), HasSubstr(dir_.File("missing-ca.crt")));
  config.ca_file.clear();
  config.client_cert_data = "CERT";
  EXPECT_EQ(KubeClient::Create(config).status().code(), absl::StatusCode::kInvalidArgument);
  config.client_cert_data.clear();
  config.token_file = dir_.File("missing-token");
  s = KubeClient::Create(config).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(s.message()), HasSubstr(dir_.File("missing-token")));
}

// ----- bearer tokens -----

TEST_F(KubeClientTest, StaticTokenIsSent) {
  ServePlain(
      [](const TestRequest&, ResponseWriter& w) { w.SendJson(200, nlohmann::json::object()); });
  ClusterConfig config;
  config.token = "static-token";
  auto client = Client(config);
  ASSERT_NE(client, nullptr);
  ASSERT_TRUE(client->Request("GET", "/api").ok());
  EXPECT_EQ(server_->requests().at(0).headers["authorization"], "Bearer static-token");
}

TEST_F(KubeClientTest, TokenFileIsReReadAfterAMinute) {
  ServePlain(
      [](const TestRequest&, ResponseWriter& w) { w.SendJson(200, nlohmann::json::object()); });
  std::string token_file = dir_.File("token");
  WriteFile(token_file, "token-one\n");
  ManualClock clock;
  ClusterConfig config;
  config.token_file = token_file;
  config.token = "ignored-when-a-file-is-given";
  KubeClientOptions options;
  options.now = clock.Fn();
  auto client = Client(config, options);
  ASSERT_NE(client, nullptr);

  auto last_authorization = [&] {
    EXPECT_TRUE(client->Request("GET", "/api").ok());
    return server_->requests().back().headers["authorization"];
  };
  EXPECT_EQ(last_authorization(), "Bearer token-one");

  WriteFile(token_file, "token-two\n");                 // the kubelet rotates the projected token
  EXPECT_EQ(last_authorization(), "Bearer token-one");  // read less than a minute ago
  clock.Advance(59s);
  EXPECT_EQ(last_authorization(), "Bearer token-one");
  clock.Advance(1s);
  EXPECT_EQ(last_authorization(), "Bearer token-two");

  // A file that vanishes for a moment (being replaced) keeps the last good token.
  std::remove(token_file.c_str());
  clock.Advance(61s);
  EXPECT_EQ(last_authorization(), "Bearer token-two");
  WriteFile(token_file, "token-three");
  EXPECT_EQ(last_authorization(), "Bearer token-two");  // the failed read counted as a read
  clock.Advance(60s);
  EXPECT_EQ(last_authorization(), "Bearer token-three");
}

// ----- TLS -----

TEST_F(KubeClientTest, HttpsWithCaFile) {
  ServeTls([](const TestRequest&, ResponseWriter& w) { w.SendJson(200, {{"tls", true}}); });
  ClusterConfig config;
  config.ca_file = CertsEnvironment::Get().ca_cert;
  auto client = Client(config);
  ASSERT_NE(client, nullptr);
  absl::StatusOr<Response> response = client->Request("GET", "/version");
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->json["tls"], true);
  EXPECT_EQ(server_->requests().at(0).client_subject, "");
}

TEST_F(KubeClientTest, HttpsWithInlineCaData) {
  ServeTls([](const TestRequest&, ResponseWriter& w) { w.SendJson(200, {{"tls", true}}); });
  ClusterConfig config;
  config.ca_data = testing::ReadFile(CertsEnvironment::Get().ca_cert);
  auto client = Client(config);
  ASSERT_NE(client, nullptr);
  absl::StatusOr<Response> response = client->Request("GET", "/version");
  ASSERT_TRUE(response.ok()) << response.status();
}

TEST_F(KubeClientTest, HttpsWithTheWrongCaFails) {
  ServeTls(
      [](const TestRequest&, ResponseWriter& w) { w.SendJson(200, nlohmann::json::object()); });
  ClusterConfig config;
  config.ca_file = CertsEnvironment::Get().other_ca_cert;
  auto client = Client(config);
  ASSERT_NE(client, nullptr);
  absl::Status s = client->Request("GET", "/version").status();
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(s.message()), HasSubstr("kubernetes API " + server_->url()));
  EXPECT_THAT(std::string(s.message()), HasSubstr("certificate"));
  EXPECT_TRUE(server_->requests().empty());

  // Inline data must replace the system bundle just as strictly.
  config.ca_file.clear();
  config.ca_data = testing::ReadFile(CertsEnvironment::Get().other_ca_cert);
  client = Client(config);
  ASSERT_NE(client, nullptr);
  EXPECT_EQ(client->Request("GET", "/version").status().code(), absl::StatusCode::kUnavailable);

  // insecure-skip-tls-verify accepts it.
  config.insecure_skip_tls_verify = true;
  client = Client(config);
  ASSERT_NE(client, nullptr);
  EXPECT_TRUE(client->Request("GET", "/version").ok());
}

TEST_F(KubeClientTest, MutualTlsWithCertificateFiles) {
  ServeTls([](const TestRequest&, ResponseWriter& w) { w.SendJson(200, nlohmann::json::object()); },
           /*mutual=*/true);
  const TestCerts& certs = CertsEnvironment::Get();
  ClusterConfig config;
  config.ca_file = certs.ca_cert;
  config.client_cert_file = certs.client_cert;
  config.client_key_file = certs.client_key;
  auto client = Client(config);
  ASSERT_NE(client, nullptr);
  absl::StatusOr<Response> response = client->Request("GET", "/api");
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_THAT(server_->requests().at(0).client_subject, HasSubstr("CN=dagd-test-client"));
  EXPECT_THAT(server_->requests().at(0).client_subject, HasSubstr("O=system:masters"));
}

TEST_F(KubeClientTest, MutualTlsWithInlineCertificateData) {
  ServeTls([](const TestRequest&, ResponseWriter& w) { w.SendJson(200, nlohmann::json::object()); },
           /*mutual=*/true);
  const TestCerts& certs = CertsEnvironment::Get();
  ClusterConfig config;
  config.ca_data = testing::ReadFile(certs.ca_cert);
  config.client_cert_data = testing::ReadFile(certs.client_cert);
  config.client_key_data = testing::ReadFile(certs.client_key);
  auto client = Client(config);
  ASSERT_NE(client, nullptr);
  absl::StatusOr<Response> response = client->Request("GET", "/api");
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_THAT(server_->requests().at(0).client_subject, HasSubstr("CN=dagd-test-client"));
}

TEST_F(KubeClientTest, MutualTlsWithoutCertificateIsRefused) {
  ServeTls([](const TestRequest&, ResponseWriter& w) { w.SendJson(200, nlohmann::json::object()); },
           /*mutual=*/true);
  ClusterConfig config;
  config.ca_file = CertsEnvironment::Get().ca_cert;
  auto client = Client(config);
  ASSERT_NE(client, nullptr);
  absl::Status s = client->Request("GET", "/api").status();
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr("kubernetes API " + server_->url()));
  EXPECT_TRUE(server_->requests().empty());
}

TEST_F(KubeClientTest, BadClientKeyIsFailedPrecondition) {
  ServeTls([](const TestRequest&, ResponseWriter& w) { w.SendJson(200, nlohmann::json::object()); },
           /*mutual=*/true);
  const TestCerts& certs = CertsEnvironment::Get();
  ClusterConfig config;
  config.ca_file = certs.ca_cert;
  config.client_cert_file = certs.client_cert;
  config.client_key_file = dir_.File("garbage.key");
  WriteFile(config.client_key_file, "not a key\n");
  auto client = Client(config);
  ASSERT_NE(client, nullptr);
  absl::Status s = client->Request("GET", "/api").status();
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr("kubernetes API " + server_->url()));
}

TEST_F(KubeClientTest, ConcurrentRequestsFromManyThreads) {
  ServeTls([](const TestRequest& r, ResponseWriter& w) { w.SendJson(200, {{"path", r.path}}); });
  ClusterConfig config;
  config.ca_file = CertsEnvironment::Get().ca_cert;
  config.token = "t";
  auto client = Client(config);
  ASSERT_NE(client, nullptr);
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 10; ++i) {
        std::string path = "/t" + std::to_string(t) + "/" + std::to_string(i);
        absl::StatusOr<Response> response = client->Request("GET", path);
        if (response.ok() && response->json["path"] == path) ok++;
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(ok.load(), 40);
  EXPECT_LE(server_->connections(), 8);  // pooled, not one per request
}

// ----- from the loaders to the wire -----

TEST_F(KubeClientTest, InClusterConfigTalksToTheServer) {
  ServeTls([](const TestRequest&, ResponseWriter& w) {
    w.SendJson(200, {{"kind", "APIVersions"}});
  });
  WriteFile(dir_.File("token"), "sa-token-1\n");
  WriteFile(dir_.File("ca.crt"), testing::ReadFile(CertsEnvironment::Get().ca_cert));
  WriteFile(dir_.File("namespace"), "dagd");
  std::string port = std::to_string(server_->port());
  InClusterOptions in_cluster;
  in_cluster.root = dir_.path();
  in_cluster.getenv = [&port](const char* name) -> const char* {
    if (std::string(name) == "KUBERNETES_SERVICE_HOST") return "127.0.0.1";
    if (std::string(name) == "KUBERNETES_SERVICE_PORT") return port.c_str();
    return nullptr;
  };
  absl::StatusOr<ClusterConfig> config = LoadInClusterConfig(in_cluster);
  ASSERT_TRUE(config.ok()) << config.status();
  ManualClock clock;
  KubeClientOptions options;
  options.now = clock.Fn();
  auto client = Client(*config, options);
  ASSERT_NE(client, nullptr);
  EXPECT_EQ(client->server(), server_->url());
  ASSERT_TRUE(client->Request("GET", "/api").ok());
  EXPECT_EQ(server_->requests().back().headers["authorization"], "Bearer sa-token-1");
  WriteFile(dir_.File("token"), "sa-token-2\n");
  clock.Advance(61s);
  ASSERT_TRUE(client->Request("GET", "/api").ok());
  EXPECT_EQ(server_->requests().back().headers["authorization"], "Bearer sa-token-2");
}

TEST_F(KubeClientTest, KubeconfigWithInlineClientCertificateTalksToTheServer) {
  ServeTls([](const TestRequest&, ResponseWriter& w) { w.SendJson(200, nlohmann::json::object()); },
           /*mutual=*/true);
  const TestCerts& certs = CertsEnvironment::Get();
  auto b64 = [](const std::string& path) { return absl::Base64Escape(testing::ReadFile(path)); };
  std::string kubeconfig = dir_.File("kubeconfig");
  WriteFile(kubeconfig,
            "current-context: test\n"
            "clusters:\n"
            "- name: loopback\n"
            "  cluster:\n"
            "    server: " +
                server_->url() +
                "\n"
                "    certificate-authority-data: " +
                b64(certs.ca_cert) +
                "\n"
                "users:\n"
                "- name: admin\n"
                "  user:\n"
                "    client-certificate-data: " +
                b64(certs.client_cert) +
                "\n"
                "    client-key-data: " +
                b64(certs.client_key) +
                "\n"
                "contexts:\n"
                "- name: test\n"
                "  context: {cluster: loopback, user: admin, namespace: ci}\n");
  absl::StatusOr<ClusterConfig> config = LoadKubeconfig(kubeconfig);
  ASSERT_TRUE(config.ok()) << config.status();
  auto client = Client(*config);
  ASSERT_NE(client, nullptr);
  absl::StatusOr<Response> response = client->Request("GET", "/api");
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_THAT(server_->requests().at(0).client_subject, HasSubstr("CN=dagd-test-client"));
}

// ----- watch and log streams -----

TEST_F(KubeClientTest, WatchDeliversEachLineAsItArrives) {
  Feed* feed = NewFeed();
  ServePlain(Streamer(feed));
  auto client = Client({});
  ASSERT_NE(client, nullptr);
  Collector lines;
  absl::Status result;
  std::thread watcher([&] {
    result = client->Watch(
        "/apis/batch/v1/namespaces/ns/jobs", {{"watch", "1"}, {"resourceVersion", "7"}},
        [&](std::string_view line) {
          lines.Add(std::string(line));
          return absl::OkStatus();
        },
        nullptr);
  });
  // Each event is seen before the next is even sent: nothing waits for the end of the stream.
  feed->Push("{\"type\":\"ADDED\",\"n\":1}\n");
  ASSERT_TRUE(lines.WaitForCount(1, kDeadline));
  feed->Push("{\"type\":\"MODIFIED\",");  // a line split across chunks
  feed->Push("\"n\":2}\n{\"type\":\"DELETED\",\"n\":3}\n\n");
  ASSERT_TRUE(lines.WaitForCount(3, kDeadline));
  feed->Push("{\"type\":\"BOOKMARK\"}");  // the last line lacks its newline
  feed->Close();                          // the server ends the stream (timeoutSeconds)
  watcher.join();
  EXPECT_TRUE(result.ok()) << result;
  EXPECT_THAT(lines.items(),
              ElementsAre("{\"type\":\"ADDED\",\"n\":1}", "{\"type\":\"MODIFIED\",\"n\":2}",
                          "{\"type\":\"DELETED\",\"n\":3}", "{\"type\":\"BOOKMARK\"}"));
  TestRequest request = server_->requests().at(0);
  EXPECT_EQ(request.query, "watch=1&resourceVersion=7");
}

TEST_F(KubeClientTest, WatchIsCancelledPromptlyFromAnotherThread) {
  Feed* feed = NewFeed();
  ServePlain(Streamer(feed));
  auto client = Client({});
  ASSERT_NE(client, nullptr);
  CancelToken cancel;
  Collector lines;
  Event done;
  absl::Status result;
  std::thread watcher([&] {
    result = client->Watch(
        "/api/v1/pods", {{"watch", "1"}},
        [&](std::string_view line) {
          lines.Add(std::string(line));
          return absl::OkStatus();
        },
        &cancel);
    done.Notify();
  });
  feed->Push("{\"type\":\"ADDED\"}\n");
  ASSERT_TRUE(lines.WaitForCount(1, kDeadline));
  // The stream is idle now; the watcher sits in libcurl's poll.
  auto start = std::chrono::steady_clock::now();
  cancel.Cancel();
  ASSERT_TRUE(done.WaitFor(kDeadline));
  auto took = std::chrono::steady_clock::now() - start;
  watcher.join();
  EXPECT_EQ(result.code(), absl::StatusCode::kCancelled) << result;
  EXPECT_THAT(std::string(result.message()), HasSubstr(server_->url()));
  // Woken at once (curl_multi_wakeup), not found at the next poll timeout: without the wakeup
  // this takes ~200 ms (libcurl's internal timers) to a second (the client's longest poll).
  EXPECT_LT(took, 100ms);

  // A cancelled token stops later calls before they start.
  result = client->Watch(
      "/api/v1/pods", {{"watch", "1"}}, [](std::string_view) { return absl::OkStatus(); }, &cancel);
  EXPECT_EQ(result.code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(server_->requests().size(), 1u);
}

TEST_F(KubeClientTest, OneTokenCancelsManyWatches) {
  Feed* feed = NewFeed();
  Collector started;
  ServePlain([&started, feed](const TestRequest& r, ResponseWriter& w) {
    w.StartStream(200, "application/json");
    started.Add(r.path);
    while (std::optional<std::string> piece = feed->Pop()) w.WriteChunk(*piece);
  });
  auto client = Client({});
  ASSERT_NE(client, nullptr);
  CancelToken cancel;
  std::vector<std::thread> watchers;
  std::atomic<int> cancelled{0};
  for (int i = 0; i < 3; ++i) {
    watchers.emplace_back([&] {
      absl::Status s = client->Watch(
          "/api/v1/pods", {{"watch", "1"}}, [](std::string_view) { return absl::OkStatus(); },
          &cancel);
      if (s.code() == absl::StatusCode::kCancelled) cancelled++;
    });
  }
  // All three streams are open; cancel them all at once.
  bool all_started = started.WaitForCount(3, kDeadline);
  cancel.Cancel();
  for (std::thread& watcher : watchers) watcher.join();
  EXPECT_TRUE(all_started);
  EXPECT_EQ(cancelled.load(), 3);
  feed->Close();
  server_.reset();  // its handlers use `started`
}

TEST_F(KubeClientTest, WatchRefusedWithGone) {
  ServePlain([](const TestRequest&, ResponseWriter& w) {
    w.SendJson(410, KubeStatus(410, "Expired", "too old resource version: 5 (90)"));
  });
  auto client = Client({});
  ASSERT_NE(client, nullptr);
  int calls = 0;
  absl::Status s = client->Watch(
      "/apis/batch/v1/jobs", {{"watch", "1"}, {"resourceVersion", "5"}},
      [&](std::string_view) {
        calls++;
        return absl::OkStatus();
      },
      nullptr);
  EXPECT_TRUE(IsGone(s)) << s;
  EXPECT_EQ(std::string(s.message()),
            "kubernetes API " + server_->url() + ": 410 Gone: too old resource version: 5 (90)");
  EXPECT_EQ(calls, 0);  // the error body is not a watch event
}

TEST_F(KubeClientTest, WatchEventsParsesAndCallbackErrorEndsTheWatch) {
  Feed* feed = NewFeed();
  ServePlain(Streamer(feed));
  auto client = Client({});
  ASSERT_NE(client, nullptr);
  std::vector<std::string> types;
  absl::Status result;
  std::thread watcher([&] {
    result = client->WatchEvents(
        "/apis/batch/v1/jobs", {{"watch", "1"}},
        [&](const nlohmann::json& event) -> absl::Status {
          types.push_back(event["type"]);
          if (event["type"] == "ERROR") {
            return StatusFromKubernetesStatus("srv", event["object"]);
          }
          return absl::OkStatus();
        },
        nullptr);
  });
  feed->Push("{\"type\":\"ADDED\",\"object\":{}}\n");
  feed->Push(nlohmann::json{{"type", "ERROR"},
                            {"object", KubeStatus(410, "Expired", "too old resource version")}}
                 .dump() +
             "\n");
  watcher.join();  // ends by itself: the callback's error stops the stream
  EXPECT_TRUE(IsGone(result)) << result;
  EXPECT_THAT(types, ElementsAre("ADDED", "ERROR"));
}

TEST_F(KubeClientTest, WatchEventsRejectsALineThatIsNotJson) {
  Feed* feed = NewFeed();
  ServePlain(Streamer(feed));
  auto client = Client({});
  ASSERT_NE(client, nullptr);
  feed->Push("{\"type\":\"ADDED\"}\nnot json\n");
  int events = 0;
  absl::Status s = client->WatchEvents(
      "/api/v1/pods", {{"watch", "1"}},
      [&](const nlohmann::json&) {
        events++;
        return absl::OkStatus();
      },
      nullptr);
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr("not json"));
  EXPECT_EQ(events, 1);
}

TEST_F(KubeClientTest, StreamBrokenMidwayIsUnavailable) {
  Feed* feed = NewFeed();
  ServePlain([feed](const TestRequest&, ResponseWriter& w) {
    w.StartStream(200, "application/json");
    w.WriteChunk("{\"type\":\"ADDED\"}\n");
    feed->Pop();  // until the test says so
    w.Abort();    // the connection drops without the final chunk
  });
  auto client = Client({});
  ASSERT_NE(client, nullptr);
  Collector lines;
  absl::Status result;
  std::thread watcher([&] {
    result = client->Watch(
        "/api/v1/pods", {{"watch", "1"}},
        [&](std::string_view line) {
          lines.Add(std::string(line));
          return absl::OkStatus();
        },
        nullptr);
  });
  ASSERT_TRUE(lines.WaitForCount(1, kDeadline));
  feed->Close();
  watcher.join();
  EXPECT_EQ(result.code(), absl::StatusCode::kUnavailable) << result;
  EXPECT_THAT(std::string(result.message()), HasSubstr(server_->url()));
}

TEST_F(KubeClientTest, IdleStreamTimesOut) {
  Feed* feed = NewFeed();
  ServePlain(Streamer(feed));
  auto client = Client({});
  ASSERT_NE(client, nullptr);
  StreamOptions options;
  options.idle_timeout = 300ms;
  feed->Push("{\"type\":\"ADDED\"}\n");
  auto start = std::chrono::steady_clock::now();
  absl::Status s = client->Watch(
      "/api/v1/pods", {{"watch", "1"}}, [](std::string_view) { return absl::OkStatus(); }, nullptr,
      options);
  auto took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(s.code(), absl::StatusCode::kDeadlineExceeded) << s;
  EXPECT_GE(took, 300ms);
  EXPECT_LT(took, 5s);
}

TEST_F(KubeClientTest, LogStreamDeliversRawBytesAsTheyArrive) {
  Feed* feed = NewFeed();
  ServePlain([feed](const TestRequest&, ResponseWriter& w) {
    w.StartStream(200, "text/plain");
    while (std::optional<std::string> piece = feed->Pop()) w.WriteChunk(*piece);
    w.EndStream();
  });
  ClusterConfig config;
  config.token = "log-token";
  auto client = Client(config);
  ASSERT_NE(client, nullptr);
  Collector pieces;
  absl::Status result;
  std::thread follower([&] {
    result = client->Stream(
        "/api/v1/namespaces/ns/pods/p/log", {{"follow", "true"}},
        [&](std::string_view bytes) {
          pieces.Add(std::string(bytes));
          return absl::OkStatus();
        },
        nullptr);
  });
  feed->Push("PLAY [all] ***");  // no newline: bytes are not held back waiting for one
  ASSERT_TRUE(pieces.WaitForCount(1, kDeadline));
  feed->Push("\nok: [localhost]\n");
  ASSERT_TRUE(pieces.WaitForCount(2, kDeadline));
  feed->Close();
  follower.join();
  EXPECT_TRUE(result.ok()) << result;
  std::string all;
  for (const std::string& piece : pieces.items()) all += piece;
  EXPECT_EQ(all, "PLAY [all] ***\nok: [localhost]\n");
  TestRequest request = server_->requests().at(0);
  EXPECT_EQ(request.headers["authorization"], "Bearer log-token");
  EXPECT_EQ(request.query, "follow=true");
}

TEST_F(KubeClientTest, WatchOverMutualTls) {
  Feed* feed = NewFeed();
  ServeTls(Streamer(feed), /*mutual=*/true);
  const TestCerts& certs = CertsEnvironment::Get();
  ClusterConfig config;
  config.ca_file = certs.ca_cert;
  config.client_cert_file = certs.client_cert;
  config.client_key_file = certs.client_key;
  auto client = Client(config);
  ASSERT_NE(client, nullptr);
  feed->Push("{\"type\":\"ADDED\"}\n");
  feed->Close();
  std::vector<std::string> lines;
  absl::Status s = client->Watch(
      "/api/v1/pods", {{"watch", "1"}},
      [&](std::string_view line) {
        lines.emplace_back(line);
        return absl::OkStatus();
      },
      nullptr);
  EXPECT_TRUE(s.ok()) << s;
  EXPECT_THAT(lines, ElementsAre("{\"type\":\"ADDED\"}"));
}

}  // namespace
}  // namespace dagd::runners::kubernetes
