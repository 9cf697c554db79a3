#include "runners/local/local_runner.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <memory>
#include <string>

#include "tests/runners/runner_test_util.h"

namespace dagd::runners::local {
namespace {

using ::dagd::runners::testing::ContainerTemplate;
using ::dagd::runners::testing::GroupMembers;
using ::dagd::runners::testing::MakeSpec;
using ::dagd::runners::testing::PathOutput;
using ::dagd::runners::testing::Recorder;
using ::dagd::runners::testing::RunUntil;
using ::dagd::runners::testing::ScriptTemplate;
using ::dagd::runners::testing::TempDir;
using ::dagd::runners::testing::WaitGroupGone;
using ::dagd::runners::testing::WriteTextFile;
using engine::NodePhase;
using std::chrono::milliseconds;
using std::chrono::seconds;
using ::testing::HasSubstr;

constexpr milliseconds kTimeout = seconds(30);

class LocalRunnerTest : public ::testing::Test {
 protected:
  explicit LocalRunnerTest(LocalRunnerOptions options = {})
      : runner_(std::make_unique<LocalRunner>(io_, std::move(options))) {}

  // A spec for `t` with its own fresh work_dir.
  AttemptSpec Spec(engine::Template t) {
    const std::string name = "attempt-" + std::to_string(++next_);
    return MakeSpec(std::move(t), name, dir_.Subdir(name));
  }

  // Starts `spec` and runs the loop until it finishes.
  engine::AttemptResult Run(const AttemptSpec& spec, Recorder* recorder) {
    absl::Status status = runner_->Start(spec, recorder->Callbacks());
    EXPECT_TRUE(status.ok()) << status;
    EXPECT_EQ(recorder->callback_calls, 0) << "a callback ran inside Start()";
    EXPECT_TRUE(RunUntil(
        io_, [&] { return recorder->finished(); }, kTimeout));
    EXPECT_EQ(recorder->finished_calls, 1);
    if (recorder->result.has_value()) return *recorder->result;
    engine::AttemptResult timed_out;
    timed_out.phase = NodePhase::kError;
    timed_out.message = "timed out";
    return timed_out;
  }

  void RecreateRunner(LocalRunnerOptions options) {
    runner_ = std::make_unique<LocalRunner>(io_, std::move(options));
  }

