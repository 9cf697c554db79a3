// The contract of storage/store.h as one value-parameterized GoogleTest suite. Every Store
// implementation (and any fake of it) instantiates StoreContractTest with a factory, e.g.
//
//   INSTANTIATE_TEST_SUITE_P(Sqlite, StoreContractTest,
//                            ::testing::Values(StoreFactory{"Sqlite", &OpenMyStore}),
//                            StoreFactoryName);
//
// so no implementation can drift from what the others promise.
#ifndef DAGD_TESTS_STORAGE_STORE_CONTRACT_H_
#define DAGD_TESTS_STORAGE_STORE_CONTRACT_H_

#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "gtest/gtest.h"
#include "storage/store.h"
#include "tests/storage/temp_dir.h"

namespace dagd::storage::testing {

struct StoreFactory {
  std::string name;
  // Opens an empty store that keeps its files (if any) in the existing directory `dir`.
  std::function<absl::StatusOr<std::unique_ptr<Store>>(const std::string& dir)> open;
};

std::string StoreFactoryName(const ::testing::TestParamInfo<StoreFactory>& info);

class StoreContractTest : public ::testing::TestWithParam<StoreFactory> {
 protected:
  void SetUp() override;

  TempDir dir_;
  std::unique_ptr<Store> store_;
};

// Test data shared by the contract and the implementation tests.
RunRecord MakeRun(const std::string& id, const std::string& workflow, int64_t created_at_ms,
                  engine::NodePhase phase = engine::NodePhase::kRunning,
                  const std::string& request_id = "");
engine::NodeState MakeNode(const std::string& name, int attempts);
EventRecord MakeEvent(const std::string& run_id, int64_t sequence, const std::string& node = "");
LogChunkRecord MakeLog(const std::string& run_id, const std::string& node, int attempt,
                       const std::string& data);

}  // namespace dagd::storage::testing

#endif  // DAGD_TESTS_STORAGE_STORE_CONTRACT_H_
