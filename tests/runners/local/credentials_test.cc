#include "runners/local/credentials.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include "runners/local/command.h"
#include "tests/runners/runner_test_util.h"

namespace dagd::runners::local {
namespace {

namespace fs = std::filesystem;
using ::dagd::runners::testing::AnsibleTemplate;
using ::dagd::runners::testing::MakeSpec;
using ::dagd::runners::testing::ReadTextFile;
using ::dagd::runners::testing::TempDir;
using ::dagd::runners::testing::WriteTextFile;
using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::Pair;
using ::testing::UnorderedElementsAre;

const std::vector<std::string> kBaseEnv = {"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=/root"};

int Mode(const std::string& path) {
  struct stat st;
  return lstat(path.c_str(), &st) == 0 ? static_cast<int>(st.st_mode & 07777) : -1;
}

std::string Message(const absl::Status& status) { return std::string(status.message()); }

// A credentials directory as an operator sets it up: 0700, files 0600.
class CredentialsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(chmod(creds_.c_str(), 0700), 0);
    Put("vault-pass", "  correct horse battery  \n");
    Put("deploy.key", "-----BEGIN KEY-----\nAAAAB3NzaC1yc2EAAAADAQABAAABAQ\n-----END KEY-----\n");
    Put("sudo", "sudo-pw-1\n");
    Put("api-env", "# the API\nAPI_TOKEN=tok=with=equals\r\n\n  REGION=eu-west-1 \nEMPTY=\n");
    Put("db-env", "DB_PASSWORD=db-secret\nAPI_TOKEN=from-db-env\n");
  }

  void Put(const std::string& name, const std::string& content, mode_t mode = 0600) {
    const std::string path = creds_ + "/" + name;
    WriteTextFile(path, content);
    ASSERT_EQ(chmod(path.c_str(), mode), 0);
  }

  TempDir tmp_;
  std::string creds_ = tmp_.Subdir("credentials");
  std::string work_ = tmp_.Subdir("work");
};

TEST_F(CredentialsTest, NothingNamedNeedsNoDirectory) {
  absl::StatusOr<StagedCredentials> staged =
      StageCredentials(engine::AnsibleSpec{}, "/nonexistent/credentials", work_, "template \"t\"");
  ASSERT_TRUE(staged.ok()) << staged.status();
  EXPECT_TRUE(staged->args.empty());
  EXPECT_TRUE(staged->env.empty());
  EXPECT_TRUE(staged->secrets.empty());
  EXPECT_FALSE(fs::exists(StagedCredentialsDir(work_)));
}

TEST_F(CredentialsTest, StagesPrivateCopiesAndCollectsSecrets) {
  engine::AnsibleSpec a;
  a.vault_password_ref = "vault-pass";
  a.private_key_ref = "deploy.key";
  a.become_password_ref = "sudo";
  a.env_from_refs = {"api-env", "db-env"};
  absl::StatusOr<StagedCredentials> staged = StageCredentials(a, creds_, work_, "template \"t\"");
  ASSERT_TRUE(staged.ok()) << staged.status();

  const std::string dir = work_ + "/.dagd/credentials";
  EXPECT_EQ(StagedCredentialsDir(work_), dir);
  EXPECT_EQ(Mode(dir), 0700);
  EXPECT_THAT(staged->args, ElementsAre("--vault-password-file", dir + "/vault-password",
                                        "--private-key", dir + "/private-key",
                                        "--become-password-file", dir + "/become-password"));
  for (const char* file : {"vault-password", "private-key", "become-password"}) {
    EXPECT_EQ(Mode(dir + "/" + file), 0600) << file;
  }
  // Copies are byte for byte; ssh wants the key's final newline.
  EXPECT_EQ(ReadTextFile(dir + "/vault-password"), "  correct horse battery  \n");
  EXPECT_EQ(ReadTextFile(dir + "/private-key"), ReadTextFile(creds_ + "/deploy.key"));
  // Env files are not copied; a later file wins; values run to the end of the line.
  EXPECT_EQ(std::distance(fs::directory_iterator(dir), fs::directory_iterator()), 3);
  EXPECT_THAT(staged->env,
              UnorderedElementsAre(Pair("API_TOKEN", "from-db-env"), Pair("REGION", "eu-west-1 "),
                                   Pair("EMPTY", ""), Pair("DB_PASSWORD", "db-secret")));
  // Passwords as Ansible reads them (whitespace stripped); every env value.
  EXPECT_THAT(staged->secrets, Contains("correct horse battery"));
  EXPECT_THAT(staged->secrets,
              Contains("-----BEGIN KEY-----\nAAAAB3NzaC1yc2EAAAADAQABAAABAQ\n-----END KEY-----"));
  EXPECT_THAT(staged->secrets, Contains("sudo-pw-1"));
  for (const char* value : {"tok=with=equals", "eu-west-1 ", "", "db-secret", "from-db-env"}) {
    EXPECT_THAT(staged->secrets, Contains(value));
  }

  ASSERT_TRUE(RemoveStagedCredentials(work_).ok());
  EXPECT_FALSE(fs::exists(dir));
  EXPECT_TRUE(fs::exists(work_));
  EXPECT_TRUE(RemoveStagedCredentials(work_).ok());  // nothing there: fine
}

