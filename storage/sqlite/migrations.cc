#include "storage/sqlite/migrations.h"

#include <string>

#include "absl/strings/str_cat.h"

namespace dagd::storage::sqlite {
namespace {

// Version 1: workflows, runs, nodes, attempts, events, log chunks.
//
// Times are milliseconds since the Unix epoch; phases are Argo's spelling ("Running"). Text
// columns are NOT NULL with '' for "none" so that the records' empty strings round-trip exactly.
constexpr char kSchemaV1[] = R"sql(
CREATE TABLE workflows (
  name          TEXT    NOT NULL,
  version       INTEGER NOT NULL CHECK (version > 0),
  yaml          TEXT    NOT NULL,
  spec_sha256   TEXT    NOT NULL,
  entrypoint    TEXT    NOT NULL,
  bundle_dir    TEXT    NOT NULL,
  created_at_ms INTEGER NOT NULL,
  deleted       INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (name, version)
);

CREATE TABLE runs (
  id               TEXT    NOT NULL PRIMARY KEY,
  workflow_name    TEXT    NOT NULL,
  workflow_version INTEGER NOT NULL,
  workflow_yaml    TEXT    NOT NULL,
  file_name        TEXT    NOT NULL,
  bundle_dir       TEXT    NOT NULL,
  parameters       TEXT    NOT NULL,  -- JSON object
  phase            TEXT    NOT NULL,
  message          TEXT    NOT NULL,
  request_id       TEXT    NOT NULL,
  stopping         INTEGER NOT NULL,
  created_at_ms    INTEGER NOT NULL,
  started_at_ms    INTEGER NOT NULL,
  finished_at_ms   INTEGER NOT NULL,
  last_sequence    INTEGER NOT NULL
);
CREATE UNIQUE INDEX runs_by_request_id ON runs (request_id) WHERE request_id <> '';
CREATE INDEX runs_by_created ON runs (created_at_ms DESC, id DESC);
CREATE INDEX runs_by_workflow ON runs (workflow_name, created_at_ms DESC, id DESC);
CREATE INDEX runs_unfinished ON runs (created_at_ms, id) WHERE phase IN ('Pending', 'Running');

CREATE TABLE nodes (
  run_id         TEXT    NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
  name           TEXT    NOT NULL,
  phase          TEXT    NOT NULL,
  type           TEXT    NOT NULL,
  template_name  TEXT    NOT NULL,
  parent         TEXT    NOT NULL,
  started_at_ms  INTEGER NOT NULL,
  finished_at_ms INTEGER NOT NULL,
  state          TEXT    NOT NULL,  -- the full NodeState as JSON (storage/node_json.h)
  PRIMARY KEY (run_id, name)
);

-- A queryable copy of NodeState.attempts, rewritten with its node.
CREATE TABLE attempts (
  run_id         TEXT    NOT NULL,
  node_name      TEXT    NOT NULL,
  number         INTEGER NOT NULL,
  phase          TEXT    NOT NULL,
  runner         TEXT    NOT NULL,
  external_name  TEXT    NOT NULL,
  exit_code      INTEGER NOT NULL,
  message        TEXT    NOT NULL,
  started_at_ms  INTEGER NOT NULL,
  finished_at_ms INTEGER NOT NULL,
  PRIMARY KEY (run_id, node_name, number),
  FOREIGN KEY (run_id, node_name) REFERENCES nodes (run_id, name) ON DELETE CASCADE
) WITHOUT ROWID;
CREATE INDEX attempts_by_external_name ON attempts (runner, external_name)
  WHERE external_name <> '';

CREATE TABLE events (
  run_id    TEXT    NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
  sequence  INTEGER NOT NULL,
  time_ms   INTEGER NOT NULL,
  node_name TEXT    NOT NULL,
  type      TEXT    NOT NULL,
  phase     TEXT    NOT NULL,
  message   TEXT    NOT NULL,
  attempt   INTEGER NOT NULL,
  PRIMARY KEY (run_id, sequence)
) WITHOUT ROWID;

CREATE TABLE log_chunks (
  run_id    TEXT    NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
  sequence  INTEGER NOT NULL,  -- assigned by the store, increasing per run
  node_name TEXT    NOT NULL,
  attempt   INTEGER NOT NULL,
  stream    TEXT    NOT NULL,
  data      BLOB    NOT NULL,
  time_ms   INTEGER NOT NULL,
  PRIMARY KEY (run_id, sequence)
);
CREATE INDEX log_chunks_by_node ON log_chunks (run_id, node_name, attempt, sequence);
)sql";

// Version 2: every Ansible callback event of every node attempt (issue 3). `sequence` is assigned
// by the store, 1, 2, … per run; `payload` is the event object as JSON; `changed` / `failed` are
// 0/1. The partial indexes serve `dagctl events --changed` / `--failed` without a scan.
constexpr char kSchemaV2[] = R"sql(
CREATE TABLE ansible_events (
  run_id    TEXT    NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
  sequence  INTEGER NOT NULL,
  node_name TEXT    NOT NULL,
  attempt   INTEGER NOT NULL,
  time_ms   INTEGER NOT NULL,
  kind      TEXT    NOT NULL,
  host      TEXT    NOT NULL,
  task      TEXT    NOT NULL,
  play      TEXT    NOT NULL,
  changed   INTEGER NOT NULL,
  failed    INTEGER NOT NULL,
  item      TEXT    NOT NULL,  -- the loop item as JSON, '' outside loops
  payload   TEXT    NOT NULL,  -- the whole event as JSON
  PRIMARY KEY (run_id, sequence)
);
CREATE INDEX ansible_events_by_node ON ansible_events (run_id, node_name, attempt, sequence);
CREATE INDEX ansible_events_by_host ON ansible_events (run_id, host, sequence);
CREATE INDEX ansible_events_changed ON ansible_events (run_id, sequence) WHERE changed = 1;
CREATE INDEX ansible_events_failed ON ansible_events (run_id, sequence) WHERE failed = 1;
)sql";

