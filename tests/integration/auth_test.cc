// Authentication, authorization and the audit log on the real dagd and dagctl: static tokens
// and a policy file from dagd's flags, tokens from dagctl's flags, environment and config file,
// a real playbook run traced from the host it changed back to the person who submitted it, and
// the start-up errors of settings that do not go together.
#include <gtest/gtest.h>
#include <openssl/sha.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "tests/fakes/fake_kube_process.h"
#include "tests/integration/daemon.h"

namespace dagd::testing {
namespace {

namespace fs = std::filesystem;

const std::string kTestdata = SourcePath("tests/integration/testdata");

std::string Sha256Hex(const std::string& text) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(text.data()), text.size(), digest);
  std::string hex;
  for (unsigned char byte : digest) absl::StrAppendFormat(&hex, "%02x", byte);
  return hex;
}

class AuthTest : public ::testing::Test {
 protected:
  void SetUp() override {
    tokens_ = tmp_.path() + "/tokens.yaml";
    policy_ = tmp_.path() + "/policy.yaml";
    std::ofstream(tokens_) << "tokens:\n"
                           << "  - {sha256: " << Sha256Hex("alice-secret") << ", user: alice}\n"
                           << "  - {sha256: " << Sha256Hex("victor-secret") << ", user: victor}\n"
                           << "  - {sha256: " << Sha256Hex("root-secret")
                           << ", user: root, groups: [ops]}\n";
    std::ofstream(policy_) << "bindings:\n"
                           << "  - {role: operator, namespaces: [team-a], users: [alice]}\n"
                           << "  - {role: viewer, namespaces: [team-a], users: [victor]}\n"
                           << "  - {role: admin, namespaces: ['*'], groups: [ops]}\n";
    for (const auto& [name, token] : {std::pair<std::string, std::string>{"alice", "alice-secret"},
                                      {"victor", "victor-secret"},
                                      {"root", "root-secret"}}) {
      std::ofstream(tmp_.path() + "/" + name + ".token") << token << "\n";
    }
  }

  void StartDagd() {
    dagd_.AddArgs({"--auth-static-tokens", tokens_, "--auth-policy", policy_});
    ASSERT_NO_FATAL_FAILURE(dagd_.Start());
  }

  CommandResult Dagctl(const std::string& who, std::vector<std::string> args) {
    if (!who.empty()) {
      args.insert(args.begin(), {"--token-file", tmp_.path() + "/" + who + ".token"});
    }
    return RunDagctl(dagd_.address(), args);
  }

  TempDir tmp_;
  std::string tokens_;
  std::string policy_;
  Daemon dagd_{tmp_.path() + "/data"};
};

