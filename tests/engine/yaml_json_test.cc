// YamlToJson / JsonToYaml: types survive a round trip, strings that look like other types stay
// strings, multi-line text becomes a literal block, and the output reads as Argo writes YAML.
#include "engine/yaml_json.h"

#include <gtest/gtest.h>

namespace dagd::engine {
namespace {

using nlohmann::json;

json RoundTrip(const json& value) {
  absl::StatusOr<json> back = YamlToJson(JsonToYaml(value), "out.yaml");
  EXPECT_TRUE(back.ok()) << back.status() << "\n" << JsonToYaml(value);
  return back.ok() ? *back : json();
}

TEST(YamlJsonTest, ReadsPlainScalarsByTheCoreSchemaAndQuotedOnesAsStrings) {
  absl::StatusOr<json> doc = YamlToJson(
      "a: 3\nb: \"3\"\nc: true\nd: 'true'\ne: ~\nf: 1.5\ng: hello\nh: [1, x]\n", "in.yaml");
  ASSERT_TRUE(doc.ok()) << doc.status();
  EXPECT_EQ(*doc, json::parse(R"({"a":3,"b":"3","c":true,"d":"true","e":null,"f":1.5,
                                  "g":"hello","h":[1,"x"]})"));
}

TEST(YamlJsonTest, MalformedYamlNamesTheFileAndLine) {
  absl::StatusOr<json> doc = YamlToJson("a: 1\nb: [unclosed\n", "in.yaml");
  ASSERT_FALSE(doc.ok());
  EXPECT_EQ(doc.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(std::string(doc.status().message()).rfind("in.yaml:", 0), 0u) << doc.status();
}

TEST(YamlJsonTest, PrintsBlockStyleWithListsAtTheirKeysIndent) {
  json workflow = json::parse(R"({
    "apiVersion": "argoproj.io/v1alpha1",
    "kind": "Workflow",
    "spec": {"entrypoint": "main",
             "templates": [{"name": "main",
                            "container": {"image": "alpine:3", "command": ["sh", "-c"],
                                          "args": ["echo {{inputs.parameters.x}}"]}}],
             "empty": {}, "none": []}})");
  EXPECT_EQ(JsonToYaml(workflow),
            "apiVersion: argoproj.io/v1alpha1\n"
            "kind: Workflow\n"
            "spec:\n"
            "  empty: {}\n"
            "  entrypoint: main\n"
            "  none: []\n"
            "  templates:\n"
            "  - container:\n"
            "      args:\n"
            "      - echo {{inputs.parameters.x}}\n"
            "      command:\n"
            "      - sh\n"
            "      - -c\n"
            "      image: alpine:3\n"
            "    name: main\n");
  EXPECT_EQ(RoundTrip(workflow), workflow);
}

TEST(YamlJsonTest, StringsThatReadAsOtherTypesAreQuoted) {
  json values = {
      {"number", "3"},       {"float", "1.5"},   {"bool", "true"},        {"yes", "yes"},
      {"null", "null"},      {"empty", ""},      {"tilde", "~"},          {"dash", "-c"},
      {"dash_space", "- c"}, {"lone_dash", "-"}, {"colon", "a: b"},       {"hash", "a #b"},
      {"lead", " x"},        {"brace", "{{x}}"}, {"star", "*"},           {"tab", "a\tb"},
      {"ctl", "a\x01z"},     {"unicode", "é ✓"}, {"3", "key is a number"}};
  const std::string yaml = JsonToYaml(values);
  EXPECT_NE(yaml.find("number: \"3\"\n"), std::string::npos) << yaml;
  EXPECT_NE(yaml.find("\"3\": key is a number\n"), std::string::npos) << yaml;
  EXPECT_NE(yaml.find("dash: -c\n"), std::string::npos) << yaml;
  EXPECT_EQ(RoundTrip(values), values);
}

TEST(YamlJsonTest, MultiLineStringsAreLiteralBlocksThatKeepTheirNewlines) {
  json values = {{"one", "- hosts: all\n  tasks: []\n"},
                 {"none", "line 1\nline 2"},
                 {"more", "a\n\n"},
                 {"blank", "a\n\nb\n"},
                 {"leading_space", " a\nb\n"},
                 {"list", json::array({"x\ny\n"})}};
  const std::string yaml = JsonToYaml(values);
  EXPECT_NE(yaml.find("one: |\n  - hosts: all\n    tasks: []\n"), std::string::npos) << yaml;
  EXPECT_NE(yaml.find("none: |-\n  line 1\n  line 2\n"), std::string::npos) << yaml;
  EXPECT_EQ(RoundTrip(values), values);
}

TEST(YamlJsonTest, NestedListsAndScalarsAtTheTop) {
  json nested = json::parse(R"([[1, 2], [], {"a": [{"b": null}]}, false, 2.5])");
  EXPECT_EQ(RoundTrip(nested), nested);
  EXPECT_EQ(JsonToYaml(json("x")), "x\n");
  EXPECT_EQ(JsonToYaml(json::object()), "{}\n");
}

}  // namespace
}  // namespace dagd::engine
