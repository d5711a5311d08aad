#include "SelftestRun.h"

#include "ClientError.h"

#include <fstream>
#include <sys/stat.h>
#include <unistd.h>

namespace rdtmon::ctl::selftest {

using client::ClientError;
using client::ClientErrorKind;

std::string Run::idFor(const std::string& what) const {
    std::string id = "rdtmon-selftest-";
    id += std::to_string(::getpid());
    id += "-" + what;
    return id;
}

std::string Run::add(const std::string& id, const TestProcess& p, std::string& state) {
    interrupt.check();
    // Remembered first: a reply lost to a signal or a timeout may still have made it.
    made_.insert(id);
    auto [path, st] = bus.addContainer(id, p.pidfd(), {{"container", "rdtmon-selftest"}});
    state = st;
    for (const client::GroupInfo& g : bus.listGroups()) {
        if (g.id == id) {
            return g.resctrlPath;
        }
    }
    return "";
}

void Run::remove(const std::string& id) {
    try {
        bus.removeGroup(id);
    } catch (const ClientError& e) {
        if (e.kind() != ClientErrorKind::NoSuchGroup) {
            throw;
        }
    }
    made_.erase(id);
}

std::vector<std::string> Run::removeAll() noexcept {
    std::vector<std::string> left;
    for (const std::string& id : std::set<std::string>(made_)) {
        try {
            remove(id);
        } catch (const std::exception&) {
            left.push_back(id);
        }
    }
    return left;
}

std::set<pid_t> readTasks(const std::string& path) {
    std::set<pid_t> out;
    std::ifstream in(path);
    for (long t = 0; in >> t;) {
        out.insert(static_cast<pid_t>(t));
    }
    return out;
}

bool dirExists(const std::string& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

double secondsSince(std::chrono::steady_clock::time_point t) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

} // namespace rdtmon::ctl::selftest
