#include "storage/sqlite/sqlite_store.h"

#include <sqlite3.h>

#include <filesystem>
#include <fstream>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "gtest/gtest.h"
#include "storage/sqlite/migrations.h"
#include "tests/storage/sqlite_test_util.h"
#include "tests/storage/store_contract.h"
#include "tests/storage/temp_dir.h"

namespace dagd::storage::testing {
namespace {

using engine::NodePhase;
using sqlite::SqliteStore;
using sqlite::SqliteStoreOptions;

INSTANTIATE_TEST_SUITE_P(Sqlite, StoreContractTest,
                         ::testing::Values(StoreFactory{"Sqlite",
                                                        [](const std::string& dir) {
                                                          return OpenSqliteStore(dir + "/dagd.db");
                                                        }}),
                         StoreFactoryName);

// Runs one integer query on the file directly, bypassing the store.
int64_t QueryInt(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  EXPECT_EQ(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
  sqlite3_stmt* stmt = nullptr;
  EXPECT_EQ(sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr), SQLITE_OK)
      << sqlite3_errmsg(db);
  EXPECT_EQ(sqlite3_step(stmt), SQLITE_ROW) << sqlite3_errmsg(db);
  int64_t value = sqlite3_column_int64(stmt, 0);
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  return value;
}

WriteBatch RunBatch(RunRecord run) {
  WriteBatch batch;
  batch.runs.push_back(std::move(run));
  return batch;
}

class SqliteStoreTest : public ::testing::Test {
 protected:
  std::string Path() const { return dir_.File("dagd.db"); }
  TempDir dir_;
};

TEST_F(SqliteStoreTest, ConcurrentSubmitsCommitAsOneGroup) {
  std::unique_ptr<SqliteStore> store = OpenOrDie(Path());
  ASSERT_NE(store, nullptr);
  DAGD_ASSERT_OK(store->Write(RunBatch(MakeRun("r", "w", 1))));

  constexpr int kThreads = 4;
  constexpr int kPerThread = 25;
  constexpr int kBatches = kThreads * kPerThread;
  absl::Mutex mu;
  int ok = 0;
  int64_t commits_before = 0;
  {
    WriterGate gate(*store);
    commits_before = store->commits();
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        for (int i = 0; i < kPerThread; ++i) {
          WriteBatch batch;
          batch.events.push_back(MakeEvent("r", 1 + t * kPerThread + i));
          batch.logs.push_back(MakeLog("r", "r.a", 1, "line"));
          store->Submit(std::move(batch), [&](const absl::Status& status) {
            absl::MutexLock lock(&mu);
            if (status.ok()) ++ok;
          });
        }
      });
    }
    for (std::thread& thread : threads) thread.join();
  }
  DAGD_ASSERT_OK(store->Write(WriteBatch{}));
  absl::MutexLock lock(&mu);
  EXPECT_EQ(ok, kBatches);
  // The 100 batches queued behind the gate, plus the final Write: at most two transactions.
  EXPECT_LE(store->commits() - commits_before, 2);
  absl::StatusOr<std::vector<EventRecord>> events = store->GetEvents("r", 0, 1000);
  DAGD_ASSERT_OK(events);
  EXPECT_EQ(events->size(), size_t{kBatches});
  absl::StatusOr<std::vector<LogChunkRecord>> logs = store->GetLogs("r", "", 0, 0, 1000);
  DAGD_ASSERT_OK(logs);
  ASSERT_EQ(logs->size(), size_t{kBatches});
  EXPECT_EQ(logs->back().sequence, kBatches);
}

TEST_F(SqliteStoreTest, GroupSizeIsCapped) {
  SqliteStoreOptions options;
  options.path = Path();
  options.max_batches_per_commit = 10;
  std::unique_ptr<SqliteStore> store = OpenOrDie(options);
  ASSERT_NE(store, nullptr);
  DAGD_ASSERT_OK(store->Write(RunBatch(MakeRun("r", "w", 1))));
  int64_t commits_before = 0;
  {
    WriterGate gate(*store);
    commits_before = store->commits();
    for (int i = 0; i < 35; ++i) {
      WriteBatch batch;
      batch.events.push_back(MakeEvent("r", i + 1));
      store->Submit(std::move(batch), [](const absl::Status& status) { EXPECT_TRUE(status.ok()); });
    }
  }
  DAGD_ASSERT_OK(store->Write(WriteBatch{}));
  EXPECT_EQ(store->commits() - commits_before, 4);  // 10 + 10 + 10 + (5 and the Write)
}

