// Jinja2 belongs to Ansible (issue 3, point 3): a workflow whose ansible template is full of
// Jinja2 — expressions, filters, loops, `{{ item }}` inside an Ansible loop, in the inline
// playbook and in extra vars — goes through the engine (parse, RunState dispatch, resolved
// template) and the LocalRunner; dagd substitutes only its own tags and Ansible renders the rest.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <memory>
#include <string>

#include "engine/parser.h"
#include "engine/run_state.h"
#include "engine/validate.h"
#include "runners/local/local_runner.h"
#include "tests/runners/runner_test_util.h"

namespace dagd::runners::local {
namespace {

using ::dagd::runners::testing::MakeSpec;
using ::dagd::runners::testing::ReadTextFile;
using ::dagd::runners::testing::Recorder;
using ::dagd::runners::testing::RunUntil;
using ::dagd::runners::testing::TempDir;
using ::testing::ElementsAre;

constexpr char kPlaybook[] = R"(- hosts: all
  connection: local
  gather_facts: false
  vars:
    ansible_python_interpreter: "{{ ansible_playbook_python }}"
    numbers: [3, 1, 2]
  tasks:
    - name: square each number
      ansible.builtin.set_fact:
        squares: "{{ squares | default([]) + [square_of_item | int] }}"
      loop: "{{ numbers | sort }}"
      tags: [report]
    - name: echo each item
      ansible.builtin.debug:
        msg: "item {{ item }} of {{ numbers | length }}"
      loop: "{{ numbers }}"
      tags: [report]
    - name: write the report
      ansible.builtin.copy:
        dest: "{{ lookup('ansible.builtin.env', 'PWD') }}/report.txt"
        content: |
          who={{ who | upper }}
          fruit={{ fruit }}
          squares={{ squares | join(',') }}
          labels={{ labels | map('upper') | join(' ') }}
          fruits={% for f in fruits %}{{ loop.index }}:{{ f | title }};{% endfor %}!
          templated={{ templated }}
          {{ item_note }}
          {{ '{{' }}raw{{ '}}' }}
      tags: [report]
    - name: not selected by the tags
      ansible.builtin.fail:
        msg: "{{ 'should' ~ ' not run' }}"
      tags: [other]
)";

constexpr char kWorkflow[] = R"(apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata:
  name: jinja
spec:
  entrypoint: main
  arguments:
    parameters:
    - {name: who, value: world}
  templates:
  - name: main
    dag:
      tasks:
      - name: report
        template: report
        withItems: [apple]
        arguments:
          parameters:
          - {name: who, value: "{{workflow.parameters.who}}"}
          - {name: fruit, value: "{{item}}"}
          - {name: tag, value: report}
  - name: report
    inputs:
      parameters: [{name: who}, {name: fruit}, {name: tag}]
    ansible:
      inventory: "localhost,"
      tags: "{{ inputs.parameters.tag }}"
      extraVars:
        who: "{{inputs.parameters.who}}"
        fruit: "{{inputs.parameters.fruit}}"
        fruits: ["{{inputs.parameters.fruit}}", kiwi]
        labels: [a, b]
        square_of_item: "{{ item * item }}"
        templated: "{{ who }}-{{ fruit | length }}"
        item_note: "{{ item | default('no item') }}"
      source: |
PLAYBOOK)";

std::string Indent(const std::string& text, const std::string& by) {
  std::string out;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size() - 1;
    out += by + text.substr(start, end - start + 1);
    start = end + 1;
  }
  return out;
}

TEST(AnsibleJinjaTest, JinjaIsLeftToAnsible) {
  std::string yaml = kWorkflow;
  yaml.replace(yaml.find("PLAYBOOK"), 8, Indent(kPlaybook, "        "));
  absl::StatusOr<engine::Workflow> parsed = engine::ParseWorkflow(yaml, "jinja.yaml");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  ASSERT_TRUE(engine::ValidateWorkflow(*parsed).ok());
  auto workflow = std::make_shared<const engine::Workflow>(*std::move(parsed));
  auto parameters = engine::ResolveWorkflowArguments(*workflow, {});
  ASSERT_TRUE(parameters.ok()) << parameters.status();
  auto state = engine::RunState::Create(workflow, *parameters, "jinja-run", 0);
  ASSERT_TRUE(state.ok()) << state.status();
  std::vector<engine::DispatchRequest> dispatches = state->Advance(0);
  ASSERT_EQ(dispatches.size(), 1u);

  // The engine substituted its own tags and nothing else.
  const engine::Template& resolved = dispatches[0].resolved;
  ASSERT_TRUE(resolved.ansible.has_value());
  const engine::AnsibleSpec& a = *resolved.ansible;
  EXPECT_EQ(a.source, kPlaybook);
  EXPECT_THAT(a.tags, ElementsAre("report"));
  EXPECT_EQ(a.extra_vars.at("who"), "world");
  EXPECT_EQ(a.extra_vars.at("fruit"), "apple");
  EXPECT_EQ(a.extra_vars.at("fruits"), nlohmann::json({"apple", "kiwi"}));
  EXPECT_EQ(a.extra_vars.at("square_of_item"), "{{ item * item }}");
  EXPECT_EQ(a.extra_vars.at("templated"), "{{ who }}-{{ fruit | length }}");
  EXPECT_EQ(a.extra_vars.at("item_note"), "{{ item | default('no item') }}");

  // Ansible renders the rest.
  boost::asio::io_context io;
  LocalRunner runner(io, LocalRunnerOptions{});
  TempDir dir;
  AttemptSpec spec = MakeSpec(resolved, "jinja-run-report-1", dir.Subdir("attempt"));
  Recorder r;
  absl::Status started = runner.Start(spec, r.Callbacks());
  ASSERT_TRUE(started.ok()) << started;
  ASSERT_TRUE(RunUntil(
      io, [&] { return r.finished(); }, std::chrono::seconds(120)));
  ASSERT_EQ(r.result->phase, engine::NodePhase::kSucceeded)
      << r.result->message << r.stdout_text << r.stderr_text;
  EXPECT_EQ(ReadTextFile(spec.work_dir + "/report.txt"),
            "who=WORLD\n"
            "fruit=apple\n"
            "squares=1,4,9\n"
            "labels=A B\n"
            "fruits=1:Apple;2:Kiwi;!\n"
            "templated=world-5\n"
            "no item\n"
            "{{raw}}\n");
  EXPECT_THAT(r.stdout_text, ::testing::HasSubstr("\"msg\": \"item 3 of 3\""));
  EXPECT_THAT(r.stdout_text, ::testing::Not(::testing::HasSubstr("not selected by the tags")));
}

}  // namespace
}  // namespace dagd::runners::local
