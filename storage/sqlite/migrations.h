// The numbered schema migrations of the SQLite store.
//
// The schema version lives in `PRAGMA user_version`. Migration N brings a database from version
// N-1 to N; each is applied in its own transaction together with the user_version update, so a
// crash leaves the database at a whole version. Migrations are append-only: never edit one that
// has shipped, add the next number instead (storage/README.md, "Adding a migration").
#ifndef DAGD_STORAGE_SQLITE_MIGRATIONS_H_
#define DAGD_STORAGE_SQLITE_MIGRATIONS_H_

#include <span>

#include "absl/status/statusor.h"
#include "storage/sqlite/internal/sqlite_db.h"

namespace dagd::storage::sqlite {

struct Migration {
  int version;              // 1, 2, … in order, no gaps
  const char* description;  // one line, for the log
  const char* sql;          // one or more statements
};

// Every migration this build knows, version 1..N in order.
std::span<const Migration> Migrations();

// The schema version this build writes: Migrations().back().version.
int LatestSchemaVersion();

// Applies the migrations of `migrations` newer than the database's user_version, in order, one
// transaction each. Returns the number applied. FailedPrecondition (naming the file and both
// versions) if the database is newer than the last of `migrations`: it was written by a newer
// dagd and this one must not touch it. REQUIRES: no open transaction on `db`.
absl::StatusOr<int> ApplyMigrations(internal::Connection& db,
                                    std::span<const Migration> migrations);

}  // namespace dagd::storage::sqlite

#endif  // DAGD_STORAGE_SQLITE_MIGRATIONS_H_