TEST_F(SqliteStoreTest, AFailingBatchFailsAloneInItsGroup) {
  std::unique_ptr<SqliteStore> store = OpenOrDie(Path());
  ASSERT_NE(store, nullptr);
  DAGD_ASSERT_OK(store->Write(RunBatch(MakeRun("r1", "w", 1, NodePhase::kRunning, "req"))));

  absl::Mutex mu;
  std::vector<absl::Status> results(3);
  {
    WriterGate gate(*store);
    std::vector<WriteBatch> batches(3);
    batches[0].events.push_back(MakeEvent("r1", 1));
    batches[1] = RunBatch(MakeRun("r2", "w", 2, NodePhase::kRunning, "req"));  // duplicate id
    batches[1].events.push_back(MakeEvent("r1", 2));
    batches[2].events.push_back(MakeEvent("r1", 3));
    for (int i = 0; i < 3; ++i) {
      store->Submit(std::move(batches[i]), [&, i](const absl::Status& status) {
        absl::MutexLock lock(&mu);
        results[i] = status;
      });
    }
  }
  DAGD_ASSERT_OK(store->Write(WriteBatch{}));
  absl::MutexLock lock(&mu);
  EXPECT_TRUE(results[0].ok()) << results[0];
  EXPECT_EQ(results[1].code(), absl::StatusCode::kAlreadyExists) << results[1];
  EXPECT_TRUE(results[2].ok()) << results[2];
  absl::StatusOr<std::vector<EventRecord>> events = store->GetEvents("r1", 0, 10);
  DAGD_ASSERT_OK(events);
  ASSERT_EQ(events->size(), 2u);
  EXPECT_EQ((*events)[0].sequence, 1);
  EXPECT_EQ((*events)[1].sequence, 3);
  DAGD_EXPECT_CODE(store->GetRun("r2"), kNotFound);
}

TEST_F(SqliteStoreTest, AttemptsTableMirrorsTheNode) {
  std::unique_ptr<SqliteStore> store = OpenOrDie(Path());
  ASSERT_NE(store, nullptr);
  WriteBatch batch = RunBatch(MakeRun("r", "w", 1));
  batch.node_run_id = "r";
  batch.nodes = {MakeNode("r.a", 3)};
  DAGD_ASSERT_OK(store->Write(batch));
  EXPECT_EQ(QueryInt(Path(), "SELECT count(*) FROM attempts WHERE node_name = 'r.a'"), 3);
  EXPECT_EQ(QueryInt(Path(), "SELECT exit_code FROM attempts WHERE external_name = 'r.a-1'"), 2);

  WriteBatch fewer;
  fewer.node_run_id = "r";
  fewer.nodes = {MakeNode("r.a", 1)};
  fewer.nodes[0].attempts[0].exit_code = 0;
  DAGD_ASSERT_OK(store->Write(fewer));
  EXPECT_EQ(QueryInt(Path(), "SELECT count(*) FROM attempts WHERE node_name = 'r.a'"), 1);
  EXPECT_EQ(QueryInt(Path(), "SELECT exit_code FROM attempts WHERE external_name = 'r.a-1'"), 0);
}

TEST_F(SqliteStoreTest, InvalidUtf8IsStoredReplacedNotThrown) {
  std::unique_ptr<SqliteStore> store = OpenOrDie(Path());
  ASSERT_NE(store, nullptr);
  RunRecord run = MakeRun("r", "w", 1);
  run.parameters["raw"] = "a\xff";
  WriteBatch batch = RunBatch(run);
  batch.node_run_id = "r";
  batch.nodes = {MakeNode("r.a", 1)};
  batch.nodes[0].message = "exit \xfe\xff";
  DAGD_ASSERT_OK(store->Write(batch));
  absl::StatusOr<RunRecord> got = store->GetRun("r");
  DAGD_ASSERT_OK(got);
  EXPECT_EQ(got->parameters["raw"], "a\uFFFD");
  absl::StatusOr<std::vector<engine::NodeState>> nodes = store->GetNodes("r");
  DAGD_ASSERT_OK(nodes);
  ASSERT_EQ(nodes->size(), 1u);
  EXPECT_EQ((*nodes)[0].message, "exit \uFFFD\uFFFD");
}