  boost::asio::io_context io_;
  std::unique_ptr<LocalRunner> runner_;
  TempDir dir_;
  int next_ = 0;
};

TEST_F(LocalRunnerTest, EchoSucceedsWithResult) {
  Recorder r;
  engine::AttemptResult result =
      Run(Spec(ContainerTemplate("echo", {"echo"}, {"hello world"})), &r);
  EXPECT_EQ(result.phase, NodePhase::kSucceeded) << result.message;
  EXPECT_EQ(result.exit_code, 0);
  EXPECT_EQ(result.result, "hello world");  // one trailing newline trimmed
  EXPECT_EQ(r.stdout_text, "hello world\n");
  EXPECT_EQ(runner_->running(), 0u);
}

TEST(RunAsUserTest, ResolvesAnUnprivilegedUserOnly) {
  if (geteuid() != 0) {
    EXPECT_EQ(ResolveRunAsUser("nobody").status().code(), absl::StatusCode::kFailedPrecondition);
    GTEST_SKIP() << "only root can start attempts as another user";
  }
  absl::StatusOr<RunAsUser> nobody = ResolveRunAsUser("nobody");
  ASSERT_TRUE(nobody.ok()) << nobody.status();
  EXPECT_NE(nobody->uid, 0u);
  EXPECT_EQ(ResolveRunAsUser("root").status().code(), absl::StatusCode::kInvalidArgument);
  absl::Status unknown = ResolveRunAsUser("no-such-user-dagd").status();
  EXPECT_EQ(unknown.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(unknown.message()), HasSubstr("useradd --system no-such-user-dagd"));
}

TEST_F(LocalRunnerTest, AttemptsRunAsTheRunAsUserWithItsOwnRights) {
  if (geteuid() != 0) GTEST_SKIP() << "only root can start attempts as another user";
  absl::StatusOr<RunAsUser> nobody = ResolveRunAsUser("nobody");
  ASSERT_TRUE(nobody.ok()) << nobody.status();
  LocalRunnerOptions options;
  options.run_as = *nobody;
  RecreateRunner(options);
  // The user must be able to reach its attempt directory; what dagd keeps for itself it may not
  // read.
  ASSERT_EQ(chmod(dir_.path().c_str(), 0711), 0);
  const std::string secret = dir_.path() + "/dagd-only";
  WriteTextFile(secret, "not for attempts\n");
  ASSERT_EQ(chmod(secret.c_str(), 0600), 0);
  Recorder r;
  engine::AttemptResult result =
      Run(Spec(ContainerTemplate(
              "who", {"/bin/sh", "-c"},
              {"id -un; echo $HOME; touch made-here && cat " + secret + " || true"})),
          &r);
  EXPECT_EQ(result.phase, NodePhase::kSucceeded) << result.message;
  EXPECT_EQ(r.stdout_text, "nobody\n" + dir_.path() + "/attempt-1/.dagd-home\n");
  EXPECT_THAT(r.stderr_text, HasSubstr("Permission denied"));
  struct stat made {};
  ASSERT_EQ(stat((dir_.path() + "/attempt-1/made-here").c_str(), &made), 0);
  EXPECT_EQ(made.st_uid, nobody->uid);
}

TEST_F(LocalRunnerTest, ResultTrimsOnlyOneNewline) {
  Recorder r;
  engine::AttemptResult result = Run(Spec(ContainerTemplate("p", {"printf"}, {"a\\n\\n"})), &r);
  EXPECT_EQ(result.result, "a\n");
}

TEST_F(LocalRunnerTest, ResultKeepsTheLastBytes) {
  LocalRunnerOptions options;
  options.max_result_bytes = 10;
  RecreateRunner(options);
  Recorder r;
  engine::AttemptResult result =
      Run(Spec(ContainerTemplate("p", {"printf"}, {"0123456789abcdef\\n"})), &r);
  EXPECT_EQ(result.result, "6789abcdef");
  EXPECT_EQ(r.stdout_text, "0123456789abcdef\n");  // logs are not capped
}

TEST_F(LocalRunnerTest, PythonScript) {
  Recorder r;
  engine::AttemptResult result =
      Run(Spec(ScriptTemplate("py", {"python3"}, "import sys\nprint(6 * 7)\n")), &r);
  EXPECT_EQ(result.phase, NodePhase::kSucceeded) << result.message << r.stderr_text;
  EXPECT_EQ(result.result, "42");
}

TEST_F(LocalRunnerTest, PythonMeansPython3) {
  Recorder r;
  engine::AttemptResult result = Run(
      Spec(ScriptTemplate("py", {"python"}, "import sys\nprint(sys.version_info.major)\n")), &r);
  EXPECT_EQ(result.result, "3") << result.message << r.stderr_text;
}

TEST_F(LocalRunnerTest, BashScript) {
  Recorder r;
  engine::AttemptResult result = Run(
      Spec(ScriptTemplate("sh", {"bash"}, "set -euo pipefail\nx=( a b c )\necho \"${#x[@]}\"\n")),
      &r);
  EXPECT_EQ(result.phase, NodePhase::kSucceeded) << result.message << r.stderr_text;
  EXPECT_EQ(result.result, "3");
}

TEST_F(LocalRunnerTest, RunsInWorkDirWithTemplateEnv) {
  engine::Template t = ContainerTemplate("env", {"sh", "-c"}, {"pwd; echo $GREETING"});
  t.container->env = {{"GREETING", "hi"}};
  AttemptSpec spec = Spec(t);
  Recorder r;
  engine::AttemptResult result = Run(spec, &r);
  EXPECT_EQ(result.result, spec.work_dir + "\nhi");
}

TEST_F(LocalRunnerTest, OutputParameterFromFile) {
  TempDir elsewhere;
  const std::string absolute = elsewhere.path() + "/abs.txt";
  engine::Template t = ContainerTemplate(
      "out", {"sh", "-c"}, {"printf 'v1\\n\\n' > out.txt; printf ' v2 ' > " + absolute});
  t.outputs.parameters = {PathOutput("relative", "out.txt"), PathOutput("absolute", absolute)};
  Recorder r;
  engine::AttemptResult result = Run(Spec(t), &r);
  ASSERT_EQ(result.phase, NodePhase::kSucceeded) << result.message;
  EXPECT_EQ(result.parameters["relative"], "v1\n");  // Argo trims one trailing newline
  EXPECT_EQ(result.parameters["absolute"], " v2 ");
}

TEST_F(LocalRunnerTest, MissingOutputFileIsError) {
  engine::Template t = ContainerTemplate("out", {"true"});
  t.outputs.parameters = {PathOutput("hosts", "hosts.txt")};
  Recorder r;
  engine::AttemptResult result = Run(Spec(t), &r);
  EXPECT_EQ(result.phase, NodePhase::kError);
  EXPECT_THAT(result.message, HasSubstr("\"hosts\""));
  EXPECT_THAT(result.message, HasSubstr("hosts.txt"));
  EXPECT_TRUE(result.parameters.empty());
}

TEST_F(LocalRunnerTest, MissingOutputFileUsesDefault) {
  engine::Template t = ContainerTemplate("out", {"true"});
  t.outputs.parameters = {PathOutput("hosts", "hosts.txt", "none")};
  Recorder r;
  engine::AttemptResult result = Run(Spec(t), &r);
  EXPECT_EQ(result.phase, NodePhase::kSucceeded) << result.message;
  EXPECT_EQ(result.parameters["hosts"], "none");
}

TEST_F(LocalRunnerTest, NonZeroExitIsFailed) {
  engine::Template t = ContainerTemplate("fail", {"sh", "-c"}, {"exit 3"});
  t.outputs.parameters = {PathOutput("never", "never.txt")};
  Recorder r;
  engine::AttemptResult result = Run(Spec(t), &r);
  EXPECT_EQ(result.phase, NodePhase::kFailed);
  EXPECT_EQ(result.exit_code, 3);
  EXPECT_EQ(result.message, "exit code 3");
}

TEST_F(LocalRunnerTest, StderrIsDelivered) {
  Recorder r;
  engine::AttemptResult result =
      Run(Spec(ContainerTemplate("err", {"sh", "-c"}, {"echo oops >&2; echo fine"})), &r);
  EXPECT_EQ(result.phase, NodePhase::kSucceeded);
  EXPECT_EQ(r.stderr_text, "oops\n");
  EXPECT_EQ(result.result, "fine");  // stderr is not part of the result
}

TEST_F(LocalRunnerTest, KilledBySignalIsFailed) {
  Recorder r;
  engine::AttemptResult result =
      Run(Spec(ContainerTemplate("kill", {"sh", "-c"}, {"kill -KILL $$"})), &r);
  EXPECT_EQ(result.phase, NodePhase::kFailed);
  EXPECT_EQ(result.message, "terminated by signal 9");
  EXPECT_EQ(result.exit_code, 137);
}

TEST_F(LocalRunnerTest, ExecFailureAfterForkIsError) {
  AttemptSpec spec = Spec(ContainerTemplate("bad", {"./not-a-program"}));
  WriteTextFile(spec.work_dir + "/not-a-program",
                "\x7f"
                "ELF garbage");
  chmod((spec.work_dir + "/not-a-program").c_str(), 0755);
  Recorder r;
  engine::AttemptResult result = Run(spec, &r);
  EXPECT_EQ(result.phase, NodePhase::kError);
  EXPECT_THAT(result.message, HasSubstr("cannot execute"));
  EXPECT_THAT(result.message, HasSubstr("not-a-program"));
}

TEST_F(LocalRunnerTest, StartErrorsComeBackFromStart) {
  Recorder r;
  engine::Template whale = ContainerTemplate("whale", {}, {"hi"});
  whale.container->image = "docker/whalesay";
  absl::Status status = runner_->Start(Spec(whale), r.Callbacks());
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), HasSubstr("\"whale\""));

