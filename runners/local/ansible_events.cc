#include "runners/local/ansible_events.h"

#include <filesystem>
#include <fstream>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "runners/local/ansible/dagd_events_plugin.h"

namespace dagd::runners::local {

absl::Status EnableEventsPlugin(const std::string& work_dir, int events_fd,
                                std::map<std::string, std::string>* env) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::path(work_dir) / ".dagd" / "callback_plugins";
  std::error_code ec;
  fs::create_directories(dir, ec);
  const fs::path file = dir / "dagd_events.py";
  if (!ec) {
    std::ofstream out(file, std::ios::binary | std::ios::trunc);
    out << kDagdEventsPlugin;
    out.close();
    if (!out) ec = std::make_error_code(std::errc::io_error);
  }
  if (ec) {
    return absl::UnavailableError(absl::StrCat("cannot write the Ansible callback plugin ",
                                               file.string(), ": ", ec.message()));
  }
  auto prepend = [env](const std::string& name, const std::string& value, const char* sep) {
    auto it = env->find(name);
    (*env)[name] =
        it == env->end() || it->second.empty() ? value : absl::StrCat(value, sep, it->second);
  };
  auto append = [env](const std::string& name, const std::string& value, const char* sep) {
    auto it = env->find(name);
    (*env)[name] =
        it == env->end() || it->second.empty() ? value : absl::StrCat(it->second, sep, value);
  };
  prepend("ANSIBLE_CALLBACK_PLUGINS", dir.string(), ":");
  append("ANSIBLE_CALLBACKS_ENABLED", "dagd_events", ",");
  (*env)["DAGD_EVENTS_FD"] = absl::StrCat(events_fd);
  return absl::OkStatus();
}

}  // namespace dagd::runners::local
