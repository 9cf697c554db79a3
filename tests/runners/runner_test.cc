#include "runners/runner.h"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <memory>
#include <string>

#include "runners/builtin.h"

namespace dagd::runners {
namespace {

class CountingRunner : public Runner {
 public:
  explicit CountingRunner(int* kills) : kills_(kills) {}
  absl::Status Start(const AttemptSpec&, AttemptCallbacks) override { return absl::OkStatus(); }
  void Cancel(const std::string&, const std::string&) override {}
  void KillAll() override { ++*kills_; }

 private:
  int* kills_;
};

TEST(RunnerRegistryTest, FindsRegisteredRunnersByName) {
  int kills = 0;
  RunnerRegistry registry;
  auto runner = std::make_unique<CountingRunner>(&kills);
  Runner* raw = runner.get();
  ASSERT_TRUE(registry.Register("fake", std::move(runner)).ok());
  EXPECT_EQ(registry.Find("fake"), raw);
  EXPECT_EQ(registry.Find("missing"), nullptr);
}

TEST(RunnerRegistryTest, DuplicateNameIsAlreadyExists) {
  int kills = 0;
  RunnerRegistry registry;
  ASSERT_TRUE(registry.Register("fake", std::make_unique<CountingRunner>(&kills)).ok());
  absl::Status status = registry.Register("fake", std::make_unique<CountingRunner>(&kills));
  EXPECT_EQ(status.code(), absl::StatusCode::kAlreadyExists);
  EXPECT_NE(status.message().find("fake"), absl::string_view::npos);
}

TEST(RunnerRegistryTest, RejectsEmptyNameAndNullRunner) {
  int kills = 0;
  RunnerRegistry registry;
  EXPECT_EQ(registry.Register("", std::make_unique<CountingRunner>(&kills)).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(registry.Register("x", nullptr).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(registry.Names().empty());
}

TEST(RunnerRegistryTest, NamesAreSortedAndKillAllReachesEveryRunner) {
  int kills = 0;
  RunnerRegistry registry;
  ASSERT_TRUE(registry.Register("zeta", std::make_unique<CountingRunner>(&kills)).ok());
  ASSERT_TRUE(registry.Register("alpha", std::make_unique<CountingRunner>(&kills)).ok());
  EXPECT_EQ(registry.Names(), (std::vector<std::string>{"alpha", "zeta"}));
  registry.KillAll();
  EXPECT_EQ(kills, 2);
}

TEST(RegisterBuiltinRunnersTest, RegistersLocal) {
  boost::asio::io_context io;
  RunnerRegistry registry;
  BuiltinRunnerOptions options;
  options.io_context = &io;
  ASSERT_TRUE(RegisterBuiltinRunners(&registry, options).ok());
  ASSERT_NE(registry.Find("local"), nullptr);
  EXPECT_FALSE(registry.Find("local")->CanReattach());
  // Twice is a duplicate.
  EXPECT_EQ(RegisterBuiltinRunners(&registry, options).code(), absl::StatusCode::kAlreadyExists);
}

TEST(RegisterBuiltinRunnersTest, NeedsAnIoContext) {
  RunnerRegistry registry;
  EXPECT_EQ(RegisterBuiltinRunners(&registry, BuiltinRunnerOptions{}).code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace dagd::runners