TEST_F(SqliteStoreTest, EverythingSurvivesAReopen) {
  {
    std::unique_ptr<SqliteStore> store = OpenOrDie(Path());
    ASSERT_NE(store, nullptr);
    DAGD_ASSERT_OK(store->PutWorkflow("deploy", "spec: 1", "main",
                                      {BundleFile{.path = "site.yml", .content = "- hosts: x\n"}},
                                      7, nullptr));
    WriteBatch batch = RunBatch(MakeRun("r", "deploy", 1, NodePhase::kRunning, "req"));
    batch.node_run_id = "r";
    batch.nodes = {MakeNode("r.a", 2)};
    batch.events = {MakeEvent("r", 1), MakeEvent("r", 2, "r.a")};
    batch.logs = {MakeLog("r", "r.a", 1, "one"), MakeLog("r", "r.a", 2, "two")};
    DAGD_ASSERT_OK(store->Write(batch));
    // Submitted but not waited for: the destructor commits it before it returns.
    WriteBatch last;
    last.logs = {MakeLog("r", "r.a", 2, "three")};
    store->Submit(std::move(last), [](const absl::Status& status) { EXPECT_TRUE(status.ok()); });
  }
  std::unique_ptr<SqliteStore> store = OpenOrDie(Path());
  ASSERT_NE(store, nullptr);
  absl::StatusOr<WorkflowRecord> workflow = store->GetWorkflow("deploy", 1);
  DAGD_ASSERT_OK(workflow);
  EXPECT_EQ(workflow->yaml, "spec: 1");
  EXPECT_EQ(workflow->bundle.file_count, 1);
  absl::StatusOr<std::vector<BundleFile>> bundle = store->GetBundle(workflow->bundle.digest);
  DAGD_ASSERT_OK(bundle);
  ASSERT_EQ(bundle->size(), 1u);
  EXPECT_EQ((*bundle)[0].content, "- hosts: x\n");
  absl::StatusOr<RunRecord> run = store->GetRunByRequestId("req");
  DAGD_ASSERT_OK(run);
  EXPECT_EQ(run->id, "r");
  EXPECT_EQ(run->last_sequence, 2);
  absl::StatusOr<std::vector<engine::NodeState>> nodes = store->GetNodes("r");
  DAGD_ASSERT_OK(nodes);
  ASSERT_EQ(nodes->size(), 1u);
  EXPECT_EQ((*nodes)[0].attempts.size(), 2u);
  absl::StatusOr<std::vector<EventRecord>> events = store->GetEvents("r", 0, 10);
  DAGD_ASSERT_OK(events);
  EXPECT_EQ(events->size(), 2u);

  // Log sequences continue where the previous process stopped.
  WriteBatch more;
  more.logs = {MakeLog("r", "r.a", 2, "four")};
  DAGD_ASSERT_OK(store->Write(more));
  absl::StatusOr<std::vector<LogChunkRecord>> logs = store->GetLogs("r", "r.a", 0, 0, 10);
  DAGD_ASSERT_OK(logs);
  ASSERT_EQ(logs->size(), 4u);
  EXPECT_EQ((*logs)[2].data, "three");
  EXPECT_EQ((*logs)[3].data, "four");
  EXPECT_EQ((*logs)[3].sequence, 4);
}

TEST_F(SqliteStoreTest, MemoEntriesAreReplacedByKeyAndSurviveAReopen) {
  {
    std::unique_ptr<SqliteStore> store = OpenOrDie(Path());
    ASSERT_NE(store, nullptr);
    engine::NodeOutputs outputs;
    outputs.parameters = {{"hello", "world"}};
    outputs.result = "world";
    outputs.artifacts = {{"file", "run/a-00000000/file.tgz"}};
    WriteBatch batch;
    batch.memo_entries = {{"cache-config", "cache-key", outputs, 5, "run/run"},
                          {"cache-config", "other", {}, 6, "run/run.b"}};
    DAGD_ASSERT_OK(store->Write(batch));
    outputs.result = "newer";
    WriteBatch newer;
    newer.memo_entries = {{"cache-config", "cache-key", outputs, 9, "run2/run2"}};
    DAGD_ASSERT_OK(store->Write(newer));
  }
  std::unique_ptr<SqliteStore> store = OpenOrDie(Path());
  ASSERT_NE(store, nullptr);
  absl::StatusOr<std::vector<MemoRecord>> entries = store->ListMemoEntries();
  DAGD_ASSERT_OK(entries);
  ASSERT_EQ(entries->size(), 2u);
  const MemoRecord& entry = (*entries)[0];
  EXPECT_EQ(entry.key, "cache-key");
  EXPECT_EQ(entry.outputs.result, "newer");
  EXPECT_EQ(entry.outputs.parameters.at("hello"), "world");
  EXPECT_EQ(entry.outputs.artifacts.at("file"), "run/a-00000000/file.tgz");
  EXPECT_EQ(entry.saved_at_ms, 9);
  EXPECT_EQ(entry.node, "run2/run2");
  EXPECT_EQ((*entries)[1].key, "other");
}

TEST_F(SqliteStoreTest, ReadsRunConcurrentlyWithWrites) {
  std::unique_ptr<SqliteStore> store = OpenOrDie(Path());
  ASSERT_NE(store, nullptr);
  DAGD_ASSERT_OK(store->Write(RunBatch(MakeRun("r", "w", 1))));
  constexpr int kEvents = 200;
  std::thread writer([&] {
    for (int i = 1; i <= kEvents; ++i) {
      WriteBatch batch;
      batch.events.push_back(MakeEvent("r", i));
      store->Submit(std::move(batch), [](const absl::Status& status) { EXPECT_TRUE(status.ok()); });
    }
  });
  std::vector<std::thread> readers;
  for (int t = 0; t < 3; ++t) {
    readers.emplace_back([&] {
      size_t seen = 0;
      while (seen < kEvents) {
        absl::StatusOr<std::vector<EventRecord>> events = store->GetEvents("r", 0, 0);
        ASSERT_TRUE(events.ok()) << events.status();
        // Committed data only, and never less than before.
        ASSERT_GE(events->size(), seen);
        for (size_t i = 0; i < events->size(); ++i) ASSERT_EQ((*events)[i].sequence, int(i + 1));
        seen = events->size();
      }
    });
  }
  writer.join();
  for (std::thread& reader : readers) reader.join();
}

// --- failures -----------------------------------------------------------------------------------

