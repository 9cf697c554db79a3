#include "runners/local/credentials.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <system_error>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "engine/status_macros.h"
#include "runners/local/files.h"

namespace dagd::runners::local {
namespace {

namespace fs = std::filesystem;

// A credential file larger than this is a mistake (a key or a token is a few KiB at most).
constexpr off_t kMaxCredentialBytes = 1 << 20;

std::string Mode(mode_t mode) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(mode & 07777));
  return buf;
}

// One credential a template names, and the field that names it.
struct Ref {
  const char* field;  // "vaultPasswordRef", …
  std::string name;
};

// The content of credential `ref` in `dir`, after checking the file is dagd's and private.
absl::StatusOr<std::string> ReadCredential(const std::string& dir, const Ref& ref,
                                           const std::string& where) {
  const std::string path = (fs::path(dir) / ref.name).string();
  const std::string what = absl::StrCat(where, ": credential \"", ref.name, "\" (", ref.field, ")");
  const uid_t uid = geteuid();
  // O_NONBLOCK: a FIFO planted there must not hang the launch; it is refused below.
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (fd < 0) {
    const int err = errno;
    if (err == ENOENT) {
      return absl::FailedPreconditionError(absl::StrCat(
          what, " not found: there is no file ", path, "; put the secret in that file, owned by ",
          "dagd's user (uid ", uid, ") with mode 600"));
    }
    if (err == EACCES) {
      return absl::FailedPreconditionError(
          absl::StrCat(what, ": dagd's user (uid ", uid, ") cannot read ", path, " (",
                       std::strerror(err), "); chown ", uid, " ", path, " && chmod 600 ", path));
    }
    return absl::FailedPreconditionError(
        absl::StrCat(what, ": cannot open ", path, ": ", std::strerror(err)));
  }
  struct Closer {
    int fd;
    ~Closer() { close(fd); }
  } closer{fd};
  struct stat st;
  if (fstat(fd, &st) != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat(what, ": cannot stat ", path, ": ", std::strerror(errno)));
  }
  if (!S_ISREG(st.st_mode)) {
    return absl::FailedPreconditionError(
        absl::StrCat(what, ": ", path, " is not a regular file; put the secret in a file there"));
  }
  if (st.st_uid != uid) {
    return absl::FailedPreconditionError(absl::StrCat(what, ": ", path, " is owned by uid ",
                                                      st.st_uid, ", not by dagd's user (uid ", uid,
                                                      "); chown ", uid, " ", path));
  }
  if ((st.st_mode & 077) != 0) {
    return absl::FailedPreconditionError(absl::StrCat(what, ": ", path,
                                                      " is open to group or others (mode ",
                                                      Mode(st.st_mode), "); chmod 600 ", path));
  }
  if (st.st_size > kMaxCredentialBytes) {
    return absl::FailedPreconditionError(absl::StrCat(what, ": ", path, " is larger than ",
                                                      kMaxCredentialBytes,
                                                      " bytes; a credential is a key or a "
                                                      "password, not a data file"));
  }
  std::string content;
  std::array<char, 8192> buf;
  for (;;) {
    ssize_t n = read(fd, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      return absl::FailedPreconditionError(
          absl::StrCat(what, ": cannot read ", path, ": ", std::strerror(errno)));
    }
    if (n == 0) break;
    content.append(buf.data(), static_cast<size_t>(n));
    if (content.size() > static_cast<size_t>(kMaxCredentialBytes)) {
      return absl::FailedPreconditionError(
          absl::StrCat(what, ": ", path, " is larger than ", kMaxCredentialBytes, " bytes"));
    }
  }
  return content;
}

bool IsEnvName(absl::string_view name) {
  if (name.empty() || absl::ascii_isdigit(static_cast<unsigned char>(name.front()))) return false;
  for (char c : name) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '_') return false;
  }
  return true;
}

}  // namespace

std::string StagedCredentialsDir(const std::string& work_dir) {
  return (fs::path(work_dir) / ".dagd" / "credentials").string();
}

