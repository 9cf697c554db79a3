// PodFilesystem (runners/local/pod_filesystem.h) on its own, and the local runner with
// PodFilesystemMode::kOverlay: real mount namespaces and overlay mounts (the tests run as root).
#include "runners/local/pod_filesystem.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include "runners/local/artifacts.h"
#include "runners/local/local_runner.h"
#include "tests/runners/runner_test_util.h"

namespace dagd::runners::local {
namespace {

using ::dagd::runners::testing::ContainerTemplate;
using ::dagd::runners::testing::MakeSpec;
using ::dagd::runners::testing::PathOutput;
using ::dagd::runners::testing::Recorder;
using ::dagd::runners::testing::RunUntil;
using ::dagd::runners::testing::ScriptTemplate;
using ::dagd::runners::testing::TempDir;
using ::dagd::runners::testing::WriteTextFile;
using engine::NodePhase;
using ::testing::HasSubstr;
namespace fs = std::filesystem;

std::string ReadText(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

TEST(PodFilesystemTest, StagingPathsLandInTheUpperLayerOrThePrivateTmp) {
  TempDir dir;
  PodFilesystem pod(dir.path());
  ASSERT_TRUE(pod.Create().ok());
  EXPECT_EQ(*pod.StagingPath("/tmp/message"), pod.tmp() + "/message");
  EXPECT_EQ(*pod.StagingPath("/tmp"), pod.tmp());
  EXPECT_EQ(*pod.StagingPath("/mnt//in/./part.json"), pod.upper() + "/mnt/in/part.json");
  EXPECT_TRUE(fs::is_directory(pod.upper() + "/mnt/in"));
  // Parents take the host's modes, so that the overlay shows /etc as it was.
  ASSERT_TRUE(pod.StagingPath("/etc/dagd-test/x").ok());
  struct stat upper_etc, host_etc;
  ASSERT_EQ(stat((pod.upper() + "/etc").c_str(), &upper_etc), 0);
  ASSERT_EQ(stat("/etc", &host_etc), 0);
  EXPECT_EQ(upper_etc.st_mode, host_etc.st_mode);
  EXPECT_EQ(pod.StagingPath("relative").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(pod.StagingPath("/a/../etc/passwd").status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(PodFilesystemTest, ResolveReadsTheUpperLayerOverTheHost) {
  TempDir dir;
  PodFilesystem pod(dir.path());
  ASSERT_TRUE(pod.Create().ok());
  // What a pod might have left: a new file, a changed host file, a deleted one (whiteout), a
  // file in /tmp.
  WriteTextFile(*pod.StagingPath("/result.txt"), "mine");
  WriteTextFile(*pod.StagingPath("/etc/hostname"), "pod-host");
  ASSERT_EQ(mknod((pod.upper() + "/etc/os-release").c_str(), S_IFCHR | 0000, makedev(0, 0)), 0);
  WriteTextFile(*pod.StagingPath("/tmp/even"), "even");
  const std::string scratch = dir.path() + "/scratch";

  EXPECT_EQ(ReadText(*pod.Resolve("/result.txt", scratch)), "mine");
  EXPECT_EQ(ReadText(*pod.Resolve("/etc/hostname", scratch)), "pod-host");
  EXPECT_EQ(ReadText(*pod.Resolve("/tmp/even", scratch)), "even");
  EXPECT_EQ(*pod.Resolve("/etc/passwd", scratch), "/etc/passwd");  // untouched: the host's
  EXPECT_EQ(pod.Resolve("/etc/os-release", scratch).status().code(),
            absl::StatusCode::kNotFound);  // deleted in the pod
  EXPECT_EQ(pod.Resolve("/tmp/odd", scratch).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(pod.Resolve("/nowhere", scratch).status().code(), absl::StatusCode::kNotFound);

  // A directory in both layers is their union, without what the pod deleted.
  absl::StatusOr<std::string> etc = pod.Resolve("/etc", scratch);
  ASSERT_TRUE(etc.ok()) << etc.status();
  EXPECT_NE(*etc, "/etc");
  EXPECT_EQ(ReadText(*etc + "/hostname"), "pod-host");
  EXPECT_EQ(ReadText(*etc + "/passwd"), ReadText("/etc/passwd"));
  EXPECT_FALSE(fs::exists(*etc + "/os-release"));
}

TEST(PodFilesystemTest, ProbeSucceedsAsRoot) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root";
  TempDir dir;
  absl::Status probe = ProbePodFilesystem(dir.path());
  EXPECT_TRUE(probe.ok()) << probe;
  EXPECT_TRUE(fs::is_empty(dir.path())) << "the probe leaves nothing behind";
}

TEST(PodFilesystemTest, ProbeNamesWhatFailed) {
  TempDir dir;
  absl::Status probe = ProbePodFilesystem(dir.path() + "/missing/dir");
  EXPECT_EQ(probe.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(probe.message(), HasSubstr("missing/dir"));
}

// The local runner with pods of their own.
class PodRunnerTest : public ::testing::Test {
 protected:
  PodRunnerTest() {
    LocalRunnerOptions options;
    options.pod_filesystem = PodFilesystemMode::kOverlay;
    options.artifact_dir = store_.path();
    runner_ = std::make_unique<LocalRunner>(io_, options);
  }

  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "overlay pods need root here";
  }

  AttemptSpec Spec(engine::Template t) {
    const std::string name = "pod-" + std::to_string(++next_);
    return MakeSpec(std::move(t), name, dir_.Subdir(name));
  }

  engine::AttemptResult Run(const AttemptSpec& spec, Recorder* recorder) {
    absl::Status status = runner_->Start(spec, recorder->Callbacks());
    EXPECT_TRUE(status.ok()) << status;
    EXPECT_TRUE(RunUntil(
        io_, [&] { return recorder->finished(); }, std::chrono::seconds(30)));
    return recorder->result.value_or(engine::AttemptResult{NodePhase::kError, -1, "timed out"});
  }

  boost::asio::io_context io_;
  TempDir store_;  // the artifact store
  std::unique_ptr<LocalRunner> runner_;
  TempDir dir_;
  int next_ = 0;
};

engine::Artifact Artifact(const std::string& name, const std::string& path,
                          const std::string& key) {
  engine::Artifact artifact;
  artifact.name = name;
  artifact.path = path;
  artifact.key = key;
  return artifact;
}

TEST_F(PodRunnerTest, ArtifactsArePlacedBeforeAndSavedAfter) {
  // In the store: a tgz of a file, as an earlier node left it.
  const std::string host_file = dir_.path() + "/hello.txt";
  WriteTextFile(host_file, "hello world\n");
  ASSERT_TRUE(SaveArtifact(host_file, ArtifactArchive::kTgz, store_.path() + "/in/hello.tgz").ok());

  engine::Template t = ContainerTemplate(
      "copy", {"sh", "-c"},
      {"cat /tmp/message > /result.txt && mkdir -p /mnt/out && cp /etc/note /mnt/out/ && "
       "echo two > /mnt/out/2.txt"});
  t.inputs.artifacts = {Artifact("message", "/tmp/message", "in/hello.tgz"),
                        Artifact("note", "/etc/note", "")};
  t.inputs.artifacts[1].raw = "raw data";
  t.outputs.artifacts = {Artifact("result", "/result.txt", "run/copy/result.tgz"),
                         Artifact("dir", "/mnt/out", "run/parts/"),
                         Artifact("maybe", "/not/written", "run/copy/maybe.tgz")};
  t.outputs.artifacts[1].archive_none = true;
  t.outputs.artifacts[2].optional = true;
  Recorder r;
  engine::AttemptResult result = Run(Spec(t), &r);
  ASSERT_EQ(result.phase, NodePhase::kSucceeded) << result.message << r.stderr_text;
  const std::map<std::string, std::string> saved = {{"result", "run/copy/result.tgz"},
                                                    {"dir", "run/parts/"}};
  EXPECT_EQ(result.artifacts, saved);
  // A tgz, unpacked again; a directory kept as it is (archive: none).
  ASSERT_TRUE(
      LoadArtifact(store_.path() + "/run/copy/result.tgz", "", dir_.path() + "/back.txt").ok());
  EXPECT_EQ(ReadText(dir_.path() + "/back.txt"), "hello world\n");
  EXPECT_EQ(ReadText(store_.path() + "/run/parts/note"), "raw data");
  EXPECT_EQ(ReadText(store_.path() + "/run/parts/2.txt"), "two\n");
  EXPECT_FALSE(fs::exists(store_.path() + "/run/copy/maybe.tgz"));
  EXPECT_FALSE(fs::exists("/etc/note")) << "an input artifact reached the host";
}

TEST_F(PodRunnerTest, MissingArtifactsAreErrorsUnlessOptional) {
  engine::Template t = ContainerTemplate("none", {"true"}, {});
  t.outputs.artifacts = {Artifact("result", "/result.txt", "run/none/result.tgz")};
  Recorder r;
  engine::AttemptResult result = Run(Spec(t), &r);
  EXPECT_EQ(result.phase, NodePhase::kError);
  EXPECT_THAT(result.message, HasSubstr("output artifact \"result\": /result.txt: the pod left "
                                        "nothing there; write it there, or mark the artifact "
                                        "optional"));

  // An input whose key is not in the store: the attempt does not start.
  engine::Template reader = ContainerTemplate("reader", {"true"}, {});
  reader.inputs.artifacts = {Artifact("in", "/tmp/in", "no/such/key")};
  Recorder never;
  absl::Status start = runner_->Start(Spec(reader), never.Callbacks());
  EXPECT_EQ(start.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(start.message(), HasSubstr("input artifact \"in\" (key \"no/such/key\")"));
  reader.inputs.artifacts[0].optional = true;
  Recorder optional;
  EXPECT_EQ(Run(Spec(reader), &optional).phase, NodePhase::kSucceeded);

  // A key may not leave the store.
  reader.inputs.artifacts[0].key = "../../etc/passwd";
  Recorder escape;
  start = runner_->Start(Spec(reader), escape.Callbacks());
  EXPECT_EQ(start.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(start.message(), HasSubstr("is not a path inside the artifact store"));
}

TEST_F(PodRunnerTest, HostPathVolumesReachTheHost) {
  const std::string records = dir_.Subdir("records");
  engine::Template t =
      ContainerTemplate("record", {"sh", "-c"}, {"echo A >> /records/log; echo B > /config/x"});
  t.kubernetes["volumes"] = nlohmann::json::parse(
      R"([{"name": "records", "hostPath": {"path": ")" + records +
      R"("}}, {"name": "config", "hostPath": {"path": ")" + records + R"("}}])");
  t.container->kubernetes["volumeMounts"] = nlohmann::json::parse(
      R"([{"name": "records", "mountPath": "/records"},
          {"name": "config", "mountPath": "/config", "readOnly": true}])");
  Recorder r;
  engine::AttemptResult result = Run(Spec(t), &r);
  EXPECT_EQ(result.phase, NodePhase::kFailed);  // the read-only mount refused the write
  EXPECT_THAT(r.stderr_text, HasSubstr("Read-only file system"));
  EXPECT_EQ(ReadText(records + "/log"), "A\n");
  EXPECT_FALSE(fs::exists(records + "/x"));

  // A hostPath that does not exist is named before anything starts.
  t.kubernetes["volumes"][0]["hostPath"]["path"] = records + "/missing";
  Recorder missing;
  absl::Status start = runner_->Start(Spec(t), missing.Callbacks());
  EXPECT_EQ(start.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(start.message(), HasSubstr("volume \"records\": hostPath"));
}

TEST_F(PodRunnerTest, WritesStayInThePodAndOutputsAreReadFromIt) {
  // Argo's exit-handler-with-artifacts writes "result.txt" relative to the image's "/".
  const std::string marker = "/dagd-pod-test-" + std::to_string(getpid());
  engine::Template t = ContainerTemplate(
      "writer", {"sh", "-c"},
      {"pwd; echo written > result.txt; echo x > " + marker + "; echo even > /tmp/even"});
  t.outputs.parameters = {PathOutput("result", "/result.txt"), PathOutput("even", "/tmp/even")};
  Recorder r;
  engine::AttemptResult result = Run(Spec(t), &r);
  ASSERT_EQ(result.phase, NodePhase::kSucceeded) << result.message << r.stderr_text;
  EXPECT_EQ(result.result, "/");
  EXPECT_EQ(result.parameters["result"], "written");
  EXPECT_EQ(result.parameters["even"], "even");
  EXPECT_FALSE(fs::exists(marker)) << "a pod wrote to the host's root";
  EXPECT_FALSE(fs::exists("/result.txt"));
}

TEST_F(PodRunnerTest, ParallelPodsHaveTheirOwnTmp) {
  // parameter-aggregation: four pods write /tmp/even at once; each must read back its own.
  std::vector<AttemptSpec> specs;
  std::vector<Recorder> recorders(4);
  for (int i = 0; i < 4; ++i) {
    engine::Template t =
        ContainerTemplate("odd-or-even", {"sh", "-c"},
                          {"echo " + std::to_string(i) + " > /tmp/even; sleep 0.3; cat /tmp/even"});
    t.outputs.parameters = {PathOutput("even", "/tmp/even")};
    specs.push_back(Spec(t));
  }
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(runner_->Start(specs[i], recorders[i].Callbacks()).ok());
  ASSERT_TRUE(RunUntil(
      io_,
      [&] {
        for (const Recorder& r : recorders) {
          if (!r.finished()) return false;
        }
        return true;
      },
      std::chrono::seconds(30)));
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(recorders[i].result.has_value());
    EXPECT_EQ(recorders[i].result->parameters["even"], std::to_string(i));
    EXPECT_EQ(recorders[i].result->result, std::to_string(i));
  }
}

TEST_F(PodRunnerTest, ScriptSourceIsWhereArgoPutsIt) {
  engine::Template t = ScriptTemplate("s", {"sh"}, "echo \"$0\"; cd /tmp && pwd\n");
  t.script->container.working_dir = "/etc";
  Recorder r;
  engine::AttemptResult result = Run(Spec(t), &r);
  ASSERT_EQ(result.phase, NodePhase::kSucceeded) << result.message << r.stderr_text;
  EXPECT_EQ(result.result, "/argo/staging/script\n/tmp");
}

TEST_F(PodRunnerTest, WorkingDirIsTheContainers) {
  engine::Template t = ContainerTemplate("pwd", {"pwd"}, {});
  t.container->working_dir = "/usr";
  Recorder r;
  EXPECT_EQ(Run(Spec(t), &r).result, "/usr");

  t.container->working_dir = "/no/such/dir";
  Recorder missing;
  engine::AttemptResult result = Run(Spec(t), &missing);
  EXPECT_EQ(result.phase, NodePhase::kError);
  EXPECT_THAT(result.message, HasSubstr("cannot enter the working directory /no/such/dir"));
}

TEST_F(PodRunnerTest, DeletedOutputFileUsesTheDefault) {
  engine::Template t = ContainerTemplate("rm", {"sh", "-c"}, {"rm /etc/hostname"});
  engine::Parameter out = PathOutput("host", "/etc/hostname");
  out.value_from->default_value = "gone";
  t.outputs.parameters = {out};
  Recorder r;
  engine::AttemptResult result = Run(Spec(t), &r);
  ASSERT_EQ(result.phase, NodePhase::kSucceeded) << result.message << r.stderr_text;
  EXPECT_EQ(result.parameters["host"], "gone");
  EXPECT_TRUE(fs::exists("/etc/hostname")) << "the pod deleted the host's file";
}

}  // namespace
}  // namespace dagd::runners::local