TEST_F(SqliteStoreTest, AFullDatabaseFailsTheBatchAndKeepsCommittedData) {
  SqliteStoreOptions options;
  options.path = Path();
  options.max_page_count = 64;  // 256 KiB with 4 KiB pages
  std::unique_ptr<SqliteStore> store = OpenOrDie(options);
  ASSERT_NE(store, nullptr);
  WriteBatch first = RunBatch(MakeRun("r", "w", 1));
  first.logs = {MakeLog("r", "r.a", 1, "before")};
  DAGD_ASSERT_OK(store->Write(first));

  WriteBatch huge = RunBatch(MakeRun("r2", "w", 2));
  huge.logs = {MakeLog("r", "r.a", 1, std::string(1 << 20, 'x'))};
  absl::Status full = store->Write(huge);
  EXPECT_EQ(full.code(), absl::StatusCode::kResourceExhausted) << full;
  EXPECT_NE(full.message().find("full"), std::string::npos) << full;

  DAGD_EXPECT_CODE(store->GetRun("r2"), kNotFound);
  absl::StatusOr<std::vector<LogChunkRecord>> logs = store->GetLogs("r", "", 0, 0, 10);
  DAGD_ASSERT_OK(logs);
  ASSERT_EQ(logs->size(), 1u);
  EXPECT_EQ(logs->front().data, "before");

  WriteBatch small;
  small.logs = {MakeLog("r", "r.a", 1, "after")};
  DAGD_ASSERT_OK(store->Write(small));
  logs = store->GetLogs("r", "", 0, 0, 10);
  DAGD_ASSERT_OK(logs);
  ASSERT_EQ(logs->size(), 2u);
  EXPECT_EQ(logs->back().sequence, 2);
}

TEST_F(SqliteStoreTest, MetricsTimeCommitsCountRollbacksAndMeasureTheFile) {
  metrics::Registry registry;
  SqliteStoreOptions options;
  options.path = Path();
  options.max_page_count = 64;
  options.metrics = &registry;
  std::unique_ptr<SqliteStore> store = OpenOrDie(options);
  ASSERT_NE(store, nullptr);
  auto sample = [&registry](const std::string& series) {
    const std::string body = registry.Render();
    const size_t at = body.find("\n" + series + " ");
    return at == std::string::npos ? -1.0 : std::stod(body.substr(at + series.size() + 2));
  };
  EXPECT_EQ(sample("dagd_storage_commit_errors_total"), 0);
  EXPECT_EQ(sample("dagd_storage_commit_duration_seconds_count"), 0);

  DAGD_ASSERT_OK(store->Write(RunBatch(MakeRun("r", "w", 1))));
  DAGD_ASSERT_OK(store->Write(RunBatch(MakeRun("r1", "w", 2))));
  EXPECT_EQ(sample("dagd_storage_commit_duration_seconds_count"), 2);
  EXPECT_GT(sample("dagd_storage_commit_duration_seconds_sum"), 0);
  EXPECT_EQ(sample("dagd_storage_database_bytes"),
            static_cast<double>(std::filesystem::file_size(Path()) +
                                std::filesystem::file_size(Path() + "-wal")));

  WriteBatch huge = RunBatch(MakeRun("r2", "w", 3));
  huge.logs = {MakeLog("r", "r.a", 1, std::string(1 << 20, 'x'))};
  EXPECT_EQ(store->Write(huge).code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(sample("dagd_storage_commit_errors_total"), 1);
  EXPECT_EQ(sample("dagd_storage_commit_duration_seconds_count"), 2);  // only what committed
}

TEST_F(SqliteStoreTest, AFileThatIsNotADatabaseIsRefusedByName) {
  {
    std::ofstream garbage(Path(), std::ios::binary);
    for (int i = 0; i < 1000; ++i) garbage << "this is not an SQLite database ";
  }
  absl::StatusOr<std::unique_ptr<Store>> store = OpenSqliteStore(Path());
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), absl::StatusCode::kDataLoss) << store.status();
  EXPECT_NE(store.status().message().find(Path()), std::string::npos) << store.status();
}

TEST_F(SqliteStoreTest, AnUnopenablePathIsUnavailableByName) {
  const std::string path = dir_.File("no/such/dir/dagd.db");
  absl::StatusOr<std::unique_ptr<Store>> store = OpenSqliteStore(path);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), absl::StatusCode::kUnavailable) << store.status();
  EXPECT_NE(store.status().message().find(path), std::string::npos) << store.status();
}

TEST_F(SqliteStoreTest, ADatabaseFromANewerDagdIsRefused) {
  {
    std::unique_ptr<SqliteStore> store = OpenOrDie(Path());
    ASSERT_NE(store, nullptr);
  }
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(Path().c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "PRAGMA user_version = 999", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);

  absl::StatusOr<std::unique_ptr<Store>> store = OpenSqliteStore(Path());
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), absl::StatusCode::kFailedPrecondition) << store.status();
  EXPECT_NE(store.status().message().find("999"), std::string::npos) << store.status();
  EXPECT_NE(store.status().message().find(Path()), std::string::npos) << store.status();
}

// --- bundles ------------------------------------------------------------------------------------

