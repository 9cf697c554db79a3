#include "engine/tags.h"

#include <gtest/gtest.h>

namespace dagd::engine {
namespace {

const TagScope kScope = {{"workflow.parameters.env", "staging"},
                         {"workflow.name", "deploy-1"},
                         {"inputs.parameters.host", "web1"},
                         {"tasks.a-b.outputs.result", "ok"}};

std::string Sub(const std::string& text, const TagScope& scope = kScope) {
  absl::StatusOr<std::string> out = SubstituteTags(text, scope);
  EXPECT_TRUE(out.ok()) << out.status();
  return out.ok() ? *out : "";
}

TEST(TagsTest, SubstitutesDagdTags) {
  EXPECT_EQ(Sub("env={{workflow.parameters.env}} on {{inputs.parameters.host}}"),
            "env=staging on web1");
  EXPECT_EQ(Sub("{{ workflow.parameters.env }}"), "staging");
  EXPECT_EQ(Sub("{{tasks.a-b.outputs.result}}{{workflow.name}}"), "okdeploy-1");
  EXPECT_EQ(Sub("no tags"), "no tags");
  EXPECT_EQ(Sub("unclosed {{workflow.name"), "unclosed {{workflow.name");
}

TEST(TagsTest, LeavesJinjaAlone) {
  for (const char* jinja :
       {"{{ ansible_host }}", "{{ x | default(1) }}", "{{item}}", "{{ item.name }}",
        "{{ item | default(1) }}", "{{ workflow.parameters.env | upper }}", "{{=sprig.upper('a')}}",
        "{{ inputs_dir }}", "{% raw %}{{ x }}{% endraw %}"}) {
    EXPECT_EQ(Sub(jinja), jinja);
  }
}

TEST(TagsTest, ItemIsDagdsOnlyWithAnItemInScope) {
  TagScope scope = kScope;
  scope["item"] = "a";
  scope["item.name"] = "web1";
  EXPECT_EQ(Sub("{{item}}/{{ item.name }}", scope), "a/web1");
  absl::StatusOr<std::string> missing = SubstituteTags("{{item.port}}", scope);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().message(), "unresolved tag {{item.port}}");
}

TEST(TagsTest, UnknownDagdTagIsAnError) {
  absl::StatusOr<std::string> out = SubstituteTags("x {{ tasks.x.outputs.result }}", kScope);
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(out.status().message(), "unresolved tag {{tasks.x.outputs.result}}");
}

TEST(TagsTest, IsDagdTag) {
  EXPECT_TRUE(IsDagdTag("workflow.name"));
  EXPECT_TRUE(IsDagdTag("inputs.parameters.x"));
  EXPECT_TRUE(IsDagdTag("item"));
  EXPECT_TRUE(IsDagdTag("pod.name"));
  EXPECT_FALSE(IsDagdTag("ansible_host"));
  EXPECT_FALSE(IsDagdTag("item | default(1)"));
  EXPECT_FALSE(IsDagdTag("=inputs.parameters.x"));
  EXPECT_FALSE(IsDagdTag("workflows.name"));
  EXPECT_FALSE(IsDagdTag("tasks..x"));
}

TEST(TagsTest, FindDagdTags) {
  EXPECT_EQ(FindDagdTags("{{ a }} {{tasks.x.outputs.result}} {{ item }} {{=1}} {{workflow.name}}"),
            (std::vector<std::string>{"tasks.x.outputs.result", "item", "workflow.name"}));
}

}  // namespace
}  // namespace dagd::engine
