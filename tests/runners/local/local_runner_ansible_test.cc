// LocalRunner with the real ansible-playbook (DESIGN.md: "the real thing, never mocked").
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <boost/asio/io_context.hpp>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "runners/local/local_runner.h"
#include "tests/runners/runner_test_util.h"

namespace dagd::runners::local {
namespace {

using ::dagd::runners::testing::AnsibleTemplate;
using ::dagd::runners::testing::MakeSpec;
using ::dagd::runners::testing::PathOutput;
using ::dagd::runners::testing::Recorder;
using ::dagd::runners::testing::RunUntil;
using ::dagd::runners::testing::TempDir;
using ::dagd::runners::testing::WriteTextFile;
using engine::NodePhase;
using ::testing::HasSubstr;

constexpr std::chrono::seconds kTimeout(120);  // ansible-playbook starts slowly on a busy host

constexpr char kHelloPlaybook[] = R"(
- hosts: localhost
  connection: local
  gather_facts: false
  vars:
    ansible_python_interpreter: "{{ ansible_playbook_python }}"
  tasks:
    - name: Greet
      ansible.builtin.debug:
        msg: "Hello {{ who | upper }} x{{ times * 2 }}"
)";

constexpr char kFailingPlaybook[] = R"(
- hosts: localhost
  connection: local
  gather_facts: false
  vars:
    ansible_python_interpreter: "{{ ansible_playbook_python }}"
  tasks:
    - name: Fine so far
      ansible.builtin.debug:
        msg: ok
    - name: Fail on purpose
      ansible.builtin.fail:
        msg: the database is on fire
)";

// Every kind of event dagd_events.py reports: ok, changed, a loop, an ignored failure, a no_log
// result, a handler and set_stats.
constexpr char kEventsPlaybook[] = R"(
- hosts: localhost
  connection: local
  gather_facts: false
  vars:
    ansible_python_interpreter: "{{ ansible_playbook_python }}"
  tasks:
    - name: Say hello
      ansible.builtin.debug:
        msg: hello
    - name: Touch a file
      ansible.builtin.command: "touch {{ lookup('ansible.builtin.env', 'PWD') }}/touched"
      notify: Announce
    - name: Loop over fruit
      ansible.builtin.debug:
        msg: "{{ item }}"
      loop: [apple, pear]
    - name: Fail but carry on
      ansible.builtin.command: "false"
      ignore_errors: true
    - name: Keep a secret
      ansible.builtin.command: echo hunter2-secret
      no_log: true
    - name: Publish
      ansible.builtin.set_stats:
        data: {answer: 42}
  handlers:
    - name: Announce
      ansible.builtin.debug:
        msg: announced
)";