  status = runner_->Start(Spec(ContainerTemplate("t", {"no-such-program-xyz"})), r.Callbacks());
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);

  AttemptSpec no_dir = Spec(ContainerTemplate("t", {"true"}));
  no_dir.work_dir += "/missing";
  EXPECT_EQ(runner_->Start(no_dir, r.Callbacks()).code(), absl::StatusCode::kFailedPrecondition);

  io_.restart();
  io_.poll();
  EXPECT_EQ(r.callback_calls, 0);
  EXPECT_EQ(runner_->running(), 0u);
}

TEST_F(LocalRunnerTest, DuplicateExternalNameIsAlreadyExists) {
  AttemptSpec spec = Spec(ContainerTemplate("sleep", {"sleep", "300"}));
  Recorder r1, r2;
  ASSERT_TRUE(runner_->Start(spec, r1.Callbacks()).ok());
  EXPECT_EQ(runner_->Start(spec, r2.Callbacks()).code(), absl::StatusCode::kAlreadyExists);
  runner_->Cancel(spec.external_name, "done");
  EXPECT_TRUE(RunUntil(
      io_, [&] { return r1.finished(); }, kTimeout));
}

TEST_F(LocalRunnerTest, ArgosayStandIn) {
  struct Case {
    std::vector<std::string> args;
    NodePhase phase;
    std::string result;
  };
  for (const Case& c : std::vector<Case>{{{}, NodePhase::kSucceeded, "hello argo"},
                                         {{"echo", "hi there"}, NodePhase::kSucceeded, "hi there"},
                                         {{"sleep", "100ms"}, NodePhase::kSucceeded, ""},
                                         {{"exit", "2"}, NodePhase::kFailed, ""},
                                         {{"bogus"}, NodePhase::kFailed, ""}}) {
    engine::Template t = ContainerTemplate("say", {}, c.args);
    t.container->image = "argoproj/argosay:v2";
    Recorder r;
    engine::AttemptResult result = Run(Spec(t), &r);
    EXPECT_EQ(result.phase, c.phase) << ::testing::PrintToString(c.args) << result.message;
    if (c.phase == NodePhase::kSucceeded) {
      EXPECT_EQ(result.result, c.result);
    }
  }
  // echo to a file, then assert_contains on it.
  engine::Template write = ContainerTemplate("say", {}, {"echo", "payload", "sub/out.txt"});
  write.container->image = "argoproj/argosay:v2";
  write.outputs.parameters = {PathOutput("out", "sub/out.txt")};
  Recorder r;
  engine::AttemptResult result = Run(Spec(write), &r);
  EXPECT_EQ(result.parameters["out"], "payload") << result.message << r.stderr_text;
}

