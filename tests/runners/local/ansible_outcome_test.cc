// How the local runner classifies real ansible-playbook runs (issue 3, point 5) and what the
// command-line fields do to a real run (point 8).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <filesystem>
#include <string>
#include <utility>

#include "runners/local/local_runner.h"
#include "tests/runners/runner_test_util.h"

namespace dagd::runners::local {
namespace {

using ::dagd::runners::testing::AnsibleTemplate;
using ::dagd::runners::testing::MakeSpec;
using ::dagd::runners::testing::Recorder;
using ::dagd::runners::testing::RunUntil;
using ::dagd::runners::testing::TempDir;
using engine::NodePhase;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr std::chrono::seconds kTimeout(120);  // ansible-playbook starts slowly on a busy host

// A play on localhost without facts, using the interpreter ansible-playbook runs on.
std::string LocalPlay(const std::string& tasks) {
  return "- hosts: all\n"
         "  connection: local\n"
         "  gather_facts: false\n"
         "  vars:\n"
         "    ansible_python_interpreter: \"{{ ansible_playbook_python }}\"\n"
         "  tasks:\n" +
         tasks;
}

class AnsibleOutcomeTest : public ::testing::Test {
 protected:
  static engine::AttemptResult Errored(std::string message) {
    engine::AttemptResult result;
    result.phase = NodePhase::kError;
    result.message = std::move(message);
    return result;
  }

  AttemptSpec Spec(engine::AnsibleSpec ansible) {
    if (ansible.inventory.empty()) ansible.inventory = "localhost,";
    const std::string name = "outcome-" + std::to_string(++next_);
    return MakeSpec(AnsibleTemplate(name, std::move(ansible)), name, dir_.Subdir(name));
  }

  engine::AttemptResult Run(const AttemptSpec& spec, Recorder* recorder) {
    absl::Status status = runner_.Start(spec, recorder->Callbacks());
    EXPECT_TRUE(status.ok()) << status;
    if (!status.ok()) return Errored(std::string(status.message()));
    EXPECT_TRUE(RunUntil(
        io_, [&] { return recorder->finished(); }, kTimeout));
    if (recorder->result.has_value()) return *recorder->result;
    return Errored("timed out");
  }

  boost::asio::io_context io_;
  LocalRunner runner_{io_, LocalRunnerOptions{}};
  TempDir dir_;
  int next_ = 0;
};

TEST_F(AnsibleOutcomeTest, FailedTaskIsFailedWithTaskHostAndMessage) {
  engine::AnsibleSpec a;
  a.source = LocalPlay(
      "    - name: install nginx\n"
      "      ansible.builtin.fail:\n"
      "        msg: no package manager here\n");
  Recorder r;
  engine::AttemptResult result = Run(Spec(a), &r);
  EXPECT_EQ(result.phase, NodePhase::kFailed) << r.stdout_text << r.stderr_text;
  EXPECT_EQ(result.exit_code, 2);
  EXPECT_EQ(result.message, "task \"install nginx\" failed on localhost: no package manager here");
}

TEST_F(AnsibleOutcomeTest, FailedTaskIsNamedAtHighVerbosityToo) {
  engine::AnsibleSpec a;
  a.source = LocalPlay(
      "    - name: install nginx\n"
      "      ansible.builtin.fail:\n"
      "        msg: no package manager here\n");
  a.verbosity = 3;
  Recorder r;
  engine::AttemptResult result = Run(Spec(a), &r);
  EXPECT_EQ(result.phase, NodePhase::kFailed) << r.stdout_text << r.stderr_text;
  EXPECT_EQ(result.message, "task \"install nginx\" failed on localhost: no package manager here");
}

TEST_F(AnsibleOutcomeTest, UnreachableHostIsAnErrorNamingTheHost) {
  engine::AnsibleSpec a;
  // Nothing listens on port 1.
  a.inventory = "web1 ansible_host=127.0.0.1 ansible_port=1 ansible_connection=ssh\n";
  a.source =
      "- hosts: all\n"
      "  gather_facts: false\n"
      "  tasks:\n"
      "    - name: reach it\n"
      "      ansible.builtin.ping:\n";
  Recorder r;
  engine::AttemptResult result = Run(Spec(a), &r);
  EXPECT_EQ(result.phase, NodePhase::kError) << r.stdout_text << r.stderr_text;
  EXPECT_EQ(result.exit_code, 4);
  EXPECT_THAT(result.message, HasSubstr("host web1 unreachable: "));
  EXPECT_THAT(result.message, HasSubstr("port 1"));
}

TEST_F(AnsibleOutcomeTest, SyntaxErrorIsAnErrorWithAnsiblesText) {
  engine::AnsibleSpec a;
  a.source =
      "- hosts: all\n"
      "  tasks:\n"
      "    - name: bad\n"
      "      debug: msg=x\n"
      "     oops: [\n";
  Recorder r;
  engine::AttemptResult result = Run(Spec(a), &r);
  EXPECT_EQ(result.phase, NodePhase::kError) << r.stdout_text << r.stderr_text;
  EXPECT_EQ(result.exit_code, 4);
  EXPECT_THAT(result.message, HasSubstr("playbook error: "));
  EXPECT_THAT(result.message, HasSubstr("Syntax Error while loading YAML"));
  EXPECT_THAT(r.stderr_text, HasSubstr("ERROR!"));
}

TEST_F(AnsibleOutcomeTest, UnknownModuleIsAnError) {
  engine::AnsibleSpec a;
  a.source = LocalPlay("    - name: nope\n      no.such.module: {}\n");
  Recorder r;
  engine::AttemptResult result = Run(Spec(a), &r);
  EXPECT_EQ(result.phase, NodePhase::kError) << r.stdout_text << r.stderr_text;
  EXPECT_THAT(result.message, HasSubstr("playbook error: "));
  EXPECT_THAT(result.message, HasSubstr("no.such.module"));
}

TEST_F(AnsibleOutcomeTest, PromptWithoutDefaultFailsFast) {
  engine::AnsibleSpec a;
  a.source = LocalPlay("    - ansible.builtin.debug: {var: secret}\n") +
             "  vars_prompt:\n    - name: secret\n      prompt: What is it\n";
  const auto start = std::chrono::steady_clock::now();
  Recorder r;
  absl::Status status = runner_.Start(Spec(a), r.Callbacks());
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), HasSubstr("prompt for \"secret\""));
  EXPECT_EQ(runner_.running(), 0u);
}