class LocalRunnerAnsibleTest : public ::testing::Test {
 protected:
  AttemptSpec Spec(engine::AnsibleSpec ansible) {
    const std::string name = "ansible-" + std::to_string(++next_);
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

  boost::asio::io_context io_;
  LocalRunner runner_{io_, LocalRunnerOptions{}};
  TempDir dir_;
  int next_ = 0;
};

TEST_F(LocalRunnerAnsibleTest, InlinePlaybookWithExtraVars) {
  engine::AnsibleSpec a;
  a.source = kHelloPlaybook;
  a.inventory = "localhost,";
  a.extra_vars = {{"who", "dagd"}, {"times", 21}};
  AttemptSpec spec = Spec(a);
  Recorder r;
  engine::AttemptResult result = Run(spec, &r);
  EXPECT_EQ(result.phase, NodePhase::kSucceeded)
      << result.message << r.stdout_text << r.stderr_text;
  EXPECT_EQ(result.exit_code, 0);
  EXPECT_THAT(r.stdout_text, HasSubstr("TASK [Greet]"));
  EXPECT_THAT(r.stdout_text, HasSubstr("Hello DAGD x42"));
  EXPECT_THAT(r.stdout_text, ::testing::Not(HasSubstr("\x1b[")));  // ANSIBLE_NOCOLOR
  struct stat st;
  ASSERT_EQ(stat((spec.work_dir + "/.dagd/extra-vars.json").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST_F(LocalRunnerAnsibleTest, FailingPlaybookNamesTheTask) {
  engine::AnsibleSpec a;
  a.source = kFailingPlaybook;
  a.inventory = "localhost,";
  Recorder r;
  engine::AttemptResult result = Run(Spec(a), &r);
  EXPECT_EQ(result.phase, NodePhase::kFailed) << r.stdout_text << r.stderr_text;
  EXPECT_EQ(result.exit_code, 2);
  EXPECT_THAT(result.message, HasSubstr("Fail on purpose"));
  EXPECT_THAT(result.message, HasSubstr("the database is on fire"));
}

TEST_F(LocalRunnerAnsibleTest, PlaybookAndInventoryFromTheBundle) {
  TempDir bundle;
  WriteTextFile(bundle.path() + "/inventory.ini",
                "[app]\nlocalhost ansible_connection=local "
                "ansible_python_interpreter=/usr/bin/python3\n");
  WriteTextFile(bundle.path() + "/playbooks/site.yml", R"(
- hosts: app
  gather_facts: false
  tasks:
    - name: Write a file into the working directory
      ansible.builtin.copy:
        dest: "{{ lookup('ansible.builtin.env', 'PWD') }}/release.txt"
        content: "{{ version }}\n"
)");
  engine::AnsibleSpec a;
  a.playbook = "playbooks/site.yml";
  a.inventory = "inventory.ini";
  a.extra_vars = {{"version", "1.2.3"}};
  AttemptSpec spec = Spec(a);
  spec.bundle_dir = bundle.path();
  spec.resolved.outputs.parameters = {PathOutput("version", "release.txt")};
  Recorder r;
  engine::AttemptResult result = Run(spec, &r);
  EXPECT_EQ(result.phase, NodePhase::kSucceeded)
      << result.message << r.stdout_text << r.stderr_text;
  EXPECT_EQ(result.parameters["version"], "1.2.3");
}

TEST_F(LocalRunnerAnsibleTest, MissingPlaybookIsAClearStartError) {
  TempDir bundle;
  engine::AnsibleSpec a;
  a.playbook = "playbooks/nope.yml";
  AttemptSpec spec = Spec(a);
  spec.bundle_dir = bundle.path();
  Recorder r;
  absl::Status status = runner_.Start(spec, r.Callbacks());
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), HasSubstr("playbooks/nope.yml"));
  EXPECT_THAT(std::string(status.message()), HasSubstr(spec.resolved.name));
}

TEST_F(LocalRunnerAnsibleTest, MissingAnsiblePlaybookProgram) {
  boost::asio::io_context io;
  LocalRunnerOptions options;
  options.ansible_playbook = "ansible-playbook-not-installed";
  LocalRunner runner(io, options);
  engine::AnsibleSpec a;
  a.source = kHelloPlaybook;
  Recorder r;
  absl::Status status = runner.Start(Spec(a), r.Callbacks());
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(status.message()), HasSubstr("ansible-playbook-not-installed"));
}

TEST_F(LocalRunnerAnsibleTest, CallbackPluginReportsEveryEventOnItsOwnChannel) {
  engine::AnsibleSpec a;
  a.source = kEventsPlaybook;
  a.inventory = "localhost,";
  AttemptSpec spec = Spec(a);
  Recorder r;
  engine::AttemptResult result = Run(spec, &r);
  ASSERT_EQ(result.phase, NodePhase::kSucceeded) << result.message << r.stdout_text;
  EXPECT_EQ(r.events_after_finish, 0);
  // The default stdout callback is untouched; events are not on stdout.
  EXPECT_THAT(r.stdout_text, HasSubstr("TASK [Say hello]"));
  EXPECT_THAT(r.stdout_text, ::testing::Not(HasSubstr("\"kind\"")));

  std::vector<nlohmann::json> events;
  for (const std::string& line : r.events) {
    EXPECT_THAT(line, ::testing::Not(HasSubstr("hunter2-secret")));
    events.push_back(nlohmann::json::parse(line));
  }
  auto find = [&](const std::string& kind, const std::string& task) -> const nlohmann::json* {
    for (const nlohmann::json& e : events) {
      if (e.value("kind", "") == kind && e.value("task", "") == task) return &e;
    }
    return nullptr;
  };
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.front().value("kind", ""), "playbook_start");
  ASSERT_NE(find("play_start", ""), nullptr);
  const nlohmann::json* start = find("task_start", "Say hello");
  ASSERT_NE(start, nullptr);
  EXPECT_EQ(start->value("action", ""), "ansible.builtin.debug");
  EXPECT_FALSE(start->value("task_uuid", "").empty());

  const nlohmann::json* ok = find("runner_on_ok", "Say hello");
  ASSERT_NE(ok, nullptr);
  EXPECT_EQ(ok->value("host", ""), "localhost");
  EXPECT_FALSE(ok->value("changed", true));
  EXPECT_EQ(ok->at("result").value("msg", ""), "hello");

