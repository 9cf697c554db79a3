// Helpers for the SQLite store's own tests (the contract suite lives in store_contract.h).
#ifndef DAGD_TESTS_STORAGE_SQLITE_TEST_UTIL_H_
#define DAGD_TESTS_STORAGE_SQLITE_TEST_UTIL_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"
#include "storage/sqlite/sqlite_store.h"
#include "tests/storage/status_test_macros.h"

namespace dagd::storage::testing {

inline std::unique_ptr<sqlite::SqliteStore> OpenOrDie(const sqlite::SqliteStoreOptions& options) {
  absl::StatusOr<std::unique_ptr<sqlite::SqliteStore>> store = sqlite::SqliteStore::Open(options);
  EXPECT_TRUE(store.ok()) << store.status();
  return store.ok() ? *std::move(store) : nullptr;
}

inline std::unique_ptr<sqlite::SqliteStore> OpenOrDie(const std::string& path) {
  sqlite::SqliteStoreOptions options;
  options.path = path;
  return OpenOrDie(options);
}

// Holds the writer thread inside a callback until Release() (or destruction), so that everything
// submitted meanwhile queues up and is committed as one group.
class WriterGate {
 public:
  explicit WriterGate(Store& store) : state_(std::make_shared<State>()) {
    store.Submit(WriteBatch{}, [state = state_](absl::Status) {
      state->entered.Notify();
      state->release.WaitForNotification();
    });
    state_->entered.WaitForNotification();
  }
  ~WriterGate() { Release(); }
  WriterGate(const WriterGate&) = delete;
  WriterGate& operator=(const WriterGate&) = delete;

  void Release() {
    if (!state_->release.HasBeenNotified()) state_->release.Notify();
  }

 private:
  // Shared with the callback, which may still be waking up when the gate is gone.
  struct State {
    absl::Notification entered;
    absl::Notification release;
  };
  std::shared_ptr<State> state_;
};

}  // namespace dagd::storage::testing

#endif  // DAGD_TESTS_STORAGE_SQLITE_TEST_UTIL_H_
