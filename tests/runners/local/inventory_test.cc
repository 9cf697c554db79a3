// PrepareInventory(): every form of the `inventory` field, and malformed inventories refused
// before launch with a message that says what is wrong.
#include "runners/local/inventory.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "tests/runners/runner_test_util.h"

namespace dagd::runners::local {
namespace {

using ::dagd::runners::testing::ReadTextFile;
using ::dagd::runners::testing::TempDir;
using ::dagd::runners::testing::WriteTextFile;
using ::testing::AllOf;
using ::testing::HasSubstr;

constexpr char kWhere[] = "template \"configure\" (wf.yaml:9:5)";

class InventoryTest : public ::testing::Test {
 protected:
  absl::StatusOr<std::string> Prepare(const std::string& inventory) {
    return PrepareInventory(inventory, work_.path(), bundle_.path(), kWhere);
  }
  std::string Error(const std::string& inventory) {
    absl::StatusOr<std::string> result = Prepare(inventory);
    EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument) << inventory;
    return std::string(result.status().message());
  }

  TempDir work_;
  TempDir bundle_;
};

TEST_F(InventoryTest, HostListIsPassedAsIs) {
  EXPECT_EQ(*Prepare("localhost,"), "localhost,");
  EXPECT_EQ(*Prepare(" web1,web2 "), "web1,web2");
}

TEST_F(InventoryTest, PathIsLookedUpInTheBundle) {
  WriteTextFile(bundle_.path() + "/inventories/prod.ini", "[web]\nw1\n");
  EXPECT_EQ(*Prepare("inventories/prod.ini"), bundle_.path() + "/inventories/prod.ini");
  EXPECT_EQ(*Prepare(bundle_.path() + "/inventories"), bundle_.path() + "/inventories");
  EXPECT_THAT(Error("inventories/missing.ini"),
              AllOf(HasSubstr(kWhere), HasSubstr("nor a file in the bundle"),
                    HasSubstr("\"inventories/missing.ini,\"")));
}

TEST_F(InventoryTest, RelativePathWithoutBundleSaysHowToFixIt) {
  auto result = PrepareInventory("hosts.ini", work_.path(), "", kWhere);
  EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(result.status().message()), HasSubstr("--bundle"));
}

TEST_F(InventoryTest, InlineIniIsWrittenForAnsibleToParse) {
  const std::string ini = "[web]\nw1 ansible_connection=local\n";
  auto path = Prepare(ini);
  ASSERT_TRUE(path.ok()) << path.status();
  EXPECT_EQ(*path, work_.path() + "/.dagd-inventory.ini");
  EXPECT_EQ(ReadTextFile(*path), ini);
}

TEST_F(InventoryTest, InlineYamlInPluginFormIsChecked) {
  const std::string yaml =
      "all:\n  children:\n    web:\n      hosts:\n        w1:\n          ansible_port: 2222\n"
      "        w2:\n      vars: {tier: front}\n";
  auto path = Prepare(yaml);
  ASSERT_TRUE(path.ok()) << path.status();
  EXPECT_EQ(*path, work_.path() + "/.dagd-inventory.yml");
  EXPECT_EQ(ReadTextFile(*path), yaml);

  EXPECT_THAT(Error("all:\n  children:\n    web:\n      hostz:\n        w1:\n"),
              AllOf(HasSubstr(kWhere), HasSubstr("inventory (YAML) is malformed"),
                    HasSubstr("group \"all\".children.web has \"hostz\""),
                    HasSubstr("not one of hosts, vars, children")));
  EXPECT_THAT(Error("web:\n  hosts: [w1, w2]\n  vars: {a: 1}\nother:\n  hosts: {w3: }\n"),
              HasSubstr("group \"other\".hosts must be a list of host names"));
}

TEST_F(InventoryTest, JsonInAnsibleInventoryListFormIsConverted) {
  // What `ansible-inventory --list` prints, and what a dynamic-inventory task hands on.
  const std::string listed = R"({
    "_meta": {"hostvars": {"w1": {"ansible_host": "10.0.0.1"}}},
    "all": {"children": ["ungrouped", "web"]},
    "web": {"hosts": ["w1", "w2"], "vars": {"tier": "front"}}
  })";
  auto path = Prepare(listed);
  ASSERT_TRUE(path.ok()) << path.status();
  EXPECT_EQ(*path, work_.path() + "/.dagd-inventory.json");
  EXPECT_EQ(nlohmann::json::parse(ReadTextFile(*path)), nlohmann::json::parse(R"({
    "all": {"children": {"ungrouped": null, "web": null}},
    "web": {"hosts": {"w1": {"ansible_host": "10.0.0.1"}, "w2": null}, "vars": {"tier": "front"}}
  })"))
      << ReadTextFile(*path);
}

TEST_F(InventoryTest, JsonInPluginFormIsKept) {
  auto path = Prepare(R"({"all": {"hosts": {"db1": {"ansible_port": 2200}}}})");
  ASSERT_TRUE(path.ok()) << path.status();
  EXPECT_EQ(nlohmann::json::parse(ReadTextFile(*path)),
            nlohmann::json::parse(R"({"all": {"hosts": {"db1": {"ansible_port": 2200}}}})"));
}

TEST_F(InventoryTest, MalformedOrEmptyStructuredInventoriesAreRefused) {
  EXPECT_THAT(
      Error(R"({"web": {"hosts": ["w1"])"),
      AllOf(HasSubstr(kWhere), HasSubstr("not valid JSON"), HasSubstr("ansible-inventory --list")));
  EXPECT_THAT(Error("{}"), HasSubstr("names no host"));
  EXPECT_THAT(Error(R"({"web": {"vars": {"a": 1}}})"), HasSubstr("names no host"));
  EXPECT_THAT(Error(R"({"web": ["w1"]})"),
              HasSubstr("group \"web\" must be a mapping with hosts, vars or children"));
  EXPECT_THAT(Error(R"({"web": {"hosts": [1]}})"), HasSubstr("group \"web\".hosts[0]"));
  EXPECT_THAT(Error(R"({"_meta": [], "web": {"hosts": ["w1"]}})"), HasSubstr("_meta"));
  EXPECT_THAT(Error("  \n "), HasSubstr("inventory is empty"));
}

}  // namespace
}  // namespace dagd::runners::local