// Version 3: bundles uploaded into the store (issue 3, point 4) replace directories on the dagd
// host. `blobs` holds each distinct file content once, keyed by its SHA-256 (hex); `bundles` and
// `bundle_files` are the manifests, keyed by the bundle digest (storage/bundle.h). Workflows and
// runs name their bundle by digest; it is NULL (not '') for "no bundle" so that the foreign keys
// can hold: no version or run can name a bundle that is not stored. Bundles and blobs are never
// deleted (runs of deleted workflows keep theirs).
//
// The old bundle_dir columns are dropped: a directory on the host is not a snapshot and cannot be
// imported here. Versions and runs stored before this migration have no bundle; a version whose
// playbooks came from its directory must be applied again with `dagctl apply --bundle DIR`
// (SubmitRun of it says so), and attempts of runs unfinished at the upgrade find no bundle.
constexpr char kSchemaV3[] = R"sql(
CREATE TABLE blobs (
  digest  TEXT    NOT NULL PRIMARY KEY,  -- SHA-256 of content, hex
  size    INTEGER NOT NULL,
  content BLOB    NOT NULL
);

CREATE TABLE bundles (
  digest        TEXT    NOT NULL PRIMARY KEY,  -- SHA-256 of the canonical manifest, hex
  file_count    INTEGER NOT NULL,
  total_bytes   INTEGER NOT NULL,
  created_at_ms INTEGER NOT NULL
);

CREATE TABLE bundle_files (
  bundle_digest TEXT    NOT NULL REFERENCES bundles (digest),
  path          TEXT    NOT NULL,
  mode          INTEGER NOT NULL,
  blob_digest   TEXT    NOT NULL REFERENCES blobs (digest),
  PRIMARY KEY (bundle_digest, path)
) WITHOUT ROWID;
CREATE INDEX bundle_files_by_blob ON bundle_files (blob_digest);

ALTER TABLE workflows ADD COLUMN bundle_digest TEXT REFERENCES bundles (digest);
ALTER TABLE workflows DROP COLUMN bundle_dir;
ALTER TABLE runs ADD COLUMN bundle_digest TEXT REFERENCES bundles (digest);
ALTER TABLE runs DROP COLUMN bundle_dir;
)sql";