TEST_F(AuthTest, ATokenNamesTheCallerAndItsRoleDecidesWhatItMayDo) {
  ASSERT_NO_FATAL_FAILURE(StartDagd());
  CommandResult anonymous = Dagctl("", {"runs", "list"});
  EXPECT_EQ(anonymous.exit_code, 1) << anonymous.output;
  EXPECT_NE(anonymous.output.find("UNAUTHENTICATED: no credential"), std::string::npos)
      << anonymous.output;
  EXPECT_NE(anonymous.output.find("--token-file"), std::string::npos) << anonymous.output;

  CommandResult forged = RunDagctl(dagd_.address(), {"--token", "guess", "runs", "list"});
  EXPECT_EQ(forged.exit_code, 1) << forged.output;
  EXPECT_NE(forged.output.find("UNAUTHENTICATED: the credential is not valid"), std::string::npos)
      << forged.output;

  const std::string records = tmp_.path() + "/records";
  fs::create_directories(records);
  const std::vector<std::string> submit = {"submit",
                                           "-f",
                                           kTestdata + "/diamond-retry.yaml",
                                           "--bundle",
                                           kTestdata,
                                           "-p",
                                           "record_dir=" + records,
                                           "-n",
                                           "team-a",
                                           "--watch",
                                           "-o",
                                           "json"};
  CommandResult viewer = Dagctl("victor", submit);
  EXPECT_EQ(viewer.exit_code, 1) << viewer.output;
  EXPECT_NE(viewer.output.find("PERMISSION_DENIED: victor may not call SubmitRun in any "
                               "namespace (it needs the operator role)"),
            std::string::npos)
      << viewer.output;
  // alice operates team-a only.
  std::vector<std::string> elsewhere = submit;
  elsewhere[8] = "team-b";
  CommandResult wrong_namespace = Dagctl("alice", elsewhere);
  EXPECT_EQ(wrong_namespace.exit_code, 1) << wrong_namespace.output;
  EXPECT_NE(wrong_namespace.output.find("PERMISSION_DENIED: alice may not call SubmitRun in "
                                        "namespace team-b (it needs the operator role there)"),
            std::string::npos)
      << wrong_namespace.output;

  // A real playbook run, submitted by alice with her token from the environment.
  CommandResult run =
      RunCommand({"/usr/bin/env", "DAGD_TOKEN_FILE=" + tmp_.path() + "/alice.token",
                  BinaryPath("cmd/dagctl/dagctl"), "--server", dagd_.address(), "--config", "",
                  submit[0], submit[1], submit[2], submit[3], submit[4], submit[5], submit[6],
                  submit[7], submit[8], "--watch"});
  ASSERT_EQ(run.exit_code, 0) << run.output;
  std::smatch id;
  ASSERT_TRUE(std::regex_search(run.output, id, std::regex(R"(\b(diamond-retry-[a-z0-9]+)\b)")))
      << run.output;
  const std::string run_id = id[1];

  // From the host back to the person: which task changed localhost, who submitted the run.
  CommandResult events = Dagctl("victor", {"events", run_id, "--host", "localhost", "--changed"});
  ASSERT_EQ(events.exit_code, 0) << events.output;
  EXPECT_NE(events.output.find("record that A ran"), std::string::npos) << events.output;
  CommandResult get = Dagctl("victor", {"runs", "get", run_id});
  ASSERT_EQ(get.exit_code, 0) << get.output;
  EXPECT_TRUE(std::regex_search(get.output, std::regex(R"(Submitter:\s+alice\n)"))) << get.output;
  EXPECT_TRUE(std::regex_search(get.output, std::regex(R"(Namespace:\s+team-a\n)"))) << get.output;

  // The audit log: admin only; names alice's submission of this run and victor's refusal.
  CommandResult denied = Dagctl("victor", {"audit"});
  EXPECT_EQ(denied.exit_code, 1) << denied.output;
  EXPECT_NE(denied.output.find("PERMISSION_DENIED"), std::string::npos) << denied.output;
  CommandResult audit = Dagctl("root", {"audit", "--run", run_id});
  ASSERT_EQ(audit.exit_code, 0) << audit.output;
  EXPECT_TRUE(std::regex_search(
      audit.output, std::regex(absl::StrCat(R"(\balice\s+SubmitRun\s+team-a\s+run/)", run_id,
                                            R"(\s+OK\s+dagctl-[0-9a-f]+)"))))
      << audit.output;
  CommandResult refusals = Dagctl("root", {"audit", "--failed", "--principal", "victor"});
  ASSERT_EQ(refusals.exit_code, 0) << refusals.output;
  EXPECT_TRUE(std::regex_search(
      refusals.output, std::regex(R"(\bvictor\s+SubmitRun\s+team-a\s+-\s+PERMISSION_DENIED)")))
      << refusals.output;
  EXPECT_EQ(dagd_.Terminate(), 0);
}

TEST_F(AuthTest, ListsShowOnlyTheCallersNamespaces) {
  ASSERT_NO_FATAL_FAILURE(StartDagd());
  const std::string spec = tmp_.path() + "/wait.yaml";
  for (const char* ns : {"team-a", "team-b"}) {
    std::ofstream(spec) << "apiVersion: argoproj.io/v1alpha1\nkind: Workflow\nmetadata:\n"
                        << "  name: wait-" << ns << "\n  namespace: " << ns
                        << "\nspec:\n  entrypoint: main\n  templates:\n  - name: main\n"
                        << "    suspend: {}\n";
    CommandResult applied = Dagctl("root", {"apply", "-f", spec});
    ASSERT_EQ(applied.exit_code, 0) << applied.output;
  }
  CommandResult mine = Dagctl("victor", {"workflows", "list"});
  ASSERT_EQ(mine.exit_code, 0) << mine.output;
  EXPECT_NE(mine.output.find("wait-team-a"), std::string::npos) << mine.output;
  EXPECT_EQ(mine.output.find("wait-team-b"), std::string::npos) << mine.output;
  CommandResult all = Dagctl("root", {"workflows", "list"});
  EXPECT_NE(all.output.find("wait-team-b"), std::string::npos) << all.output;
  CommandResult other = Dagctl("victor", {"workflows", "list", "-n", "team-b"});
  EXPECT_EQ(other.exit_code, 1) << other.output;
  EXPECT_EQ(dagd_.Terminate(), 0);
}

