#include "tests/runners/runner_test_util.h"

#include <dirent.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

namespace dagd::runners::testing {

TempDir::TempDir() {
  std::string pattern = (std::filesystem::temp_directory_path() / "dagd-runners-XXXXXX").string();
  char* made = mkdtemp(pattern.data());
  if (made == nullptr) ADD_FAILURE() << "mkdtemp failed";
  path_ = pattern;
}

TempDir::~TempDir() {
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

std::string TempDir::Subdir(const std::string& name) const {
  std::filesystem::path dir = std::filesystem::path(path_) / name;
  std::filesystem::create_directories(dir);
  return dir.string();
}

void WriteTextFile(const std::string& path, const std::string& content) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
}

std::string ReadTextFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

engine::Template ContainerTemplate(const std::string& name, std::vector<std::string> command,
                                   std::vector<std::string> args) {
  engine::Template t;
  t.name = name;
  t.type = engine::TemplateType::kContainer;
  t.container.emplace();
  t.container->image = "alpine:3.23";
  t.container->command = std::move(command);
  t.container->args = std::move(args);
  return t;
}

engine::Template ScriptTemplate(const std::string& name, std::vector<std::string> command,
                                const std::string& source) {
  engine::Template t;
  t.name = name;
  t.type = engine::TemplateType::kScript;
  t.script.emplace();
  t.script->container.image = "python:alpine3.23";
  t.script->container.command = std::move(command);
  t.script->source = source;
  return t;
}

engine::Template AnsibleTemplate(const std::string& name, engine::AnsibleSpec ansible) {
  engine::Template t;
  t.name = name;
  t.type = engine::TemplateType::kAnsible;
  t.ansible = std::move(ansible);
  return t;
}

engine::Parameter PathOutput(const std::string& name, const std::string& path,
                             std::optional<std::string> default_value) {
  engine::Parameter p;
  p.name = name;
  p.value_from.emplace();
  p.value_from->path = path;
  p.value_from->default_value = std::move(default_value);
  return p;
}

AttemptSpec MakeSpec(engine::Template resolved, const std::string& external_name,
                     const std::string& work_dir) {
  AttemptSpec spec;
  spec.run_id = "run-1";
  spec.node_name = "run-1." + resolved.name;
  spec.external_name = external_name;
  spec.resolved = std::move(resolved);
  spec.work_dir = work_dir;
  return spec;
}

bool RunUntil(boost::asio::io_context& io, const std::function<bool()>& done,
              std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!done()) {
    const auto now = std::chrono::steady_clock::now();
    if (now >= deadline) return false;
    io.restart();
    io.run_one_for(std::min<std::chrono::steady_clock::duration>(deadline - now,
                                                                 std::chrono::milliseconds(100)));
  }
  return true;
}

AttemptCallbacks Recorder::Callbacks() {
  AttemptCallbacks callbacks;
  callbacks.on_log = [this](std::string_view stream, std::string_view data) {
    ++callback_calls;
    (stream == "stdout" ? stdout_text : stderr_text).append(data);
  };
  callbacks.on_event = [this](std::string_view line) {
    ++callback_calls;
    if (result.has_value()) ++events_after_finish;
    events.emplace_back(line);
  };
  callbacks.on_finished = [this](engine::AttemptResult r) {
    ++callback_calls;
    ++finished_calls;
    result = std::move(r);
  };
  return callbacks;
}

std::vector<pid_t> GroupMembers(pid_t pgid) {
  std::vector<pid_t> members;
  DIR* proc = opendir("/proc");
  if (proc == nullptr) return members;
  while (dirent* entry = readdir(proc)) {
    char* end = nullptr;
    long pid = std::strtol(entry->d_name, &end, 10);
    if (end == entry->d_name || *end != '\0') continue;
    std::string stat = ReadTextFile("/proc/" + std::string(entry->d_name) + "/stat");
    size_t paren = stat.rfind(')');
    if (paren == std::string::npos) continue;  // the process is gone
    std::istringstream fields(stat.substr(paren + 1));
    char state = 0;
    long ppid = 0, pgrp = 0;
    fields >> state >> ppid >> pgrp;
    if (pgrp == pgid && state != 'Z' && state != 'X') members.push_back(static_cast<pid_t>(pid));
  }
  closedir(proc);
  return members;
}

bool WaitGroupGone(pid_t pgid, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!GroupMembers(pgid).empty()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));  // polling /proc, not waiting
  }
  return true;
}

}  // namespace dagd::runners::testing
