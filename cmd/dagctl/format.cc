#include "cmd/dagctl/format.h"

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <ctime>
#include <iterator>
#include <map>
#include <set>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/util/json_util.h"
#include "yaml-cpp/yaml.h"

namespace dagd::dagctl {
namespace {

bool IsSet(const google::protobuf::Timestamp& time) {
  return time.seconds() != 0 || time.nanos() != 0;
}

// Columns a UTF-8 string takes on a terminal, counting every code point as one and ANSI escape
// sequences ("\x1b[...m") as none.
size_t DisplayWidth(const std::string& text) {
  size_t width = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\x1b') {
      while (i < text.size() && !absl::ascii_isalpha(static_cast<unsigned char>(text[i]))) ++i;
      continue;
    }
    if ((static_cast<unsigned char>(text[i]) & 0xC0) != 0x80) ++width;
  }
  return width;
}

std::string OrDash(const std::string& text) { return text.empty() ? "-" : text; }

// The header lines of `runs get` and `workflows get`: "Label:" padded to one width.
void AddField(std::string* out, absl::string_view label, absl::string_view value) {
  absl::StrAppendFormat(out, "%-13s%s\n", absl::StrCat(label, ":"), value);
}

template <typename Map>
std::vector<std::pair<std::string, std::string>> Sorted(const Map& map) {
  std::vector<std::pair<std::string, std::string>> entries(map.begin(), map.end());
  std::sort(entries.begin(), entries.end());
  return entries;
}

// Builds the rows of a run's node tree, depth first from the root(s).
class TreeRenderer {
 public:
  TreeRenderer(const v1::Run& run, TimePoint now, const RenderOptions& options)
      : now_(now), options_(options) {
    for (const v1::Node& node : run.nodes()) {
      by_name_.emplace(node.name(), &node);
    }
    for (const v1::Node& node : run.nodes()) {
      for (const std::string& child : node.children()) {
        AddChild(node.name(), child);
      }
    }
    // A child that names its parent but is missing from the parent's list still belongs there.
    for (const v1::Node& node : run.nodes()) {
      if (!node.parent().empty() && by_name_.count(node.parent()) != 0) {
        AddChild(node.parent(), node.name());
      }
    }
    for (const v1::Node& node : run.nodes()) {
      show_recap_ = show_recap_ || node.has_ansible_recap();
    }
    AddRow({"NAME", "PHASE", "DURATION", "ATTEMPTS", "MESSAGE"}, "RECAP", {"TEMPLATE", "RUNNER"});
    for (const v1::Node& node : run.nodes()) {
      if (node.parent().empty() || by_name_.count(node.parent()) == 0) {
        Visit(node, "", "");
      }
    }
    // Whatever a broken parent chain left out is still shown, at the top level.
    for (const v1::Node& node : run.nodes()) {
      Visit(node, "", "");
    }
  }

  std::string Render() const { return table_.Render(); }

 private:
  // Adds a row, with `recap` before the last (MESSAGE) cell when any node has a recap, and the
  // `wide` cells before it with -o wide.
  void AddRow(std::vector<std::string> cells, std::string recap,
              std::vector<std::string> wide = {}) {
    if (show_recap_) cells.insert(cells.end() - 1, std::move(recap));
    if (options_.wide) {
      wide.resize(2);
      cells.insert(cells.end() - 1, wide.begin(), wide.end());
    }
    table_.AddRow(std::move(cells));
  }

  void AddChild(const std::string& parent, const std::string& child) {
    auto it = by_name_.find(child);
    if (it == by_name_.end()) {
      return;
    }
    std::vector<const v1::Node*>& children = children_[parent];
    if (std::find(children.begin(), children.end(), it->second) == children.end()) {
      children.push_back(it->second);
    }
  }

