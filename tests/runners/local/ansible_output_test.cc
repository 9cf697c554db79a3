#include "runners/local/ansible_output.h"

#include <gtest/gtest.h>

#include <string>

#include "tests/runners/runner_test_util.h"

namespace dagd::runners::local {
namespace {

constexpr char kFailedRun[] =
    "PLAY [localhost] ***************************************************************\n"
    "\n"
    "TASK [Say hello] ***************************************************************\n"
    "ok: [localhost] => {\n"
    "    \"msg\": \"hello\"\n"
    "}\n"
    "\n"
    "TASK [Fail on purpose] *********************************************************\n"
    "fatal: [localhost]: FAILED! => {\"changed\": false, \"msg\": \"boom\"}\n"
    "\n"
    "PLAY RECAP *********************************************************************\n"
    "localhost                  : ok=1    changed=0    unreachable=0    failed=1\n";

TEST(AnsibleOutputScannerTest, NamesTheFailingTask) {
  AnsibleOutputScanner scanner;
  scanner.Feed(kFailedRun);
  EXPECT_EQ(scanner.failure(), "task \"Fail on purpose\" failed on localhost: boom");
  engine::AttemptResult verdict = scanner.Classify(2);
  EXPECT_EQ(verdict.phase, engine::NodePhase::kFailed);
  EXPECT_EQ(verdict.message, "task \"Fail on purpose\" failed on localhost: boom");
}

TEST(AnsibleOutputScannerTest, LinesMaySpanChunks) {
  AnsibleOutputScanner scanner;
  std::string text = kFailedRun;
  for (char c : text) scanner.Feed(std::string(1, c));
  EXPECT_NE(scanner.failure().find("Fail on purpose"), std::string::npos);
  EXPECT_NE(scanner.failure().find("boom"), std::string::npos);
}

TEST(AnsibleOutputScannerTest, NoFailureInASuccessfulRun) {
  AnsibleOutputScanner scanner;
  scanner.Feed("TASK [Say hello] ****\nok: [localhost]\n");
  EXPECT_EQ(scanner.failure(), "");
}

TEST(AnsibleOutputScannerTest, LongLinesAreCut) {
  AnsibleOutputScanner scanner;
  scanner.Feed("TASK [t] ***\nfatal: [h]: FAILED! => " + std::string(10000, 'x') + "\n");
  EXPECT_LT(scanner.failure().size(), 500u);
}

TEST(AnsibleOutputScannerTest, IgnoredFailuresDoNotCount) {
  AnsibleOutputScanner scanner;
  scanner.FeedStdout("TASK [t] ***\nfatal: [h]: FAILED! => {\"msg\": \"meh\"}\n...ignoring\n");
  EXPECT_EQ(scanner.failure(), "");
}

TEST(AnsibleOutputScannerTest, CommandFailureShowsRcAndStderr) {
  AnsibleOutputScanner scanner;
  scanner.FeedStdout(
      "TASK [run it] ***\nfatal: [web1]: FAILED! => {\"changed\": true, \"msg\": \"non-zero "
      "return code\", \"rc\": 3, \"stderr\": \"no such thing\"}\n");
  EXPECT_EQ(scanner.failure(),
            "task \"run it\" failed on web1: non-zero return code (rc 3): no such thing");
}

TEST(AnsibleOutputScannerTest, LoopItemFailureBeatsTheSummary) {
  AnsibleOutputScanner scanner;
  scanner.FeedStdout(
      "TASK [each] ***\nfailed: [h] (item=2) => {\"item\": 2, \"msg\": \"two is bad\"}\n"
      "fatal: [h]: FAILED! => {\"msg\": \"One or more items failed\"}\n");
  EXPECT_EQ(scanner.failure(), "task \"each\" failed on h: two is bad");
}

TEST(AnsibleOutputScannerTest, IndentedResultsAtHighVerbosity) {
  AnsibleOutputScanner scanner;
  scanner.FeedStdout(
      "TASK [reach it] ***\n"
      "fatal: [web1]: UNREACHABLE! => {\n"
      "    \"changed\": false,\n"
      "    \"msg\": \"Connection refused\",\n"
      "    \"unreachable\": true\n"
      "}\n"
      "TASK [install nginx] ***\n"
      "fatal: [db1]: FAILED! => {\n"
      "    \"msg\": \"no package manager here\"\n"
      "}\n");
  EXPECT_EQ(scanner.failure(), "task \"install nginx\" failed on db1: no package manager here");
  EXPECT_EQ(scanner.Classify(4).message, "host web1 unreachable: Connection refused");
}

TEST(AnsibleOutputScannerTest, UnreachableHostsAreAnError) {
  AnsibleOutputScanner scanner;
  scanner.FeedStdout(
      "TASK [ping] ***\n"
      "fatal: [web1]: UNREACHABLE! => {\"changed\": false, \"msg\": \"Failed to connect\", "
      "\"unreachable\": true}\n"
      "fatal: [web2]: UNREACHABLE! => {\"msg\": \"timeout\", \"unreachable\": true}\n"
      "fatal: [db1]: FAILED! => {\"msg\": \"boom\"}\n");
  engine::AttemptResult verdict = scanner.Classify(4);
  EXPECT_EQ(verdict.phase, engine::NodePhase::kError);
  EXPECT_EQ(verdict.message, "hosts web1, web2 unreachable: Failed to connect");
}

TEST(AnsibleOutputScannerTest, AnsibleErrorTextFromStderr) {
  AnsibleOutputScanner scanner;
  scanner.FeedStderr(
      "[WARNING]: something first\n"
      "ERROR! Syntax Error while loading YAML.\n"
      "  did not find expected key\n"
      "\n"
      "The error appears to be in 'x.yml': line 5, column 6\n");
  engine::AttemptResult verdict = scanner.Classify(4);
  EXPECT_EQ(verdict.phase, engine::NodePhase::kError);
  EXPECT_EQ(verdict.message,
            "playbook error: Syntax Error while loading YAML. did not find expected key The "
            "error appears to be in 'x.yml': line 5, column 6");
}

TEST(AnsibleOutputScannerTest, UsageErrorIsAnErrorDespiteExitCode2) {
  AnsibleOutputScanner scanner;
  scanner.FeedStderr(
      "usage: ansible-playbook [-h]\nansible-playbook: error: unrecognized "
      "arguments: --bogus\n");
  engine::AttemptResult verdict = scanner.Classify(2);
  EXPECT_EQ(verdict.phase, engine::NodePhase::kError);
  EXPECT_EQ(verdict.message,
            "ansible-playbook rejected its options: unrecognized arguments: --bogus");
}

TEST(AnsibleOutputScannerTest, UnexplainedExitCodes) {
  AnsibleOutputScanner scanner;
  EXPECT_EQ(scanner.Classify(2).phase, engine::NodePhase::kFailed);
  EXPECT_EQ(scanner.Classify(99).phase, engine::NodePhase::kError);
  EXPECT_EQ(scanner.Classify(99).message, "ansible-playbook failed: exit code 99");
}

TEST(UnansweredPromptTest, FindsPromptsWithoutDefaultOrExtraVar) {
  constexpr char kPlaybook[] = R"(
- hosts: all
  vars_prompt:
    - name: region
      prompt: Which region
      default: eu
    - name: password
      prompt: Password
- hosts: all
  vars_prompt:
    - name: token
      prompt: Token
)";
  EXPECT_EQ(UnansweredPrompt(kPlaybook, "/nonexistent", {}), "password");
  EXPECT_EQ(UnansweredPrompt(kPlaybook, "/nonexistent", {"password"}), "token");
  EXPECT_EQ(UnansweredPrompt(kPlaybook, "/nonexistent", {"password", "token"}), "");
  EXPECT_EQ(UnansweredPrompt("- hosts: all\n  tasks: []\n", "/nonexistent", {}), "");
  EXPECT_EQ(UnansweredPrompt("not: [valid", "/nonexistent", {}), "");
}

TEST(UnansweredPromptTest, FollowsImportedPlaybooks) {
  ::dagd::runners::testing::TempDir dir;
  ::dagd::runners::testing::WriteTextFile(
      dir.path() + "/site.yml", "- import_playbook: plays/db.yml\n- hosts: all\n  tasks: []\n");
  ::dagd::runners::testing::WriteTextFile(dir.path() + "/plays/db.yml",
                                          "- ansible.builtin.import_playbook: nested/secret.yml\n");
  ::dagd::runners::testing::WriteTextFile(dir.path() + "/plays/nested/secret.yml",
                                          "- hosts: db\n  vars_prompt:\n    - name: db_password\n");
  const std::string site = ::dagd::runners::testing::ReadTextFile(dir.path() + "/site.yml");
  EXPECT_EQ(UnansweredPrompt(site, dir.path(), {}), "db_password");
  EXPECT_EQ(UnansweredPrompt(site, dir.path(), {"db_password"}), "");
  // Imports Ansible alone can resolve, or that do not exist, are left to Ansible.
  EXPECT_EQ(UnansweredPrompt("- import_playbook: \"{{ which }}.yml\"\n", dir.path(), {}), "");
  EXPECT_EQ(UnansweredPrompt("- import_playbook: missing.yml\n", dir.path(), {}), "");
  // A playbook that imports itself ends at the depth limit.
  ::dagd::runners::testing::WriteTextFile(dir.path() + "/loop.yml",
                                          "- import_playbook: loop.yml\n");
  EXPECT_EQ(UnansweredPrompt("- import_playbook: loop.yml\n", dir.path(), {}), "");
}

}  // namespace
}  // namespace dagd::runners::local
