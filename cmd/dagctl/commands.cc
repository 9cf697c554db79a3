#include "cmd/dagctl/commands.h"

#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "cmd/dagctl/graph.h"
#include "dagd/v1/workflow.pb.h"
#include "engine/parser.h"
#include "engine/template_refs.h"
#include "engine/validate.h"

namespace dagd::dagctl {
namespace {

TimePoint Now() { return std::chrono::system_clock::now(); }

int Fail(Context& context, const std::string& message) {
  *context.err << "dagctl: " << message << "\n";
  return kExitFailure;
}

int RpcFailed(Context& context, const grpc::Status& status) {
  return Fail(context, FormatRpcError(status, context.client->options().server));
}

// Reads `path` ("-" is stdin) into *contents; false, with the reason printed, when it cannot.
bool ReadInput(Context& context, const std::string& path, std::string* contents) {
  if (path == "-") {
    contents->assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
    return true;
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    Fail(context, absl::StrCat("cannot read ", path, ": ", std::strerror(errno)));
    return false;
  }
  std::ostringstream buffer;
  buffer << in.rdbuf();
  *contents = buffer.str();
  return true;
}

void PrintMessage(Context& context, const google::protobuf::Message& message) {
  *context.out << RenderValue(ToJsonValue(message), context.format);
}

absl::Status FetchRun(Context& context, const std::string& run_id, v1::Run* run) {
  v1::GetRunRequest request;
  request.set_run_id(run_id);
  std::unique_ptr<grpc::ClientContext> rpc = context.client->UnaryContext();
  const grpc::Status status = context.client->runs().GetRun(rpc.get(), request, run);
  if (status.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                      FormatRpcError(status, context.client->options().server));
}

// The exit status of a watch that saw the run end in `phase`.
int PhaseExitCode(v1::Phase phase) { return phase == v1::PHASE_SUCCEEDED ? kExitOk : kExitFailure; }

// Prints the run's final state (text: a blank line, header and node tree) and maps its phase to
// the exit status.
int FinishWatch(Context& context, const std::string& run_id) {
  v1::Run run;
  if (absl::Status fetched = FetchRun(context, run_id, &run); !fetched.ok()) {
    return Fail(context, std::string(fetched.message()));
  }
  if (IsText(context.format)) {
    *context.out << "\n" << RenderRun(run, Now(), context.render());
  } else {
    *context.out << RenderStreamValue(ToJsonValue(run), context.format);
  }
  context.out->flush();
  return PhaseExitCode(run.phase());
}

// Terminal control: move the cursor to the start of the line `lines` up, clear to the end.
std::string EraseLines(int lines) {
  return lines > 0 ? absl::StrCat("\x1b[", lines, "F\x1b[J") : std::string();
}

int CountLines(const std::string& text) {
  return static_cast<int>(std::count(text.begin(), text.end(), '\n'));
}

// `watch` on a terminal: the frame is redrawn in place after each event that changes it, and
// every second (so that the elapsed time moves while nothing happens). One mutex serialises the
// stream's callbacks and the ticker.
int WatchLive(Context& context, const std::string& run_id, int64_t after, bool ansible) {
  std::mutex mu;
  std::condition_variable tick;
  bool watching = true;
  std::string shown;
  absl::Status fetch_error;
  const auto redraw = [&](bool force) {
    v1::Run run;
    fetch_error = FetchRun(context, run_id, &run);
    if (!fetch_error.ok()) return;
    std::string frame = RenderWatchFrame(run, Now(), context.render());
    if (frame == shown && !force) return;
    *context.out << EraseLines(CountLines(shown)) << frame;
    context.out->flush();
    shown = std::move(frame);
  };
  redraw(true);
  if (!fetch_error.ok()) return Fail(context, std::string(fetch_error.message()));
  const auto on_event = [&](const v1::RunEvent& event) {
    if (event.has_ansible_event()) return;  // host results do not change the tree
    std::lock_guard<std::mutex> lock(mu);
    redraw(false);
  };
  const auto on_retry = [&](const grpc::Status& status, std::chrono::milliseconds wait) {
    std::lock_guard<std::mutex> lock(mu);
    *context.err << "dagctl: watch interrupted: "
                 << FormatRpcError(status, context.client->options().server) << "; reconnecting in "
                 << wait.count() << "ms\n";
    shown.clear();  // the message moved the cursor: draw the next frame below it
  };
  std::thread ticker([&] {
    std::unique_lock<std::mutex> lock(mu);
    while (!tick.wait_for(lock, std::chrono::seconds(1), [&] { return !watching; })) {
      redraw(false);
    }
  });
  const grpc::Status status =
      WatchRunEvents(*context.client, run_id, after, ansible, context.watch, on_event, on_retry);
  {
    std::lock_guard<std::mutex> lock(mu);
    watching = false;
  }
  tick.notify_all();
  ticker.join();
  if (!status.ok()) return RpcFailed(context, status);
  v1::Run run;
  if (absl::Status fetched = FetchRun(context, run_id, &run); !fetched.ok()) {
    return Fail(context, std::string(fetched.message()));
  }
  const std::string frame = RenderWatchFrame(run, Now(), context.render());
  if (frame != shown) *context.out << EraseLines(CountLines(shown)) << frame;
  context.out->flush();
  return PhaseExitCode(run.phase());
}

}  // namespace

int Apply(Context& context, const std::vector<std::string>& files, const std::string& bundle_dir) {
  // Read once for every file: they share the directory.
  v1::Bundle bundle;
  if (!bundle_dir.empty()) {
    if (absl::Status read = ReadBundleDir(bundle_dir, context.bundle_limits, &bundle); !read.ok()) {
      return Fail(context, std::string(read.message()));
    }
  }
  for (const std::string& file : files) {
    v1::CreateWorkflowRequest request;
    if (!ReadInput(context, file, request.mutable_yaml())) {
      return kExitFailure;
    }
    request.set_file_name(file);
    request.set_namespace_(context.namespace_name);
    if (bundle.files_size() > 0) {
      *request.mutable_bundle() = bundle;
    }
    v1::CreateWorkflowResponse response;
    std::unique_ptr<grpc::ClientContext> rpc = context.client->UnaryContext();
    const grpc::Status status =
        context.client->workflows().CreateWorkflow(rpc.get(), request, &response);
    if (!status.ok()) {
      return RpcFailed(context, status);
    }
    if (IsText(context.format)) {
      // One line per document: "workflowtemplate NAME version 2 created". A dagd older than
      // multi-document files answers with `workflow` alone.
      if (response.documents().empty()) {
        v1::AppliedDocument* only = response.add_documents();
        *only->mutable_workflow() = response.workflow();
        only->set_created(response.created());
      }
      for (const v1::AppliedDocument& document : response.documents()) {
        const v1::Workflow& workflow = document.workflow();
        *context.out << absl::AsciiStrToLower(workflow.kind().empty() ? "Workflow"
                                                                      : workflow.kind())
                     << " " << workflow.name() << " version " << workflow.version() << " "
                     << (document.created() ? "created" : "unchanged");
        if (!workflow.bundle_digest().empty()) {
          *context.out << ", bundle " << FormatBundle(workflow);
        }
        *context.out << "\n";
      }
    } else if (files.size() == 1) {
      PrintMessage(context, response);
    } else {
      *context.out << RenderStreamValue(ToJsonValue(response), context.format);
    }
  }
  return kExitOk;
}

int Submit(Context& context, const SubmitArgs& args) {
  v1::SubmitRunRequest request;
  if (!args.file.empty()) {
    if (!ReadInput(context, args.file, request.mutable_spec_yaml())) {
      return kExitFailure;
    }
    request.set_file_name(args.file);
    if (!args.bundle_dir.empty()) {
      absl::Status read =
          ReadBundleDir(args.bundle_dir, context.bundle_limits, request.mutable_bundle());
      if (!read.ok()) {
        return Fail(context, std::string(read.message()));
      }
    }
  } else {
    request.set_workflow_name(args.workflow);
    request.set_workflow_version(args.version);
  }
  request.mutable_parameters()->insert(args.parameters.begin(), args.parameters.end());
  request.set_request_id(args.request_id);
  request.mutable_labels()->insert(args.labels.begin(), args.labels.end());
  request.set_namespace_(context.namespace_name);
  v1::Run run;
  std::unique_ptr<grpc::ClientContext> rpc = context.client->UnaryContext();
  const grpc::Status status = context.client->runs().SubmitRun(rpc.get(), request, &run);
  if (!status.ok()) {
    return RpcFailed(context, status);
  }
  if (IsText(context.format)) {
    *context.out << "run " << run.id() << " submitted\n";
  } else if (args.watch) {
    *context.out << RenderStreamValue(ToJsonValue(run), context.format);
  } else {
    PrintMessage(context, run);
  }
  context.out->flush();
  return args.watch ? Watch(context, run.id(), 0, /*ansible=*/false) : kExitOk;
}

int Watch(Context& context, const std::string& run_id, int64_t after, bool ansible) {
  if (IsText(context.format) && context.terminal) return WatchLive(context, run_id, after, ansible);
  // Step nodes seen finishing, so that each adds exactly one progress line whatever else the
  // run's state shows by the time it is read.
  std::set<std::string> finished;
  const auto on_event = [&](const v1::RunEvent& event) {
    if (!IsText(context.format)) {
      *context.out << RenderStreamValue(ToJsonValue(event), context.format);
      context.out->flush();
      return;
    }
    *context.out << RenderEvent(event, run_id);
    // A step node that finished moves the progress figure. (A failed read only costs the line.)
    if (!event.has_ansible_event() && event.type() == "NodePhase" && IsFinished(event.phase()) &&
        finished.count(event.node_name()) == 0) {
      v1::Run run;
      if (FetchRun(context, run_id, &run).ok()) {
        const auto node =
            std::find_if(run.nodes().begin(), run.nodes().end(),
                         [&](const v1::Node& n) { return n.name() == event.node_name(); });
        if (node != run.nodes().end() && IsStep(node->type())) {
          finished.insert(event.node_name());
          Progress progress = CountProgress(run);
          progress.done = static_cast<int>(finished.size());
          progress.total = std::max(progress.total, progress.done);
          *context.out << "progress: " << RenderProgress(run, progress, Now(), context.render());
        }
      }
    }
    context.out->flush();
  };
  const auto on_retry = [&](const grpc::Status& status, std::chrono::milliseconds wait) {
    *context.err << "dagctl: watch interrupted: "
                 << FormatRpcError(status, context.client->options().server) << "; reconnecting in "
                 << wait.count() << "ms\n";
  };
  const grpc::Status status =
      WatchRunEvents(*context.client, run_id, after, ansible, context.watch, on_event, on_retry);
  if (!status.ok()) {
    return RpcFailed(context, status);
  }
  return FinishWatch(context, run_id);
}

int ListRuns(Context& context, const ListRunsArgs& args) {
  v1::ListRunsRequest request;
  request.set_workflow_name(args.workflow);
  for (v1::Phase phase : args.phases) {
    request.add_phases(phase);
  }
  if (args.since) {
    *request.mutable_created_after() = *args.since;
  }
  if (args.until) {
    *request.mutable_created_before() = *args.until;
  }
  request.set_label_selector(args.label_selector);
  request.set_order_by(args.order_by);
  request.set_namespace_(context.namespace_name);
  request.set_page_token(args.page_token);
  v1::ListRunsResponse all;
  while (true) {
    if (args.limit > 0) {
      request.set_page_size(args.limit - all.runs_size());
    }
    v1::ListRunsResponse page;
    std::unique_ptr<grpc::ClientContext> rpc = context.client->UnaryContext();
    const grpc::Status status = context.client->runs().ListRuns(rpc.get(), request, &page);
    if (!status.ok()) {
      return RpcFailed(context, status);
    }
    for (v1::Run& run : *page.mutable_runs()) {
      if (args.limit > 0 && all.runs_size() >= args.limit) {
        break;
      }
      *all.add_runs() = std::move(run);
    }
    all.set_next_page_token(page.next_page_token());
    const bool limit_reached = args.limit > 0 && all.runs_size() >= args.limit;
    if (!args.all || page.next_page_token().empty() || limit_reached) {
      break;
    }
    request.set_page_token(page.next_page_token());
  }
  if (!IsText(context.format)) {
    PrintMessage(context, all);
    return kExitOk;
  }
  *context.out << RenderRunsTable({all.runs().begin(), all.runs().end()}, Now(), context.render());
  if (!all.next_page_token().empty() && !args.all) {
    *context.err << "dagctl: more runs exist; use --all, a larger --limit, or --page-token "
                 << all.next_page_token() << " for the next page\n";
  }
  return kExitOk;
}

int GetRun(Context& context, const std::string& run_id) {
  v1::GetRunRequest request;
  request.set_run_id(run_id);
  v1::Run run;
  std::unique_ptr<grpc::ClientContext> rpc = context.client->UnaryContext();
  const grpc::Status status = context.client->runs().GetRun(rpc.get(), request, &run);
  if (!status.ok()) {
    return RpcFailed(context, status);
  }
  if (IsText(context.format)) {
    *context.out << RenderRun(run, Now(), context.render());
  } else {
    PrintMessage(context, run);
  }
  return kExitOk;
}

namespace {

// `events --follow`: WatchAnsibleEvents, reconnecting from the last event printed.
int FollowEvents(Context& context, const EventsArgs& args) {
  int64_t last_sequence = 0;
  int failures = 0;
  std::chrono::milliseconds backoff = context.watch.initial_backoff;
  while (true) {
    v1::WatchAnsibleEventsRequest request;
    request.set_run_id(args.run_id);
    request.set_after_sequence(last_sequence);
    request.set_node(args.node);
    request.set_host(args.host);
    request.set_changed_only(args.changed_only);
    request.set_failed_only(args.failed_only);
    grpc::ClientContext rpc;
    std::unique_ptr<grpc::ClientReaderInterface<v1::AnsibleEvent>> reader =
        context.client->runs().WatchAnsibleEvents(&rpc, request);
    v1::AnsibleEvent event;
    bool progressed = false;
    while (reader->Read(&event)) {
      if (event.sequence() <= last_sequence) continue;
      last_sequence = event.sequence();
      progressed = true;
      if (IsText(context.format)) {
        *context.out << RenderAnsibleEventLine(event, args.run_id);
      } else {
        *context.out << RenderStreamValue(ToJsonValue(event), context.format);
      }
      context.out->flush();
    }
    const grpc::Status status = reader->Finish();
    if (status.ok()) return kExitOk;  // the run ended and every event was sent
    if (status.error_code() != grpc::StatusCode::UNAVAILABLE) return RpcFailed(context, status);
    if (progressed) {
      failures = 0;
      backoff = context.watch.initial_backoff;
    }
    if (++failures > context.watch.max_retries) return RpcFailed(context, status);
    *context.err << "dagctl: event stream interrupted: "
                 << FormatRpcError(status, context.client->options().server) << "; reconnecting in "
                 << backoff.count() << "ms\n";
    std::this_thread::sleep_for(backoff);
    backoff = std::min(backoff * 2, context.watch.max_backoff);
  }
}

}  // namespace

int Events(Context& context, const EventsArgs& args) {
  if (args.follow) return FollowEvents(context, args);
  v1::ListAnsibleEventsRequest request;
  request.set_run_id(args.run_id);
  request.set_node(args.node);
  request.set_host(args.host);
  request.set_changed_only(args.changed_only);
  request.set_failed_only(args.failed_only);
  v1::ListAnsibleEventsResponse all;
  do {
    v1::ListAnsibleEventsResponse page;
    std::unique_ptr<grpc::ClientContext> rpc = context.client->UnaryContext();
    const grpc::Status status = context.client->runs().ListAnsibleEvents(rpc.get(), request, &page);
    if (!status.ok()) {
      return RpcFailed(context, status);
    }
    for (v1::AnsibleEvent& event : *page.mutable_events()) {
      *all.add_events() = std::move(event);
    }
    request.set_page_token(page.next_page_token());
  } while (!request.page_token().empty());
  if (!IsText(context.format)) {
    PrintMessage(context, all);
    return kExitOk;
  }
  *context.out << RenderAnsibleEventsTable({all.events().begin(), all.events().end()}, args.run_id);
  return kExitOk;
}

int Audit(Context& context, const AuditArgs& args) {
  v1::ListAuditRecordsRequest request;
  request.set_principal(args.principal);
  request.set_namespace_(context.namespace_name);
  request.set_target(args.target);
  request.set_method(args.method);
  if (args.since) *request.mutable_since() = *args.since;
  if (args.until) *request.mutable_until() = *args.until;
  request.set_failed_only(args.failed_only);
  v1::ListAuditRecordsResponse all;
  do {
    if (args.limit > 0) request.set_page_size(args.limit - all.records_size());
    v1::ListAuditRecordsResponse page;
    std::unique_ptr<grpc::ClientContext> rpc = context.client->UnaryContext();
    const grpc::Status status = context.client->audit().ListAuditRecords(rpc.get(), request, &page);
    if (!status.ok()) {
      return RpcFailed(context, status);
    }
    for (v1::AuditRecord& record : *page.mutable_records()) {
      *all.add_records() = std::move(record);
    }
    request.set_page_token(page.next_page_token());
  } while (!request.page_token().empty() && (args.limit == 0 || all.records_size() < args.limit));
  if (!IsText(context.format)) {
    PrintMessage(context, all);
    return kExitOk;
  }
  *context.out << RenderAuditTable({all.records().begin(), all.records().end()}, context.render());
  return kExitOk;
}

int Logs(Context& context, const LogsArgs& args) {
  v1::GetNodeLogsRequest request;
  request.set_run_id(args.run_id);
  request.set_node(args.node);
  request.set_attempt(args.attempt);
  request.set_follow(args.follow);
  grpc::ClientContext rpc;
  std::unique_ptr<grpc::ClientReaderInterface<v1::LogChunk>> reader =
      context.client->runs().GetNodeLogs(&rpc, request);
  v1::LogChunk chunk;
  bool line_start = true;
  std::string last_prefix;
  while (reader->Read(&chunk)) {
    if (!args.prefix) {
      *context.out << chunk.data();
      context.out->flush();
      continue;
    }
    const std::string prefix = absl::StrCat(
        chunk.node_name().empty() ? args.node : chunk.node_name(), "#", chunk.attempt(), ": ");
    // A line left open by another attempt is closed so that each line has one prefix.
    if (!line_start && prefix != last_prefix) {
      *context.out << "\n";
    }
    if (prefix != last_prefix) {
      line_start = true;
    }
    last_prefix = prefix;
    const std::string& data = chunk.data();
    size_t pos = 0;
    while (pos < data.size()) {
      if (line_start) {
        *context.out << prefix;
      }
      const size_t newline = data.find('\n', pos);
      const size_t end = newline == std::string::npos ? data.size() : newline + 1;
      context.out->write(data.data() + pos, static_cast<std::streamsize>(end - pos));
      line_start = newline != std::string::npos;
      pos = end;
    }
    context.out->flush();
  }
  const grpc::Status status = reader->Finish();
  if (!status.ok()) {
    return RpcFailed(context, status);
  }
  return kExitOk;
}

int EndRun(Context& context, const std::string& run_id, const std::string& message,
           bool terminate) {
  v1::EndRunRequest request;
  request.set_run_id(run_id);
  request.set_message(message);
  v1::Run run;
  std::unique_ptr<grpc::ClientContext> rpc = context.client->UnaryContext();
  const grpc::Status status = terminate
                                  ? context.client->runs().TerminateRun(rpc.get(), request, &run)
                                  : context.client->runs().StopRun(rpc.get(), request, &run);
  if (!status.ok()) {
    return RpcFailed(context, status);
  }
  if (IsText(context.format)) {
    *context.out << "run " << run.id() << (terminate ? " terminate" : " stop")
                 << " requested (phase: " << PhaseName(run.phase()) << ")\n";
  } else {
    PrintMessage(context, run);
  }
  return kExitOk;
}

int Resume(Context& context, const ResumeArgs& args) {
  v1::ResumeRunRequest request;
  request.set_run_id(args.run_id);
  request.set_node(args.node);
  request.set_message(args.message);
  v1::Run run;
  std::unique_ptr<grpc::ClientContext> rpc = context.client->UnaryContext();
  const grpc::Status status = context.client->runs().ResumeRun(rpc.get(), request, &run);
  if (!status.ok()) return RpcFailed(context, status);
  if (IsText(context.format)) {
    *context.out << "run " << run.id() << " resumed"
                 << (args.node.empty() ? "" : absl::StrCat(" (node ", args.node, ")")) << "\n";
  } else {
    PrintMessage(context, run);
  }
  return kExitOk;
}

int Retry(Context& context, const RetryArgs& args) {
  v1::RetryRunRequest request;
  request.set_run_id(args.run_id);
  for (const std::string& node : args.restart_nodes) request.add_restart_nodes(node);
  request.set_message(args.message);
  v1::Run run;
  std::unique_ptr<grpc::ClientContext> rpc = context.client->UnaryContext();
  const grpc::Status status = context.client->runs().RetryRun(rpc.get(), request, &run);
  if (!status.ok()) return RpcFailed(context, status);
  if (IsText(context.format)) {
    *context.out << "run " << run.id() << " retried (phase: " << PhaseName(run.phase()) << ")\n";
  } else if (args.watch) {
    *context.out << RenderStreamValue(ToJsonValue(run), context.format);
  } else {
    PrintMessage(context, run);
  }
  context.out->flush();
  // Only what happens from now on: the run's history is already on screen elsewhere.
  return args.watch ? Watch(context, run.id(), run.last_sequence(), /*ansible=*/false) : kExitOk;
}

int Resubmit(Context& context, const ResubmitArgs& args) {
  v1::ResubmitRunRequest request;
  request.set_run_id(args.run_id);
  request.set_memoized(args.memoized);
  request.mutable_parameters()->insert(args.parameters.begin(), args.parameters.end());
  v1::Run run;
  std::unique_ptr<grpc::ClientContext> rpc = context.client->UnaryContext();
  const grpc::Status status = context.client->runs().ResubmitRun(rpc.get(), request, &run);
  if (!status.ok()) return RpcFailed(context, status);
  if (IsText(context.format)) {
    *context.out << "run " << run.id() << " submitted (resubmit of " << args.run_id
                 << (args.memoized ? ", memoized" : "") << ")\n";
  } else if (args.watch) {
    *context.out << RenderStreamValue(ToJsonValue(run), context.format);
  } else {
    PrintMessage(context, run);
  }
  context.out->flush();
  return args.watch ? Watch(context, run.id(), 0, /*ansible=*/false) : kExitOk;
}

int SetNode(Context& context, const SetNodeArgs& args) {
  v1::SetNodeRequest request;
  request.set_run_id(args.run_id);
  request.set_node(args.node);
  request.mutable_output_parameters()->insert(args.output_parameters.begin(),
                                              args.output_parameters.end());
  request.set_phase(args.phase);
  request.set_message(args.message);
  v1::Run run;
  std::unique_ptr<grpc::ClientContext> rpc = context.client->UnaryContext();
  const grpc::Status status = context.client->runs().SetNode(rpc.get(), request, &run);
  if (!status.ok()) return RpcFailed(context, status);
  if (IsText(context.format)) {
    *context.out << "run " << run.id() << " node " << args.node << " set"
                 << (args.phase == v1::PHASE_UNSPECIFIED
                         ? std::string(" (still suspended)")
                         : absl::StrCat(" (", PhaseName(args.phase), ")"))
                 << "\n";
  } else {
    PrintMessage(context, run);
  }
  return kExitOk;
}

int ExportArgo(Context& context, const ExportArgs& args) {
  v1::ExportWorkflowRequest request;
  request.set_format(v1::ExportWorkflowRequest::FORMAT_ARGO);
  std::error_code ec;
  const bool is_file = args.source == "-" || std::filesystem::is_regular_file(args.source, ec);
  if (is_file) {
    if (!ReadInput(context, args.source, request.mutable_yaml())) return kExitFailure;
    request.set_file_name(args.source);
    if (!args.bundle_dir.empty()) {
      absl::Status read =
          ReadBundleDir(args.bundle_dir, context.bundle_limits, request.mutable_bundle());
      if (!read.ok()) return Fail(context, std::string(read.message()));
    }
    request.mutable_parameters()->insert(args.parameters.begin(), args.parameters.end());
  } else {
    if (!args.bundle_dir.empty() || !args.parameters.empty()) {
      return Fail(context, "no file " + args.source +
                               ": a run's export uses the run's own bundle and parameters; "
                               "--bundle and -p are for a FILE");
    }
    request.set_run_id(args.source);
  }
  v1::ExportWorkflowResponse response;
  std::unique_ptr<grpc::ClientContext> rpc = context.client->UnaryContext();
  const grpc::Status status =
      context.client->workflows().ExportWorkflow(rpc.get(), request, &response);
  if (!status.ok()) return RpcFailed(context, status);
  *context.out << response.yaml();
  return kExitOk;
}

namespace {

// The directories of $PATH that hold an executable `name`; "" when none does.
std::string FindOnPath(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path != nullptr ? path : "/usr/bin:/bin");
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    const std::string candidate = (dir.empty() ? "." : dir) + "/" + name;
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return "";
}

// Runs `dot -Tpng -o png` with `dot_text` on its stdin.
absl::Status WritePng(const std::string& dot_text, const std::string& png) {
  const std::string dot = FindOnPath("dot");
  if (dot.empty()) {
    return absl::FailedPreconditionError(
        "--png needs Graphviz's dot, which is not on PATH (Debian: apt-get install graphviz)");
  }
  int pipe_fds[2];
  if (pipe(pipe_fds) != 0) return absl::InternalError(std::strerror(errno));
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, pipe_fds[0], STDIN_FILENO);
  posix_spawn_file_actions_addclose(&actions, pipe_fds[1]);
  posix_spawn_file_actions_addclose(&actions, pipe_fds[0]);
  std::vector<std::string> argv_storage = {dot, "-Tpng", "-o", png};
  std::vector<char*> argv;
  for (std::string& arg : argv_storage) argv.push_back(arg.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  const int spawned = posix_spawn(&pid, dot.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  close(pipe_fds[0]);
  if (spawned != 0) {
    close(pipe_fds[1]);
    return absl::InternalError(absl::StrCat("cannot run ", dot, ": ", std::strerror(spawned)));
  }
  // dot reads everything before it writes, so one writer thread is enough.
  const char* data = dot_text.data();
  size_t left = dot_text.size();
  while (left > 0) {
    const ssize_t n = write(pipe_fds[1], data, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    data += n;
    left -= static_cast<size_t>(n);
  }
  close(pipe_fds[1]);
  int wait_status = 0;
  while (waitpid(pid, &wait_status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(wait_status) || WEXITSTATUS(wait_status) != 0) {
    return absl::InternalError(absl::StrCat(dot, " -Tpng -o ", png, " failed (status ",
                                            WIFEXITED(wait_status) ? WEXITSTATUS(wait_status) : -1,
                                            ")"));
  }
  return absl::OkStatus();
}

}  // namespace

int Graph(Context& context, const GraphArgs& args) {
  std::error_code ec;
  const bool is_file = args.source == "-" || std::filesystem::is_regular_file(args.source, ec);
  std::string yaml;
  std::string file_name = args.source;
  v1::Run run;
  if (is_file) {
    if (!ReadInput(context, args.source, &yaml)) return kExitFailure;
  } else {
    if (absl::Status fetched = FetchRun(context, args.source, &run); !fetched.ok()) {
      if (fetched.code() == absl::StatusCode::kNotFound) {
        return Fail(context,
                    absl::StrCat(fetched.message(), " (and there is no file ", args.source, ")"));
      }
      return Fail(context, std::string(fetched.message()));
    }
    yaml = run.spec_yaml();
    file_name = run.id();
  }
  // A run's spec holds the WorkflowTemplates it refers to (engine/template_refs.h).
  absl::StatusOr<engine::Workflow> workflow =
      is_file ? engine::ParseWorkflow(yaml, file_name) : engine::ParseRunSpec(yaml, file_name);
  if (!workflow.ok()) return Fail(context, std::string(workflow.status().message()));
  if (absl::Status valid = engine::ValidateWorkflow(*workflow); !valid.ok()) {
    return Fail(context, std::string(valid.message()));
  }
  absl::StatusOr<DagGraph> graph = BuildDagGraph(*workflow);
  if (!graph.ok()) return Fail(context, std::string(graph.status().message()));
  if (!is_file) ApplyRunPhases(run, &*graph);
  const std::string dot = RenderDot(*graph);
  if (!args.png.empty()) {
    if (absl::Status written = WritePng(dot, args.png); !written.ok()) {
      return Fail(context, std::string(written.message()));
    }
    if (IsText(context.format)) {
      *context.out << "wrote " << args.png << "\n";
      return kExitOk;
    }
  }
  if (IsText(context.format)) {
    *context.out << dot;
  } else {
    *context.out << RenderValue(GraphJson(*graph), context.format);
  }
  return kExitOk;
}

int Lint(Context& context, const std::vector<std::string>& files) {
  int exit_code = kExitOk;
  nlohmann::ordered_json results = nlohmann::ordered_json::array();
  for (const std::string& file : files) {
    v1::LintWorkflowRequest request;
    if (!ReadInput(context, file, request.mutable_yaml())) {
      exit_code = kExitFailure;
      continue;
    }
    request.set_file_name(file);
    v1::LintWorkflowResponse response;
    std::unique_ptr<grpc::ClientContext> rpc = context.client->UnaryContext();
    const grpc::Status status =
        context.client->workflows().LintWorkflow(rpc.get(), request, &response);
    if (!status.ok()) {
      return RpcFailed(context, status);
    }
    if (response.diagnostics_size() > 0) {
      exit_code = kExitFailure;
    }
    if (!IsText(context.format)) {
      results.push_back({{"file", file}, {"diagnostics", ToJsonValue(response)["diagnostics"]}});
    } else if (response.diagnostics().empty()) {
      *context.out << file << ": ok\n";
    } else {
      for (const v1::Diagnostic& diagnostic : response.diagnostics()) {
        *context.out << RenderDiagnostic(diagnostic, file) << "\n";
      }
    }
  }
  if (!IsText(context.format)) {
    *context.out << RenderValue(results, context.format);
  }
  return exit_code;
}

int ListWorkflows(Context& context) {
  v1::ListWorkflowsRequest request;
  request.set_namespace_(context.namespace_name);
  v1::ListWorkflowsResponse all;
  do {
    v1::ListWorkflowsResponse page;
    std::unique_ptr<grpc::ClientContext> rpc = context.client->UnaryContext();
    const grpc::Status status =
        context.client->workflows().ListWorkflows(rpc.get(), request, &page);
    if (!status.ok()) {
      return RpcFailed(context, status);
    }
    for (v1::Workflow& workflow : *page.mutable_workflows()) {
      *all.add_workflows() = std::move(workflow);
    }
    request.set_page_token(page.next_page_token());
  } while (!request.page_token().empty());
  if (IsText(context.format)) {
    *context.out << RenderWorkflowsTable({all.workflows().begin(), all.workflows().end()});
  } else {
    PrintMessage(context, all);
  }
  return kExitOk;
}

int GetWorkflow(Context& context, const std::string& name, int64_t version) {
  v1::GetWorkflowRequest request;
  request.set_name(name);
  request.set_version(version);
  v1::Workflow workflow;
  std::unique_ptr<grpc::ClientContext> rpc = context.client->UnaryContext();
  const grpc::Status status =
      context.client->workflows().GetWorkflow(rpc.get(), request, &workflow);
  if (!status.ok()) {
    return RpcFailed(context, status);
  }
  if (IsText(context.format)) {
    *context.out << RenderWorkflow(workflow);
  } else {
    PrintMessage(context, workflow);
  }
  return kExitOk;
}

int DeleteWorkflow(Context& context, const std::string& name) {
  v1::DeleteWorkflowRequest request;
  request.set_name(name);
  v1::DeleteWorkflowResponse response;
  std::unique_ptr<grpc::ClientContext> rpc = context.client->UnaryContext();
  const grpc::Status status =
      context.client->workflows().DeleteWorkflow(rpc.get(), request, &response);
  if (!status.ok()) {
    return RpcFailed(context, status);
  }
  if (IsText(context.format)) {
    *context.out << "workflow " << name << " deleted\n";
  } else {
    PrintMessage(context, response);
  }
  return kExitOk;
}

}  // namespace dagd::dagctl
