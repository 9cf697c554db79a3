#include "runners/local/command.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tests/runners/runner_test_util.h"

namespace dagd::runners::local {
namespace {

using ::dagd::runners::testing::AnsibleTemplate;
using ::dagd::runners::testing::ContainerTemplate;
using ::dagd::runners::testing::MakeSpec;
using ::dagd::runners::testing::ReadTextFile;
using ::dagd::runners::testing::ScriptTemplate;
using ::dagd::runners::testing::TempDir;
using ::dagd::runners::testing::WriteTextFile;
using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

const std::vector<std::string> kBaseEnv = {"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=/root",
                                           "ANSIBLE_FORCE_COLOR=1"};

int Mode(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 ? static_cast<int>(st.st_mode & 07777) : -1;
}

TEST(BuildCommandTest, ContainerRunsCommandAndArgsOnPath) {
  TempDir dir;
  auto command = BuildCommand(
      MakeSpec(ContainerTemplate("hello", {"sh", "-c"}, {"echo hi"}), "a-1", dir.path()),
      LocalRunnerOptions{}, kBaseEnv);
  ASSERT_TRUE(command.ok()) << command.status();
  EXPECT_EQ(command->program, "/usr/bin/sh");
  EXPECT_THAT(command->argv, ElementsAre("sh", "-c", "echo hi"));
  EXPECT_EQ(command->work_dir, dir.path());
  EXPECT_THAT(command->env, Contains("PWD=" + dir.path()));
  EXPECT_THAT(command->env, Contains("HOME=/root"));
  EXPECT_FALSE(command->is_ansible);
}

TEST(BuildCommandTest, TemplateEnvOverridesDagdEnv) {
  TempDir dir;
  engine::Template t = ContainerTemplate("env", {"env"});
  t.container->env = {{"HOME", "/elsewhere"}, {"GREETING", "hi"}};
  auto command = BuildCommand(MakeSpec(t, "a-1", dir.path()), LocalRunnerOptions{}, kBaseEnv);
  ASSERT_TRUE(command.ok()) << command.status();
  EXPECT_THAT(command->env, Contains("HOME=/elsewhere"));
  EXPECT_THAT(command->env, Contains("GREETING=hi"));
}

TEST(BuildCommandTest, ImageTableSuppliesAMissingCommand) {
  TempDir dir;
  engine::Template t = ContainerTemplate("say", {}, {"echo", "hello"});
  t.container->image = "example/tool:1";
  LocalRunnerOptions options;
  options.image_entrypoints["example/tool:1"] = {"printf", "%s\\n"};
  auto command = BuildCommand(MakeSpec(t, "a-1", dir.path()), options, kBaseEnv);
  ASSERT_TRUE(command.ok()) << command.status();
  EXPECT_THAT(command->argv, ElementsAre("printf", "%s\\n", "echo", "hello"));
}

TEST(BuildCommandTest, ACommandNamingTheImagesOwnProgramRunsItsStandIn) {
  TempDir dir;
  // As intermediate-parameters.yaml: `command: [/argosay]`, `args: [echo, deploying]`.
  engine::Template t = ContainerTemplate("deploy", {"/argosay"}, {"echo", "deploying"});
  t.container->image = "argoproj/argosay:v2";
  auto command = BuildCommand(MakeSpec(t, "a-1", dir.path()), LocalRunnerOptions{}, kBaseEnv);
  ASSERT_TRUE(command.ok()) << command.status();
  ASSERT_GE(command->argv.size(), 4u);
  EXPECT_EQ(command->argv[0], "/bin/sh");
  EXPECT_EQ(command->argv[3], "argosay");
  EXPECT_THAT(std::vector<std::string>(command->argv.end() - 2, command->argv.end()),
              ElementsAre("echo", "deploying"));
  // Another program of the same image is run as written.
  t.container->command = {"echo"};
  command = BuildCommand(MakeSpec(t, "a-1", dir.path()), LocalRunnerOptions{}, kBaseEnv);
  ASSERT_TRUE(command.ok()) << command.status();
  EXPECT_THAT(command->argv, ElementsAre("echo", "echo", "deploying"));
}

TEST(BuildCommandTest, UnknownImageWithoutCommandNamesTemplateAndFix) {
  TempDir dir;
  engine::Template t = ContainerTemplate("whale", {}, {"hello"});
  t.container->image = "docker/whalesay";
  auto status =
      BuildCommand(MakeSpec(t, "a-1", dir.path()), LocalRunnerOptions{}, kBaseEnv).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), HasSubstr("\"whale\""));
  EXPECT_THAT(std::string(status.message()), HasSubstr("docker/whalesay"));
  EXPECT_THAT(std::string(status.message()), HasSubstr("command"));
}

