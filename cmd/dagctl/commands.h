// dagctl's commands: each one calls the dagd API through a Client and prints the outcome.
//
// Every command returns dagctl's exit status: kExitOk, kExitFailure (an RPC error, an unreadable
// file, a run that did not succeed, lint diagnostics) or kExitUsage. Errors go to `err` as
// "dagctl: ...", results to `out`.
#ifndef DAGD_CMD_DAGCTL_COMMANDS_H_
#define DAGD_CMD_DAGCTL_COMMANDS_H_

#include <cstdint>
#include <map>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "cmd/dagctl/bundle.h"
#include "cmd/dagctl/client.h"
#include "cmd/dagctl/format.h"
#include "dagd/v1/run.pb.h"
#include "google/protobuf/timestamp.pb.h"

namespace dagd::dagctl {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;
inline constexpr int kExitUsage = 2;

// What every command needs; the pointers are not owned and outlive the command.
struct Context {
  Client* client;
  OutputFormat format = OutputFormat::kTable;
  std::ostream* out;
  std::ostream* err;
  WatchOptions watch;
  // Checked before a bundle is sent (--max-bundle-bytes, --max-bundle-files).
  BundleLimits bundle_limits;
  // `out` is a terminal: `watch` redraws its tree in place.
  bool terminal = false;
  // Phases in color (--color, NO_COLOR, terminal).
  bool color = false;
  // -n/--namespace: the namespace of what apply and submit store, and the only one list
  // commands show; "" leaves it to the YAML (metadata.namespace, else "default") and lists every
  // namespace the caller may read.
  std::string namespace_name;

