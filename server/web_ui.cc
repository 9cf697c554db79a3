#include "server/web_ui.h"

#include <chrono>
#include <ctime>
#include <functional>
#include <map>

#include "absl/strings/str_cat.h"
#include "engine/parser.h"
#include "engine/task_graph.h"
#include "engine/template_refs.h"

namespace dagd::server {
namespace {

using nlohmann::json;

std::string HtmlEscape(std::string_view text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out.push_back(c);
    }
  }
  return out;
}

std::string UrlEncode(std::string_view text) {
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      static constexpr char kHex[] = "0123456789ABCDEF";
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

std::string Rfc3339(int64_t ms) {
  if (ms <= 0) return "";
  const std::time_t seconds = static_cast<std::time_t>(ms / 1000);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &utc);
  return buf;
}

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

HttpResponse Html(std::string body) {
  HttpResponse r;
  r.content_type = "text/html; charset=utf-8";
  r.body = std::move(body);
  r.headers["Cache-Control"] = "no-store";
  return r;
}

HttpResponse Error(const absl::Status& status) {
  HttpResponse r;
  r.status = absl::IsNotFound(status) ? 404 : 503;
  r.body = std::string(status.message()) + "\n";
  return r;
}

// The page shell shared by the server-rendered pages.
std::string Page(const std::string& title, const std::string& body) {
  return absl::StrCat(
      "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>", HtmlEscape(title),
      "</title><style>"
      "body{font-family:sans-serif;margin:1.5em;color:#222}"
      "table{border-collapse:collapse}td,th{padding:.25em .7em;border-bottom:1px solid #ddd;"
      "text-align:left;vertical-align:top}"
      ".phase{padding:.1em .5em;border-radius:.3em}"
      ".Succeeded{background:#a8e6a1}.Failed{background:#f4a7a3}.Error{background:#e06666}"
      ".Running{background:#9fc5f8}.Pending{background:#ffe599}"
      ".Omitted,.Skipped{background:#d9d9d9}"
      "</style></head><body>",
      body, "</body></html>\n");
}

json AttemptJson(const engine::AttemptRecord& a) {
  return {{"number", a.number},
          {"phase", engine::NodePhaseName(a.phase)},
          {"runner", a.runner},
          {"message", a.message},
          {"started_ms", a.started_at_ms},
          {"finished_ms", a.finished_at_ms}};
}

json NodeJson(const engine::NodeState& node) {
  json attempts = json::array();
  for (const auto& a : node.attempts) attempts.push_back(AttemptJson(a));
  return {{"name", node.name},
          {"display", node.display_name},
          {"phase", engine::NodePhaseName(node.phase)},
          {"message", node.message},
          {"attempts", std::move(attempts)}};
}

