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

#include "dagd/v1/audit.pb.h"
#include "dagd/v1/run.pb.h"
#include "dagd/v1/workflow.pb.h"
#include "google/protobuf/message.h"
#include "google/protobuf/timestamp.pb.h"
#include "nlohmann/json.hpp"

namespace dagd::dagctl {

using TimePoint = std::chrono::system_clock::time_point;

// -o: table (for people), wide (table with more columns), json and yaml (the API messages).
enum class OutputFormat { kTable, kWide, kJson, kYaml };

// True for the formats meant for people (table, wide), false for json and yaml.
inline bool IsText(OutputFormat format) {
  return format == OutputFormat::kTable || format == OutputFormat::kWide;
}

// How text output is drawn.
struct RenderOptions {
  // More columns (-o wide): the template and runner of each node; version, finish time, request
  // id and labels of each run.
  bool wide = false;
  // ANSI colors per phase (a terminal, unless NO_COLOR or --color never).
  bool color = false;
};

google::protobuf::Timestamp ToTimestamp(TimePoint time);
TimePoint FromTimestamp(const google::protobuf::Timestamp& time);

// Argo's word for a phase: "Succeeded", …; "Unknown" for PHASE_UNSPECIFIED.
std::string PhaseName(v1::Phase phase);

// True for the phases a run or node never leaves.
bool IsFinished(v1::Phase phase);

// PhaseName(phase), in the phase's ANSI color when `color`: green Succeeded, red Failed, bold
// red Error, blue Running, yellow Pending, dim Skipped and Omitted.
std::string ColoredPhase(v1::Phase phase, bool color);

// A node a runner executes: NODE_TYPE_POD, or NODE_TYPE_RETRY (whose attempts' Pod nodes are not
// steps of their own).
inline bool IsStep(v1::NodeType type) {
  return type == v1::NODE_TYPE_POD || type == v1::NODE_TYPE_RETRY;
}

// How far a run is: its step nodes (IsStep, not a Retry node's attempts) that are finished, of
// those it has so far (dagd creates a node once its dependencies allow it, so `total` can grow).
struct Progress {
  int done = 0;
  int total = 0;
};
Progress CountProgress(const v1::Run& run);

// One line, newline-terminated: "Running  2/4 nodes done  elapsed 1m20s" (the run's phase,
// `progress`, and the run's duration so far as FormatElapsed). Without `progress`:
// CountProgress(run).
std::string RenderProgress(const v1::Run& run, const Progress& progress, TimePoint now,
                           const RenderOptions& options = {});
std::string RenderProgress(const v1::Run& run, TimePoint now, const RenderOptions& options = {});

// One frame of `dagctl watch` on a terminal: "Run: ID" and the progress line, a blank line, then
// the node tree.
std::string RenderWatchFrame(const v1::Run& run, TimePoint now, const RenderOptions& options);

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
// display width (tree glyphs count as one column, ANSI color sequences as none); trailing blanks
// are trimmed.
class Table {
 public:
  void AddRow(std::vector<std::string> cells);
  std::string Render() const;

 private:
  std::vector<std::vector<std::string>> rows_;
};

// `dagctl runs get`: the run's header lines (Labels when it has any), a blank line, then its node
// tree.
std::string RenderRun(const v1::Run& run, TimePoint now, const RenderOptions& options = {});

// The node tree alone, like `argo get`: NAME (indented with ├─ / └─ by parent and child),
// PHASE, DURATION, ATTEMPTS, RECAP (only when some node has an Ansible recap), MESSAGE; wide adds
// TEMPLATE and RUNNER (of the latest attempt) before MESSAGE. A node with more than one attempt
// lists them under it ("#1", "#2", … with their phase, duration, exit code and message).
std::string RenderNodeTree(const v1::Run& run, TimePoint now, const RenderOptions& options = {});

// `dagctl runs list`: RUN, WORKFLOW, PHASE, CREATED, DURATION, MESSAGE; wide adds VERSION after
// WORKFLOW and FINISHED, REQUEST ID and LABELS ("k=v,k2=v2") before MESSAGE.
std::string RenderRunsTable(const std::vector<v1::Run>& runs, TimePoint now,
                            const RenderOptions& options = {});

// Labels as "k=v,k2=v2", sorted by key; "" for none.
std::string FormatLabels(const google::protobuf::Map<std::string, std::string>& labels);

// `dagctl workflows list`: NAME, VERSION, ENTRYPOINT, CREATED.
std::string RenderWorkflowsTable(const std::vector<v1::Workflow>& workflows);

// `dagctl audit`: one row per audit record, as Audit() (commands.h) describes.
std::string RenderAuditTable(const std::vector<v1::AuditRecord>& records,
                             const RenderOptions& options);

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
