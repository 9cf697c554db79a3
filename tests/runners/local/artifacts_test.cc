#include "runners/local/artifacts.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace dagd::runners::local {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

// A fresh directory under /tmp, removed with its content at scope exit.
class TempDir {
 public:
  TempDir() {
    std::string pattern = "/tmp/dagd-artifacts-XXXXXX";
    if (mkdtemp(pattern.data()) == nullptr) ADD_FAILURE() << "mkdtemp failed";
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  std::string operator/(const std::string& name) const { return path_ + "/" + name; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

void WriteFile(const std::string& path, const std::string& content, mode_t mode = 0644) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << content;
  }
  ASSERT_EQ(chmod(path.c_str(), mode), 0) << path;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream content;
  content << in.rdbuf();
  return content.str();
}

void MakeDir(const std::string& path, mode_t mode = 0755) {
  std::filesystem::create_directories(path);
  ASSERT_EQ(chmod(path.c_str(), mode), 0) << path;
}

bool Exists(const std::string& path) {
  struct stat st;
  return lstat(path.c_str(), &st) == 0;
}

bool IsDir(const std::string& path) {
  struct stat st;
  return lstat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

bool IsRegular(const std::string& path) {
  struct stat st;
  return lstat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

// The permission bits of `path` itself (a symlink is not followed), or -1.
int Mode(const std::string& path) {
  struct stat st;
  return lstat(path.c_str(), &st) == 0 ? static_cast<int>(st.st_mode & 07777) : -1;
}

// What the symlink `path` points to, or "" when it is not a symlink.
std::string LinkTarget(const std::string& path) {
  std::array<char, 4096> buf;
  ssize_t n = readlink(path.c_str(), buf.data(), buf.size());
  return n < 0 ? "" : std::string(buf.data(), static_cast<size_t>(n));
}

// The names in directory `path`, sorted.
std::vector<std::string> List(const std::string& path) {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(path, ec)) {
    names.push_back(entry.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

int Shell(const std::string& command) { return std::system(command.c_str()); }

// The standard output of the shell command `command`.
std::string Capture(const std::string& command) {
  std::string output;
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return output;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), pipe)) > 0) output.append(buf.data(), n);
  pclose(pipe);
  return output;
}

// The entry names of the gzip'd tar `path`, as GNU tar lists them.
std::vector<std::string> TarNames(const std::string& path) {
  std::vector<std::string> names;
  std::istringstream lines(Capture("tar -tzf '" + path + "'"));
  for (std::string line; std::getline(lines, line);) names.push_back(line);
  std::sort(names.begin(), names.end());
  return names;
}

// One entry of an archive built by WriteTar.
struct TarEntry {
  std::string name;
  mode_t type = AE_IFREG;
  std::string content;  // regular files
  std::string link;     // symlinks: the target; regular files: a hard link to this entry
  mode_t perm = 0644;
};

// Writes a tar (gzip'd unless `gzip` is false) holding exactly `entries`, whatever their names.
void WriteTar(const std::string& path, const std::vector<TarEntry>& entries, bool gzip = true) {
  archive* a = archive_write_new();
  if (gzip) archive_write_add_filter_gzip(a);
  archive_write_set_format_pax_restricted(a);
  ASSERT_EQ(archive_write_open_filename(a, path.c_str()), ARCHIVE_OK) << archive_error_string(a);
  for (const TarEntry& e : entries) {
    archive_entry* entry = archive_entry_new();
    archive_entry_set_pathname(entry, e.name.c_str());
    archive_entry_set_filetype(entry, e.type);
    archive_entry_set_perm(entry, e.perm);
    archive_entry_set_mtime(entry, 1700000000, 0);
    if (e.type == AE_IFLNK) archive_entry_set_symlink(entry, e.link.c_str());
    if (e.type == AE_IFREG && !e.link.empty()) archive_entry_set_hardlink(entry, e.link.c_str());
    if (e.type == AE_IFCHR) archive_entry_set_rdev(entry, makedev(1, 3));
    archive_entry_set_size(entry,
                           e.type == AE_IFREG ? static_cast<la_int64_t>(e.content.size()) : 0);
    EXPECT_GE(archive_write_header(a, entry), ARCHIVE_WARN) << archive_error_string(a);
    if (!e.content.empty()) archive_write_data(a, e.content.data(), e.content.size());
    archive_entry_free(entry);
  }
  EXPECT_EQ(archive_write_close(a), ARCHIVE_OK) << archive_error_string(a);
  archive_write_free(a);
}

TEST(ArtifactsTest, TgzRoundTripOfAFileLoadsUnderANewName) {
  TempDir dir;
  WriteFile(dir / "work/a.txt", "hello\n", 0640);

  ASSERT_TRUE(
      SaveArtifact(dir / "work/a.txt", ArtifactArchive::kTgz, dir / "store/run/a.tgz").ok());
  EXPECT_EQ(ReadFile(dir / "store/run/a.tgz").substr(0, 2), "\x1f\x8b");  // gzip
  EXPECT_THAT(TarNames(dir / "store/run/a.tgz"), ElementsAre("a.txt"));
  EXPECT_THAT(List(dir / "store/run"), ElementsAre("a.tgz"));  // no temporary left

  absl::Status loaded = LoadArtifact(dir / "store/run/a.tgz", "", dir / "in/b.txt");
  ASSERT_TRUE(loaded.ok()) << loaded;
  EXPECT_TRUE(IsRegular(dir / "in/b.txt"));
  EXPECT_EQ(ReadFile(dir / "in/b.txt"), "hello\n");
  EXPECT_EQ(Mode(dir / "in/b.txt"), 0640);
  EXPECT_THAT(List(dir / "in"), ElementsAre("b.txt"));
  EXPECT_EQ(Mode(dir / "in"), 0755);
}

TEST(ArtifactsTest, TgzRoundTripOfADirectoryKeepsTreeSymlinksAndModes) {
  TempDir dir;
  MakeDir(dir / "work/out", 0750);
  WriteFile(dir / "work/out/top.txt", "top");
  WriteFile(dir / "work/out/run.sh", "#!/bin/sh\n", 0755);
  WriteFile(dir / "work/out/sub/deep/secret.txt", "deep", 0600);
  MakeDir(dir / "work/out/sub/readonly", 0555);
  MakeDir(dir / "work/out/empty", 0700);
  ASSERT_EQ(symlink("sub/deep/secret.txt", (dir / "work/out/link").c_str()), 0);
  ASSERT_EQ(symlink("/nonexistent/elsewhere", (dir / "work/out/dangling").c_str()), 0);
  ASSERT_EQ(mkfifo((dir / "work/out/fifo").c_str(), 0644), 0);

  absl::Status saved = SaveArtifact(dir / "work/out", ArtifactArchive::kTgz, dir / "store/out.tgz");
  ASSERT_TRUE(saved.ok()) << saved;
  EXPECT_THAT(
      TarNames(dir / "store/out.tgz"),
      ElementsAre("out/", "out/dangling", "out/empty/", "out/link", "out/run.sh", "out/sub/",
                  "out/sub/deep/", "out/sub/deep/secret.txt", "out/sub/readonly/", "out/top.txt"));

  absl::Status loaded = LoadArtifact(dir / "store/out.tgz", "", dir / "in/copy");
  ASSERT_TRUE(loaded.ok()) << loaded;
  EXPECT_TRUE(IsDir(dir / "in/copy"));
  EXPECT_EQ(Mode(dir / "in/copy"), 0750);
  EXPECT_THAT(List(dir / "in/copy"),
              ElementsAre("dangling", "empty", "link", "run.sh", "sub", "top.txt"));
  EXPECT_EQ(ReadFile(dir / "in/copy/top.txt"), "top");
  EXPECT_EQ(Mode(dir / "in/copy/top.txt"), 0644);
  EXPECT_EQ(Mode(dir / "in/copy/run.sh"), 0755);
  EXPECT_EQ(ReadFile(dir / "in/copy/sub/deep/secret.txt"), "deep");
  EXPECT_EQ(Mode(dir / "in/copy/sub/deep/secret.txt"), 0600);
  EXPECT_EQ(Mode(dir / "in/copy/sub/readonly"), 0555);
  EXPECT_EQ(Mode(dir / "in/copy/empty"), 0700);
  EXPECT_THAT(List(dir / "in/copy/empty"), IsEmpty());
  EXPECT_EQ(LinkTarget(dir / "in/copy/link"), "sub/deep/secret.txt");
  EXPECT_EQ(ReadFile(dir / "in/copy/link"), "deep");
  EXPECT_EQ(LinkTarget(dir / "in/copy/dangling"), "/nonexistent/elsewhere");
  EXPECT_THAT(List(dir / "in"), ElementsAre("copy"));
}

TEST(ArtifactsTest, TgzEntryIsNamedAfterTheLastComponentOfASourceWithATrailingSlash) {
  TempDir dir;
  WriteFile(dir / "x/dir/hello.txt", "hi");

  ASSERT_TRUE(SaveArtifact(dir / "x/dir/", ArtifactArchive::kTgz, dir / "store/d.tgz").ok());
  EXPECT_THAT(TarNames(dir / "store/d.tgz"), ElementsAre("dir/", "dir/hello.txt"));

  ASSERT_TRUE(SaveArtifact(dir / "x/dir/.", ArtifactArchive::kTgz, dir / "store/dot.tgz").ok());
  EXPECT_THAT(TarNames(dir / "store/dot.tgz"), ElementsAre("dir/", "dir/hello.txt"));
}

TEST(ArtifactsTest, TgzOfASymlinkedSourceFollowsIt) {
  TempDir dir;
  WriteFile(dir / "real.txt", "real");
  ASSERT_EQ(symlink((dir / "real.txt").c_str(), (dir / "alias.txt").c_str()), 0);

  ASSERT_TRUE(SaveArtifact(dir / "alias.txt", ArtifactArchive::kTgz, dir / "store/a.tgz").ok());
  EXPECT_THAT(TarNames(dir / "store/a.tgz"), ElementsAre("alias.txt"));
  ASSERT_TRUE(LoadArtifact(dir / "store/a.tgz", "", dir / "in.txt").ok());
  EXPECT_TRUE(IsRegular(dir / "in.txt"));
  EXPECT_EQ(ReadFile(dir / "in.txt"), "real");
}

TEST(ArtifactsTest, NoneCopiesAFile) {
  TempDir dir;
  WriteFile(dir / "work/report.csv", "a,b\n1,2\n", 0604);

  ASSERT_TRUE(
      SaveArtifact(dir / "work/report.csv", ArtifactArchive::kNone, dir / "store/run/report.csv")
          .ok());
  EXPECT_EQ(ReadFile(dir / "store/run/report.csv"), "a,b\n1,2\n");
  EXPECT_EQ(Mode(dir / "store/run/report.csv"), 0604);
  EXPECT_THAT(List(dir / "store/run"), ElementsAre("report.csv"));

  ASSERT_TRUE(LoadArtifact(dir / "store/run/report.csv", "", dir / "in/data.csv").ok());
  EXPECT_EQ(ReadFile(dir / "in/data.csv"), "a,b\n1,2\n");
  EXPECT_EQ(Mode(dir / "in/data.csv"), 0604);
}

TEST(ArtifactsTest, NoneCopiesADirectoryTree) {
  TempDir dir;
  MakeDir(dir / "work/out", 0711);
  WriteFile(dir / "work/out/a.txt", "a", 0600);
  WriteFile(dir / "work/out/sub/b.sh", "b", 0755);
  ASSERT_EQ(symlink("sub/b.sh", (dir / "work/out/b-link").c_str()), 0);
  ASSERT_EQ(mkfifo((dir / "work/out/fifo").c_str(), 0644), 0);

  ASSERT_TRUE(SaveArtifact(dir / "work/out", ArtifactArchive::kNone, dir / "store/out").ok());
  EXPECT_THAT(List(dir / "store"), ElementsAre("out"));
  EXPECT_EQ(Mode(dir / "store/out"), 0711);
  EXPECT_THAT(List(dir / "store/out"), ElementsAre("a.txt", "b-link", "sub"));
  EXPECT_EQ(LinkTarget(dir / "store/out/b-link"), "sub/b.sh");

  ASSERT_TRUE(LoadArtifact(dir / "store/out", "", dir / "in/out").ok());
  EXPECT_EQ(Mode(dir / "in/out"), 0711);
  EXPECT_EQ(ReadFile(dir / "in/out/a.txt"), "a");
  EXPECT_EQ(Mode(dir / "in/out/a.txt"), 0600);
  EXPECT_EQ(ReadFile(dir / "in/out/sub/b.sh"), "b");
  EXPECT_EQ(Mode(dir / "in/out/sub/b.sh"), 0755);
  EXPECT_EQ(LinkTarget(dir / "in/out/b-link"), "sub/b.sh");
}

TEST(ArtifactsTest, SubPathIntoATgzDirectory) {
  TempDir dir;
  WriteFile(dir / "tmp/hello.txt", "hello");
  WriteFile(dir / "tmp/nested/deep/x.txt", "x");
  ASSERT_TRUE(SaveArtifact(dir / "tmp", ArtifactArchive::kTgz, dir / "store/tmp.tgz").ok());

  ASSERT_TRUE(LoadArtifact(dir / "store/tmp.tgz", "hello.txt", dir / "in/greeting").ok());
  EXPECT_TRUE(IsRegular(dir / "in/greeting"));
  EXPECT_EQ(ReadFile(dir / "in/greeting"), "hello");

  ASSERT_TRUE(LoadArtifact(dir / "store/tmp.tgz", "./nested/deep/", dir / "in/deep").ok());
  EXPECT_THAT(List(dir / "in/deep"), ElementsAre("x.txt"));
  EXPECT_THAT(List(dir / "in"), ElementsAre("deep", "greeting"));
}

TEST(ArtifactsTest, SubPathIntoANoneDirectory) {
  TempDir dir;
  WriteFile(dir / "tmp/hello.txt", "hello");
  WriteFile(dir / "tmp/nested/x.txt", "x");
  ASSERT_TRUE(SaveArtifact(dir / "tmp", ArtifactArchive::kNone, dir / "store/tmp").ok());

  ASSERT_TRUE(LoadArtifact(dir / "store/tmp", "hello.txt", dir / "in/greeting").ok());
  EXPECT_EQ(ReadFile(dir / "in/greeting"), "hello");
  ASSERT_TRUE(LoadArtifact(dir / "store/tmp", "nested", dir / "in/nested").ok());
  EXPECT_THAT(List(dir / "in/nested"), ElementsAre("x.txt"));
}

TEST(ArtifactsTest, MissingSubPathIsNotFound) {
  TempDir dir;
  WriteFile(dir / "tmp/hello.txt", "hello");
  ASSERT_TRUE(SaveArtifact(dir / "tmp", ArtifactArchive::kTgz, dir / "store/tmp.tgz").ok());
  ASSERT_TRUE(SaveArtifact(dir / "tmp", ArtifactArchive::kNone, dir / "store/tmp").ok());
  ASSERT_TRUE(SaveArtifact(dir / "tmp/hello.txt", ArtifactArchive::kTgz, dir / "store/f.tgz").ok());

  for (const std::string& stored : {dir / "store/tmp.tgz", dir / "store/tmp"}) {
    absl::Status status = LoadArtifact(stored, "missing.txt", dir / "in/x");
    EXPECT_TRUE(absl::IsNotFound(status)) << status;
    EXPECT_THAT(status.message(), HasSubstr("missing.txt"));
    status = LoadArtifact(stored, "hello.txt/below", dir / "in/x");
    EXPECT_TRUE(absl::IsNotFound(status)) << status;
  }
  // A file artifact has nothing inside it.
  absl::Status status = LoadArtifact(dir / "store/f.tgz", "hello.txt", dir / "in/x");
  EXPECT_TRUE(absl::IsNotFound(status)) << status;
  EXPECT_FALSE(Exists(dir / "in/x"));
  EXPECT_THAT(List(dir / "in"), IsEmpty());  // no staging directory left
}

TEST(ArtifactsTest, SubPathWithDotDotOrAbsoluteIsInvalidArgument) {
  TempDir dir;
  WriteFile(dir / "tmp/hello.txt", "hello");
  WriteFile(dir / "secret.txt", "secret");
  ASSERT_TRUE(SaveArtifact(dir / "tmp", ArtifactArchive::kTgz, dir / "store/tmp.tgz").ok());
  ASSERT_TRUE(SaveArtifact(dir / "tmp", ArtifactArchive::kNone, dir / "store/tmp").ok());

  for (const std::string& stored : {dir / "store/tmp.tgz", dir / "store/tmp"}) {
    for (const std::string& sub_path :
         std::vector<std::string>{"../secret.txt", "a/../../x", "..", dir / "secret.txt"}) {
      absl::Status status = LoadArtifact(stored, sub_path, dir / "in/x");
      EXPECT_TRUE(absl::IsInvalidArgument(status)) << sub_path << ": " << status;
    }
  }
  EXPECT_FALSE(Exists(dir / "in"));
}

TEST(ArtifactsTest, SubPathThroughASymlinkIsNotFollowed) {
  TempDir dir;
  WriteFile(dir / "outside/secret.txt", "secret");
  MakeDir(dir / "tmp");
  ASSERT_EQ(symlink((dir / "outside").c_str(), (dir / "tmp/escape").c_str()), 0);
  ASSERT_TRUE(SaveArtifact(dir / "tmp", ArtifactArchive::kTgz, dir / "store/tmp.tgz").ok());
  ASSERT_TRUE(SaveArtifact(dir / "tmp", ArtifactArchive::kNone, dir / "store/tmp").ok());

  for (const std::string& stored : {dir / "store/tmp.tgz", dir / "store/tmp"}) {
    absl::Status status = LoadArtifact(stored, "escape/secret.txt", dir / "in/x");
    EXPECT_TRUE(absl::IsNotFound(status)) << status;
  }
  EXPECT_EQ(ReadFile(dir / "outside/secret.txt"), "secret");  // not moved away either
  // The symlink itself can be loaded, as a symlink.
  ASSERT_TRUE(LoadArtifact(dir / "store/tmp.tgz", "escape", dir / "in/link").ok());
  EXPECT_EQ(LinkTarget(dir / "in/link"), dir / "outside");
}

TEST(ArtifactsTest, MissingSourceIsNotFound) {
  TempDir dir;
  for (ArtifactArchive archive : {ArtifactArchive::kTgz, ArtifactArchive::kNone}) {
    absl::Status status = SaveArtifact(dir / "nope/out.txt", archive, dir / "store/out");
    EXPECT_TRUE(absl::IsNotFound(status)) << status;
    EXPECT_THAT(status.message(), HasSubstr(dir / "nope/out.txt"));
  }
  ASSERT_EQ(symlink("/nonexistent", (dir / "dangling").c_str()), 0);
  EXPECT_TRUE(
      absl::IsNotFound(SaveArtifact(dir / "dangling", ArtifactArchive::kTgz, dir / "store/d")));
  EXPECT_FALSE(Exists(dir / "store/out"));
}

TEST(ArtifactsTest, MissingStoredIsNotFound) {
  TempDir dir;
  absl::Status status = LoadArtifact(dir / "store/none.tgz", "", dir / "in/x");
  EXPECT_TRUE(absl::IsNotFound(status)) << status;
  EXPECT_FALSE(Exists(dir / "in"));
}

TEST(ArtifactsTest, SourceRootOrSpecialFileIsInvalidArgument) {
  TempDir dir;
  EXPECT_TRUE(absl::IsInvalidArgument(SaveArtifact("/", ArtifactArchive::kTgz, dir / "root.tgz")));
  ASSERT_EQ(mkfifo((dir / "fifo").c_str(), 0644), 0);
  EXPECT_TRUE(
      absl::IsInvalidArgument(SaveArtifact(dir / "fifo", ArtifactArchive::kTgz, dir / "f.tgz")));
  EXPECT_TRUE(
      absl::IsInvalidArgument(SaveArtifact(dir / "fifo", ArtifactArchive::kNone, dir / "f")));
  EXPECT_THAT(List(dir.path()), ElementsAre("fifo"));
}

TEST(ArtifactsTest, DestinationInsideTheSourceDirectoryIsInvalidArgument) {
  TempDir dir;
  WriteFile(dir / "work/a.txt", "a");
  for (ArtifactArchive archive : {ArtifactArchive::kTgz, ArtifactArchive::kNone}) {
    absl::Status status = SaveArtifact(dir / "work", archive, dir / "work/store/out");
    EXPECT_TRUE(absl::IsInvalidArgument(status)) << status;
  }
  EXPECT_FALSE(Exists(dir / "work/store/out"));
}

TEST(ArtifactsTest, TarWithTwoTopLevelEntriesLoadsAsADirectoryHoldingBoth) {
  TempDir dir;
  WriteFile(dir / "src/a.txt", "a");
  WriteFile(dir / "src/b/c.txt", "c");
  MakeDir(dir / "store");
  ASSERT_EQ(Shell("tar -czf '" + (dir / "store/two.tgz") + "' -C '" + (dir / "src") + "' a.txt b"),
            0);

  absl::Status loaded = LoadArtifact(dir / "store/two.tgz", "", dir / "in/both");
  ASSERT_TRUE(loaded.ok()) << loaded;
  EXPECT_TRUE(IsDir(dir / "in/both"));
  EXPECT_EQ(Mode(dir / "in/both"), 0755);
  EXPECT_THAT(List(dir / "in/both"), ElementsAre("a.txt", "b"));
  EXPECT_EQ(ReadFile(dir / "in/both/a.txt"), "a");
  EXPECT_EQ(ReadFile(dir / "in/both/b/c.txt"), "c");

  ASSERT_TRUE(LoadArtifact(dir / "store/two.tgz", "b/c.txt", dir / "in/c.txt").ok());
  EXPECT_EQ(ReadFile(dir / "in/c.txt"), "c");
  EXPECT_THAT(List(dir / "in"), ElementsAre("both", "c.txt"));
}

TEST(ArtifactsTest, TarOfADotDirectoryLoadsItsContent) {
  TempDir dir;
  WriteFile(dir / "src/a.txt", "a");
  WriteFile(dir / "src/b.txt", "b");
  MakeDir(dir / "store");
  ASSERT_EQ(Shell("tar -czf '" + (dir / "store/dot.tgz") + "' -C '" + (dir / "src") + "' ."), 0);

  ASSERT_TRUE(LoadArtifact(dir / "store/dot.tgz", "", dir / "in").ok());
  EXPECT_THAT(List(dir / "in"), ElementsAre("a.txt", "b.txt"));
}

struct HostileCase {
  std::string label;
  std::vector<TarEntry> entries;
  std::string reason;  // in the error message
};

TEST(ArtifactsTest, HostileArchiveEntriesAreRefusedAndNothingIsWrittenOutside) {
  TempDir dir;
  MakeDir(dir / "store");
  const std::vector<HostileCase> cases = {
      {"dot-dot",
       {{.name = "ok.txt", .content = "ok"}, {.name = "../evil", .content = "x"}},
       "has a \"..\""},
      {"nested dot-dot", {{.name = "a/../../evil", .content = "x"}}, "has a \"..\""},
      {"absolute", {{.name = dir / "evil", .content = "x"}}, "is absolute"},
      {"through a symlink",
       {{.name = "link", .type = AE_IFLNK, .link = dir.path()},
        {.name = "link/evil", .content = "x"}},
       "leads through a symlink"},
      {"through a relative symlink",
       {{.name = "d/link", .type = AE_IFLNK, .link = "../.."},
        {.name = "d/link/evil", .content = "x"}},
       "leads through a symlink"},
      {"hard link",
       {{.name = "a.txt", .content = "a"}, {.name = "evil", .link = dir / "secret.txt"}},
       "is a hard link"},
      {"device", {{.name = "evil", .type = AE_IFCHR}}, "is a device"},
      {"fifo", {{.name = "evil", .type = AE_IFIFO}}, "fifo"},
  };
  for (const HostileCase& c : cases) {
    SCOPED_TRACE(c.label);
    const std::string stored = dir / "store/hostile.tgz";
    WriteTar(stored, c.entries);
    WriteFile(dir / "out/target/old.txt", "old");

    absl::Status status = LoadArtifact(stored, "", dir / "out/target");
    EXPECT_TRUE(absl::IsInvalidArgument(status)) << status;
    EXPECT_THAT(status.message(), HasSubstr(c.reason));
    EXPECT_FALSE(Exists(dir / "evil"));
    EXPECT_FALSE(Exists(dir / "out/evil"));
    EXPECT_THAT(List(dir.path()), ElementsAre("out", "store"));
    // The old target is untouched and no staging directory is left.
    EXPECT_THAT(List(dir / "out"), ElementsAre("target"));
    EXPECT_THAT(List(dir / "out/target"), ElementsAre("old.txt"));
  }
}

TEST(ArtifactsTest, SetuidAndSetgidBitsAreKeptInTheArchiveButDroppedOnExtraction) {
  TempDir dir;
  WriteFile(dir / "tool", "#!/bin/sh\n", 06755);
  ASSERT_TRUE(SaveArtifact(dir / "tool", ArtifactArchive::kTgz, dir / "store/tool.tgz").ok());
  EXPECT_THAT(Capture("tar -tvzf '" + (dir / "store/tool.tgz") + "'"), HasSubstr("-rwsr-sr-x"));

  ASSERT_TRUE(LoadArtifact(dir / "store/tool.tgz", "", dir / "in/tool").ok());
  EXPECT_EQ(Mode(dir / "in/tool"), 0755);
}

TEST(ArtifactsTest, SaveReplacesAnExistingDestination) {
  TempDir dir;
  WriteFile(dir / "work/a.txt", "new");
  MakeDir(dir / "work/d");
  WriteFile(dir / "work/d/new.txt", "new");

  // A file over a file, and over a directory.
  WriteFile(dir / "store/a.tgz", "old");
  ASSERT_TRUE(SaveArtifact(dir / "work/a.txt", ArtifactArchive::kTgz, dir / "store/a.tgz").ok());
  EXPECT_THAT(TarNames(dir / "store/a.tgz"), ElementsAre("a.txt"));
  WriteFile(dir / "store/a/stale.txt", "old");
  ASSERT_TRUE(SaveArtifact(dir / "work/a.txt", ArtifactArchive::kNone, dir / "store/a").ok());
  EXPECT_EQ(ReadFile(dir / "store/a"), "new");

  // A directory over a directory, and over a file.
  WriteFile(dir / "store/d/stale.txt", "old");
  ASSERT_TRUE(SaveArtifact(dir / "work/d", ArtifactArchive::kNone, dir / "store/d").ok());
  EXPECT_THAT(List(dir / "store/d"), ElementsAre("new.txt"));
  WriteFile(dir / "store/f", "old");
  ASSERT_TRUE(SaveArtifact(dir / "work/d", ArtifactArchive::kNone, dir / "store/f").ok());
  EXPECT_THAT(List(dir / "store/f"), ElementsAre("new.txt"));

  EXPECT_THAT(List(dir / "store"), ElementsAre("a", "a.tgz", "d", "f"));
}

TEST(ArtifactsTest, LoadReplacesAnExistingTarget) {
  TempDir dir;
  WriteFile(dir / "work/out/new.txt", "new");
  ASSERT_TRUE(SaveArtifact(dir / "work/out", ArtifactArchive::kTgz, dir / "store/out.tgz").ok());
  ASSERT_TRUE(
      SaveArtifact(dir / "work/out/new.txt", ArtifactArchive::kTgz, dir / "store/new.tgz").ok());

  // A directory over a directory (nothing stale left), and over a file.
  WriteFile(dir / "in/dir/stale.txt", "old");
  MakeDir(dir / "in/dir/readonly", 0555);
  ASSERT_TRUE(LoadArtifact(dir / "store/out.tgz", "", dir / "in/dir").ok());
  EXPECT_THAT(List(dir / "in/dir"), ElementsAre("new.txt"));
  WriteFile(dir / "in/file", "old");
  ASSERT_TRUE(LoadArtifact(dir / "store/out.tgz", "", dir / "in/file").ok());
  EXPECT_THAT(List(dir / "in/file"), ElementsAre("new.txt"));

  // A file over a file, and over a directory.
  ASSERT_TRUE(LoadArtifact(dir / "store/new.tgz", "", dir / "in/file").ok());
  EXPECT_EQ(ReadFile(dir / "in/file"), "new");
  ASSERT_TRUE(LoadArtifact(dir / "store/new.tgz", "", dir / "in/dir").ok());
  EXPECT_EQ(ReadFile(dir / "in/dir"), "new");

  // A copied (not archived) artifact too.
  WriteFile(dir / "in/copy/stale.txt", "old");
  ASSERT_TRUE(LoadArtifact(dir / "work/out", "", dir / "in/copy").ok());
  EXPECT_THAT(List(dir / "in/copy"), ElementsAre("new.txt"));
  EXPECT_THAT(List(dir / "in"), ElementsAre("copy", "dir", "file"));
}

TEST(ArtifactsTest, PlainFileThatIsNotAnArchiveIsCopiedAsIs) {
  TempDir dir;
  WriteFile(dir / "store/notes.txt", "just text, not a tar\n", 0640);
  ASSERT_TRUE(LoadArtifact(dir / "store/notes.txt", "", dir / "in/notes").ok());
  EXPECT_TRUE(IsRegular(dir / "in/notes"));
  EXPECT_EQ(ReadFile(dir / "in/notes"), "just text, not a tar\n");
  EXPECT_EQ(Mode(dir / "in/notes"), 0640);

  WriteFile(dir / "store/empty", "");
  ASSERT_TRUE(LoadArtifact(dir / "store/empty", "", dir / "in/empty").ok());
  EXPECT_TRUE(IsRegular(dir / "in/empty"));
  EXPECT_EQ(ReadFile(dir / "in/empty"), "");
}

TEST(ArtifactsTest, GzipOfANonTarIsCopiedAsIs) {
  TempDir dir;
  WriteFile(dir / "src/text.txt", "hello, gzip\n");
  MakeDir(dir / "store");
  ASSERT_EQ(Shell("gzip -c '" + (dir / "src/text.txt") + "' > '" + (dir / "store/text.gz") + "'"),
            0);
  const std::string gzipped = ReadFile(dir / "store/text.gz");
  ASSERT_EQ(gzipped.substr(0, 2), "\x1f\x8b");

  ASSERT_TRUE(LoadArtifact(dir / "store/text.gz", "", dir / "in/text.gz").ok());
  EXPECT_TRUE(IsRegular(dir / "in/text.gz"));
  EXPECT_EQ(ReadFile(dir / "in/text.gz"), gzipped);
}

TEST(ArtifactsTest, UncompressedTarIsCopiedAsIs) {
  TempDir dir;
  MakeDir(dir / "store");
  WriteTar(dir / "store/plain.tar", {{.name = "a.txt", .content = "a"}}, /*gzip=*/false);
  const std::string tar = ReadFile(dir / "store/plain.tar");

  ASSERT_TRUE(LoadArtifact(dir / "store/plain.tar", "", dir / "in/plain.tar").ok());
  EXPECT_TRUE(IsRegular(dir / "in/plain.tar"));
  EXPECT_EQ(ReadFile(dir / "in/plain.tar"), tar);
}

TEST(ArtifactsTest, EmptyTgzLoadsAsAnEmptyDirectory) {
  TempDir dir;
  MakeDir(dir / "store");
  WriteTar(dir / "store/empty.tgz", {});
  ASSERT_TRUE(LoadArtifact(dir / "store/empty.tgz", "", dir / "in/empty").ok());
  EXPECT_TRUE(IsDir(dir / "in/empty"));
  EXPECT_THAT(List(dir / "in/empty"), IsEmpty());
}

TEST(ArtifactsTest, LongAndNonAsciiNamesRoundTrip) {
  TempDir dir;
  const std::string long_name(150, 'n');
  WriteFile(dir / ("work/out/" + long_name + "/f.txt"), "long");
  WriteFile(dir / "work/out/caf\xc3\xa9.txt", "utf-8");
  ASSERT_TRUE(SaveArtifact(dir / "work/out", ArtifactArchive::kTgz, dir / "store/out.tgz").ok());
  ASSERT_TRUE(LoadArtifact(dir / "store/out.tgz", "", dir / "in").ok());
  EXPECT_EQ(ReadFile(dir / ("in/" + long_name + "/f.txt")), "long");
  EXPECT_EQ(ReadFile(dir / "in/caf\xc3\xa9.txt"), "utf-8");
}

}  // namespace
}  // namespace dagd::runners::local
