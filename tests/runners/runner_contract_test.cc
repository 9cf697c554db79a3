// The Runner contract (runner_contract.h) run against every runner: the local runner with real
// processes, and the FakeRunner scripted to behave the same way.
#include "tests/runners/runner_contract.h"

#include <boost/asio/io_context.hpp>
#include <memory>

#include "absl/status/status.h"
#include "runners/local/local_runner.h"
#include "tests/runners/fake_runner.h"

namespace dagd::runners::testing {
namespace {

std::unique_ptr<Runner> MakeLocalRunner(boost::asio::io_context& io) {
  return std::make_unique<local::LocalRunner>(io, local::LocalRunnerOptions{});
}

// Scripted by template name as runner_contract.h describes.
std::unique_ptr<Runner> MakeFakeRunner(boost::asio::io_context& io) {
  auto fake = std::make_unique<FakeRunner>(io);
  FakeAttempt echo = FakeAttempt::Succeed("hi");
  echo.logs = {{"stdout", "hi\n"}};
  fake->Script("echo", echo);
  fake->Script("fail", FakeAttempt::Fail(3, "exit code 3"));
  fake->Script("sleep", FakeAttempt::Hold());
  FakeAttempt missing;
  missing.start_error =
      absl::FailedPreconditionError("program \"dagd-contract-no-such-program\" not found on PATH");
  fake->Script("missing", missing);
  return fake;
}

INSTANTIATE_TEST_SUITE_P(Runners, RunnerContractTest,
                         ::testing::Values(RunnerFactory{"Local", &MakeLocalRunner},
                                           RunnerFactory{"Fake", &MakeFakeRunner}),
                         RunnerFactoryName);

}  // namespace
}  // namespace dagd::runners::testing
