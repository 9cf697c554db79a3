// Transport security of the real dagd: gRPC and the metrics port over TLS and mutual TLS with
// certificates made by the real `openssl`, a certificate rotated under a running dagd, and the
// rule that plaintext stays on loopback. Clients are real gRPC channels, the real dagctl (flags,
// environment, config file) and the real curl.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "tests/integration/daemon.h"

namespace dagd::testing {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

// Runs openssl with `args`; fails the test on a non-zero exit.
void OpenSsl(const std::vector<std::string>& args) {
  std::vector<std::string> command = {"/usr/bin/openssl"};
  command.insert(command.end(), args.begin(), args.end());
  CommandResult result = RunCommand(command, std::chrono::seconds(30));
  ASSERT_EQ(result.exit_code, 0) << result.output;
}

// A CA (P-256) at DIR/NAME.pem, DIR/NAME.key.
void MakeCa(const std::string& dir, const std::string& name) {
  OpenSsl({"req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
           "-keyout", dir + "/" + name + ".key", "-out", dir + "/" + name + ".pem", "-days", "2",
           "-subj", "/CN=" + name});
}

// A certificate for common name `cn`, signed by CA `ca`, at DIR/NAME.pem and DIR/NAME.key; a
// server certificate (localhost, 127.0.0.1) when `server`.
void MakeCert(const std::string& dir, const std::string& ca, const std::string& name,
              const std::string& cn, bool server) {
  const std::string ext = dir + "/" + name + ".ext";
  std::ofstream(ext) << (server ? "subjectAltName=DNS:localhost,IP:127.0.0.1\n"
                                  "extendedKeyUsage=serverAuth\n"
                                : "extendedKeyUsage=clientAuth\n");
  OpenSsl({"req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout",
           dir + "/" + name + ".key", "-out", dir + "/" + name + ".csr", "-subj", "/CN=" + cn});
  OpenSsl({"x509", "-req", "-in", dir + "/" + name + ".csr", "-CA", dir + "/" + ca + ".pem",
           "-CAkey", dir + "/" + ca + ".key", "-CAcreateserial", "-out", dir + "/" + name + ".pem",
           "-days", "2", "-extfile", ext});
}

class TlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    pki_ = tmp_.path() + "/pki";
    fs::create_directories(pki_);
    ASSERT_NO_FATAL_FAILURE(MakeCa(pki_, "ca"));
    ASSERT_NO_FATAL_FAILURE(MakeCa(pki_, "rogue-ca"));
    ASSERT_NO_FATAL_FAILURE(MakeCert(pki_, "ca", "server", "localhost", true));
    ASSERT_NO_FATAL_FAILURE(MakeCert(pki_, "ca", "alice", "alice", false));
    ASSERT_NO_FATAL_FAILURE(MakeCert(pki_, "rogue-ca", "mallory", "alice", false));
  }

  std::string Pem(const std::string& name) { return ReadFile(pki_ + "/" + name + ".pem"); }
  std::string Key(const std::string& name) { return ReadFile(pki_ + "/" + name + ".key"); }

  // TLS credentials trusting `ca`, with client certificate `client` ("" for none).
  std::shared_ptr<grpc::ChannelCredentials> Credentials(const std::string& ca,
                                                        const std::string& client = "") {
    grpc::SslCredentialsOptions options;
    options.pem_root_certs = Pem(ca);
    if (!client.empty()) {
      options.pem_cert_chain = Pem(client);
      options.pem_private_key = Key(client);
    }
    return grpc::SslCredentials(options);
  }

  // The status of ListWorkflows over a fresh channel to `address` with `credentials`.
  grpc::Status ListOver(const std::string& address,
                        std::shared_ptr<grpc::ChannelCredentials> credentials) {
    grpc::ChannelArguments args;
    args.SetSslTargetNameOverride("localhost");
    auto channel = grpc::CreateCustomChannel(address, credentials, args);
    auto stub = v1::WorkflowService::NewStub(channel);
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    v1::ListWorkflowsRequest request;
    v1::ListWorkflowsResponse response;
    return stub->ListWorkflows(&context, request, &response);
  }

  std::vector<std::string> TlsArgs() {
    return {"--tls-cert-file", pki_ + "/server.pem", "--tls-key-file", pki_ + "/server.key"};
  }

  TempDir tmp_;
  std::string pki_;
};