  RenderOptions render() const { return {format == OutputFormat::kWide, color}; }
};

// `apply -f FILE... [--bundle DIR]`: CreateWorkflow per file ("-" reads stdin), each with the
// bundle read from DIR (ReadBundleDir) — the playbooks, roles and files dagd stores with the
// version. Without --bundle no bundle is sent: a workflow whose ansible templates name playbook
// files is then refused by dagd, telling the user to pass --bundle.
int Apply(Context& context, const std::vector<std::string>& files, const std::string& bundle_dir);

struct SubmitArgs {
  // Exactly one of the two: a stored workflow, or a file with the spec ("-" is stdin).
  std::string workflow;
  std::string file;
  // For `file`: the bundle directory, as for Apply; "" sends none. A stored workflow runs with
  // the bundle of its version.
  std::string bundle_dir;
  // For `workflow`: 0 means the latest.
  int64_t version = 0;
  std::map<std::string, std::string> parameters;
  std::string request_id;
  // Added to the spec's metadata.labels (-l k=v).
  std::map<std::string, std::string> labels;
  // Watch the run to its end; the exit status is then the run's outcome.
  bool watch = false;
};
int Submit(Context& context, const SubmitArgs& args);

// `watch RUN [--from SEQ] [--ansible]` until the run ends. kExitOk when the run Succeeded,
// kExitFailure when it ended otherwise (Failed, Error) or the watch failed.
//
// On a terminal (table/wide): one frame (RenderWatchFrame) redrawn in place whenever an event
// changes it. Piped: one line per event after sequence `after` (RenderEvent; with `ansible`, the
// run's Ansible host results between them), a progress line (RenderProgress, prefixed
// "progress: ") after each event that finishes a step node (one per node: done counts those
// events), then a blank line and the final run (RenderRun). json / yaml: one document per event,
// then the final run.
int Watch(Context& context, const std::string& run_id, int64_t after, bool ansible);

struct ListRunsArgs {
  std::string workflow;
  std::vector<v1::Phase> phases;
  std::optional<google::protobuf::Timestamp> since;
  std::optional<google::protobuf::Timestamp> until;
  // ListRunsRequest.label_selector: the -l requirements joined with ",".
  std::string label_selector;
  // ListRunsRequest.order_by (--sort).
  std::string order_by;
  // Start at this page (--page-token, a previous list's next_page_token).
  std::string page_token;
  // At most this many runs in all; 0 is the server's page size (one page) or no limit (--all).
  int32_t limit = 0;
  // Follow next_page_token to the last page.
  bool all = false;
};
// `runs list`: the table (RenderRunsTable) of one page, or every page with --all; when more
// runs exist, stderr says how to get them (with the next page token).
int ListRuns(Context& context, const ListRunsArgs& args);

// `runs get RUN`: RenderRun, or the Run message as json / yaml.
int GetRun(Context& context, const std::string& run_id);

struct GraphArgs {
  // A workflow file ("-" is stdin, or an existing file), else a run id.
  std::string source;
  // Also write a PNG here through Graphviz's `dot -Tpng` ("" = no).
  std::string png;
};
// `graph FILE|RUN [--png OUT]`: the DAG as DOT (RenderDot), or GraphJson as json / yaml. A FILE
// is parsed and validated locally; a RUN's spec comes from GetRun, its phases color the nodes.
// With --png and no `dot` on PATH: kExitFailure naming the package to install.
int Graph(Context& context, const GraphArgs& args);

struct LogsArgs {
  std::string run_id;
  std::string node;
  // 0 means every attempt.
  int32_t attempt = 0;
  bool follow = false;
  // Start each line with "NODE#ATTEMPT: ".
  bool prefix = false;
};
// Writes the log data raw to `out`, stdout and stderr chunks in the order received.
int Logs(Context& context, const LogsArgs& args);

struct EventsArgs {
  std::string run_id;
  // A node name or display name; empty means every node.
  std::string node;
  std::string host;
  bool changed_only = false;
  bool failed_only = false;
  // Stream them as they happen until the run ends (WatchAnsibleEvents).
  bool follow = false;
};

// `events RUN [NODE] [--host H] [--changed] [--failed] [--follow]`: the run's stored Ansible
// events, every page (ListAnsibleEvents). The table shows host results
// (RenderAnsibleEventsTable); json and yaml show every event as a ListAnsibleEventsResponse.
// With --follow, events stream until the run ends, resuming after a broken stream: one line per
// host result (RenderAnsibleEventLine), or one JSON/YAML document per event.
int Events(Context& context, const EventsArgs& args);

struct AuditArgs {
  std::string principal;
  std::string target;  // "run/NAME", "workflow/NAME"
  std::string method;  // "SubmitRun" or the full name
  std::optional<google::protobuf::Timestamp> since;
  std::optional<google::protobuf::Timestamp> until;
  bool failed_only = false;
  int limit = 50;  // 0: every record
};

// `audit [--principal P] [--run RUN | --workflow NAME | --target T] [--method M] [--since T]
// [--until T] [--failed] [--limit N]` (ListAuditRecords): who called which mutating RPC on what,
// and how it ended, newest first; in the -n namespace, else every one where the caller is
// admin. Table: TIME, PRINCIPAL, METHOD, NAMESPACE, TARGET, RESULT, REQUEST ID (wide: also
// AUTH, PEER, MESSAGE).
int Audit(Context& context, const AuditArgs& args);

struct ResumeArgs {
  std::string run_id;
  std::string node;  // "" : every suspended node
  std::string message;
};
// `resume RUN [--node NODE]` (ResumeRun).
int Resume(Context& context, const ResumeArgs& args);

struct RetryArgs {
  std::string run_id;
  std::vector<std::string> restart_nodes;  // succeeded nodes to run again
  std::string message;
  bool watch = false;
};
// `retry RUN [--restart NODE]... [--watch]` (RetryRun).
int Retry(Context& context, const RetryArgs& args);

struct ResubmitArgs {
  std::string run_id;
  bool memoized = false;
  std::map<std::string, std::string> parameters;
  bool watch = false;
};
// `resubmit RUN [--memoized] [-p K=V]... [--watch]` (ResubmitRun): prints the new run's id.
int Resubmit(Context& context, const ResubmitArgs& args);

struct SetNodeArgs {
  std::string run_id;
  std::string node;
  std::map<std::string, std::string> output_parameters;
  v1::Phase phase = v1::PHASE_UNSPECIFIED;
  std::string message;
};
// `set RUN NODE [--output-parameter k=v]… [--phase P]` (SetNode).
int SetNode(Context& context, const SetNodeArgs& args);

// `stop` (StopRun) or, with `terminate`, `terminate` (TerminateRun).
int EndRun(Context& context, const std::string& run_id, const std::string& message, bool terminate);

// `lint FILE...`: kExitFailure when any file has a diagnostic.
int Lint(Context& context, const std::vector<std::string>& files);

// `export argo RUN|FILE [-p K=V]... [--bundle DIR]` (ExportWorkflow): prints one Argo Workflow.
// `source` is a file when it is "-" or names an existing file, else a run id; parameters and the
// bundle apply to a file only.
struct ExportArgs {
  std::string source;
  std::string bundle_dir;
  std::map<std::string, std::string> parameters;
};
int ExportArgo(Context& context, const ExportArgs& args);

int ListWorkflows(Context& context);
int GetWorkflow(Context& context, const std::string& name, int64_t version);
int DeleteWorkflow(Context& context, const std::string& name);

}  // namespace dagd::dagctl

#endif  // DAGD_CMD_DAGCTL_COMMANDS_H_
