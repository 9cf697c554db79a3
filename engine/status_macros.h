// Status helpers shared by every dagd module.
//
// Debian 12's Abseil (20220623) predates absl's own status macros, so dagd carries its own:
//   RETURN_IF_ERROR(expr)        returns the absl::Status of `expr` if it is not OK.
//   ASSIGN_OR_RETURN(lhs, expr)  evaluates an absl::StatusOr<T>; on error returns its status,
//                                otherwise assigns (or declares: `ASSIGN_OR_RETURN(auto x, f())`).
//   DAGD_CHECK(cond)             aborts on a programmer error. User input never reaches one.
#ifndef DAGD_ENGINE_STATUS_MACROS_H_
#define DAGD_ENGINE_STATUS_MACROS_H_

#include <cstdio>
#include <cstdlib>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define DAGD_STATUS_CONCAT_INNER_(a, b) a##b
#define DAGD_STATUS_CONCAT_(a, b) DAGD_STATUS_CONCAT_INNER_(a, b)

#define RETURN_IF_ERROR(expr)                    \
  do {                                           \
    ::absl::Status dagd_status_ = (expr);        \
    if (!dagd_status_.ok()) return dagd_status_; \
  } while (0)

#define DAGD_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                                \
  if (!tmp.ok()) return tmp.status();               \
  lhs = std::move(tmp).value()

#define ASSIGN_OR_RETURN(lhs, expr) \
  DAGD_ASSIGN_OR_RETURN_IMPL_(DAGD_STATUS_CONCAT_(dagd_statusor_, __LINE__), lhs, expr)

#define DAGD_CHECK(cond)                                                            \
  do {                                                                              \
    if (!(cond)) {                                                                  \
      std::fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                 \
    }                                                                               \
  } while (0)

#endif  // DAGD_ENGINE_STATUS_MACROS_H_
