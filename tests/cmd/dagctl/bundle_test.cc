// ReadBundleDir: what `dagctl apply/submit --bundle DIR` sends, on real directories.
#include "cmd/dagctl/bundle.h"

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <utility>

#include "gtest/gtest.h"

namespace dagd::dagctl {
namespace {

namespace fs = std::filesystem;

class ReadBundleDirTest : public testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = testing::TempDir() + "dagctl-bundle-XXXXXX";
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    root_ = pattern;
    dir_ = root_ + "/bundle";
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(root_); }

  // Writes `content` to `dir_/path` with `mode`.
  void Write(const std::string& path, const std::string& content,
             fs::perms mode = fs::perms(0644)) {
    const fs::path full = fs::path(dir_) / path;
    fs::create_directories(full.parent_path());
    std::ofstream(full, std::ios::binary) << content;
    fs::permissions(full, mode);
  }

  absl::Status Read(v1::Bundle* bundle, BundleLimits limits = BundleLimits()) {
    return ReadBundleDir(dir_, limits, bundle);
  }

  // path -> (content, mode)
  static std::map<std::string, std::pair<std::string, uint32_t>> Files(const v1::Bundle& bundle) {
    std::map<std::string, std::pair<std::string, uint32_t>> files;
    for (const v1::BundleFile& file : bundle.files()) {
      files[file.path()] = {file.content(), file.mode()};
    }
    return files;
  }

  std::string root_;
  std::string dir_;
};

TEST_F(ReadBundleDirTest, ReadsEveryRegularFileWithItsModeSortedByPath) {
  Write("site.yml", "- hosts: all\n");
  Write("bin/check.sh", "#!/bin/sh\n", fs::perms(0755));
  Write("roles/web/tasks/main.yml", "- ping:\n", fs::perms(0600));
  Write("a.b", "dots sort before slashes", fs::perms(0640));
  Write("a/b", "in a directory");
  Write("nested/.dagd/ok", "only the top level is reserved");
  fs::create_directories(dir_ + "/empty/dir");
  v1::Bundle bundle;
  ASSERT_TRUE(Read(&bundle).ok());
  const std::map<std::string, std::pair<std::string, uint32_t>> want = {
      {"a.b", {"dots sort before slashes", 0640}},
      {"a/b", {"in a directory", 0644}},
      {"bin/check.sh", {"#!/bin/sh\n", 0755}},
      {"nested/.dagd/ok", {"only the top level is reserved", 0644}},
      {"roles/web/tasks/main.yml", {"- ping:\n", 0600}},
      {"site.yml", {"- hosts: all\n", 0644}}};
  EXPECT_EQ(Files(bundle), want);
  ASSERT_EQ(bundle.files_size(), 6);
  for (int i = 1; i < bundle.files_size(); ++i) {
    EXPECT_LT(bundle.files(i - 1).path(), bundle.files(i).path());
  }
}

TEST_F(ReadBundleDirTest, SkipsGitAtAnyDepth) {
  Write("site.yml", "x");
  Write(".git/HEAD", "ref: refs/heads/main\n");
  Write("roles/vendored/.git", "gitdir: ../../.git/modules/vendored\n");
  v1::Bundle bundle;
  ASSERT_TRUE(Read(&bundle).ok());
  ASSERT_EQ(bundle.files_size(), 1);
  EXPECT_EQ(bundle.files(0).path(), "site.yml");
}

TEST_F(ReadBundleDirTest, FollowsLinksThatStayInsideTheDirectory) {
  Write("shared/vars.yml", "a: 1\n", fs::perms(0600));
  fs::create_symlink("shared/vars.yml", dir_ + "/vars.yml");
  fs::create_directory_symlink("shared", dir_ + "/also");
  v1::Bundle bundle;
  absl::Status status = Read(&bundle);
  ASSERT_TRUE(status.ok()) << status;
  const std::map<std::string, std::pair<std::string, uint32_t>> want = {
      {"also/vars.yml", {"a: 1\n", 0600}},
      {"shared/vars.yml", {"a: 1\n", 0600}},
      {"vars.yml", {"a: 1\n", 0600}}};
  EXPECT_EQ(Files(bundle), want);
}