  const nlohmann::json* changed = find("runner_on_ok", "Touch a file");
  ASSERT_NE(changed, nullptr);
  EXPECT_TRUE(changed->value("changed", false));

  std::vector<std::string> items;
  for (const nlohmann::json& e : events) {
    if (e.value("kind", "") == "runner_item_on_ok")
      items.push_back(e.at("item").get<std::string>());
  }
  EXPECT_THAT(items, ::testing::ElementsAre("apple", "pear"));

  const nlohmann::json* failed = find("runner_on_failed", "Fail but carry on");
  ASSERT_NE(failed, nullptr);
  EXPECT_TRUE(failed->value("failed", false));
  EXPECT_TRUE(failed->value("ignore_errors", false));

  const nlohmann::json* secret = find("runner_on_ok", "Keep a secret");
  ASSERT_NE(secret, nullptr);
  EXPECT_TRUE(secret->at("result").contains("censored"));

  EXPECT_NE(find("handler_task_start", "Announce"), nullptr);
  EXPECT_NE(find("runner_on_ok", "Announce"), nullptr);

  const nlohmann::json& stats = events.back();
  EXPECT_EQ(stats.value("kind", ""), "stats");
  EXPECT_EQ(stats.at("stats").at("localhost").value("changed", -1), 3);  // touch, false, secret
  EXPECT_EQ(stats.at("stats").at("localhost").value("ignored", -1), 1);
  EXPECT_EQ(stats.at("custom_stats").at("_run").value("answer", 0), 42);
}

// set_stats data becomes node outputs: a parameter per key (valueFrom.stats) and the whole map as
// the node's result.
TEST_F(LocalRunnerAnsibleTest, SetStatsBecomeOutputParametersAndTheResult) {
  engine::AnsibleSpec a;
  a.source = R"(
- hosts: localhost
  connection: local
  gather_facts: false
  vars:
    ansible_python_interpreter: "{{ ansible_playbook_python }}"
  tasks:
    - name: Discover
      ansible.builtin.set_stats:
        data:
          hosts: [web1, web2]
          region: eu-west
    - name: More
      ansible.builtin.set_stats:
        data: {count: 2}
)";
  a.inventory = "localhost,";
  engine::Template t = AnsibleTemplate("discover", a);
  auto stats_output = [](const std::string& name, const std::string& key,
                         std::optional<std::string> fallback = std::nullopt) {
    engine::Parameter p;
    p.name = name;
    p.value_from.emplace();
    p.value_from->stats = key;
    p.value_from->default_value = fallback;
    return p;
  };
  t.outputs.parameters = {stats_output("hosts", "hosts"), stats_output("region", "region"),
                          stats_output("count", "count"),
                          stats_output("zone", "zone", std::string("none"))};
  AttemptSpec spec = MakeSpec(t, "discover-1", dir_.Subdir("discover"));
  Recorder r;
  engine::AttemptResult result = Run(spec, &r);
  ASSERT_EQ(result.phase, NodePhase::kSucceeded) << result.message << r.stderr_text;
  EXPECT_EQ(result.parameters["hosts"], R"(["web1","web2"])");
  EXPECT_EQ(result.parameters["region"], "eu-west");  // a string as it is, not JSON-quoted
  EXPECT_EQ(result.parameters["count"], "2");
  EXPECT_EQ(result.parameters["zone"], "none");  // valueFrom.default
  ASSERT_TRUE(result.result.has_value());
  EXPECT_EQ(nlohmann::json::parse(*result.result),
            nlohmann::json::parse(R"({"hosts": ["web1", "web2"], "region": "eu-west",
                                      "count": 2})"));
}

TEST_F(LocalRunnerAnsibleTest, MissingStatsKeyIsAnErrorThatSaysWhy) {
  engine::AnsibleSpec a;
  a.source = kHelloPlaybook;
  a.inventory = "localhost,";
  a.extra_vars = {{"who", "x"}, {"times", 1}};
  engine::Template t = AnsibleTemplate("quiet", a);
  engine::Parameter p;
  p.name = "hosts";
  p.value_from.emplace();
  p.value_from->stats = "hosts";
  t.outputs.parameters = {p};
  Recorder r;
  engine::AttemptResult result = Run(MakeSpec(t, "quiet-1", dir_.Subdir("quiet")), &r);
  EXPECT_EQ(result.phase, NodePhase::kError);
  EXPECT_THAT(result.message, HasSubstr("output parameter \"hosts\""));
  EXPECT_THAT(result.message, HasSubstr("did not set_stats \"hosts\" (it set no stats at all)"));
}