TEST_F(SqliteStoreTest, IdenticalFilesAreStoredOnce) {
  std::unique_ptr<SqliteStore> store = OpenOrDie(Path());
  ASSERT_NE(store, nullptr);
  const std::string shared(100000, 'x');
  DAGD_ASSERT_OK(store->PutWorkflow("a", "spec: a", "main",
                                    {BundleFile{.path = "one.yml", .content = shared},
                                     BundleFile{.path = "copy/one.yml", .content = shared},
                                     BundleFile{.path = "a.yml", .content = "a"}},
                                    1, nullptr));
  DAGD_ASSERT_OK(store->PutWorkflow("b", "spec: b", "main",
                                    {BundleFile{.path = "elsewhere.yml", .content = shared},
                                     BundleFile{.path = "b.yml", .content = "b"}},
                                    2, nullptr));
  DAGD_ASSERT_OK(store->PutBundle({BundleFile{.path = "one.yml", .content = shared},
                                   BundleFile{.path = "copy/one.yml", .content = shared},
                                   BundleFile{.path = "a.yml", .content = "a"}},
                                  3));
  EXPECT_EQ(QueryInt(Path(), "SELECT count(*) FROM blobs"), 3);  // shared, "a", "b"
  EXPECT_EQ(QueryInt(Path(), "SELECT count(*) FROM bundles"), 2);
  EXPECT_EQ(QueryInt(Path(), "SELECT count(*) FROM bundle_files"), 5);
  EXPECT_EQ(QueryInt(Path(), "SELECT sum(size) FROM blobs"), 100002);
}

TEST_F(SqliteStoreTest, ADamagedOrMissingBlobIsDataLossNamingTheFile) {
  std::string digest;
  {
    std::unique_ptr<SqliteStore> store = OpenOrDie(Path());
    ASSERT_NE(store, nullptr);
    absl::StatusOr<BundleInfo> info =
        store->PutBundle({BundleFile{.path = "site.yml", .content = "- hosts: x\n"},
                          BundleFile{.path = "other.yml", .content = "other"}},
                         1);
    DAGD_ASSERT_OK(info);
    digest = info->digest;
  }
  auto exec = [&](const std::string& sql) {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(Path().c_str(), &db), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr), SQLITE_OK)
        << sqlite3_errmsg(db);
    sqlite3_close(db);
  };
  exec(absl::StrCat("UPDATE blobs SET content = CAST('- hosts: y\n' AS BLOB) WHERE digest = '",
                    Sha256Hex("- hosts: x\n"), "'"));
  {
    std::unique_ptr<SqliteStore> store = OpenOrDie(Path());
    ASSERT_NE(store, nullptr);
    absl::StatusOr<std::vector<BundleFile>> files = store->GetBundle(digest);
    ASSERT_FALSE(files.ok());
    EXPECT_EQ(files.status().code(), absl::StatusCode::kDataLoss) << files.status();
    EXPECT_NE(files.status().message().find("site.yml"), std::string::npos) << files.status();
  }
  // Without foreign keys enforced (this raw connection), a blob can go missing.
  exec(absl::StrCat("DELETE FROM blobs WHERE digest = '", Sha256Hex("other"), "'"));
  {
    std::unique_ptr<SqliteStore> store = OpenOrDie(Path());
    ASSERT_NE(store, nullptr);
    absl::StatusOr<std::vector<BundleFile>> files = store->GetBundle(digest);
    ASSERT_FALSE(files.ok());
    EXPECT_EQ(files.status().code(), absl::StatusCode::kDataLoss) << files.status();
    EXPECT_NE(files.status().message().find("other.yml"), std::string::npos) << files.status();
  }
  // A manifest row gone: the rest no longer adds up to the digest.
  exec("UPDATE blobs SET content = CAST('- hosts: x\n' AS BLOB)");
  exec(absl::StrCat("INSERT INTO blobs VALUES ('", Sha256Hex("other"),
                    "', 5, CAST('other' AS BLOB))"));
  exec("DELETE FROM bundle_files WHERE path = 'other.yml'");
  {
    std::unique_ptr<SqliteStore> store = OpenOrDie(Path());
    ASSERT_NE(store, nullptr);
    absl::StatusOr<std::vector<BundleFile>> files = store->GetBundle(digest);
    ASSERT_FALSE(files.ok());
    EXPECT_EQ(files.status().code(), absl::StatusCode::kDataLoss) << files.status();
  }
}

// --- migrations ---------------------------------------------------------------------------------

TEST_F(SqliteStoreTest, ANewDatabaseGetsTheLatestSchemaInWalMode) {
  { ASSERT_NE(OpenOrDie(Path()), nullptr); }
  EXPECT_EQ(QueryInt(Path(), "PRAGMA user_version"), sqlite::LatestSchemaVersion());
  EXPECT_EQ(QueryInt(Path(), "SELECT count(*) FROM pragma_journal_mode WHERE journal_mode = 'wal'"),
            1);
  // Reopening applies nothing and keeps the version.
  { ASSERT_NE(OpenOrDie(Path()), nullptr); }
  EXPECT_EQ(QueryInt(Path(), "PRAGMA user_version"), sqlite::LatestSchemaVersion());
}

