#include "BusClient.h"

#include "rdtmon/dbus/GroupNames.h"
#include "rdtmon/dbus/ManagerProxy.h"

#include <sdbus-c++/sdbus-c++.h>

#include <cstdlib>
#include <utility>

namespace rdtmon::client {

namespace {

constexpr const char* kBusName = "org.rdtmon1";
constexpr const char* kManagerPath = "/org/rdtmon1";

// GetManagedObjects alone: no signal is listened to, so nothing is registered.
class ObjectManagerProxy : public sdbus::ProxyInterfaces<sdbus::ObjectManager_proxy> {
public:
    explicit ObjectManagerProxy(sdbus::IConnection& conn)
        : ProxyInterfaces(conn, kBusName, kManagerPath) {}
    ~ObjectManagerProxy() = default;

private:
    void onInterfacesAdded(
        const sdbus::ObjectPath&,
        const std::map<std::string, std::map<std::string, sdbus::Variant>>&) override {}
    void onInterfacesRemoved(const sdbus::ObjectPath&, const std::vector<std::string>&) override {}
};

using PropertyMap = std::map<std::string, sdbus::Variant>;

// A property of a GetManagedObjects entry; nullopt when the service does not have it (an
// older one) or sent another type.
template <class T>
std::optional<T> property(const PropertyMap& props, const xml::Group::Property& which) {
    const auto it = props.find(which.name);
    if (it == props.end() || it->second.peekValueType() != which.type) {
        return std::nullopt;
    }
    return it->second.get<T>();
}

bool isUnknownMethod(const sdbus::Error& e) {
    return e.getName() == "org.freedesktop.DBus.Error.UnknownMethod";
}

// A group object's properties as a GroupInfo.
GroupInfo groupInfoOf(const std::string& objectPath, const PropertyMap& p) {
    GroupInfo g;
    g.objectPath = objectPath;
    g.id = property<std::string>(p, xml::Group::ContainerId).value_or("");
    g.resctrlPath = property<std::string>(p, xml::Group::ResctrlPath).value_or("");
    g.pid = property<uint32_t>(p, xml::Group::Pid).value_or(0);
    g.createdUsec = property<uint64_t>(p, xml::Group::CreatedUsec).value_or(0);
    g.labels = property<Labels>(p, xml::Group::Labels).value_or(Labels{});
    g.state = property<std::string>(p, xml::Group::State).value_or(kStateActive);
    g.cgroup = property<std::string>(p, xml::Group::Cgroup).value_or("");
    g.tasksInGroup = property<uint32_t>(p, xml::Group::TasksInGroup);
    g.tasksOutside = property<uint32_t>(p, xml::Group::TasksOutside);
    g.origin = property<std::string>(p, xml::Group::Origin).value_or(kOriginHook);
    return g;
}

std::string busAddress() {
    const char* a = std::getenv("DBUS_SYSTEM_BUS_ADDRESS");
    return a != nullptr ? a : "the system bus";
}

[[noreturn]] void rethrow(const sdbus::Error& e, const std::string& what) {
    const std::string name = e.getName();
    const ClientErrorKind kind = clientErrorKindOf(name);
    switch (kind) {
    case ClientErrorKind::NotRunning:
        throw ClientError(kind, "rdtmond is not running (nobody owns " + std::string(kBusName) +
                                    " on " + busAddress() + ")");
    case ClientErrorKind::Unsupported:
        throw ClientError(kind,
                          "resctrl monitoring is not supported on this node: " + e.getMessage());
    case ClientErrorKind::AccessDenied:
        throw ClientError(kind, what + ": permission denied (root only): " + e.getMessage());
    case ClientErrorKind::NoSuchGroup:
        throw ClientError(kind, e.getMessage());
    case ClientErrorKind::Other:
        break;
    }
    if (name == "org.freedesktop.DBus.Error.UnknownMethod" ||
        name == "org.freedesktop.DBus.Error.UnknownProperty") {
        throw ClientError(kind, what + ": rdtmond is older than this client (" + name + ": " +
                                    e.getMessage() + ")");
    }
    if (name == "org.freedesktop.DBus.Error.NoReply" ||
        name == "org.freedesktop.DBus.Error.Timeout") {
        throw ClientError(kind, what + ": rdtmond did not answer in time");
    }
    throw ClientError(kind, what + ": " + name + ": " + e.getMessage());
}

// A container's "origin" label, moved out of its labels into origin.
void takeOrigin(GroupCounters& c) {
    if (const auto it = c.labels.find("origin"); it != c.labels.end()) {
        if (!c.isClos()) {
            c.origin = it->second;
        }
        c.labels.erase(it);
    }
}

// The rows of GetAllValues or GetAllCounters as a Snapshot: fill takes a row's values.
template <class Rows, class Fill> Snapshot snapshotOf(uint64_t t, Rows& groups, Fill fill) {
    Snapshot s;
    s.monotonicUsec = t;
    s.groups.reserve(groups.size());
    for (auto& g : groups) {
        GroupCounters c;
        c.id = std::move(std::get<0>(g));
        c.labels = std::move(std::get<1>(g));
        fill(c, std::get<2>(g));
        takeOrigin(c);
        s.groups.push_back(std::move(c));
    }
    return s;
}

template <class F> auto guarded(const std::string& what, F&& f) -> decltype(f()) {
    try {
        return f();
    } catch (const sdbus::Error& e) {
        rethrow(e, what);
    }
}

} // namespace

ClientErrorKind clientErrorKindOf(const std::string& name) {
    if (name == "org.freedesktop.DBus.Error.ServiceUnknown" ||
        name == "org.freedesktop.DBus.Error.NameHasNoOwner" ||
        name == "org.freedesktop.DBus.Error.Disconnected" ||
        name == "org.freedesktop.DBus.Error.NoServer") {
        return ClientErrorKind::NotRunning;
    }
    if (name == "org.rdtmon1.Error.NotSupported") {
        return ClientErrorKind::Unsupported;
    }
    if (name == "org.freedesktop.DBus.Error.AccessDenied") {
        return ClientErrorKind::AccessDenied;
    }
    if (name == "org.rdtmon1.Error.NoSuchGroup") {
        return ClientErrorKind::NoSuchGroup;
    }
    return ClientErrorKind::Other;
}

class BusClient::ManagerProxy final : public sdbus::ProxyInterfaces<org::rdtmon1::Manager_proxy> {
public:
    explicit ManagerProxy(sdbus::IConnection& conn)
        : ProxyInterfaces(conn, kBusName, kManagerPath) {}
    ~ManagerProxy() = default;

private:
    void onGroupCreated(const std::string&, const sdbus::ObjectPath&) override {}
    void onGroupRemoved(const std::string&, const std::string&) override {}
};

BusClient::BusClient(std::chrono::milliseconds timeout) {
    try {
        conn_ = sdbus::createSystemBusConnection();
        conn_->setMethodCallTimeout(timeout);
    } catch (const sdbus::Error& e) {
        throw ClientError(ClientErrorKind::NotRunning,
                          "rdtmond is not reachable: no system bus at " + busAddress() + " (" +
                              e.getMessage() + ")");
    }
    manager_ = std::make_unique<ManagerProxy>(*conn_);
}

BusClient::~BusClient() = default;

Status BusClient::status() {
    return guarded("status", [&] {
        Status s;
        s.version = manager_->Version();
        s.supported = manager_->Supported();
        s.resctrlPath = manager_->ResctrlPath();
        s.monFeatures = manager_->MonFeatures();
        s.numRmids = manager_->NumRmids();
        s.groupCount = manager_->GroupCount();
        try {
            s.freeRmids = manager_->FreeRmids();
        } catch (const sdbus::Error& e) {
            // A service older than FreeRmids: the rest of the status still holds.
            if (clientErrorKindOf(e.getName()) == ClientErrorKind::NotRunning) {
                throw;
            }
        }
        try {
            s.telemetryFeatures = manager_->TelemetryFeatures();
        } catch (const sdbus::Error& e) {
            if (clientErrorKindOf(e.getName()) == ClientErrorKind::NotRunning) {
                throw; // else a service older than TelemetryFeatures
            }
        }
        try {
            s.l3CacheSizes = manager_->L3CacheSizes();
        } catch (const sdbus::Error& e) {
            if (clientErrorKindOf(e.getName()) == ClientErrorKind::NotRunning) {
                throw; // else a service older than L3CacheSizes
            }
        }
        return s;
    });
}

std::vector<GroupInfo> BusClient::listGroups() {
    auto rows = guarded("ListGroups", [&] { return manager_->ListGroups(); });
    std::vector<GroupInfo> out;
    out.reserve(rows.size());
    for (const auto& row : rows) {
        GroupInfo g;
        g.id = std::get<0>(row);
        g.resctrlPath = std::get<1>(row);
        g.pid = std::get<2>(row);
        g.createdUsec = std::get<3>(row);
        g.objectPath = std::get<4>(row);
        out.push_back(std::move(g));
    }
    return out;
}

std::vector<GroupInfo> BusClient::groupObjects() {
    ObjectManagerProxy objects(*conn_);
    auto all = guarded("GetManagedObjects", [&] { return objects.GetManagedObjects(); });
    std::vector<GroupInfo> out;
    for (const auto& [path, interfaces] : all) {
        const auto iface = interfaces.find(xml::Group::kInterface);
        if (iface == interfaces.end()) {
            continue;
        }
        out.push_back(groupInfoOf(path, iface->second));
    }
    return out;
}

std::vector<GroupInfo> BusClient::runtimeGroups() {
    std::vector<sdbus::Struct<std::string, std::string, uint32_t, uint64_t, Labels>> rows;
    try {
        rows = manager_->ListRuntimeGroups();
    } catch (const sdbus::Error& e) {
        // A service older than ListRuntimeGroups has no such groups; its bus policy, older
        // too, denies the unknown method to a caller other than root before the service
        // sees it.
        if (isUnknownMethod(e) || clientErrorKindOf(e.getName()) == ClientErrorKind::AccessDenied) {
            return {};
        }
        rethrow(e, "ListRuntimeGroups");
    }
    std::vector<GroupInfo> out;
    out.reserve(rows.size());
    for (auto& row : rows) {
        GroupInfo g;
        g.id = std::move(std::get<0>(row));
        g.resctrlPath = std::move(std::get<1>(row));
        g.pid = std::get<2>(row);
        g.createdUsec = std::get<3>(row);
        g.labels = std::move(std::get<4>(row));
        g.state = kStateActive;
        g.origin = kOriginRuntime;
        out.push_back(std::move(g));
    }
    return out;
}

Counters BusClient::counters(const std::string& containerId) {
    return guarded("GetCounters", [&] { return manager_->GetCounters(containerId); });
}

Snapshot BusClient::allCounters(bool withGenerations) {
    if (withGenerations && !olderThanValues_) {
        try {
            auto [t, groups] = manager_->GetAllValues();
            return snapshotOf(t, groups, [](GroupCounters& c, const auto& values) {
                for (const auto& v : values) {
                    const sdbus::Variant& value = std::get<2>(v);
                    if (value.peekValueType() == "d") {
                        c.decimals[std::get<0>(v)][std::get<1>(v)] = value.get<double>();
                    } else if (value.peekValueType() == "t") {
                        c.counters[std::get<0>(v)][std::get<1>(v)] = value.get<uint64_t>();
                    } else {
                        continue; // a type this client does not know
                    }
                    c.generations[std::get<0>(v)][std::get<1>(v)] = std::get<3>(v);
                    if (std::get<4>(v) != 0) {
                        c.windowUsec[std::get<0>(v)][std::get<1>(v)] = std::get<4>(v);
                        c.measuredUsec[std::get<0>(v)][std::get<1>(v)] = std::get<5>(v);
                    }
                }
            });
        } catch (const sdbus::Error& e) {
            // A service older than GetAllValues, or its older policy: GetAllCounters, which
            // it has, from now on.
            if (!isUnknownMethod(e) &&
                clientErrorKindOf(e.getName()) != ClientErrorKind::AccessDenied) {
                rethrow(e, "GetAllValues");
            }
            olderThanValues_ = true;
        }
    }
    return guarded("GetAllCounters", [&] {
        auto [t, groups] = manager_->GetAllCounters();
        return snapshotOf(
            t, groups, [](GroupCounters& c, auto& counters) { c.counters = std::move(counters); });
    });
}

std::optional<std::vector<GroupCoverage>> BusClient::allCoverage() {
    try {
        auto rows = manager_->GetAllCoverage();
        std::vector<GroupCoverage> out;
        out.reserve(rows.size());
        for (auto& row : rows) {
            out.push_back(GroupCoverage{std::move(std::get<0>(row)), std::move(std::get<1>(row)),
                                        std::move(std::get<2>(row)), std::get<3>(row),
                                        std::get<4>(row)});
        }
        return out;
    } catch (const sdbus::Error& e) {
        if (isUnknownMethod(e)) {
            return std::nullopt;
        }
        rethrow(e, "GetAllCoverage");
    }
}

std::optional<CounterAssignment> BusClient::counterAssignment() {
    try {
        auto [mode, domains] = manager_->GetCounterAssignment();
        CounterAssignment out;
        out.mode = std::move(mode);
        for (const auto& d : domains) {
            out.domains.push_back(CounterDomain{std::get<0>(d), std::get<1>(d), std::get<2>(d)});
        }
        if (out.mode == "mbm_event") {
            try {
                out.continuous = manager_->CountersContinuous();
                out.rotating = manager_->CountersRotating();
                out.cycleUsec = manager_->CounterCycleUsec();
            } catch (const sdbus::Error& e) {
                if (clientErrorKindOf(e.getName()) == ClientErrorKind::NotRunning) {
                    throw;
                }
                out.continuous.reset(); // a service older than them
                out.rotating.reset();
                out.cycleUsec.reset();
            }
        }
        return out;
    } catch (const sdbus::Error& e) {
        if (isUnknownMethod(e) || clientErrorKindOf(e.getName()) == ClientErrorKind::AccessDenied) {
            return std::nullopt;
        }
        rethrow(e, "GetCounterAssignment");
    }
}

uint32_t BusClient::garbageCollect() {
    return guarded("GarbageCollect", [&] { return manager_->GarbageCollect(); });
}

std::pair<std::string, std::string> BusClient::addContainer(const std::string& containerId,
                                                            int pidfd, const Labels& labels) {
    return guarded("AddContainer", [&] {
        auto [path, state] = manager_->AddContainer(containerId, sdbus::UnixFd(pidfd), labels);
        return std::make_pair(std::string(path), std::move(state));
    });
}

void BusClient::removeGroup(const std::string& containerId) {
    guarded("RemoveGroup", [&] { manager_->RemoveGroup(containerId); });
}

} // namespace rdtmon::client