  // Adds `node` with `first` before its name and `rest` before the lines below it.
  void Visit(const v1::Node& node, const std::string& first, const std::string& rest) {
    if (!visited_.insert(node.name()).second) {
      return;
    }
    const std::string& name = node.display_name().empty() ? node.name() : node.display_name();
    AddRow({first + name, ColoredPhase(node.phase(), options_.color),
            FormatElapsed(node.start_time(), node.finish_time(), now_),
            node.attempts_size() > 0 ? absl::StrCat(node.attempts_size()) : "", node.message()},
           node.has_ansible_recap() ? RenderRecap(node.ansible_recap()) : "",
           {node.template_name(),
            node.attempts_size() > 0 ? node.attempts(node.attempts_size() - 1).runner() : ""});
    // A Retry node's attempts are its first children, "<node>(0)", …: no "#N" lines for them.
    const int attempts =
        node.type() != v1::NODE_TYPE_RETRY && node.attempts_size() > 1 ? node.attempts_size() : 0;
    const std::vector<const v1::Node*>& children = children_[node.name()];
    const size_t items = attempts + children.size();
    for (size_t i = 0; i < items; ++i) {
      const bool last = i + 1 == items;
      const std::string connector = rest + (last ? "└─ " : "├─ ");
      if (i < static_cast<size_t>(attempts)) {
        AddAttempt(node.attempts(static_cast<int>(i)), connector);
      } else {
        Visit(*children[i - attempts], connector, rest + (last ? "   " : "│  "));
      }
    }
  }

  void AddAttempt(const v1::Attempt& attempt, const std::string& prefix) {
    std::string message =
        attempt.exit_code() >= 0 ? absl::StrCat("exit ", attempt.exit_code()) : "";
    if (!attempt.message().empty()) {
      absl::StrAppend(&message, message.empty() ? "" : ": ", attempt.message());
    }
    AddRow(
        {absl::StrCat(prefix, "#", attempt.number()), ColoredPhase(attempt.phase(), options_.color),
         FormatElapsed(attempt.start_time(), attempt.finish_time(), now_), "", message},
        "", {"", attempt.runner()});
  }

  TimePoint now_;
  RenderOptions options_;
  std::map<std::string, const v1::Node*> by_name_;
  std::map<std::string, std::vector<const v1::Node*>> children_;
  std::set<std::string> visited_;
  bool show_recap_ = false;
  Table table_;
};

// The STATUS cell of a host result: ok, changed, failed (ignored), unreachable, skipped; "" for
// an event that is not a host result.
std::string ResultStatus(const v1::AnsibleEvent& event) {
  const std::string& kind = event.kind();
  if (absl::EndsWith(kind, "_on_ok")) return event.changed() ? "changed" : "ok";
  if (absl::EndsWith(kind, "_on_skipped")) return "skipped";
  if (absl::EndsWith(kind, "_on_unreachable")) return "unreachable";
  if (absl::EndsWith(kind, "_on_failed")) {
    nlohmann::json payload = nlohmann::json::parse(event.result_json(), nullptr, false);
    const bool ignored = payload.is_object() && payload.value("ignore_errors", false);
    return ignored ? "failed (ignored)" : "failed";
  }
  return "";
}

// True when a plain YAML scalar with this text would not read back as this string.
bool NeedsQuotes(const std::string& text) {
  if (text.empty() || text != absl::StripAsciiWhitespace(text)) {
    return true;
  }
  static const std::set<std::string>* const kKeywords =
      new std::set<std::string>{"true", "false", "yes", "no", "on", "off", "y", "n", "null", "~"};
  if (kKeywords->count(absl::AsciiStrToLower(text)) != 0) {
    return true;
  }
  const char* begin = text.c_str();
  char* end = nullptr;
  std::strtod(begin, &end);
  if (end == begin + text.size()) {
    return true;
  }
  return absl::StartsWith(absl::AsciiStrToLower(text), "0x") ||
         absl::StartsWith(absl::AsciiStrToLower(text), "0o");
}

