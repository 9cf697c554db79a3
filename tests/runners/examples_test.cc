// Runs every playbook of the bundled examples (examples/) through the LocalRunner, with the
// example directory as the bundle, as the workflows would: all must succeed.
#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "runners/local/local_runner.h"
#include "tests/runners/runner_test_util.h"

namespace dagd::runners {
namespace {

using ::dagd::runners::testing::AnsibleTemplate;
using ::dagd::runners::testing::MakeSpec;
using ::dagd::runners::testing::Recorder;
using ::dagd::runners::testing::RunUntil;
using ::dagd::runners::testing::TempDir;

struct PlaybookRun {
  std::string example;   // directory under examples/
  std::string playbook;  // relative to it
  std::map<std::string, nlohmann::json> extra_vars;
  std::string expected_output;  // a line the run must print
  std::string inventory = "localhost,";
};

TEST(ExamplesTest, EveryExamplePlaybookSucceeds) {
  const std::vector<std::string> hosts = {"web1", "web2", "db1"};
  const std::vector<PlaybookRun> runs = {
      {"provision-configure-smoke",
       "playbooks/provision.yml",
       {{"env", "staging"}, {"host_names", hosts}},
       "Provisioning 3 hosts for staging: web1, web2, db1"},
      {"provision-configure-smoke",
       "playbooks/configure.yml",
       {{"env", "staging"}, {"target_host", "web2"}},
       "Configuring web2 as a web server"},
      {"provision-configure-smoke",
       "playbooks/configure.yml",
       {{"env", "staging"}, {"target_host", "db1"}},
       "Configuring db1 as a database server"},
      {"provision-configure-smoke",
       "playbooks/smoke-test.yml",
       {{"env", "staging"}},
       "3 hosts healthy in staging",
       "[targets]\nweb1 ansible_connection=local\nweb2 ansible_connection=local\n"
       "db1 ansible_connection=local\n"},
      {"diamond", "playbooks/a.yml", {{"message", "hi"}}, "A: hi"},
      {"diamond", "playbooks/b.yml", {{"message", "hi"}}, "B: hi"},
      {"diamond", "playbooks/c.yml", {{"message", "hi"}}, "C: hi"},
      {"diamond", "playbooks/d.yml", {{"message", "hi"}}, "D got: hi"},
  };

  boost::asio::io_context io;
  local::LocalRunner runner(io, local::LocalRunnerOptions{});
  TempDir dir;
  std::vector<Recorder> recorders(runs.size());
  for (size_t i = 0; i < runs.size(); ++i) {
    engine::AnsibleSpec a;
    a.playbook = runs[i].playbook;
    a.inventory = runs[i].inventory;
    a.extra_vars = runs[i].extra_vars;
    const std::string name = "example-" + std::to_string(i);
    AttemptSpec spec = MakeSpec(AnsibleTemplate(name, a), name, dir.Subdir(name));
    spec.bundle_dir = std::string(DAGD_SOURCE_DIR) + "/examples/" + runs[i].example;
    ASSERT_TRUE(runner.Start(spec, recorders[i].Callbacks()).ok()) << runs[i].playbook;
  }
  ASSERT_TRUE(RunUntil(
      io,
      [&] {
        for (const Recorder& r : recorders) {
          if (!r.finished()) return false;
        }
        return true;
      },
      std::chrono::seconds(240)));
  for (size_t i = 0; i < runs.size(); ++i) {
    const Recorder& r = recorders[i];
    EXPECT_EQ(r.result->phase, engine::NodePhase::kSucceeded)
        << runs[i].example << "/" << runs[i].playbook << ": " << r.result->message << "\n"
        << r.stdout_text << r.stderr_text;
    EXPECT_NE(r.stdout_text.find(runs[i].expected_output), std::string::npos)
        << runs[i].playbook << " did not print \"" << runs[i].expected_output << "\":\n"
        << r.stdout_text;
  }
}

}  // namespace
}  // namespace dagd::runners
