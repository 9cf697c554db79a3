// SqliteStore: the Store (storage/store.h) on one SQLite file in WAL mode.
//
// Threads and connections:
//   - One writer thread owns the only write connection. Submit(), PutWorkflows(), PutBundle() and
//     DeleteWorkflow() queue work for it; it takes everything queued (up to
//     max_batches_per_commit) and applies it in ONE `BEGIN IMMEDIATE … COMMIT`, then runs every
//     callback, in submission order, on the writer thread.
//   - Each queued item runs inside its own SAVEPOINT: an item that breaks a constraint (a second
//     run with the same request id, an event sequence used twice, a node of an unknown run) is
//     rolled back alone and fails alone, with AlreadyExists / FailedPrecondition. A failure of the
//     database itself (full disk → ResourceExhausted, I/O error → Unavailable, corruption →
//     DataLoss) or of COMMIT rolls back the whole transaction and fails every item in it with
//     that status: nothing is partially committed.
//   - Reads run on the calling thread on read-only connections lent by a small pool; under WAL
//     they never block the writer and see committed data only.
// The destructor commits everything already queued (and whatever its callbacks submit), calls
// the callbacks, then stops the writer. Submitting from another thread once the destructor has
// started is a programmer error; calling Write() or another synchronous write from a callback
// deadlocks.
#ifndef DAGD_STORAGE_SQLITE_SQLITE_STORE_H_
#define DAGD_STORAGE_SQLITE_SQLITE_STORE_H_

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "metrics/registry.h"
#include "storage/store.h"

namespace dagd::storage::sqlite {

namespace internal {
class Connection;  // storage/sqlite/internal/sqlite_db.h; no SQLite types in this header
}  // namespace internal

struct SqliteStoreOptions {
  // The database file. It is created if missing; its directory must exist.
  std::string path;
  // How long a connection waits for a lock held by another connection or process.
  int busy_timeout_ms = 5000;
  // PRAGMA synchronous: FULL fsyncs the WAL on every commit (durable across power loss); NORMAL
  // only at checkpoints (durable across a process crash, not a power loss).
  bool synchronous_full = true;
  // Upper bound of queued items committed in one transaction.
  int max_batches_per_commit = 1000;
  // Read connections kept open for reuse; more are opened on demand under concurrent reads.
  int idle_read_connections = 4;
  // PRAGMA max_page_count when > 0: caps the database size so that tests can fill it (a full
  // database fails like a full disk, with SQLITE_FULL).
  int64_t max_page_count = 0;
  // Where the store declares dagd_storage_commit_duration_seconds,
  // dagd_storage_commit_errors_total and dagd_storage_database_bytes; null for none. Not owned;
  // must outlive the store.
  metrics::Registry* metrics = nullptr;
};

class SqliteStore : public Store {
 public:
  // Opens (creating if missing) the database, enables WAL and foreign keys, and applies pending
  // migrations (storage/sqlite/migrations.h). Errors name the file: Unavailable if it cannot be
  // opened, DataLoss if it is not an SQLite database or is corrupt, FailedPrecondition if its
  // schema is newer than this build's.
  static absl::StatusOr<std::unique_ptr<SqliteStore>> Open(const SqliteStoreOptions& options);

  ~SqliteStore() override;
  SqliteStore(const SqliteStore&) = delete;
  SqliteStore& operator=(const SqliteStore&) = delete;