void EmitString(YAML::Emitter& out, const std::string& text) {
  // A literal block reads back with exactly one final newline ("|" clips), so it suits text that
  // ends in exactly one and has no leading blank; other multi-line text is double-quoted.
  const bool multi_line = text.find('\n') != std::string::npos;
  if (multi_line && absl::EndsWith(text, "\n") && !absl::EndsWith(text, "\n\n") &&
      !absl::ascii_isspace(static_cast<unsigned char>(text.front()))) {
    out << YAML::Literal << text.substr(0, text.size() - 1);
  } else if (multi_line || NeedsQuotes(text)) {
    out << YAML::DoubleQuoted << text;
  } else {
    out << text;
  }
}

void EmitYaml(YAML::Emitter& out, const nlohmann::ordered_json& value) {
  switch (value.type()) {
    case nlohmann::ordered_json::value_t::object:
      out << YAML::BeginMap;
      for (const auto& [key, item] : value.items()) {
        out << YAML::Key;
        EmitString(out, key);
        out << YAML::Value;
        EmitYaml(out, item);
      }
      out << YAML::EndMap;
      break;
    case nlohmann::ordered_json::value_t::array:
      out << YAML::BeginSeq;
      for (const auto& item : value) {
        EmitYaml(out, item);
      }
      out << YAML::EndSeq;
      break;
    case nlohmann::ordered_json::value_t::string:
      EmitString(out, value.get<std::string>());
      break;
    case nlohmann::ordered_json::value_t::boolean:
      out << (value.get<bool>() ? "true" : "false");
      break;
    case nlohmann::ordered_json::value_t::number_integer:
      out << value.get<int64_t>();
      break;
    case nlohmann::ordered_json::value_t::number_unsigned:
      out << value.get<uint64_t>();
      break;
    case nlohmann::ordered_json::value_t::number_float:
      out << value.get<double>();
      break;
    default:
      out << YAML::Null;
      break;
  }
}

// A node's display name (the run id prefix dropped) and its attempt, "node#2".
std::string NodeAttempt(const std::string& node_name, int attempt, const std::string& run_id) {
  std::string node = node_name;
  if (absl::StartsWith(node, run_id + ".")) node.erase(0, run_id.size() + 1);
  return absl::StrCat(node, "#", attempt);
}

// A loop item: a string unquoted, anything else as JSON; "" outside loops.
std::string ItemText(const v1::AnsibleEvent& event) {
  if (event.item().empty()) return "";
  nlohmann::json value = nlohmann::json::parse(event.item(), nullptr, false);
  return value.is_string() ? value.get<std::string>() : event.item();
}

}  // namespace

google::protobuf::Timestamp ToTimestamp(TimePoint time) {
  const auto since_epoch =
      std::chrono::duration_cast<std::chrono::nanoseconds>(time.time_since_epoch());
  const auto seconds = std::chrono::floor<std::chrono::seconds>(since_epoch);
  google::protobuf::Timestamp result;
  result.set_seconds(seconds.count());
  result.set_nanos(static_cast<int32_t>((since_epoch - seconds).count()));
  return result;
}

TimePoint FromTimestamp(const google::protobuf::Timestamp& time) {
  return TimePoint(std::chrono::duration_cast<TimePoint::duration>(
      std::chrono::seconds(time.seconds()) + std::chrono::nanoseconds(time.nanos())));
}

std::string PhaseName(v1::Phase phase) {
  switch (phase) {
    case v1::PHASE_PENDING:
      return "Pending";
    case v1::PHASE_RUNNING:
      return "Running";
    case v1::PHASE_SUCCEEDED:
      return "Succeeded";
    case v1::PHASE_FAILED:
      return "Failed";
    case v1::PHASE_ERROR:
      return "Error";
    case v1::PHASE_SKIPPED:
      return "Skipped";
    case v1::PHASE_OMITTED:
      return "Omitted";
    default:
      return "Unknown";
  }
}

