#include "storage/sqlite/sqlite_store.h"

#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <utility>
#include <variant>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/notification.h"
#include "engine/status_macros.h"
#include "logging/log.h"
#include "storage/node_json.h"
#include "storage/sqlite/internal/sqlite_db.h"
#include "storage/sqlite/migrations.h"

namespace dagd::storage::sqlite {
namespace {

using internal::Connection;
using internal::Statement;

// Page sizes when the caller passes limit <= 0, and the cap of every limit.
constexpr int kDefaultListLimit = 50;
constexpr int kDefaultStreamLimit = 1000;
constexpr int kMaxLimit = 10000;

// JSON text for a column. Strings from the outside world (playbook output in a message, a
// parameter value) may not be valid UTF-8; nlohmann would throw on the writer thread, so invalid
// bytes become U+FFFD instead.
std::string JsonText(const nlohmann::json& json) {
  return json.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

int ClampLimit(int limit, int default_limit) {
  if (limit <= 0) return default_limit;
  return std::min(limit, kMaxLimit);
}

std::shared_ptr<spdlog::logger> Logger() {
  static const std::shared_ptr<spdlog::logger> logger = logging::Get("storage");
  return logger;
}

// Errors that concern one queued item only: its savepoint is rolled back and the rest of the
// group commits. Any other error means the transaction itself is in doubt.
bool IsItemError(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kAlreadyExists:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kNotFound:
      return true;
    default:
      return false;
  }
}

absl::StatusOr<engine::NodePhase> ParsePhaseColumn(const std::string& text,
                                                   const std::string& where) {
  engine::NodePhase phase;
  if (!engine::ParseNodePhase(text, &phase)) {
    return absl::DataLossError(absl::StrCat("unknown phase \"", text, "\" stored in ", where));
  }
  return phase;
}

// --- workflows ----------------------------------------------------------------------------------

// What ReadWorkflow reads: a version with its bundle's sizes, and (column 9) its deleted flag.
// Follow it with a WHERE clause on `w`.
constexpr char kSelectWorkflow[] =
    "SELECT w.name, w.version, w.yaml, w.spec_sha256, w.entrypoint, "
    "coalesce(w.bundle_digest, ''), coalesce(b.file_count, 0), coalesce(b.total_bytes, 0), "
    "w.created_at_ms, w.deleted, w.namespace "
    "FROM workflows w LEFT JOIN bundles b ON b.digest = w.bundle_digest";

WorkflowRecord ReadWorkflow(const Statement& row) {
  WorkflowRecord record;
  record.name = row.Text(0);
  record.version = row.Int(1);
  record.yaml = row.Text(2);
  record.spec_sha256 = row.Text(3);
  record.entrypoint = row.Text(4);
  record.bundle.digest = row.Text(5);
  record.bundle.file_count = row.Int(6);
  record.bundle.total_bytes = row.Int(7);
  record.created_at_ms = row.Int(8);
  record.namespace_name = row.Text(10);
  return record;
}

// --- bundles ------------------------------------------------------------------------------------

// Checks the path rules (never the size limits, which are the caller's policy), then normalizes
// and hashes `files`: the work done on the calling thread before a bundle goes to the writer.
absl::StatusOr<HashedBundle> PrepareBundle(std::vector<BundleFile>& files) {
  RETURN_IF_ERROR(
      ValidateBundle(files, BundleLimits{.max_bytes = INT64_MAX, .max_files = INT64_MAX}));
  NormalizeBundleFiles(&files);
  return HashBundle(files);
}

// Stores a prepared bundle unless it is stored already. `files` and `hashed.entries` are
// parallel (HashBundle).
absl::Status InsertBundle(Connection& db, const std::vector<BundleFile>& files,
                          const HashedBundle& hashed, int64_t now_ms) {
  if (hashed.info.digest.empty()) return absl::OkStatus();
  ASSIGN_OR_RETURN(Statement exists, db.Prepare("SELECT 1 FROM bundles WHERE digest = ?1"));
  exists.Bind(1, hashed.info.digest);
  ASSIGN_OR_RETURN(bool stored, exists.Step());
  if (stored) return absl::OkStatus();
  for (size_t i = 0; i < files.size(); ++i) {
    ASSIGN_OR_RETURN(Statement blob,
                     db.Prepare("INSERT INTO blobs (digest, size, content) VALUES (?1, ?2, ?3) "
                                "ON CONFLICT (digest) DO NOTHING"));
    blob.Bind(1, hashed.entries[i].blob_digest)
        .Bind(2, hashed.entries[i].size)
        .BindBlob(3, files[i].content);
    RETURN_IF_ERROR(blob.Run());
  }
  ASSIGN_OR_RETURN(Statement bundle,
                   db.Prepare("INSERT INTO bundles (digest, file_count, total_bytes, "
                              "created_at_ms) VALUES (?1, ?2, ?3, ?4)"));
  bundle.Bind(1, hashed.info.digest)
      .Bind(2, hashed.info.file_count)
      .Bind(3, hashed.info.total_bytes)
      .Bind(4, now_ms);
  RETURN_IF_ERROR(bundle.Run());
  for (const BundleEntry& entry : hashed.entries) {
    ASSIGN_OR_RETURN(Statement file,
                     db.Prepare("INSERT INTO bundle_files (bundle_digest, path, mode, "
                                "blob_digest) VALUES (?1, ?2, ?3, ?4)"));
    file.Bind(1, hashed.info.digest)
        .Bind(2, entry.path)
        .Bind(3, int64_t{entry.mode})
        .Bind(4, entry.blob_digest);
    RETURN_IF_ERROR(file.Run());
  }
  return absl::OkStatus();
}

// NotFound unless bundle `digest` is stored.
absl::Status CheckBundleStored(Connection& db, const std::string& digest) {
  ASSIGN_OR_RETURN(Statement exists, db.Prepare("SELECT 1 FROM bundles WHERE digest = ?1"));
  exists.Bind(1, digest);
  ASSIGN_OR_RETURN(bool stored, exists.Step());
  if (!stored) return absl::NotFoundError(absl::StrCat("bundle ", digest, " is not stored"));
  return absl::OkStatus();
}

// --- runs ---------------------------------------------------------------------------------------

constexpr char kRunColumns[] =
    "id, workflow_name, workflow_version, workflow_yaml, file_name, coalesce(bundle_digest, ''), "
    "parameters, "
    "phase, message, request_id, stopping, created_at_ms, started_at_ms, finished_at_ms, "
    "last_sequence, labels, namespace, submitted_by";

absl::StatusOr<RunRecord> ReadRun(const Statement& row) {
  RunRecord run;
  run.id = row.Text(0);
  run.workflow_name = row.Text(1);
  run.workflow_version = row.Int(2);
  run.workflow_yaml = row.Text(3);
  run.file_name = row.Text(4);
  run.bundle_digest = row.Text(5);
  try {
    run.parameters = nlohmann::json::parse(row.Text(6)).get<std::map<std::string, std::string>>();
  } catch (const nlohmann::json::exception& e) {
    return absl::DataLossError(
        absl::StrCat("unreadable parameters stored for run ", run.id, ": ", e.what()));
  }
  ASSIGN_OR_RETURN(run.phase, ParsePhaseColumn(row.Text(7), "run " + run.id));
  run.message = row.Text(8);
  run.request_id = row.Text(9);
  const int64_t stopping = row.Int(10);
  run.stop = stopping == 0   ? engine::StopStrategy::kNone
             : stopping == 2 ? engine::StopStrategy::kStop
                             : engine::StopStrategy::kTerminate;
  run.created_at_ms = row.Int(11);
  run.started_at_ms = row.Int(12);
  run.finished_at_ms = row.Int(13);
  run.last_sequence = row.Int(14);
  try {
    run.labels = nlohmann::json::parse(row.Text(15)).get<std::map<std::string, std::string>>();
  } catch (const nlohmann::json::exception& e) {
    return absl::DataLossError(
        absl::StrCat("unreadable labels stored for run ", run.id, ": ", e.what()));
  }
  run.namespace_name = row.Text(16);
  run.submitted_by = row.Text(17);
  return run;
}

absl::StatusOr<std::vector<RunRecord>> ReadRuns(Statement& stmt) {
  std::vector<RunRecord> runs;
  while (true) {
    ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) return runs;
    ASSIGN_OR_RETURN(RunRecord run, ReadRun(stmt));
    runs.push_back(std::move(run));
  }
}

absl::Status UpsertRun(Connection& db, const RunRecord& run) {
  if (run.id.empty()) return absl::InvalidArgumentError("a run needs an id");
  // ON CONFLICT(id) rather than INSERT OR REPLACE: REPLACE would also delete another run that
  // holds the same request id, where a duplicate must fail with AlreadyExists instead.
  // last_sequence never goes back: events committed meanwhile may have raised it.
  ASSIGN_OR_RETURN(Statement stmt, db.Prepare(R"sql(
INSERT INTO runs (id, workflow_name, workflow_version, workflow_yaml, file_name, bundle_digest,
                  parameters, phase, message, request_id, stopping, created_at_ms, started_at_ms,
                  finished_at_ms, last_sequence, labels, namespace, submitted_by)
VALUES (?1, ?2, ?3, ?4, ?5, nullif(?6, ''), ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17,
        ?18)
ON CONFLICT (id) DO UPDATE SET
  workflow_name = excluded.workflow_name, workflow_version = excluded.workflow_version,
  workflow_yaml = excluded.workflow_yaml, file_name = excluded.file_name,
  bundle_digest = excluded.bundle_digest, parameters = excluded.parameters,
  phase = excluded.phase,
  message = excluded.message, request_id = excluded.request_id, stopping = excluded.stopping,
  created_at_ms = excluded.created_at_ms, started_at_ms = excluded.started_at_ms,
  finished_at_ms = excluded.finished_at_ms,
  last_sequence = max(last_sequence, excluded.last_sequence), labels = excluded.labels,
  namespace = excluded.namespace, submitted_by = excluded.submitted_by
)sql"));
  stmt.Bind(1, run.id)
      .Bind(2, run.workflow_name)
      .Bind(3, run.workflow_version)
      .Bind(4, run.workflow_yaml)
      .Bind(5, run.file_name)
      .Bind(6, run.bundle_digest)
      .Bind(7, JsonText(run.parameters))
      .Bind(8, engine::NodePhaseName(run.phase))
      .Bind(9, run.message)
      .Bind(10, run.request_id)
      .Bind(11, int64_t{run.stop == engine::StopStrategy::kNone   ? 0
                        : run.stop == engine::StopStrategy::kStop ? 2
                                                                  : 1})
      .Bind(12, run.created_at_ms)
      .Bind(13, run.started_at_ms)
      .Bind(14, run.finished_at_ms)
      .Bind(15, run.last_sequence)
      .Bind(16, JsonText(run.labels))
      .Bind(17, run.namespace_name)
      .Bind(18, run.submitted_by);
  absl::Status status = stmt.Run();
  if (status.code() == absl::StatusCode::kAlreadyExists) {
    return absl::AlreadyExistsError(
        absl::StrCat("run ", run.id, ": request id \"", run.request_id, "\" is already used"));
  }
  if (status.code() == absl::StatusCode::kFailedPrecondition && !run.bundle_digest.empty()) {
    // The only foreign key of a run.
    return absl::FailedPreconditionError(
        absl::StrCat("run ", run.id, ": bundle ", run.bundle_digest, " is not stored"));
  }
  return status;
}

// --- nodes, events, logs ------------------------------------------------------------------------

absl::Status UpsertNode(Connection& db, const std::string& run_id, const engine::NodeState& node) {
  ASSIGN_OR_RETURN(Statement stmt, db.Prepare(R"sql(
INSERT INTO nodes (run_id, name, phase, type, template_name, parent, started_at_ms,
                   finished_at_ms, state)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
ON CONFLICT (run_id, name) DO UPDATE SET
  phase = excluded.phase, type = excluded.type, template_name = excluded.template_name,
  parent = excluded.parent, started_at_ms = excluded.started_at_ms,
  finished_at_ms = excluded.finished_at_ms, state = excluded.state
)sql"));
  stmt.Bind(1, run_id)
      .Bind(2, node.name)
      .Bind(3, engine::NodePhaseName(node.phase))
      .Bind(4, engine::NodeTypeName(node.type))
      .Bind(5, node.template_name)
      .Bind(6, node.parent)
      .Bind(7, node.started_at_ms)
      .Bind(8, node.finished_at_ms)
      .Bind(9, JsonText(NodeStateToJson(node)));
  absl::Status status = stmt.Run();
  if (status.code() == absl::StatusCode::kFailedPrecondition) {
    return absl::FailedPreconditionError(
        absl::StrCat("node ", node.name, ": run ", run_id, " is not stored: ", status.message()));
  }
  RETURN_IF_ERROR(status);

  // The attempts table mirrors node.attempts exactly: rewrite the node's rows.
  ASSIGN_OR_RETURN(Statement clear,
                   db.Prepare("DELETE FROM attempts WHERE run_id = ?1 AND node_name = ?2"));
  RETURN_IF_ERROR(clear.Bind(1, run_id).Bind(2, node.name).Run());
  for (const engine::AttemptRecord& attempt : node.attempts) {
    ASSIGN_OR_RETURN(Statement insert, db.Prepare(R"sql(
INSERT INTO attempts (run_id, node_name, number, phase, runner, external_name, exit_code, message,
                      started_at_ms, finished_at_ms)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
)sql"));
    insert.Bind(1, run_id)
        .Bind(2, node.name)
        .Bind(3, int64_t{attempt.number})
        .Bind(4, engine::NodePhaseName(attempt.phase))
        .Bind(5, attempt.runner)
        .Bind(6, attempt.external_name)
        .Bind(7, int64_t{attempt.exit_code})
        .Bind(8, attempt.message)
        .Bind(9, attempt.started_at_ms)
        .Bind(10, attempt.finished_at_ms);
    status = insert.Run();
    if (status.code() == absl::StatusCode::kAlreadyExists) {
      return absl::InvalidArgumentError(
          absl::StrCat("node ", node.name, ": attempt number ", attempt.number, " appears twice"));
    }
    RETURN_IF_ERROR(status);
  }
  return absl::OkStatus();
}

absl::Status InsertEvents(Connection& db, const std::vector<EventRecord>& events) {
  std::map<std::string, int64_t> last_sequence;  // per run, to raise runs.last_sequence
  for (const EventRecord& event : events) {
    ASSIGN_OR_RETURN(Statement stmt, db.Prepare(R"sql(
INSERT INTO events (run_id, sequence, time_ms, node_name, type, phase, message, attempt)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
)sql"));
    stmt.Bind(1, event.run_id)
        .Bind(2, event.sequence)
        .Bind(3, event.time_ms)
        .Bind(4, event.node_name)
        .Bind(5, event.type)
        .Bind(6, engine::NodePhaseName(event.phase))
        .Bind(7, event.message)
        .Bind(8, int64_t{event.attempt});
    absl::Status status = stmt.Run();
    if (status.code() == absl::StatusCode::kAlreadyExists) {
      return absl::AlreadyExistsError(absl::StrCat("run ", event.run_id, ": event sequence ",
                                                   event.sequence, " is already stored"));
    }
    if (status.code() == absl::StatusCode::kFailedPrecondition) {
      return absl::FailedPreconditionError(
          absl::StrCat("event ", event.sequence, ": run ", event.run_id, " is not stored"));
    }
    RETURN_IF_ERROR(status);
    int64_t& last = last_sequence[event.run_id];
    last = std::max(last, event.sequence);
  }
  for (const auto& [run_id, sequence] : last_sequence) {
    ASSIGN_OR_RETURN(Statement stmt,
                     db.Prepare("UPDATE runs SET last_sequence = max(last_sequence, ?2) "
                                "WHERE id = ?1"));
    RETURN_IF_ERROR(stmt.Bind(1, run_id).Bind(2, sequence).Run());
  }
  return absl::OkStatus();
}

// The next per-run sequence number of `table` (log_chunks, ansible_events). Sequences continue
// from the highest stored one of each run (an index seek), read inside the writing transaction
// so that a rolled-back batch leaves no gap behind in memory; `last` caches them per batch.
absl::StatusOr<int64_t> NextSequence(Connection& db, const char* table, const std::string& run_id,
                                     std::map<std::string, int64_t>& last) {
  auto it = last.find(run_id);
  if (it == last.end()) {
    ASSIGN_OR_RETURN(Statement max,
                     db.Prepare(absl::StrCat("SELECT coalesce(max(sequence), 0) FROM ", table,
                                             " WHERE run_id = ?1")));
    max.Bind(1, run_id);
    ASSIGN_OR_RETURN(bool row, max.Step());
    DAGD_CHECK(row);  // an aggregate always returns a row
    it = last.emplace(run_id, max.Int(0)).first;
  }
  return ++it->second;
}

absl::Status InsertLogs(Connection& db, const std::vector<LogChunkRecord>& logs) {
  std::map<std::string, int64_t> last_sequence;
  for (const LogChunkRecord& chunk : logs) {
    ASSIGN_OR_RETURN(int64_t sequence, NextSequence(db, "log_chunks", chunk.run_id, last_sequence));
    ASSIGN_OR_RETURN(Statement stmt, db.Prepare(R"sql(
INSERT INTO log_chunks (run_id, sequence, node_name, attempt, stream, data, time_ms)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
)sql"));
    stmt.Bind(1, chunk.run_id)
        .Bind(2, sequence)
        .Bind(3, chunk.node_name)
        .Bind(4, int64_t{chunk.attempt})
        .Bind(5, chunk.stream)
        .BindBlob(6, chunk.data)
        .Bind(7, chunk.time_ms);
    absl::Status status = stmt.Run();
    if (status.code() == absl::StatusCode::kFailedPrecondition) {
      return absl::FailedPreconditionError(
          absl::StrCat("log chunk: run ", chunk.run_id, " is not stored"));
    }
    RETURN_IF_ERROR(status);
  }
  return absl::OkStatus();
}

absl::Status InsertAuditRecords(Connection& db, const std::vector<AuditRecord>& records) {
  for (const AuditRecord& r : records) {
    ASSIGN_OR_RETURN(Statement stmt, db.Prepare(R"sql(
INSERT INTO audit_log (time_ms, principal, auth_method, method, namespace, target, request_id,
                       code, message, peer)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
)sql"));
    stmt.Bind(1, r.time_ms)
        .Bind(2, r.principal)
        .Bind(3, r.auth_method)
        .Bind(4, r.method)
        .Bind(5, r.namespace_name)
        .Bind(6, r.target)
        .Bind(7, r.request_id)
        .Bind(8, r.code)
        .Bind(9, r.message)
        .Bind(10, r.peer);
    RETURN_IF_ERROR(stmt.Run());
  }
  return absl::OkStatus();
}

absl::Status InsertAnsibleEvents(Connection& db, const std::vector<AnsibleEventRecord>& events) {
  std::map<std::string, int64_t> last_sequence;
  for (const AnsibleEventRecord& event : events) {
    ASSIGN_OR_RETURN(int64_t sequence,
                     NextSequence(db, "ansible_events", event.run_id, last_sequence));
    ASSIGN_OR_RETURN(Statement stmt, db.Prepare(R"sql(
INSERT INTO ansible_events (run_id, sequence, node_name, attempt, time_ms, kind, host, task, play,
                            changed, failed, item, payload)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)
)sql"));
    stmt.Bind(1, event.run_id)
        .Bind(2, sequence)
        .Bind(3, event.node_name)
        .Bind(4, int64_t{event.attempt})
        .Bind(5, event.time_ms)
        .Bind(6, event.kind)
        .Bind(7, event.host)
        .Bind(8, event.task)
        .Bind(9, event.play)
        .Bind(10, int64_t{event.changed})
        .Bind(11, int64_t{event.failed})
        .Bind(12, event.item)
        .Bind(13, event.payload);
    absl::Status status = stmt.Run();
    if (status.code() == absl::StatusCode::kFailedPrecondition) {
      return absl::FailedPreconditionError(
          absl::StrCat("ansible event: run ", event.run_id, " is not stored"));
    }
    RETURN_IF_ERROR(status);
  }
  return absl::OkStatus();
}

absl::Status UpsertMemoEntries(Connection& db, const std::vector<MemoRecord>& entries) {
  for (const MemoRecord& entry : entries) {
    ASSIGN_OR_RETURN(Statement stmt, db.Prepare(R"sql(
INSERT OR REPLACE INTO memo_cache (cache, key, outputs, saved_at_ms, node)
VALUES (?1, ?2, ?3, ?4, ?5)
)sql"));
    stmt.Bind(1, entry.cache)
        .Bind(2, entry.key)
        .Bind(3, JsonText(NodeOutputsToJson(entry.outputs)))
        .Bind(4, entry.saved_at_ms)
        .Bind(5, entry.node);
    RETURN_IF_ERROR(stmt.Run());
  }
  return absl::OkStatus();
}

absl::Status ApplyBatch(Connection& db, const WriteBatch& batch) {
  if ((!batch.nodes.empty() || !batch.removed_nodes.empty()) && batch.node_run_id.empty()) {
    return absl::InvalidArgumentError("a batch with nodes needs node_run_id");
  }
  for (const RunRecord& run : batch.runs) RETURN_IF_ERROR(UpsertRun(db, run));
  for (const std::string& name : batch.removed_nodes) {
    for (const char* sql : {"DELETE FROM attempts WHERE run_id = ?1 AND node_name = ?2",
                            "DELETE FROM nodes WHERE run_id = ?1 AND name = ?2"}) {
      ASSIGN_OR_RETURN(Statement stmt, db.Prepare(sql));
      stmt.Bind(1, batch.node_run_id).Bind(2, name);
      RETURN_IF_ERROR(stmt.Run());
    }
  }
  for (const engine::NodeState& node : batch.nodes) {
    RETURN_IF_ERROR(UpsertNode(db, batch.node_run_id, node));
  }
  RETURN_IF_ERROR(InsertEvents(db, batch.events));
  RETURN_IF_ERROR(InsertLogs(db, batch.logs));
  RETURN_IF_ERROR(InsertAnsibleEvents(db, batch.ansible_events));
  RETURN_IF_ERROR(InsertAuditRecords(db, batch.audit_records));
  return UpsertMemoEntries(db, batch.memo_entries);
}

// --- ListRuns order and page tokens
// ----------------------------------------------------------------

// The SQL value runs are sorted by, for each RunOrder.
const char* OrderExpression(RunOrder order) {
  switch (order) {
    case RunOrder::kFinished:
      return "finished_at_ms";
    case RunOrder::kDuration:
      return "(CASE WHEN finished_at_ms > 0 THEN finished_at_ms - started_at_ms ELSE -1 END)";
    case RunOrder::kCreated:
    default:
      return "created_at_ms";
  }
}

int64_t OrderValue(RunOrder order, const RunRecord& run) {
  switch (order) {
    case RunOrder::kFinished:
      return run.finished_at_ms;
    case RunOrder::kDuration:
      return run.finished_at_ms > 0 ? run.finished_at_ms - run.started_at_ms : -1;
    case RunOrder::kCreated:
    default:
      return run.created_at_ms;
  }
}

// The order a token belongs to, "created-", "duration+", …: a token of one order is no
// position in another.
std::string OrderTag(const RunFilter& filter) {
  const char* name = filter.order == RunOrder::kFinished   ? "finished"
                     : filter.order == RunOrder::kDuration ? "duration"
                                                           : "created";
  return absl::StrCat(name, filter.descending ? "-" : "+");
}

// Web-safe base64 of "<order tag>:<sort value>:<id>" of the page's last run.
std::string EncodePageToken(const RunFilter& filter, const RunRecord& last) {
  return absl::WebSafeBase64Escape(
      absl::StrCat(OrderTag(filter), ":", OrderValue(filter.order, last), ":", last.id));
}

absl::Status DecodePageToken(const RunFilter& filter, int64_t* value, std::string* id) {
  const std::string& token = filter.page_token;
  const auto invalid = [&] {
    return absl::InvalidArgumentError(absl::StrCat("invalid page token \"", token, "\""));
  };
  std::string text;
  if (!absl::WebSafeBase64Unescape(token, &text)) return invalid();
  const size_t first = text.find(':');
  const size_t second = first == std::string::npos ? first : text.find(':', first + 1);
  if (second == std::string::npos ||
      !absl::SimpleAtoi(absl::string_view(text).substr(first + 1, second - first - 1), value)) {
    return invalid();
  }
  if (text.substr(0, first) != OrderTag(filter)) {
    return absl::InvalidArgumentError(
        absl::StrCat("page token \"", token, "\" belongs to another order_by"));
  }
  *id = text.substr(second + 1);
  return absl::OkStatus();
}

}  // namespace

// --- read connections ---------------------------------------------------------------------------

class SqliteStore::ReadLease {
 public:
  ReadLease(SqliteStore* store, std::unique_ptr<Connection> connection)
      : store_(store), connection_(std::move(connection)) {}
  ReadLease(ReadLease&&) = default;
  ReadLease& operator=(ReadLease&&) = delete;
  ~ReadLease() {
    if (connection_ != nullptr) store_->ReturnReader(std::move(connection_));
  }
  Connection& operator*() { return *connection_; }
  Connection* operator->() { return connection_.get(); }

 private:
  SqliteStore* store_;
  std::unique_ptr<Connection> connection_;
};

absl::StatusOr<SqliteStore::ReadLease> SqliteStore::LeaseReader() {
  {
    absl::MutexLock lock(&readers_mu_);
    if (!idle_readers_.empty()) {
      std::unique_ptr<Connection> connection = std::move(idle_readers_.back());
      idle_readers_.pop_back();
      return ReadLease(this, std::move(connection));
    }
  }
  ASSIGN_OR_RETURN(std::unique_ptr<Connection> connection,
                   Connection::Open(options_.path, SQLITE_OPEN_READONLY, options_.busy_timeout_ms));
  return ReadLease(this, std::move(connection));
}

void SqliteStore::ReturnReader(std::unique_ptr<Connection> connection) {
  absl::MutexLock lock(&readers_mu_);
  if (static_cast<int>(idle_readers_.size()) < options_.idle_read_connections) {
    idle_readers_.push_back(std::move(connection));
  }
}

// --- opening ------------------------------------------------------------------------------------

absl::StatusOr<std::unique_ptr<SqliteStore>> SqliteStore::Open(const SqliteStoreOptions& options) {
  ASSIGN_OR_RETURN(std::unique_ptr<Connection> db,
                   Connection::Open(options.path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
                                    options.busy_timeout_ms));
  {
    ASSIGN_OR_RETURN(Statement wal, db->Prepare("PRAGMA journal_mode = WAL"));
    ASSIGN_OR_RETURN(bool row, wal.Step());
    if (!row || wal.Text(0) != "wal") {
      return absl::UnavailableError(
          absl::StrCat("cannot put database ", options.path, " in WAL mode"));
    }
  }
  RETURN_IF_ERROR(db->Exec("PRAGMA foreign_keys = ON"));
  RETURN_IF_ERROR(db->Exec(
      absl::StrCat("PRAGMA synchronous = ", options.synchronous_full ? "FULL" : "NORMAL")));
  if (options.max_page_count > 0) {
    RETURN_IF_ERROR(db->Exec(absl::StrCat("PRAGMA max_page_count = ", options.max_page_count)));
  }
  ASSIGN_OR_RETURN(int applied, ApplyMigrations(*db, Migrations()));
  Logger()->info("opened {} (schema version {}, {} migration(s) applied)", options.path,
                 LatestSchemaVersion(), applied);
  return std::unique_ptr<SqliteStore>(new SqliteStore(options, std::move(db)));
}

namespace {

// The database file plus its write-ahead log, in bytes (a missing file counts 0).
double DatabaseBytes(const std::string& path) {
  double total = 0;
  for (const std::string& file : {path, path + "-wal"}) {
    struct stat st {};
    if (stat(file.c_str(), &st) == 0) total += static_cast<double>(st.st_size);
  }
  return total;
}

metrics::Histogram* DeclareCommitDuration(metrics::Registry* registry) {
  if (registry == nullptr) return nullptr;
  return &registry
              ->AddHistogram("dagd_storage_commit_duration_seconds",
                             "One group commit, BEGIN to COMMIT (fsync included).", {},
                             metrics::LatencyBuckets())
              ->Get();
}

metrics::Counter* DeclareCommitErrors(metrics::Registry* registry, const std::string& path) {
  if (registry == nullptr) return nullptr;
  metrics::Gauge* size = &registry
                              ->AddGauge("dagd_storage_database_bytes",
                                         "The database file plus its write-ahead log, in bytes.")
                              ->Get();
  registry->OnCollect([size, path] { size->Set(DatabaseBytes(path)); });
  return &registry
              ->AddCounter("dagd_storage_commit_errors_total",
                           "Group commits rolled back (full disk, I/O error, lock, corruption).")
              ->Get();
}

}  // namespace

SqliteStore::SqliteStore(SqliteStoreOptions options, std::unique_ptr<Connection> writer)
    : options_(std::move(options)),
      writer_db_(std::move(writer)),
      commit_duration_(DeclareCommitDuration(options_.metrics)),
      commit_errors_(DeclareCommitErrors(options_.metrics, options_.path)),
      writer_([this] { WriterLoop(); }) {}

SqliteStore::~SqliteStore() {
  {
    absl::MutexLock lock(&queue_mu_);
    stopping_ = true;
  }
  writer_.join();
}

// --- the writer ---------------------------------------------------------------------------------

void SqliteStore::Enqueue(WriteOp op) {
  absl::MutexLock lock(&queue_mu_);
  queue_.push_back(std::move(op));
}

void SqliteStore::WriterLoop() {
  const size_t cap = static_cast<size_t>(std::max(1, options_.max_batches_per_commit));
  while (true) {
    std::vector<WriteOp> ops;
    {
      absl::MutexLock lock(&queue_mu_);
      auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(queue_mu_) {
        return !queue_.empty() || stopping_;
      };
      queue_mu_.Await(absl::Condition(&ready));
      if (queue_.empty()) return;  // stopping, and everything queued is committed
      const size_t n = std::min(cap, queue_.size());
      ops.reserve(n);
      for (size_t i = 0; i < n; ++i) {
        ops.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    std::vector<absl::Status> results = CommitGroup(ops);
    for (size_t i = 0; i < ops.size(); ++i) {
      if (ops[i].done) ops[i].done(results[i]);
    }
  }
}

std::vector<absl::Status> SqliteStore::CommitGroup(std::vector<WriteOp>& ops) {
  Connection& db = *writer_db_;
  std::vector<absl::Status> results(ops.size());
  const auto start = std::chrono::steady_clock::now();
  auto fail_all = [&](const absl::Status& cause) {
    if (commit_errors_ != nullptr) commit_errors_->Increment();
    if (db.in_transaction()) db.Exec("ROLLBACK").IgnoreError();
    absl::Status status(cause.code(), absl::StrCat("transaction of ", ops.size(),
                                                   " batch(es) rolled back: ", cause.message()));
    Logger()->error("{}", status.ToString());
    std::fill(results.begin(), results.end(), status);
    return results;
  };

  absl::Status status = db.Exec("BEGIN IMMEDIATE");
  if (!status.ok()) return fail_all(status);
  for (size_t i = 0; i < ops.size(); ++i) {
    status = db.Exec("SAVEPOINT item");
    if (status.ok()) status = ops[i].apply(db);
    if (status.ok()) {
      status = db.Exec("RELEASE item");
      if (!status.ok()) return fail_all(status);
      continue;
    }
    if (!IsItemError(status) || !db.in_transaction()) return fail_all(status);
    absl::Status undo = db.Exec("ROLLBACK TO item; RELEASE item");
    if (!undo.ok()) return fail_all(undo);
    results[i] = status;
  }
  status = db.Exec("COMMIT");
  if (!status.ok()) return fail_all(status);
  commits_.fetch_add(1);
  if (commit_duration_ != nullptr) {
    commit_duration_->Observe(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  return results;
}

void SqliteStore::Submit(WriteBatch batch, std::function<void(absl::Status)> done) {
  auto shared = std::make_shared<const WriteBatch>(std::move(batch));
  Enqueue(WriteOp{[shared](Connection& db) { return ApplyBatch(db, *shared); }, std::move(done)});
}

absl::Status SqliteStore::RunOnWriter(std::function<absl::Status(Connection&)> apply) {
  absl::Notification finished;
  absl::Status result;
  Enqueue(WriteOp{std::move(apply), [&](absl::Status status) {
                    result = std::move(status);
                    finished.Notify();
                  }});
  finished.WaitForNotification();
  return result;
}

absl::Status SqliteStore::Write(WriteBatch batch) {
  return RunOnWriter([&batch](Connection& db) { return ApplyBatch(db, batch); });
}

// --- workflows ----------------------------------------------------------------------------------

namespace {

// One document of PutWorkflows, inside its transaction: a new version unless the latest one is
// the same. The bundle is inserted with the first new version (*bundle_stored).
absl::StatusOr<WorkflowRecord> PutWorkflowVersion(Connection& db, const WorkflowDocument& document,
                                                  const std::vector<BundleFile>& bundle,
                                                  const HashedBundle& hashed, int64_t now_ms,
                                                  bool* bundle_stored, bool* inserted) {
  const std::string& name = document.name;
  const std::string& yaml = document.yaml;
  const std::string& entrypoint = document.entrypoint;
  WorkflowRecord record;
  {
    ASSIGN_OR_RETURN(Statement latest,
                     db.Prepare(absl::StrCat(
                         kSelectWorkflow, " WHERE w.name = ?1 ORDER BY w.version DESC LIMIT 1")));
    latest.Bind(1, name);
    ASSIGN_OR_RETURN(bool found, latest.Step());
    int64_t last_version = 0;
    if (found) {
      WorkflowRecord previous = ReadWorkflow(latest);
      last_version = previous.version;
      const bool deleted = latest.Int(9) != 0;
      if (!deleted && previous.namespace_name != document.namespace_name) {
        return absl::AlreadyExistsError(absl::StrCat(
            "workflow ", name, " belongs to namespace ", previous.namespace_name,
            " (names are unique across namespaces): choose another name, or delete it there "
            "first"));
      }
      if (!deleted && previous.yaml == yaml && previous.entrypoint == entrypoint &&
          previous.bundle.digest == hashed.info.digest) {
        return previous;
      }
    }
    // The bundle first, in the same transaction: the version's foreign key needs it.
    if (!*bundle_stored) RETURN_IF_ERROR(InsertBundle(db, bundle, hashed, now_ms));
    *bundle_stored = true;
    // Versions are never reused, not even after a delete: runs name (workflow, version).
    record = WorkflowRecord{.name = name,
                            .version = last_version + 1,
                            .yaml = yaml,
                            .spec_sha256 = Sha256Hex(yaml),
                            .entrypoint = entrypoint,
                            .bundle = hashed.info,
                            .created_at_ms = now_ms,
                            .namespace_name = document.namespace_name};
    ASSIGN_OR_RETURN(Statement insert,
                     db.Prepare("INSERT INTO workflows (name, version, yaml, spec_sha256, "
                                "entrypoint, bundle_digest, created_at_ms, namespace) "
                                "VALUES (?1, ?2, ?3, ?4, ?5, nullif(?6, ''), ?7, ?8)"));
    insert.Bind(1, record.name)
        .Bind(2, record.version)
        .Bind(3, record.yaml)
        .Bind(4, record.spec_sha256)
        .Bind(5, record.entrypoint)
        .Bind(6, record.bundle.digest)
        .Bind(7, record.created_at_ms)
        .Bind(8, record.namespace_name);
    RETURN_IF_ERROR(insert.Run());
  }
  *inserted = true;
  return record;
}

}  // namespace

absl::StatusOr<std::vector<WorkflowRecord>> SqliteStore::PutWorkflows(
    const std::vector<WorkflowDocument>& documents, std::vector<BundleFile> bundle, int64_t now_ms,
    std::vector<bool>* created) {
  std::set<std::string> names;
  for (const WorkflowDocument& document : documents) {
    if (document.name.empty()) return absl::InvalidArgumentError("a workflow needs a name");
    if (!names.insert(document.name).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("two documents are named \"", document.name, "\""));
    }
  }
  // Hashing up to the bundle limit takes a while: not on the writer thread.
  ASSIGN_OR_RETURN(const HashedBundle hashed, PrepareBundle(bundle));
  std::vector<WorkflowRecord> records;
  std::vector<bool> inserted;
  RETURN_IF_ERROR(RunOnWriter([&](Connection& db) -> absl::Status {
    records.clear();
    inserted.clear();
    bool bundle_stored = false;
    for (const WorkflowDocument& document : documents) {
      bool added = false;
      ASSIGN_OR_RETURN(WorkflowRecord record, PutWorkflowVersion(db, document, bundle, hashed,
                                                                 now_ms, &bundle_stored, &added));
      records.push_back(std::move(record));
      inserted.push_back(added);
    }
    return absl::OkStatus();
  }));
  if (created != nullptr) *created = std::move(inserted);
  return records;
}

absl::Status SqliteStore::DeleteWorkflow(const std::string& name) {
  return RunOnWriter([&](Connection& db) -> absl::Status {
    ASSIGN_OR_RETURN(
        Statement stmt,
        db.Prepare("UPDATE workflows SET deleted = 1 WHERE name = ?1 AND deleted = 0"));
    RETURN_IF_ERROR(stmt.Bind(1, name).Run());
    if (db.changes() == 0)
      return absl::NotFoundError(absl::StrCat("workflow ", name, " not found"));
    return absl::OkStatus();
  });
}

absl::StatusOr<WorkflowRecord> SqliteStore::GetWorkflow(const std::string& name, int64_t version) {
  ASSIGN_OR_RETURN(ReadLease db, LeaseReader());
  const std::string sql =
      absl::StrCat(kSelectWorkflow, " WHERE w.name = ?1 AND w.deleted = 0",
                   version == 0 ? " ORDER BY w.version DESC LIMIT 1" : " AND w.version = ?2");
  ASSIGN_OR_RETURN(Statement stmt, db->Prepare(sql));
  stmt.Bind(1, name);
  if (version != 0) stmt.Bind(2, version);
  ASSIGN_OR_RETURN(bool found, stmt.Step());
  if (!found) {
    return absl::NotFoundError(
        version == 0 ? absl::StrCat("workflow ", name, " not found")
                     : absl::StrCat("workflow ", name, " version ", version, " not found"));
  }
  return ReadWorkflow(stmt);
}

absl::StatusOr<std::vector<WorkflowRecord>> SqliteStore::ListWorkflows(
    const std::string& after_name, int limit, const std::vector<std::string>& namespaces) {
  ASSIGN_OR_RETURN(ReadLease db, LeaseReader());
  ASSIGN_OR_RETURN(
      Statement stmt,
      db->Prepare(absl::StrCat(
          kSelectWorkflow,
          " WHERE w.deleted = 0 AND w.name > ?1 AND w.version = "
          "(SELECT max(version) FROM workflows WHERE name = w.name) ",
          namespaces.empty() ? "" : "AND w.namespace IN (SELECT value FROM json_each(?3)) ",
          "ORDER BY w.name LIMIT ?2")));
  stmt.Bind(1, after_name).Bind(2, int64_t{ClampLimit(limit, kDefaultListLimit)});
  if (!namespaces.empty()) stmt.Bind(3, nlohmann::json(namespaces).dump());
  std::vector<WorkflowRecord> workflows;
  while (true) {
    ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) return workflows;
    workflows.push_back(ReadWorkflow(stmt));
  }
}

// --- bundles ------------------------------------------------------------------------------------

absl::StatusOr<BundleInfo> SqliteStore::PutBundle(std::vector<BundleFile> bundle, int64_t now_ms) {
  ASSIGN_OR_RETURN(const HashedBundle hashed, PrepareBundle(bundle));
  if (hashed.info.digest.empty()) return hashed.info;
  RETURN_IF_ERROR(
      RunOnWriter([&](Connection& db) { return InsertBundle(db, bundle, hashed, now_ms); }));
  return hashed.info;
}

absl::StatusOr<std::vector<BundleEntry>> SqliteStore::GetBundleManifest(const std::string& digest) {
  std::vector<BundleEntry> entries;
  if (digest.empty()) return entries;
  ASSIGN_OR_RETURN(ReadLease db, LeaseReader());
  RETURN_IF_ERROR(CheckBundleStored(*db, digest));
  ASSIGN_OR_RETURN(Statement stmt, db->Prepare(R"sql(
SELECT f.path, f.mode, f.blob_digest, coalesce(b.size, -1)
FROM bundle_files f LEFT JOIN blobs b ON b.digest = f.blob_digest
WHERE f.bundle_digest = ?1 ORDER BY f.path
)sql"));
  stmt.Bind(1, digest);
  while (true) {
    ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) return entries;
    entries.push_back(BundleEntry{.path = stmt.Text(0),
                                  .mode = static_cast<uint32_t>(stmt.Int(1)),
                                  .blob_digest = stmt.Text(2),
                                  .size = stmt.Int(3)});
  }
}

absl::StatusOr<std::vector<BundleFile>> SqliteStore::GetBundle(const std::string& digest) {
  std::vector<BundleFile> files;
  if (digest.empty()) return files;
  ASSIGN_OR_RETURN(ReadLease db, LeaseReader());
  RETURN_IF_ERROR(CheckBundleStored(*db, digest));
  ASSIGN_OR_RETURN(Statement stmt, db->Prepare(R"sql(
SELECT f.path, f.mode, f.blob_digest, b.content IS NULL, b.content
FROM bundle_files f LEFT JOIN blobs b ON b.digest = f.blob_digest
WHERE f.bundle_digest = ?1 ORDER BY f.path
)sql"));
  stmt.Bind(1, digest);
  std::vector<BundleEntry> entries;
  while (true) {
    ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) break;
    BundleEntry entry{.path = stmt.Text(0),
                      .mode = static_cast<uint32_t>(stmt.Int(1)),
                      .blob_digest = stmt.Text(2)};
    if (stmt.Int(3) != 0) {
      return absl::DataLossError(absl::StrCat("bundle ", digest, ": the content of \"", entry.path,
                                              "\" (blob ", entry.blob_digest, ") is missing from ",
                                              db->path()));
    }
    BundleFile& file = files.emplace_back(
        BundleFile{.path = entry.path, .mode = entry.mode, .content = stmt.Blob(4)});
    // SQLite keeps no checksums: a damaged page would otherwise run other bytes than submitted.
    if (Sha256Hex(file.content) != entry.blob_digest) {
      return absl::DataLossError(absl::StrCat("bundle ", digest, ": the content of \"", entry.path,
                                              "\" no longer matches its digest ", entry.blob_digest,
                                              " in ", db->path()));
    }
    entries.push_back(std::move(entry));
  }
  if (Sha256Hex(CanonicalBundleManifest(entries)) != digest) {
    return absl::DataLossError(absl::StrCat("bundle ", digest, ": its stored manifest (",
                                            entries.size(), " files) no longer matches its digest",
                                            " in ", db->path()));
  }
  return files;
}

// --- runs ---------------------------------------------------------------------------------------

absl::StatusOr<RunRecord> SqliteStore::GetRun(const std::string& run_id) {
  ASSIGN_OR_RETURN(ReadLease db, LeaseReader());
  ASSIGN_OR_RETURN(Statement stmt,
                   db->Prepare(absl::StrCat("SELECT ", kRunColumns, " FROM runs WHERE id = ?1")));
  stmt.Bind(1, run_id);
  ASSIGN_OR_RETURN(bool found, stmt.Step());
  if (!found) return absl::NotFoundError(absl::StrCat("run ", run_id, " not found"));
  return ReadRun(stmt);
}

absl::StatusOr<RunRecord> SqliteStore::GetRunByRequestId(const std::string& request_id) {
  if (request_id.empty()) return absl::NotFoundError("no run has an empty request id");
  ASSIGN_OR_RETURN(ReadLease db, LeaseReader());
  ASSIGN_OR_RETURN(Statement stmt, db->Prepare(absl::StrCat(
                                       "SELECT ", kRunColumns,
                                       " FROM runs WHERE request_id = ?1 AND request_id <> ''")));
  stmt.Bind(1, request_id);
  ASSIGN_OR_RETURN(bool found, stmt.Step());
  if (!found) {
    return absl::NotFoundError(absl::StrCat("no run has request id \"", request_id, "\""));
  }
  return ReadRun(stmt);
}

absl::StatusOr<RunPage> SqliteStore::ListRuns(const RunFilter& filter) {
  // The WHERE clause holds only the filters in use, so that SQLite can pick the index for them
  // (each variant is prepared once per connection).
  std::vector<std::string> conditions;
  std::vector<std::variant<int64_t, std::string>> params;
  auto param = [&params](auto value) {
    params.emplace_back(std::move(value));
    return absl::StrCat("?", params.size());
  };
  if (!filter.workflow_name.empty()) {
    conditions.push_back(absl::StrCat("workflow_name = ", param(filter.workflow_name)));
  }
  if (!filter.namespaces.empty()) {
    conditions.push_back(absl::StrCat("namespace IN (SELECT value FROM json_each(",
                                      param(nlohmann::json(filter.namespaces).dump()), "))"));
  }
  if (!filter.phases.empty()) {
    nlohmann::json phases = nlohmann::json::array();
    for (engine::NodePhase phase : filter.phases) phases.push_back(engine::NodePhaseName(phase));
    conditions.push_back(
        absl::StrCat("phase IN (SELECT value FROM json_each(", param(phases.dump()), "))"));
  }
  if (filter.created_after_ms != 0) {
    conditions.push_back(absl::StrCat("created_at_ms >= ", param(filter.created_after_ms)));
  }
  if (filter.created_before_ms != 0) {
    conditions.push_back(absl::StrCat("created_at_ms < ", param(filter.created_before_ms)));
  }
  for (const LabelRequirement& label : filter.labels) {
    const std::string key = param(label.key);
    switch (label.op) {
      case LabelRequirement::Op::kExists:
        conditions.push_back(
            absl::StrCat("EXISTS (SELECT 1 FROM json_each(runs.labels) WHERE key = ", key, ")"));
        break;
      case LabelRequirement::Op::kEquals:
      case LabelRequirement::Op::kNotEquals:
        conditions.push_back(
            absl::StrCat(label.op == LabelRequirement::Op::kEquals ? "" : "NOT ",
                         "EXISTS (SELECT 1 FROM json_each(runs.labels) WHERE key = ", key,
                         " AND value = ", param(label.value), ")"));
        break;
    }
  }
  const std::string order = OrderExpression(filter.order);
  const char* direction = filter.descending ? "DESC" : "ASC";
  if (!filter.page_token.empty()) {
    int64_t value = 0;
    std::string id;
    RETURN_IF_ERROR(DecodePageToken(filter, &value, &id));
    const std::string value_param = param(value);
    const std::string id_param = param(std::move(id));
    conditions.push_back(absl::StrCat("(", order, ", id) ", filter.descending ? "<" : ">", " (",
                                      value_param, ", ", id_param, ")"));
  }
  const int limit = ClampLimit(filter.limit, kDefaultListLimit);
  std::string sql = absl::StrCat("SELECT ", kRunColumns, " FROM runs");
  if (!conditions.empty()) absl::StrAppend(&sql, " WHERE ", absl::StrJoin(conditions, " AND "));
  // One extra row tells whether another page follows.
  absl::StrAppend(&sql, " ORDER BY ", order, " ", direction, ", id ", direction, " LIMIT ",
                  param(int64_t{limit + 1}));

  ASSIGN_OR_RETURN(ReadLease db, LeaseReader());
  ASSIGN_OR_RETURN(Statement stmt, db->Prepare(sql));
  for (size_t i = 0; i < params.size(); ++i) {
    std::visit([&](const auto& value) { stmt.Bind(static_cast<int>(i + 1), value); }, params[i]);
  }
  RunPage page;
  ASSIGN_OR_RETURN(page.runs, ReadRuns(stmt));
  if (static_cast<int>(page.runs.size()) > limit) {
    page.runs.resize(limit);
    page.next_page_token = EncodePageToken(filter, page.runs.back());
  }
  return page;
}

absl::StatusOr<std::vector<RunRecord>> SqliteStore::ListUnfinishedRuns() {
  ASSIGN_OR_RETURN(ReadLease db, LeaseReader());
  ASSIGN_OR_RETURN(Statement stmt, db->Prepare(absl::StrCat("SELECT ", kRunColumns,
                                                            " FROM runs "
                                                            "WHERE phase IN ('Pending', 'Running') "
                                                            "ORDER BY created_at_ms, id")));
  return ReadRuns(stmt);
}

absl::StatusOr<std::vector<engine::NodeState>> SqliteStore::GetNodes(const std::string& run_id) {
  ASSIGN_OR_RETURN(ReadLease db, LeaseReader());
  // rowid order is the order in which nodes were first stored (an upsert keeps the rowid).
  ASSIGN_OR_RETURN(Statement stmt,
                   db->Prepare("SELECT name, state FROM nodes WHERE run_id = ?1 ORDER BY rowid"));
  stmt.Bind(1, run_id);
  std::vector<engine::NodeState> nodes;
  while (true) {
    ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) return nodes;
    nlohmann::json json = nlohmann::json::parse(stmt.Text(1), nullptr, /*allow_exceptions=*/false);
    absl::StatusOr<engine::NodeState> node = NodeStateFromJson(json);
    if (!node.ok()) {
      return absl::DataLossError(absl::StrCat("node ", stmt.Text(0), " of run ", run_id,
                                              " is unreadable: ", node.status().message()));
    }
    nodes.push_back(*std::move(node));
  }
}

absl::StatusOr<std::vector<EventRecord>> SqliteStore::GetEvents(const std::string& run_id,
                                                                int64_t after_sequence, int limit) {
  ASSIGN_OR_RETURN(ReadLease db, LeaseReader());
  ASSIGN_OR_RETURN(Statement stmt, db->Prepare(R"sql(
SELECT run_id, sequence, time_ms, node_name, type, phase, message, attempt FROM events
WHERE run_id = ?1 AND sequence > ?2 ORDER BY sequence LIMIT ?3
)sql"));
  stmt.Bind(1, run_id)
      .Bind(2, after_sequence)
      .Bind(3, int64_t{ClampLimit(limit, kDefaultStreamLimit)});
  std::vector<EventRecord> events;
  while (true) {
    ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) return events;
    EventRecord event;
    event.run_id = stmt.Text(0);
    event.sequence = stmt.Int(1);
    event.time_ms = stmt.Int(2);
    event.node_name = stmt.Text(3);
    event.type = stmt.Text(4);
    ASSIGN_OR_RETURN(
        event.phase,
        ParsePhaseColumn(stmt.Text(5), absl::StrCat("event ", event.sequence, " of run ", run_id)));
    event.message = stmt.Text(6);
    event.attempt = static_cast<int>(stmt.Int(7));
    events.push_back(std::move(event));
  }
}

absl::StatusOr<std::vector<LogChunkRecord>> SqliteStore::GetLogs(const std::string& run_id,
                                                                 const std::string& node_name,
                                                                 int attempt,
                                                                 int64_t after_sequence,
                                                                 int limit) {
  std::string sql =
      "SELECT run_id, node_name, attempt, sequence, stream, data, time_ms FROM log_chunks "
      "WHERE run_id = ?1 AND sequence > ?2";
  if (!node_name.empty()) sql += " AND node_name = ?3";
  if (attempt != 0) sql += " AND attempt = ?4";
  sql += " ORDER BY sequence LIMIT ?5";
  ASSIGN_OR_RETURN(ReadLease db, LeaseReader());
  ASSIGN_OR_RETURN(Statement stmt, db->Prepare(sql));
  stmt.Bind(1, run_id).Bind(2, after_sequence);
  if (!node_name.empty()) stmt.Bind(3, node_name);
  if (attempt != 0) stmt.Bind(4, int64_t{attempt});
  stmt.Bind(5, int64_t{ClampLimit(limit, kDefaultStreamLimit)});
  std::vector<LogChunkRecord> logs;
  while (true) {
    ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) return logs;
    LogChunkRecord chunk;
    chunk.run_id = stmt.Text(0);
    chunk.node_name = stmt.Text(1);
    chunk.attempt = static_cast<int>(stmt.Int(2));
    chunk.sequence = stmt.Int(3);
    chunk.stream = stmt.Text(4);
    chunk.data = stmt.Blob(5);
    chunk.time_ms = stmt.Int(6);
    logs.push_back(std::move(chunk));
  }
}

absl::StatusOr<std::vector<MemoRecord>> SqliteStore::ListMemoEntries() {
  ASSIGN_OR_RETURN(ReadLease db, LeaseReader());
  ASSIGN_OR_RETURN(Statement stmt,
                   db->Prepare("SELECT cache, key, outputs, saved_at_ms, node FROM memo_cache "
                               "ORDER BY cache, key"));
  std::vector<MemoRecord> entries;
  while (true) {
    ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) return entries;
    MemoRecord entry;
    entry.cache = stmt.Text(0);
    entry.key = stmt.Text(1);
    nlohmann::json outputs = nlohmann::json::parse(stmt.Text(2), nullptr, false);
    absl::StatusOr<engine::NodeOutputs> parsed = NodeOutputsFromJson(outputs);
    if (!parsed.ok()) {
      return absl::DataLossError(absl::StrCat("memo_cache entry ", entry.cache, "/", entry.key,
                                              " in ", options_.path, ": ",
                                              parsed.status().message()));
    }
    entry.outputs = *std::move(parsed);
    entry.saved_at_ms = stmt.Int(3);
    entry.node = stmt.Text(4);
    entries.push_back(std::move(entry));
  }
}

absl::StatusOr<std::vector<AnsibleEventRecord>> SqliteStore::GetAnsibleEvents(
    const std::string& run_id, const AnsibleEventFilter& filter, int64_t after_sequence,
    int limit) {
  std::string sql =
      "SELECT run_id, sequence, node_name, attempt, time_ms, kind, host, task, play, changed, "
      "failed, item, payload FROM ansible_events WHERE run_id = ?1 AND sequence > ?2";
  if (!filter.node_name.empty()) sql += " AND node_name = ?3";
  if (!filter.host.empty()) sql += " AND host = ?4";
  if (filter.changed_only) sql += " AND changed = 1";
  if (filter.failed_only) sql += " AND failed = 1";
  if (!filter.kind.empty()) sql += " AND kind = ?6";
  sql += " ORDER BY sequence LIMIT ?5";
  ASSIGN_OR_RETURN(ReadLease db, LeaseReader());
  ASSIGN_OR_RETURN(Statement stmt, db->Prepare(sql));
  stmt.Bind(1, run_id).Bind(2, after_sequence);
  if (!filter.node_name.empty()) stmt.Bind(3, filter.node_name);
  if (!filter.host.empty()) stmt.Bind(4, filter.host);
  if (!filter.kind.empty()) stmt.Bind(6, filter.kind);
  stmt.Bind(5, int64_t{ClampLimit(limit, kDefaultStreamLimit)});
  std::vector<AnsibleEventRecord> events;
  while (true) {
    ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) return events;
    AnsibleEventRecord event;
    event.run_id = stmt.Text(0);
    event.sequence = stmt.Int(1);
    event.node_name = stmt.Text(2);
    event.attempt = static_cast<int>(stmt.Int(3));
    event.time_ms = stmt.Int(4);
    event.kind = stmt.Text(5);
    event.host = stmt.Text(6);
    event.task = stmt.Text(7);
    event.play = stmt.Text(8);
    event.changed = stmt.Int(9) != 0;
    event.failed = stmt.Int(10) != 0;
    event.item = stmt.Text(11);
    event.payload = stmt.Text(12);
    events.push_back(std::move(event));
  }
}

// --- audit --------------------------------------------------------------------------------------

absl::StatusOr<AuditPage> SqliteStore::ListAuditRecords(const AuditFilter& filter) {
  std::vector<std::string> conditions;
  std::vector<std::variant<int64_t, std::string>> params;
  auto param = [&params](auto value) {
    params.emplace_back(std::move(value));
    return absl::StrCat("?", params.size());
  };
  if (!filter.principal.empty()) {
    conditions.push_back(absl::StrCat("principal = ", param(filter.principal)));
  }
  if (!filter.namespaces.empty()) {
    conditions.push_back(absl::StrCat("namespace IN (SELECT value FROM json_each(",
                                      param(nlohmann::json(filter.namespaces).dump()), "))"));
  }
  if (!filter.target.empty()) conditions.push_back(absl::StrCat("target = ", param(filter.target)));
  if (!filter.method.empty()) {
    const std::string method = param(filter.method);
    // The full name, or its last part: "/dagd.v1.RunService/SubmitRun" or "SubmitRun".
    conditions.push_back(
        absl::StrCat("(method = ", method, " OR method LIKE '%/' || ", method, ")"));
  }
  if (filter.since_ms != 0)
    conditions.push_back(absl::StrCat("time_ms >= ", param(filter.since_ms)));
  if (filter.until_ms != 0)
    conditions.push_back(absl::StrCat("time_ms < ", param(filter.until_ms)));
  if (filter.failed_only) conditions.push_back("code <> 'OK'");
  if (!filter.page_token.empty()) {
    int64_t before = 0;
    if (!absl::SimpleAtoi(filter.page_token, &before) || before <= 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("page token \"", filter.page_token, "\" is not one of ListAuditRecords"));
    }
    conditions.push_back(absl::StrCat("sequence < ", param(before)));
  }
  const int limit = ClampLimit(filter.limit, 100);
  std::string sql =
      "SELECT sequence, time_ms, principal, auth_method, method, namespace, target, request_id, "
      "code, message, peer FROM audit_log";
  if (!conditions.empty()) absl::StrAppend(&sql, " WHERE ", absl::StrJoin(conditions, " AND "));
  absl::StrAppend(&sql, " ORDER BY sequence DESC LIMIT ", param(int64_t{limit + 1}));

  ASSIGN_OR_RETURN(ReadLease db, LeaseReader());
  ASSIGN_OR_RETURN(Statement stmt, db->Prepare(sql));
  for (size_t i = 0; i < params.size(); ++i) {
    std::visit([&](const auto& value) { stmt.Bind(static_cast<int>(i + 1), value); }, params[i]);
  }
  AuditPage page;
  while (true) {
    ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) break;
    page.records.push_back(AuditRecord{.sequence = stmt.Int(0),
                                       .time_ms = stmt.Int(1),
                                       .principal = stmt.Text(2),
                                       .auth_method = stmt.Text(3),
                                       .method = stmt.Text(4),
                                       .namespace_name = stmt.Text(5),
                                       .target = stmt.Text(6),
                                       .request_id = stmt.Text(7),
                                       .code = stmt.Text(8),
                                       .message = stmt.Text(9),
                                       .peer = stmt.Text(10)});
  }
  if (static_cast<int>(page.records.size()) > limit) {
    page.records.resize(limit);
    page.next_page_token = absl::StrCat(page.records.back().sequence);
  }
  return page;
}

}  // namespace dagd::storage::sqlite

namespace dagd::storage {

std::string SqliteVersion() { return sqlite3_libversion(); }

absl::StatusOr<std::unique_ptr<Store>> OpenSqliteStore(const std::string& path,
                                                       metrics::Registry* metrics) {
  sqlite::SqliteStoreOptions options;
  options.path = path;
  options.metrics = metrics;
  ASSIGN_OR_RETURN(std::unique_ptr<sqlite::SqliteStore> store, sqlite::SqliteStore::Open(options));
  return std::unique_ptr<Store>(std::move(store));
}

}  // namespace dagd::storage
