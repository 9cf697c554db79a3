// Credentials end to end through the LocalRunner and the real ansible-playbook (and the real
// ansible-vault): the secret reaches Ansible, its copies are private and removed, and its value
// shows nowhere in what the runner reports.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <boost/asio/io_context.hpp>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_replace.h"
#include "runners/local/credentials.h"
#include "runners/local/local_runner.h"
#include "tests/runners/runner_test_util.h"

namespace dagd::runners::local {
namespace {

namespace fs = std::filesystem;
using ::dagd::runners::testing::AnsibleTemplate;
using ::dagd::runners::testing::MakeSpec;
using ::dagd::runners::testing::PathOutput;
using ::dagd::runners::testing::ReadTextFile;
using ::dagd::runners::testing::Recorder;
using ::dagd::runners::testing::RunUntil;
using ::dagd::runners::testing::TempDir;
using ::dagd::runners::testing::WriteTextFile;
using engine::NodePhase;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr std::chrono::seconds kTimeout(120);  // ansible-playbook starts slowly on a busy host

std::string RandomHex(size_t length) {
  std::random_device device;
  std::mt19937_64 rng(device());
  std::string out;
  while (out.size() < length) out += "0123456789abcdef"[rng() % 16];
  return out;
}

// The playbook head every test uses: local connection, no facts, and `creds`, the directory of
// the attempt's credential copies.
constexpr char kPlayHead[] = R"(
- hosts: localhost
  connection: local
  gather_facts: false
  vars:
    ansible_python_interpreter: "{{ ansible_playbook_python }}"
    creds: "{{ lookup('ansible.builtin.env', 'PWD') }}/.dagd/credentials"
)";

// Shows ansible-playbook's own command line (a worker is a fork of it).
constexpr char kShowArgvTask[] = R"(
    - name: Show the command line
      ansible.builtin.debug:
        msg: "argv={{ lookup('ansible.builtin.file', '/proc/self/cmdline') | replace('\x00', ' ') }}"
)";

class LocalRunnerCredentialsTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_EQ(chmod(creds_.c_str(), 0700), 0); }

  void PutCredential(const std::string& name, const std::string& content) {
    const std::string path = creds_ + "/" + name;
    WriteTextFile(path, content);
    ASSERT_EQ(chmod(path.c_str(), 0600), 0);
  }

  AttemptSpec Spec(engine::AnsibleSpec ansible) {
    const std::string name = "creds-" + std::to_string(++next_);
    if (ansible.inventory.empty()) ansible.inventory = "localhost,";
    return MakeSpec(AnsibleTemplate(name, std::move(ansible)), name, dir_.Subdir(name));
  }

  engine::AttemptResult Run(const AttemptSpec& spec, Recorder* recorder) {
    absl::Status status = runner_.Start(spec, recorder->Callbacks());
    EXPECT_TRUE(status.ok()) << status;
    EXPECT_TRUE(RunUntil(
        io_, [&] { return recorder->finished(); }, kTimeout));
    if (recorder->result.has_value()) return *recorder->result;
    engine::AttemptResult timed_out;
    timed_out.phase = NodePhase::kError;
    timed_out.message = "timed out";
    return timed_out;
  }

  // `secret` is nowhere in what the runner reported for the attempt.
  static void ExpectNowhere(const std::string& secret, const Recorder& r,
                            const engine::AttemptResult& result) {
    ASSERT_FALSE(secret.empty());
    EXPECT_THAT(r.stdout_text, Not(HasSubstr(secret)));
    EXPECT_THAT(r.stderr_text, Not(HasSubstr(secret)));
    for (const std::string& event : r.events) EXPECT_THAT(event, Not(HasSubstr(secret)));
    EXPECT_THAT(result.message, Not(HasSubstr(secret)));
    EXPECT_THAT(result.result.value_or(""), Not(HasSubstr(secret)));
    for (const auto& [name, value] : result.parameters) {
      EXPECT_THAT(value, Not(HasSubstr(secret))) << name;
    }
  }

  static bool AnyEventHas(const Recorder& r, const std::string& text) {
    for (const std::string& event : r.events) {
      if (event.find(text) != std::string::npos) return true;
    }
    return false;
  }

  TempDir dir_;
  std::string creds_ = dir_.Subdir("credentials");
  boost::asio::io_context io_;
  LocalRunnerOptions options_ = [this] {
    LocalRunnerOptions options;
    options.credentials_dir = creds_;
    return options;
  }();
  LocalRunner runner_{io_, options_};
  int next_ = 0;
};