bool IsFinished(v1::Phase phase) {
  return phase == v1::PHASE_SUCCEEDED || phase == v1::PHASE_FAILED || phase == v1::PHASE_ERROR ||
         phase == v1::PHASE_SKIPPED || phase == v1::PHASE_OMITTED;
}

std::string ColoredPhase(v1::Phase phase, bool color) {
  if (!color) return PhaseName(phase);
  const char* code = "0";
  switch (phase) {
    case v1::PHASE_SUCCEEDED:
      code = "32";
      break;
    case v1::PHASE_FAILED:
      code = "31";
      break;
    case v1::PHASE_ERROR:
      code = "1;31";
      break;
    case v1::PHASE_RUNNING:
      code = "34";
      break;
    case v1::PHASE_PENDING:
      code = "33";
      break;
    case v1::PHASE_SKIPPED:
    case v1::PHASE_OMITTED:
      code = "2";
      break;
    default:
      break;
  }
  return absl::StrCat("\x1b[", code, "m", PhaseName(phase), "\x1b[0m");
}

Progress CountProgress(const v1::Run& run) {
  Progress progress;
  std::set<std::string> retried;  // a Retry node counts once, not each of its attempts' nodes
  for (const v1::Node& node : run.nodes()) {
    if (node.type() == v1::NODE_TYPE_RETRY) retried.insert(node.name());
  }
  for (const v1::Node& node : run.nodes()) {
    if (!IsStep(node.type()) || retried.count(node.parent()) > 0) continue;
    ++progress.total;
    if (IsFinished(node.phase())) ++progress.done;
  }
  return progress;
}

std::string RenderProgress(const v1::Run& run, TimePoint now, const RenderOptions& options) {
  return RenderProgress(run, CountProgress(run), now, options);
}

std::string RenderProgress(const v1::Run& run, const Progress& progress, TimePoint now,
                           const RenderOptions& options) {
  return absl::StrCat(ColoredPhase(run.phase(), options.color), "  ", progress.done, "/",
                      progress.total, " nodes done  elapsed ",
                      FormatElapsed(run.start_time(), run.finish_time(), now), "\n");
}

std::string RenderWatchFrame(const v1::Run& run, TimePoint now, const RenderOptions& options) {
  return absl::StrCat("Run: ", run.id(), "  ", RenderProgress(run, now, options), "\n",
                      RenderNodeTree(run, now, options));
}

std::string FormatLabels(const google::protobuf::Map<std::string, std::string>& labels) {
  std::vector<std::string> parts;
  for (const auto& [key, value] : Sorted(labels)) parts.push_back(absl::StrCat(key, "=", value));
  return absl::StrJoin(parts, ",");
}

std::string FormatDuration(std::chrono::nanoseconds duration) {
  const int64_t total =
      std::max<int64_t>(0, std::chrono::duration_cast<std::chrono::seconds>(duration).count());
  const int64_t days = total / 86400, hours = total / 3600 % 24, minutes = total / 60 % 60,
                seconds = total % 60;
  if (days > 0) {
    return absl::StrCat(days, "d", hours, "h");
  }
  if (hours > 0) {
    return absl::StrCat(hours, "h", minutes, "m");
  }
  if (minutes > 0) {
    return absl::StrCat(minutes, "m", seconds, "s");
  }
  return absl::StrCat(seconds, "s");
}

std::string FormatTime(const google::protobuf::Timestamp& time) {
  if (!IsSet(time)) {
    return "-";
  }
  const std::time_t seconds = static_cast<std::time_t>(time.seconds());
  std::tm local{};
  localtime_r(&seconds, &local);
  char buffer[64];
  std::strftime(buffer, sizeof(buffer), "%Y-%m-%dT%H:%M:%S", &local);
  const int64_t offset_minutes = local.tm_gmtoff / 60;
  const int64_t magnitude = offset_minutes < 0 ? -offset_minutes : offset_minutes;
  return absl::StrFormat("%s%c%02d:%02d", buffer, offset_minutes < 0 ? '-' : '+', magnitude / 60,
                         magnitude % 60);
}

