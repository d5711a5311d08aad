#include "RdtmonClient.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <sys/syscall.h>
#include <systemd/sd-bus.h>
#include <thread>
#include <unistd.h>

namespace rdtmon::test {

namespace {
constexpr const char* kIface = "org.rdtmon1.Manager";

template <class F> CallResult capture(F&& f) {
    try {
        f();
        return {};
    } catch (const sdbus::Error& e) {
        return {e.getName(), e.getMessage()};
    }
}
} // namespace

RdtmonClient::RdtmonClient(const std::string& busAddress)
    : conn_(sdbus::createSessionBusConnectionWithAddress(busAddress)),
      proxy_(sdbus::createProxy(*conn_, "org.rdtmon1", "/org/rdtmon1")) {
    conn_->setMethodCallTimeout(std::chrono::seconds(30));
}

CallResult RdtmonClient::createGroup(const std::string& id, uint32_t pid, sdbus::ObjectPath* out) {
    return capture([&] {
        sdbus::ObjectPath p;
        proxy_->callMethod("CreateGroup")
            .onInterface(kIface)
            .withArguments(id, pid)
            .storeResultsTo(p);
        if (out != nullptr) {
            *out = p;
        }
    });
}

CallResult RdtmonClient::createContainerGroup(const std::string& id, int pidfd,
                                              const std::map<std::string, std::string>& labels,
                                              sdbus::ObjectPath* out) {
    return capture([&] {
        sdbus::ObjectPath p;
        proxy_->callMethod("CreateContainerGroup")
            .onInterface(kIface)
            .withArguments(id, sdbus::UnixFd(pidfd), labels)
            .storeResultsTo(p);
        if (out != nullptr) {
            *out = p;
        }
    });
}

AllValues RdtmonClient::allValues() {
    using Value =
        sdbus::Struct<std::string, std::string, sdbus::Variant, uint64_t, uint64_t, uint64_t>;
    using Group =
        sdbus::Struct<std::string, std::map<std::string, std::string>, std::vector<Value>>;
    uint64_t usec = 0;
    std::vector<Group> groups;
    proxy_->callMethod("GetAllValues").onInterface(kIface).storeResultsTo(usec, groups);
    AllValues out;
    out.signature = "ta(sa{ss}a(ssvttt))";
    out.monotonicUsec = usec;
    for (const Group& g : groups) {
        const std::string& id = g.get<0>();
        out.order.push_back(id);
        for (const Value& v : g.get<2>()) {
            ServedValue s;
            const sdbus::Variant& x = v.get<2>();
            if (x.containsValueOfType<double>()) {
                s.type = 'd';
                s.decimal = x.get<double>();
            } else {
                s.count = x.get<uint64_t>();
            }
            s.generation = v.get<3>();
            s.windowUsec = v.get<4>();
            s.measuredUsec = v.get<5>();
            out.values[{id, v.get<0>(), v.get<1>()}] = s;
        }
    }
    return out;
}

sdbus::Variant RdtmonClient::groupProperty(const std::string& id, const std::string& name) {
    char* path = nullptr;
    if (sd_bus_path_encode("/org/rdtmon1/group", id.c_str(), &path) < 0) {
        throw std::runtime_error("sd_bus_path_encode failed");
    }
    std::string p(path);
    std::free(path);
    auto group = sdbus::createProxy(*conn_, "org.rdtmon1", p);
    return group->getProperty(name).onInterface("org.rdtmon1.Group");
}

std::map<std::string, std::string> RdtmonClient::labelsOf(const std::string& id) {
    char* path = nullptr;
    if (sd_bus_path_encode("/org/rdtmon1/group", id.c_str(), &path) < 0) {
        throw std::runtime_error("sd_bus_path_encode failed");
    }
    std::string p(path);
    std::free(path);
    auto group = sdbus::createProxy(*conn_, "org.rdtmon1", p);
    return group->getProperty("Labels")
        .onInterface("org.rdtmon1.Group")
        .get<std::map<std::string, std::string>>();
}

Pidfd::Pidfd(pid_t pid) : fd_(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0))) {
    if (fd_ < 0) {
        throw std::runtime_error("pidfd_open(" + std::to_string(pid) +
                                 "): " + std::strerror(errno));
    }
}

