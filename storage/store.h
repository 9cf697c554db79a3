// Store: the seam between dagd and its durable state (workflows and their versions, bundles,
// runs, nodes, attempts, events, log chunks). The only implementation today is SQLite in WAL mode
// (storage/sqlite/sqlite_store.h); tests use the same store on a temporary file.
//
// Writes are grouped: Submit() queues a WriteBatch, a single writer thread commits every batch
// queued at that moment in ONE transaction (one fsync for a burst), then calls each batch's
// callback. A callback with OK means the batch is durable; only then may the caller acknowledge
// or act on it (DESIGN.md §3). A failed transaction fails every batch in it and changes nothing.
// Callbacks run on the writer thread: they must be quick (post work elsewhere).
//
// Reads may be called from any thread, concurrently with writes; they see committed data only.
#ifndef DAGD_STORAGE_STORE_H_
#define DAGD_STORAGE_STORE_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "engine/run_state.h"
#include "storage/bundle.h"

namespace dagd::storage {

struct WorkflowRecord {
  std::string name;
  int64_t version = 0;  // 1, 2, … per name
  std::string yaml;
  std::string spec_sha256;
  std::string entrypoint;
  // The bundle stored with this version (storage/bundle.h); digest "" if none. Every run of the
  // version materialises exactly these files.
  BundleInfo bundle;
  int64_t created_at_ms = 0;
  // The namespace it belongs to (that of its latest version; names are unique across
  // namespaces).
  std::string namespace_name = "default";
};

// One document to store as a workflow version (Store::PutWorkflows).
struct WorkflowDocument {
  std::string name;
  std::string yaml;
  std::string entrypoint;
  std::string namespace_name = "default";
};

struct RunRecord {
  std::string id;
  std::string workflow_name;
  int64_t workflow_version = 0;  // 0 for an inline spec
  std::string workflow_yaml;     // the exact spec the run executes (a snapshot)
  std::string file_name;
  // The stored bundle its attempts are materialised from ("" if none). A run can only be stored
  // once its bundle is (FailedPrecondition otherwise).
  std::string bundle_digest;
  std::map<std::string, std::string> parameters;  // merged with defaults
  engine::NodePhase phase = engine::NodePhase::kPending;
  std::string message;
  std::string request_id;  // "" if none; unique when set
  // StopRun (kStop) or TerminateRun (kTerminate) was accepted; column `stopping`: 0, 1
  // (terminate) or 2 (stop).
  engine::StopStrategy stop = engine::StopStrategy::kNone;
  int64_t created_at_ms = 0;
  int64_t started_at_ms = 0;
  int64_t finished_at_ms = 0;
  int64_t last_sequence = 0;  // highest event sequence of the run
  // The spec's metadata.labels merged with the submission's; ListRuns filters on them.
  std::map<std::string, std::string> labels;
  // The namespace the run belongs to; roles are granted per namespace.
  std::string namespace_name = "default";
  // The principal that submitted it ("" for runs stored before dagd recorded it).
  std::string submitted_by;
};

// One call to a mutating RPC, as answered (proto/dagd/v1/audit.proto, AuditRecord).
struct AuditRecord {
  int64_t sequence = 0;  // assigned on commit
  int64_t time_ms = 0;
  std::string principal;  // "" when the caller was not authenticated
  std::string auth_method;
  std::string method;  // "/dagd.v1.RunService/SubmitRun"
  std::string namespace_name;
  std::string target;  // "run/NAME", "workflow/NAME", ""
  std::string request_id;
  std::string code;  // "OK", "PERMISSION_DENIED", …
  std::string message;
  std::string peer;
};

struct AuditFilter {
  std::string principal;  // "" = any
  // Only records of these namespaces; empty = any (records without a namespace included).
  std::vector<std::string> namespaces;
  std::string target;    // "" = any
  std::string method;    // "" = any; the full name, or its last part ("SubmitRun")
  int64_t since_ms = 0;  // 0 = unbounded
  int64_t until_ms = 0;  // 0 = unbounded; exclusive
  bool failed_only = false;
  int limit = 100;
  std::string page_token;  // from AuditPage::next_page_token of the same filter
};

struct AuditPage {
  std::vector<AuditRecord> records;  // newest first
  std::string next_page_token;       // "" on the last page
};

// One state change of a run; sequence is assigned by the caller, 1, 2, … per run.
struct EventRecord {
  std::string run_id;
  int64_t sequence = 0;
  int64_t time_ms = 0;
  std::string node_name;  // "" for the run itself
  std::string type;       // "RunPhase", "NodePhase", "AttemptStarted", "AttemptFinished", …
  engine::NodePhase phase = engine::NodePhase::kPending;
  std::string message;
  int attempt = 0;
};

struct LogChunkRecord {
  std::string run_id;
  std::string node_name;
  int attempt = 0;
  int64_t sequence = 0;  // assigned by the store on commit, increasing per run
  std::string stream;    // "stdout" / "stderr"
  std::string data;
  int64_t time_ms = 0;
};

// One Ansible callback event of a node attempt (runners/local/ansible/dagd_events.py), as
// stored: the columns an auditor filters on, plus the whole event as JSON.
struct AnsibleEventRecord {
  std::string run_id;
  int64_t sequence = 0;  // assigned by the store on commit, 1, 2, … per run
  std::string node_name;
  int attempt = 0;
  int64_t time_ms = 0;
  // "playbook_start", "play_start", "task_start", "handler_task_start", "runner_on_ok",
  // "runner_on_failed", "runner_on_skipped", "runner_on_unreachable", "runner_item_on_ok",
  // "runner_item_on_failed", "runner_item_on_skipped", "stats", …
  std::string kind;
  std::string host;  // "" when the event is not about one host
  std::string task;
  std::string play;
  bool changed = false;
  bool failed = false;  // failed or unreachable (also when the failure was ignored)
  std::string item;     // the loop item as JSON text, "" outside loops
  std::string payload;  // the whole event object as JSON text
};

// The status of a result event as Ansible's recap spells it: "ok", "changed", "failed",
// "unreachable" or "skipped" for runner_on_* and runner_item_on_* events; "" for other kinds.
const char* AnsibleResultStatus(const AnsibleEventRecord& event);

// Which Ansible events GetAnsibleEvents returns; empty / false fields match everything.
struct AnsibleEventFilter {
  std::string node_name;
  std::string host;
  bool changed_only = false;
  bool failed_only = false;
  std::string kind;  // e.g. "stats"
};

// One entry of a memoization cache (engine/memo.h): outputs by cache name and key.
struct MemoRecord {
  std::string cache;
  std::string key;
  engine::NodeOutputs outputs;
  int64_t saved_at_ms = 0;
  std::string node;  // "<run>/<node name>" that produced it
};

// A set of changes committed atomically (and grouped with other batches).
struct WriteBatch {
  std::vector<RunRecord> runs;                     // insert or replace by id
  std::vector<engine::NodeState> nodes;            // insert or replace by (node_run_id, name)
  std::string node_run_id;                         // the run `nodes` belong to
  std::vector<std::string> removed_nodes;          // delete (with attempts) from node_run_id
  std::vector<EventRecord> events;                 // insert
  std::vector<LogChunkRecord> logs;                // insert
  std::vector<AnsibleEventRecord> ansible_events;  // insert; sequences assigned on commit
  std::vector<MemoRecord> memo_entries;            // insert or replace by (cache, key)
  std::vector<AuditRecord> audit_records;          // insert; sequences assigned on commit
  bool empty() const {
    return runs.empty() && nodes.empty() && removed_nodes.empty() && events.empty() &&
           logs.empty() && ansible_events.empty() && memo_entries.empty() && audit_records.empty();
  }
};

// One requirement of a label selector on runs.
struct LabelRequirement {
  enum class Op { kEquals, kNotEquals, kExists };
  std::string key;
  Op op = Op::kEquals;
  std::string value;  // unused for kExists
};

// The order of ListRuns; ties are broken by run id in the same direction.
enum class RunOrder {
  kCreated,   // created_at_ms
  kFinished,  // finished_at_ms; unfinished runs (0) first ascending, last descending
  kDuration,  // finished_at_ms - started_at_ms; unfinished runs count as -1
  // (Both change when a run finishes: a page walk across a finish may repeat or miss it.)
};

struct RunFilter {
  std::string workflow_name;              // "" = any
  std::vector<std::string> namespaces;    // empty = any
  std::vector<engine::NodePhase> phases;  // empty = any
  int64_t created_after_ms = 0;           // 0 = unbounded
  int64_t created_before_ms = 0;          // 0 = unbounded
  std::vector<LabelRequirement> labels;   // all must hold; empty = any
  RunOrder order = RunOrder::kCreated;
  bool descending = true;  // the default is newest first
  int limit = 50;
  // Opaque; from RunPage::next_page_token of a ListRuns with the same order (InvalidArgument
  // for a token of another order).
  std::string page_token;
};

struct RunPage {
  std::vector<RunRecord> runs;  // in the filter's order
  std::string next_page_token;  // "" on the last page
};

class Store {
 public:
  virtual ~Store() = default;