std::string FormatElapsed(const google::protobuf::Timestamp& start,
                          const google::protobuf::Timestamp& finish, TimePoint now) {
  if (!IsSet(start)) {
    return "-";
  }
  const TimePoint end = IsSet(finish) ? FromTimestamp(finish) : now;
  return FormatDuration(end - FromTimestamp(start));
}

void Table::AddRow(std::vector<std::string> cells) { rows_.push_back(std::move(cells)); }

std::string Table::Render() const {
  std::vector<size_t> widths;
  for (const auto& row : rows_) {
    if (widths.size() < row.size()) {
      widths.resize(row.size(), 0);
    }
    for (size_t i = 0; i < row.size(); ++i) {
      widths[i] = std::max(widths[i], DisplayWidth(row[i]));
    }
  }
  std::string out;
  for (const auto& row : rows_) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) {
        line.append(widths[i] - DisplayWidth(row[i]) + 2, ' ');
      }
    }
    line.erase(line.find_last_not_of(' ') + 1);
    absl::StrAppend(&out, line, "\n");
  }
  return out;
}

std::string FormatBytes(int64_t bytes) {
  if (bytes < 1024) return absl::StrCat(bytes, " B");
  const char* const units[] = {"KiB", "MiB", "GiB", "TiB"};
  double value = static_cast<double>(bytes) / 1024;
  size_t unit = 0;
  while (value >= 1024 && unit + 1 < std::size(units)) {
    value /= 1024;
    ++unit;
  }
  return absl::StrFormat("%.1f %s", value, units[unit]);
}

std::string FormatBundle(const v1::Workflow& workflow) {
  if (workflow.bundle_digest().empty()) return "-";
  return absl::StrCat(workflow.bundle_digest().substr(0, 12), " (", workflow.bundle_files(),
                      workflow.bundle_files() == 1 ? " file, " : " files, ",
                      FormatBytes(workflow.bundle_bytes()), ")");
}

std::string RenderRun(const v1::Run& run, TimePoint now, const RenderOptions& options) {
  std::string out;
  AddField(&out, "Run", run.id());
  AddField(&out, "Workflow",
           run.workflow_version() > 0
               ? absl::StrCat(run.workflow_name(), "@", run.workflow_version())
               : absl::StrCat(run.workflow_name(), " (inline)"));
  if (!run.namespace_().empty()) {
    AddField(&out, "Namespace", run.namespace_());
  }
  if (!run.submitted_by().empty()) {
    AddField(&out, "Submitter", run.submitted_by());
  }
  AddField(&out, "Phase", ColoredPhase(run.phase(), options.color));
  if (!run.message().empty()) {
    AddField(&out, "Message", run.message());
  }
  if (!run.request_id().empty()) {
    AddField(&out, "Request ID", run.request_id());
  }
  if (!run.bundle_digest().empty()) {
    AddField(&out, "Bundle", run.bundle_digest());
  }
  AddField(&out, "Created", FormatTime(run.create_time()));
  AddField(&out, "Started", FormatTime(run.start_time()));
  AddField(&out, "Finished", FormatTime(run.finish_time()));
  AddField(&out, "Duration", FormatElapsed(run.start_time(), run.finish_time(), now));
  if (!run.labels().empty()) {
    AddField(&out, "Labels", FormatLabels(run.labels()));
  }
  if (!run.parameters().empty()) {
    out += "Parameters:\n";
    for (const auto& [name, value] : Sorted(run.parameters())) {
      absl::StrAppend(&out, "  ", name, ": ", value, "\n");
    }
  }
  if (run.nodes_size() > 0) {
    absl::StrAppend(&out, "\n", RenderNodeTree(run, now, options));
  }
  return out;
}

std::string RenderNodeTree(const v1::Run& run, TimePoint now, const RenderOptions& options) {
  return TreeRenderer(run, now, options).Render();
}