// The run page: static HTML whose script fetches /api/runs/RUN every second until the run is
// final and draws it. The run id comes from the page's own path.
constexpr char kRunPage[] = R"HTML(<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>dagd run</title>
<style>
body{font-family:sans-serif;margin:1.5em;color:#222}
h1{font-size:1.3em;margin:0 0 .3em 0}
#summary span{margin-right:1.2em}
.phase{padding:.1em .5em;border-radius:.3em}
.Succeeded{background:#a8e6a1}.Failed{background:#f4a7a3}.Error{background:#e06666}
.Running{background:#9fc5f8}.Pending{background:#ffe599}.Omitted,.Skipped{background:#d9d9d9}
svg{border:1px solid #ddd;margin:1em 0;background:#fcfcfc}
svg text{font-size:12px;font-family:sans-serif}
table{border-collapse:collapse}td,th{padding:.25em .7em;border-bottom:1px solid #ddd;text-align:left}
#error{color:#b00}
</style></head>
<body>
<h1>Run <span id="run-id"></span></h1>
<div id="summary"><span>workflow <b id="workflow"></b></span>
<span>phase <b id="phase" class="phase"></b></span>
<span>nodes done <b id="progress"></b></span>
<span>elapsed <b id="elapsed"></b></span>
<span id="live"></span></div>
<div id="message"></div><div id="error"></div>
<svg id="dag" xmlns="http://www.w3.org/2000/svg" width="400" height="120">
<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="8" markerHeight="8"
 orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#666"/></marker></defs>
<g id="edges"></g><g id="tasks"></g></svg>
<p><a id="events-link" href="#">Ansible events of this run</a> · <a href="/">all runs</a></p>
<table><thead><tr><th>node</th><th>phase</th><th>attempts</th><th>duration</th><th>message</th>
<th></th></tr></thead><tbody id="nodes"></tbody></table>
<script>
"use strict";
const runId = decodeURIComponent(location.pathname.split("/")[2] || "");
const COLORS = {Succeeded:"#a8e6a1", Failed:"#f4a7a3", Error:"#e06666", Running:"#9fc5f8",
                Pending:"#ffe599", Omitted:"#d9d9d9", Skipped:"#d9d9d9"};
const SVG = "http://www.w3.org/2000/svg";
const W = 170, H = 64, GAPX = 70, GAPY = 30, PAD = 20;

function seconds(ms) { return (ms / 1000).toFixed(1) + " s"; }
function el(name, attrs, text) {
  const e = document.createElementNS(SVG, name);
  for (const k in attrs) e.setAttribute(k, attrs[k]);
  if (text !== undefined) e.textContent = text;
  return e;
}
// Longest-path layers: a task sits one column right of its furthest dependency.
function layers(run) {
  const layer = run.tasks.map(() => 0);
  for (let pass = 0; pass < run.tasks.length; pass++) {
    let changed = false;
    for (const [from, to] of run.edges) {
      if (layer[to] < layer[from] + 1) { layer[to] = layer[from] + 1; changed = true; }
    }
    if (!changed) break;
  }
  return layer;
}
function summary(nodes) {
  const count = {};
  for (const n of nodes) count[n.phase] = (count[n.phase] || 0) + 1;
  return Object.keys(count).sort().map(p => count[p] + " " + p).join(", ");
}
function draw(run) {
  document.title = "dagd run " + run.id;
  document.getElementById("run-id").textContent = run.id;
  document.getElementById("workflow").textContent = run.workflow;
  const phase = document.getElementById("phase");
  phase.textContent = run.phase; phase.className = "phase " + run.phase;
  document.getElementById("progress").textContent = run.done + "/" + run.total;
  const end = run.finished_ms > 0 ? run.finished_ms : run.now_ms;
  document.getElementById("elapsed").textContent = seconds(end - run.started_ms);
  document.getElementById("live").textContent = run.final ? "final" : "updating live";
  document.getElementById("message").textContent = run.message;
  document.getElementById("events-link").href = "/runs/" + encodeURIComponent(run.id) + "/events";

  const layer = layers(run), rows = {}, pos = [];
  run.tasks.forEach((t, i) => {
    const row = rows[layer[i]] = (rows[layer[i]] || 0) + 1;
    pos.push({x: PAD + layer[i] * (W + GAPX), y: PAD + GAPY + (row - 1) * (H + GAPY)});
  });
  const svg = document.getElementById("dag");
  svg.setAttribute("width", Math.max(...pos.map(p => p.x)) + W + PAD);
  svg.setAttribute("height", Math.max(...pos.map(p => p.y)) + H + PAD);
  const edges = document.getElementById("edges"), tasks = document.getElementById("tasks");
  edges.replaceChildren(); tasks.replaceChildren();
  for (const [from, to] of run.edges) {
    const a = pos[from], b = pos[to];
    // An edge that skips a column arcs over the boxes between its ends.
    const skips = layer[to] - layer[from] > 1;
    const c1 = skips ? `${a.x + W + GAPX} ${Math.min(a.y, b.y) - GAPY}`
                     : `${a.x + W + GAPX / 2} ${a.y + H / 2}`;
    const c2 = skips ? `${b.x - GAPX} ${Math.min(a.y, b.y) - GAPY}`
                     : `${b.x - GAPX / 2} ${b.y + H / 2}`;
    edges.appendChild(el("path", {"class": "edge", "data-from": run.tasks[from].task,
      "data-to": run.tasks[to].task, fill: "none", stroke: "#666", "marker-end": "url(#arrow)",
      d: `M ${a.x + W} ${a.y + H / 2} C ${c1}, ${c2}, ${b.x} ${b.y + H / 2}`}));
  }
  run.tasks.forEach((t, i) => {
    const g = el("g", {"class": "task", "data-task": t.task, "data-phase": t.phase,
                       transform: `translate(${pos[i].x},${pos[i].y})`});
    g.appendChild(el("rect", {width: W, height: H, rx: 6, fill: COLORS[t.phase] || "#fff",
                              stroke: t.nested_dag ? "#333" : "#888",
                              "stroke-dasharray": t.nested_dag ? "4 2" : ""}));
    g.appendChild(el("text", {x: 10, y: 20, "font-weight": "bold"}, t.task));
    g.appendChild(el("text", {x: 10, y: 38}, t.phase || "not started"));
    if (t.nodes.length > 1) g.appendChild(el("text", {x: 10, y: 55}, summary(t.nodes)));
    const title = el("title", {}, t.task + " (" + t.template + "): " + (t.phase || "not started"));
    g.appendChild(title);
    tasks.appendChild(g);
  });

  const body = document.getElementById("nodes");
  body.replaceChildren();
  for (const t of run.tasks) for (const n of t.nodes) {
    const tr = document.createElement("tr");
    tr.className = "node"; tr.dataset.node = n.display; tr.dataset.phase = n.phase;
    const last = n.attempts[n.attempts.length - 1];
    const cells = [n.display, n.phase, n.attempts.map(a => a.phase).join(" → "),
      last ? seconds((last.finished_ms || run.now_ms) - n.attempts[0].started_ms) : "", n.message];
    cells.forEach((text, k) => {
      const td = document.createElement("td");
      td.textContent = text;
      if (k === 1) td.className = "phase " + n.phase;
      tr.appendChild(td);
    });
    const links = document.createElement("td");
    const base = "/runs/" + encodeURIComponent(run.id);
    const logs = document.createElement("a");
    logs.className = "logs"; logs.textContent = "logs";
    logs.href = base + "/logs?node=" + encodeURIComponent(n.name);
    const events = document.createElement("a");
    events.className = "events"; events.textContent = "events";
    events.href = base + "/events?node=" + encodeURIComponent(n.name);
    links.append(logs, " ", events);
    tr.appendChild(links);
    body.appendChild(tr);
  }
}
async function refresh() {
  try {
    const response = await fetch("/api/runs/" + encodeURIComponent(runId), {cache: "no-store"});
    if (!response.ok) throw new Error(await response.text());
    const run = await response.json();
    document.getElementById("error").textContent = "";
    draw(run);
    if (!run.final) setTimeout(refresh, 1000);
  } catch (e) {
    document.getElementById("error").textContent = "cannot load the run: " + e.message;
    setTimeout(refresh, 3000);
  }
}
refresh();
</script>
</body></html>
)HTML";

HttpResponse IndexPage(storage::Store* store) {
  storage::RunFilter filter;
  filter.limit = 50;
  absl::StatusOr<storage::RunPage> page = store->ListRuns(filter);
  if (!page.ok()) return Error(page.status());
  std::string rows;
  for (const storage::RunRecord& run : page->runs) {
    const char* phase = engine::NodePhaseName(run.phase);
    absl::StrAppend(&rows, "<tr><td><a class=\"run\" href=\"/runs/", UrlEncode(run.id), "\">",
                    HtmlEscape(run.id), "</a></td><td>", HtmlEscape(run.workflow_name),
                    "</td><td><span class=\"phase ", phase, "\">", phase, "</span></td><td>",
                    Rfc3339(run.created_at_ms), "</td></tr>");
  }
  return Html(Page("dagd runs", absl::StrCat("<h1>Runs, newest first</h1><table><thead><tr>"
                                             "<th>run</th><th>workflow</th><th>phase</th>"
                                             "<th>created</th></tr></thead><tbody>",
                                             rows, "</tbody></table>")));
}

HttpResponse LogsPage(storage::Store* store, const std::string& run_id, const std::string& node) {
  if (absl::StatusOr<storage::RunRecord> run = store->GetRun(run_id); !run.ok()) {
    return Error(run.status());
  }
  HttpResponse r;
  int attempt = -1;
  int64_t after = 0;
  while (true) {
    absl::StatusOr<std::vector<storage::LogChunkRecord>> chunks =
        store->GetLogs(run_id, node, 0, after, 1000);
    if (!chunks.ok()) return Error(chunks.status());
    for (const storage::LogChunkRecord& chunk : *chunks) {
      if (chunk.attempt != attempt) {
        attempt = chunk.attempt;
        absl::StrAppend(&r.body, r.body.empty() || r.body.back() == '\n' ? "" : "\n",
                        "--- attempt ", attempt, " ---\n");
      }
      r.body += chunk.data;
      after = chunk.sequence;
    }
    if (chunks->size() < 1000) break;
  }
  if (r.body.empty()) r.body = "(no output)\n";
  r.headers["Cache-Control"] = "no-store";
  return r;
}

HttpResponse EventsPage(storage::Store* store, const std::string& run_id, const std::string& node) {
  if (absl::StatusOr<storage::RunRecord> run = store->GetRun(run_id); !run.ok()) {
    return Error(run.status());
  }
  storage::AnsibleEventFilter filter;
  filter.node_name = node;
  std::string rows;
  int64_t after = 0;
  while (true) {
    absl::StatusOr<std::vector<storage::AnsibleEventRecord>> events =
        store->GetAnsibleEvents(run_id, filter, after, 10000);
    if (!events.ok()) return Error(events.status());
    for (const storage::AnsibleEventRecord& e : *events) {
      after = e.sequence;
      const char* status = storage::AnsibleResultStatus(e);
      if (*status == '\0') continue;  // starts and stats: the results are what is audited
      std::string display = e.node_name;
      if (display.rfind(run_id + ".", 0) == 0) display = display.substr(run_id.size() + 1);
      absl::StrAppend(&rows, "<tr class=\"event\"><td>", Rfc3339(e.time_ms), "</td><td>",
                      HtmlEscape(display), "#", e.attempt, "</td><td>", HtmlEscape(e.host),
                      "</td><td>", HtmlEscape(e.play), "</td><td>", HtmlEscape(e.task), "</td><td>",
                      HtmlEscape(e.item), "</td><td>", status, "</td></tr>");
    }
    if (events->size() < 10000) break;
  }
  const std::string title = absl::StrCat("Ansible events of ", run_id);
  return Html(
      Page(title, absl::StrCat("<h1>", HtmlEscape(title), node.empty() ? "" : ", node ",
                               HtmlEscape(node), "</h1><p><a href=\"/runs/", UrlEncode(run_id),
                               "\">back to the run</a></p><table><thead><tr><th>time</th>"
                               "<th>node#attempt</th><th>host</th><th>play</th><th>task</th>"
                               "<th>item</th><th>status</th></tr></thead><tbody>",
                               rows, "</tbody></table>")));
}

// "/runs/ID/rest" -> (ID, "/rest"), the ID percent-decoded.
std::pair<std::string, std::string> SplitRunPath(const std::string& path, size_t prefix) {
  std::string rest = path.substr(prefix);
  const size_t slash = rest.find('/');
  const std::string decoded = PercentDecode(rest.substr(0, slash), /*plus_is_space=*/false);
  return {decoded, slash == std::string::npos ? "" : rest.substr(slash)};
}

}  // namespace

absl::StatusOr<json> RunPageJson(storage::Store* store, const std::string& run_id, int64_t now_ms) {
  absl::StatusOr<storage::RunRecord> run = store->GetRun(run_id);
  if (!run.ok()) return run.status();
  absl::StatusOr<std::vector<engine::NodeState>> nodes = store->GetNodes(run_id);
  if (!nodes.ok()) return nodes.status();

  std::map<std::string, const engine::NodeState*> by_name;
  const engine::NodeState* root = nullptr;
  int done = 0;
  int total = 0;
  for (const engine::NodeState& node : *nodes) {
    by_name[node.name] = &node;
    if (node.name == run_id) root = &node;  // not the parentless "<run>.onExit"
    if (engine::IsLeaf(node.type)) {
      ++total;
      if (engine::IsFinal(node.phase)) ++done;
    }
  }
  // The pods under `node` (itself if it is one), in creation order.
  std::function<void(const engine::NodeState&, json&)> pods = [&](const engine::NodeState& node,
                                                                  json& out) {
    if (engine::IsLeaf(node.type)) {
      out.push_back(NodeJson(node));
      return;
    }
    for (const std::string& child : node.children) {
      if (auto it = by_name.find(child); it != by_name.end()) pods(*it->second, out);
    }
  };

  json tasks = json::array();
  json edges = json::array();
  absl::StatusOr<engine::Workflow> workflow =
      engine::ParseRunSpec(run->workflow_yaml, run->file_name);
  absl::StatusOr<engine::TaskGraph> graph =
      workflow.ok() ? engine::BuildTaskGraph(*workflow)
                    : absl::StatusOr<engine::TaskGraph>(workflow.status());
  if (graph.ok()) {
    // A task's node: the root's child with the task's name (a fan-out's task group).
    std::map<std::string, const engine::NodeState*> task_nodes;
    if (root != nullptr) {
      for (const std::string& child : root->children) {
        auto it = by_name.find(child);
        if (it != by_name.end()) task_nodes[it->second->display_name] = it->second;
      }
    }
    for (const engine::TaskVertex& vertex : graph->vertices) {
      const engine::NodeState* node =
          !graph->entrypoint_is_dag
              ? root
              : (task_nodes.count(vertex.task) ? task_nodes[vertex.task] : nullptr);
      json task = {{"task", vertex.task},
                   {"template", vertex.template_name},
                   {"nested_dag", vertex.nested_dag},
                   {"phase", node ? engine::NodePhaseName(node->phase) : ""},
                   {"nodes", json::array()}};
      if (node != nullptr) pods(*node, task["nodes"]);
      tasks.push_back(std::move(task));
    }
    for (const auto& [from, to] : graph->edges) edges.push_back({from, to});
  }

  // Runs stored before inline runs were named: name them as the metrics do.
  std::string workflow_name = run->workflow_name;
  if (workflow_name.empty() && workflow.ok()) workflow_name = workflow->DisplayName();
  return json{{"id", run->id},
              {"workflow", workflow_name},
              {"phase", engine::NodePhaseName(run->phase)},
              {"message", run->message},
              {"created_ms", run->created_at_ms},
              {"started_ms", run->started_at_ms},
              {"finished_ms", run->finished_at_ms},
              {"now_ms", now_ms},
              {"final", engine::IsFinal(run->phase)},
              {"done", done},
              {"total", total},
              {"tasks", std::move(tasks)},
              {"edges", std::move(edges)}};
}

void AddWebUiRoutes(storage::Store* store, HttpServer::Routes* routes) {
  (*routes)["/"] = [store](const HttpRequest&) { return IndexPage(store); };
  (*routes)["/runs/"] = [store](const HttpRequest& request) {
    auto [run_id, rest] = SplitRunPath(request.path, std::string("/runs/").size());
    if (run_id.empty()) return IndexPage(store);
    auto node = request.query.find("node");
    const std::string node_name = node == request.query.end() ? "" : node->second;
    if (rest.empty() || rest == "/") {
      if (absl::StatusOr<storage::RunRecord> run = store->GetRun(run_id); !run.ok()) {
        return Error(run.status());
      }
      return Html(kRunPage);
    }
    if (rest == "/logs") return LogsPage(store, run_id, node_name);
    if (rest == "/events") return EventsPage(store, run_id, node_name);
    HttpResponse r;
    r.status = 404;
    r.body = absl::StrCat("no page at ", request.path, "\n");
    return r;
  };
  (*routes)["/api/runs/"] = [store](const HttpRequest& request) {
    auto [run_id, rest] = SplitRunPath(request.path, std::string("/api/runs/").size());
    absl::StatusOr<json> page = RunPageJson(store, run_id, NowMs());
    if (!page.ok()) return Error(page.status());
    HttpResponse r;
    r.content_type = "application/json";
    r.body = page->dump(-1, ' ', false, json::error_handler_t::replace);
    r.headers["Cache-Control"] = "no-store";
    return r;
  };
}

}  // namespace dagd::server
