// The contract of runners/runner.h as one value-parameterized GoogleTest suite (CONVENTIONS #6).
// Every Runner implementation, fakes included, instantiates RunnerContractTest with a factory:
//
//   INSTANTIATE_TEST_SUITE_P(Local, RunnerContractTest,
//                            ::testing::Values(RunnerFactory{"Local", &MakeLocalRunner}),
//                            RunnerFactoryName);
//
// The suite launches attempts of four container templates, named for what they must do, and a
// factory makes its runner behave that way (a real runner runs the commands; a fake is scripted by
// template name, the last component of the node name "run-1.<template>"):
//   echo     `sh -c 'echo hi'`: stdout "hi\n", then Succeeded with exit code 0 and result "hi".
//   fail     `sh -c 'exit 3'`: Failed with exit code 3.
//   sleep    `sleep 30`: runs until cancelled (longer than any test waits).
//   missing  a program that does not exist: Start() returns an error.
#ifndef DAGD_TESTS_RUNNERS_RUNNER_CONTRACT_H_
#define DAGD_TESTS_RUNNERS_RUNNER_CONTRACT_H_

#include <boost/asio/io_context.hpp>
#include <functional>
#include <memory>
#include <ostream>
#include <string>

#include "gtest/gtest.h"
#include "runners/runner.h"
#include "tests/runners/runner_test_util.h"

namespace dagd::runners::testing {

struct RunnerFactory {
  std::string name;
  // A runner on `io` (which outlives it) behaving as the header comment says.
  std::function<std::unique_ptr<Runner>(boost::asio::io_context& io)> make;
};

std::string RunnerFactoryName(const ::testing::TestParamInfo<RunnerFactory>& info);
// GoogleTest prints a parameter by its name (not its bytes).
void PrintTo(const RunnerFactory& factory, std::ostream* os);

class RunnerContractTest : public ::testing::TestWithParam<RunnerFactory> {
 protected:
  void SetUp() override;
  void TearDown() override;

  // A spec for one of the templates above, with a unique external name and a fresh work_dir.
  AttemptSpec Spec(const std::string& template_name);

  boost::asio::io_context io_;
  TempDir dir_;
  std::unique_ptr<Runner> runner_;
  int next_ = 0;
};

}  // namespace dagd::runners::testing

#endif  // DAGD_TESTS_RUNNERS_RUNNER_CONTRACT_H_
