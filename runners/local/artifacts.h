// Argo-style artifacts in dagd's artifact store, a directory on the host: SaveArtifact puts a
// step's output file or directory into the store, LoadArtifact places a stored artifact where a
// step expects its input. The layout is Argo's: a ".tgz" artifact is one gzip-compressed tar
// whose single top-level entry is named after the saved path, so artifacts move between dagd and
// Argo unchanged.
//
// Both functions block on the file system and keep no state: any thread may call them, on
// different destinations at once. Neither changes the process's working directory or umask.
// Whatever they write is first built in a temporary directory beside the destination
// ("<destination>.tmp-XXXXXX", so on the same file system) and renamed into place, so a reader
// never sees a half-written artifact. A failed call removes its temporary files and leaves an
// existing destination as it was (unless the last rename fails after an old directory there was
// removed, which rename() cannot do in one step).
#ifndef DAGD_RUNNERS_LOCAL_ARTIFACTS_H_
#define DAGD_RUNNERS_LOCAL_ARTIFACTS_H_

#include <string>

#include "absl/status/status.h"

namespace dagd::runners::local {

// How an artifact is stored (Argo's `archive:` field: the default `tar: {}`, or `none: {}`).
enum class ArtifactArchive { kTgz, kNone };

// Saves the file or directory tree at host path `source` to host path `destination` in the store.
//  kTgz: `destination` becomes one gzip-compressed tar whose single top-level entry is named
//        after the last non-empty component of `source` ("/tmp/" → "tmp", "/tmp/a.txt" →
//        "a.txt"), Argo's layout. Directories recurse (entries sorted by name); symlinks are
//        stored as symlinks (not followed, except `source` itself); regular files, directories,
//        symlinks only (sockets, fifos, devices are skipped). Modes are kept.
//  kNone: a plain copy (file → file, directory → directory tree, symlinks as symlinks, the same
//        kinds skipped), modes kept.
// Written under a temporary name beside `destination` then renamed into place (a directory: the
// old one removed first); parent directories are created (0755). An existing destination is
// replaced.
// NotFound if `source` does not exist; InvalidArgument if `source` is "/" (no name to give it), is
// itself not a regular file or directory (after following a symlink), or is a directory that
// would hold `destination`; Unavailable for I/O errors (message names the path and strerror).
absl::Status SaveArtifact(const std::string& source, ArtifactArchive archive,
                          const std::string& destination);

// Places a stored artifact (host path `stored`) at host path `target`:
//  - a regular file that is a gzip'd tar (detected by trying libarchive with gzip+tar only; a
//    plain tar, a gzip'd non-tar or anything else is not an archive) is extracted: when the tar
//    holds exactly one top-level entry, that entry becomes `target` (file, directory or
//    symlink); otherwise `target` is a directory (0755) holding the top-level entries ("./"
//    prefixes are ignored, so `tar -C dir .` archives unpack to dir's content). Modes are kept,
//    less the setuid and setgid bits;
//  - anything else (a plain file, a directory) is copied to `target`, modes kept.
// `sub_path` (may be empty): only that relative path inside the artifact (inside the single
// top-level entry / the directory) is placed at target, e.g. a stored directory "tmp" + sub_path
// "hello.txt" → target is that file. A sub_path that leads through a symlink is not followed.
// An absolute sub_path or one with ".." is InvalidArgument. Archive entries with absolute paths
// or ".." components, that lead through a symlink of the archive, hard links, devices, fifos
// and sockets are refused with InvalidArgument, and nothing is written outside `target`.
// Parent directories of target are created (0755). An existing target file/directory is
// replaced.
// NotFound if `stored` does not exist or `sub_path` is not in it; Unavailable for I/O errors and
// damaged archives (message names the path).
absl::Status LoadArtifact(const std::string& stored, const std::string& sub_path,
                          const std::string& target);

}  // namespace dagd::runners::local

#endif  // DAGD_RUNNERS_LOCAL_ARTIFACTS_H_
