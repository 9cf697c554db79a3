// dagd --local-image: the table that tells the local runner what to run for an image whose
// container template gives no command (issue 6, point 2), through the real binaries.
#include <gtest/gtest.h>

#include <fstream>

#include "tests/integration/daemon.h"

namespace dagd::testing {
namespace {

std::string ImageWorkflow(const std::string& image) {
  return "apiVersion: argoproj.io/v1alpha1\n"
         "kind: Workflow\n"
         "metadata: {generateName: image-}\n"
         "spec:\n"
         "  entrypoint: main\n"
         "  templates:\n"
         "  - name: main\n"
         "    container: {image: " +
         image + ", args: [left, right]}\n";
}

TEST(LocalImageTest, AConfiguredImageRunsItsEntrypointAndAnUnknownOneIsAnErrorNamingIt) {
  TempDir tmp;
  const std::string data_dir = tmp.path() + "/data";
  const std::string config = tmp.path() + "/dagd.toml";
  std::ofstream(config) << "listen = \"127.0.0.1:0\"\n"
                        << "data-dir = \"" << data_dir << "\"\n"
                        << "port-file = \"" << data_dir << "/port\"\n"
                        << "metrics-listen = \"\"\n"
                        << "local-image = [\"example/tool:1=printf %s+%s\"]\n";
  Daemon dagd(data_dir);
  dagd.UseConfigFile(config);
  dagd.Start();

  auto run_of = [&](const std::string& image) {
    v1::SubmitRunRequest request;
    request.set_spec_yaml(ImageWorkflow(image));
    request.set_file_name("image.yaml");
    v1::Run run;
    grpc::ClientContext context;
    EXPECT_TRUE(dagd.runs()->SubmitRun(&context, request, &run).ok());
    WatchToEnd(dagd.runs(), run.id());
    CommandResult got = RunDagctl(dagd.address(), {"runs", "get", run.id(), "-o", "json"});
    EXPECT_EQ(got.exit_code, 0) << got.output;
    return std::make_pair(run.id(), got.output);
  };

  auto [ok_id, ok_json] = run_of("example/tool:1");
  EXPECT_NE(ok_json.find("\"PHASE_SUCCEEDED\""), std::string::npos) << ok_json;
  CommandResult logs = RunDagctl(dagd.address(), {"logs", ok_id, ok_id});
  EXPECT_NE(logs.output.find("left+right"), std::string::npos) << logs.output;

  auto [unknown_id, unknown_json] = run_of("example/unknown:2");
  EXPECT_NE(unknown_json.find("\"PHASE_ERROR\""), std::string::npos) << unknown_json;
  EXPECT_NE(unknown_json.find("no entrypoint for image \\\"example/unknown:2\\\""),
            std::string::npos)
      << unknown_json;
  EXPECT_EQ(dagd.Terminate(), 0);
}

TEST(LocalImageTest, AMalformedEntryStopsDagdNamingTheFlag) {
  TempDir tmp;
  CommandResult bad =
      RunCommand({BinaryPath("cmd/dagd/dagd"), "--listen", "127.0.0.1:0", "--data-dir", tmp.path(),
                  "--metrics-listen", "", "--local-image", "no-equals-sign"});
  EXPECT_EQ(bad.exit_code, 1) << bad.output;
  EXPECT_NE(bad.output.find("--local-image \"no-equals-sign\" is not IMAGE=PROGRAM [ARG...]"),
            std::string::npos)
      << bad.output;
}

}  // namespace
}  // namespace dagd::testing