std::string RenderRunsTable(const std::vector<v1::Run>& runs, TimePoint now,
                            const RenderOptions& options) {
  Table table;
  if (options.wide) {
    table.AddRow({"RUN", "WORKFLOW", "VERSION", "PHASE", "CREATED", "FINISHED", "DURATION",
                  "REQUEST ID", "LABELS", "MESSAGE"});
  } else {
    table.AddRow({"RUN", "WORKFLOW", "PHASE", "CREATED", "DURATION", "MESSAGE"});
  }
  for (const v1::Run& run : runs) {
    const std::string phase = ColoredPhase(run.phase(), options.color);
    const std::string duration = FormatElapsed(run.start_time(), run.finish_time(), now);
    if (options.wide) {
      table.AddRow({run.id(), OrDash(run.workflow_name()),
                    run.workflow_version() > 0 ? absl::StrCat(run.workflow_version()) : "inline",
                    phase, FormatTime(run.create_time()), FormatTime(run.finish_time()), duration,
                    OrDash(run.request_id()), OrDash(FormatLabels(run.labels())), run.message()});
    } else {
      table.AddRow({run.id(), OrDash(run.workflow_name()), phase, FormatTime(run.create_time()),
                    duration, run.message()});
    }
  }
  return table.Render();
}

std::string RenderWorkflowsTable(const std::vector<v1::Workflow>& workflows) {
  Table table;
  table.AddRow({"NAME", "VERSION", "ENTRYPOINT", "CREATED"});
  for (const v1::Workflow& workflow : workflows) {
    table.AddRow({workflow.name(), absl::StrCat(workflow.version()), OrDash(workflow.entrypoint()),
                  FormatTime(workflow.create_time())});
  }
  return table.Render();
}

std::string RenderAuditTable(const std::vector<v1::AuditRecord>& records,
                             const RenderOptions& options) {
  Table table;
  std::vector<std::string> header = {"TIME",   "PRINCIPAL", "METHOD",    "NAMESPACE",
                                     "TARGET", "RESULT",    "REQUEST ID"};
  if (options.wide) header.insert(header.end(), {"AUTH", "PEER", "MESSAGE"});
  table.AddRow(header);
  for (const v1::AuditRecord& record : records) {
    std::vector<std::string> row = {
        FormatTime(record.time()),
        record.principal().empty() ? "(unauthenticated)" : record.principal(),
        record.method().substr(record.method().rfind('/') + 1),
        OrDash(record.namespace_()),
        OrDash(record.target()),
        record.code(),
        OrDash(record.request_id())};
    if (options.wide) {
      row.insert(row.end(),
                 {OrDash(record.auth_method()), OrDash(record.peer()), record.message()});
    }
    table.AddRow(std::move(row));
  }
  return table.Render();
}

std::string RenderWorkflow(const v1::Workflow& workflow) {
  std::string out;
  AddField(&out, "Name", workflow.name());
  AddField(&out, "Version", absl::StrCat(workflow.version()));
  if (!workflow.namespace_().empty()) {
    AddField(&out, "Namespace", workflow.namespace_());
  }
  AddField(&out, "Entrypoint", OrDash(workflow.entrypoint()));
  AddField(&out, "Created", FormatTime(workflow.create_time()));
  AddField(&out, "SHA-256", OrDash(workflow.spec_sha256()));
  if (workflow.bundle_digest().empty()) {
    AddField(&out, "Bundle", "-");
  } else {
    AddField(&out, "Bundle", workflow.bundle_digest());
    AddField(
        &out, "Bundle size",
        absl::StrCat(workflow.bundle_files(), workflow.bundle_files() == 1 ? " file, " : " files, ",
                     FormatBytes(workflow.bundle_bytes())));
  }
  absl::StrAppend(&out, "\n", workflow.yaml());
  if (!workflow.yaml().empty() && workflow.yaml().back() != '\n') {
    out += "\n";
  }
  return out;
}

