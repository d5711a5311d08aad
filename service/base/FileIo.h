#pragma once

#include "UniqueFd.h"

#include <functional>
#include <string>

// The fd-relative file layer under Resctrl: every open is relative to a directory fd and
// never follows a symlink, so a link planted inside resctrl is never written through.
// One error convention: a failure is a positive errno value, in `err` of the result
// (OpenResult, ReadResult) or as the return value (0 for success) of the others.
namespace rdtmon {

struct OpenResult {
    UniqueFd fd; // open when err == 0
    int err = 0;
};
// Opens one directory component below dirfd (openat2 RESOLVE_NO_SYMLINKS|RESOLVE_BENEATH,
// or openat O_NOFOLLOW where openat2 is missing). ELOOP / ENOTDIR mean "a symlink or not a
// directory".
OpenResult openDirComponent(int dirfd, const std::string& name);
// Opens relPath ("a/b/c") below dirfd with flags (O_PATH | O_DIRECTORY for a directory to
// open others from, O_RDONLY for a file): no component may be a symlink or leave dirfd. One
// openat2(2) where it exists, else one openat(O_NOFOLLOW) per component. For the bulk
// read, where a directory opened only to open others below it need not be opened for
// reading (O_PATH: on FUSE no OPEN/RELEASE round trip).
OpenResult openBeneath(int dirfd, const std::string& relPath, int flags);
// Opens a regular file below dirfd without following a symlink.
OpenResult openFileComponent(int dirfd, const std::string& name, int flags);

struct ReadResult {
    int err = 0;
    std::string text;
};
// Reads fd to its end.
ReadResult readAll(int fd);
// Reads a short file (a counter: one line) again from offset 0, as a kept-open kernfs
// file allows (every read at offset 0 regenerates it): usually one pread(2).
ReadResult rereadShort(int fd);
// Reads the file name below dirfd (no symlink followed).
ReadResult readFileAt(int dirfd, const std::string& name);
// Reads a file given by plain path (for /proc only).
ReadResult readPath(const std::string& path);

// Calls fn(name, d_type) for every entry of the directory dirfd other than . and ..; uses a
// descriptor of its own so dirfd's offset is untouched. Returns 0 or errno.
int forEachEntry(int dirfd, const std::function<void(const std::string&, unsigned char)>& fn);

// Resolves DT_UNKNOWN (some filesystems do not fill d_type) without following symlinks.
unsigned char entryType(int dirfd, const std::string& name, unsigned char dtype);

// Writes one task id to an open tasks file: one id per write(2), as the kernel wants.
// Returns 0 or errno.
int writeTid(int tasksFd, int tid);

// Test hook: false forces the openat(O_NOFOLLOW) fallback even where openat2(2) exists.
void setUseOpenat2(bool enabled);

} // namespace rdtmon