TEST_F(CredentialsTest, ASymlinkedCredentialIsFollowedAndItsTargetChecked) {
  const std::string target = tmp_.Subdir("elsewhere") + "/vault";
  WriteTextFile(target, "linked-secret");
  ASSERT_EQ(chmod(target.c_str(), 0600), 0);
  ASSERT_EQ(symlink(target.c_str(), (creds_ + "/linked").c_str()), 0);
  engine::AnsibleSpec a;
  a.vault_password_ref = "linked";
  absl::StatusOr<StagedCredentials> staged = StageCredentials(a, creds_, work_, "template \"t\"");
  ASSERT_TRUE(staged.ok()) << staged.status();
  EXPECT_THAT(staged->secrets, ElementsAre("linked-secret"));

  ASSERT_EQ(chmod(target.c_str(), 0640), 0);
  staged = StageCredentials(a, creds_, work_, "template \"t\"");
  EXPECT_EQ(staged.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(Message(staged.status()), HasSubstr("chmod 600 " + creds_ + "/linked"));
}

TEST_F(CredentialsTest, TheDirectoryMustBePrivate) {
  EXPECT_TRUE(CheckCredentialsDir(creds_).ok());
  engine::AnsibleSpec a;
  a.vault_password_ref = "vault-pass";

  ASSERT_EQ(chmod(creds_.c_str(), 0750), 0);
  absl::Status status = CheckCredentialsDir(creds_);
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(Message(status), "the credentials directory " + creds_ +
                                 " is open to group or others (mode 0750); chmod 700 " + creds_);
  absl::StatusOr<StagedCredentials> staged = StageCredentials(a, creds_, work_, "template \"t\"");
  EXPECT_EQ(staged.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(Message(staged.status()), HasSubstr("template \"t\": the credentials directory"));
  EXPECT_THAT(Message(staged.status()), HasSubstr("chmod 700 " + creds_));
  EXPECT_FALSE(fs::exists(StagedCredentialsDir(work_)));

  const std::string missing = tmp_.path() + "/no-such-dir";
  status = CheckCredentialsDir(missing);
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(Message(status), HasSubstr(missing + " does not exist"));
  EXPECT_THAT(Message(status), HasSubstr("install -d -m 700 " + missing));

  const std::string file = tmp_.path() + "/a-file";
  WriteTextFile(file, "x");
  EXPECT_THAT(Message(CheckCredentialsDir(file)), HasSubstr(file + " is not a directory"));

  absl::StatusOr<StagedCredentials> unset = StageCredentials(a, "", work_, "template \"t\"");
  EXPECT_EQ(unset.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(Message(unset.status()), HasSubstr("--credentials-dir"));
}

TEST_F(CredentialsTest, TheDirectoryMustBeDagds) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to give the directory to another user";
  ASSERT_EQ(chown(creds_.c_str(), 65534, 65534), 0);
  absl::Status status = CheckCredentialsDir(creds_);
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(Message(status), HasSubstr("is owned by uid 65534, not by dagd's user (uid 0)"));
  EXPECT_THAT(Message(status), HasSubstr("chown 0 " + creds_));
}

TEST_F(CredentialsTest, EachCredentialMustBeAPrivateRegularFileOfDagds) {
  auto stage = [&](const std::string& name) {
    engine::AnsibleSpec a;
    a.private_key_ref = name;
    return StageCredentials(a, creds_, work_, "template \"t\"").status();
  };
  absl::Status missing = stage("nope");
  EXPECT_EQ(missing.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(Message(missing),
            "template \"t\": credential \"nope\" (privateKeyRef) not found: "
            "there is no file " +
                creds_ +
                "/nope; put the secret in that file, owned by dagd's "
                "user (uid " +
                std::to_string(geteuid()) + ") with mode 600");

  Put("open", "readable-by-all", 0644);
  absl::Status open = stage("open");
  EXPECT_EQ(open.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(Message(open), HasSubstr("credential \"open\" (privateKeyRef)"));
  EXPECT_THAT(Message(open),
              HasSubstr("is open to group or others (mode 0644); chmod 600 " + creds_ + "/open"));
  EXPECT_THAT(Message(open), Not(HasSubstr("readable-by-all")));

  // A FIFO would block a plain open(): refused at once.
  ASSERT_EQ(mkfifo((creds_ + "/fifo").c_str(), 0600), 0);
  EXPECT_THAT(Message(stage("fifo")), HasSubstr(creds_ + "/fifo is not a regular file"));
  fs::create_directory(creds_ + "/subdir");
  EXPECT_THAT(Message(stage("subdir")), HasSubstr("is not a regular file"));

  if (geteuid() == 0) {
    Put("theirs", "x");
    ASSERT_EQ(chown((creds_ + "/theirs").c_str(), 65534, 65534), 0);
    EXPECT_THAT(Message(stage("theirs")), HasSubstr("is owned by uid 65534"));
  }
  EXPECT_FALSE(fs::exists(StagedCredentialsDir(work_)));
}

TEST_F(CredentialsTest, NamesAreCheckedAgainAtLaunch) {
  engine::AnsibleSpec a;
  a.become_password_ref = "../credentials/sudo";  // e.g. from a substituted parameter
  absl::Status status = StageCredentials(a, creds_, work_, "template \"t\"").status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Message(status),
            std::string("template \"t\": ansible.becomePasswordRef \"../credentials/sudo\" is "
                        "not a credential name; ") +
                engine::kCredentialNameRule);
  a = {};
  a.env_from_refs = {"api-env", ""};
  EXPECT_EQ(StageCredentials(a, creds_, work_, "t").status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(CredentialsTest, NothingIsWrittenWhenACredentialIsMissing) {
  engine::AnsibleSpec a;
  a.vault_password_ref = "vault-pass";
  a.env_from_refs = {"missing-env"};
  absl::Status status = StageCredentials(a, creds_, work_, "template \"t\"").status();
  EXPECT_THAT(Message(status), HasSubstr("credential \"missing-env\" (envFromRef) not found"));
  EXPECT_FALSE(fs::exists(StagedCredentialsDir(work_)));
}

TEST(ParseEnvFileTest, ReadsNameValueLines) {
  auto vars =
      ParseEnvFile("# comment\n\n   \nA=1\n  B_2=two words \r\nC==x\n_D=\n  # indented\n", "env");
  ASSERT_TRUE(vars.ok()) << vars.status();
  EXPECT_THAT(*vars, ElementsAre(Pair("A", "1"), Pair("B_2", "two words "), Pair("C", "=x"),
                                 Pair("_D", "")));
  EXPECT_THAT(*ParseEnvFile("", "env"), ElementsAre());
  EXPECT_THAT(*ParseEnvFile("A=no final newline", "env"),
              ElementsAre(Pair("A", "no final newline")));
}

TEST(ParseEnvFileTest, AMalformedLineIsNamedButNotQuoted) {
  for (const char* text :
       {"A=1\nghp_LeakedTokenWithoutName\n", "A=1\n9LIVES=ghp_LeakedToken\n",
        "A=1\nMY-VAR=ghp_LeakedToken\n", "A=1\nX =ghp_LeakedToken\n", "A=1\n=ghp_LeakedToken\n"}) {
    auto vars = ParseEnvFile(text, "credential \"e\" (envFromRef) /creds/e");
    EXPECT_EQ(vars.status().code(), absl::StatusCode::kInvalidArgument) << text;
    EXPECT_THAT(Message(vars.status()), HasSubstr("/creds/e:2: not a NAME=VALUE line")) << text;
    EXPECT_THAT(Message(vars.status()), Not(HasSubstr("ghp_"))) << text;
    EXPECT_THAT(Message(vars.status()), Not(HasSubstr("LIVES"))) << text;
    EXPECT_THAT(Message(vars.status()), Not(HasSubstr("MY-VAR"))) << text;
  }
}

TEST_F(CredentialsTest, AMalformedEnvFileFailsTheLaunchWithoutItsContent) {
  Put("bad-env", "OK=1\nthe-token-itself\n");
  engine::AnsibleSpec a;
  a.env_from_refs = {"bad-env"};
  absl::Status status = StageCredentials(a, creds_, work_, "template \"t\"").status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(status), HasSubstr("template \"t\": credential \"bad-env\" (envFromRef) " +
                                         creds_ + "/bad-env:2: not a NAME=VALUE line"));
  EXPECT_THAT(Message(status), Not(HasSubstr("the-token-itself")));
}

// The hook in BuildCommand(): options before the playbook, variables over the template's env,
// secrets on the Command.
TEST_F(CredentialsTest, BuildCommandPassesCredentialsToAnsiblePlaybook) {
  engine::AnsibleSpec a;
  a.source = "- hosts: all\n  tasks: []\n";
  a.inventory = "localhost,";
  a.vault_password_ref = "vault-pass";
  a.env_from_refs = {"api-env"};
  a.env = {{"API_TOKEN", "placeholder"}, {"OTHER", "kept"}};
  LocalRunnerOptions options;
  options.ansible_playbook = "sh";
  options.credentials_dir = creds_;
  auto command =
      BuildCommand(MakeSpec(AnsibleTemplate("deploy", a), "a-1", work_), options, kBaseEnv);
  ASSERT_TRUE(command.ok()) << command.status();
  const std::string copy = work_ + "/.dagd/credentials/vault-password";
  ASSERT_GE(command->argv.size(), 3u);
  EXPECT_EQ(command->argv.back(), work_ + "/.dagd-playbook.yml");
  auto flag = std::find(command->argv.begin(), command->argv.end(), "--vault-password-file");
  ASSERT_NE(flag, command->argv.end());
  EXPECT_EQ(*(flag + 1), copy);
  EXPECT_EQ(Mode(copy), 0600);
  EXPECT_THAT(command->env, Contains("API_TOKEN=tok=with=equals"));
  EXPECT_THAT(command->env, Not(Contains("API_TOKEN=placeholder")));
  EXPECT_THAT(command->env, Contains("OTHER=kept"));
  EXPECT_THAT(command->env, Contains("REGION=eu-west-1 "));
  // dagd's own settings still come after: the events plugin stays enabled.
  EXPECT_THAT(command->env, Contains("DAGD_EVENTS_FD=4"));
  EXPECT_THAT(command->secrets, Contains("correct horse battery"));
  EXPECT_THAT(command->secrets, Contains("tok=with=equals"));

  // Without any credential: no secrets, no directory.
  TempDir other;
  a.vault_password_ref.clear();
  a.env_from_refs.clear();
  auto plain =
      BuildCommand(MakeSpec(AnsibleTemplate("deploy", a), "a-1", other.path()), options, kBaseEnv);
  ASSERT_TRUE(plain.ok()) << plain.status();
  EXPECT_TRUE(plain->secrets.empty());
  EXPECT_FALSE(fs::exists(StagedCredentialsDir(other.path())));
}

TEST(RemoveStaleCredentialsTest, RemovesEveryAttemptsCredentialsAndNothingElse) {
  TempDir data;
  const std::string attempts = data.path() + "/attempts";
  const std::vector<std::string> stale = {attempts + "/run-1/a-1111-1", attempts + "/run-2/b-22-3"};
  for (const std::string& dir : stale) {
    WriteTextFile(dir + "/.dagd/credentials/vault-password", "pw");
    WriteTextFile(dir + "/.dagd/extra-vars.json", "{}");
  }
  WriteTextFile(attempts + "/run-1/c-33-1/.dagd/extra-vars.json", "{}");
  WriteTextFile(attempts + "/run-1/c-33-1/output.txt", "kept");
  WriteTextFile(attempts + "/stray-file", "x");

  absl::StatusOr<int> removed = RemoveStaleCredentials(data.path());
  ASSERT_TRUE(removed.ok()) << removed.status();
  EXPECT_EQ(*removed, 2);
  for (const std::string& dir : stale) {
    EXPECT_FALSE(fs::exists(dir + "/.dagd/credentials")) << dir;
    EXPECT_TRUE(fs::exists(dir + "/.dagd/extra-vars.json")) << dir;
  }
  EXPECT_EQ(ReadTextFile(attempts + "/run-1/c-33-1/output.txt"), "kept");
  EXPECT_EQ(*RemoveStaleCredentials(data.path()), 0);

  TempDir empty;
  EXPECT_EQ(*RemoveStaleCredentials(empty.path()), 0);  // no attempts/ yet
}

}  // namespace
}  // namespace dagd::runners::local