// base64url without padding (RFC 7515) of `bytes`.
std::string Base64Url(const std::string& bytes) {
  std::string out;
  absl::WebSafeBase64Escape(bytes, &out);
  return out;
}

// An RS256 JWT of `claims`, signed by the real openssl with `key` (PEM).
std::string SignJwt(const std::string& dir, const std::string& key, const nlohmann::json& claims) {
  const std::string input =
      Base64Url(R"({"alg":"RS256","kid":"k1","typ":"JWT"})") + "." + Base64Url(claims.dump());
  std::ofstream(dir + "/input") << input;
  CommandResult signed_ = RunCommand({"/usr/bin/openssl", "dgst", "-sha256", "-sign", key, "-out",
                                      dir + "/signature", dir + "/input"});
  EXPECT_EQ(signed_.exit_code, 0) << signed_.output;
  return input + "." + Base64Url(ReadFile(dir + "/signature"));
}

TEST_F(AuthTest, OidcAndServiceAccountTokensAreAcceptedNextToStaticOnes) {
  // The issuer's RSA key, and its JWKS file.
  const std::string key = tmp_.path() + "/issuer.pem";
  ASSERT_EQ(RunCommand({"/usr/bin/openssl", "genrsa", "-out", key, "2048"}).exit_code, 0);
  CommandResult modulus = RunCommand({"/usr/bin/openssl", "rsa", "-in", key, "-noout", "-modulus"});
  ASSERT_EQ(modulus.exit_code, 0) << modulus.output;
  std::string hex = modulus.output.substr(modulus.output.find('=') + 1);
  hex = hex.substr(0, hex.find_first_not_of("0123456789ABCDEFabcdef"));
  const std::string jwks = tmp_.path() + "/jwks.json";
  std::ofstream(jwks) << nlohmann::json{
      {"keys",
       {{{"kty", "RSA"},
         {"kid", "k1"},
         {"alg", "RS256"},
         {"use", "sig"},
         {"n", Base64Url(absl::HexStringToBytes(hex))},
         {"e", "AQAB"}}}}}.dump();
  const int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  std::ofstream(tmp_.path() + "/carol.token") << SignJwt(tmp_.path(), key,
                                                         {{"iss", "https://issuer.test"},
                                                          {"aud", "dagd"},
                                                          {"sub", "carol"},
                                                          {"groups", {"ops"}},
                                                          {"iat", now},
                                                          {"exp", now + 600}});
  std::ofstream(tmp_.path() + "/late.token") << SignJwt(
      tmp_.path(), key,
      {{"iss", "https://issuer.test"}, {"aud", "dagd"}, {"sub", "carol"}, {"exp", now - 600}});

  // A cluster whose TokenReview knows one service account token.
  const std::string fake_dir = tmp_.path() + "/fake";
  fs::create_directories(fake_dir);
  const std::string accounts = tmp_.path() + "/service-accounts.json";
  std::ofstream(accounts) << R"({"sa-token-of-deployer": {"namespace": "ci", "name": "deployer"}})";
  FakeKubeProcess fake(fake_dir, {"--service-account-tokens", accounts});
  std::ofstream(tmp_.path() + "/deployer.token") << "sa-token-of-deployer";
  std::ofstream(policy_) << "bindings:\n"
                         << "  - {role: admin, namespaces: ['*'], groups: [ops]}\n"
                         << "  - {role: operator, namespaces: [team-a], serviceAccounts: "
                            "[ci/deployer]}\n";

  dagd_.AddArgs({"--auth-oidc-issuer", "https://issuer.test", "--auth-oidc-audience", "dagd",
                 "--auth-oidc-jwks-file", jwks, "--auth-oidc-username-prefix",
                 "oidc:", "--auth-tokenreview", "--kubeconfig", fake.kubeconfig()});
  ASSERT_NO_FATAL_FAILURE(StartDagd());

  CommandResult carol = Dagctl("carol", {"audit", "-o", "wide"});
  EXPECT_EQ(carol.exit_code, 0) << carol.output;
  CommandResult late = Dagctl("late", {"runs", "list"});
  EXPECT_EQ(late.exit_code, 1) << late.output;
  EXPECT_NE(late.output.find("UNAUTHENTICATED: the credential is not valid"), std::string::npos)
      << late.output;
  const std::string spec = tmp_.path() + "/wait.yaml";
  std::ofstream(spec) << "apiVersion: argoproj.io/v1alpha1\nkind: Workflow\nmetadata:\n"
                      << "  generateName: wait-\n  namespace: team-a\n"
                      << "spec:\n  entrypoint: main\n  templates:\n  - name: main\n"
                      << "    suspend: {}\n";
  CommandResult deployer = Dagctl("deployer", {"submit", "-f", spec});
  EXPECT_EQ(deployer.exit_code, 0) << deployer.output;
  CommandResult audit = Dagctl("carol", {"audit", "--method", "SubmitRun", "-o", "wide"});
  ASSERT_EQ(audit.exit_code, 0) << audit.output;
  EXPECT_TRUE(std::regex_search(
      audit.output,
      std::regex(
          R"(system:serviceaccount:ci:deployer\s+SubmitRun\s+team-a\s+run/wait-[a-z0-9]+\s+OK\s+\S+\s+tokenreview)")))
      << audit.output;
  EXPECT_EQ(dagd_.Terminate(), 0);
  EXPECT_EQ(fake.Stop(), 0) << fake.violations();
}