TEST_F(LocalRunnerTest, CancelEndsTheWholeGroupFailed) {
  AttemptSpec spec = Spec(ContainerTemplate("sleep", {"sh", "-c"}, {"sleep 300 & sleep 300"}));
  spec.grace_period_ms = 5000;
  Recorder r;
  ASSERT_TRUE(runner_->Start(spec, r.Callbacks()).ok());
  const pid_t pgid = runner_->ProcessGroup(spec.external_name);
  ASSERT_GT(pgid, 0);
  ASSERT_TRUE(RunUntil(
      io_, [&] { return GroupMembers(pgid).size() >= 3; }, kTimeout));

  const auto start = std::chrono::steady_clock::now();
  runner_->Cancel(spec.external_name, "Stopped by user");
  ASSERT_TRUE(RunUntil(
      io_, [&] { return r.finished(); }, kTimeout));
  // SIGTERM ends sleep at once: no need to wait for the grace period.
  EXPECT_LT(std::chrono::steady_clock::now() - start, milliseconds(spec.grace_period_ms));
  EXPECT_EQ(r.result->phase, NodePhase::kFailed);
  EXPECT_EQ(r.result->message, "Stopped by user");
  EXPECT_TRUE(WaitGroupGone(pgid, seconds(5)));
  EXPECT_EQ(runner_->ProcessGroup(spec.external_name), -1);
}

TEST_F(LocalRunnerTest, CancelRightAfterStartReachesTheCommand) {
  // The supervisor may not have forked the command yet: the SIGTERM waits for it.
  AttemptSpec spec = Spec(ContainerTemplate("sleep", {"sleep", "300"}));
  spec.grace_period_ms = 20000;
  Recorder r;
  ASSERT_TRUE(runner_->Start(spec, r.Callbacks()).ok());
  const pid_t pgid = runner_->ProcessGroup(spec.external_name);
  runner_->Cancel(spec.external_name, "Stopped");
  ASSERT_TRUE(RunUntil(
      io_, [&] { return r.finished(); }, seconds(10)));
  EXPECT_EQ(r.result->phase, NodePhase::kFailed);
  EXPECT_EQ(r.result->message, "Stopped");
  EXPECT_EQ(r.result->exit_code, 128 + SIGTERM);
  EXPECT_TRUE(WaitGroupGone(pgid, seconds(5)));
}