TEST(BuildCommandTest, ProgramMissingOnPathIsFailedPrecondition) {
  TempDir dir;
  auto status =
      BuildCommand(MakeSpec(ContainerTemplate("t", {"no-such-program-xyz"}), "a-1", dir.path()),
                   LocalRunnerOptions{}, kBaseEnv)
          .status();
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(status.message()), HasSubstr("no-such-program-xyz"));
}

TEST(BuildCommandTest, ScriptIsWrittenAndPassedLast) {
  TempDir dir;
  engine::Template t = ScriptTemplate("py", {"python"}, "print(42)\n");
  t.script->container.args = {"-u"};
  auto command = BuildCommand(MakeSpec(t, "a-1", dir.path()), LocalRunnerOptions{}, kBaseEnv);
  ASSERT_TRUE(command.ok()) << command.status();
  const std::string script = dir.path() + "/.dagd/script";
  EXPECT_THAT(command->argv, ElementsAre("python3", "-u", script));
  EXPECT_EQ(ReadTextFile(script), "print(42)\n");
}

TEST(BuildCommandTest, ScriptWithoutInterpreterIsInvalid) {
  TempDir dir;
  auto status = BuildCommand(MakeSpec(ScriptTemplate("s", {}, "echo"), "a-1", dir.path()),
                             LocalRunnerOptions{}, kBaseEnv)
                    .status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), HasSubstr("interpreter"));
}

TEST(BuildCommandTest, AnsibleCommandLineAndEnvironment) {
  TempDir dir;
  TempDir bundle;
  WriteTextFile(bundle.path() + "/playbooks/site.yml", "- hosts: localhost\n  tasks: []\n");
  engine::AnsibleSpec a;
  a.playbook = "playbooks/site.yml";
  a.inventory = "localhost,";
  a.extra_vars = {{"env", "staging"}, {"count", 3}};
  a.limit = "web1";
  a.env = {{"ANSIBLE_STDOUT_CALLBACK", "yaml"}};
  AttemptSpec spec = MakeSpec(AnsibleTemplate("configure", a), "a-1", dir.path());
  spec.bundle_dir = bundle.path();
  LocalRunnerOptions options;
  options.ansible_playbook = "sh";  // any program on PATH: nothing runs here
  auto command = BuildCommand(spec, options, kBaseEnv);
  ASSERT_TRUE(command.ok()) << command.status();
  const std::string vars = dir.path() + "/.dagd/extra-vars.json";
  EXPECT_THAT(command->argv, ElementsAre("sh", "-i", "localhost,", "-e", "@" + vars, "--limit",
                                         "web1", bundle.path() + "/playbooks/site.yml"));
  EXPECT_EQ(nlohmann::json::parse(ReadTextFile(vars)),
            nlohmann::json({{"env", "staging"}, {"count", 3}}));
  EXPECT_EQ(Mode(vars), 0600);
  EXPECT_TRUE(command->is_ansible);
  for (const char* var :
       {"ANSIBLE_NOCOLOR=1", "ANSIBLE_NOCOWS=1", "ANSIBLE_RETRY_FILES_ENABLED=0",
        "ANSIBLE_HOST_KEY_CHECKING=False", "PYTHONUNBUFFERED=1", "ANSIBLE_STDOUT_CALLBACK=yaml",
        "ANSIBLE_INVENTORY_UNPARSED_FAILED=True"}) {
    EXPECT_THAT(command->env, Contains(var));
  }
  EXPECT_THAT(command->env, Contains("ANSIBLE_LOCAL_TEMP=" + dir.path() + "/.ansible-tmp"));
  EXPECT_EQ(
      std::count_if(command->env.begin(), command->env.end(),
                    [](const std::string& v) { return v.starts_with("ANSIBLE_FORCE_COLOR="); }),
      0);
}

TEST(BuildCommandTest, AnsibleInputsBecomeExtraVarsAndExtraVarsWin) {
  TempDir dir;
  engine::AnsibleSpec a;
  a.source = "- hosts: all\n  tasks: []\n";
  a.extra_vars = {{"env", "prod"}};
  AttemptSpec spec = MakeSpec(AnsibleTemplate("configure", a), "a-1", dir.path());
  spec.inputs = {{"hosts", R"(["web1", "web2"])"},
                 {"facts", R"({"region": "eu", "zones": 3})"},
                 {"env", "staging"},
                 {"note", "[not json"},
                 {"count", "3"}};
  LocalRunnerOptions options;
  options.ansible_playbook = "sh";
  auto command = BuildCommand(spec, options, kBaseEnv);
  ASSERT_TRUE(command.ok()) << command.status();
  const std::string vars = dir.path() + "/.dagd/extra-vars.json";
  EXPECT_THAT(command->argv, Contains("@" + vars));
  EXPECT_EQ(nlohmann::json::parse(ReadTextFile(vars)),
            nlohmann::json::parse(R"({"hosts": ["web1", "web2"],
                                      "facts": {"region": "eu", "zones": 3},
                                      "env": "prod", "note": "[not json", "count": "3"})"));
  EXPECT_EQ(Mode(vars), 0600);
}