TEST_F(AuthTest, SettingsThatDoNotGoTogetherStopDagdWithTheFix) {
  const std::string dagd = BinaryPath("cmd/dagd/dagd");
  const std::string data = tmp_.path() + "/refused";
  const std::string broken_policy = tmp_.path() + "/broken.yaml";
  std::ofstream(broken_policy) << "bindings:\n  - {role: superuser, namespaces: [a], users: [x]}\n";
  const std::string plain_tokens = tmp_.path() + "/plain.yaml";
  std::ofstream(plain_tokens) << "tokens:\n  - {sha256: alice-secret, user: alice}\n";
  struct Case {
    std::vector<std::string> args;
    std::string message;
  };
  const std::vector<Case> cases = {
      {{"--auth-static-tokens", tokens_}, "--auth-policy is not set"},
      {{"--auth-policy", policy_}, "--auth-policy needs an authentication method"},
      {{"--auth-static-tokens", tokens_, "--auth-policy", broken_policy},
       "line 2: role \"superuser\" is not viewer, operator or admin"},
      {{"--auth-static-tokens", plain_tokens, "--auth-policy", policy_},
       "sha256 must be the 64 hex digits"},
      {{"--auth-oidc-issuer", "https://issuer.example", "--auth-policy", policy_},
       "--auth-oidc-issuer needs --auth-oidc-audience"},
      {{"--auth-client-certificates", "--auth-policy", policy_}, "needs mutual TLS"},
      {{"--auth-tokenreview", "--auth-policy", policy_}, "--auth-tokenreview: no cluster"},
      {{"--tls-cert-file", "/nonexistent"}, "--tls-cert-file and --tls-key-file go together"},
  };
  for (const Case& c : cases) {
    std::vector<std::string> command = {dagd, "--listen",   "127.0.0.1:0", "--metrics-listen",
                                        "",   "--data-dir", data};
    command.insert(command.end(), c.args.begin(), c.args.end());
    CommandResult result = RunCommand(command, std::chrono::seconds(30));
    EXPECT_EQ(result.exit_code, 1) << result.output;
    EXPECT_NE(result.output.find(c.message), std::string::npos) << result.output;
  }
  EXPECT_FALSE(fs::exists(data + "/dagd.db")) << "dagd opened its store before refusing";
}

TEST_F(AuthTest, DagctlSendsATokenInTheClearOnlyToThisHost) {
  CommandResult refused = RunCommand({BinaryPath("cmd/dagctl/dagctl"), "--server", "192.0.2.1:7233",
                                      "--token", "x", "runs", "list"});
  EXPECT_EQ(refused.exit_code, 2) << refused.output;
  EXPECT_NE(refused.output.find("only over TLS"), std::string::npos) << refused.output;
  // A config file with an unknown setting is a usage error naming the line.
  const std::string config = tmp_.path() + "/dagctl.yaml";
  std::ofstream(config) << "server: 127.0.0.1:1\ntokne-file: /x\n";
  CommandResult bad =
      RunCommand({BinaryPath("cmd/dagctl/dagctl"), "--config", config, "runs", "list"});
  EXPECT_EQ(bad.exit_code, 2) << bad.output;
  EXPECT_NE(bad.output.find("line 2: unknown setting \"tokne-file\""), std::string::npos)
      << bad.output;
}

}  // namespace
}  // namespace dagd::testing