TEST_F(LocalRunnerTest, CancelEscalatesToSigkillAfterGrace) {
  // The trap makes sh and its sleep ignore SIGTERM.
  AttemptSpec spec = Spec(ContainerTemplate("stubborn", {"sh", "-c"}, {"trap '' TERM; sleep 300"}));
  spec.grace_period_ms = 300;
  Recorder r;
  ASSERT_TRUE(runner_->Start(spec, r.Callbacks()).ok());
  const pid_t pgid = runner_->ProcessGroup(spec.external_name);
  ASSERT_TRUE(RunUntil(
      io_, [&] { return GroupMembers(pgid).size() >= 3; }, kTimeout));

  const auto start = std::chrono::steady_clock::now();
  runner_->Cancel(spec.external_name, "timeout");
  runner_->Cancel(spec.external_name, "ignored: already cancelling");
  ASSERT_TRUE(RunUntil(
      io_, [&] { return r.finished(); }, kTimeout));
  const auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_GE(elapsed, milliseconds(spec.grace_period_ms));
  EXPECT_LT(elapsed, milliseconds(spec.grace_period_ms) + seconds(5));
  EXPECT_EQ(r.result->phase, NodePhase::kFailed);
  EXPECT_EQ(r.result->message, "timeout");
  EXPECT_TRUE(WaitGroupGone(pgid, seconds(5)));
}

TEST_F(LocalRunnerTest, CancelOfUnknownAttemptIsIgnored) {
  runner_->Cancel("no-such-attempt", "x");
  EXPECT_EQ(runner_->running(), 0u);
}

TEST_F(LocalRunnerTest, BackgroundStragglersDieWhenTheCommandExits) {
  LocalRunnerOptions options;
  options.drain_timeout_ms = 60000;  // finishing must not depend on the drain timeout
  RecreateRunner(options);
  AttemptSpec spec = Spec(ContainerTemplate("bg", {"sh", "-c"}, {"sleep 300 & echo started"}));
  Recorder r;
  ASSERT_TRUE(runner_->Start(spec, r.Callbacks()).ok());
  const pid_t pgid = runner_->ProcessGroup(spec.external_name);
  ASSERT_TRUE(RunUntil(
      io_, [&] { return r.finished(); }, kTimeout));
  EXPECT_EQ(r.result->phase, NodePhase::kSucceeded);
  EXPECT_EQ(r.result->result, "started");
  EXPECT_TRUE(WaitGroupGone(pgid, seconds(5)));
}

TEST_F(LocalRunnerTest, OutputHeldByAnEscapedProcessIsDrainedWithATimeout) {
  LocalRunnerOptions options;
  options.drain_timeout_ms = 200;
  RecreateRunner(options);
  // setsid leaves the group, so its sleep survives the group kill and keeps stdout open. The
  // command waits until the escaped process is running.
  Recorder r;
  const auto start = std::chrono::steady_clock::now();
  engine::AttemptResult result =
      Run(Spec(ContainerTemplate("escape", {"sh", "-c"},
                                 {"setsid sh -c 'touch escaped; exec sleep 3' & "
                                  "while [ ! -e escaped ]; do sleep 0.01; done; echo out"})),
          &r);
  EXPECT_GE(std::chrono::steady_clock::now() - start, milliseconds(options.drain_timeout_ms));
  EXPECT_EQ(result.phase, NodePhase::kSucceeded) << result.message;
  EXPECT_EQ(result.result, "out");
}

TEST_F(LocalRunnerTest, ConcurrentAttempts) {
  std::vector<Recorder> recorders(4);
  for (size_t i = 0; i < recorders.size(); ++i) {
    AttemptSpec spec = Spec(ContainerTemplate("c", {"sh", "-c"}, {"echo " + std::to_string(i)}));
    ASSERT_TRUE(runner_->Start(spec, recorders[i].Callbacks()).ok());
  }
  EXPECT_EQ(runner_->running(), recorders.size());
  ASSERT_TRUE(RunUntil(
      io_,
      [&] {
        for (const Recorder& r : recorders) {
          if (!r.finished()) return false;
        }
        return true;
      },
      kTimeout));
  for (size_t i = 0; i < recorders.size(); ++i) {
    EXPECT_EQ(recorders[i].result->result, std::to_string(i));
  }
}

