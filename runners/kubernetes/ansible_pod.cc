#include "runners/kubernetes/ansible_pod.h"

#include <openssl/evp.h>
#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "absl/strings/str_cat.h"
#include "engine/status_macros.h"
#include "runners/local/command.h"
#include "runners/local/options.h"

namespace dagd::runners::kubernetes {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// Replaces `from` with `to` where it starts a path: at the start of `text` or after '=', ':',
// '@' or ',', and followed by the end, '/', ':' or ','. Maps the attempt's directory on this
// host to its place in the container, in argv and environment values.
std::string MapPath(const std::string& text, const std::string& from, const std::string& to) {
  std::string out;
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t hit = text.find(from, pos);
    if (hit == std::string::npos) break;
    const bool starts = hit == 0 || text[hit - 1] == '=' || text[hit - 1] == ':' ||
                        text[hit - 1] == '@' || text[hit - 1] == ',';
    const size_t end = hit + from.size();
    const bool ends =
        end == text.size() || text[end] == '/' || text[end] == ':' || text[end] == ',';
    out.append(text, pos, hit - pos);
    out.append(starts && ends ? to : from);
    pos = end;
  }
  out.append(text, pos, std::string::npos);
  return out;
}

absl::StatusOr<std::vector<PodFile>> CollectFiles(const std::string& dir) {
  std::vector<PodFile> files;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    const fs::path relative = fs::relative(it->path(), dir);
    if (it->is_directory() && relative == ".ansible-tmp") {
      it.disable_recursion_pending();
      continue;
    }
    if (!it->is_regular_file()) continue;
    std::ifstream in(it->path(), std::ios::binary);
    std::string content((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (in.bad()) return absl::UnavailableError(absl::StrCat("cannot read ", it->path().string()));
    struct stat st;
    int mode = 0644;
    if (stat(it->path().c_str(), &st) == 0) mode = static_cast<int>(st.st_mode & 0777);
    files.push_back({relative.string(), std::move(content), mode});
  }
  if (ec) return absl::UnavailableError(absl::StrCat("cannot read ", dir, ": ", ec.message()));
  std::sort(files.begin(), files.end(),
            [](const PodFile& a, const PodFile& b) { return a.path < b.path; });
  return files;
}

}  // namespace

std::string Sha256Hex(const std::string& text) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  EVP_Digest(text.data(), text.size(), digest, &size, EVP_sha256(), nullptr);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < size; ++i) {
    out.push_back(kHex[digest[i] >> 4]);
    out.push_back(kHex[digest[i] & 0xf]);
  }
  return out;
}

std::string LabelValue(const std::string& text) {
  std::string out;
  for (char c : text) {
    const bool ok = std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
    out.push_back(ok ? c : '-');
  }
  if (out.size() > 63) out = out.substr(0, 54) + "-" + Sha256Hex(text).substr(0, 8);
  auto alnum = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; };
  while (!out.empty() && !alnum(out.front())) out.erase(out.begin());
  while (!out.empty() && !alnum(out.back())) out.pop_back();
  return out;
}

std::string TemplateWhere(const engine::Template& t) {
  std::string where = absl::StrCat("template \"", t.name, "\"");
  if (t.location.line > 0) absl::StrAppend(&where, " (", t.location.ToString(), ")");
  return where;
}

size_t ShippedBytes(const std::vector<PodFile>& files) {
  size_t bytes = 0;
  for (const PodFile& f : files) bytes += (f.content.size() + 2) / 3 * 4 + f.path.size() + 16;
  return bytes;
}

absl::StatusOr<AnsiblePod> BuildAnsiblePod(const AttemptSpec& spec,
                                           const std::map<std::string, std::string>& extra_env) {
  local::LocalRunnerOptions local_options;
  local_options.ansible_playbook = "ansible-playbook";  // found on the image's PATH
  ASSIGN_OR_RETURN(local::Command command,
                   local::BuildPodAnsibleCommand(spec, local_options, kEventLinePrefix));
  AnsiblePod pod;
  ASSIGN_OR_RETURN(pod.files, CollectFiles(spec.work_dir));
  // A mounted volume is read-only, and a ConfigMap volume is made of symlinks into "..data":
  // copy the files into the writable work dir, drop the volume's own entries, run there.
  pod.command = {"sh", "-c",
                 absl::StrCat("cp -RL ", kBundleMountPath, "/. ", kWorkDirPath, "/ && rm -rf ",
                              kWorkDirPath, "/..?* && cd ", kWorkDirPath, " && exec \"$@\""),
                 "dagd-ansible"};
  pod.args = json::array();
  for (const std::string& arg : command.argv) {
    pod.args.push_back(MapPath(arg, spec.work_dir, kWorkDirPath));
  }
  pod.env = json::array();
  for (const std::string& entry : command.env) {
    const size_t eq = entry.find('=');
    pod.env.push_back({{"name", entry.substr(0, eq)},
                       {"value", MapPath(entry.substr(eq + 1), spec.work_dir, kWorkDirPath)}});
  }
  for (const auto& [name, value] : extra_env) pod.env.push_back({{"name", name}, {"value", value}});
  return pod;
}

}  // namespace dagd::runners::kubernetes
