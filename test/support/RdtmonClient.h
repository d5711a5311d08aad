#pragma once

// A small client of org.rdtmon1 for tests: calls return the D-Bus error name (or "") so
// tests can assert the exact error, and a recorder collects the Manager's signals.

#include "AllValues.h"

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <sdbus-c++/sdbus-c++.h>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace rdtmon::test {

using CountersMap = std::map<std::string, std::map<std::string, uint64_t>>;
using GroupRow = sdbus::Struct<std::string, std::string, uint32_t, uint64_t, sdbus::ObjectPath>;

struct CallResult {
    std::string error;   // D-Bus error name, "" on success
    std::string message; // error message
    bool ok() const { return error.empty(); }
};

class RdtmonClient {
public:
    explicit RdtmonClient(const std::string& busAddress);

    CallResult createGroup(const std::string& id, uint32_t pid, sdbus::ObjectPath* out = nullptr);
    // CreateContainerGroup with the pidfd fd (sent as a copy; fd stays the caller's).
    CallResult createContainerGroup(const std::string& id, int pidfd,
                                    const std::map<std::string, std::string>& labels = {},
                                    sdbus::ObjectPath* out = nullptr);
    // The Labels property of the group object of container id.
    std::map<std::string, std::string> labelsOf(const std::string& id);
    // A property of the group object of id (org.rdtmon1.Group).
    sdbus::Variant groupProperty(const std::string& id, const std::string& name);
    CallResult removeGroup(const std::string& id);
    std::vector<GroupRow> listGroups();
    // ListRuntimeGroups: (id, resctrl path, pid, created usec, labels).
    using RuntimeRow = sdbus::Struct<std::string, std::string, uint32_t, uint64_t,
                                     std::map<std::string, std::string>>;
    std::vector<RuntimeRow> listRuntimeGroups();
    // GetAllCounters: id -> labels (the counters left out).
    std::map<std::string, std::map<std::string, std::string>> allCountersLabels();
    std::set<std::string> listedIds(); // the container ids of listGroups()
    CallResult getCounters(const std::string& id, CountersMap* out = nullptr);
    CallResult garbageCollect(uint32_t* removed = nullptr);
    // GetAllValues in-process (the call a client times). Throws sdbus::Error.
    AllValues allValues();
    template <class T> T property(const std::string& name) {
        return proxy_->getProperty(name).onInterface("org.rdtmon1.Manager").get<T>();
    }

private:
    std::unique_ptr<sdbus::IConnection> conn_;
    std::unique_ptr<sdbus::IProxy> proxy_;
};

// A pidfd of pid (pidfd_open), owned: closed by the destructor. Throws when it cannot be
// opened.
class Pidfd {
public:
    explicit Pidfd(pid_t pid);
    ~Pidfd();
    Pidfd(const Pidfd&) = delete;
    Pidfd& operator=(const Pidfd&) = delete;
    int get() const { return fd_; }

private:
    int fd_ = -1;
};

// Records GroupCreated / GroupRemoved on its own connection and thread.
class SignalRecorder {
public:
    struct Event {
        std::string signal; // "GroupCreated" or "GroupRemoved"
        std::string id;
        std::string detail; // object path or reason
    };
    explicit SignalRecorder(const std::string& busAddress);
    ~SignalRecorder();
    std::vector<Event> events() const;
    // Waits until an event with this signal and id arrives; returns its detail.
    std::optional<std::string>
    waitFor(const std::string& signal, const std::string& id,
            std::chrono::milliseconds timeout = std::chrono::seconds(10));

private:
    std::unique_ptr<sdbus::IConnection> conn_;
    std::unique_ptr<sdbus::IProxy> proxy_;
    mutable std::mutex mu_;
    std::vector<Event> events_;
};

} // namespace rdtmon::test
