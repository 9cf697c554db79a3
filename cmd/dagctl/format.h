// Rendering of dagd's API messages for dagctl: tables, the node tree of a run, event lines,
// durations, times and the json / yaml forms of any message.
//
// Pure functions: no I/O, and the current time is always passed in, so output is reproducible.
// Times are shown in the local time zone (TZ) as RFC 3339; durations in Argo's short style
// ("1m20s").
#ifndef DAGD_CMD_DAGCTL_FORMAT_H_
#define DAGD_CMD_DAGCTL_FORMAT_H_

#include <chrono>
#include <string>
#include <vector>

#include "dagd/v1/run.pb.h"
#include "dagd/v1/workflow.pb.h"
#include "google/protobuf/message.h"
#include "google/protobuf/timestamp.pb.h"
#include "nlohmann/json.hpp"

namespace dagd::dagctl {

using TimePoint = std::chrono::system_clock::time_point;

enum class OutputFormat { kTable, kJson, kYaml };

google::protobuf::Timestamp ToTimestamp(TimePoint time);
TimePoint FromTimestamp(const google::protobuf::Timestamp& time);

// Argo's word for a phase: "Succeeded", …; "Unknown" for PHASE_UNSPECIFIED.
std::string PhaseName(v1::Phase phase);

// True for the phases a run or node never leaves.
bool IsFinished(v1::Phase phase);

// "45s", "1m20s", "2h5m", "3d4h"; whole seconds, so anything under a second is "0s", and a
// negative duration (clock skew) too.
std::string FormatDuration(std::chrono::nanoseconds duration);

// Local RFC 3339 with a numeric offset, "2024-05-01T12:00:00+02:00"; "-" for an unset (zero)
// timestamp.
std::string FormatTime(const google::protobuf::Timestamp& time);

// A size in bytes for people: "512 B", "1.5 KiB", "32.0 MiB".
std::string FormatBytes(int64_t bytes);

// A workflow version's bundle in one line: the first 12 hex digits of its digest, its file count
// and size, "3f2a9c01d4e5 (3 files, 1.2 KiB)"; "-" without a bundle.
std::string FormatBundle(const v1::Workflow& workflow);

// How long something with these times ran: finish - start, or now - start while unfinished;
// "-" when it has not started.
std::string FormatElapsed(const google::protobuf::Timestamp& start,
                          const google::protobuf::Timestamp& finish, TimePoint now);

// A text table: the first row is the header. Columns are left-aligned, two spaces apart, by
// display width (tree glyphs count as one column); trailing blanks are trimmed.
class Table {
 public:
  void AddRow(std::vector<std::string> cells);
  std::string Render() const;

 private:
  std::vector<std::vector<std::string>> rows_;
};

// `dagctl runs get`: the run's header lines, a blank line, then its node tree.
std::string RenderRun(const v1::Run& run, TimePoint now);

// The node tree alone, like `argo get`: NAME (indented with ├─ / └─ by parent and child),
// PHASE, DURATION, ATTEMPTS, RECAP (only when some node has an Ansible recap), MESSAGE. A node with
// more than one attempt lists them under it
// ("#1", "#2", … with their phase, duration, exit code and message).
std::string RenderNodeTree(const v1::Run& run, TimePoint now);

// `dagctl runs list`: RUN, WORKFLOW, PHASE, CREATED, DURATION, MESSAGE.
std::string RenderRunsTable(const std::vector<v1::Run>& runs, TimePoint now);

// `dagctl workflows list`: NAME, VERSION, ENTRYPOINT, CREATED.
std::string RenderWorkflowsTable(const std::vector<v1::Workflow>& workflows);

// `dagctl workflows get`: header lines, a blank line, then the YAML as stored.
std::string RenderWorkflow(const v1::Workflow& workflow);

// A node's Ansible recap, "ok=3 changed=1 failed=0", then unreachable, skipped, rescued and
// ignored where not zero.
std::string RenderRecap(const v1::AnsibleRecap& recap);
// `dagctl events`: TIME, NODE (display name, "#" attempt), HOST, TASK, STATUS (ok, changed,
// failed, failed (ignored), unreachable, skipped), ITEM (a string item unquoted, others as
// JSON), one row per host result; play and task starts and stats are left out.
std::string RenderAnsibleEventsTable(const std::vector<v1::AnsibleEvent>& events,
                                     const std::string& run_id);
// One line per host result as it streams (`events --follow`), "TIME NODE#ATTEMPT HOST STATUS
// TASK [ITEM]", newline-terminated; "" for an event that is not a host result.
std::string RenderAnsibleEventLine(const v1::AnsibleEvent& event, const std::string& run_id);
// One watch line, "TIME NODE[#ATTEMPT] TYPE PHASE MESSAGE", newline-terminated; NODE is the run
// id for an event of the run itself. An "AnsibleEvent" is shown as RenderAnsibleEventLine()
// (nothing for play and task starts).
std::string RenderEvent(const v1::RunEvent& event, const std::string& run_id);

// "file:line:col: field: message" (the position and field parts only when known), with the
// diagnostic's file, or `file` when it has none.
std::string RenderDiagnostic(const v1::Diagnostic& diagnostic, const std::string& file);

// The message in the proto3 JSON mapping with proto field names and every scalar field present.
nlohmann::ordered_json ToJsonValue(const google::protobuf::Message& message);

// Pretty JSON (two-space indent) or a YAML document, newline-terminated.
// REQUIRES: format is kJson or kYaml.
std::string RenderValue(const nlohmann::ordered_json& value, OutputFormat format);

// One line of compact JSON, or a YAML document that starts with "---": for streams of values.
// REQUIRES: format is kJson or kYaml.
std::string RenderStreamValue(const nlohmann::ordered_json& value, OutputFormat format);

}  // namespace dagd::dagctl

#endif  // DAGD_CMD_DAGCTL_FORMAT_H_