TEST_F(TlsTest, ServesGrpcAndMetricsOverTlsOnly) {
  Daemon dagd(tmp_.path() + "/data");
  dagd.AddArgs(TlsArgs());
  dagd.UseChannelCredentials(Credentials("ca"), "localhost");
  ASSERT_NO_FATAL_FAILURE(dagd.Start());

  EXPECT_TRUE(ListOver(dagd.address(), Credentials("ca")).ok());
  // Plaintext gets no answer; a client that trusts another CA refuses the server.
  EXPECT_EQ(ListOver(dagd.address(), grpc::InsecureChannelCredentials()).error_code(),
            grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(ListOver(dagd.address(), Credentials("rogue-ca")).error_code(),
            grpc::StatusCode::UNAVAILABLE);

  // dagctl with the CA from a flag.
  CommandResult ok = RunDagctl(dagd.address(), {"workflows", "list", "--ca-file", pki_ + "/ca.pem",
                                                "--tls-server-name", "localhost"});
  EXPECT_EQ(ok.exit_code, 0) << ok.output;
  // Without it, dagctl speaks plaintext and cannot reach dagd.
  CommandResult plain = RunDagctl(dagd.address(), {"workflows", "list", "--timeout", "5s"});
  EXPECT_EQ(plain.exit_code, 1) << plain.output;

  // The metrics port speaks HTTPS only.
  CommandResult https =
      RunCommand({"/usr/bin/curl", "-sS", "--cacert", pki_ + "/ca.pem", "--resolve",
                  "localhost:" + dagd.metrics_address().substr(10) + ":127.0.0.1",
                  "https://localhost:" + dagd.metrics_address().substr(10) + "/healthz"});
  EXPECT_EQ(https.exit_code, 0) << https.output;
  EXPECT_EQ(HttpGet(dagd.metrics_address(), "/healthz").status, -1);
  EXPECT_EQ(dagd.Terminate(), 0);
}

TEST_F(TlsTest, MutualTlsRequiresAClientCertificateOfTheConfiguredCa) {
  Daemon dagd(tmp_.path() + "/data");
  dagd.AddArgs(TlsArgs());
  dagd.AddArgs({"--tls-client-ca-file", pki_ + "/ca.pem"});
  dagd.UseChannelCredentials(Credentials("ca", "alice"), "localhost");
  ASSERT_NO_FATAL_FAILURE(dagd.Start());

  EXPECT_TRUE(ListOver(dagd.address(), Credentials("ca", "alice")).ok());
  EXPECT_EQ(ListOver(dagd.address(), Credentials("ca")).error_code(),
            grpc::StatusCode::UNAVAILABLE);
  // Same common name, another CA: refused.
  EXPECT_EQ(ListOver(dagd.address(), Credentials("ca", "mallory")).error_code(),
            grpc::StatusCode::UNAVAILABLE);

  // dagctl with CA and client certificate from the environment.
  CommandResult env = RunCommand(
      {"/usr/bin/env", "DAGD_CA_FILE=" + pki_ + "/ca.pem", "DAGD_CERT_FILE=" + pki_ + "/alice.pem",
       "DAGD_KEY_FILE=" + pki_ + "/alice.key", "DAGD_TLS_SERVER_NAME=localhost",
       "DAGCTL_CONFIG=/nonexistent/ignored-only-if-unset", BinaryPath("cmd/dagctl/dagctl"),
       "--config", tmp_.path() + "/no-such-config.yaml", "--server", dagd.address(), "workflows",
       "list"});
  // A config file named explicitly must exist.
  EXPECT_EQ(env.exit_code, 2) << env.output;
  EXPECT_NE(env.output.find("no-such-config.yaml"), std::string::npos) << env.output;

  env = RunCommand({"/usr/bin/env", "DAGD_CA_FILE=" + pki_ + "/ca.pem",
                    "DAGD_CERT_FILE=" + pki_ + "/alice.pem", "DAGD_KEY_FILE=" + pki_ + "/alice.key",
                    "DAGD_TLS_SERVER_NAME=localhost", "HOME=" + tmp_.path(),
                    BinaryPath("cmd/dagctl/dagctl"), "--server", dagd.address(), "workflows",
                    "list"});
  EXPECT_EQ(env.exit_code, 0) << env.output;

  // dagctl with everything from its config file (server included).
  const std::string config = tmp_.path() + "/dagctl.yaml";
  std::ofstream(config) << "server: " << dagd.address() << "\nca-file: " << pki_
                        << "/ca.pem\ncert-file: " << pki_ << "/alice.pem\nkey-file: " << pki_
                        << "/alice.key\ntls-server-name: localhost\n";
  CommandResult from_file =
      RunCommand({"/usr/bin/env", "DAGCTL_CONFIG=" + config, "HOME=" + tmp_.path(),
                  BinaryPath("cmd/dagctl/dagctl"), "workflows", "list"});
  EXPECT_EQ(from_file.exit_code, 0) << from_file.output;
  // A flag wins over the file: the rogue client certificate is refused.
  CommandResult overridden =
      RunCommand({"/usr/bin/env", "DAGCTL_CONFIG=" + config, "HOME=" + tmp_.path(),
                  BinaryPath("cmd/dagctl/dagctl"), "--cert-file", pki_ + "/mallory.pem",
                  "--key-file", pki_ + "/mallory.key", "--timeout", "5s", "workflows", "list"});
  EXPECT_EQ(overridden.exit_code, 1) << overridden.output;
  EXPECT_EQ(dagd.Terminate(), 0);
}

TEST_F(TlsTest, ARotatedCertificateIsServedWithoutARestart) {
  Daemon dagd(tmp_.path() + "/data");
  dagd.AddArgs(TlsArgs());
  dagd.AddArgs({"--tls-reload-interval", "1"});
  dagd.UseChannelCredentials(Credentials("ca"), "localhost");
  ASSERT_NO_FATAL_FAILURE(dagd.Start());
  ASSERT_TRUE(ListOver(dagd.address(), Credentials("ca")).ok());

  // The new certificate comes from another CA, so a client can tell which one it was served.
  ASSERT_NO_FATAL_FAILURE(MakeCa(pki_, "new-ca"));
  ASSERT_NO_FATAL_FAILURE(MakeCert(pki_, "new-ca", "server-next", "localhost", true));
  fs::rename(pki_ + "/server-next.key", pki_ + "/server.key");
  fs::rename(pki_ + "/server-next.pem", pki_ + "/server.pem");

  const auto deadline = Clock::now() + std::chrono::seconds(30);
  bool rotated = false;
  while (!rotated && Clock::now() < deadline) {
    rotated = ListOver(dagd.address(), Credentials("new-ca")).ok();
    if (!rotated) std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  EXPECT_TRUE(rotated) << "gRPC still serves the old certificate";
  EXPECT_EQ(ListOver(dagd.address(), Credentials("ca")).error_code(),
            grpc::StatusCode::UNAVAILABLE);

  const std::string port = dagd.metrics_address().substr(10);
  bool https_rotated = false;
  while (!https_rotated && Clock::now() < deadline) {
    https_rotated =
        RunCommand({"/usr/bin/curl", "-sS", "--cacert", pki_ + "/new-ca.pem", "--resolve",
                    "localhost:" + port + ":127.0.0.1", "https://localhost:" + port + "/healthz"})
            .exit_code == 0;
    if (!https_rotated) std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  EXPECT_TRUE(https_rotated) << "the metrics port still serves the old certificate";
  EXPECT_EQ(dagd.Terminate(), 0);
}

TEST_F(TlsTest, PlaintextBeyondLoopbackIsRefusedUnlessAskedForAndThenWarned) {
  const std::string dagd = BinaryPath("cmd/dagd/dagd");
  const std::string data = tmp_.path() + "/data";
  CommandResult refused =
      RunCommand({dagd, "--listen", "0.0.0.0:0", "--metrics-listen", "", "--data-dir", data},
                 std::chrono::seconds(30));
  EXPECT_EQ(refused.exit_code, 1) << refused.output;
  EXPECT_NE(refused.output.find("--listen 0.0.0.0:0 reaches other hosts"), std::string::npos)
      << refused.output;
  EXPECT_NE(refused.output.find("--insecure-remote"), std::string::npos) << refused.output;
  EXPECT_FALSE(fs::exists(data + "/dagd.db")) << "dagd opened its store before refusing";

  refused = RunCommand(
      {dagd, "--listen", "127.0.0.1:0", "--metrics-listen", "[::]:0", "--data-dir", data},
      std::chrono::seconds(30));
  EXPECT_EQ(refused.exit_code, 1) << refused.output;
  EXPECT_NE(refused.output.find("--metrics-listen [::]:0 reaches other hosts"), std::string::npos)
      << refused.output;

  Daemon insecure(data);
  insecure.ListenOn("0.0.0.0:0");
  insecure.AddArgs({"--insecure-remote"});
  ASSERT_NO_FATAL_FAILURE(insecure.Start());
  EXPECT_EQ(insecure.Terminate(), 0);
  EXPECT_NE(ReadFile(data + "/dagd.log").find("serving other hosts without TLS"),
            std::string::npos);
}

TEST_F(TlsTest, BadTlsFilesStopDagdWithTheFlagNamed) {
  const std::string dagd = BinaryPath("cmd/dagd/dagd");
  const std::string data = tmp_.path() + "/data";
  struct Case {
    std::vector<std::string> args;
    std::string message;
  };
  const std::vector<Case> cases = {
      {{"--tls-cert-file", pki_ + "/server.pem"}, "--tls-cert-file and --tls-key-file go together"},
      {{"--tls-cert-file", pki_ + "/server.pem", "--tls-key-file", pki_ + "/alice.key"},
       "is not the key of the certificate"},
      {{"--tls-cert-file", pki_ + "/server.key", "--tls-key-file", pki_ + "/server.key"},
       "holds no PEM certificate"},
      {{"--tls-cert-file", pki_ + "/missing.pem", "--tls-key-file", pki_ + "/server.key"},
       "--tls-cert-file " + pki_ + "/missing.pem: cannot be read"},
      {{"--tls-client-ca-file", pki_ + "/ca.pem"}, "--tls-client-ca-file needs TLS"},
  };
  for (const Case& c : cases) {
    std::vector<std::string> command = {dagd, "--listen",   "127.0.0.1:0", "--metrics-listen",
                                        "",   "--data-dir", data};
    command.insert(command.end(), c.args.begin(), c.args.end());
    CommandResult result = RunCommand(command, std::chrono::seconds(30));
    EXPECT_EQ(result.exit_code, 1) << result.output;
    EXPECT_NE(result.output.find(c.message), std::string::npos) << result.output;
  }
  EXPECT_FALSE(fs::exists(data + "/dagd.db"));
}

}  // namespace
}  // namespace dagd::testing