Pidfd::~Pidfd() {
    ::close(fd_);
}

CallResult RdtmonClient::removeGroup(const std::string& id) {
    return capture(
        [&] { proxy_->callMethod("RemoveGroup").onInterface(kIface).withArguments(id); });
}

std::vector<GroupRow> RdtmonClient::listGroups() {
    std::vector<GroupRow> rows;
    proxy_->callMethod("ListGroups").onInterface(kIface).storeResultsTo(rows);
    return rows;
}

std::vector<RdtmonClient::RuntimeRow> RdtmonClient::listRuntimeGroups() {
    std::vector<RuntimeRow> rows;
    proxy_->callMethod("ListRuntimeGroups").onInterface(kIface).storeResultsTo(rows);
    return rows;
}

std::map<std::string, std::map<std::string, std::string>> RdtmonClient::allCountersLabels() {
    uint64_t t = 0;
    std::vector<sdbus::Struct<std::string, std::map<std::string, std::string>,
                              std::map<std::string, std::map<std::string, uint64_t>>>>
        groups;
    proxy_->callMethod("GetAllCounters").onInterface(kIface).storeResultsTo(t, groups);
    std::map<std::string, std::map<std::string, std::string>> out;
    for (const auto& g : groups) {
        out[std::get<0>(g)] = std::get<1>(g);
    }
    return out;
}

std::set<std::string> RdtmonClient::listedIds() {
    std::set<std::string> ids;
    for (const GroupRow& r : listGroups()) {
        ids.insert(std::get<0>(r));
    }
    return ids;
}

CallResult RdtmonClient::getCounters(const std::string& id, CountersMap* out) {
    return capture([&] {
        CountersMap m;
        proxy_->callMethod("GetCounters").onInterface(kIface).withArguments(id).storeResultsTo(m);
        if (out != nullptr) {
            *out = std::move(m);
        }
    });
}

CallResult RdtmonClient::garbageCollect(uint32_t* removed) {
    return capture([&] {
        uint32_t n = 0;
        proxy_->callMethod("GarbageCollect").onInterface(kIface).storeResultsTo(n);
        if (removed != nullptr) {
            *removed = n;
        }
    });
}

SignalRecorder::SignalRecorder(const std::string& busAddress)
    : conn_(sdbus::createSessionBusConnectionWithAddress(busAddress)),
      proxy_(sdbus::createProxy(*conn_, "org.rdtmon1", "/org/rdtmon1")) {
    proxy_->uponSignal("GroupCreated")
        .onInterface(kIface)
        .call([this](const std::string& id, const sdbus::ObjectPath& path) {
            std::lock_guard lk(mu_);
            events_.push_back({"GroupCreated", id, path});
        });
    proxy_->uponSignal("GroupRemoved")
        .onInterface(kIface)
        .call([this](const std::string& id, const std::string& reason) {
            std::lock_guard lk(mu_);
            events_.push_back({"GroupRemoved", id, reason});
        });
    proxy_->finishRegistration();
    conn_->enterEventLoopAsync();
}

SignalRecorder::~SignalRecorder() {
    proxy_.reset();
    conn_->leaveEventLoop();
}

std::vector<SignalRecorder::Event> SignalRecorder::events() const {
    std::lock_guard lk(mu_);
    return events_;
}

std::optional<std::string> SignalRecorder::waitFor(const std::string& signal, const std::string& id,
                                                   std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        {
            std::lock_guard lk(mu_);
            for (const Event& e : events_) {
                if (e.signal == signal && e.id == id) {
                    return e.detail;
                }
            }
        }
        if (std::chrono::steady_clock::now() >= deadline) {
            return std::nullopt;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
}

} // namespace rdtmon::test
