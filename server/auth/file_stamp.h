// FileStamp: what tells that a file changed, for the files dagd re-reads while it runs (static
// tokens, the access policy). Stateless; thread-safe.
#ifndef DAGD_SERVER_AUTH_FILE_STAMP_H_
#define DAGD_SERVER_AUTH_FILE_STAMP_H_

#include <string>

namespace dagd::server::auth {

// The modification time, size and inode of `path` as one string; "" if it cannot be read.
std::string FileStamp(const std::string& path);

}  // namespace dagd::server::auth

#endif  // DAGD_SERVER_AUTH_FILE_STAMP_H_
