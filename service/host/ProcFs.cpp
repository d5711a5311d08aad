#include "ProcFs.h"

#include "Errors.h"
#include "FileIo.h"
#include "UniqueFd.h"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

namespace rdtmon {

std::optional<ProcStat> readProcStat(pid_t pid) {
    ReadResult r = readPath("/proc/" + std::to_string(pid) + "/stat");
    if (r.err != 0) {
        return std::nullopt;
    }
    return parseProcStat(r.text);
}

bool procExists(pid_t pid) {
    struct stat st {};
    return ::stat(("/proc/" + std::to_string(pid)).c_str(), &st) == 0;
}

std::optional<std::vector<pid_t>> threadsOf(pid_t pid) {
    std::string path = "/proc/" + std::to_string(pid) + "/task";
    int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT || errno == ESRCH) {
            return std::nullopt;
        }
        throwErrno(errno,
                   "cannot list the threads of process " + std::to_string(pid) + " in " + path);
    }
    UniqueFd dfd(fd);
    std::vector<pid_t> tids;
    int err = forEachEntry(dfd.get(), [&](const std::string& n, unsigned char) {
        pid_t t = 0;
        auto [p, ec] = std::from_chars(n.data(), n.data() + n.size(), t);
        if (ec == std::errc() && p == n.data() + n.size() && t > 0) {
            tids.push_back(t);
        }
    });
    if (err == ENOENT || err == ESRCH) {
        return std::nullopt;
    }
    if (err != 0) {
        throwErrno(err,
                   "cannot list the threads of process " + std::to_string(pid) + " in " + path);
    }
    return tids;
}

std::optional<PidfdInfo> parsePidfdInfo(std::string_view text) {
    std::size_t pos = 0;
    while (pos < text.size()) {
        std::size_t end = text.find('\n', pos);
        if (end == std::string_view::npos) {
            end = text.size();
        }
        std::string_view line = text.substr(pos, end - pos);
        pos = end + 1;
        if (!line.starts_with("Pid:")) {
            continue;
        }
        line.remove_prefix(4);
        while (!line.empty() && (line.front() == '\t' || line.front() == ' ')) {
            line.remove_prefix(1);
        }
        PidfdInfo info;
        auto [p, ec] = std::from_chars(line.data(), line.data() + line.size(), info.pid);
        if (ec != std::errc() || p != line.data() + line.size() || info.pid < -1) {
            return std::nullopt;
        }
        return info;
    }
    return std::nullopt;
}

bool pidfdExited(int fd) {
    pollfd p{fd, POLLIN, 0};
    int r = 0;
    do {
        r = ::poll(&p, 1, 0);
    } while (r < 0 && errno == EINTR);
    return r > 0 && (p.revents & (POLLIN | POLLHUP | POLLERR)) != 0;
}

pid_t pidOfPidfd(int fd) {
    if (fd < 0) {
        throw Error(ErrorKind::InvalidArgument, "no file descriptor was passed");
    }
    ReadResult r = readPath("/proc/self/fdinfo/" + std::to_string(fd));
    if (r.err != 0) {
        throw Error(ErrorKind::Failed, "cannot read /proc/self/fdinfo/" + std::to_string(fd) +
                                           ": " + errnoText(r.err));
    }
    std::optional<PidfdInfo> info = parsePidfdInfo(r.text);
    if (!info) {
        throw Error(ErrorKind::InvalidArgument,
                    "the file descriptor passed is not a pidfd (pidfd_open of the process)");
    }
    if (info->pid == -1) {
        throw Error(ErrorKind::NoSuchProcess, "the pidfd's process has exited");
    }
    if (info->pid == 0) {
        throw Error(ErrorKind::InvalidArgument,
                    "the pidfd's process is not in rdtmond's pid namespace");
    }
    const auto pid = static_cast<pid_t>(info->pid);
    if (pidfdExited(fd)) {
        throw Error(ErrorKind::NoSuchProcess,
                    "the pidfd's process " + std::to_string(pid) + " has exited");
    }
    return pid;
}

void requireContainerCandidate(pid_t pid) {
    const std::string ps = std::to_string(pid);
    if (pid == 1) {
        throw Error(ErrorKind::InvalidArgument,
                    "pid 1 is the init of rdtmond's pid namespace, never a container's");
    }
    struct stat st {};
    if (pid == ::getpid() || ::stat(("/proc/self/task/" + ps).c_str(), &st) == 0) {
        throw Error(ErrorKind::InvalidArgument, "pid " + ps + " is rdtmond itself");
    }
    std::optional<ProcStat> s = readProcStat(pid);
    if (!s) {
        throw Error(ErrorKind::NoSuchProcess, "process " + ps + " does not exist");
    }
    if ((s->flags & kPfKthread) != 0) {
        throw Error(ErrorKind::InvalidArgument,
                    "pid " + ps + " (" + s->comm +
                        ") is a kernel thread, never a container's init");
    }
    if (s->state == 'Z' || s->state == 'X' || s->state == 'x') {
        throw Error(ErrorKind::NoSuchProcess,
                    "process " + ps + " (" + s->comm + ") has exited (" +
                        (s->state == 'Z' ? "a zombie not yet reaped" : "dead") + ")");
    }
}

std::optional<unsigned> pidNamespaceDepth(pid_t pid) {
    ReadResult r = readPath("/proc/" + std::to_string(pid) + "/status");
    if (r.err != 0) {
        return std::nullopt;
    }
    const std::string_view text = r.text;
    const std::size_t at = text.find("\nNSpid:");
    if (at == std::string_view::npos) {
        return std::nullopt;
    }
    std::size_t i = at + 7;
    const std::size_t end = std::min(text.find('\n', i), text.size());
    unsigned ids = 0;
    while (i < end) {
        while (i < end && (text[i] == ' ' || text[i] == '\t')) {
            ++i;
        }
        const std::size_t b = i;
        while (i < end && text[i] != ' ' && text[i] != '\t') {
            ++i;
        }
        ids += i > b ? 1 : 0;
    }
    if (ids == 0) {
        return std::nullopt;
    }
    return ids - 1;
}

bool sharesOurPidNamespace(pid_t pid) {
    return pidNamespaceDepth(::getpid()) == 0u && pidNamespaceDepth(pid) == 0u;
}

} // namespace rdtmon
