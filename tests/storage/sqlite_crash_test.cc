// Crash safety: a child process writes through the store and reports each batch it got an OK
// for; the parent kills it mid-stream, reopens the file and finds every acknowledged batch.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <set>

#include "absl/synchronization/mutex.h"
#include "gtest/gtest.h"
#include "storage/sqlite/sqlite_store.h"
#include "tests/storage/sqlite_test_util.h"
#include "tests/storage/store_contract.h"
#include "tests/storage/temp_dir.h"

namespace dagd::storage::testing {
namespace {

enum class Crash { kSigkillFromParent, kExitInCallback };

constexpr int kWindow = 16;  // batches in flight in the child
constexpr int64_t kAcksBeforeCrash = 300;

// The child: writes batch after batch (each an event and a log chunk whose sequence is the batch
// number) and writes the number of every acknowledged batch to `ack_fd`. Never returns.
[[noreturn]] void RunChild(const std::string& path, int ack_fd, Crash crash) {
  absl::StatusOr<std::unique_ptr<Store>> store = OpenSqliteStore(path);
  if (!store.ok()) _exit(2);
  WriteBatch first;
  first.runs.push_back(MakeRun("r", "w", 1));
  if (!(*store)->Write(first).ok()) _exit(3);

  absl::Mutex mu;
  int in_flight = 0;
  for (int64_t n = 1;; ++n) {
    {
      absl::MutexLock lock(&mu);
      auto has_room = [&in_flight] { return in_flight < kWindow; };
      mu.Await(absl::Condition(&has_room));
      ++in_flight;
    }
    WriteBatch batch;
    batch.events.push_back(MakeEvent("r", n));
    batch.logs.push_back(MakeLog("r", "r.a", 1, std::to_string(n)));
    (*store)->Submit(std::move(batch), [&, n, ack_fd, crash](const absl::Status& status) {
      if (!status.ok()) _exit(4);
      if (write(ack_fd, &n, sizeof n) != sizeof n) _exit(5);
      // Exit while later batches are queued or half applied, without any cleanup.
      if (crash == Crash::kExitInCallback && n == kAcksBeforeCrash) _exit(0);
      absl::MutexLock lock(&mu);
      --in_flight;
    });
  }
}

class SqliteCrashTest : public ::testing::TestWithParam<Crash> {};

TEST_P(SqliteCrashTest, EveryAcknowledgedBatchSurvives) {
  TempDir dir;
  const std::string path = dir.File("dagd.db");
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    close(fds[0]);
    RunChild(path, fds[1], GetParam());
  }
  close(fds[1]);

  std::set<int64_t> acked;
  bool killed = false;
  int64_t n = 0;
  while (read(fds[0], &n, sizeof n) == sizeof n) {  // EOF once the child is gone
    acked.insert(n);
    if (GetParam() == Crash::kSigkillFromParent && !killed &&
        static_cast<int64_t>(acked.size()) >= kAcksBeforeCrash) {
      ASSERT_EQ(kill(child, SIGKILL), 0);
      killed = true;
    }
  }
  close(fds[0]);
  int wait_status = 0;
  ASSERT_EQ(waitpid(child, &wait_status, 0), child);
  if (GetParam() == Crash::kSigkillFromParent) {
    EXPECT_TRUE(WIFSIGNALED(wait_status) && WTERMSIG(wait_status) == SIGKILL) << wait_status;
  } else {
    EXPECT_TRUE(WIFEXITED(wait_status) && WEXITSTATUS(wait_status) == 0) << wait_status;
  }
  ASSERT_GE(acked.size(), static_cast<size_t>(kAcksBeforeCrash));

  std::unique_ptr<sqlite::SqliteStore> store = OpenOrDie(path);
  ASSERT_NE(store, nullptr);
  std::set<int64_t> events;
  for (int64_t after = 0;;) {
    absl::StatusOr<std::vector<EventRecord>> page = store->GetEvents("r", after, 1000);
    DAGD_ASSERT_OK(page);
    if (page->empty()) break;
    for (const EventRecord& event : *page) events.insert(event.sequence);
    after = page->back().sequence;
  }
  for (int64_t batch : acked) EXPECT_TRUE(events.count(batch)) << "lost batch " << batch;
  // Batches are all-or-nothing: each stored event has its log chunk, in order.
  absl::StatusOr<std::vector<LogChunkRecord>> logs = store->GetLogs("r", "", 0, 0, 10000);
  DAGD_ASSERT_OK(logs);
  ASSERT_EQ(logs->size(), events.size());
  int64_t expected = 1;
  for (const LogChunkRecord& chunk : *logs) EXPECT_EQ(chunk.data, std::to_string(expected++));
}

INSTANTIATE_TEST_SUITE_P(Crashes, SqliteCrashTest,
                         ::testing::Values(Crash::kSigkillFromParent, Crash::kExitInCallback),
                         [](const ::testing::TestParamInfo<Crash>& info) {
                           return info.param == Crash::kSigkillFromParent ? "SigkillFromParent"
                                                                          : "ExitInCallback";
                         });

}  // namespace
}  // namespace dagd::storage::testing