TEST_F(AnsibleOutcomeTest, PromptWithADefaultRuns) {
  engine::AnsibleSpec a;
  a.source = LocalPlay("    - ansible.builtin.debug: {msg: \"got {{ secret }}\"}\n") +
             "  vars_prompt:\n    - name: secret\n      prompt: What\n      default: fallback\n";
  Recorder r;
  engine::AttemptResult result = Run(Spec(a), &r);
  EXPECT_EQ(result.phase, NodePhase::kSucceeded) << r.stdout_text << r.stderr_text;
  EXPECT_THAT(r.stdout_text, HasSubstr("got fallback"));
}

constexpr char kCopyTask[] =
    "    - name: write it\n"
    "      ansible.builtin.copy:\n"
    "        dest: \"{{ lookup('ansible.builtin.env', 'PWD') }}/out.txt\"\n"
    "        content: \"new content\\n\"\n";

TEST_F(AnsibleOutcomeTest, CheckModeChangesNothingAndDiffIsLogged) {
  engine::AnsibleSpec a;
  a.source = LocalPlay(kCopyTask);
  a.check = true;
  a.diff = true;
  AttemptSpec spec = Spec(a);
  Recorder r;
  engine::AttemptResult result = Run(spec, &r);
  EXPECT_EQ(result.phase, NodePhase::kSucceeded) << result.message << r.stdout_text;
  EXPECT_FALSE(std::filesystem::exists(spec.work_dir + "/out.txt"));
  EXPECT_THAT(r.stdout_text, HasSubstr("changed: [localhost]"));
  EXPECT_THAT(r.stdout_text, HasSubstr("+new content"));  // --diff
}

TEST_F(AnsibleOutcomeTest, WithoutCheckTheFileIsWrittenAndNoDiffShown) {
  engine::AnsibleSpec a;
  a.source = LocalPlay(kCopyTask);
  AttemptSpec spec = Spec(a);
  Recorder r;
  engine::AttemptResult result = Run(spec, &r);
  EXPECT_EQ(result.phase, NodePhase::kSucceeded) << result.message << r.stdout_text;
  EXPECT_TRUE(std::filesystem::exists(spec.work_dir + "/out.txt"));
  EXPECT_THAT(r.stdout_text, Not(HasSubstr("+new content")));
}

TEST_F(AnsibleOutcomeTest, TagsAndSkipTagsSelectTasks) {
  engine::AnsibleSpec a;
  a.source = LocalPlay(
      "    - {name: task one, ansible.builtin.debug: {msg: one}, tags: [one]}\n"
      "    - {name: task two, ansible.builtin.debug: {msg: two}, tags: [two, slow]}\n"
      "    - {name: task three, ansible.builtin.debug: {msg: three}, tags: [three]}\n"
      "    - {name: task four, ansible.builtin.debug: {msg: four}, tags: [four]}\n");
  a.tags = {"one,two", "four"};
  a.skip_tags = {"slow"};
  Recorder r;
  engine::AttemptResult result = Run(Spec(a), &r);
  EXPECT_EQ(result.phase, NodePhase::kSucceeded) << result.message << r.stdout_text;
  EXPECT_THAT(r.stdout_text, HasSubstr("TASK [task one]"));
  EXPECT_THAT(r.stdout_text, HasSubstr("TASK [task four]"));
  EXPECT_THAT(r.stdout_text, Not(HasSubstr("TASK [task two]")));
  EXPECT_THAT(r.stdout_text, Not(HasSubstr("TASK [task three]")));
}

TEST_F(AnsibleOutcomeTest, VerbosityReachesAnsible) {
  engine::AnsibleSpec a;
  a.source = LocalPlay("    - ansible.builtin.debug: {msg: hi, verbosity: 2}\n");
  a.verbosity = 2;
  Recorder r;
  engine::AttemptResult result = Run(Spec(a), &r);
  EXPECT_EQ(result.phase, NodePhase::kSucceeded) << result.message << r.stdout_text;
  EXPECT_THAT(r.stdout_text, HasSubstr("\"msg\": \"hi\""));  // shown only at -vv and above
}

}  // namespace
}  // namespace dagd::runners::local
