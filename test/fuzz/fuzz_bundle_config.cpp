// The bundle's config.json as the hook reads it: the input is written to
// <tmp bundle>/config.json and bundleEnablesMonitoring() reads it through its real
// openat(O_NOFOLLOW|O_NONBLOCK) path. Only rdtmon::Error may escape.

#include "FuzzCommon.h"
#include "OciState.h"

#include <cstdlib>
#include <fcntl.h>
#include <string>
#include <unistd.h>

using namespace rdtmon;

namespace {

const std::string& bundleDir() {
    static const std::string dir = [] {
        const char* tmp = std::getenv("TMPDIR");
        std::string tmpl = std::string(tmp != nullptr && *tmp == '/' ? tmp : "/tmp") +
                           "/rdtmon-fuzz-bundle-XXXXXX";
        if (::mkdtemp(tmpl.data()) == nullptr) {
            std::abort();
        }
        return tmpl;
    }();
    return dir;
}

void cleanup() {
    ::unlink((bundleDir() + "/config.json").c_str());
    ::rmdir(bundleDir().c_str());
}

} // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    (void)bundleDir();
    std::atexit(cleanup);
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string path = bundleDir() + "/config.json";
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        std::abort();
    }
    size_t off = 0;
    while (off < size) {
        ssize_t n = ::write(fd, data + off, size - off);
        if (n <= 0) {
            std::abort();
        }
        off += static_cast<size_t>(n);
    }
    ::close(fd);
    fuzz::expectOnlyRdtmonErrors("bundleEnablesMonitoring",
                                 [&] { (void)bundleEnablesMonitoring(bundleDir()); });
    return 0;
}
