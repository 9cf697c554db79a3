// Thin RAII wrappers over the SQLite C API, used only by storage/sqlite/.
//
// A Connection owns one sqlite3 handle and a cache of its prepared statements. It is not
// thread-safe: one thread uses it at a time (the writer thread owns the write connection; read
// connections are lent out by a pool). Every SQLite error becomes an absl::Status through
// SqliteStatus(), whose message names the database file.
#ifndef DAGD_STORAGE_SQLITE_INTERNAL_SQLITE_DB_H_
#define DAGD_STORAGE_SQLITE_INTERNAL_SQLITE_DB_H_

#include <sqlite3.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace dagd::storage::sqlite::internal {

// Maps an SQLite result code (extended codes included) onto a canonical code:
//   SQLITE_FULL → ResourceExhausted; UNIQUE / PRIMARY KEY constraint → AlreadyExists; other
//   constraints → FailedPrecondition; CORRUPT / NOTADB → DataLoss; BUSY / LOCKED / IOERR /
//   CANTOPEN / READONLY / PERM → Unavailable; everything else (SQL or API misuse) → Internal.
absl::StatusCode SqliteCode(int sqlite_code);

// "<what> (<path>): <detail>" with SqliteCode(sqlite_code).
absl::Status SqliteStatus(int sqlite_code, std::string_view what, std::string_view path,
                          std::string_view detail);

// A prepared statement, borrowed from its Connection's cache. Parameters are 1-based, columns
// 0-based (as in SQLite). Destroying the handle resets the statement and clears its bindings, so
// the next user of the cached statement starts clean.
class Statement {
 public:
  Statement(sqlite3_stmt* stmt, sqlite3* db, const std::string* path)
      : stmt_(stmt), db_(db), path_(path) {}
  Statement(Statement&& other) noexcept;
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  Statement& operator=(Statement&&) = delete;
  ~Statement();

  Statement& Bind(int index, int64_t value);
  Statement& Bind(int index, std::string_view text);
  Statement& Bind(int index, const std::string& text) {
    return Bind(index, std::string_view(text));
  }
  Statement& Bind(int index, const char* text) { return Bind(index, std::string_view(text)); }
  Statement& BindBlob(int index, std::string_view data);

  // Advances to the next row: true if a row is available, false when done.
  absl::StatusOr<bool> Step();
  // Steps until done, for statements that return no rows (or whose rows are ignored).
  absl::Status Run();

  int64_t Int(int column) const;
  std::string Text(int column) const;
  std::string Blob(int column) const;
  bool IsNull(int column) const;

 private:
  sqlite3_stmt* stmt_;
  sqlite3* db_;
  const std::string* path_;
};

class Connection {
 public:
  // Opens `path` with SQLITE_OPEN_* `flags` (NOMUTEX and extended result codes are added) and
  // checks that the file is a readable SQLite database. Unavailable if the file cannot be opened,
  // DataLoss if it is not a database or is corrupt; the message names the file.
  static absl::StatusOr<std::unique_ptr<Connection>> Open(const std::string& path, int flags,
                                                          int busy_timeout_ms);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Runs one or more statements that return nothing useful (DDL, PRAGMA, BEGIN, COMMIT …).
  absl::Status Exec(const std::string& sql);
  // A prepared statement for `sql`, prepared once per connection and cached.
  absl::StatusOr<Statement> Prepare(std::string_view sql);
  // Reads a single integer (e.g. "PRAGMA user_version").
  absl::StatusOr<int64_t> QueryInt(std::string_view sql);

  // Rows changed by the most recent INSERT / UPDATE / DELETE.
  int64_t changes() const;
  bool in_transaction() const;
  const std::string& path() const { return path_; }

 private:
  Connection(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}

  sqlite3* db_;
  std::string path_;
  std::map<std::string, sqlite3_stmt*, std::less<>> statements_;
};

}  // namespace dagd::storage::sqlite::internal

#endif  // DAGD_STORAGE_SQLITE_INTERNAL_SQLITE_DB_H_