absl::Status CheckCredentialsDir(const std::string& dir) {
  const uid_t uid = geteuid();
  struct stat st;
  if (stat(dir.c_str(), &st) != 0) {
    const int err = errno;
    if (err == ENOENT) {
      return absl::FailedPreconditionError(absl::StrCat(
          "the credentials directory ", dir, " does not exist; create it for dagd's user (uid ",
          uid, "): install -d -m 700 ", dir));
    }
    return absl::FailedPreconditionError(
        absl::StrCat("cannot use the credentials directory ", dir, ": ", std::strerror(err)));
  }
  if (!S_ISDIR(st.st_mode)) {
    return absl::FailedPreconditionError(
        absl::StrCat("the credentials directory ", dir, " is not a directory"));
  }
  if (st.st_uid != uid) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the credentials directory ", dir, " is owned by uid ", st.st_uid,
        ", not by dagd's user (uid ", uid, "); chown ", uid, " ", dir, " && chmod 700 ", dir));
  }
  if ((st.st_mode & 077) != 0) {
    return absl::FailedPreconditionError(absl::StrCat("the credentials directory ", dir,
                                                      " is open to group or others (mode ",
                                                      Mode(st.st_mode), "); chmod 700 ", dir));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::pair<std::string, std::string>>> ParseEnvFile(
    std::string_view text, const std::string& label) {
  std::vector<std::pair<std::string, std::string>> vars;
  int number = 0;
  for (absl::string_view line : absl::StrSplit(absl::string_view(text.data(), text.size()), '\n')) {
    ++number;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    const absl::string_view stripped = absl::StripLeadingAsciiWhitespace(line);
    if (stripped.empty() || stripped.front() == '#') continue;
    const size_t eq = stripped.find('=');
    // The line may be the secret itself (a token pasted without its NAME=): never quote it.
    if (eq == absl::string_view::npos || !IsEnvName(stripped.substr(0, eq))) {
      return absl::InvalidArgumentError(absl::StrCat(
          label, ":", number,
          ": not a NAME=VALUE line (NAME is letters, digits and '_', not starting with a digit; "
          "VALUE runs to the end of the line); blank lines and lines starting with # are "
          "skipped"));
    }
    vars.emplace_back(std::string(stripped.substr(0, eq)), std::string(stripped.substr(eq + 1)));
  }
  return vars;
}

absl::StatusOr<StagedCredentials> StageCredentials(const engine::AnsibleSpec& ansible,
                                                   const std::string& credentials_dir,
                                                   const std::string& work_dir,
                                                   const std::string& where) {
  StagedCredentials staged;
  struct FileRef {
    Ref ref;
    const char* file;    // the copy's name in StagedCredentialsDir()
    const char* option;  // how ansible-playbook is told about it
  };
  std::vector<FileRef> files;
  if (!ansible.vault_password_ref.empty()) {
    files.push_back({{"vaultPasswordRef", ansible.vault_password_ref},
                     "vault-password",
                     "--vault-password-file"});
  }
  if (!ansible.private_key_ref.empty()) {
    files.push_back({{"privateKeyRef", ansible.private_key_ref}, "private-key", "--private-key"});
  }
  if (!ansible.become_password_ref.empty()) {
    files.push_back({{"becomePasswordRef", ansible.become_password_ref},
                     "become-password",
                     "--become-password-file"});
  }
  std::vector<Ref> env_refs;
  for (const std::string& name : ansible.env_from_refs) env_refs.push_back({"envFromRef", name});
  if (files.empty() && env_refs.empty()) return staged;

  std::vector<const Ref*> all;
  for (const FileRef& f : files) all.push_back(&f.ref);
  for (const Ref& r : env_refs) all.push_back(&r);
  for (const Ref* ref : all) {
    if (!engine::IsCredentialName(ref->name)) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": ansible.", ref->field, " \"",
                                                     ref->name, "\" is not a credential name; ",
                                                     engine::kCredentialNameRule));
    }
  }
  if (credentials_dir.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat(where,
                     ": the template names credentials but this dagd has no credentials "
                     "directory; start dagd with --credentials-dir DIR"));
  }
  if (absl::Status dir = CheckCredentialsDir(credentials_dir); !dir.ok()) {
    return absl::FailedPreconditionError(absl::StrCat(where, ": ", dir.message()));
  }

  // Read everything before writing anything.
  std::vector<std::string> contents;
  for (const FileRef& f : files) {
    ASSIGN_OR_RETURN(std::string content, ReadCredential(credentials_dir, f.ref, where));
    // Ansible strips the whitespace around a password (and ssh ignores it around a key).
    staged.secrets.emplace_back(absl::StripAsciiWhitespace(content));
    contents.push_back(std::move(content));
  }
  for (const Ref& ref : env_refs) {
    ASSIGN_OR_RETURN(const std::string content, ReadCredential(credentials_dir, ref, where));
    const std::string label = absl::StrCat(where, ": credential \"", ref.name, "\" (envFromRef) ",
                                           (fs::path(credentials_dir) / ref.name).string());
    ASSIGN_OR_RETURN(auto vars, ParseEnvFile(content, label));
    for (auto& [name, value] : vars) {
      staged.secrets.push_back(value);
      staged.env[name] = std::move(value);
    }
  }
  if (files.empty()) return staged;

  const std::string dir = StagedCredentialsDir(work_dir);
  RETURN_IF_ERROR(RemoveStagedCredentials(work_dir));
  std::error_code ec;
  fs::create_directories(fs::path(dir).parent_path(), ec);
  if (ec) {
    return absl::UnavailableError(
        absl::StrCat("cannot create ", fs::path(dir).parent_path().string(), ": ", ec.message()));
  }
  if (mkdir(dir.c_str(), 0700) != 0 || chmod(dir.c_str(), 0700) != 0) {
    return absl::UnavailableError(absl::StrCat("cannot create ", dir, ": ", std::strerror(errno)));
  }
  for (size_t i = 0; i < files.size(); ++i) {
    const std::string copy = (fs::path(dir) / files[i].file).string();
    if (absl::Status written = WriteFile(copy, contents[i], 0600); !written.ok()) {
      RemoveStagedCredentials(work_dir).IgnoreError();
      return written;
    }
    staged.args.insert(staged.args.end(), {files[i].option, copy});
  }
  return staged;
}