// Upstream outputs arrive as input parameters; the playbook sees them as data, not strings.
TEST_F(LocalRunnerAnsibleTest, InputParametersReachThePlaybookAsExtraVars) {
  engine::AnsibleSpec a;
  a.source = R"(
- hosts: localhost
  connection: local
  gather_facts: false
  vars:
    ansible_python_interpreter: "{{ ansible_playbook_python }}"
  tasks:
    - name: Check the upstream outputs
      ansible.builtin.assert:
        that:
          - hosts | length == 2
          - hosts[1] == "web2"
          - facts.zones == 3
          - env == "staging"
)";
  a.inventory = "localhost,";
  AttemptSpec spec = Spec(a);
  spec.inputs = {{"hosts", R"(["web1","web2"])"}, {"facts", R"({"zones": 3})"}, {"env", "staging"}};
  Recorder r;
  engine::AttemptResult result = Run(spec, &r);
  EXPECT_EQ(result.phase, NodePhase::kSucceeded) << result.message << r.stdout_text;
}

// The dynamic-inventory pattern: an upstream output holding `ansible-inventory --list` JSON.
TEST_F(LocalRunnerAnsibleTest, JsonInventoryFromAnOutputRunsOnItsHosts) {
  engine::AnsibleSpec a;
  a.source = R"(
- hosts: web
  connection: local
  gather_facts: false
  vars:
    ansible_python_interpreter: "{{ ansible_playbook_python }}"
  tasks:
    - name: Where am I
      ansible.builtin.debug:
        msg: "{{ inventory_hostname }} in {{ tier }} port {{ ansible_port }}"
)";
  a.inventory =
      R"({"_meta": {"hostvars": {"w1": {"ansible_port": 2201}, "w2": {"ansible_port": 2202}}},
                    "all": {"children": ["web"]},
                    "web": {"hosts": ["w1", "w2"], "vars": {"tier": "front"}}})";
  Recorder r;
  engine::AttemptResult result = Run(Spec(a), &r);
  EXPECT_EQ(result.phase, NodePhase::kSucceeded) << result.message << r.stdout_text;
  EXPECT_THAT(r.stdout_text, HasSubstr("w1 in front port 2201"));
  EXPECT_THAT(r.stdout_text, HasSubstr("w2 in front port 2202"));
}

TEST_F(LocalRunnerAnsibleTest, UnparsableIniInventoryIsAnErrorNamingTheCause) {
  engine::AnsibleSpec a;
  a.source = kHelloPlaybook;
  a.inventory = "[web\nw1 ansible_connection=local\n";
  Recorder r;
  engine::AttemptResult result = Run(Spec(a), &r);
  EXPECT_EQ(result.phase, NodePhase::kError) << r.stdout_text;
  EXPECT_THAT(result.message, HasSubstr("inventory error: Failed to parse"));
  EXPECT_THAT(result.message, HasSubstr(".dagd-inventory.ini with ini plugin"));
}

// An event line beyond the runner's memory bound is dropped whole; the events after it arrive.
TEST_F(LocalRunnerAnsibleTest, OversizedEventLineIsDroppedAndLaterEventsArrive) {
  engine::AnsibleSpec a;
  a.source = R"(
- hosts: localhost
  connection: local
  gather_facts: false
  vars:
    ansible_python_interpreter: "{{ ansible_playbook_python }}"
  tasks:
    - name: Huge
      ansible.builtin.set_fact:
        huge: "{{ 'x' * (17 * 1024 * 1024) }}"
    - name: Small afterwards
      ansible.builtin.debug:
        msg: still here
)";
  a.inventory = "localhost,";
  Recorder r;
  engine::AttemptResult result = Run(Spec(a), &r);
  ASSERT_EQ(result.phase, NodePhase::kSucceeded) << result.message << r.stderr_text;
  bool huge_result = false;
  bool small_result = false;
  for (const std::string& line : r.events) {
    EXPECT_LT(line.size(), 16u * 1024 * 1024);
    nlohmann::json event = nlohmann::json::parse(line);
    if (event.value("kind", "") != "runner_on_ok") continue;
    if (event.value("task", "") == "Huge") huge_result = true;
    if (event.value("task", "") == "Small afterwards") small_result = true;
  }
  EXPECT_FALSE(huge_result);  // its line (the 17 MiB fact in the result) was dropped
  EXPECT_TRUE(small_result);
  ASSERT_FALSE(r.events.empty());
  EXPECT_EQ(nlohmann::json::parse(r.events.back()).value("kind", ""), "stats");
}

}  // namespace
}  // namespace dagd::runners::local