TEST_F(LocalRunnerCredentialsTest, VaultPasswordOpensAVaultFileAndIsMasked) {
  const std::string password = "vault-pw-" + RandomHex(24);
  const std::string vaulted = "decrypted-" + RandomHex(12);
  PutCredential("vault-pass", password + "\n");

  // A vars file encrypted with the real ansible-vault, with the password in a file of its own.
  const std::string vault_dir = dir_.Subdir("vault");
  const std::string password_file = vault_dir + "/password";
  WriteTextFile(password_file, password + "\n");
  ASSERT_EQ(chmod(password_file.c_str(), 0600), 0);
  const std::string vars_file = vault_dir + "/secrets.yml";
  WriteTextFile(vars_file, "vault_var: " + vaulted + "\n");
  const std::string encrypt = "ansible-vault encrypt --vault-password-file " + password_file + " " +
                              vars_file + " > " + vault_dir + "/encrypt.log 2>&1";
  ASSERT_EQ(std::system(encrypt.c_str()), 0) << ReadTextFile(vault_dir + "/encrypt.log");
  ASSERT_THAT(ReadTextFile(vars_file), ::testing::StartsWith("$ANSIBLE_VAULT;"));
  ASSERT_THAT(ReadTextFile(vars_file), Not(HasSubstr(vaulted)));

  engine::AnsibleSpec a;
  a.vault_password_ref = "vault-pass";
  a.source = std::string(kPlayHead) + "  vars_files:\n    - " + vars_file + R"(
  tasks:
    - name: Use the vault
      ansible.builtin.debug:
        msg: "vault says {{ vault_var }}"
    - name: Look at the copy
      ansible.builtin.stat:
        path: "{{ creds }}/vault-password"
      register: copy
    - name: Show its mode
      ansible.builtin.debug:
        msg: "copy mode={{ copy.stat.mode }} dir={{ lookup('ansible.builtin.pipe', 'stat -c %a ' + creds) }}"
    - name: Print the password
      ansible.builtin.debug:
        msg: "pw={{ lookup('ansible.builtin.file', creds + '/vault-password') }}"
)" + kShowArgvTask;
  AttemptSpec spec = Spec(a);
  Recorder r;
  engine::AttemptResult result = Run(spec, &r);
  ASSERT_EQ(result.phase, NodePhase::kSucceeded)
      << result.message << r.stdout_text << r.stderr_text;

  EXPECT_THAT(r.stdout_text, HasSubstr("vault says " + vaulted));
  EXPECT_THAT(r.stdout_text, HasSubstr("copy mode=0600 dir=700"));
  const std::string copy = spec.work_dir + "/.dagd/credentials/vault-password";
  EXPECT_THAT(r.stdout_text, HasSubstr("--vault-password-file " + copy));
  EXPECT_THAT(r.stdout_text, HasSubstr("pw=********"));
  EXPECT_TRUE(AnyEventHas(r, "pw=********"));
  ExpectNowhere(password, r, result);
  EXPECT_FALSE(fs::exists(spec.work_dir + "/.dagd/credentials"));
}