TEST(BuildCommandTest, AnsibleInventoryFromJsonTextIsCheckedAndWritten) {
  TempDir dir;
  engine::AnsibleSpec a;
  a.source = "- hosts: all\n  tasks: []\n";
  // One line with commas: JSON from an upstream output, not a host list.
  a.inventory = R"({"web": {"hosts": ["w1", "w2"]}, "_meta": {"hostvars": {"w1": {"port": 22}}}})";
  LocalRunnerOptions options;
  options.ansible_playbook = "sh";
  auto command =
      BuildCommand(MakeSpec(AnsibleTemplate("inv", a), "a-1", dir.path()), options, kBaseEnv);
  ASSERT_TRUE(command.ok()) << command.status();
  const std::string inventory = dir.path() + "/.dagd-inventory.json";
  EXPECT_THAT(command->argv,
              ElementsAre("sh", "-i", inventory, dir.path() + "/.dagd-playbook.yml"));
  EXPECT_EQ(nlohmann::json::parse(ReadTextFile(inventory)),
            nlohmann::json::parse(R"({"web": {"hosts": {"w1": {"port": 22}, "w2": null}}})"));
  EXPECT_EQ(Mode(inventory), 0600);

  a.inventory = R"({"web": {"hosts": ["w1"]})";
  auto bad =
      BuildCommand(MakeSpec(AnsibleTemplate("inv", a), "a-1", dir.path()), options, kBaseEnv);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("template \"inv\""));
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("inventory (JSON) is malformed"));
}

TEST(BuildCommandTest, AnsibleCommandLineFields) {
  TempDir dir;
  engine::AnsibleSpec a;
  a.source = "- hosts: all\n  tasks: []\n";
  a.check = true;
  a.diff = true;
  a.tags = {"web", " db , cache"};
  a.skip_tags = {"slow"};
  a.forks = 12;
  a.verbosity = 3;
  a.become = true;
  a.become_user = "deploy";
  a.host_key_checking = true;
  LocalRunnerOptions options;
  options.ansible_playbook = "sh";
  auto command =
      BuildCommand(MakeSpec(AnsibleTemplate("flags", a), "a-1", dir.path()), options, kBaseEnv);
  ASSERT_TRUE(command.ok()) << command.status();
  EXPECT_THAT(command->argv,
              ElementsAre("sh", "--check", "--diff", "--tags", "web,db,cache", "--skip-tags",
                          "slow", "--forks", "12", "-vvv", "--become", "--become-user", "deploy",
                          dir.path() + "/.dagd-playbook.yml"));
  EXPECT_THAT(command->env, Contains("ANSIBLE_HOST_KEY_CHECKING=True"));
  EXPECT_THAT(command->env, Contains("ANSIBLE_NOCOLOR=1"));
  EXPECT_THAT(command->env, Contains("ANSIBLE_RETRY_FILES_ENABLED=0"));
  EXPECT_THAT(command->env, Contains("ANSIBLE_LOCAL_TEMP=" + dir.path() + "/.ansible-tmp"));
}

TEST(BuildCommandTest, AnsibleVerbosityAndEmptyTagsAddNothing) {
  TempDir dir;
  engine::AnsibleSpec a;
  a.source = "- hosts: all\n  tasks: []\n";
  a.tags = {" , "};
  a.verbosity = 1;
  LocalRunnerOptions options;
  options.ansible_playbook = "sh";
  auto command =
      BuildCommand(MakeSpec(AnsibleTemplate("quiet", a), "a-1", dir.path()), options, kBaseEnv);
  ASSERT_TRUE(command.ok()) << command.status();
  EXPECT_THAT(command->argv, ElementsAre("sh", "-v", dir.path() + "/.dagd-playbook.yml"));
  EXPECT_THAT(command->env, Contains("ANSIBLE_HOST_KEY_CHECKING=False"));
}