  // --- grouped writes -------------------------------------------------------------------------
  virtual void Submit(WriteBatch batch, std::function<void(absl::Status)> done) = 0;
  // Submit and wait. Convenience for start-up, tools and tests.
  virtual absl::Status Write(WriteBatch batch) = 0;

  // --- workflows ------------------------------------------------------------------------------
  // Stores `yaml` with `bundle` (empty: none) as a new version of `name`, unless the latest
  // version has the same yaml, entrypoint and bundle digest (then returns that version and
  // *created = false). A changed bundle alone makes a new version. The bundle's files and the
  // version are committed in one transaction: no version ever names a bundle that is not stored.
  // Synchronous, through the writer; the contents are hashed on the calling thread.
  // InvalidArgument if `bundle` breaks the path rules of ValidateBundle (no size limits here:
  // those are the caller's policy).
  absl::StatusOr<WorkflowRecord> PutWorkflow(const std::string& name, const std::string& yaml,
                                             const std::string& entrypoint,
                                             std::vector<BundleFile> bundle, int64_t now_ms,
                                             bool* created);
  // PutWorkflow for several documents of one file, sharing `bundle`: all of them in one
  // transaction, or none. Returns a record per document, in order; (*created)[i] tells whether
  // document i got a new version. A document whose namespace differs from the latest version's
  // counts as changed. InvalidArgument as PutWorkflow, or when two documents have the same name;
  // AlreadyExists when a live workflow of that name belongs to another namespace.
  virtual absl::StatusOr<std::vector<WorkflowRecord>> PutWorkflows(
      const std::vector<WorkflowDocument>& documents, std::vector<BundleFile> bundle,
      int64_t now_ms, std::vector<bool>* created) = 0;
  // version 0 = latest. NotFound if missing or deleted.
  virtual absl::StatusOr<WorkflowRecord> GetWorkflow(const std::string& name, int64_t version) = 0;
  // Latest version of each live workflow, by name, starting after `after_name`; only those of
  // `namespaces` unless it is empty.
  virtual absl::StatusOr<std::vector<WorkflowRecord>> ListWorkflows(
      const std::string& after_name, int limit, const std::vector<std::string>& namespaces) = 0;
  // NotFound if missing. Runs keep their snapshot (and their bundle).
  virtual absl::Status DeleteWorkflow(const std::string& name) = 0;

