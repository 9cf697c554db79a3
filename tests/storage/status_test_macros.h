// Status assertions for the storage tests (Debian's Abseil ships no status matchers).
//   DAGD_ASSERT_OK(expr)              expr (a Status or StatusOr) is OK; prints it otherwise.
//   DAGD_EXPECT_CODE(expr, kNotFound) expr failed with that absl::StatusCode.
#ifndef DAGD_TESTS_STORAGE_STATUS_TEST_MACROS_H_
#define DAGD_TESTS_STORAGE_STATUS_TEST_MACROS_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "gtest/gtest.h"

namespace dagd::storage::testing {

inline absl::Status StatusOf(const absl::Status& status) { return status; }
template <typename T>
absl::Status StatusOf(const absl::StatusOr<T>& result) {
  return result.status();
}

}  // namespace dagd::storage::testing

#define DAGD_ASSERT_OK(expr)                                                    \
  do {                                                                          \
    const absl::Status dagd_status_ = ::dagd::storage::testing::StatusOf(expr); \
    ASSERT_TRUE(dagd_status_.ok()) << dagd_status_;                             \
  } while (0)

#define DAGD_EXPECT_CODE(expr, expected_code)                                        \
  do {                                                                               \
    const absl::Status dagd_status_ = ::dagd::storage::testing::StatusOf(expr);      \
    EXPECT_EQ(dagd_status_.code(), absl::StatusCode::expected_code) << dagd_status_; \
  } while (0)

#endif  // DAGD_TESTS_STORAGE_STATUS_TEST_MACROS_H_