// The key (and a become password, which ansible-playbook reads at start-up) as private files
// named on the command line; the key masked whole and line by line.
TEST_F(LocalRunnerCredentialsTest, PrivateKeyAndBecomePasswordAreFilesOnTheCommandLine) {
  std::vector<std::string> lines = {"-----BEGIN OPENSSH PRIVATE KEY-----"};
  for (int i = 0; i < 4; ++i) lines.push_back(RandomHex(64));
  lines.push_back("-----END OPENSSH PRIVATE KEY-----");
  std::string key;
  for (const std::string& line : lines) key += line + "\n";
  PutCredential("deploy.key", key);
  const std::string become_password = "sudo-" + RandomHex(16);
  PutCredential("sudo-pass", become_password + "\n");

  engine::AnsibleSpec a;
  a.private_key_ref = "deploy.key";
  a.become_password_ref = "sudo-pass";
  a.source = std::string(kPlayHead) + R"(
  tasks:
    - name: Look at the copy
      ansible.builtin.stat:
        path: "{{ creds }}/private-key"
      register: copy
    - name: Show its mode
      ansible.builtin.debug:
        msg: "copy mode={{ copy.stat.mode }}"
    - name: Print the key
      ansible.builtin.debug:
        msg: "{{ lookup('ansible.builtin.file', creds + '/private-key') }}"
    - name: Print one line of it
      ansible.builtin.debug:
        msg: "line={{ lookup('ansible.builtin.file', creds + '/private-key').splitlines()[2] }}"
    - name: Print the become password
      ansible.builtin.debug:
        msg: "become={{ lookup('ansible.builtin.file', creds + '/become-password') }}"
)" + kShowArgvTask;
  AttemptSpec spec = Spec(a);
  Recorder r;
  engine::AttemptResult result = Run(spec, &r);
  ASSERT_EQ(result.phase, NodePhase::kSucceeded)
      << result.message << r.stdout_text << r.stderr_text;

  EXPECT_THAT(r.stdout_text, HasSubstr("copy mode=0600"));
  EXPECT_THAT(r.stdout_text,
              HasSubstr("--private-key " + spec.work_dir + "/.dagd/credentials/private-key"));
  EXPECT_THAT(r.stdout_text, HasSubstr("line=********"));
  EXPECT_THAT(r.stdout_text, HasSubstr("--become-password-file " + spec.work_dir +
                                       "/.dagd/credentials/become-password"));
  EXPECT_THAT(r.stdout_text, HasSubstr("become=********"));
  ExpectNowhere(become_password, r, result);
  EXPECT_TRUE(AnyEventHas(r, "\"msg\": \"********\""));
  for (size_t i = 1; i + 1 < lines.size(); ++i) ExpectNowhere(lines[i], r, result);
  EXPECT_FALSE(fs::exists(spec.work_dir + "/.dagd/credentials"));
}

TEST_F(LocalRunnerCredentialsTest, EnvFromRefReachesTheTaskAndIsMasked) {
  const std::string token = "tok-" + RandomHex(20);
  // A quote and a backslash: JSON output escapes them, and that form is masked too.
  const std::string quoted = "q\"uo\\te-" + RandomHex(10);
  PutCredential("api-env", "# for the API\nAPI_TOKEN=" + token + "\n\nQUOTED=" + quoted + "\n");

  engine::AnsibleSpec a;
  a.env_from_refs = {"api-env"};
  a.env = {{"API_TOKEN", "placeholder"}};
  a.source = std::string(kPlayHead) + R"(
  tasks:
    - name: Print the token
      ansible.builtin.debug:
        msg: "token={{ lookup('ansible.builtin.env', 'API_TOKEN') }}"
    - name: Keep it where dagd reads outputs
      ansible.builtin.copy:
        dest: "{{ lookup('ansible.builtin.env', 'PWD') }}/token.txt"
        content: "{{ lookup('ansible.builtin.env', 'API_TOKEN') }}"
    - name: Print the quoted one from a command
      ansible.builtin.command: printenv QUOTED
    - name: And with debug
      ansible.builtin.debug:
        msg: "quoted={{ lookup('ansible.builtin.env', 'QUOTED') }}"
)";
  AttemptSpec spec = Spec(a);
  spec.resolved.outputs.parameters = {PathOutput("token", "token.txt")};
  Recorder r;
  engine::AttemptResult result = Run(spec, &r);
  ASSERT_EQ(result.phase, NodePhase::kSucceeded)
      << result.message << r.stdout_text << r.stderr_text;

  // The task saw the credential's value, not the template's placeholder…
  EXPECT_EQ(ReadTextFile(spec.work_dir + "/token.txt"), token);
  // … and nobody else did.
  EXPECT_EQ(result.parameters.at("token"), "********");
  EXPECT_THAT(r.stdout_text, HasSubstr("token=********"));
  EXPECT_THAT(r.stdout_text, HasSubstr("quoted=********"));
  EXPECT_TRUE(AnyEventHas(r, "token=********"));
  EXPECT_TRUE(AnyEventHas(r, "\"stdout\": \"********\""));  // the command's output
  ExpectNowhere(token, r, result);
  ExpectNowhere(quoted, r, result);
  ExpectNowhere(absl::StrReplaceAll(quoted, {{"\\", "\\\\"}, {"\"", "\\\""}}), r, result);
  EXPECT_THAT(r.stdout_text, Not(HasSubstr("placeholder")));
}

