#pragma once

#include <string>

namespace rdtmon::test {

// A fresh directory (mkdtemp under $TMPDIR or /tmp), removed recursively on destruction.
// The removal never crosses into another file system (st_dev differs, e.g. a FUSE mount
// still sitting below it): such a mount point is left alone rather than emptied.
class TempDir {
public:
    explicit TempDir(const std::string& prefix = "rdtmon-test");
    ~TempDir();
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;

    const std::string& path() const { return path_; }
    std::string file(const std::string& name) const { return path_ + "/" + name; }

private:
    std::string path_;
};

} // namespace rdtmon::test
