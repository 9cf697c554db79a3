#include "runners/kubernetes/client/cluster_config.h"

#include <sys/stat.h>

#include <map>
#include <string>

#include "absl/strings/escaping.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/runners/kubernetes/client/test_server.h"

namespace dagd::runners::kubernetes {
namespace {

using ::testing::HasSubstr;
using testing::TempDir;
using testing::WriteFile;

std::string B64(const std::string& text) { return absl::Base64Escape(text); }

class KubeconfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    mkdir(dir_.File("certs").c_str(), 0700);
    WriteFile(dir_.File("certs/ca.crt"), "CA PEM");
    WriteFile(dir_.File("certs/client.crt"), "CERT PEM");
    WriteFile(dir_.File("certs/client.key"), "KEY PEM");
    WriteFile(dir_.File("token"), "file-token\n");
  }

  std::string Write(const std::string& yaml) {
    std::string path = dir_.File("config");
    WriteFile(path, yaml);
    return path;
  }

  TempDir dir_;
};

constexpr char kTwoContexts[] = R"(apiVersion: v1
kind: Config
current-context: dev
clusters:
- name: dev-cluster
  cluster:
    server: https://dev.example:6443/
    certificate-authority: certs/ca.crt
- name: prod-cluster
  cluster:
    server: https://10.1.2.3:443
    certificate-authority-data: Q0EgREFUQQ==
    proxy-url: http://proxy.example:3128
users:
- name: dev-user
  user:
    token: dev-token
- name: prod-user
  user:
    client-certificate: certs/client.crt
    client-key: certs/client.key
contexts:
- name: dev
  context:
    cluster: dev-cluster
    user: dev-user
    namespace: dev-ns
- name: prod
  context:
    cluster: prod-cluster
    user: prod-user
)";

TEST_F(KubeconfigTest, CurrentContextWithTokenAndRelativeCaPath) {
  std::string path = Write(kTwoContexts);
  absl::StatusOr<ClusterConfig> config = LoadKubeconfig(path);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->server, "https://dev.example:6443/");  // KubeClient drops the '/'
  EXPECT_EQ(config->ca_file, dir_.File("certs/ca.crt"));
  EXPECT_EQ(config->ca_data, "");
  EXPECT_EQ(config->token, "dev-token");
  EXPECT_EQ(config->token_file, "");
  EXPECT_EQ(config->default_namespace, "dev-ns");
  EXPECT_FALSE(config->insecure_skip_tls_verify);
  EXPECT_THAT(config->source, HasSubstr("context \"dev\""));
}

TEST_F(KubeconfigTest, NamedContextWithClientCertificateAndCaData) {
  std::string path = Write(kTwoContexts);
  absl::StatusOr<ClusterConfig> config = LoadKubeconfig(path, "prod");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->server, "https://10.1.2.3:443");
  EXPECT_EQ(config->ca_data, "CA DATA");
  EXPECT_EQ(config->ca_file, "");
  EXPECT_EQ(config->client_cert_file, dir_.File("certs/client.crt"));
  EXPECT_EQ(config->client_key_file, dir_.File("certs/client.key"));
  EXPECT_EQ(config->token, "");
  EXPECT_EQ(config->default_namespace, "default");
  EXPECT_EQ(config->proxy_url, "http://proxy.example:3128");
}

TEST_F(KubeconfigTest, InlineClientCertificateDataAndInsecure) {
  std::string path = Write(R"(current-context: c
clusters:
- name: k
  cluster: {server: "https://k:6443", insecure-skip-tls-verify: true}
users:
- name: u
  user:
    client-certificate-data: )" +
                           B64("-----BEGIN CERTIFICATE-----\nXYZ\n") + R"(
    client-key-data: )" + B64("-----BEGIN PRIVATE KEY-----\nABC\n") +
                           R"(