std::string RenderRecap(const v1::AnsibleRecap& recap) {
  std::string out =
      absl::StrCat("ok=", recap.ok(), " changed=", recap.changed(), " failed=", recap.failed());
  for (const auto& [name, count] :
       {std::pair<const char*, int32_t>{"unreachable", recap.unreachable()},
        {"skipped", recap.skipped()},
        {"rescued", recap.rescued()},
        {"ignored", recap.ignored()}}) {
    if (count > 0) absl::StrAppend(&out, " ", name, "=", count);
  }
  return out;
}

std::string RenderAnsibleEventsTable(const std::vector<v1::AnsibleEvent>& events,
                                     const std::string& run_id) {
  Table table;
  table.AddRow({"TIME", "NODE", "HOST", "TASK", "STATUS", "ITEM"});
  for (const v1::AnsibleEvent& event : events) {
    const std::string status = ResultStatus(event);
    if (status.empty()) continue;
    table.AddRow({FormatTime(event.time()), NodeAttempt(event.node_name(), event.attempt(), run_id),
                  OrDash(event.host()), OrDash(event.task()), status, ItemText(event)});
  }
  return table.Render();
}

std::string RenderAnsibleEventLine(const v1::AnsibleEvent& event, const std::string& run_id) {
  const std::string status = ResultStatus(event);
  if (status.empty()) return "";
  std::string line = absl::StrCat(FormatTime(event.time()), " ",
                                  NodeAttempt(event.node_name(), event.attempt(), run_id), " ",
                                  OrDash(event.host()), " ", status, " ", OrDash(event.task()));
  if (std::string item = ItemText(event); !item.empty()) absl::StrAppend(&line, " [", item, "]");
  return line + "\n";
}

std::string RenderEvent(const v1::RunEvent& event, const std::string& run_id) {
  if (event.has_ansible_event()) return RenderAnsibleEventLine(event.ansible_event(), run_id);
  std::string node = event.node_name().empty() ? run_id : event.node_name();
  if (event.attempt() > 0) {
    absl::StrAppend(&node, "#", event.attempt());
  }
  std::string line =
      absl::StrCat(FormatTime(event.time()), " ", OrDash(node), " ", OrDash(event.type()), " ",
                   event.phase() == v1::PHASE_UNSPECIFIED ? "-" : PhaseName(event.phase()));
  if (!event.message().empty()) {
    absl::StrAppend(&line, " ", event.message());
  }
  return line + "\n";
}

std::string RenderDiagnostic(const v1::Diagnostic& diagnostic, const std::string& file) {
  std::string out = diagnostic.file().empty() ? file : diagnostic.file();
  if (diagnostic.line() > 0) {
    absl::StrAppend(&out, ":", diagnostic.line(), ":", diagnostic.column());
  }
  out += ": ";
  if (!diagnostic.field().empty()) {
    absl::StrAppend(&out, diagnostic.field(), ": ");
  }
  return out + diagnostic.message();
}

nlohmann::ordered_json ToJsonValue(const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  options.always_print_primitive_fields = true;
  std::string json;
  // Printing fails only for invalid Any or well-known-type values, which the API never sends.
  const auto status = google::protobuf::util::MessageToJsonString(message, &json, options);
  if (!status.ok()) {
    return nlohmann::ordered_json{{"error", std::string{status.message()}}};
  }
  return nlohmann::ordered_json::parse(json);
}

std::string RenderValue(const nlohmann::ordered_json& value, OutputFormat format) {
  if (format == OutputFormat::kJson) {
    return value.dump(2) + "\n";
  }
  YAML::Emitter out;
  EmitYaml(out, value);
  return std::string(out.c_str()) + "\n";
}

std::string RenderStreamValue(const nlohmann::ordered_json& value, OutputFormat format) {
  if (format == OutputFormat::kJson) {
    return value.dump() + "\n";
  }
  return "---\n" + RenderValue(value, format);
}

}  // namespace dagd::dagctl