TEST(MigrationsTest, AreNumberedOneToNWithoutGaps) {
  int expected = 1;
  for (const sqlite::Migration& migration : sqlite::Migrations()) {
    EXPECT_EQ(migration.version, expected++) << migration.description;
  }
  EXPECT_EQ(sqlite::LatestSchemaVersion(), expected - 1);
}

TEST(MigrationsTest, AppliesOnlyNewOnesAndAFailedOneChangesNothing) {
  TempDir dir;
  const std::string path = dir.File("m.db");
  absl::StatusOr<std::unique_ptr<sqlite::internal::Connection>> db =
      sqlite::internal::Connection::Open(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, 1000);
  ASSERT_TRUE(db.ok()) << db.status();
  const sqlite::Migration v1[] = {{1, "one", "CREATE TABLE a (x INTEGER);"}};
  const sqlite::Migration v3[] = {
      {1, "one", "CREATE TABLE a (x INTEGER);"},
      {2, "two", "CREATE TABLE b (x INTEGER);"},
      {3, "broken", "CREATE TABLE c (x INTEGER); INSERT INTO nowhere VALUES (1);"}};

  absl::StatusOr<int> applied = sqlite::ApplyMigrations(**db, v1);
  ASSERT_TRUE(applied.ok()) << applied.status();
  EXPECT_EQ(*applied, 1);
  applied = sqlite::ApplyMigrations(**db, v1);
  ASSERT_TRUE(applied.ok()) << applied.status();
  EXPECT_EQ(*applied, 0);

  applied = sqlite::ApplyMigrations(**db, v3);
  ASSERT_FALSE(applied.ok());
  EXPECT_NE(applied.status().message().find("migration 3 (broken)"), std::string::npos)
      << applied.status();
  EXPECT_EQ(QueryInt(path, "PRAGMA user_version"), 2);
  EXPECT_EQ(QueryInt(path, "SELECT count(*) FROM sqlite_schema WHERE name = 'b'"), 1);
  EXPECT_EQ(QueryInt(path, "SELECT count(*) FROM sqlite_schema WHERE name = 'c'"), 0);
}

TEST(MigrationsTest, VersionOneDatabaseUpgradesAndKeepsItsRuns) {
  TempDir dir;
  const std::string path = dir.File("v1.db");
  {
    absl::StatusOr<std::unique_ptr<sqlite::internal::Connection>> db =
        sqlite::internal::Connection::Open(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, 1000);
    ASSERT_TRUE(db.ok()) << db.status();
    absl::StatusOr<int> applied = sqlite::ApplyMigrations(**db, sqlite::Migrations().first(1));
    ASSERT_TRUE(applied.ok()) << applied.status();
    ASSERT_TRUE((*db)
                    ->Exec(R"sql(
INSERT INTO runs (id, workflow_name, workflow_version, workflow_yaml, file_name, bundle_dir,
                  parameters, phase, message, request_id, stopping, created_at_ms, started_at_ms,
                  finished_at_ms, last_sequence)
VALUES ('old', 'w', 1, 'yaml', 'f', '', '{}', 'Succeeded', '', '', 0, 1, 2, 3, 0)
)sql")
                    .ok());
  }
  ASSERT_EQ(QueryInt(path, "PRAGMA user_version"), 1);

  std::unique_ptr<SqliteStore> store = OpenOrDie(path);
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(QueryInt(path, "PRAGMA user_version"), sqlite::LatestSchemaVersion());
  absl::StatusOr<RunRecord> run = store->GetRun("old");
  DAGD_ASSERT_OK(run);
  EXPECT_EQ(run->phase, NodePhase::kSucceeded);

  WriteBatch batch;
  AnsibleEventRecord event;
  event.run_id = "old";
  event.node_name = "old.a";
  event.kind = "runner_on_ok";
  event.changed = true;
  event.payload = "{}";
  batch.ansible_events.push_back(event);
  DAGD_ASSERT_OK(store->Write(batch));
  absl::StatusOr<std::vector<AnsibleEventRecord>> events =
      store->GetAnsibleEvents("old", {.changed_only = true}, 0, 10);
  DAGD_ASSERT_OK(events);
  ASSERT_EQ(events->size(), 1u);
  EXPECT_EQ((*events)[0].sequence, 1);
}