contexts:
- name: c
  context: {cluster: k, user: u}
)");
  absl::StatusOr<ClusterConfig> config = LoadKubeconfig(path);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_TRUE(config->insecure_skip_tls_verify);
  EXPECT_EQ(config->client_cert_data, "-----BEGIN CERTIFICATE-----\nXYZ\n");
  EXPECT_EQ(config->client_key_data, "-----BEGIN PRIVATE KEY-----\nABC\n");
  EXPECT_EQ(config->client_cert_file, "");
}

TEST_F(KubeconfigTest, DataWinsOverFile) {
  std::string path = Write(R"(current-context: c
clusters:
- name: k
  cluster:
    server: https://k
    certificate-authority: certs/ca.crt
    certificate-authority-data: )" +
                           B64("INLINE CA") + R"(
users:
- name: u
  user:
    client-certificate: certs/client.crt
    client-certificate-data: )" +
                           B64("INLINE CERT") + R"(
    client-key: certs/client.key
    client-key-data: )" + B64("INLINE KEY") +
                           R"(
contexts:
- {name: c, context: {cluster: k, user: u}}
)");
  absl::StatusOr<ClusterConfig> config = LoadKubeconfig(path);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->ca_data, "INLINE CA");
  EXPECT_EQ(config->ca_file, "");
  EXPECT_EQ(config->client_cert_data, "INLINE CERT");
  EXPECT_EQ(config->client_cert_file, "");
  EXPECT_EQ(config->client_key_data, "INLINE KEY");
  EXPECT_EQ(config->client_key_file, "");
}

TEST_F(KubeconfigTest, TokenFileRelativeAndAbsolute) {
  std::string path = Write(R"(current-context: c
clusters: [{name: k, cluster: {server: "https://k"}}]
users: [{name: u, user: {tokenFile: ./token}}]
contexts: [{name: c, context: {cluster: k, user: u}}]
)");
  absl::StatusOr<ClusterConfig> config = LoadKubeconfig(path);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->token_file, dir_.File("token"));

  path = Write(R"(current-context: c
clusters: [{name: k, cluster: {server: "https://k"}}]
users: [{name: u, user: {tokenFile: )" +
               dir_.File("token") + R"(}}]
contexts: [{name: c, context: {cluster: k, user: u}}]
)");
  config = LoadKubeconfig(path);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->token_file, dir_.File("token"));
}

TEST_F(KubeconfigTest, ContextWithoutUserIsAnonymous) {
  std::string path = Write(R"(current-context: c
clusters: [{name: k, cluster: {server: "http://127.0.0.1:8080"}}]
contexts: [{name: c, context: {cluster: k}}]
)");
  absl::StatusOr<ClusterConfig> config = LoadKubeconfig(path);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->token, "");
  EXPECT_EQ(config->client_cert_file, "");
}

// ----- errors: each names the file, the entry and the field -----

TEST_F(KubeconfigTest, MissingFile) {
  absl::StatusOr<ClusterConfig> config = LoadKubeconfig(dir_.File("nope"));
  EXPECT_EQ(config.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(config.status().message()), HasSubstr(dir_.File("nope")));
}

TEST_F(KubeconfigTest, YamlThatDoesNotParseNamesTheLine) {
  std::string path = Write("current-context: c\nclusters:\n  - name: [unclosed\n");
  absl::StatusOr<ClusterConfig> config = LoadKubeconfig(path);
  EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(config.status().message()), HasSubstr("kubeconfig " + path + ": line "));
}

TEST_F(KubeconfigTest, UnknownNamedContext) {
  std::string path = Write(kTwoContexts);
  absl::StatusOr<ClusterConfig> config = LoadKubeconfig(path, "staging");
  EXPECT_EQ(config.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(std::string(config.status().message()),
            "kubeconfig " + path + ": context \"staging\" not found in \"contexts\"");
}

TEST_F(KubeconfigTest, NoCurrentContextAndNoName) {
  std::string path = Write("clusters: []\ncontexts: []\n");
  absl::StatusOr<ClusterConfig> config = LoadKubeconfig(path);
  EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(config.status().message()), HasSubstr("no current-context"));
}