  // Store. Submit() accepts an empty `done` (fire and forget).
  void Submit(WriteBatch batch, std::function<void(absl::Status)> done) override;
  absl::Status Write(WriteBatch batch) override;
  absl::StatusOr<std::vector<WorkflowRecord>> PutWorkflows(
      const std::vector<WorkflowDocument>& documents, std::vector<BundleFile> bundle,
      int64_t now_ms, std::vector<bool>* created) override;
  absl::StatusOr<WorkflowRecord> GetWorkflow(const std::string& name, int64_t version) override;
  absl::StatusOr<std::vector<WorkflowRecord>> ListWorkflows(
      const std::string& after_name, int limit,
      const std::vector<std::string>& namespaces) override;
  absl::Status DeleteWorkflow(const std::string& name) override;
  absl::StatusOr<BundleInfo> PutBundle(std::vector<BundleFile> bundle, int64_t now_ms) override;
  absl::StatusOr<std::vector<BundleFile>> GetBundle(const std::string& digest) override;
  absl::StatusOr<std::vector<BundleEntry>> GetBundleManifest(const std::string& digest) override;
  absl::StatusOr<RunRecord> GetRun(const std::string& run_id) override;
  absl::StatusOr<RunRecord> GetRunByRequestId(const std::string& request_id) override;
  absl::StatusOr<RunPage> ListRuns(const RunFilter& filter) override;
  absl::StatusOr<std::vector<RunRecord>> ListUnfinishedRuns() override;
  absl::StatusOr<std::vector<MemoRecord>> ListMemoEntries() override;
  absl::StatusOr<std::vector<engine::NodeState>> GetNodes(const std::string& run_id) override;
  absl::StatusOr<std::vector<EventRecord>> GetEvents(const std::string& run_id,
                                                     int64_t after_sequence, int limit) override;
  absl::StatusOr<std::vector<LogChunkRecord>> GetLogs(const std::string& run_id,
                                                      const std::string& node_name, int attempt,
                                                      int64_t after_sequence, int limit) override;
  absl::StatusOr<std::vector<AnsibleEventRecord>> GetAnsibleEvents(const std::string& run_id,
                                                                   const AnsibleEventFilter& filter,
                                                                   int64_t after_sequence,
                                                                   int limit) override;
  absl::StatusOr<AuditPage> ListAuditRecords(const AuditFilter& filter) override;

  // Transactions committed by the writer so far (a group commit counts once).
  int64_t commits() const { return commits_.load(); }

 private:
  // One queued unit of work for the writer.
  struct WriteOp {
    // Applies the change inside the open transaction (and the op's savepoint).
    std::function<absl::Status(internal::Connection&)> apply;
    // Called once with the outcome after COMMIT or ROLLBACK; may be empty.
    std::function<void(absl::Status)> done;
  };

  // Lends a read connection for one call.
  class ReadLease;

  SqliteStore(SqliteStoreOptions options, std::unique_ptr<internal::Connection> writer);

  void Enqueue(WriteOp op);
  // Runs `apply` through the writer and waits for its outcome.
  absl::Status RunOnWriter(std::function<absl::Status(internal::Connection&)> apply);
  void WriterLoop();
  // Commits `ops` in one transaction; returns each op's outcome.
  std::vector<absl::Status> CommitGroup(std::vector<WriteOp>& ops);

  absl::StatusOr<ReadLease> LeaseReader();
  void ReturnReader(std::unique_ptr<internal::Connection> connection);

  const SqliteStoreOptions options_;
  std::unique_ptr<internal::Connection> writer_db_;  // used by the writer thread only

  absl::Mutex queue_mu_;
  std::deque<WriteOp> queue_ ABSL_GUARDED_BY(queue_mu_);
  bool stopping_ ABSL_GUARDED_BY(queue_mu_) = false;

  absl::Mutex readers_mu_;
  std::vector<std::unique_ptr<internal::Connection>> idle_readers_ ABSL_GUARDED_BY(readers_mu_);

  std::atomic<int64_t> commits_{0};
  metrics::Histogram* commit_duration_ = nullptr;  // set when options_.metrics is
  metrics::Counter* commit_errors_ = nullptr;
  std::thread writer_;  // last: starts after every other member is ready
};

}  // namespace dagd::storage::sqlite

namespace dagd::storage {

// The SQLite Store for `path` with the default SqliteStoreOptions (see SqliteStore::Open), and
// its metrics in `metrics` if not null.
absl::StatusOr<std::unique_ptr<Store>> OpenSqliteStore(const std::string& path,
                                                       metrics::Registry* metrics = nullptr);

// SQLite's version, "3.40.1".
std::string SqliteVersion();

}  // namespace dagd::storage

#endif  // DAGD_STORAGE_SQLITE_SQLITE_STORE_H_