// A database of version 2 — workflows and runs that named a bundle directory on the host —
// upgrades to bundles in the store: the directory is gone (it was never a snapshot), everything
// else is kept, and new versions and runs name stored bundles.
TEST(MigrationsTest, VersionTwoDatabaseUpgradesToStoredBundles) {
  TempDir dir;
  const std::string path = dir.File("v2.db");
  {
    absl::StatusOr<std::unique_ptr<sqlite::internal::Connection>> db =
        sqlite::internal::Connection::Open(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, 1000);
    ASSERT_TRUE(db.ok()) << db.status();
    absl::StatusOr<int> applied = sqlite::ApplyMigrations(**db, sqlite::Migrations().first(2));
    ASSERT_TRUE(applied.ok()) << applied.status();
    ASSERT_EQ(*applied, 2);
    absl::Status inserted = (*db)->Exec(R"sql(
INSERT INTO workflows (name, version, yaml, spec_sha256, entrypoint, bundle_dir, created_at_ms)
VALUES ('deploy', 1, 'spec: 1', 'abc', 'main', '/srv/playbooks', 5);
INSERT INTO runs (id, workflow_name, workflow_version, workflow_yaml, file_name, bundle_dir,
                  parameters, phase, message, request_id, stopping, created_at_ms, started_at_ms,
                  finished_at_ms, last_sequence)
VALUES ('old', 'deploy', 1, 'spec: 1', 'deploy@v1', '/srv/playbooks', '{"env":"prod"}', 'Running',
        '', 'req-old', 0, 1, 2, 0, 1);
INSERT INTO events (run_id, sequence, time_ms, node_name, type, phase, message, attempt)
VALUES ('old', 1, 1, '', 'RunCreated', 'Pending', 'submitted', 0);
INSERT INTO ansible_events (run_id, sequence, node_name, attempt, time_ms, kind, host, task, play,
                            changed, failed, item, payload)
VALUES ('old', 1, 'old.a', 1, 3, 'runner_on_ok', 'web1', 't', 'p', 1, 0, '', '{}');
)sql");
    ASSERT_TRUE(inserted.ok()) << inserted;
  }
  ASSERT_EQ(QueryInt(path, "PRAGMA user_version"), 2);

  std::unique_ptr<SqliteStore> store = OpenOrDie(path);
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(QueryInt(path, "PRAGMA user_version"), sqlite::LatestSchemaVersion());
  for (const char* table : {"workflows", "runs"}) {
    EXPECT_EQ(QueryInt(path, absl::StrCat("SELECT count(*) FROM pragma_table_info('", table,
                                          "') WHERE name = 'bundle_dir'")),
              0)
        << table;
    EXPECT_EQ(QueryInt(path, absl::StrCat("SELECT count(*) FROM pragma_table_info('", table,
                                          "') WHERE name = 'bundle_digest'")),
              1)
        << table;
  }
  EXPECT_EQ(QueryInt(path, "SELECT count(*) FROM pragma_foreign_key_check"), 0);

  absl::StatusOr<WorkflowRecord> workflow = store->GetWorkflow("deploy", 1);
  DAGD_ASSERT_OK(workflow);
  EXPECT_EQ(workflow->yaml, "spec: 1");
  EXPECT_EQ(workflow->entrypoint, "main");
  EXPECT_EQ(workflow->bundle.digest, "");
  EXPECT_EQ(workflow->bundle.file_count, 0);
  absl::StatusOr<RunRecord> run = store->GetRunByRequestId("req-old");
  DAGD_ASSERT_OK(run);
  EXPECT_EQ(run->id, "old");
  EXPECT_EQ(run->bundle_digest, "");
  EXPECT_EQ(run->parameters.at("env"), "prod");
  EXPECT_EQ(run->last_sequence, 1);
  absl::StatusOr<std::vector<RunRecord>> unfinished = store->ListUnfinishedRuns();
  DAGD_ASSERT_OK(unfinished);
  ASSERT_EQ(unfinished->size(), 1u);
  EXPECT_EQ((*unfinished)[0].id, "old");
  absl::StatusOr<std::vector<AnsibleEventRecord>> events =
      store->GetAnsibleEvents("old", {}, 0, 10);
  DAGD_ASSERT_OK(events);
  ASSERT_EQ(events->size(), 1u);
  EXPECT_EQ((*events)[0].host, "web1");

  // The same yaml with a bundle is a new version that names it; an old run can be updated.
  bool created = false;
  absl::StatusOr<WorkflowRecord> v2 =
      store->PutWorkflow("deploy", "spec: 1", "main",
                         {BundleFile{.path = "site.yml", .content = "- hosts: x\n"}}, 9, &created);
  DAGD_ASSERT_OK(v2);
  EXPECT_TRUE(created);
  EXPECT_EQ(v2->version, 2);
  EXPECT_EQ(v2->bundle.file_count, 1);
  RunRecord updated = *run;
  updated.phase = NodePhase::kSucceeded;
  updated.bundle_digest = v2->bundle.digest;
  DAGD_ASSERT_OK(store->Write(RunBatch(updated)));
  absl::StatusOr<RunRecord> reread = store->GetRun("old");
  DAGD_ASSERT_OK(reread);
  EXPECT_EQ(reread->bundle_digest, v2->bundle.digest);
  EXPECT_EQ(reread->phase, NodePhase::kSucceeded);
}

