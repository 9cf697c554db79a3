// storage/bundle.h: the path rules, the limits and the digest of a bundle.
#include "storage/bundle.h"

#include <algorithm>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/storage/status_test_macros.h"

namespace dagd::storage::testing {
namespace {

std::string Message(const absl::Status& status) { return std::string(status.message()); }

TEST(Sha256HexTest, KnownVectors) {
  EXPECT_EQ(Sha256Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(ValidateBundlePathTest, AcceptsRelativeNormalizedPaths) {
  for (const char* path : {"site.yml", "playbooks/site.yml", "roles/web/tasks/main.yml",
                           ".ansible.cfg", "a..b/c", "dagd/x", "x/.dagd/y", "with space/é.yml"}) {
    DAGD_ASSERT_OK(ValidateBundlePath(path));
  }
}

TEST(ValidateBundlePathTest, RefusesEachBadPathSayingWhy) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"", "empty"},
      {"/etc/passwd", "absolute"},
      {"..", "\"..\""},
      {"../site.yml", "\"..\""},
      {"a/../../b", "\"..\""},
      {"./site.yml", "not normalized"},
      {"a//b", "not normalized"},
      {"a/", "not normalized"},
      {"a/./b", "not normalized"},
      {".dagd", "reserved"},
      {".dagd/callback_plugins/x.py", "reserved"},
      {".dagd-extra-vars.json", "reserved"},
      {"a\nb", "control character"},
      {std::string("a\0b", 3), "control character"},
      {std::string(1025, 'a'), "1025 bytes"},
  };
  for (const auto& [path, why] : cases) {
    const absl::Status status = ValidateBundlePath(path);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << path;
    EXPECT_NE(Message(status).find(why), std::string::npos) << path << ": " << status;
    EXPECT_NE(Message(status).find("bundle file"), std::string::npos) << status;
  }
}

TEST(ValidateBundleTest, LimitsCountEveryFileAndByte) {
  const std::vector<BundleFile> files = {{.path = "a", .content = "12345"},
                                         {.path = "b", .content = "67890"}};
  DAGD_ASSERT_OK(ValidateBundle(files, {.max_bytes = 10, .max_files = 2}));

  absl::Status bytes = ValidateBundle(files, {.max_bytes = 9, .max_files = 2});
  EXPECT_EQ(bytes.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(Message(bytes).find("10 bytes; the limit is 9"), std::string::npos) << bytes;
  EXPECT_NE(Message(bytes).find("--max-bundle-bytes"), std::string::npos) << bytes;

  absl::Status count = ValidateBundle(files, {.max_bytes = 10, .max_files = 1});
  EXPECT_EQ(count.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(Message(count).find("2 files; the limit is 1"), std::string::npos) << count;
  EXPECT_NE(Message(count).find("--max-bundle-files"), std::string::npos) << count;
}

TEST(ValidateBundleTest, RefusesDuplicatesFileDirectoryClashesAndModes) {
  absl::Status twice =
      ValidateBundle({{.path = "a.yml", .content = "1"}, {.path = "a.yml", .content = "2"}}, {});
  EXPECT_NE(Message(twice).find("\"a.yml\": the path is given twice"), std::string::npos) << twice;

  absl::Status clash = ValidateBundle(
      {{.path = "roles/web", .content = "1"}, {.path = "roles/web/x", .content = ""}}, {});
  EXPECT_NE(Message(clash).find("\"roles/web\": the path is a file and also the directory of "
                                "\"roles/web/x\""),
            std::string::npos)
      << clash;

  absl::Status mode = ValidateBundle({{.path = "x", .mode = 04755, .content = ""}}, {});
  EXPECT_NE(Message(mode).find("mode 04755"), std::string::npos) << mode;

  DAGD_ASSERT_OK(ValidateBundle({{.path = "roles/web", .content = "1"},
                                 {.path = "roles/webserver/x", .content = ""},
                                 {.path = "x", .mode = 0, .content = ""},
                                 {.path = "y", .mode = 0777, .content = ""}},
                                {}));
}

TEST(HashBundleTest, DigestDependsOnPathsModesAndContentOnly) {
  std::vector<BundleFile> files = {{.path = "b.yml", .mode = 0644, .content = "b"},
                                   {.path = "a.yml", .mode = 0, .content = "a"}};
  NormalizeBundleFiles(&files);
  ASSERT_EQ(files[0].path, "a.yml");
  EXPECT_EQ(files[0].mode, 0644u);
  const HashedBundle hashed = HashBundle(files);
  EXPECT_EQ(hashed.info.file_count, 2);
  EXPECT_EQ(hashed.info.total_bytes, 2);
  EXPECT_EQ(hashed.info.digest, Sha256Hex(CanonicalBundleManifest(hashed.entries)));
  EXPECT_EQ(CanonicalBundleManifest(hashed.entries),
            "dagd-bundle-v1\n"
            "0644 ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb a.yml\n"
            "0644 3e23e8160039594a33894f6564e1b1348bbd7a0088d42c4acb73eeaed59c009d b.yml\n");

  auto digest_with = [&](auto change) {
    std::vector<BundleFile> changed = files;
    change(changed);
    NormalizeBundleFiles(&changed);
    return HashBundle(changed).info.digest;
  };
  EXPECT_EQ(digest_with([](auto& f) { std::reverse(f.begin(), f.end()); }), hashed.info.digest);
  EXPECT_NE(digest_with([](auto& f) { f[0].content = "A"; }), hashed.info.digest);
  EXPECT_NE(digest_with([](auto& f) { f[0].mode = 0755; }), hashed.info.digest);
  EXPECT_NE(digest_with([](auto& f) { f[0].path = "c.yml"; }), hashed.info.digest);
  // Moving bytes from one file to another changes the digest, though the contents concatenate
  // to the same text.
  EXPECT_NE(digest_with([](auto& f) {
              f[0].content = "ab";
              f[1].content = "";
            }),
            hashed.info.digest);

  EXPECT_EQ(HashBundle({}).info.digest, "");
}

}  // namespace
}  // namespace dagd::storage::testing