TEST_F(LocalRunnerCredentialsTest, ADirectoryOpenToOthersRefusesTheAttempt) {
  PutCredential("vault-pass", "pw-123456");
  ASSERT_EQ(chmod(creds_.c_str(), 0755), 0);
  engine::AnsibleSpec a;
  a.vault_password_ref = "vault-pass";
  a.source = std::string(kPlayHead) + "  tasks: []\n";
  AttemptSpec spec = Spec(a);
  Recorder r;
  absl::Status status = runner_.Start(spec, r.Callbacks());
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(status.message()), HasSubstr(spec.resolved.name));
  EXPECT_THAT(std::string(status.message()), HasSubstr("chmod 700 " + creds_));
  io_.poll();
  EXPECT_EQ(r.callback_calls, 0);
  EXPECT_EQ(runner_.running(), 0u);
  EXPECT_FALSE(fs::exists(spec.work_dir + "/.dagd/credentials"));
}

TEST_F(LocalRunnerCredentialsTest, AMissingCredentialRefusesTheAttempt) {
  engine::AnsibleSpec a;
  a.become_password_ref = "sudo-password";
  a.source = std::string(kPlayHead) + "  tasks: []\n";
  AttemptSpec spec = Spec(a);
  Recorder r;
  absl::Status status = runner_.Start(spec, r.Callbacks());
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(status.message()),
              HasSubstr("credential \"sudo-password\" (becomePasswordRef) not found: there is no "
                        "file " +
                        creds_ + "/sudo-password"));
  io_.poll();
  EXPECT_EQ(r.callback_calls, 0);
}

TEST_F(LocalRunnerCredentialsTest, AStartThatFailsLaterLeavesNoCopies) {
  PutCredential("vault-pass", "pw-123456");
  LocalRunnerOptions options = options_;
  options.ansible_playbook = "ansible-playbook-not-installed";
  LocalRunner runner(io_, options);
  engine::AnsibleSpec a;
  a.vault_password_ref = "vault-pass";
  a.source = std::string(kPlayHead) + "  tasks: []\n";
  AttemptSpec spec = Spec(a);
  Recorder r;
  absl::Status status = runner.Start(spec, r.Callbacks());
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(status.message()), HasSubstr("ansible-playbook-not-installed"));
  EXPECT_TRUE(fs::exists(spec.work_dir + "/.dagd"));
  EXPECT_FALSE(fs::exists(spec.work_dir + "/.dagd/credentials"));
}

TEST_F(LocalRunnerCredentialsTest, CancelAndKillAllRemoveTheCopies) {
  PutCredential("vault-pass", "pw-123456");
  engine::AnsibleSpec a;
  a.vault_password_ref = "vault-pass";
  a.source = std::string(kPlayHead) + R"(
  tasks:
    - name: Take long
      ansible.builtin.command: sleep 300
)";
  AttemptSpec cancelled = Spec(a);
  cancelled.grace_period_ms = 500;
  Recorder r;
  ASSERT_TRUE(runner_.Start(cancelled, r.Callbacks()).ok());
  EXPECT_TRUE(fs::exists(cancelled.work_dir + "/.dagd/credentials/vault-password"));
  AttemptSpec killed = Spec(a);
  Recorder k;
  ASSERT_TRUE(runner_.Start(killed, k.Callbacks()).ok());
  EXPECT_TRUE(fs::exists(killed.work_dir + "/.dagd/credentials/vault-password"));

  runner_.Cancel(cancelled.external_name, "stopped by test");
  ASSERT_TRUE(RunUntil(
      io_, [&] { return r.finished(); }, kTimeout));
  EXPECT_EQ(r.result->phase, NodePhase::kFailed);
  EXPECT_FALSE(fs::exists(cancelled.work_dir + "/.dagd/credentials"));
  EXPECT_TRUE(fs::exists(killed.work_dir + "/.dagd/credentials/vault-password"));

  runner_.KillAll();
  EXPECT_FALSE(fs::exists(killed.work_dir + "/.dagd/credentials"));
  EXPECT_FALSE(k.finished());
}

}  // namespace
}  // namespace dagd::runners::local
