// Memoization through the real dagd: a memoized template's outputs are stored in SQLite with the
// node that produced them, and a later run — after a restart too — takes them instead of running.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "tests/integration/daemon.h"

namespace dagd::testing {
namespace {

using ::testing::HasSubstr;

// memoize-simple.yaml with the key from a parameter and a record of every real execution in a
// hostPath volume.
std::string MemoizedWorkflow(const std::string& records) {
  return "apiVersion: argoproj.io/v1alpha1\n"
         "kind: Workflow\n"
         "metadata: {generateName: memoized-}\n"
         "spec:\n"
         "  entrypoint: world-to-file\n"
         "  arguments: {parameters: [{name: key}]}\n"
         "  templates:\n"
         "  - name: world-to-file\n"
         "    memoize:\n"
         "      key: \"{{workflow.parameters.key}}\"\n"
         "      maxAge: 1h\n"
         "      cache: {configMap: {name: cache-config}}\n"
         "    volumes: [{name: records, hostPath: {path: '" +
         records +
         "'}}]\n"
         "    container:\n"
         "      image: busybox\n"
         "      command: [sh, -c]\n"
         "      args: ['echo ran >> /records/runs; echo world-{{workflow.parameters.key}} > "
         "/tmp/hello_world.txt']\n"
         "      volumeMounts: [{name: records, mountPath: /records}]\n"
         "    outputs:\n"
         "      parameters: [{name: hello, valueFrom: {path: /tmp/hello_world.txt}}]\n";
}

class MemoizeTest : public ::testing::Test {
 protected:
  void SetUp() override { dagd_.Start(); }

  // Submits with `key` and returns the finished run.
  v1::Run RunWithKey(const std::string& key) {
    v1::SubmitRunRequest request;
    request.set_spec_yaml(MemoizedWorkflow(records_.path()));
    request.set_file_name("memoized.yaml");
    (*request.mutable_parameters())["key"] = key;
    v1::Run run;
    {
      grpc::ClientContext context;
      grpc::Status status = dagd_.runs()->SubmitRun(&context, request, &run);
      EXPECT_TRUE(status.ok()) << status.error_message();
    }
    WatchToEnd(dagd_.runs(), run.id());
    grpc::ClientContext context;
    v1::GetRunRequest get;
    get.set_run_id(run.id());
    v1::Run finished;
    EXPECT_TRUE(dagd_.runs()->GetRun(&context, get, &finished).ok());
    return finished;
  }

  int Executions() { return static_cast<int>(ReadLines(records_.path() + "/runs").size()); }

  TempDir data_;
  TempDir records_;
  Daemon dagd_{data_.path()};
};

TEST_F(MemoizeTest, ALaterRunTakesTheCachedOutputsAlsoAfterARestart) {
  v1::Run first = RunWithKey("a");
  ASSERT_EQ(first.phase(), v1::PHASE_SUCCEEDED) << first.message();
  EXPECT_EQ(Executions(), 1);

  ASSERT_EQ(dagd_.Terminate(), 0);
  dagd_.Start();
  v1::Run second = RunWithKey("a");
  ASSERT_EQ(second.phase(), v1::PHASE_SUCCEEDED) << second.message();
  EXPECT_EQ(Executions(), 1) << "a cache hit runs nothing";
  const v1::Node* node = FindNode(second, second.id());
  ASSERT_NE(node, nullptr);
  EXPECT_EQ(node->attempts_size(), 0);
  EXPECT_THAT(node->message(), HasSubstr("Memoized: cache cache-config, key a, from " + first.id() +
                                         "/" + first.id()));
  EXPECT_EQ(node->output_parameters().at("hello"), "world-a");

  v1::Run other = RunWithKey("b");  // another key runs
  ASSERT_EQ(other.phase(), v1::PHASE_SUCCEEDED) << other.message();
  EXPECT_EQ(Executions(), 2);
}

}  // namespace
}  // namespace dagd::testing