TEST_F(KubeconfigTest, ContextNamesAMissingUser) {
  std::string path = Write(R"(current-context: c
clusters: [{name: k, cluster: {server: "https://k"}}]
contexts: [{name: c, context: {cluster: k, user: ghost}}]
)");
  absl::StatusOr<ClusterConfig> config = LoadKubeconfig(path);
  EXPECT_EQ(config.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(config.status().message()), HasSubstr("user \"ghost\" not found"));
}

TEST_F(KubeconfigTest, ClusterWithoutServer) {
  std::string path = Write(R"(current-context: c
clusters:
- name: k
  cluster:
    insecure-skip-tls-verify: true
contexts: [{name: c, context: {cluster: k}}]
)");
  absl::StatusOr<ClusterConfig> config = LoadKubeconfig(path);
  EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(std::string(config.status().message()),
            "kubeconfig " + path + ": line 5: cluster \"k\": field \"server\" is missing");
}

TEST_F(KubeconfigTest, BadBase64) {
  std::string path = Write(R"(current-context: c
clusters:
- name: k
  cluster:
    server: https://k
    certificate-authority-data: "not*base64!"
contexts: [{name: c, context: {cluster: k}}]
)");
  absl::StatusOr<ClusterConfig> config = LoadKubeconfig(path);
  EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(
      std::string(config.status().message()),
      "kubeconfig " + path +
          ": line 6: cluster \"k\": field \"certificate-authority-data\" is not valid base64");
}

TEST_F(KubeconfigTest, FileAFieldNamesIsMissing) {
  std::string path = Write(R"(current-context: c
clusters: [{name: k, cluster: {server: "https://k"}}]
users:
- name: u
  user:
    client-certificate: certs/missing.crt
    client-key: certs/client.key
contexts: [{name: c, context: {cluster: k, user: u}}]
)");
  absl::StatusOr<ClusterConfig> config = LoadKubeconfig(path);
  EXPECT_EQ(config.status().code(), absl::StatusCode::kNotFound);
  std::string message(config.status().message());
  EXPECT_THAT(message, HasSubstr("user \"u\": field \"client-certificate\""));
  EXPECT_THAT(message, HasSubstr(dir_.File("certs/missing.crt")));
}

TEST_F(KubeconfigTest, CertificateWithoutKey) {
  std::string path = Write(R"(current-context: c
clusters: [{name: k, cluster: {server: "https://k"}}]
users: [{name: u, user: {client-certificate: certs/client.crt}}]
contexts: [{name: c, context: {cluster: k, user: u}}]
)");
  absl::StatusOr<ClusterConfig> config = LoadKubeconfig(path);
  EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(config.status().message()),
              HasSubstr("user \"u\": field \"client-key or client-key-data\" is missing"));
}

TEST_F(KubeconfigTest, ExecPluginIsOutOfScope) {
  std::string path = Write(R"(current-context: c
clusters: [{name: k, cluster: {server: "https://k"}}]
users:
- name: eks
  user:
    exec:
      apiVersion: client.authentication.k8s.io/v1beta1
      command: aws
      args: [eks, get-token, --cluster-name, x]
contexts: [{name: c, context: {cluster: k, user: eks}}]
)");
  absl::StatusOr<ClusterConfig> config = LoadKubeconfig(path);
  EXPECT_EQ(config.status().code(), absl::StatusCode::kUnimplemented);
  std::string message(config.status().message());
  EXPECT_THAT(message, HasSubstr("kubeconfig " + path));
  EXPECT_THAT(message, HasSubstr("user \"eks\": field \"exec\""));
  EXPECT_THAT(message, HasSubstr("out of scope"));
}

TEST_F(KubeconfigTest, AuthProviderAndBasicAuthAreRefused) {
  std::string path = Write(R"(current-context: c
clusters: [{name: k, cluster: {server: "https://k"}}]
users: [{name: u, user: {auth-provider: {name: gcp}}}]
contexts: [{name: c, context: {cluster: k, user: u}}]
)");
  EXPECT_EQ(LoadKubeconfig(path).status().code(), absl::StatusCode::kUnimplemented);
  path = Write(R"(current-context: c
clusters: [{name: k, cluster: {server: "https://k"}}]
users: [{name: u, user: {username: admin, password: secret}}]
contexts: [{name: c, context: {cluster: k, user: u}}]
)");
  absl::StatusOr<ClusterConfig> config = LoadKubeconfig(path);
  EXPECT_EQ(config.status().code(), absl::StatusCode::kUnimplemented);
  EXPECT_THAT(std::string(config.status().message()), ::testing::Not(HasSubstr("secret")));
}