TEST(MigrationsTest, VersionFiveDatabaseUpgradesToNamespacesAndAnAppendOnlyAuditLog) {
  TempDir dir;
  const std::string path = dir.File("v5.db");
  {
    absl::StatusOr<std::unique_ptr<sqlite::internal::Connection>> db =
        sqlite::internal::Connection::Open(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, 1000);
    ASSERT_TRUE(db.ok()) << db.status();
    absl::StatusOr<int> applied = sqlite::ApplyMigrations(**db, sqlite::Migrations().first(5));
    ASSERT_TRUE(applied.ok()) << applied.status();
    ASSERT_EQ(*applied, 5);
    absl::Status inserted = (*db)->Exec(R"sql(
INSERT INTO workflows (name, version, yaml, spec_sha256, entrypoint, created_at_ms)
VALUES ('deploy', 1, 'spec: 1', 'x', 'main', 1);
INSERT INTO runs (id, workflow_name, workflow_version, workflow_yaml, file_name, parameters, phase,
                  message, request_id, stopping, created_at_ms, started_at_ms, finished_at_ms,
                  last_sequence)
VALUES ('old', 'deploy', 1, 'spec: 1', 'f.yaml', '{}', 'Succeeded', '', '', 0, 1, 2, 3, 1);
)sql");
    ASSERT_TRUE(inserted.ok()) << inserted;
  }
  std::unique_ptr<SqliteStore> store = OpenOrDie(path);
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(QueryInt(path, "PRAGMA user_version"), sqlite::LatestSchemaVersion());
  // What was stored before belongs to "default"; nobody is named as its submitter.
  absl::StatusOr<RunRecord> run = store->GetRun("old");
  DAGD_ASSERT_OK(run);
  EXPECT_EQ(run->namespace_name, "default");
  EXPECT_EQ(run->submitted_by, "");
  absl::StatusOr<WorkflowRecord> workflow = store->GetWorkflow("deploy", 0);
  DAGD_ASSERT_OK(workflow);
  EXPECT_EQ(workflow->namespace_name, "default");

  WriteBatch batch;
  batch.audit_records.push_back(AuditRecord{.time_ms = 5, .principal = "alice", .code = "OK"});
  DAGD_ASSERT_OK(store->Write(batch));
  store.reset();
  // The audit log refuses changes and deletions, even from the database's own tools.
  absl::StatusOr<std::unique_ptr<sqlite::internal::Connection>> db =
      sqlite::internal::Connection::Open(path, SQLITE_OPEN_READWRITE, 1000);
  ASSERT_TRUE(db.ok()) << db.status();
  EXPECT_FALSE((*db)->Exec("UPDATE audit_log SET principal = 'mallory'").ok());
  EXPECT_FALSE((*db)->Exec("DELETE FROM audit_log").ok());
  EXPECT_EQ(QueryInt(path, "SELECT count(*) FROM audit_log WHERE principal = 'alice'"), 1);
}

TEST(MigrationsTest, VersionThreeDatabaseUpgradesToRunLabels) {
  TempDir dir;
  const std::string path = dir.File("v3.db");
  {
    absl::StatusOr<std::unique_ptr<sqlite::internal::Connection>> db =
        sqlite::internal::Connection::Open(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, 1000);
    ASSERT_TRUE(db.ok()) << db.status();
    absl::StatusOr<int> applied = sqlite::ApplyMigrations(**db, sqlite::Migrations().first(3));
    ASSERT_TRUE(applied.ok()) << applied.status();
    ASSERT_EQ(*applied, 3);
    absl::Status inserted = (*db)->Exec(R"sql(
INSERT INTO runs (id, workflow_name, workflow_version, workflow_yaml, file_name, parameters, phase,
                  message, request_id, stopping, created_at_ms, started_at_ms, finished_at_ms,
                  last_sequence)
VALUES ('old', 'deploy', 0, 'spec: 1', 'f.yaml', '{}', 'Succeeded', '', '', 0, 1, 2, 3, 1);
)sql");
    ASSERT_TRUE(inserted.ok()) << inserted;
  }
  std::unique_ptr<SqliteStore> store = OpenOrDie(path);
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(QueryInt(path, "PRAGMA user_version"), sqlite::LatestSchemaVersion());
  absl::StatusOr<RunRecord> run = store->GetRun("old");
  DAGD_ASSERT_OK(run);
  EXPECT_TRUE(run->labels.empty());
  EXPECT_EQ(run->finished_at_ms, 3);

  // An old run matches "key!=value" and no other requirement; it can be given labels.
  RunFilter filter;
  filter.labels = {{"env", LabelRequirement::Op::kNotEquals, "prod"}};
  absl::StatusOr<RunPage> page = store->ListRuns(filter);
  DAGD_ASSERT_OK(page);
  ASSERT_EQ(page->runs.size(), 1u);
  filter.labels = {{"env", LabelRequirement::Op::kExists, ""}};
  page = store->ListRuns(filter);
  DAGD_ASSERT_OK(page);
  EXPECT_TRUE(page->runs.empty());
  RunRecord labelled = *run;
  labelled.labels = {{"env", "prod"}};
  DAGD_ASSERT_OK(store->Write(RunBatch(labelled)));
  page = store->ListRuns(filter);
  DAGD_ASSERT_OK(page);
  ASSERT_EQ(page->runs.size(), 1u);
  EXPECT_EQ(page->runs[0].labels, labelled.labels);
}

}  // namespace
}  // namespace dagd::storage::testing