// Version 4: run labels (the spec's metadata.labels and `dagctl submit -l`), a JSON object that
// ListRuns filters on with json_each; runs stored before have none. The index serves
// `dagctl runs list --sort finished`.
constexpr char kSchemaV4[] = R"sql(
ALTER TABLE runs ADD COLUMN labels TEXT NOT NULL DEFAULT '{}';
CREATE INDEX runs_by_finished ON runs (finished_at_ms DESC, id DESC);
)sql";

// Version 5: memoization caches (`memoize`): a template's outputs by cache name and key.
constexpr char kSchemaV5[] = R"sql(
CREATE TABLE memo_cache (
  cache       TEXT NOT NULL,
  key         TEXT NOT NULL,
  outputs     TEXT NOT NULL,
  saved_at_ms INTEGER NOT NULL,
  node        TEXT NOT NULL,
  PRIMARY KEY (cache, key)
) WITHOUT ROWID;
)sql";

// Version 6: security. Workflows and runs belong to a namespace (roles are granted per
// namespace; what was stored before is in "default"); a run records who submitted it; the audit
// log holds every call to a mutating RPC, append-only.
constexpr char kSchemaV6[] = R"sql(
ALTER TABLE workflows ADD COLUMN namespace TEXT NOT NULL DEFAULT 'default';
ALTER TABLE runs ADD COLUMN namespace TEXT NOT NULL DEFAULT 'default';
ALTER TABLE runs ADD COLUMN submitted_by TEXT NOT NULL DEFAULT '';
CREATE INDEX runs_by_namespace ON runs (namespace, created_at_ms DESC, id DESC);
CREATE TABLE audit_log (
  sequence    INTEGER PRIMARY KEY AUTOINCREMENT,
  time_ms     INTEGER NOT NULL,
  principal   TEXT NOT NULL,
  auth_method TEXT NOT NULL,
  method      TEXT NOT NULL,
  namespace   TEXT NOT NULL,
  target      TEXT NOT NULL,
  request_id  TEXT NOT NULL,
  code        TEXT NOT NULL,
  message     TEXT NOT NULL,
  peer        TEXT NOT NULL
);
CREATE INDEX audit_by_target ON audit_log (target, sequence);
CREATE INDEX audit_by_principal ON audit_log (principal, sequence);
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
  BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
  BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
)sql";

constexpr Migration kMigrations[] = {
    {1, "workflows, runs, nodes, attempts, events, log chunks", kSchemaV1},
    {2, "ansible_events", kSchemaV2},
    {3, "bundles: blobs, bundles, bundle_files; bundle_digest replaces bundle_dir", kSchemaV3},
    {4, "run labels; runs by finish time", kSchemaV4},
    {5, "memoization caches", kSchemaV5},
    {6, "namespaces of workflows and runs; runs' submitter; the audit log", kSchemaV6},
};

}  // namespace

std::span<const Migration> Migrations() { return kMigrations; }

int LatestSchemaVersion() { return Migrations().back().version; }

absl::StatusOr<int> ApplyMigrations(internal::Connection& db,
                                    std::span<const Migration> migrations) {
  absl::StatusOr<int64_t> current = db.QueryInt("PRAGMA user_version");
  if (!current.ok()) return current.status();
  const int latest = migrations.empty() ? 0 : migrations.back().version;
  if (*current > latest) {
    return absl::FailedPreconditionError(absl::StrCat(
        "database ", db.path(), " has schema version ", *current, ", newer than this dagd knows (",
        latest, "): it was written by a newer dagd; run that version or restore a backup"));
  }
  int applied = 0;
  for (const Migration& migration : migrations) {
    if (migration.version <= *current) continue;
    absl::Status status = db.Exec("BEGIN IMMEDIATE");
    if (status.ok()) status = db.Exec(migration.sql);
    if (status.ok()) status = db.Exec(absl::StrCat("PRAGMA user_version = ", migration.version));
    if (status.ok()) status = db.Exec("COMMIT");
    if (!status.ok()) {
      if (db.in_transaction()) db.Exec("ROLLBACK").IgnoreError();
      return absl::Status(status.code(),
                          absl::StrCat("migration ", migration.version, " (", migration.description,
                                       ") failed: ", status.message()));
    }
    ++applied;
  }
  return applied;
}

}  // namespace dagd::storage::sqlite
