// resctrl-emu: the test-control socket and its protocol (see ControlServer.h).
#include "ControlServer.h"

#include "Text.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <map>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <vector>

namespace rdtmon::emu {
namespace {

const std::map<std::string, int>& errnoNames() {
    static const std::map<std::string, int> names = {
        {"EPERM", EPERM},       {"ENOENT", ENOENT},
        {"ESRCH", ESRCH},       {"EINTR", EINTR},
        {"EIO", EIO},           {"ENXIO", ENXIO},
        {"E2BIG", E2BIG},       {"EAGAIN", EAGAIN},
        {"ENOMEM", ENOMEM},     {"EACCES", EACCES},
        {"EFAULT", EFAULT},     {"EBUSY", EBUSY},
        {"EEXIST", EEXIST},     {"ENODEV", ENODEV},
        {"ENOTDIR", ENOTDIR},   {"EISDIR", EISDIR},
        {"EINVAL", EINVAL},     {"ENOSPC", ENOSPC},
        {"EROFS", EROFS},       {"ENOTEMPTY", ENOTEMPTY},
        {"ENOTCONN", ENOTCONN}, {"ETIMEDOUT", ETIMEDOUT},
    };
    return names;
}

std::optional<int> parseErrno(const std::string& s) {
    auto it = errnoNames().find(s);
    if (it != errnoNames().end()) {
        return it->second;
    }
    auto n = parseNumber(s);
    if (n && *n > 0 && *n < 4096) {
        return static_cast<int>(*n);
    }
    return std::nullopt;
}

// One command line (trimmed) to its reply line (without the newline).
std::string runCommand(Model& model, const std::string& line) {
    std::vector<std::string> w = splitWords(line);
    if (w.empty()) {
        return "error empty command";
    }
    const std::string& cmd = w[0];
    if (cmd == "ping" && w.size() == 1) {
        return "ok pong";
    }
    if (cmd == "limbo-ms" && w.size() == 2) {
        auto n = parseNumber(w[1]);
        if (!n || *n < 0) {
            return "error limbo-ms needs a number of milliseconds";
        }
        model.setLimboMs(static_cast<unsigned>(*n));
        return "ok";
    }
    if (cmd == "fail-next-mkdir" && w.size() == 2) {
        auto e = parseErrno(w[1]);
        if (!e) {
            return "error unknown errno " + w[1];
        }
        model.failNextMkdir(*e);
        return "ok";
    }
    if (cmd == "fail-tasks-write-after" && w.size() == 3) {
        auto n = parseNumber(w[1]);
        auto e = parseErrno(w[2]);
        if (!n || *n < 0 || !e) {
            return "error usage: fail-tasks-write-after N ERRNO";
        }
        model.failTasksWriteAfter(*n, *e);
        return "ok";
    }
    if (cmd == "hold-tasks-write-after" && w.size() == 2) {
        auto n = parseNumber(w[1]);
        if (!n || *n < 0) {
            return "error usage: hold-tasks-write-after N";
        }
        model.holdTasksWriteAfter(*n);
        return "ok";
    }
    if (cmd == "hold-counter-read" && w.size() == 1) {
        model.holdCounterRead();
        return "ok";
    }
    if (cmd == "hold-next-scan" && w.size() == 1) {
        model.holdNextScan();
        return "ok";
    }
    if (cmd == "scan-held" && w.size() == 1) {
        return model.scanHeld() ? "ok 1" : "ok 0";
    }
    if (cmd == "release-scan" && w.size() == 1) {
        model.releaseScan();
        return "ok";
    }
    if (cmd == "counter-read-held" && w.size() == 1) {
        return model.counterReadHeld() ? "ok 1" : "ok 0";
    }
    if (cmd == "release-counter-read" && w.size() == 1) {
        model.releaseCounterRead();
        return "ok";
    }
    if (cmd == "tasks-write-held" && w.size() == 1) {
        return model.tasksWriteHeld() ? "ok 1" : "ok 0";
    }
    if (cmd == "release-tasks-write" && w.size() == 1) {
        model.releaseTasksWrite();
        return "ok";
    }
    if (cmd == "counter" && w.size() == 4) {
        auto node = model.resolve(w[1] == "/" ? "/" : ("/" + w[1]).c_str());
        if (!node || node->kind != Model::Kind::GroupDir) {
            return "error no such group " + w[1];
        }
        std::vector<int> events;
        if (w[2] == "all") {
            events = {0, 1, 2};
        } else if (auto e = eventFromName(w[2])) {
            events = {*e};
        } else {
            return "error unknown event " + w[2];
        }
        std::string word = w[3];
        if (word == "reset") {
            if (w[2] == "llc_occupancy") {
                return "error llc_occupancy is a current value, not a count: drive it instead";
            }
            for (int e : events) {
                if (e != LlcOccupancy) {
                    model.resetCounter(node->group, e);
                }
            }
            return "ok";
        }
        if (word == "clear") {
            word.clear();
        } else if (word != "Unavailable" && word != "Error" && word != "Unassigned") {
            return "error word must be Unavailable, Error, Unassigned, clear or reset";
        }
        for (int e : events) {
            model.overrideCounter(node->group, e, word);
        }
        return "ok";
    }
    if (cmd == "drive" && (w.size() == 3 || w.size() == 5 || w.size() == 6)) {
        auto node = model.resolve(w[1] == "/" ? "/" : ("/" + w[1]).c_str());
        if (!node || node->kind != Model::Kind::GroupDir) {
            return "error no such group " + w[1];
        }
        if (w.size() == 3) {
            if (w[2] != "off") {
                return "error usage: drive GROUP [DOMAIN|all] TOTAL_BPS LOCAL_BPS LLC_BYTES, "
                       "or drive GROUP off";
            }
            model.driveOff(node->group);
            return "ok";
        }
        std::optional<unsigned> domain;
        size_t i = 2;
        if (w.size() == 6) {
            if (w[2] != "all") {
                auto d = parseNumber(w[2]);
                if (!d || *d < 0) {
                    return "error DOMAIN must be an L3 domain number or all";
                }
                domain = static_cast<unsigned>(*d);
            }
            i = 3;
        }
        double v[3];
        for (size_t k = 0; k < 3; ++k) {
            auto n = parseNumber(w[i + k]);
            if (!n || *n < 0) {
                return "error TOTAL_BPS, LOCAL_BPS and LLC_BYTES must be numbers >= 0";
            }
            v[k] = static_cast<double>(*n);
        }
        if (!model.drive(node->group, domain, v[0], v[1], v[2])) {
            return "error no such L3 domain " + w[2];
        }
        return "ok";
    }
    if (cmd == "energy" && w.size() == 3) {
        auto node = model.resolve(w[1] == "/" ? "/" : ("/" + w[1]).c_str());
        if (!node || node->kind != Model::Kind::GroupDir) {
            return "error no such group " + w[1];
        }
        auto watts = parseNumber(w[2]);
        if (!watts || *watts < 0) {
            return "error usage: energy GROUP WATTS (a number >= 0)";
        }
        model.setWatts(node->group, static_cast<double>(*watts));
        return "ok";
    }
    if (cmd == "rmids" && w.size() == 1) {
        return "ok " + model.rmidsReport();
    }
    return "error unknown command: " + line;
}
struct Conn {
    UniqueFd fd;
    std::string in;
};

} // namespace

ControlServer::ControlServer(Model& m, const std::string& path) : model_(m), path_(path) {
    ::unlink(path.c_str());
    listen_.reset(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (!listen_ || path.size() >= sizeof addr.sun_path) {
        throw std::runtime_error("cannot create control socket " + path);
    }
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    if (::bind(listen_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::listen(listen_.get(), 16) != 0) {
        throw std::runtime_error("cannot bind control socket " + path + ": " +
                                 std::strerror(errno));
    }
    wake_.reset(::eventfd(0, EFD_CLOEXEC));
}
ControlServer::~ControlServer() {
    stop();
    ::unlink(path_.c_str());
}
void ControlServer::start() {
    thread_ = std::thread([this] { run(); });
}
void ControlServer::stop() {
    if (thread_.joinable()) {
        uint64_t one = 1;
        [[maybe_unused]] ssize_t r = ::write(wake_.get(), &one, sizeof one);
        thread_.join();
    }
}

void ControlServer::run() {
    std::vector<Conn> conns;
    for (;;) {
        std::vector<pollfd> pfds{{wake_.get(), POLLIN, 0}, {listen_.get(), POLLIN, 0}};
        for (auto& c : conns) {
            pfds.push_back({c.fd.get(), POLLIN, 0});
        }
        if (::poll(pfds.data(), pfds.size(), -1) < 0) {
            if (errno == EINTR) {
                continue;
            }
            return;
        }
        if (pfds[0].revents) {
            return;
        }
        // Only the connections that were polled have a pfds entry; one accepted below
        // is polled on the next round (ASan: heap-buffer-overflow reading pfds[i + 2]).
        const size_t polled = conns.size();
        if (pfds[1].revents & POLLIN) {
            UniqueFd c(::accept4(listen_.get(), nullptr, nullptr, SOCK_CLOEXEC));
            if (c) {
                conns.push_back(Conn{std::move(c), {}});
            }
        }
        for (size_t i = 0; i < polled; ++i) {
            if (pfds[i + 2].revents == 0) {
                continue;
            }
            char buf[1024];
            ssize_t n = ::read(conns[i].fd.get(), buf, sizeof buf);
            if (n <= 0) {
                conns[i].fd.reset();
                continue;
            }
            conns[i].in.append(buf, static_cast<size_t>(n));
            size_t nl;
            while ((nl = conns[i].in.find('\n')) != std::string::npos) {
                std::string line = conns[i].in.substr(0, nl);
                conns[i].in.erase(0, nl + 1);
                std::string reply;
                {
                    std::lock_guard lk(model_.mu);
                    reply = runCommand(model_, trim(line));
                }
                reply += "\n";
                [[maybe_unused]] ssize_t w =
                    ::send(conns[i].fd.get(), reply.data(), reply.size(), MSG_NOSIGNAL);
            }
            if (conns[i].in.size() > 65536) {
                conns[i].fd.reset();
            }
        }
        std::erase_if(conns, [](const Conn& c) { return !c.fd; });
    }
}

} // namespace rdtmon::emu