TEST(BuildCommandTest, AnsiblePromptWithoutDefaultIsRefused) {
  TempDir dir;
  engine::AnsibleSpec a;
  a.source = "- hosts: all\n  vars_prompt:\n    - name: secret\n      prompt: Secret\n";
  LocalRunnerOptions options;
  options.ansible_playbook = "sh";
  auto command =
      BuildCommand(MakeSpec(AnsibleTemplate("ask", a), "a-1", dir.path()), options, kBaseEnv);
  ASSERT_EQ(command.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(command.status().message()), HasSubstr("template \"ask\""));
  EXPECT_THAT(std::string(command.status().message()), HasSubstr("prompt for \"secret\""));
  EXPECT_THAT(std::string(command.status().message()),
              HasSubstr("Not prompting as we are not in interactive mode"));
  a.extra_vars = {{"secret", "given"}};
  EXPECT_TRUE(
      BuildCommand(MakeSpec(AnsibleTemplate("ask", a), "a-1", dir.path()), options, kBaseEnv).ok());
}

TEST(BuildCommandTest, AnsibleInlineSourceAndInventory) {
  TempDir dir;
  engine::AnsibleSpec a;
  a.source = "- hosts: all\n  tasks: []\n";
  a.inventory = "[web]\nlocalhost ansible_connection=local\n";
  LocalRunnerOptions options;
  options.ansible_playbook = "sh";
  auto command =
      BuildCommand(MakeSpec(AnsibleTemplate("inline", a), "a-1", dir.path()), options, kBaseEnv);
  ASSERT_TRUE(command.ok()) << command.status();
  EXPECT_THAT(command->argv, ElementsAre("sh", "-i", dir.path() + "/.dagd-inventory.ini",
                                         dir.path() + "/.dagd-playbook.yml"));
  EXPECT_EQ(ReadTextFile(dir.path() + "/.dagd-playbook.yml"), a.source);
  EXPECT_EQ(ReadTextFile(dir.path() + "/.dagd-inventory.ini"), a.inventory);
}

TEST(BuildCommandTest, AnsibleMissingPlaybookNamesThePath) {
  TempDir dir;
  TempDir bundle;
  engine::AnsibleSpec a;
  a.playbook = "playbooks/missing.yml";
  AttemptSpec spec = MakeSpec(AnsibleTemplate("deploy", a), "a-1", dir.path());
  spec.bundle_dir = bundle.path();
  auto status = BuildCommand(spec, LocalRunnerOptions{}, kBaseEnv).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), HasSubstr("\"deploy\""));
  EXPECT_THAT(std::string(status.message()), HasSubstr("playbooks/missing.yml"));
  EXPECT_THAT(std::string(status.message()), HasSubstr(bundle.path()));
}

TEST(BuildCommandTest, AnsibleRelativePlaybookNeedsABundle) {
  TempDir dir;
  engine::AnsibleSpec a;
  a.playbook = "site.yml";
  auto status = BuildCommand(MakeSpec(AnsibleTemplate("deploy", a), "a-1", dir.path()),
                             LocalRunnerOptions{}, kBaseEnv)
                    .status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), HasSubstr("bundle"));
}

TEST(BuildCommandTest, AnsibleInventoryThatIsNeitherListNorFile) {
  TempDir dir;
  TempDir bundle;
  WriteTextFile(bundle.path() + "/site.yml", "- hosts: all\n  tasks: []\n");
  engine::AnsibleSpec a;
  a.playbook = "site.yml";
  a.inventory = "localhost";
  AttemptSpec spec = MakeSpec(AnsibleTemplate("deploy", a), "a-1", dir.path());
  spec.bundle_dir = bundle.path();
  auto status = BuildCommand(spec, LocalRunnerOptions{}, kBaseEnv).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), HasSubstr("localhost,"));
}

TEST(BuildCommandTest, DagTemplatesAreNotRunByARunner) {
  TempDir dir;
  engine::Template t;
  t.name = "main";
  t.type = engine::TemplateType::kDag;
  t.dag.emplace();
  auto status =
      BuildCommand(MakeSpec(t, "a-1", dir.path()), LocalRunnerOptions{}, kBaseEnv).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
}

TEST(FindProgramTest, SearchesPathAndResolvesRelativePaths) {
  TempDir dir;
  WriteTextFile(dir.path() + "/tool", "#!/bin/sh\n");
  chmod((dir.path() + "/tool").c_str(), 0755);
  EXPECT_EQ(*FindProgram("sh", "/nonexistent:/usr/bin", "/"), "/usr/bin/sh");
  EXPECT_EQ(*FindProgram("./tool", "/usr/bin", dir.path()), dir.path() + "/./tool");
  EXPECT_EQ(*FindProgram("tool", "/usr/bin:" + dir.path(), "/"), dir.path() + "/tool");
  EXPECT_EQ(FindProgram("tool", "/usr/bin", "/").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(FindProgram("", "/usr/bin", "/").status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace dagd::runners::local