  // --- bundles --------------------------------------------------------------------------------
  // Stores the files of `bundle` (each distinct content once) and its manifest, unless a bundle
  // with the same digest is stored already; returns its info (digest "" and nothing written for
  // an empty bundle). Synchronous and durable on return, so a run may name the digest after.
  // InvalidArgument as PutWorkflow.
  virtual absl::StatusOr<BundleInfo> PutBundle(std::vector<BundleFile> bundle, int64_t now_ms) = 0;
  // The files of bundle `digest`, sorted by path, with their contents (none for digest "").
  // NotFound if no such bundle is stored; DataLoss if a stored content is missing or no longer
  // matches its digest, or the manifest no longer matches the bundle's digest.
  virtual absl::StatusOr<std::vector<BundleFile>> GetBundle(const std::string& digest) = 0;
  // The manifest of bundle `digest` (paths, modes, blob digests and sizes, sorted by path)
  // without reading any content (none for digest ""). NotFound if no such bundle is stored.
  virtual absl::StatusOr<std::vector<BundleEntry>> GetBundleManifest(const std::string& digest) = 0;

  // --- runs -----------------------------------------------------------------------------------
  virtual absl::StatusOr<RunRecord> GetRun(const std::string& run_id) = 0;
  // NotFound if no run has this request id.
  virtual absl::StatusOr<RunRecord> GetRunByRequestId(const std::string& request_id) = 0;
  virtual absl::StatusOr<RunPage> ListRuns(const RunFilter& filter) = 0;
  // Runs whose phase is not final (to resume after a restart).
  virtual absl::StatusOr<std::vector<RunRecord>> ListUnfinishedRuns() = 0;
  // Every memoization cache entry (loaded into the scheduler's MemoCache at start-up).
  virtual absl::StatusOr<std::vector<MemoRecord>> ListMemoEntries() = 0;
  virtual absl::StatusOr<std::vector<engine::NodeState>> GetNodes(const std::string& run_id) = 0;

  // Events with sequence > after_sequence, oldest first, at most `limit`.
  virtual absl::StatusOr<std::vector<EventRecord>> GetEvents(const std::string& run_id,
                                                             int64_t after_sequence, int limit) = 0;
  // Log chunks of a node ("" = all nodes; attempt 0 = all) with sequence > after_sequence.
  virtual absl::StatusOr<std::vector<LogChunkRecord>> GetLogs(const std::string& run_id,
                                                              const std::string& node_name,
                                                              int attempt, int64_t after_sequence,
                                                              int limit) = 0;
  // Ansible events of a run matching `filter` with sequence > after_sequence, oldest first, at
  // most `limit` (<= 0 means 1000; capped at 10000). An unknown run has none.
  virtual absl::StatusOr<std::vector<AnsibleEventRecord>> GetAnsibleEvents(
      const std::string& run_id, const AnsibleEventFilter& filter, int64_t after_sequence,
      int limit) = 0;

  // --- audit ----------------------------------------------------------------------------------
  // Audit records matching `filter`, newest first, at most filter.limit (<= 0 means 100; capped
  // at 1000). InvalidArgument for a page token that is not this store's.
  virtual absl::StatusOr<AuditPage> ListAuditRecords(const AuditFilter& filter) = 0;
};

}  // namespace dagd::storage

#endif  // DAGD_STORAGE_STORE_H_
