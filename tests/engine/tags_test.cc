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
        "{{ item | default(1) }}", "{{ workflow.parameters.env | upper }}", "{{ inputs_dir }}",
        "{% raw %}{{ x }}{% endraw %}"}) {
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
  // An expression's braces do not end it early.
  EXPECT_EQ(FindDagdTags("{{={a: {b: 1}}}} {{=toJson(filter([1], {# > 0}))}} {{workflow.name}}"),
            (std::vector<std::string>{"workflow.name"}));
}

TEST(TagsTest, SubstitutesExpressions) {
  TagScope scope = kScope;
  scope["inputs.parameters.foo"] = "3";
  scope["workflow.creationTimestamp"] = "2024-05-01T10:00:00Z";
  EXPECT_EQ(Sub("{{=sprig.upper('a')}}"), "A");
  EXPECT_EQ(Sub("{{=toJson(filter([1, 3], {# > 1}))}}"), "[3]");
  EXPECT_EQ(Sub("hello {{=asInt(inputs.parameters.foo) * 10}} @ "
                "{{=sprig.date('2006', workflow.creationTimestamp)}}\n",
                scope),
            "hello 30 @ 2024\n");
  EXPECT_EQ(Sub("{{= workflow.parameters.env }}"), "staging");
  EXPECT_EQ(Sub("{{=tasks['a-b'].outputs.result + '!'}}"), "ok!");
  EXPECT_EQ(Sub("{{=\n  upper(\n    workflow.parameters.env)\n}}"), "STAGING");  // several lines
  EXPECT_EQ(Sub("{{={a: {b: 1}}.a}}"), "{\"b\":1}");                             // braces inside
  EXPECT_EQ(Sub("{{='}}' + '{'}} and {{workflow.name}}"), "}}{ and deploy-1");   // strings too
  EXPECT_EQ(Sub("{{=7 / 2}} {{=6 / 2}} {{=1 == 1}} [{{=nil}}]"), "3.5 3 true []");
  EXPECT_EQ(Sub("{{=inputs.parameters.foo ?? 'none'}}"), "none");
  // Jinja2 next to an expression stays as it is.
  EXPECT_EQ(Sub("{{ ansible_host }}={{=workflow.name}}"), "{{ ansible_host }}=deploy-1");
}

TEST(TagsTest, ExpressionErrorsNameTheTag) {
  absl::StatusOr<std::string> out = SubstituteTags("x {{=a +}}", kScope);
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(out.status().message(), "tag {{=a +}}: expression 'a +': unexpected end at column 4");
  out = SubstituteTags("{{=tasks.x.outputs.result}}", {});
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().message(),
            "tag {{=tasks.x.outputs.result}}: expression 'tasks.x.outputs.result': unknown name "
            "tasks at column 1");
  // A long expression over several lines is shown shortened, on one line.
  out = SubstituteTags("{{=\n  workflow.parameters.env +\n  workflow.parameters.env +\n  1\n}}",
                       kScope);
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(
      out.status().message(),
      "tag {{= workflow.parameters.env + workflow.par…}}: expression 'workflow.parameters.env + "
      "workflow.parameters.env + 1': invalid operation: string + int at line 3, column 27");
  // An unterminated string: the tag ends at the first }}.
  out = SubstituteTags("{{= 'abc }} more", kScope);
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().message(),
            "tag {{= 'abc}}: expression ''abc': unterminated string at column 2");
}

}  // namespace
}  // namespace dagd::engine
