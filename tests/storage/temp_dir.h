// TempDir: a fresh directory under the test's temp root, removed with everything in it when the
// object goes away.
#ifndef DAGD_TESTS_STORAGE_TEMP_DIR_H_
#define DAGD_TESTS_STORAGE_TEMP_DIR_H_

#include <stdlib.h>

#include <filesystem>
#include <string>

#include "gtest/gtest.h"

namespace dagd::storage::testing {

class TempDir {
 public:
  TempDir() {
    std::string pattern = ::testing::TempDir() + "dagd-storage-XXXXXX";
    if (mkdtemp(pattern.data()) == nullptr) ADD_FAILURE() << "mkdtemp " << pattern;
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

}  // namespace dagd::storage::testing

#endif  // DAGD_TESTS_STORAGE_TEMP_DIR_H_
