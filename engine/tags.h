// dagd's `{{…}}` tags: `{{inputs.parameters.x}}`, `{{workflow.parameters.x}}`, `{{workflow.name}}`,
// `{{tasks.X.outputs.result}}`, `{{tasks.X.outputs.parameters.y}}`, `{{item}}`, `{{item.key}}`, …
//
// Only tags whose first word is one of dagd's (inputs, outputs, workflow, tasks, steps, item,
// pod, node) are substituted; anything else between braces — Jinja2 in playbooks and extra vars,
// `{{ ansible_host }}`, `{{ x | default(1) }}` — is left exactly as written. A dagd tag with no
// value in the scope is an error naming the tag. Thread-safe values.
//
// Precisely: a dagd tag is `{{` + optional spaces + a reference + optional spaces + `}}`, where
// the reference is one of the prefixes above, alone or followed by `.name` segments (letters,
// digits, '-', '_'). So `{{ workflow.parameters.x }}` is dagd's, while `{{ item | default(1) }}`
// (a Jinja2 filter) is not and stays untouched.
//
// `{{=expr}}` is an Argo expression (engine/expr.h), evaluated with the same scope and replaced by
// ExpressionValueText of its value: `{{=asInt(inputs.parameters.n) * 10}}`. It may span lines and
// contain braces: it ends at the first `}}` outside its string literals and outside braces it
// opened (`{{=toJson(filter([1, 3], {# > 1}))}}`). An expression that fails is an error naming the
// tag. Jinja2 has no `{{=`, so playbooks are not affected.
//
// `{{item}}` / `{{item.key}}` are dagd's only where an item is in scope (the scope has an "item"
// key: the arguments of a fan-out child); everywhere else they are left for Jinja2, so a playbook
// or extra var may keep using Ansible's `{{ item }}` loop variable. Inside a fan-out task's
// arguments `{{item}}` is always the fan-out item — use `loop_control.loop_var` there.
#ifndef DAGD_ENGINE_TAGS_H_
#define DAGD_ENGINE_TAGS_H_

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace dagd::engine {

// The values tags resolve to, keyed by the tag's text without braces and spaces:
// "workflow.parameters.env" -> "staging", "item" -> "a", "item.name" -> "web1".
using TagScope = std::map<std::string, std::string>;

// True if `name` (a tag's text) starts with one of dagd's prefixes.
bool IsDagdTag(std::string_view name);

// Replaces every dagd tag and every `{{=expr}}` in `text`. NotFound-free: an unknown dagd tag is
// InvalidArgument "unresolved tag {{tasks.x.outputs.result}}", a failing expression
// InvalidArgument "tag {{=a +}}: expression 'a +': unexpected end at column 4".
absl::StatusOr<std::string> SubstituteTags(std::string_view text, const TagScope& scope);

// The dagd tags that `text` mentions, in order (without braces, trimmed). Expression tags are not
// among them (the variables an expression reads are known only when it is evaluated).
std::vector<std::string> FindDagdTags(std::string_view text);

}  // namespace dagd::engine

#endif  // DAGD_ENGINE_TAGS_H_