absl::Status ApplyCredentials(const AttemptSpec& spec, const std::string& credentials_dir,
                              const std::string& where, std::map<std::string, std::string>* env,
                              Command* command) {
  if (!spec.resolved.ansible.has_value()) return absl::OkStatus();
  ASSIGN_OR_RETURN(StagedCredentials staged,
                   StageCredentials(*spec.resolved.ansible, credentials_dir, spec.work_dir, where));
  // Before the playbook, which BuildAnsible() puts last.
  auto playbook = command->argv.empty() ? command->argv.end() : command->argv.end() - 1;
  command->argv.insert(playbook, staged.args.begin(), staged.args.end());
  for (auto& [name, value] : staged.env) (*env)[name] = std::move(value);
  command->secrets.insert(command->secrets.end(), staged.secrets.begin(), staged.secrets.end());
  return absl::OkStatus();
}

absl::Status RemoveStagedCredentials(const std::string& work_dir) {
  const std::string dir = StagedCredentialsDir(work_dir);
  std::error_code ec;
  fs::remove_all(dir, ec);  // a symlink there is removed, not followed
  if (ec) return absl::UnavailableError(absl::StrCat("cannot remove ", dir, ": ", ec.message()));
  return absl::OkStatus();
}

absl::StatusOr<int> RemoveStaleCredentials(const std::string& data_dir) {
  const fs::path attempts = fs::path(data_dir) / "attempts";
  std::error_code ec;
  if (!fs::is_directory(attempts, ec)) return 0;
  int removed = 0;
  absl::Status first_error;
  auto note = [&](const absl::Status& status) {
    if (first_error.ok()) first_error = status;
  };
  for (const fs::directory_entry& run : fs::directory_iterator(attempts, ec)) {
    std::error_code run_ec;
    if (!run.is_directory(run_ec)) continue;
    for (const fs::directory_entry& attempt : fs::directory_iterator(run.path(), run_ec)) {
      std::error_code attempt_ec;
      if (!attempt.is_directory(attempt_ec)) continue;
      const std::string dir = StagedCredentialsDir(attempt.path().string());
      if (!fs::exists(fs::symlink_status(dir, attempt_ec))) continue;
      if (absl::Status status = RemoveStagedCredentials(attempt.path().string()); !status.ok()) {
        note(status);
      } else {
        ++removed;
      }
    }
    if (run_ec)
      note(absl::UnavailableError(
          absl::StrCat("cannot list ", run.path().string(), ": ", run_ec.message())));
  }
  if (ec) {
    note(absl::UnavailableError(
        absl::StrCat("cannot list ", attempts.string(), ": ", ec.message())));
  }
  if (!first_error.ok()) return first_error;
  return removed;
}

}  // namespace dagd::runners::local
