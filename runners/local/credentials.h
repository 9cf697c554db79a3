// Credentials for ansible attempts: secrets a template names (vaultPasswordRef, privateKeyRef,
// becomePasswordRef, envFromRef), read at launch from dagd's credentials directory and handed to
// ansible-playbook through files that live only as long as the attempt.
//
// The directory (LocalRunnerOptions::credentials_dir, dagd --credentials-dir) holds one file per
// credential, named as the template names it ([A-Za-z0-9][A-Za-z0-9._-]*). It must be owned by
// dagd's user and closed to group and others (chmod 700); each credential file must be a regular
// file (a symlink is followed) owned by dagd's user with no group or other permission bits
// (chmod 600). dagd never writes there.
//
//   vaultPasswordRef  → copied to <work_dir>/.dagd/credentials/vault-password,
//                       ansible-playbook --vault-password-file FILE
//   privateKeyRef     → copied to <work_dir>/.dagd/credentials/private-key, --private-key FILE
//   becomePasswordRef → copied to <work_dir>/.dagd/credentials/become-password,
//                       --become-password-file FILE
//   envFromRef        → each file holds NAME=VALUE lines (VALUE verbatim to the end of the line;
//                       blank lines and lines starting with '#' are skipped), set in the
//                       attempt's environment after the template's `env` (a credential wins);
//                       later files win over earlier ones. Nothing is copied.
// The copies are 0600 in a 0700 directory, written without following symlinks, and never
// executable (so Ansible reads a password file rather than running it). The LocalRunner removes
// <work_dir>/.dagd/credentials when the attempt ends and in KillAll(); RemoveStaleCredentials()
// removes what a crashed dagd left behind.
//
// Every value read (passwords and keys trimmed of surrounding whitespace, as Ansible reads them,
// and each envFromRef value) is returned for SecretMasker (secret_mask.h). No error message
// contains a value or a line of a credential file.
//
// Blocking file I/O; stateless and thread-compatible.
#ifndef DAGD_RUNNERS_LOCAL_CREDENTIALS_H_
#define DAGD_RUNNERS_LOCAL_CREDENTIALS_H_

#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "engine/workflow.h"
#include "runners/local/command.h"

namespace dagd::runners::local {

// The directory inside a work_dir that holds an attempt's credential copies.
std::string StagedCredentialsDir(const std::string& work_dir);

// OK if `dir` is a directory owned by this process's effective uid with no group or other
// permission bits. FailedPrecondition otherwise, naming the directory and the fix.
absl::Status CheckCredentialsDir(const std::string& dir);

// The NAME=VALUE pairs of an envFromRef file, in order. `label` names the file in errors.
// InvalidArgument for a line that is not NAME=VALUE with NAME of letters, digits and '_' (not
// starting with a digit), naming `label` and the line number but not the line.
absl::StatusOr<std::vector<std::pair<std::string, std::string>>> ParseEnvFile(
    std::string_view text, const std::string& label);

// What StageCredentials() prepared for one attempt.
struct StagedCredentials {
  std::vector<std::string> args;           // ansible-playbook options naming the copies
  std::map<std::string, std::string> env;  // from the envFromRef files
  std::vector<std::string> secrets;        // every value, for SecretMasker
};

// Reads the credentials `ansible` names from `credentials_dir` and copies those ansible-playbook
// reads from files into StagedCredentialsDir(work_dir). Names nothing → nothing is read or
// written (the directory need not exist). `where` names the template in errors.
// Errors: InvalidArgument for a name that is not a credential name (engine::IsCredentialName,
// e.g. after substitution) or a malformed envFromRef file; FailedPrecondition for no
// credentials directory configured, a directory or file that is missing or not private, naming
// the path and the fix; Unavailable when a copy cannot be written.
absl::StatusOr<StagedCredentials> StageCredentials(const engine::AnsibleSpec& ansible,
                                                   const std::string& credentials_dir,
                                                   const std::string& work_dir,
                                                   const std::string& where);

// The hook BuildCommand() calls for an ansible template, after the template's env is applied:
// StageCredentials() for spec.resolved.ansible, its options inserted before the playbook (the
// last argument of command->argv), its variables set in `env`, its secrets appended to
// command->secrets.
absl::Status ApplyCredentials(const AttemptSpec& spec, const std::string& credentials_dir,
                              const std::string& where, std::map<std::string, std::string>* env,
                              Command* command);

// Removes StagedCredentialsDir(work_dir) and everything in it; OK if there is none.
absl::Status RemoveStagedCredentials(const std::string& work_dir);

// Removes the staged credentials of every attempt under <data_dir>/attempts/<run>/<attempt>/ —
// left there if dagd died while attempts ran. Returns how many directories were removed; the
// first error met, if any, after trying them all.
absl::StatusOr<int> RemoveStaleCredentials(const std::string& data_dir);

}  // namespace dagd::runners::local

#endif  // DAGD_RUNNERS_LOCAL_CREDENTIALS_H_
