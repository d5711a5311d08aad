// resctrl-emu: /proc access (see Proc.h).
#include "HostProc.h"

#include "Text.h"
#include "UniqueFd.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/nsfs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <ctime>
#include <sstream>

namespace rdtmon::emu {

std::optional<std::string> readSmallFile(const std::string& path) {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) {
        return std::nullopt;
    }
    std::string out;
    char buf[4096];
    for (;;) {
        ssize_t n = ::read(fd.get(), buf, sizeof buf);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return std::nullopt;
        }
        if (n == 0) {
            break;
        }
        out.append(buf, static_cast<size_t>(n));
    }
    return out;
}

std::vector<std::string> listDir(const std::string& path) {
    std::vector<std::string> out;
    DIR* d = ::opendir(path.c_str());
    if (d == nullptr) {
        return out;
    }
    while (dirent* e = ::readdir(d)) {
        if (e->d_name[0] != '.') {
            out.emplace_back(e->d_name);
        }
    }
    ::closedir(d);
    return out;
}

uint64_t boottimeTicks() {
    static const long hz = ::sysconf(_SC_CLK_TCK);
    timespec ts{};
    ::clock_gettime(CLOCK_BOOTTIME, &ts);
    uint64_t ns =
        static_cast<uint64_t>(ts.tv_sec) * 1000000000ULL + static_cast<uint64_t>(ts.tv_nsec);
    return ns / (1000000000ULL / static_cast<uint64_t>(hz));
}

std::optional<ThreadInfo> readThread(pid_t tgid, pid_t tid) {
    std::string path =
        tgid > 0 ? "/proc/" + std::to_string(tgid) + "/task/" + std::to_string(tid) + "/stat"
                 : "/proc/" + std::to_string(tid) + "/stat";
    auto content = readSmallFile(path);
    if (!content) {
        return std::nullopt;
    }
    size_t close = content->rfind(')');
    if (close == std::string::npos) {
        return std::nullopt;
    }
    std::vector<std::string> f = splitWords(content->substr(close + 1));
    if (f.size() < 20 || f[0] == "Z" || f[0] == "X" || f[0] == "x") {
        return std::nullopt;
    }
    ThreadInfo t;
    t.tid = tid;
    t.ppid = static_cast<pid_t>(std::strtol(f[1].c_str(), nullptr, 10));
    t.start = std::strtoull(f[19].c_str(), nullptr, 10);
    if (tgid > 0) {
        t.tgid = tgid;
    } else {
        auto status = readSmallFile("/proc/" + std::to_string(tid) + "/status");
        if (!status) {
            return std::nullopt;
        }
        size_t p = status->find("\nTgid:");
        if (p == std::string::npos) {
            return std::nullopt;
        }
        t.tgid = static_cast<pid_t>(std::strtol(status->c_str() + p + 6, nullptr, 10));
    }
    return t;
}

std::vector<long> statusLine(const std::string& status, const std::string& key) {
    std::vector<long> out;
    size_t p = status.find("\n" + key + ":");
    if (p == std::string::npos) {
        return out;
    }
    size_t e = status.find('\n', p + 1);
    std::istringstream in(status.substr(p + key.size() + 2, e - p - key.size() - 2));
    long v;
    while (in >> v) {
        out.push_back(v);
    }
    return out;
}

std::optional<ino_t> pidNsInode(pid_t pid) {
    struct stat st {};
    std::string path = pid > 0 ? "/proc/" + std::to_string(pid) + "/ns/pid" : "/proc/self/ns/pid";
    if (::stat(path.c_str(), &st) != 0) {
        return std::nullopt;
    }
    return st.st_ino;
}

std::optional<pid_t> idInNamespace(pid_t tid, const CallerNs& ns) {
    auto status = readSmallFile("/proc/" + std::to_string(tid) + "/status");
    if (!status) {
        return std::nullopt;
    }
    std::vector<long> nspid = statusLine(*status, "NSpid");
    if (nspid.size() < ns.level + 1) {
        return std::nullopt;
    }
    UniqueFd fd(::open(("/proc/" + std::to_string(tid) + "/ns/pid").c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) {
        return std::nullopt;
    }
    for (size_t up = nspid.size() - 1 - ns.level; up > 0; --up) {
        UniqueFd parent(::ioctl(fd.get(), NS_GET_PARENT));
        if (!parent) {
            return std::nullopt;
        }
        fd = std::move(parent);
    }
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0 || st.st_ino != ns.inode) {
        return std::nullopt;
    }
    return static_cast<pid_t>(nspid[ns.level]);
}

} // namespace rdtmon::emu
