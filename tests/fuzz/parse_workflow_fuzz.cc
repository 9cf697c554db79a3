// Fuzz target: the workflow parser and the static checks. The input is a YAML file as a client
// submits it: ParseWorkflow must return a workflow or InvalidArgument (never crash, hang or
// throw); a parsed workflow then goes through ValidateWorkflow (every check of validate.h), the
// merge of its arguments with none submitted and, once valid, the topological order of each dag
// template (which REQUIRES a validated workflow: no cycle may get past the checks).
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "engine/parser.h"
#include "engine/validate.h"
#include "engine/workflow.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace dagd::engine;  // NOLINT(google-build-using-namespace): a test's entry point
  const std::string_view yaml(reinterpret_cast<const char*>(data), size);

  // The document cutter stores documents as written; it must keep every byte of them.
  size_t kept = 0;
  for (const YamlDocument& document : SplitYamlDocuments(yaml)) {
    dagd::fuzz::Require(document.first_line >= 1, "SplitYamlDocuments: first_line >= 1");
    kept += document.text.size();
  }
  dagd::fuzz::Require(kept <= yaml.size(), "SplitYamlDocuments: no more text than given");

  absl::StatusOr<Workflow> workflow = ParseWorkflow(yaml, "fuzz.yaml");
  if (!workflow.ok()) {
    dagd::fuzz::RequireInvalidArgument(workflow.status(), "ParseWorkflow");
    return 0;
  }
  const absl::Status valid = ValidateWorkflow(*workflow);
  dagd::fuzz::RequireInvalidArgument(valid, "ValidateWorkflow");
  dagd::fuzz::RequireInvalidArgument(ResolveWorkflowArguments(*workflow, {}).status(),
                                     "ResolveWorkflowArguments");
  if (!valid.ok()) return 0;
  for (const Template& tmpl : workflow->templates) {
    if (!tmpl.dag) continue;
    dagd::fuzz::Require(TopologicalTaskOrder(*tmpl.dag).size() == tmpl.dag->tasks.size(),
                        "TopologicalTaskOrder: every task once");
  }
  return 0;
}