TEST_F(ReadBundleDirTest, ALinkOutsideDanglingOrLoopingIsAnErrorNamingIt) {
  std::ofstream(root_ + "/secret.txt") << "outside";
  Write("site.yml", "x");
  fs::create_symlink("../secret.txt", dir_ + "/leak.txt");
  v1::Bundle bundle;
  absl::Status outside = Read(&bundle);
  EXPECT_EQ(outside.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(outside.message().find("symbolic link " + dir_ + "/leak.txt points outside " + dir_),
            std::string::npos)
      << outside;
  EXPECT_EQ(bundle.files_size(), 0) << "nothing half-read is left";
  fs::remove(dir_ + "/leak.txt");

  fs::create_symlink("missing.yml", dir_ + "/dangling.yml");
  absl::Status dangling = Read(&bundle);
  EXPECT_EQ(dangling.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(dangling.message().find(dir_ + "/dangling.yml cannot be resolved"), std::string::npos)
      << dangling;
  fs::remove(dir_ + "/dangling.yml");

  fs::create_directories(dir_ + "/roles");
  fs::create_directory_symlink("..", dir_ + "/roles/up");
  absl::Status loop = Read(&bundle);
  EXPECT_EQ(loop.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(loop.message().find(dir_ + "/roles/up leads back"), std::string::npos) << loop;
}

TEST_F(ReadBundleDirTest, RefusesReservedNamesAndSpecialFiles) {
  Write(".dagd-extra-vars.json", "{}");
  v1::Bundle bundle;
  absl::Status reserved = Read(&bundle);
  EXPECT_EQ(reserved.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(reserved.message().find(dir_ + "/.dagd-extra-vars.json: names starting with \".dagd\""),
            std::string::npos)
      << reserved;
  fs::remove(dir_ + "/.dagd-extra-vars.json");

  ASSERT_EQ(mkfifo((dir_ + "/pipe").c_str(), 0600), 0);
  absl::Status fifo = Read(&bundle);
  EXPECT_EQ(fifo.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(fifo.message().find(dir_ + "/pipe is not a regular file"), std::string::npos) << fifo;
}

TEST_F(ReadBundleDirTest, ChecksTheLimitsBeforeSending) {
  Write("a.yml", "12345");
  Write("b.yml", "67890");
  v1::Bundle bundle;
  EXPECT_TRUE(Read(&bundle, {.max_bytes = 10, .max_files = 2}).ok());

  absl::Status bytes = Read(&bundle, {.max_bytes = 9, .max_files = 2});
  EXPECT_EQ(bytes.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(bytes.message().find(dir_ + " holds more than 9 bytes of files (reached at " + dir_ +
                                 "/b.yml)"),
            std::string::npos)
      << bytes;
  EXPECT_NE(bytes.message().find("--max-bundle-bytes"), std::string::npos) << bytes;
  EXPECT_EQ(bundle.files_size(), 0);

  absl::Status files = Read(&bundle, {.max_bytes = 10, .max_files = 1});
  EXPECT_EQ(files.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(files.message().find(dir_ + " holds more than 1 files"), std::string::npos) << files;
  EXPECT_NE(files.message().find("--max-bundle-files"), std::string::npos) << files;
}

TEST_F(ReadBundleDirTest, ADirectoryThatIsNotThereIsAnError) {
  v1::Bundle bundle;
  absl::Status missing = ReadBundleDir(root_ + "/nope", BundleLimits(), &bundle);
  EXPECT_EQ(missing.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(missing.message().find("--bundle " + root_ + "/nope: not a directory"),
            std::string::npos)
      << missing;
  Write("file.yml", "x");
  absl::Status file = ReadBundleDir(dir_ + "/file.yml", BundleLimits(), &bundle);
  EXPECT_EQ(file.code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace dagd::dagctl
