#include "BusClient.h"

#include "rdtmon/dbus/GroupProxy.h"
#include "rdtmon/dbus/ManagerProxy.h"

#include <sdbus-c++/sdbus-c++.h>

#include <cstdlib>
#include <utility>

namespace rdtmon::client {

namespace {

constexpr const char* kBusName = "org.rdtmon1";
constexpr const char* kManagerPath = "/org/rdtmon1";

// The generated interface classes need a holder; signals are never listened to, so the
// proxies are not registered (no AddMatch round trip per run).
class GroupProxy : public sdbus::ProxyInterfaces<org::rdtmon1::Group_proxy> {
public:
    GroupProxy(sdbus::IConnection& conn, const std::string& path)
        : ProxyInterfaces(conn, kBusName, path) {}
    ~GroupProxy() = default;
};

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

class BusClient::ManagerProxy : public sdbus::ProxyInterfaces<org::rdtmon1::Manager_proxy> {
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
        return s;
    });
}

std::vector<GroupInfo> BusClient::listGroups(bool withLabels) {
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
        if (withLabels) {
            try {
                GroupProxy group(*conn_, g.objectPath);
                g.labels = group.Labels();
            } catch (const sdbus::Error& e) {
                // Removed between the list and this call: listed without labels.
                if (e.getName() != "org.freedesktop.DBus.Error.UnknownObject" &&
                    e.getName() != "org.freedesktop.DBus.Error.UnknownMethod") {
                    rethrow(e, "Labels of " + g.id);
                }
            }
        }
        out.push_back(std::move(g));
    }
    return out;
}

Counters BusClient::counters(const std::string& containerId) {
    return guarded("GetCounters", [&] { return manager_->GetCounters(containerId); });
}

Snapshot BusClient::allCounters() {
    return guarded("GetAllCounters", [&] {
        auto [t, groups] = manager_->GetAllCounters();
        Snapshot s;
        s.monotonicUsec = t;
        s.groups.reserve(groups.size());
        for (auto& g : groups) {
            s.groups.push_back(GroupCounters{std::move(std::get<0>(g)), std::move(std::get<1>(g)),
                                             std::move(std::get<2>(g))});
        }
        return s;
    });
}

uint32_t BusClient::garbageCollect() {
    return guarded("GarbageCollect", [&] { return manager_->GarbageCollect(); });
}

} // namespace rdtmon::client