TEST_F(LocalRunnerTest, KillAllEndsEverythingWithoutCallbacks) {
  AttemptSpec spec = Spec(ContainerTemplate("sleep", {"sh", "-c"}, {"sleep 300 & sleep 300"}));
  Recorder r;
  ASSERT_TRUE(runner_->Start(spec, r.Callbacks()).ok());
  const pid_t pgid = runner_->ProcessGroup(spec.external_name);
  ASSERT_TRUE(RunUntil(
      io_, [&] { return GroupMembers(pgid).size() >= 3; }, kTimeout));
  runner_->KillAll();
  EXPECT_EQ(runner_->running(), 0u);
  EXPECT_TRUE(WaitGroupGone(pgid, seconds(5)));
  io_.restart();
  io_.poll();  // the aborted handlers run and must not call back
  EXPECT_EQ(r.finished_calls, 0);
}

TEST_F(LocalRunnerTest, DestroyingTheRunnerKillsItsAttempts) {
  AttemptSpec spec = Spec(ContainerTemplate("sleep", {"sleep", "300"}));
  Recorder r;
  ASSERT_TRUE(runner_->Start(spec, r.Callbacks()).ok());
  const pid_t pgid = runner_->ProcessGroup(spec.external_name);
  runner_.reset();
  EXPECT_TRUE(WaitGroupGone(pgid, seconds(5)));
  io_.restart();
  io_.poll();
  EXPECT_EQ(r.callback_calls, 0);
}

// dagd killed with SIGKILL: the supervisors must end their groups. A child process plays dagd.
TEST(LocalRunnerOrphanTest, NothingSurvivesAKilledDaemon) {
  TempDir dir;
  const std::string work_a = dir.Subdir("a");
  const std::string work_b = dir.Subdir("b");
  int report[2];
  ASSERT_EQ(pipe(report), 0);
  // The orphaned processes become this process's children, so that it can reap them at the end
  // (the container's init may not).
  ASSERT_EQ(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
  const pid_t daemon = fork();
  ASSERT_GE(daemon, 0);
  if (daemon == 0) {
    close(report[0]);
    boost::asio::io_context io;
    LocalRunner runner(io, LocalRunnerOptions{});
    Recorder ra, rb;
    bool ok =
        runner
            .Start(MakeSpec(ContainerTemplate("a", {"sleep", "300"}), "a", work_a), ra.Callbacks())
            .ok() &&
        runner
            .Start(MakeSpec(ContainerTemplate("b", {"sh", "-c"}, {"sleep 300 & sleep 300"}), "b",
                            work_b),
                   rb.Callbacks())
            .ok();
    pid_t groups[2] = {runner.ProcessGroup("a"), runner.ProcessGroup("b")};
    if (!ok || write(report[1], groups, sizeof(groups)) != sizeof(groups)) _exit(1);
    io.run();  // until killed
    _exit(0);
  }
  close(report[1]);
  pid_t groups[2] = {-1, -1};
  ssize_t n = read(report[0], groups, sizeof(groups));  // the child writes at once or exits
  close(report[0]);
  ASSERT_EQ(n, static_cast<ssize_t>(sizeof(groups)));

  // Both attempts are fully running: supervisor + sleep; supervisor + sh/sleep + sleep.
  const auto deadline = std::chrono::steady_clock::now() + kTimeout;
  while (GroupMembers(groups[0]).size() < 2 || GroupMembers(groups[1]).size() < 3) {
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "attempts did not start";
    usleep(10000);  // polling /proc
  }

  ASSERT_EQ(kill(daemon, SIGKILL), 0);
  ASSERT_EQ(waitpid(daemon, nullptr, 0), daemon);
  EXPECT_TRUE(WaitGroupGone(groups[0], seconds(10)))
      << ::testing::PrintToString(GroupMembers(groups[0]));
  EXPECT_TRUE(WaitGroupGone(groups[1], seconds(10)))
      << ::testing::PrintToString(GroupMembers(groups[1]));
  prctl(PR_SET_CHILD_SUBREAPER, 0);
  while (waitpid(-1, nullptr, WNOHANG) > 0) {
  }
}

}  // namespace
}  // namespace dagd::runners::local