TEST_F(KubeconfigTest, WrongTypes) {
  std::string path = Write(R"(current-context: c
clusters: [{name: k, cluster: {server: [a, b]}}]
contexts: [{name: c, context: {cluster: k}}]
)");
  absl::StatusOr<ClusterConfig> config = LoadKubeconfig(path);
  EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(config.status().message()),
              HasSubstr("line 2: cluster \"k\": field \"server\" must be a string"));

  path = Write(R"(current-context: c
clusters: [{name: k, cluster: {server: "https://k", insecure-skip-tls-verify: maybe}}]
contexts: [{name: c, context: {cluster: k}}]
)");
  config = LoadKubeconfig(path);
  EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(config.status().message()),
              HasSubstr("field \"insecure-skip-tls-verify\" must be true or false"));
}

// ----- in-cluster -----

class InClusterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    WriteFile(dir_.File("token"), "sa-token\n");
    WriteFile(dir_.File("ca.crt"), "CA PEM");
    WriteFile(dir_.File("namespace"), "dagd-system");
    env_ = {{"KUBERNETES_SERVICE_HOST", "10.96.0.1"}, {"KUBERNETES_SERVICE_PORT", "443"}};
  }

  InClusterOptions Options() {
    InClusterOptions options;
    options.root = dir_.path();
    options.getenv = [this](const char* name) -> const char* {
      auto it = env_.find(name);
      return it == env_.end() ? nullptr : it->second.c_str();
    };
    return options;
  }

  TempDir dir_;
  std::map<std::string, std::string> env_;
};

TEST_F(InClusterTest, ReadsTheServiceAccount) {
  absl::StatusOr<ClusterConfig> config = LoadInClusterConfig(Options());
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->server, "https://10.96.0.1:443");
  EXPECT_EQ(config->token_file, dir_.File("token"));  // re-read by the client as it rotates
  EXPECT_EQ(config->token, "");
  EXPECT_EQ(config->ca_file, dir_.File("ca.crt"));
  EXPECT_EQ(config->default_namespace, "dagd-system");
}

TEST_F(InClusterTest, Ipv6HostIsBracketed) {
  env_["KUBERNETES_SERVICE_HOST"] = "fd00::1";
  absl::StatusOr<ClusterConfig> config = LoadInClusterConfig(Options());
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->server, "https://[fd00::1]:443");
}

TEST_F(InClusterTest, NamespaceFileAbsentMeansDefault) {
  std::remove(dir_.File("namespace").c_str());
  absl::StatusOr<ClusterConfig> config = LoadInClusterConfig(Options());
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->default_namespace, "default");
}

TEST_F(InClusterTest, NotInAPod) {
  env_.erase("KUBERNETES_SERVICE_PORT");
  absl::StatusOr<ClusterConfig> config = LoadInClusterConfig(Options());
  EXPECT_EQ(config.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(config.status().message()), HasSubstr("KUBERNETES_SERVICE_PORT"));
}

TEST_F(InClusterTest, MissingTokenNamesTheFile) {
  std::remove(dir_.File("token").c_str());
  absl::StatusOr<ClusterConfig> config = LoadInClusterConfig(Options());
  EXPECT_EQ(config.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(config.status().message()), HasSubstr(dir_.File("token")));
}

TEST_F(InClusterTest, MissingCaNamesTheFile) {
  std::remove(dir_.File("ca.crt").c_str());
  absl::StatusOr<ClusterConfig> config = LoadInClusterConfig(Options());
  EXPECT_EQ(config.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(config.status().message()), HasSubstr(dir_.File("ca.crt")));
}

}  // namespace
}  // namespace dagd::runners::kubernetes
